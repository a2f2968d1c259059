/*
 * types.h: tensor element types as data.
 *
 * Each type (ggml's ids, as stored in GGUF tensor infos) has one row in a traits
 * table: its block size and bytes per block, a plain-C dequantizer, an optional
 * quantizer, and the dot product against the activation format it pairs with
 * (vec_dot_type: Q8_0 for the 32-blocks, Q8_1 for the ones with a min, Q8_K for the
 * K-quants, F32 for F32, F16/BF16 for themselves). The reference kernels live in
 * quants.c; SIMD versions (arch/x86, arch/arm) replace vec_dot at start-up when the
 * CPU has the instructions, and are tested against the reference.
 */
#ifndef NOOK_TENSOR_TYPES_H
#define NOOK_TENSOR_TYPES_H

#include "base/base.h"

enum {
    NK_TYPE_F32 = 0, NK_TYPE_F16 = 1, NK_TYPE_Q4_0 = 2, NK_TYPE_Q4_1 = 3,
    NK_TYPE_Q5_0 = 6, NK_TYPE_Q5_1 = 7, NK_TYPE_Q8_0 = 8, NK_TYPE_Q8_1 = 9,
    NK_TYPE_Q2_K = 10, NK_TYPE_Q3_K = 11, NK_TYPE_Q4_K = 12, NK_TYPE_Q5_K = 13,
    NK_TYPE_Q6_K = 14, NK_TYPE_Q8_K = 15,
    NK_TYPE_BF16 = 30,
    NK_TYPE_COUNT = 40   /* table size: ids >= this are unknown */
};

#define QK4_0 32
#define QK8_0 32
#define QK_K 256

/* Dequantize n values (n a multiple of blck) from src to dst. */
typedef void (*nk_to_float_fn)(const void *src, float *dst, int64_t n);
/* Quantize n floats (n a multiple of blck) into blocks. */
typedef void (*nk_from_float_fn)(const float *src, void *dst, int64_t n);
/* *s = dot(x[0..n), y[0..n)) where x is a row of this type and y a row of vec_dot_type. */
typedef void (*nk_vec_dot_fn)(int n, float *s, const void *x, const void *y);

typedef struct nk_type_traits {
    const char *name;          /* "Q4_K", as ggml names it; NULL: unknown id */
    int  blck;                 /* elements per block */
    size_t type_size;          /* bytes per block */
    bool is_quantized;
    nk_to_float_fn to_float;            /* NULL if nook cannot read this type */
    nk_from_float_fn from_float;        /* NULL if nook cannot write this type */
    int  vec_dot_type;                  /* activation type for dot products */
    nk_vec_dot_fn vec_dot;              /* best kernel for this CPU (may be SIMD) */
    nk_vec_dot_fn vec_dot_ref;          /* the plain-C reference */
} nk_type_traits;

/* Traits for a type id, or NULL if the id is outside the table or unknown. The table
 * is process-global and read-only after nk_tensor_init(). */
const nk_type_traits *nk_type_get(uint32_t type);
/* Name of a type id ("Q4_K"), or "unknown(N)" in a static buffer-free form: returns
 * NULL for unknown ids. */
const char *nk_type_name(uint32_t type);
/* Look up by name (case-insensitive, "q4_k" ok). Returns -1 if unknown. */
int nk_type_from_name(const char *name);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or the
 * type is unknown. */
size_t nk_row_size(uint32_t type, int64_t n);

/* Detect the CPU and install the fastest vec_dot kernels. Idempotent, thread-safe
 * (call once from the main thread before sharing models). NOOK_NO_SIMD=1 in the
 * environment keeps the reference kernels. */
void nk_tensor_init(void);
/* Which kernel family was installed: "avx512vnni", "avx2", "neon", "reference". */
const char *nk_tensor_isa(void);

#endif /* NOOK_TENSOR_TYPES_H */

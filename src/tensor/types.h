/*
 * types.h: tensor element types as data.
 *
 * Each type (ggml's ids, as stored in GGUF tensor infos) has one row in a traits
 * table: its block size and bytes per block, a plain-C dequantizer, an optional
 * quantizer, and the dot product against the activation format it pairs with
 * (vec_dot_type: Q8_0 for the 32-blocks, Q8_1 for the ones with a min, Q8_K for the
 * K-quants, F32 for F32, F16/BF16 for themselves). The reference kernels live in
 * quants_*.c; SIMD versions (arch/x86, arch/arm) replace vec_dot at start-up when the CPU has
 * the instructions, and are tested against the reference.
 *
 * Block layouts below are byte-for-byte ggml's (ggml-common.h); every struct size is
 * checked with _Static_assert. Half-precision fields hold raw IEEE fp16 bits (convert
 * with nk_fp16_to_fp32 / nk_fp32_to_fp16 from base.h).
 */
#ifndef NOOK_TENSOR_TYPES_H
#define NOOK_TENSOR_TYPES_H

#include "base/base.h"

enum {
    NK_TYPE_F32 = 0, NK_TYPE_F16 = 1, NK_TYPE_Q4_0 = 2, NK_TYPE_Q4_1 = 3,
    NK_TYPE_Q5_0 = 6, NK_TYPE_Q5_1 = 7, NK_TYPE_Q8_0 = 8, NK_TYPE_Q8_1 = 9,
    NK_TYPE_Q2_K = 10, NK_TYPE_Q3_K = 11, NK_TYPE_Q4_K = 12, NK_TYPE_Q5_K = 13,
    NK_TYPE_Q6_K = 14, NK_TYPE_Q8_K = 15,
    /* Known to ggml but not readable by nook (to_float == NULL): the table still
     * carries their names and sizes so files holding them can be sized and a loader
     * can name the unsupported type in its error. */
    NK_TYPE_IQ2_XXS = 16, NK_TYPE_IQ2_XS = 17, NK_TYPE_IQ3_XXS = 18,
    NK_TYPE_IQ1_S = 19, NK_TYPE_IQ4_NL = 20, NK_TYPE_IQ3_S = 21, NK_TYPE_IQ2_S = 22,
    NK_TYPE_IQ4_XS = 23, NK_TYPE_I8 = 24, NK_TYPE_I16 = 25, NK_TYPE_I32 = 26,
    NK_TYPE_I64 = 27, NK_TYPE_F64 = 28, NK_TYPE_IQ1_M = 29,
    NK_TYPE_BF16 = 30,
    NK_TYPE_TQ1_0 = 34, NK_TYPE_TQ2_0 = 35, NK_TYPE_MXFP4 = 39,
    NK_TYPE_COUNT = 40   /* table size: ids >= this are unknown */
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define NK_K_SCALE_SIZE 12

/* ---- block layouts (ggml-common.h) ------------------------------------------------ */
typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } nk_block_q4_0;                  /* 18 */
typedef struct { uint16_t d, m; uint8_t qs[QK4_1 / 2]; } nk_block_q4_1;               /* 20 */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } nk_block_q5_0;   /* 22 */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } nk_block_q5_1;/* 24 */
typedef struct { uint16_t d; int8_t qs[QK8_0]; } nk_block_q8_0;                       /* 34 */
/* s = d * sum(qs), precomputed so a Q4_1/Q5_1 dot can fold in the weight's min. */
typedef struct { uint16_t d, s; int8_t qs[QK8_1]; } nk_block_q8_1;                    /* 36 */

typedef struct {                       /* 2.625 bpw, weight = d*sc*q - dmin*m */
    uint8_t scales[QK_K / 16];         /* low nibble: scale, high nibble: min */
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
} nk_block_q2_K;                                                                       /* 84 */
typedef struct {                       /* 3.4375 bpw, weight = d*(sc-32)*(q-4*(!hbit)) */
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];                /* 16 six-bit scales */
    uint16_t d;
} nk_block_q3_K;                                                                       /* 110 */
typedef struct {                       /* 4.5 bpw, weight = d*sc*q - dmin*m */
    uint16_t d, dmin;
    uint8_t scales[NK_K_SCALE_SIZE];   /* 8 six-bit scales and 8 six-bit mins */
    uint8_t qs[QK_K / 2];
} nk_block_q4_K;                                                                       /* 144 */
typedef struct {                       /* 5.5 bpw */
    uint16_t d, dmin;
    uint8_t scales[NK_K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} nk_block_q5_K;                                                                       /* 176 */
typedef struct {                       /* 6.5625 bpw, weight = d*scale*(q-32) */
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t  scales[QK_K / 16];
    uint16_t d;
} nk_block_q6_K;                                                                       /* 210 */
typedef struct {                       /* activations for K-quant dots */
    float   d;
    int8_t  qs[QK_K];
    int16_t bsums[QK_K / 16];          /* sum of each 16 qs */
} nk_block_q8_K;                                                                       /* 292 */

/* Dequantize n values (n a multiple of blck) from src to dst. */
typedef void (*nk_to_float_fn)(const void *src, float *dst, int64_t n);
/* Quantize n floats (n a multiple of blck) into blocks. */
typedef void (*nk_from_float_fn)(const float *src, void *dst, int64_t n);
/* *s = dot(x[0..n), y[0..n)) where x is a row of this type and y a row of vec_dot_type.
 * n is a multiple of the block size. Pure function of its inputs: thread-safe. */
typedef void (*nk_vec_dot_fn)(int n, float *s, const void *x, const void *y);

typedef struct nk_type_traits {
    const char *name;          /* "Q4_K", as ggml names it; NULL: unknown id */
    int  blck;                 /* elements per block */
    size_t type_size;          /* bytes per block */
    bool is_quantized;
    nk_to_float_fn to_float;            /* NULL if nook cannot read this type */
    nk_from_float_fn from_float;        /* NULL if nook cannot write this type; may be SIMD */
    int  vec_dot_type;                  /* activation type for dot products */
    nk_vec_dot_fn vec_dot;              /* best kernel for this CPU (may be SIMD) */
    nk_vec_dot_fn vec_dot_ref;          /* the plain-C reference */
    nk_from_float_fn from_float_ref;    /* ggml's *_ref quantizer (deterministic files) */
} nk_type_traits;

/* Traits for a type id, or NULL if the id is outside the table or unknown. The table
 * is process-global and read-only after nk_tensor_init(). Before init it holds the
 * reference kernels, so it is usable (slowly) without init. */
const nk_type_traits *nk_type_get(uint32_t type);
/* Name of a type id ("Q4_K"), or NULL for unknown ids. */
const char *nk_type_name(uint32_t type);
/* Look up by name (case-insensitive, "q4_k" ok). Returns -1 if unknown. */
int nk_type_from_name(const char *name);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size, n < 0,
 * the type is unknown, or the size overflows. */
size_t nk_row_size(uint32_t type, int64_t n);

/* Detect the CPU and install the fastest vec_dot kernels. Idempotent, thread-safe
 * (call once from the main thread before sharing models). NOOK_NO_SIMD=1 in the
 * environment keeps the reference kernels. */
void nk_tensor_init(void);
/* Which kernel family was installed: "avx512vnni", "avx2", "neon-dotprod", "neon",
 * "reference". */
const char *nk_tensor_isa(void);

/* ---- kernel variants (tests and benchmarks) ----------------------------------------
 * Every ISA level nook has kernels for. nk_isa_supported says whether this CPU can
 * run it (NK_ISA_REF always can). The variant getters return the kernel of that
 * level for a type, or NULL when that level has none for it (callers fall back to a
 * lower level); they ignore NOOK_NO_SIMD, so a test can exercise every level. */
/* Ordered by preference within an architecture; the levels of the other
 * architecture are never supported, so init's "highest supported level, then fall
 * back per type through the lower ones" works on both. */
typedef enum {
    NK_ISA_REF = 0, NK_ISA_AVX2 = 1, NK_ISA_AVX512 = 2,
    NK_ISA_NEON = 3,            /* AArch64 Advanced SIMD (every AArch64 CPU) */
    NK_ISA_NEON_DOTPROD = 4,    /* + Armv8.2-A dotprod (SDOT) */
    NK_ISA_COUNT = 5
} nk_isa;
bool          nk_isa_supported(int isa);
const char   *nk_isa_name(int isa);
nk_vec_dot_fn nk_vec_dot_variant(uint32_t type, int isa);
nk_from_float_fn nk_from_float_variant(uint32_t type, int isa);

#endif /* NOOK_TENSOR_TYPES_H */

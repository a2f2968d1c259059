/*
 * quants.h: the plain-C reference kernels behind the traits table (internal to the
 * tensor layer; other layers go through nk_type_get()).
 *
 * Naming: nk_dequant_<t> (to_float), nk_quant_<t>_ref (from_float, ggml's *_ref
 * algorithm), nk_vec_dot_<t>_ref (dot against the type's vec_dot_type).
 * All are pure functions of their arguments: thread-safe, no allocation.
 * n is always a multiple of the type's block size (callers check with nk_row_size).
 */
#ifndef NOOK_TENSOR_QUANTS_H
#define NOOK_TENSOR_QUANTS_H

#include "tensor/types.h"

#include <math.h>
#include <string.h>

_Static_assert(sizeof(nk_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(nk_block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(nk_block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(nk_block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(nk_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(nk_block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(nk_block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(nk_block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(nk_block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(nk_block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(nk_block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(nk_block_q8_K) == 292, "q8_K size");

/* ggml's nearest_int: round to nearest, ties to even (the FPU's default mode), by
 * the magic-number trick. Valid for |f| <= 4194303. */
static inline int nk_nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Q4_K / Q5_K: unpack 6-bit scale and min j (0..7) from the 12 packed bytes. */
static inline void nk_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K: the 16 six-bit scales, minus 32 (so -32..31). */
static inline void nk_q3_K_scales(const uint8_t *s12, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int low = j < 8 ? (s12[j] & 0xF) : (s12[j - 8] >> 4);
        int hi = (s12[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((low | (hi << 4)) - 32);
    }
}

/* ---- float formats (quants_legacy.c) ---- */
void nk_dequant_f32(const void *src, float *dst, int64_t n);
void nk_quant_f32(const float *src, void *dst, int64_t n);
void nk_dequant_f16(const void *src, float *dst, int64_t n);
void nk_quant_f16(const float *src, void *dst, int64_t n);
void nk_dequant_bf16(const void *src, float *dst, int64_t n);
void nk_quant_bf16(const float *src, void *dst, int64_t n);
void nk_vec_dot_f32_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_f16_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_bf16_ref(int n, float *s, const void *x, const void *y);

/* ---- 32-element blocks (quants_legacy.c) ---- */
void nk_dequant_q4_0(const void *src, float *dst, int64_t n);
void nk_dequant_q4_1(const void *src, float *dst, int64_t n);
void nk_dequant_q5_0(const void *src, float *dst, int64_t n);
void nk_dequant_q5_1(const void *src, float *dst, int64_t n);
void nk_dequant_q8_0(const void *src, float *dst, int64_t n);
void nk_dequant_q8_1(const void *src, float *dst, int64_t n);
void nk_quant_q4_0_ref(const float *src, void *dst, int64_t n);
void nk_quant_q4_1_ref(const float *src, void *dst, int64_t n);
void nk_quant_q5_0_ref(const float *src, void *dst, int64_t n);
void nk_quant_q5_1_ref(const float *src, void *dst, int64_t n);
void nk_quant_q8_0_ref(const float *src, void *dst, int64_t n);
void nk_quant_q8_1_ref(const float *src, void *dst, int64_t n);
void nk_vec_dot_q4_0_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q4_1_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q5_0_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q5_1_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q8_0_ref(int n, float *s, const void *x, const void *y);

/* ---- K-quants (quants_k.c) ---- */
void nk_dequant_q2_K(const void *src, float *dst, int64_t n);
void nk_dequant_q3_K(const void *src, float *dst, int64_t n);
void nk_dequant_q4_K(const void *src, float *dst, int64_t n);
void nk_dequant_q5_K(const void *src, float *dst, int64_t n);
void nk_dequant_q6_K(const void *src, float *dst, int64_t n);
void nk_dequant_q8_K(const void *src, float *dst, int64_t n);
void nk_quant_q2_K_ref(const float *src, void *dst, int64_t n);
void nk_quant_q3_K_ref(const float *src, void *dst, int64_t n);
void nk_quant_q4_K_ref(const float *src, void *dst, int64_t n);
void nk_quant_q5_K_ref(const float *src, void *dst, int64_t n);
void nk_quant_q6_K_ref(const float *src, void *dst, int64_t n);
void nk_quant_q8_K_ref(const float *src, void *dst, int64_t n);
void nk_vec_dot_q2_K_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q3_K_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q4_K_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q5_K_ref(int n, float *s, const void *x, const void *y);
void nk_vec_dot_q6_K_ref(int n, float *s, const void *x, const void *y);

/* ---- SIMD kernel tables (arch/x86, arch/arm); NULL entries: no kernel at that level ----
 * Indexed by type id; filled by each arch file, read by types.c. */
typedef struct nk_kernel_set {
    nk_vec_dot_fn vec_dot[NK_TYPE_COUNT];
    nk_from_float_fn from_float[NK_TYPE_COUNT];
} nk_kernel_set;
/* Return the kernels of that level (never NULL; a set of NULLs on builds for
 * another architecture). Callers must check nk_isa_supported first before calling any. */
const nk_kernel_set *nk_kernels_avx2(void);
const nk_kernel_set *nk_kernels_avx512(void);
const nk_kernel_set *nk_kernels_neon(void);           /* arch/arm/neon.c */
const nk_kernel_set *nk_kernels_neon_dotprod(void);   /* arch/arm/neon_dotprod.c */

#endif /* NOOK_TENSOR_QUANTS_H */

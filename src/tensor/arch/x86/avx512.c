/*
 * avx512.c: kernels for AVX-512 (F, BW, VL, DQ) with VNNI.
 *
 * The quantized dots are kernels_256.h compiled with vpdpbusd (VNNI on ymm) in
 * place of maddubs/madd, and the Q5 high-bit spread done by a mask move; the float
 * dots use 512-bit vectors. Like avx2.c: per-function target attributes, run only
 * after the CPU check (nk_isa_supported(NK_ISA_AVX512)); types without a kernel
 * here fall back to the AVX2 one.
 */
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define NK_TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define NK_FN(name) name##_avx512

#define NK_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define NK_DOT_SC(u, s, a, b) \
    _mm256_mullo_epi32(NK_DOT(u, s), _mm256_set_m128i(_mm_set1_epi32(b), _mm_set1_epi32(a)))
#define NK_BITS32(qh) _mm256_movm_epi8((__mmask32)(qh))

#define NK_NO_F16_256
#include "kernels_256.h"

/* ---- F32 / F16 (512-bit) ---- */
NK_TGT static void vec_dot_f32_avx512(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i < n; i += 16) {   /* masked tail */
        const __mmask16 m = (n - i) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

NK_TGT static void vec_dot_f16_avx512(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
#define NK_LDH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(NK_LDH(x + i), NK_LDH(y + i), a0);
        a1 = _mm512_fmadd_ps(NK_LDH(x + i + 16), NK_LDH(y + i + 16), a1);
    }
#undef NK_LDH
    for (; i < n; i += 16) {
        const __mmask16 m = (n - i) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)),
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i)), a0);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static const nk_kernel_set g_avx512 = {
    .vec_dot = {
        [NK_TYPE_F32] = vec_dot_f32_avx512,   [NK_TYPE_F16] = vec_dot_f16_avx512,
        [NK_TYPE_BF16] = vec_dot_bf16_avx512,
        [NK_TYPE_Q4_0] = vec_dot_q4_0_avx512, [NK_TYPE_Q4_1] = vec_dot_q4_1_avx512,
        [NK_TYPE_Q5_0] = vec_dot_q5_0_avx512, [NK_TYPE_Q5_1] = vec_dot_q5_1_avx512,
        [NK_TYPE_Q8_0] = vec_dot_q8_0_avx512,
        [NK_TYPE_Q2_K] = vec_dot_q2_K_avx512, [NK_TYPE_Q3_K] = vec_dot_q3_K_avx512,
        [NK_TYPE_Q4_K] = vec_dot_q4_K_avx512, [NK_TYPE_Q5_K] = vec_dot_q5_K_avx512,
        [NK_TYPE_Q6_K] = vec_dot_q6_K_avx512,
    },
    .from_float = {
        [NK_TYPE_Q8_0] = quant_q8_0_avx512, [NK_TYPE_Q8_1] = quant_q8_1_avx512,
        [NK_TYPE_Q8_K] = quant_q8_K_avx512,
    },
};

const nk_kernel_set *nk_kernels_avx512(void) {
    return &g_avx512;
}

#else
const nk_kernel_set *nk_kernels_avx512(void) {
    static const nk_kernel_set none;
    return &none;
}
#endif

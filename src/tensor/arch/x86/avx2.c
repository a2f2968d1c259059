/*
 * avx2.c: vec_dot kernels and activation quantizers for AVX2 + FMA + F16C.
 *
 * Every function carries its own target attribute, so this file compiles into a
 * generic x86-64 binary and the code only runs after nk_tensor_init has checked
 * the CPU (nk_isa_supported(NK_ISA_AVX2)). Each kernel computes what the matching
 * reference in quants_*.c computes: integer dot products are exact, only the
 * float accumulation order differs (lanes instead of one running sum); the
 * tolerances are pinned in tests/tensor/test_simd.c.
 */
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define NK_AVX2 __attribute__((target("avx2,fma,f16c")))

NK_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- F32 ---- */
NK_AVX2 static void vec_dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static const nk_kernel_set g_avx2 = {
    .vec_dot = {
        [NK_TYPE_F32] = vec_dot_f32,
    },
};

const nk_kernel_set *nk_kernels_avx2(void) {
    return &g_avx2;
}

#else
const nk_kernel_set *nk_kernels_avx2(void) {
    static const nk_kernel_set none;
    return &none;
}
#endif

/*
 * avx512.c: vec_dot kernels for AVX-512 (F, BW, VL, DQ) with VNNI (vpdpbusd).
 *
 * Like avx2.c: per-function target attributes, run only after nk_tensor_init has
 * checked the CPU (nk_isa_supported(NK_ISA_AVX512)); types without a kernel here
 * fall back to the AVX2 one.
 */
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define NK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

/* ---- F32 ---- */
NK_AVX512 static void vec_dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    if (i < n) {   /* masked tail: up to 31 more */
        for (; i < n; i += 16) {
            __mmask16 m = (n - i) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
        }
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static const nk_kernel_set g_avx512 = {
    .vec_dot = {
        [NK_TYPE_F32] = vec_dot_f32,
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

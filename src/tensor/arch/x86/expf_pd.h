/*
 * expf_pd.h: glibc's expf expression in double, 8 lanes at a time, shared by the
 * SwiGLU kernel (glu_avx512.c, every input) and the attention's softmax (attn_tile.c,
 * inputs in [-103, 0]). Include only inside an x86 guard.
 *
 * glibc (2.27 on; the FMA build __expf_fma it selects on every CPU these kernels run
 * on) computes expf(x) as one double expression rounded to float once: with N = 32,
 *   z = fma(N/ln2, x, 0x1.8p52)          (k = round(x N/ln2) in z's low bits)
 *   r = fma(N/ln2, x, -(z - 0x1.8p52))   (x N/ln2 - k, |r| <= 1/2)
 *   s = 2^(k/N)                          (T[k mod N] plus k's high bits in the exponent)
 *   y = fma(fma(r, C0, C1), r*r, fma(r, C2, 1)) * s
 * nk_exp_pd is that expression operation for operation (the same double roundings, so
 * the same float once converted); C0..C2 and N/ln2 are glibc's coefficients. Callers
 * check it against the C library's expf at first use.
 */
#ifndef NK_EXPF_PD_H
#define NK_EXPF_PD_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* T[i] = bits(2^(i/32)) - (i << 47), glibc's table */
static inline void nk_exp_tab_fill(uint64_t tab[32]) {
    for (int i = 0; i < 32; i++) {
        const double t = (double)exp2l((long double)i / 32.0L);
        uint64_t b;
        memcpy(&b, &t, 8);
        tab[i] = b - ((uint64_t)i << 47);
    }
}

/* the expression for 8 doubles; tab: the 32 entries as four vectors */
__attribute__((target("avx512f,avx512dq,avx2,fma"), always_inline)) static inline __m512d nk_exp_pd(__m512d x,
                                                                                                   const __m512d *tab) {
    const __m512d inv_ln2n = _mm512_set1_pd(0x1.71547652b82fep+5), shift = _mm512_set1_pd(0x1.8p52);
    const __m512d z = _mm512_fmadd_pd(inv_ln2n, x, shift);
    const __m512i ki = _mm512_castpd_si512(z);
    const __m512d r = _mm512_fmsub_pd(inv_ln2n, x, _mm512_sub_pd(z, shift));
    /* T[ki mod 32]: two 16-entry lookups, bit 4 picks */
    const __m512d t_lo = _mm512_permutex2var_pd(tab[0], ki, tab[1]), t_hi = _mm512_permutex2var_pd(tab[2], ki, tab[3]);
    const __m512d t = _mm512_mask_mov_pd(t_lo, _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), t_hi);
    const __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(t), _mm512_slli_epi64(ki, 47)));
    const __m512d y0 = _mm512_fmadd_pd(r, _mm512_set1_pd(0x1.c6af84b912394p-20), _mm512_set1_pd(0x1.ebfce50fac4f3p-13));
    const __m512d y1 = _mm512_fmadd_pd(r, _mm512_set1_pd(0x1.62e42ff0c52d6p-6), _mm512_set1_pd(1.0));
    return _mm512_mul_pd(_mm512_fmadd_pd(y0, _mm512_mul_pd(r, r), y1), s);
}

#endif

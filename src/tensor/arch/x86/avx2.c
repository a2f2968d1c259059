/*
 * avx2.c: vec_dot kernels and activation quantizers for AVX2 + FMA + F16C.
 *
 * Every function carries its own target attribute, so this file compiles into a
 * generic x86-64 binary and the code only runs after nk_tensor_init (or a test) has
 * checked the CPU with nk_isa_supported(NK_ISA_AVX2). The quantized kernels come
 * from kernels_256.h with the maddubs/madd form of the u8 x s8 dot product.
 * Integer sums equal the reference's exactly; only float accumulation order
 * differs (bounds in tests/tensor/test_simd.c).
 */
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define NK_TGT __attribute__((target("avx2,fma,f16c")))
#define NK_FN(name) name##_avx2

#define NK_DOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define NK_DOT_SC(u, s, a, b) \
    _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), \
                      _mm256_set_m128i(_mm_set1_epi16((short)(b)), _mm_set1_epi16((short)(a))))

/* byte i = 0xFF iff bit i of qh: spread byte i/8 of qh to byte i, test bit i%8 */
NK_TGT static inline __m256i bits32_avx2(uint32_t qh) {
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
        _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}
#define NK_BITS32(qh) bits32_avx2(qh)

#include "kernels_256.h"

/* ---- F32 ---- */
NK_TGT static void vec_dot_f32_avx2(int n, float *s, const void *vx, const void *vy) {
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
    float sum = hsum8_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static const nk_kernel_set g_avx2 = {
    .vec_dot = {
        [NK_TYPE_F32] = vec_dot_f32_avx2,   [NK_TYPE_F16] = vec_dot_f16_avx2,
        [NK_TYPE_BF16] = vec_dot_bf16_avx2,
        [NK_TYPE_Q4_0] = vec_dot_q4_0_avx2, [NK_TYPE_Q4_1] = vec_dot_q4_1_avx2,
        [NK_TYPE_Q5_0] = vec_dot_q5_0_avx2, [NK_TYPE_Q5_1] = vec_dot_q5_1_avx2,
        [NK_TYPE_Q8_0] = vec_dot_q8_0_avx2,
        [NK_TYPE_Q2_K] = vec_dot_q2_K_avx2, [NK_TYPE_Q3_K] = vec_dot_q3_K_avx2,
        [NK_TYPE_Q4_K] = vec_dot_q4_K_avx2, [NK_TYPE_Q5_K] = vec_dot_q5_K_avx2,
        [NK_TYPE_Q6_K] = vec_dot_q6_K_avx2,
    },
    .from_float = {
        [NK_TYPE_Q8_0] = quant_q8_0_avx2, [NK_TYPE_Q8_1] = quant_q8_1_avx2,
        [NK_TYPE_Q8_K] = quant_q8_K_avx2,
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

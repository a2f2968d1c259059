/*
 * attn_query.c: the per-query attention path's x86 helpers (attention.c's attn_one:
 * prompts the tiled kernels do not take, f32 caches, odd head sizes): a V row
 * accumulated 8 lanes at a time with AVX2/FMA/F16C, the f16 scores of one query
 * against a run of cache rows with AVX-512, and f32 -> f16 rows with F16C. Each
 * function has the scalar description's arithmetic in the same order (F16C rounds to
 * nearest even as nk_fp32_to_fp16 does; FMA is fused as fmaf), so the bits do not
 * depend on which ran. attention.c calls them only when the tensor layer picked an
 * AVX2 (or AVX-512) level, which implies AVX2, FMA and F16C.
 */
#include "tensor/attn_plan.h"
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>

#define Q_TGT __attribute__((target("avx2,fma,f16c")))
#define Q_TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

Q_TGT void nk_attn_q_vmad_plain_f16(int n, float *acc, const uint16_t *h, float p) {
    const __m256 vp = _mm256_set1_ps(p);
    int d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d)));
        _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(x, vp, _mm256_loadu_ps(acc + d)));
    }
    for (; d < n; d++) acc[d] = fmaf(nk_fp16_to_fp32(h[d]), p, acc[d]);
}

Q_TGT void nk_attn_q_vmad_flash_f16(int n, float *acc, const uint16_t *h, float ms, float w) {
    const __m256 vms = _mm256_set1_ps(ms), vw = _mm256_set1_ps(w);
    int d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 a = _mm256_loadu_ps(acc + d);
        if (ms != 1.0f) a = _mm256_mul_ps(a, vms);
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d)));
        a = _mm256_fmadd_ps(x, vw, a);
        _mm256_storeu_ps(acc + d, a);
    }
    for (; d < n; d++) {
        if (ms != 1.0f) acc[d] = acc[d] * ms;
        acc[d] = fmaf(nk_fp16_to_fp32(h[d]), w, acc[d]);
    }
}

/* Scores of one f16 query against n_kv cache rows: the arithmetic of the AVX-512 F16
 * vec_dot (two 16-lane accumulators over 32-element steps, then the lane sum), with
 * the query converted once instead of per row. NQ = hd / 16 (even). */
Q_TGT512 static inline __attribute__((always_inline)) void scores_f16_512(const int NQ, int n_kv, const uint16_t *qh,
                                                                         const uint8_t *kb, size_t k_row, float scale,
                                                                         float *scores) {
    __m512 q[16];
    for (int i = 0; i < NQ; i++) q[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(qh + 16 * i)));
    for (int j = 0; j < n_kv; j++) {
        const uint16_t *k = (const uint16_t *)(kb + (size_t)j * k_row);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int i = 0; i < NQ; i += 2) {
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + 16 * i))), q[i], a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + 16 * i + 16))), q[i + 1], a1);
        }
        scores[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
    }
}

Q_TGT512 bool nk_attn_q_scores_f16(int hd, int n_kv, const uint16_t *qh, const uint8_t *kb, size_t k_row, float scale,
                                   float *scores) {
    switch (hd) {
    case 64: scores_f16_512(4, n_kv, qh, kb, k_row, scale, scores); return true;
    case 128: scores_f16_512(8, n_kv, qh, kb, k_row, scale, scores); return true;
    case 256: scores_f16_512(16, n_kv, qh, kb, k_row, scale, scores); return true;
    default: return false;
    }
}

Q_TGT void nk_attn_q_f32_to_f16(const float *x, uint16_t *h, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = nk_fp32_to_fp16(x[i]);
}
#endif

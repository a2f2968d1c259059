/*
 * attn_dec.c: decoding at depth, one token per sequence against a long cache (f16,
 * q8_0 and q4_0 caches, AVX-512): split by KV heads, or over the cache length.
 */
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "tensor/arch/x86/attn_avx512.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- decoding at depth: the cache streamed in position order (f16 cache, AVX-512) ----
 *
 * One query token over a long cache is a tall, thin problem: a few query rows per KV
 * head against thousands of positions, bound by reading K and V once. A task is a run
 * of consecutive KV heads (dec_plan) over all the positions the token sees, or all the
 * heads over one piece of them (below), walked in blocks of 16 positions: for each
 * block the K rows of the task's heads (one contiguous stretch of every cache row) and
 * then their V rows, so each thread streams its own part of the cache in order, in 2
 * MB pages (session.c), with software prefetch ahead. Per block: for each KV head its
 * query rows' 16 scores (the F16 vec_dot's arithmetic, tile_scores' reduction tree,
 * each K row read from the cache and converted once for two query rows: no f32 copy of
 * K), the online softmax of the 16 positions at once (the running max as a prefix
 * scan); then the exponentials of every row of the task in one pass, the sums in
 * position order (four rows' chains at once), and per KV head the V accumulation in
 * f32 as the scalar description (v_mad_flash: acc = acc * ms when ms != 1, then fma(v,
 * w, acc); the group's rows share each V load).
 * Blocks never straddle a piece's end (ops.h: the positions cut at multiples of
 * NK_ATTN_SPLIT, each piece its own online softmax, the pieces merged in position
 * order), so every row's arithmetic is the description's: the bits are those of the
 * tiled and per-query paths and depend neither on the plan nor on the thread count. */
#define DEC_B 16
#ifndef DEC_AHEAD
#define DEC_AHEAD 4   /* blocks prefetched ahead */
#endif
#ifndef DEC_PF
#define DEC_PF _MM_HINT_T0   /* L1: on this machine T1 was no better */
#endif

/* The F16 vec_dot's two accumulators (added, before the lane sum) for RB query rows
 * (f32 holding f16 values, rows q_stride floats apart) against one f16 K row: the K
 * row is converted once for all RB rows (tile_dot's arithmetic on tile_kf's floats). */
TILE_INLINE void dec_dot_rows(const int NQ, const int RB, const float *q, size_t q_stride, const uint16_t *k,
                              __m512 *d) {
    __m512 a0[2], a1[2];
    TILE_UNROLL
    for (int r = 0; r < RB; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    TILE_UNROLL
    for (int i = 0; i < NQ; i += 2) {
        const __m512 k0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + 16 * i)));
        const __m512 k1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + 16 * i + 16)));
        TILE_UNROLL
        for (int r = 0; r < RB; r++) {
            a0[r] = _mm512_fmadd_ps(k0, _mm512_loadu_ps(q + (size_t)r * q_stride + 16 * i), a0[r]);
            a1[r] = _mm512_fmadd_ps(k1, _mm512_loadu_ps(q + (size_t)r * q_stride + 16 * i + 16), a1[r]);
        }
    }
    TILE_UNROLL
    for (int r = 0; r < RB; r++) d[r] = _mm512_add_ps(a0[r], a1[r]);
}

/* The 16 scores (positions in lanes, scaled) of RB (1 or 2) query rows against the f16
 * K rows kb + j * k_row, j < 16 (rows j >= n are not read: their lanes are garbage):
 * tile_scores' arithmetic (the lane-sum tree of 16 positions at once) on K read
 * straight from the cache, each K row converted once for the RB rows. */
TILE_INLINE void dec_scores_rows(const int NQ, const int RB, const float *q, size_t q_stride, const uint8_t *kb,
                                 size_t k_row, int n, int pf_n, float scale, float *out) {
    __m512 z[2][4];
    TILE_UNROLL
    for (int g = 0; g < 4; g++) {
        __m512 d[4][2];
        TILE_UNROLL
        for (int p = 0; p < 4; p++) {
            const int j = NK_MIN(4 * g + p, n - 1);
            if (4 * g + p < pf_n)   /* the same K columns DEC_AHEAD blocks on */
                TILE_UNROLL
                for (int i = 0; i < NQ; i += 2)
                    _mm_prefetch((const char *)(kb + (size_t)(4 * g + p + DEC_AHEAD * DEC_B) * k_row) + 32 * i, DEC_PF);
            dec_dot_rows(NQ, RB, q, q_stride, (const uint16_t *)(kb + (size_t)j * k_row), d[p]);
        }
        TILE_UNROLL
        for (int r = 0; r < RB; r++)
            z[r][g] = tile_pair2(tile_pair1(d[0][r], d[1][r]), tile_pair1(d[2][r], d[3][r]));
    }
    TILE_UNROLL
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out + 16 * r, _mm512_mul_ps(tile_tree_last(z[r]), _mm512_set1_ps(scale)));
    }
}

/* scores of the G query rows of one KV head (two at a time), out[g * 16 + j] */
#define DEC_SCORES(NQ)                                                                                             \
    for (; g + 2 <= G; g += 2)                                                                                     \
        dec_scores_rows(NQ, 2, q + (size_t)g * q_stride, q_stride, kb, k_row, n, g ? 0 : pf_n, scale, out + 16 * g); \
    if (g < G) dec_scores_rows(NQ, 1, q + (size_t)g * q_stride, q_stride, kb, k_row, n, g ? 0 : pf_n, scale, out + 16 * g); \
    break;
ATTN_TGT512 static void dec_scores_any(int hd_k, int G, const float *q, size_t q_stride, const uint8_t *kb,
                                       size_t k_row, int n, int pf_n, float scale, float *out) {
    int g = 0;
    switch (hd_k / 16) {
    case 2: DEC_SCORES(2)
    case 4: DEC_SCORES(4)
    case 6: DEC_SCORES(6)
    case 8: DEC_SCORES(8)
    case 10: DEC_SCORES(10)
    case 12: DEC_SCORES(12)
    case 14: DEC_SCORES(14)
    default: DEC_SCORES(16)
    }
}
#undef DEC_SCORES

/* lanes shifted up by k (lane i takes lane i - k), the first k lanes fill */
TILE_INLINE __m512 dec_shift(__m512 x, int k, __m512 fill) {
    const __m512i idx = _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(k));
    return _mm512_mask_permutexvar_ps(fill, (__mmask16)(0xFFFFu << k), idx, x);
}

/* The online softmax of one row over n (<= 16) positions with scores x (lanes >= n
 * unused), before the exponentials: the scalar steps "if (s > M) { ms = expf(M - s);
 * M = s; } else w = expf(s - M)" with the running max before each position taken from
 * a prefix scan (max_ps(a, b) is "a > b ? a : b", the scalar update itself). Writes
 * the exponents (M - s or s - M; 0 in lanes >= n) to arg, updates M, returns the
 * lanes where ms is the exponential (a new max). */
TILE_INLINE __mmask16 dec_softmax_arg(__m512 x, int n, float *M, float *arg) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __mmask16 valid = (__mmask16)((1u << n) - 1);
    x = _mm512_mask_mov_ps(ninf, valid, x);
    __m512 incl = x;   /* running max of the block through each lane */
    incl = _mm512_max_ps(incl, dec_shift(incl, 1, ninf));
    incl = _mm512_max_ps(incl, dec_shift(incl, 2, ninf));
    incl = _mm512_max_ps(incl, dec_shift(incl, 4, ninf));
    incl = _mm512_max_ps(incl, dec_shift(incl, 8, ninf));
    const __m512 m0 = _mm512_set1_ps(*M);
    /* the running max before each position: the block's prefix, then the old max */
    const __m512 prev = _mm512_max_ps(dec_shift(incl, 1, ninf), m0);
    const __mmask16 gt = valid & _mm512_cmp_ps_mask(x, prev, _CMP_GT_OQ);
    _mm512_storeu_ps(arg, _mm512_maskz_mov_ps(valid, _mm512_mask_sub_ps(_mm512_sub_ps(x, prev), gt, prev, x)));
    float last[16];
    _mm512_storeu_ps(last, _mm512_max_ps(incl, m0));
    *M = last[15];
    return gt;
}

/* The V accumulation of P rows over positions 0..n-1 of a block, D zmm of dims (16 *
 * D): tile_v's steps with each row's ms and w in its own 16 floats (ms + 16 p) and
 * every position valid. rescale: per row, the positions whose ms != 1. Each step of a
 * row is a chain (an fma) that cannot be reordered, so a call keeps P * D = 16 chains
 * in flight. */
TILE_INLINE void dec_v(const int P, const int D, int n, int pf_n, const uint8_t *vb, int d0, size_t v_row,
                       const float *ms, const float *w, const uint32_t *rescale, float *acc, size_t acc_stride) {
    __m512 a[4][8];
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < D; i++) a[p][i] = _mm512_loadu_ps(acc + (size_t)p * acc_stride + 16 * i);
    uint32_t any = 0;
    TILE_UNROLL
    for (int p = 0; p < P; p++) any |= rescale[p];
    for (int j = 0; j < n; j++) {
        __m512 v[8];
        const uint16_t *h = (const uint16_t *)(vb + (size_t)j * v_row) + d0;
        TILE_UNROLL
        for (int i = 0; i < D; i++) v[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + 16 * i)));
        if (j < pf_n)   /* the same V columns DEC_AHEAD blocks on */
            TILE_UNROLL
            for (int i = 0; i < D; i += 2)
                _mm_prefetch((const char *)(h + 16 * i) + (size_t)(DEC_AHEAD * DEC_B) * v_row, DEC_PF);
        if (any >> j & 1)
            TILE_UNROLL
            for (int p = 0; p < P; p++)
                if (rescale[p] >> j & 1) {
                    const __m512 s = _mm512_set1_ps(ms[16 * p + j]);
                    TILE_UNROLL
                    for (int i = 0; i < D; i++)
                        a[p][i] = _mm512_mul_ps(a[p][i], s);
                }
        TILE_UNROLL
        for (int p = 0; p < P; p++) {
            const __m512 s = _mm512_set1_ps(w[16 * p + j]);
            TILE_UNROLL
            for (int i = 0; i < D; i++)
                a[p][i] = _mm512_fmadd_ps(v[i], s, a[p][i]);
        }
    }
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < D; i++) _mm512_storeu_ps(acc + (size_t)p * acc_stride + 16 * i, a[p][i]);
}

/* D = 8 (128 dims) with up to 2 rows, or D = 4 (64 dims) with up to 4 */
ATTN_TGT512 static void dec_v_any(int P, int D, int n, int pf_n, const uint8_t *vb, int d0, size_t v_row,
                                  const float *ms, const float *w, const uint32_t *rescale, float *acc, size_t acc_stride) {
    if (D == 8) {
        if (P == 1) dec_v(1, 8, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
        else dec_v(2, 8, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
    } else if (P == 1) dec_v(1, 4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
    else if (P == 2) dec_v(2, 4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
    else if (P == 3) dec_v(3, 4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
    else dec_v(4, 4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
}

/* ---- decoding at depth with a Q8_0 or Q4_0 cache (decq_*) ----
 *
 * The same task and block structure as the f16 cache's (dec_task), with the quantized
 * cache's arithmetic, that of the tiled and per-query paths: the query quantized to
 * Q8_0 by the installed from_float, each score by the installed Q8_0 / Q4_0 vec_dot's
 * float steps (kernels_256.h: per block an exact integer dot, d = d_k * d_q, acc =
 * fma(d, dot, acc) with blocks 0, 2, 4, .. in one 8-lane accumulator and 1, 3, 5, .. in
 * the other, then hsum8(acc0 + acc1)), V rows dequantized (code * d, exact in f32) and
 * an f32 accumulator acc = acc * ms + v * w, each product rounded. Here a pair of
 * blocks fills one zmm, [acc0 | acc1]: hsum8(acc0 + acc1) then adds the lanes in the
 * order of _mm512_reduce_add_ps (l + l+8, + l+4, + l+2, + l+1), which is the tree
 * dec_scores_rows already evaluates for 16 positions at once, so the scores keep the
 * vec_dot's bits. The integer dots: Q8_0 K as signed bytes against the query codes
 * plus 128 as unsigned bytes, minus 128 * (the K codes' sums); Q4_0 K as unsigned
 * nibbles against the signed query codes, minus 8 * (the query codes' sums) (both
 * exact integer identities, one vpdpbusd per pair of blocks and query row).
 *
 * Per query row (decq_prep, decq_row_bytes apart): the codes (Q8_0 K: plus 128), then
 * per pair of blocks the query scales [d(b) x8 | d(b+1) x8], then (Q4_0) per pair the
 * correction -8 * (sum of each lane's 4 codes). */

ATTN_TGT512 static void decq_prep(bool q4, const float *q, int hd_k, uint8_t *dst) {
    nk_block_q8_0 blk[8];   /* hd_k <= 256 (tile_ok) */
    nk_type_get(NK_TYPE_Q8_0)->from_float(q, blk, hd_k);
    const int nb = hd_k / 32, np = (nb + 1) / 2;
    float *qd = (float *)(dst + hd_k);
    int32_t *corr = (int32_t *)(dst + hd_k + 64 * (size_t)np);
    memset(qd, 0, 64 * (size_t)np * (q4 ? 2 : 1));
    for (int b = 0; b < nb; b++) {
        const float d = nk_fp16_to_fp32(blk[b].d);
        for (int i = 0; i < 32; i++) dst[32 * b + i] = (uint8_t)(q4 ? blk[b].qs[i] : blk[b].qs[i] + 128);
        for (int l = 0; l < 8; l++) {
            qd[16 * (b / 2) + 8 * (b % 2) + l] = d;
            if (q4)
                corr[16 * (b / 2) + 8 * (b % 2) + l] =
                    -8 * (blk[b].qs[4 * l] + blk[b].qs[4 * l + 1] + blk[b].qs[4 * l + 2] + blk[b].qs[4 * l + 3]);
        }
    }
}

/* The vec_dot's accumulators [acc0 | acc1] of RB query rows (rows q_stride bytes apart,
 * laid out by decq_prep) against one K head row of NB blocks. */
TILE_INLINE void decq_dot_rows(const int NB, const bool Q4, const int RB, const uint8_t *q, size_t q_stride,
                               const uint8_t *k, __m512 *out) {
    const int bsz = Q4 ? 18 : 34, np = (NB + 1) / 2;
    TILE_UNROLL
    for (int r = 0; r < RB; r++) out[r] = _mm512_setzero_ps();
    TILE_UNROLL
    for (int b = 0; b < NB; b += 2) {
        const bool two = b + 1 < NB;
        const uint8_t *k0 = k + (size_t)b * bsz, *k1 = k0 + bsz;
        uint16_t d0, d1 = 0;
        memcpy(&d0, k0, 2);
        if (two) memcpy(&d1, k1, 2);
        const __m512 kd = _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16((short)d1), _mm_set1_epi16((short)d0)));
        __m512i codes, src = _mm512_setzero_si512();
        if (Q4) {
            const __m128i x0 = _mm_loadu_si128((const __m128i *)(k0 + 2));
            const __m128i x1 = two ? _mm_loadu_si128((const __m128i *)(k1 + 2)) : _mm_setzero_si128();
            const __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(x0), x1, 1);
            const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1);
            /* [x0 | x1 | x0 >> 4 | x1 >> 4] -> [x0 | x0 >> 4 | x1 | x1 >> 4]: elements in order */
            codes = _mm512_and_si512(_mm512_shuffle_i64x2(z, z, 0xD8), _mm512_set1_epi8(0x0F));
        } else {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(k0 + 2));
            codes = two ? _mm512_inserti64x4(_mm512_castsi256_si512(x0), _mm256_loadu_si256((const __m256i *)(k1 + 2)), 1)
                        : _mm512_zextsi256_si512(x0);
            src = _mm512_sub_epi32(src, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), codes));
        }
        TILE_UNROLL
        for (int r = 0; r < RB; r++) {
            const uint8_t *qr = q + (size_t)r * q_stride;
            const __m512i qc = _mm512_loadu_si512(qr + 32 * b);
            const __m512i dot = Q4 ? _mm512_dpbusd_epi32(_mm512_loadu_si512(qr + NB * 32 + 64 * (np + b / 2)), codes, qc)
                                   : _mm512_dpbusd_epi32(src, qc, codes);
            const __m512 d = _mm512_mul_ps(kd, _mm512_loadu_ps((const float *)(qr + NB * 32) + 8 * b));
            out[r] = two ? _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(dot), out[r])
                         : _mm512_mask3_fmadd_ps(d, _mm512_cvtepi32_ps(dot), out[r], (__mmask16)0x00FF);
        }
    }
}

/* dec_scores_rows for a quantized cache: the 16 scores of RB (1 or 2) rows */
TILE_INLINE void decq_scores_rows(const int NB, const bool Q4, const int RB, const uint8_t *q, size_t q_stride,
                                  const uint8_t *kb, size_t k_row, int n, int pf_n, float scale, float *out) {
    const int k_head = NB * (Q4 ? 18 : 34);
    __m512 z[2][4];
    TILE_UNROLL
    for (int g = 0; g < 4; g++) {
        __m512 d[4][2];
        TILE_UNROLL
        for (int p = 0; p < 4; p++) {
            const int j = NK_MIN(4 * g + p, n - 1);
            if (4 * g + p < pf_n) {   /* the same K head rows DEC_AHEAD blocks on */
                const char *f = (const char *)(kb + (size_t)(4 * g + p + DEC_AHEAD * DEC_B) * k_row);
                for (int o = 0; o < k_head; o += 64) _mm_prefetch(f + o, DEC_PF);
                _mm_prefetch(f + k_head - 1, DEC_PF);
            }
            decq_dot_rows(NB, Q4, RB, q, q_stride, kb + (size_t)j * k_row, d[p]);
        }
        TILE_UNROLL
        for (int r = 0; r < RB; r++)
            z[r][g] = tile_pair2(tile_pair1(d[0][r], d[1][r]), tile_pair1(d[2][r], d[3][r]));
    }
    TILE_UNROLL
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out + 16 * r, _mm512_mul_ps(tile_tree_last(z[r]), _mm512_set1_ps(scale)));
    }
}

#define DECQ_SCORES(NB, Q4)                                                                                         \
    for (; g + 2 <= G; g += 2)                                                                                      \
        decq_scores_rows(NB, Q4, 2, q + (size_t)g * q_stride, q_stride, kb, k_row, n, g ? 0 : pf_n, scale, out + 16 * g); \
    if (g < G) decq_scores_rows(NB, Q4, 1, q + (size_t)g * q_stride, q_stride, kb, k_row, n, g ? 0 : pf_n, scale, out + 16 * g); \
    break;
#define DECQ_SCORES_NB(Q4)                                                                                          \
    switch (hd_k / 32) {                                                                                            \
    case 1: DECQ_SCORES(1, Q4)                                                                                      \
    case 2: DECQ_SCORES(2, Q4)                                                                                      \
    case 3: DECQ_SCORES(3, Q4)                                                                                      \
    case 4: DECQ_SCORES(4, Q4)                                                                                      \
    case 5: DECQ_SCORES(5, Q4)                                                                                      \
    case 6: DECQ_SCORES(6, Q4)                                                                                      \
    case 7: DECQ_SCORES(7, Q4)                                                                                      \
    default: DECQ_SCORES(8, Q4)                                                                                     \
    }
/* scores of the G query rows of one KV head (two at a time), out[g * 16 + j] */
ATTN_TGT512 static void decq_scores_q8(int hd_k, int G, const uint8_t *q, size_t q_stride, const uint8_t *kb,
                                       size_t k_row, int n, int pf_n, float scale, float *out) {
    int g = 0;
    DECQ_SCORES_NB(false)
}
ATTN_TGT512 static void decq_scores_q4(int hd_k, int G, const uint8_t *q, size_t q_stride, const uint8_t *kb,
                                       size_t k_row, int n, int pf_n, float scale, float *out) {
    int g = 0;
    DECQ_SCORES_NB(true)
}
#undef DECQ_SCORES_NB
#undef DECQ_SCORES

/* dec_v for a quantized cache: each V row's D * 16 dims from d0 dequantized once for the
 * P rows (code * d, nk_dequant's product: q8_16 and q4_16 with each block's scale
 * converted once), then per row acc = acc * ms
 * where ms != 1 and acc = acc + v * w: the tiled path's acc * ms + v * w (w is 1 where ms
 * is not), the two products rounded, never contracted (separate intrinsics). */
TILE_INLINE void decq_v(const int P, const int D, const bool Q4, int n, int pf_n, const uint8_t *vb, int d0,
                        size_t v_row, const float *ms, const float *w, const uint32_t *rescale, float *acc,
                        size_t acc_stride) {
    __m512 a[4][8];
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < D; i++) a[p][i] = _mm512_loadu_ps(acc + (size_t)p * acc_stride + 16 * i);
    uint32_t any = 0;
    TILE_UNROLL
    for (int p = 0; p < P; p++) any |= rescale[p];
    const int bsz = Q4 ? 18 : 34, b0 = d0 / 32 * bsz, b1 = (d0 + 16 * D) / 32 * bsz;
    for (int j = 0; j < n; j++) {
        const uint8_t *row = vb + (size_t)j * v_row;
        __m512 v[8];
        TILE_UNROLL
        for (int i = 0; i < D; i += 2) {   /* a block: its scale converted once */
            const uint8_t *blk = row + (size_t)((d0 + 16 * i) / 32) * bsz;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16((short)dh));
            __m512i c0, c1;
            if (Q4) {
                const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
                c0 = _mm512_sub_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x0F)), _mm512_set1_epi32(8));
                c1 = _mm512_sub_epi32(_mm512_srli_epi32(c, 4), _mm512_set1_epi32(8));
            } else {
                c0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
                c1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)));
            }
            v[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(c0), d);
            v[i + 1] = _mm512_mul_ps(_mm512_cvtepi32_ps(c1), d);
        }
        if (j < pf_n) {   /* the same V blocks DEC_AHEAD blocks on */
            const char *f = (const char *)row + (size_t)(DEC_AHEAD * DEC_B) * v_row;
            for (int o = b0; o < b1; o += 64) _mm_prefetch(f + o, DEC_PF);
            _mm_prefetch(f + b1 - 1, DEC_PF);
        }
        if (any >> j & 1)
            TILE_UNROLL
            for (int p = 0; p < P; p++)
                if (rescale[p] >> j & 1) {
                    const __m512 s = _mm512_set1_ps(ms[16 * p + j]);
                    TILE_UNROLL
                    for (int i = 0; i < D; i++) a[p][i] = _mm512_mul_ps(a[p][i], s);
                }
        TILE_UNROLL
        for (int p = 0; p < P; p++) {
            const __m512 s = _mm512_set1_ps(w[16 * p + j]);
            TILE_UNROLL
            for (int i = 0; i < D; i++) a[p][i] = _mm512_add_ps(a[p][i], _mm512_mul_ps(v[i], s));
        }
    }
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < D; i++) _mm512_storeu_ps(acc + (size_t)p * acc_stride + 16 * i, a[p][i]);
}

#define DECQ_V_ANY(Q4)                                                                                             \
    if (D == 8) {                                                                                                  \
        if (P == 1) decq_v(1, 8, Q4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);                     \
        else decq_v(2, 8, Q4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);                            \
    } else if (P == 1) decq_v(1, 4, Q4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);                  \
    else if (P == 2) decq_v(2, 4, Q4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);                    \
    else if (P == 3) decq_v(3, 4, Q4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);                    \
    else decq_v(4, 4, Q4, n, pf_n, vb, d0, v_row, ms, w, rescale, acc, acc_stride);
ATTN_TGT512 static void decq_v_q8(int P, int D, int n, int pf_n, const uint8_t *vb, int d0, size_t v_row,
                                  const float *ms, const float *w, const uint32_t *rescale, float *acc, size_t acc_stride) {
    DECQ_V_ANY(false)
}
ATTN_TGT512 static void decq_v_q4(int P, int D, int n, int pf_n, const uint8_t *vb, int d0, size_t v_row,
                                  const float *ms, const float *w, const uint32_t *rescale, float *acc, size_t acc_stride) {
    DECQ_V_ANY(true)
}
#undef DECQ_V_ANY

/* A block of DEC_B positions (b0.., n of them) for the query rows of KV heads kv0..kv1-1
 * (R rows, queries qf q_stride bytes apart), in four steps. dec_blk_k: the scaled
 * scores of every row into E ([R][16]; K read once per KV head from the cache). */
ATTN_TGT512 static void dec_blk_k(const nk_attn *a, int kv0, int kv1, const void *qf, size_t q_stride, int b0, int n,
                                  int pf_n, float *E) {
    const int group = a->n_head / a->n_head_kv, hd_k = a->hd_k;
    const bool quant = a->kv_type != NK_TYPE_F16, q4 = a->kv_type == NK_TYPE_Q4_0;
    const size_t k_head = nk_row_size(a->kv_type, hd_k), k_row = (size_t)a->n_head_kv * k_head;
    const uint8_t *kblk = (const uint8_t *)a->k + (size_t)b0 * k_row;
    for (int kvh = kv0; kvh < kv1; kvh++) {
        const int r0 = (kvh - kv0) * group;
        if (quant)
            (q4 ? decq_scores_q4 : decq_scores_q8)(hd_k, group, (const uint8_t *)qf + (size_t)r0 * q_stride, q_stride,
                                                  kblk + (size_t)kvh * k_head, k_row, n, pf_n, a->scale, E + 16 * r0);
        else
            dec_scores_any(hd_k, group, (const float *)qf + (size_t)r0 * hd_k, (size_t)hd_k, kblk + (size_t)kvh * k_head,
                           k_row, n, pf_n, a->scale, E + 16 * r0);
    }
}

/* dec_blk_arg: the softmax exponents of the R rows' scores E, in place, with each row's
 * running max M (M[r * m_stride]), and the lanes where the exponential is ms (a new
 * max: gts). Per row independent of the others, so where it runs does not matter. */
ATTN_TGT512 static void dec_blk_arg(int R, int n, float *M, size_t m_stride, float *E, uint32_t *gts) {
    for (int r = 0; r < R; r++)
        gts[r] = dec_softmax_arg(_mm512_loadu_ps(E + 16 * r), n, M + (size_t)r * m_stride, E + 16 * r);
}

/* dec_blk_soft: the exponentials of E in one pass, then per row ms, w ([R][16] each; ms
 * may be E itself) and the positions that rescale (resc), and the sums S = S * ms + w in
 * position order (S[r * s_stride]). */
ATTN_TGT512 static void dec_blk_soft(int R, int n, float *E, const uint32_t *gts, float *S, size_t s_stride, float *ms,
                                     float *w, uint32_t *resc) {
    nk_attn_tile_expf(E, 16 * R);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __mmask16 valid = (__mmask16)((1u << n) - 1);
    for (int r = 0; r < R; r++) {
        const __m512 e = _mm512_loadu_ps(E + 16 * r);
        const __m512 vms = _mm512_mask_mov_ps(one, (__mmask16)gts[r], e), vw = _mm512_mask_mov_ps(e, (__mmask16)gts[r], one);
        _mm512_storeu_ps(ms + 16 * r, vms);
        _mm512_storeu_ps(w + 16 * r, vw);
        resc[r] = (uint32_t)(valid & _mm512_cmp_ps_mask(vms, one, _CMP_NEQ_UQ));
    }
    /* the sums S = S * ms + w in position order, four rows' chains interleaved in
     * registers (ms == 1 multiplies exactly, so a row without a rescale in the
     * block only adds) */
    for (int r0 = 0; r0 < R; r0 += 4) {
        const int nr = NK_MIN(4, R - r0);
        float *s0 = S + (size_t)r0 * s_stride;
        float S0 = s0[0], S1 = 0, S2 = 0, S3 = 0;
        if (nr > 1) S1 = s0[s_stride];
        if (nr > 2) S2 = s0[2 * s_stride];
        if (nr > 3) S3 = s0[3 * s_stride];
        const float *m0 = ms + 16 * r0, *w0 = w + 16 * r0;
        uint32_t any = 0;
        for (int r = r0; r < r0 + nr; r++) any |= resc[r];
        if (any) {
            /* the product and the sum as separate statements: clang contracts
             * "S * m + w" within one expression into an fma (-ffp-contract=on),
             * which the scalar description and the tiled path do not */
            for (int j = 0; j < n; j++) {
                const float p0 = S0 * m0[j], p1 = S1 * m0[16 + j], p2 = S2 * m0[32 + j], p3 = S3 * m0[48 + j];
                S0 = p0 + w0[j];
                S1 = p1 + w0[16 + j];
                S2 = p2 + w0[32 + j];
                S3 = p3 + w0[48 + j];
            }
        } else {
            for (int j = 0; j < n; j++) {
                S0 = S0 + w0[j];
                S1 = S1 + w0[16 + j];
                S2 = S2 + w0[32 + j];
                S3 = S3 + w0[48 + j];
            }
        }
        s0[0] = S0;
        if (nr > 1) s0[s_stride] = S1;
        if (nr > 2) s0[2 * s_stride] = S2;
        if (nr > 3) s0[3 * s_stride] = S3;
    }
}

/* The second half: the V accumulation of the block per KV head (its G rows share each V
 * load; dec_v_any's row blocks as even as they can be), accumulators acc + r * hf. */
ATTN_TGT512 static void dec_blk_v(const nk_attn *a, int kv0, int kv1, int b0, int n, int pf_n, const float *ms,
                                  const float *w, const uint32_t *resc, float *acc, size_t hf) {
    const int group = a->n_head / a->n_head_kv, hd_v = a->hd_v;
    const bool quant = a->kv_type != NK_TYPE_F16, q4 = a->kv_type == NK_TYPE_Q4_0;
    const size_t v_head = nk_row_size(a->kv_type, hd_v), v_row = (size_t)a->n_head_kv * v_head;
    const uint8_t *vblk = (const uint8_t *)a->v + (size_t)b0 * v_row;
    const int D = hd_v % 128 == 0 ? 8 : 4, pmax = D == 8 ? 2 : 4;
    const int n_blk = (group + pmax - 1) / pmax;
    for (int kvh = kv0; kvh < kv1; kvh++) {
        const int rk = (kvh - kv0) * group;
        float *acc0 = acc + (size_t)rk * hf;
        for (int bl = 0, r0 = 0; bl < n_blk; bl++) {
            const int P = (group - r0) / (n_blk - bl);
            for (int d = 0; d < hd_v; d += 16 * D)
                (quant ? (q4 ? decq_v_q4 : decq_v_q8) : dec_v_any)(P, D, n, bl ? 0 : pf_n, vblk + (size_t)kvh * v_head, d, v_row,
                                                                   ms + 16 * (rk + r0), w + 16 * (rk + r0), resc + rk + r0,
                                                                   acc0 + (size_t)r0 * hf + d, hf);
            r0 += P;
        }
    }
}

/* The queries of rows r = 0..R-1 (query heads kv0 * group + r) as the scores take them:
 * rounded to f16 (an f16 cache) or laid out by decq_prep, q_stride bytes apart. */
ATTN_TGT512 static void dec_queries(const nk_attn *a, int kv0, int R, void *qf, size_t q_stride) {
    const int group = a->n_head / a->n_head_kv, hd_k = a->hd_k;
    for (int r = 0; r < R; r++) {
        const float *q = a->q + (size_t)(kv0 * group + r) * (size_t)hd_k;
        if (a->kv_type != NK_TYPE_F16) decq_prep(a->kv_type == NK_TYPE_Q4_0, q, hd_k, (uint8_t *)qf + (size_t)r * q_stride);
        else
            for (int d = 0; d < hd_k; d += 16)
                _mm512_storeu_ps((float *)((uint8_t *)qf + (size_t)r * q_stride) + d, rt_f16_512(_mm512_loadu_ps(q + d)));
    }
}

static size_t dec_q_stride(const nk_attn *a) {
    return a->kv_type != NK_TYPE_F16 ? decq_row_bytes(a->hd_k) : (size_t)a->hd_k * sizeof(float);
}

/* out = acc / S for rows r = 0..R-1 (query heads kv0 * group + r) */
ATTN_TGT512 static void dec_out(const nk_attn *a, int kv0, int R, const float *acc, size_t hf, const float *Sv,
                                size_t s_stride) {
    const int group = a->n_head / a->n_head_kv, hd_v = a->hd_v;
    for (int r = 0; r < R; r++) {
        const float S = Sv[(size_t)r * s_stride];
        float *out = a->out + (size_t)(kv0 * group + r) * (size_t)hd_v;
        const __m512 inv = _mm512_set1_ps(S == 0.0f ? 0.0f : 1.0f / S);
        for (int d = 0; d < hd_v; d += 16)
            _mm512_storeu_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(acc + (size_t)r * hf + d), inv));
    }
}

/* the first position the token sees */
static int dec_lo(const nk_attn *a) { return a->n_swa > 0 ? NK_MAX(0, a->pos0 - a->n_swa + 1) : 0; }

/* the prefetches DEC_AHEAD blocks on: the positions of the block that far ahead */
static int dec_pf_n(const nk_attn *a, int b0) { return NK_MAX(0, NK_MIN(DEC_B, a->pos0 + 1 - (b0 + DEC_AHEAD * DEC_B))); }

/* One piece (ops.h) of rows r < R (query heads kv0 * group + r) over positions
 * [j0, j1), from scratch, block by block: dec_blk_k, dec_blk_arg, dec_blk_soft, then
 * dec_blk_v. st: per row hf floats, the accumulator, then M (at hd_v) and S. */
ATTN_TGT512 static void dec_piece(const nk_attn *a, int kv0, int kv1, const void *qf, size_t q_stride, int j0, int j1,
                                  const tile_ws *t, float *st, size_t hf) {
    const int R = (kv1 - kv0) * (a->n_head / a->n_head_kv), hd_v = a->hd_v;
    for (int r = 0; r < R; r++) {
        float *ph = st + (size_t)r * hf;
        memset(ph, 0, (size_t)hd_v * sizeof(float));
        ph[hd_v] = -INFINITY;
        ph[hd_v + 1] = 0.0f;
    }
    for (int b0 = j0; b0 < j1; b0 += DEC_B) {
        const int n = NK_MIN(DEC_B, j1 - b0), pf_n = dec_pf_n(a, b0);
        dec_blk_k(a, kv0, kv1, qf, q_stride, b0, n, pf_n, t->sc);
        dec_blk_arg(R, n, st + hd_v, hf, t->sc, t->valid);
        dec_blk_soft(R, n, t->sc, t->valid, st + hd_v + 1, hf, t->ms, t->w, t->resc);
        dec_blk_v(a, kv0, kv1, b0, n, pf_n, t->ms, t->w, t->resc, st, hf);
    }
}

/* Task `task` of segment a split by heads (kv0 = task * hpt): its heads' pieces in
 * position order, each merged into the total as it ends. */
ATTN_TGT512 void nk_attn_dec_task(const nk_attn *a, int hpt, int task, void *scratch) {
    const int group = a->n_head / a->n_head_kv, hd_v = a->hd_v;
    const int kv0 = task * hpt, kv1 = NK_MIN(kv0 + hpt, a->n_head_kv), R = (kv1 - kv0) * group;
    const int hd = NK_MAX(a->hd_k, hd_v);
    const size_t hf = dec_head_floats(hd);
    const tile_ws t = tile_carve(scratch, hd);
    /* per query row of the task (at most TILE_RMAX): the total, then the piece */
    float *tot = (float *)((uint8_t *)scratch + tile_bytes(hd));
    float *pc = (float *)((uint8_t *)tot + dec_task_bytes(hd) / 2);
    /* the queries (t.qf: R rows of at most 4 * hd bytes), the exponents and then the
     * exponentials (t.sc), ms and w (t.ms, t.w): [R][16] each */
    const size_t q_stride = dec_q_stride(a);
    dec_queries(a, kv0, R, t.qf, q_stride);
    const int lo = dec_lo(a);
    for (int j0 = lo; j0 <= a->pos0;) {
        const int j1 = NK_MIN(a->pos0 + 1, nk_attn_piece_end(j0));
        dec_piece(a, kv0, kv1, t.qf, q_stride, j0, j1, &t, j0 == lo ? tot : pc, hf);
        if (j0 != lo)
            for (int r = 0; r < R; r++) {
                float *T = tot + (size_t)r * hf;
                const float *P = pc + (size_t)r * hf;
                tile_piece_merge(hd_v, T, T + hd_v, T + hd_v + 1, P, P[hd_v], P[hd_v + 1]);
            }
        j0 = j1;
    }
    dec_out(a, kv0, R, tot, hf, tot + hd_v + 1, hf);
}

/* ---- decoding split over the cache length ----
 *
 * Split by KV heads, each of two threads reads its part of every cache row: 1 KB of
 * every 2 KB for qwen3-0.6b, strided streams the hardware prefetchers follow badly (on
 * this machine, Zen 5 with 2 cores, a plain read of half rows moved 11-13 GB/s where
 * whole rows moved 30-34). And with GQA 4 (llama3.2-1b, the 8B) the arithmetic, not
 * the reading, binds. So a lone one-token segment at depth is split over its length:
 * a task is a run of consecutive pieces (NK_ATTN_SPLIT positions each) of all the
 * query rows, whole cache rows read in position order, and threads take tasks from a
 * queue, so no thread waits for another (session 12, bench_attn from DRAM at 16,384
 * positions: 1.64-1.66 ms per layer against 1.81-1.90 on pairs of threads, K on one
 * and V on the other, for qwen3-0.6b's shape; 1.10 against 1.19-1.32 for
 * llama3.2-1b's). */
ATTN_TGT512 void nk_attn_dec_piece_task(const nk_attn *a, int p0, int p1, float *st, void *scratch) {
    const int hd = NK_MAX(a->hd_k, a->hd_v);
    const size_t hf = dec_head_floats(hd), per = (size_t)a->n_head * hf;
    const tile_ws t = tile_carve(scratch, hd);
    void *qf = (uint8_t *)scratch + tile_bytes(hd);
    const size_t q_stride = dec_q_stride(a);
    dec_queries(a, 0, a->n_head, qf, q_stride);
    const int lo = dec_lo(a), first = lo / NK_ATTN_SPLIT;
    /* the task's first DEC_AHEAD blocks, which no earlier block of this thread
     * prefetched: whole K and V rows from the task's first position */
    const int jf = p0 ? (first + p0) * NK_ATTN_SPLIT : lo, nf = NK_MIN(DEC_AHEAD * DEC_B, a->pos0 + 1 - jf);
    const size_t k_row = (size_t)a->n_head_kv * nk_row_size(a->kv_type, a->hd_k);
    const size_t v_row = (size_t)a->n_head_kv * nk_row_size(a->kv_type, a->hd_v);
    for (int j = 0; j < nf; j++) {
        const char *kr = (const char *)a->k + (size_t)(jf + j) * k_row, *vr = (const char *)a->v + (size_t)(jf + j) * v_row;
        for (size_t o = 0; o < k_row; o += 64) _mm_prefetch(kr + o, DEC_PF);
        for (size_t o = 0; o < v_row; o += 64) _mm_prefetch(vr + o, DEC_PF);
    }
    for (int p = p0; p < p1; p++) {
        const int j0 = p ? (first + p) * NK_ATTN_SPLIT : lo;
        const int j1 = NK_MIN(a->pos0 + 1, (first + p + 1) * NK_ATTN_SPLIT);
        dec_piece(a, 0, a->n_head_kv, qf, q_stride, j0, j1, &t, st + (size_t)(p - p0) * per, hf);
    }
}

/* The n_piece pieces' states of every query row (st: per piece n_head rows of hf
 * floats) merged in position order (ops.h) and divided out into a->out. Per row the
 * running max is a prefix max, so every merge's exponential is known before the first
 * merge: they run 16 at a time (nk_attn_tile_expf, libm's bits), then the sums in
 * order and the accumulators 16 dims at a time (products rounded, then the sum, as
 * nk_attn_piece_merge). */
ATTN_TGT512 void nk_attn_dec_split_merge(const nk_attn *a, const float *st, int n_piece) {
    enum { BATCH = 256 };
    const int hd_v = a->hd_v;
    const size_t hf = dec_head_floats(NK_MAX(a->hd_k, hd_v)), per = (size_t)a->n_head * hf;
    float e[BATCH], accT[256];
    uint8_t gt[BATCH];
    for (int r = 0; r < a->n_head; r++) {
        const float *P0 = st + (size_t)r * hf;
        float MT = P0[hd_v], ST = P0[hd_v + 1];
        memcpy(accT, P0, (size_t)hd_v * sizeof(float));
        for (int i0 = 1; i0 < n_piece; i0 += BATCH) {
            const int nb = NK_MIN(BATCH, n_piece - i0);
            float M = MT;
            for (int i = 0; i < nb; i++) {
                const float Mi = st[(size_t)(i0 + i) * per + (size_t)r * hf + hd_v];
                gt[i] = Mi > M;
                e[i] = gt[i] ? M - Mi : Mi - M;
                M = gt[i] ? Mi : M;
            }
            nk_attn_tile_expf(e, nb);
            for (int i = 0; i < nb; i++) {
                const float *P = st + (size_t)(i0 + i) * per + (size_t)r * hf;
                const float fa = gt[i] ? e[i] : 1.0f, fb = gt[i] ? 1.0f : e[i];
                const float x = ST * fa, y = P[hd_v + 1] * fb;
                ST = x + y;
                const __m512 va = _mm512_set1_ps(fa), vb = _mm512_set1_ps(fb);
                for (int d = 0; d < hd_v; d += 16)
                    _mm512_storeu_ps(accT + d, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(accT + d), va),
                                                             _mm512_mul_ps(_mm512_loadu_ps(P + d), vb)));
            }
            MT = M;
        }
        const __m512 inv = _mm512_set1_ps(ST == 0.0f ? 0.0f : 1.0f / ST);
        float *out = a->out + (size_t)r * hd_v;
        for (int d = 0; d < hd_v; d += 16) _mm512_storeu_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(accT + d), inv));
    }
}
#endif

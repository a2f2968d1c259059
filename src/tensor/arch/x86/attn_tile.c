/*
 * attn_tile.c: the tiled flash attention of prompts (f16, q8_0 and q4_0 caches, AVX-512).
 *
 * A task is a tile of up to 16 query rows that share one KV head: T consecutive tokens
 * times G of the query heads that read that head (GQA), rows ordered token-major; the
 * tasks of one KV head follow each other (its K and V columns stay in L2) and threads
 * take them from a queue, the longest (last tokens) first. The tile walks the KV
 * positions its rows need in chunks of C positions; per chunk:
 *  1. the chunk's K rows are converted to f32 once (not once per query),
 *  2. each row's scores: the F16 vec_dot's arithmetic (two accumulators over 32-element
 *     steps, then the lane-sum tree of _mm512_reduce_add_ps, done for 16 positions at
 *     once by a transposing reduction that pairs the same lanes in the same order),
 *  3. the online softmax of all rows at once, one lane per row, in position order
 *     (expf 16 at a time with the C library's bits, nk_attn_tile_expf), giving the rescale
 *     factor ms and the weight w of every row and position,
 *  4. the V accumulation: each V row is loaded and converted once per block of up to
 *     TILE_P rows whose f32 accumulators (TILE_D zmm of each row) stay in registers;
 *     per position and row exactly the scalar steps: acc = acc * ms when ms != 1,
 *     then acc = fma(v, w, acc) (v_mad_flash).
 * Chunks end at the pieces' ends (ops.h: the positions cut at multiples of
 * NK_ATTN_SPLIT), where the rows that go on close their piece and merge it into their
 * total (tile_piece_close; the last piece merges at the end). Every row's arithmetic
 * is the scalar description's, so the bits do not depend on the tiling, the chunking
 * or the thread count.
 *
 * Why an f32 accumulator on every path. llama.cpp's CPU flash attention has no one
 * numerics: prompts of 64 rows and more (f16/f32 K and V) take its tiled kernel, which
 * accumulates V in f32 (a per-tile softmax and GEMMs); small batches take the
 * per-position kernel with an f16 accumulator rounded after every position; and a
 * single token over 512 positions or more splits the cache over the threads and merges
 * the parts. nook picks one description for every batch size and every path (the
 * per-query loop, this tiled path, decoding's nk_attn_dec_task in attn_dec.c): a token's logits then do not
 * depend on how its prompt was batched (tests/model/model_prefix_bits) or on the thread
 * count, and an f32 accumulator costs one fused multiply-add per 16 values where the f16
 * one cost two conversions more (about 40% of the attention's time at 4k positions). */
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "tensor/arch/x86/attn_avx512.h"
#include "tensor/arch/x86/expf_pd.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

/* positions per chunk for a head size: a multiple of 16 with C * hd_k <= TILE_KF */
static int tile_chunk(int hd_k) { return NK_MIN(TILE_CMAX, (TILE_KF / hd_k) & ~15); }

/* expf, 16 lanes, with the bits of the C library's expf (the one ggml calls).
 *
 * glibc (2.27 on; the FMA build __expf_fma it selects on every CPU this path runs on)
 * computes expf(x) as one double expression rounded to float once: with N = 32,
 *   z = fma(N/ln2, x, 0x1.8p52)          (k = round(x N/ln2) in z's low bits)
 *   r = fma(N/ln2, x, -(z - 0x1.8p52))   (x N/ln2 - k, |r| <= 1/2)
 *   s = 2^(k/N)                          (T[k mod N] plus k's high bits in the exponent)
 *   y = fma(fma(r, C0, C1), r*r, fma(r, C2, 1)) * s
 * nk_exp_pd (expf_pd.h) is that expression, 8 lanes at a time, operation for operation: the
 * same double roundings, so the same float for every input it takes (x in [-103, 0]:
 * what attention asks; other lanes call expf itself). T[i] = bits(2^(i/N)) - (i << 47)
 * (computed at first use); C0..C2 and N/ln2 are the coefficients glibc uses.
 *
 * Another C library may round its own approximation differently; the first call
 * checks this one against expf (tile_exp_check) and, if any input disagrees, falls
 * back to calling expf on the lanes whose double lies near a float rounding midpoint
 * (the 29 bits the rounding drops within 2^23 of it, about 1 in 32): a correctly
 * rounded-enough expf agrees with ours everywhere else. */
#define TILE_EXP_NEAR (1 << 23)
static uint64_t tile_exp_tab[32];
static atomic_int tile_exp_state;   /* 0: unchecked, 1: glibc's bits, 2: fall back near midpoints */


/* lanes whose double y rounds to float near a midpoint (see above) */
TILE_INLINE __mmask8 tile_exp_near(__m512d y) {
    const __m512i low = _mm512_and_si512(_mm512_castpd_si512(y), _mm512_set1_epi64((1 << 29) - 1));
    const __m512i dist = _mm512_abs_epi64(_mm512_sub_epi64(low, _mm512_set1_epi64(1 << 28)));
    return _mm512_cmplt_epi64_mask(dist, _mm512_set1_epi64(TILE_EXP_NEAR));
}

/* x[0..n-1] = expf(x[0..n-1]); exact: glibc's bits, or else check near midpoints */
TILE_INLINE void tile_expf_run(float *x, int n, bool exact) {
    __m512d tab[4];
    for (int i = 0; i < 4; i++) tab[i] = _mm512_loadu_pd((const double *)tile_exp_tab + 8 * i);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + j);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        const __m512d ylo = nk_exp_pd(lo, tab), yhi = nk_exp_pd(hi, tab);
        /* !(x >= -103 && x <= 0) catches NaN too */
        const __mmask16 in = _mm512_cmp_ps_mask(v, _mm512_set1_ps(-103.0f), _CMP_GE_OQ) &
                             _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LE_OQ);
        const __mmask16 near =
            exact ? (__mmask16)0 : (__mmask16)(tile_exp_near(ylo) | (unsigned)tile_exp_near(yhi) << 8);
        const __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(ylo)), _mm512_cvtpd_ps(yhi), 1);
        const unsigned slow = (unsigned)(m & (~in | near));
        if (!slow) {
            _mm512_mask_storeu_ps(x + j, m, y);
            continue;
        }
        float arg[16];
        _mm512_storeu_ps(arg, v);
        _mm512_mask_storeu_ps(x + j, m, y);
        for (unsigned sl = slow; sl; sl &= sl - 1) {
            const int l = __builtin_ctz(sl);
            x[j + l] = expf(arg[l]);
        }
    }
}

/* lanes of 16 floats whose double rounds to float near a midpoint */
TILE_INLINE unsigned tile_exp_near16(const float *x, const __m512d *tab) {
    const __m512 v = _mm512_loadu_ps(x);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return tile_exp_near(nk_exp_pd(lo, tab)) | (unsigned)tile_exp_near(nk_exp_pd(hi, tab)) << 8;
}

/* Once per process: the table, then tile_exp_pd against expf over [-103, 0] (every
 * 263rd float): every input whose double lies near a midpoint (where two libraries'
 * roundings could part) and every input of one block in 16; about 300,000 expf calls. */
static pthread_once_t tile_exp_once = PTHREAD_ONCE_INIT;
ATTN_TGT512 static void tile_exp_init(void) {
    nk_exp_tab_fill(tile_exp_tab);
    __m512d tab[4];
    for (int i = 0; i < 4; i++) tab[i] = _mm512_loadu_pd((const double *)tile_exp_tab + 8 * i);
    bool ok = true;
    uint32_t b = 0x80000000u;   /* -0.0f, then down */
    for (int blk = 0; ok; blk++, b += 16 * 263) {
        float x[16], y[16];
        for (int l = 0; l < 16; l++) {
            const uint32_t u = b + 263u * (uint32_t)l;
            memcpy(&x[l], &u, 4);
        }
        if (!(x[15] >= -103.0f)) break;
        memcpy(y, x, sizeof x);
        tile_expf_run(y, 16, true);
        for (unsigned c = blk % 16 == 0 ? 0xFFFFu : tile_exp_near16(x, tab); c; c &= c - 1) {
            const int l = __builtin_ctz(c);
            const float w = expf(x[l]);
            ok = ok && memcmp(&y[l], &w, 4) == 0;
        }
    }
    atomic_store_explicit(&tile_exp_state, ok ? 1 : 2, memory_order_release);
}

ATTN_TGT512 void nk_attn_tile_expf(float *x, int n) {
    int st = atomic_load_explicit(&tile_exp_state, memory_order_acquire);
    if (st == 0) {
        pthread_once(&tile_exp_once, tile_exp_init);
        st = atomic_load_explicit(&tile_exp_state, memory_order_acquire);
    }
    if (st == 1) tile_expf_run(x, n, true);
    else tile_expf_run(x, n, false);
}

/* K rows j0..j0+n-1 (f16) to f32, rows n..npad-1 zero */
TILE_INLINE void tile_kf(int hd_k, int n, int npad, const uint8_t *kb, size_t k_row, float *kf) {
    for (int j = 0; j < n; j++) {
        const uint16_t *h = (const uint16_t *)(kb + (size_t)j * k_row);
        for (int d = 0; d < hd_k; d += 16)
            _mm512_storeu_ps(kf + (size_t)j * hd_k + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + d))));
    }
    for (int j = n; j < npad; j++)
        for (int d = 0; d < hd_k; d += 16) _mm512_storeu_ps(kf + (size_t)j * hd_k + d, _mm512_setzero_ps());
}

/* the F16 vec_dot's two accumulators for one K row, added (before the lane sum) */
TILE_INLINE __m512 tile_dot(const int NQ, const __m512 *q, const float *k) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    TILE_UNROLL
    for (int i = 0; i < NQ; i += 2) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 16 * i), q[i], a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 16 * i + 16), q[i + 1], a1);
    }
    return _mm512_add_ps(a0, a1);
}

/* scores of one row (query q, NQ zmm) against npad (a multiple of 16) f32 K rows,
 * to sc[j * TILE_RMAX] */
TILE_INLINE void tile_scores(const int NQ, const float *qf, const float *kf, int npad, float scale, float *sc) {
    __m512 q[16];
    TILE_UNROLL
    for (int i = 0; i < NQ; i++) q[i] = _mm512_loadu_ps(qf + 16 * i);
    const __m512 vscale = _mm512_set1_ps(scale);
    const __m512i column = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(TILE_RMAX));
    for (int j = 0; j < npad; j += 16) {
        const float *k = kf + (size_t)j * (size_t)(16 * NQ);
        __m512 z[4];
        TILE_UNROLL
        for (int g = 0; g < 4; g++) {
            const float *kg = k + (size_t)(4 * g) * (size_t)(16 * NQ);
            const __m512 y0 = tile_pair1(tile_dot(NQ, q, kg), tile_dot(NQ, q, kg + 16 * NQ));
            const __m512 y1 = tile_pair1(tile_dot(NQ, q, kg + 32 * NQ), tile_dot(NQ, q, kg + 48 * NQ));
            z[g] = tile_pair2(y0, y1);   /* 128-bit group i: position 4g+i, 4 partial sums */
        }
        _mm512_i32scatter_ps(sc + (size_t)j * TILE_RMAX, column, _mm512_mul_ps(tile_tree_last(z), vscale), 4);
    }
}

/* The scores of all TILE_RMAX rows of a tile (queries qf, rows past R zero) against
 * positions 0..n-1 of a chunk read straight from the f16 cache (kb: position 0 of the
 * chunk in this KV head), to sc[j * TILE_RMAX + r], prefetching the chunk's V rows
 * (vb, hd_v f16 each) on the way. Each K row is converted once into
 * registers and meets the 16 queries from L1: per (row, position) tile_dot's
 * arithmetic (fma(k, q, a) is fma(q, k, a): the product is exact), and a position's 16
 * row sums by tile_scores' reduction tree, pairing rows where it paired positions, so
 * every score has the F16 vec_dot's bits with no scatter of the sums into place. */
TILE_INLINE void tile_scores_t(const int NQ, const float *qf, const uint8_t *kb, size_t k_row, const uint8_t *vb,
                               size_t v_row, int hd_v, int n, float scale, float *sc, float *vf) {
    const __m512 vscale = _mm512_set1_ps(scale);
    if (vf)   /* the first V rows: the loop prefetches TILE_VAHEAD rows ahead */
        for (int j = 0; j < NK_MIN(n, TILE_VAHEAD); j++)
            for (int o = 0; o < hd_v * 2; o += 64) _mm_prefetch((const char *)vb + (size_t)j * v_row + o, _MM_HINT_T0);
    for (int j = 0; j < n; j++) {
        const uint16_t *h = (const uint16_t *)(kb + (size_t)j * k_row);
        /* rows a few positions on: a row's slice of a head is a few lines every k_row bytes */
        for (int o = 0; o < NQ * 32; o += 64) _mm_prefetch((const char *)h + 8 * k_row + o, _MM_HINT_T0);
        if (vf) {
            /* the chunk's V rows to f32 for the V accumulation, here where the scores'
             * arithmetic hides the loads (a separate loop stalled on them) */
            if (j + TILE_VAHEAD < n)
                for (int o = 0; o < hd_v * 2; o += 64)
                    _mm_prefetch((const char *)vb + (size_t)(j + TILE_VAHEAD) * v_row + o, _MM_HINT_T0);
            const uint16_t *vh = (const uint16_t *)(vb + (size_t)j * v_row);
            for (int d = 0; d < hd_v; d += 16)
                _mm512_storeu_ps(vf + (size_t)j * hd_v + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vh + d))));
        } else {
            /* the chunk's V rows, which the V accumulation reads once the scores are done */
            for (int o = 0; o < hd_v * 2; o += 64) _mm_prefetch((const char *)vb + (size_t)j * v_row + o, _MM_HINT_T0);
        }
        __m512 k[16];
        TILE_UNROLL
        for (int i = 0; i < NQ; i++) k[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + 16 * i)));
        __m512 z[4];
        TILE_UNROLL
        for (int g = 0; g < 4; g++) {
            const float *qg = qf + (size_t)(4 * g) * (size_t)(16 * NQ);
            const __m512 y0 = tile_pair1(tile_dot(NQ, k, qg), tile_dot(NQ, k, qg + 16 * NQ));
            const __m512 y1 = tile_pair1(tile_dot(NQ, k, qg + 32 * NQ), tile_dot(NQ, k, qg + 48 * NQ));
            z[g] = tile_pair2(y0, y1);   /* 128-bit group i: row 4g+i, 4 partial sums */
        }
        _mm512_storeu_ps(sc + (size_t)j * TILE_RMAX, _mm512_mul_ps(tile_tree_last(z), vscale));
    }
}

ATTN_TGT512 static void tile_scores_t_any(int hd_k, const float *qf, const uint8_t *kb, size_t k_row, const uint8_t *vb,
                                          size_t v_row, int hd_v, int n, float scale, float *sc, float *vf) {
    switch (hd_k / 16) {
    case 2: tile_scores_t(2, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    case 4: tile_scores_t(4, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    case 6: tile_scores_t(6, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    case 8: tile_scores_t(8, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    case 10: tile_scores_t(10, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    case 12: tile_scores_t(12, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    case 14: tile_scores_t(14, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    default: tile_scores_t(16, qf, kb, k_row, vb, v_row, hd_v, n, scale, sc, vf); break;
    }
}

ATTN_TGT512 static void tile_scores_any(int hd_k, const float *qf, const float *kf, int npad, float scale, float *sc) {
    switch (hd_k / 16) {
    case 2: tile_scores(2, qf, kf, npad, scale, sc); break;
    case 4: tile_scores(4, qf, kf, npad, scale, sc); break;
    case 6: tile_scores(6, qf, kf, npad, scale, sc); break;
    case 8: tile_scores(8, qf, kf, npad, scale, sc); break;
    case 10: tile_scores(10, qf, kf, npad, scale, sc); break;
    case 12: tile_scores(12, qf, kf, npad, scale, sc); break;
    case 14: tile_scores(14, qf, kf, npad, scale, sc); break;
    default: tile_scores(16, qf, kf, npad, scale, sc); break;
    }
}

/* The V accumulation of P rows (r0..r0+P-1 of the tile) over positions ja..jb
 * (relative to the chunk), TILE_D zmm of dims starting at the pointers given. */
TILE_INLINE void tile_v(const int P, const bool F32V, int ja, int jb, const uint8_t *vb, size_t v_row, const tile_ws *t,
                        int r0, float *acc, size_t acc_stride) {
    __m512 a[TILE_P][TILE_D];
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_loadu_ps(acc + (size_t)p * acc_stride + 16 * i);
    const uint32_t pm = (1u << P) - 1;
    for (int j = ja; j <= jb; j++) {
        const uint16_t *h = (const uint16_t *)(vb + (size_t)j * v_row);
        __m512 v[TILE_D];
        TILE_UNROLL
        for (int i = 0; i < TILE_D; i++)
            v[i] = F32V ? _mm512_loadu_ps((const float *)h + 16 * i)
                        : _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + 16 * i)));
        const uint32_t vm = (t->valid[j] >> r0) & pm, rm = (t->resc[j] >> r0) & pm;
        const float *msj = t->ms + (size_t)j * TILE_RMAX + r0, *wj = t->w + (size_t)j * TILE_RMAX + r0;
        if (rm)
            TILE_UNROLL
            for (int p = 0; p < P; p++)
                if (rm >> p & 1) {
                    const __m512 s = _mm512_set1_ps(msj[p]);
                    TILE_UNROLL
                    for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_mul_ps(a[p][i], s);
                }
        if (vm == pm) {
            TILE_UNROLL
            for (int p = 0; p < P; p++) {
                const __m512 s = _mm512_set1_ps(wj[p]);
                TILE_UNROLL
                for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_fmadd_ps(v[i], s, a[p][i]);
            }
        } else {
            TILE_UNROLL
            for (int p = 0; p < P; p++)
                if (vm >> p & 1) {
                    const __m512 s = _mm512_set1_ps(wj[p]);
                    TILE_UNROLL
                    for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_fmadd_ps(v[i], s, a[p][i]);
                }
        }
    }
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < TILE_D; i++) _mm512_storeu_ps(acc + (size_t)p * acc_stride + 16 * i, a[p][i]);
}

ATTN_TGT512 static void tile_v_any(int P, int ja, int jb, const uint8_t *vb, size_t v_row, const tile_ws *t, int r0,
                                   float *acc, size_t acc_stride) {
    switch (P) {
    case 1: tile_v(1, false, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 2: tile_v(2, false, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 3: tile_v(3, false, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 4: tile_v(4, false, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 5: tile_v(5, false, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    default: tile_v(6, false, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    }
}
/* tile_v over V rows already in f32 (vb: float rows v_row bytes apart) */
ATTN_TGT512 static void tile_v_f32_any(int P, int ja, int jb, const uint8_t *vb, size_t v_row, const tile_ws *t, int r0,
                                       float *acc, size_t acc_stride) {
    switch (P) {
    case 1: tile_v(1, true, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 2: tile_v(2, true, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 3: tile_v(3, true, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 4: tile_v(4, true, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    case 5: tile_v(5, true, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    default: tile_v(6, true, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;
    }
}

/* 16 values of a Q8_0 row from element e (a multiple of 16): code * d, the product
 * nk_dequant_q8_0 forms */
TILE_INLINE __m512 q8_16(const uint8_t *row, int e) {
    const uint8_t *blk = row + (size_t)(e / 32) * 34;
    uint16_t dh;
    memcpy(&dh, blk, 2);
    const __m128i c = _mm_loadu_si128((const __m128i *)(blk + 2 + e % 32));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)), _mm512_set1_ps(_cvtsh_ss(dh)));
}

/* 16 values of a Q4_0 row from element e (a multiple of 16): (nibble - 8) * d, as
 * nk_dequant_q4_0 (elements 0..15 of a block are the low nibbles, 16..31 the high) */
TILE_INLINE __m512 q4_16(const uint8_t *row, int e) {
    const uint8_t *blk = row + (size_t)(e / 32) * 18;
    uint16_t dh;
    memcpy(&dh, blk, 2);
    __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
    c = e % 32 ? _mm512_srli_epi32(c, 4) : _mm512_and_si512(c, _mm512_set1_epi32(0x0F));
    c = _mm512_sub_epi32(c, _mm512_set1_epi32(8));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(_cvtsh_ss(dh)));
}

/* tile_v for a Q8_0 (Q4 false) or Q4_0 cache: each V row dequantized once per block, the f32
 * accumulator of the per-query path (v_mad_flash): acc = acc * ms + v * w, the two
 * products rounded, then the sum (ms == 1 multiplies exactly, so it is skipped).
 * vb points at the block holding dimension d of row 0 (d a multiple of 64). */
TILE_INLINE void tile_v_q8(const int P, const bool Q4, int ja, int jb, const uint8_t *vb, size_t v_row,
                           const tile_ws *t, int r0, float *acc, size_t acc_stride) {
    __m512 a[TILE_P][TILE_D];
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_loadu_ps(acc + (size_t)p * acc_stride + 16 * i);
    const uint32_t pm = (1u << P) - 1;
    for (int j = ja; j <= jb; j++) {
        __m512 v[TILE_D];
        TILE_UNROLL
        for (int i = 0; i < TILE_D; i++) v[i] = Q4 ? q4_16(vb + (size_t)j * v_row, 16 * i) : q8_16(vb + (size_t)j * v_row, 16 * i);
        const uint32_t vm = (t->valid[j] >> r0) & pm, rm = (t->resc[j] >> r0) & pm;
        const float *msj = t->ms + (size_t)j * TILE_RMAX + r0, *wj = t->w + (size_t)j * TILE_RMAX + r0;
        TILE_UNROLL
        for (int p = 0; p < P; p++)
            if (vm >> p & 1) {
                const __m512 s = _mm512_set1_ps(wj[p]);
                if (rm >> p & 1) {
                    const __m512 m = _mm512_set1_ps(msj[p]);
                    TILE_UNROLL
                    for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_add_ps(_mm512_mul_ps(a[p][i], m), _mm512_mul_ps(v[i], s));
                } else {
                    TILE_UNROLL
                    for (int i = 0; i < TILE_D; i++) a[p][i] = _mm512_add_ps(a[p][i], _mm512_mul_ps(v[i], s));
                }
            }
    }
    TILE_UNROLL
    for (int p = 0; p < P; p++)
        TILE_UNROLL
        for (int i = 0; i < TILE_D; i++) _mm512_storeu_ps(acc + (size_t)p * acc_stride + 16 * i, a[p][i]);
}

#define TILE_VQ_ANY(Q4)                                                                                            \
    switch (P) {                                                                                                   \
    case 1: tile_v_q8(1, Q4, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;                                   \
    case 2: tile_v_q8(2, Q4, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;                                   \
    case 3: tile_v_q8(3, Q4, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;                                   \
    case 4: tile_v_q8(4, Q4, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;                                   \
    case 5: tile_v_q8(5, Q4, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;                                   \
    default: tile_v_q8(6, Q4, ja, jb, vb, v_row, t, r0, acc, acc_stride); break;                                  \
    }
ATTN_TGT512 static void tile_v_q8_any(int P, int ja, int jb, const uint8_t *vb, size_t v_row, const tile_ws *t, int r0,
                                      float *acc, size_t acc_stride) {
    TILE_VQ_ANY(false)
}
ATTN_TGT512 static void tile_v_q4_any(int P, int ja, int jb, const uint8_t *vb, size_t v_row, const tile_ws *t, int r0,
                                      float *acc, size_t acc_stride) {
    TILE_VQ_ANY(true)
}
#undef TILE_VQ_ANY

/* One tile's state within a task: its rows, their positions and softmax lanes, queries
 * and accumulators (rows past R: never valid). */
typedef struct tile_one {
    int t0, R, n_blk;
    int lo[TILE_RMAX], hi[TILE_RMAX];
    float *qf, *acc;
    __m512 vM, vS;
    /* the merged pieces (ops.h): accumulators, max and sum; has: the rows with one */
    float *accT;
    __m512 vMT, vST;
    uint32_t has;
} tile_one;

/* Close the current piece (ops.h) of the rows of o that see positions on both sides
 * of c0 (a multiple of NK_ATTN_SPLIT): merged into the total, or the total if it is
 * the row's first; then the piece restarts from scratch. The merge's factors of all
 * rows at once (one lane each, the exponentials 16 at a time): nk_attn_piece_merge's
 * steps and bits. */
ATTN_TGT512 static void tile_piece_close(tile_one *o, int c0, int hd_v) {
    const __m512i vc = _mm512_set1_epi32(c0);
    const __mmask16 cross = _mm512_cmplt_epi32_mask(_mm512_loadu_si512(o->lo), vc) &
                            _mm512_cmpge_epi32_mask(_mm512_loadu_si512(o->hi), vc);
    if (!cross) return;
    const __mmask16 mrg = cross & (__mmask16)o->has, cpy = cross & (__mmask16)~o->has;
    const __m512 one = _mm512_set1_ps(1.0f);
    /* a = expf(MT - M), b = 1 where M > MT (a new max); else a = 1, b = expf(M - MT) */
    const __mmask16 gt = mrg & _mm512_cmp_ps_mask(o->vM, o->vMT, _CMP_GT_OQ);
    float e[TILE_RMAX], fa[TILE_RMAX], fb[TILE_RMAX];
    _mm512_storeu_ps(e, _mm512_maskz_mov_ps(mrg, _mm512_mask_sub_ps(_mm512_sub_ps(o->vM, o->vMT), gt, o->vMT, o->vM)));
    nk_attn_tile_expf(e, TILE_RMAX);
    const __m512 ve = _mm512_loadu_ps(e), va = _mm512_mask_mov_ps(one, gt, ve), vb = _mm512_mask_mov_ps(ve, gt, one);
    const __m512 st = _mm512_add_ps(_mm512_mul_ps(o->vST, va), _mm512_mul_ps(o->vS, vb));
    o->vST = _mm512_mask_mov_ps(_mm512_mask_mov_ps(o->vST, mrg, st), cpy, o->vS);
    o->vMT = _mm512_mask_mov_ps(o->vMT, gt | cpy, o->vM);
    _mm512_storeu_ps(fa, va), _mm512_storeu_ps(fb, vb);
    const __m512 zero = _mm512_setzero_ps();
    for (unsigned m = cross; m; m &= m - 1) {
        const int r = __builtin_ctz(m);
        float *acc = o->acc + (size_t)r * hd_v, *accT = o->accT + (size_t)r * hd_v;
        if (mrg >> r & 1) {
            const __m512 ar = _mm512_set1_ps(fa[r]), br = _mm512_set1_ps(fb[r]);
            for (int d = 0; d < hd_v; d += 16) {
                _mm512_storeu_ps(accT + d, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(accT + d), ar),
                                                         _mm512_mul_ps(_mm512_loadu_ps(acc + d), br)));
                _mm512_storeu_ps(acc + d, zero);
            }
        } else {
            for (int d = 0; d < hd_v; d += 16) {
                _mm512_storeu_ps(accT + d, _mm512_loadu_ps(acc + d));
                _mm512_storeu_ps(acc + d, zero);
            }
        }
    }
    o->has |= cross;
    o->vM = _mm512_mask_mov_ps(o->vM, cross, _mm512_set1_ps(-INFINITY));
    o->vS = _mm512_mask_mov_ps(o->vS, cross, _mm512_setzero_ps());
}

/* One task of the plan (see the section comment): up to pl->NS consecutive tiles of one
 * KV head and head group, walking the positions once in chunks; per chunk the tiles
 * run one after the other, the last (the most positions) first, so the chunk's K and V
 * are read from memory once and its V rows converted to f32 once for all of them. Each
 * row's arithmetic is the one-tile loop's: the chunking and the tile order change no
 * bits. ws: this thread's scratch. */
ATTN_TGT512 void nk_attn_tile_task(const nk_attn *a, const tile_plan *pl, int task, void *scratch) {
    const int group = a->n_head / a->n_head_kv, hd_k = a->hd_k, hd_v = a->hd_v, hd = NK_MAX(hd_k, hd_v);
    /* KV head outermost: consecutive tasks read the same K and V columns (in L2) */
    const int per_kvh = pl->n_super * pl->n_hsplit;
    const int kvh = task / per_kvh, sup = pl->n_super - 1 - task % per_kvh / pl->n_hsplit, hs = task % pl->n_hsplit;
    const int tile0 = sup * pl->NS, n_ts = NK_MIN(pl->NS, pl->n_tiles - tile0);
    const int g0 = hs * pl->G, ng = NK_MIN(pl->G, group - g0);
    const int C = tile_chunk(hd_k);
    const tile_ws t = tile_carve(scratch, hd);
    /* a Q8_0 or Q4_0 cache: the query quantized to K's dot partner (Q8_0), scores by the
     * cache type's vec_dot, V rows dequantized, an f32 accumulator: the per-query
     * path's arithmetic */
    const bool quant = a->kv_type != NK_TYPE_F16;
    const nk_type_traits *kt = quant ? nk_type_get(a->kv_type) : NULL;
    const nk_type_traits *qt = quant ? nk_type_get((uint32_t)kt->vec_dot_type) : NULL;
    const size_t k_head = nk_row_size(a->kv_type, hd_k), v_head = nk_row_size(a->kv_type, hd_v);
    const size_t k_row = (size_t)a->n_head_kv * k_head, v_row = (size_t)a->n_head_kv * v_head;
    const uint8_t *kb = (const uint8_t *)a->k + (size_t)kvh * k_head;
    const uint8_t *vb = (const uint8_t *)a->v + (size_t)kvh * v_head;
    const size_t q_stride = (size_t)a->n_head * (size_t)hd_k;
    const size_t tq = round64((size_t)TILE_RMAX * (size_t)hd * 4);   /* bytes of a tile's qf or acc */

    /* tiles in processing order: the last tokens first */
    tile_one ts[TILE_NS];
    int j_first = INT_MAX, j_last = INT_MIN;
    for (int k = 0; k < n_ts; k++) {
        tile_one *o = &ts[k];
        o->t0 = (tile0 + n_ts - 1 - k) * pl->T;
        const int nt = NK_MIN(pl->T, a->n_tok - o->t0);
        o->R = nt * ng;
        o->n_blk = (o->R + TILE_P - 1) / TILE_P;
        uint8_t *more = (uint8_t *)scratch + tile_bytes(hd) + (size_t)(k - 1) * 2 * tq;
        o->qf = k ? (float *)more : t.qf;
        o->acc = k ? (float *)(more + tq) : t.acc;
        o->vM = _mm512_set1_ps(-INFINITY);
        o->vS = _mm512_setzero_ps();
        o->accT = (float *)((uint8_t *)scratch + tile_bytes(hd) + (size_t)(2 * (TILE_NS - 1) + k) * tq);
        o->vMT = _mm512_set1_ps(-INFINITY);
        o->vST = _mm512_setzero_ps();
        o->has = 0;
        for (int r = 0; r < TILE_RMAX; r++) o->lo[r] = INT_MAX, o->hi[r] = INT_MIN;
        for (int r = 0; r < o->R; r++) {
            const int tl = r / ng, h = kvh * group + g0 + r % ng, pos = a->pos0 + o->t0 + tl;
            o->hi[r] = pos;
            o->lo[r] = a->n_swa > 0 ? NK_MAX(0, pos - a->n_swa + 1) : 0;
            const float *q = a->q + (size_t)(o->t0 + tl) * q_stride + (size_t)h * (size_t)hd_k;
            if (quant) qt->from_float(q, o->qf + (size_t)r * hd_k, hd_k);   /* 34 bytes per 32 values: fits */
            else
                for (int d = 0; d < hd_k; d += 16)
                    _mm512_storeu_ps(o->qf + (size_t)r * hd_k + d, rt_f16_512(_mm512_loadu_ps(q + d)));
            memset(o->acc + (size_t)r * hd_v, 0, (size_t)hd_v * sizeof(float));
        }
        /* tile_scores_t computes all 16 rows: the ones past R score zero (never used) */
        if (!quant) memset(o->qf + (size_t)o->R * hd_k, 0, (size_t)(TILE_RMAX - o->R) * (size_t)hd_k * sizeof(float));
        j_first = NK_MIN(j_first, o->lo[0]);
        j_last = NK_MAX(j_last, o->hi[o->R - 1]);
    }
    const __m512 one = _mm512_set1_ps(1.0f);

    for (int c0 = j_first, Cn; c0 <= j_last; c0 += Cn) {
        /* chunks end at the pieces' ends (ops.h), where the rows crossing one merge */
        Cn = NK_MIN(C, nk_attn_piece_end(c0) - c0);
        if (c0 % NK_ATTN_SPLIT == 0 && c0 > j_first)
            for (int k = 0; k < n_ts; k++) tile_piece_close(&ts[k], c0, hd_v);
        /* positions of this chunk whose V rows t.kf holds in f32 (0: none; the small-tile
         * scores overwrite it with K) */
        int vf_n = 0;
        for (int k = 0; k < n_ts; k++) {
            tile_one *o = &ts[k];
            const int R = o->R;
            const int tj0 = o->lo[0], tj1 = o->hi[R - 1];
            if (tj1 < c0 || tj0 >= c0 + Cn) continue;   /* the tile sees nothing of this chunk */
            const int n = NK_MIN(Cn, tj1 + 1 - c0), npad = (n + 15) & ~15;
            /* f16 V rows used by several register blocks: converted to f32 once (into the
             * K chunk's buffer, free once the scores are done; by the full tile's scores
             * themselves); the same values */
            const bool vf = !quant && o->n_blk > 1 && (size_t)n * (size_t)hd_v <= TILE_KF;
            if (quant) {
                /* each row's positions in the chunk, by the Q8_0 dot as the per-query path */
                for (int r = 0; r < R; r++)
                    for (int j = NK_MAX(o->lo[r], c0) - c0; j <= NK_MIN(o->hi[r], c0 + n - 1) - c0; j++) {
                        float sc;
                        kt->vec_dot(hd_k, &sc, kb + (size_t)(c0 + j) * k_row, o->qf + (size_t)r * hd_k);
                        t.sc[(size_t)j * TILE_RMAX + r] = sc * a->scale;
                    }
            } else if (R > TILE_RMAX / 2) {
                /* a full tile (or nearly): all 16 rows at once, a K row converted once; the
                 * V rows converted to f32 on the way when several register blocks use them
                 * and no earlier tile of the task has */
                const bool conv = vf && vf_n < n;
                tile_scores_t_any(hd_k, o->qf, kb + (size_t)c0 * k_row, k_row, vb + (size_t)c0 * v_row, v_row, hd_v, n,
                                  a->scale, t.sc, conv ? t.kf : NULL);
                if (conv) vf_n = n;
            } else {
                tile_kf(hd_k, n, npad, kb + (size_t)c0 * k_row, k_row, t.kf);
                vf_n = 0;
                for (int r = 0; r < R; r++)
                    if (o->lo[r] < c0 + n && o->hi[r] >= c0)
                        tile_scores_any(hd_k, o->qf + (size_t)r * hd_k, t.kf, npad, a->scale, t.sc + r);
            }
            /* the online softmax as ggml walks it (see attn_fn), all rows at once and in
             * three passes so that the exponentials run 16 at a time: the running max and
             * each position's exponent (m - x when x is a new max, x - m otherwise), the
             * exponentials, then ms, w and the sum (never contracted to an fma). The
             * exponents of the rows that use a position are packed densely (in place:
             * the packed array never passes the position being read), so a tile of few
             * rows (decoding) computes no unused exponentials. */
            const __m512i vlo = _mm512_loadu_si512(o->lo), vhi = _mm512_loadu_si512(o->hi);
            __m512 vM = o->vM, vS = o->vS;
            int n_exp = 0;
            for (int j = 0; j < n; j++) {
                const __m512i pos = _mm512_set1_epi32(c0 + j);
                const __mmask16 vm = _mm512_cmple_epi32_mask(vlo, pos) & _mm512_cmple_epi32_mask(pos, vhi);
                const __m512 x = _mm512_loadu_ps(t.sc + (size_t)j * TILE_RMAX);
                const __mmask16 gt = vm & _mm512_cmp_ps_mask(x, vM, _CMP_GT_OQ);
                const __m512 arg = _mm512_mask_sub_ps(_mm512_sub_ps(x, vM), gt, vM, x);
                _mm512_storeu_ps(t.sc + n_exp, vm == 0xFFFF ? arg : _mm512_maskz_compress_ps(vm, arg));
                n_exp += __builtin_popcount(vm);
                /* max_ps(x, M) is "x > M ? x : M": the update above in one op, so the chain
                 * from one position to the next is a single max (the compare is off it) */
                vM = _mm512_mask_max_ps(vM, vm, x, vM);
                t.valid[j] = vm;
                t.resc[j] = gt;
            }
            nk_attn_tile_expf(t.sc, n_exp);
            n_exp = 0;
            for (int j = 0; j < n; j++) {
                const __mmask16 vm = (__mmask16)t.valid[j], gt = (__mmask16)t.resc[j];
                const __m512 e = vm == 0xFFFF ? _mm512_loadu_ps(t.sc + n_exp) : _mm512_maskz_expand_ps(vm, _mm512_loadu_ps(t.sc + n_exp));
                n_exp += __builtin_popcount(vm);
                const __m512 ms = _mm512_mask_mov_ps(one, gt, e), w = _mm512_mask_mov_ps(e, gt, one);
                vS = _mm512_mask_mul_ps(vS, vm, vS, ms);
                vS = _mm512_mask_add_ps(vS, vm, vS, w);
                _mm512_storeu_ps(t.ms + (size_t)j * TILE_RMAX, ms);
                _mm512_storeu_ps(t.w + (size_t)j * TILE_RMAX, w);
                t.resc[j] = vm & _mm512_cmp_ps_mask(ms, one, _CMP_NEQ_UQ);
            }
            o->vM = vM;
            o->vS = vS;
            if (vf && vf_n < n) {
                for (int j = 0; j < n; j++) {
                    const uint16_t *h = (const uint16_t *)(vb + (size_t)(c0 + j) * v_row);
                    for (int d = 0; d < hd_v; d += 16)
                        _mm512_storeu_ps(t.kf + (size_t)j * hd_v + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + d))));
                }
                vf_n = n;
            }
            for (int b = 0, r0 = 0; b < o->n_blk; b++) {
                const int P = (R - r0) / (o->n_blk - b);   /* rows left spread over blocks left */
                int ja = n, jb = -1;
                for (int r = r0; r < r0 + P; r++) {
                    ja = NK_MIN(ja, NK_MAX(o->lo[r], c0) - c0);
                    jb = NK_MAX(jb, NK_MIN(o->hi[r], c0 + n - 1) - c0);
                }
                if (ja <= jb && vf)
                    for (int d = 0; d < hd_v; d += 16 * TILE_D)
                        tile_v_f32_any(P, ja, jb, (const uint8_t *)(t.kf + d), (size_t)hd_v * sizeof(float), &t, r0,
                                       o->acc + (size_t)r0 * hd_v + d, (size_t)hd_v);
                else if (ja <= jb)
                    for (int d = 0; d < hd_v; d += 16 * TILE_D)
                        (a->kv_type == NK_TYPE_Q4_0   ? tile_v_q4_any
                         : a->kv_type == NK_TYPE_Q8_0 ? tile_v_q8_any
                                                      : tile_v_any)(P, ja, jb, vb + (size_t)c0 * v_row + nk_row_size(a->kv_type, d), v_row, &t, r0,
                                   o->acc + (size_t)r0 * hd_v + d, (size_t)hd_v);
                r0 += P;
            }
        }
    }

    const size_t o_stride = (size_t)a->n_head * (size_t)hd_v;
    for (int k = 0; k < n_ts; k++) {
        tile_one *o = &ts[k];
        float M[TILE_RMAX], S[TILE_RMAX], MT[TILE_RMAX], ST[TILE_RMAX];
        _mm512_storeu_ps(M, o->vM), _mm512_storeu_ps(S, o->vS), _mm512_storeu_ps(MT, o->vMT), _mm512_storeu_ps(ST, o->vST);
        for (int r = 0; r < o->R; r++) {
            const int tl = r / ng, h = kvh * group + g0 + r % ng;
            float *out = a->out + (size_t)(o->t0 + tl) * o_stride + (size_t)h * (size_t)hd_v;
            /* the last piece, merged into the total if the row had earlier ones */
            float *acc = o->acc + (size_t)r * hd_v, Sr = S[r];
            if (o->has >> r & 1) {
                tile_piece_merge(hd_v, o->accT + (size_t)r * hd_v, &MT[r], &ST[r], acc, M[r], S[r]);
                acc = o->accT + (size_t)r * hd_v, Sr = ST[r];
            }
            const __m512 inv = _mm512_set1_ps(Sr == 0.0f ? 0.0f : 1.0f / Sr);
            for (int d = 0; d < hd_v; d += 16)
                _mm512_storeu_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(acc + d), inv));
        }
    }
}
#endif

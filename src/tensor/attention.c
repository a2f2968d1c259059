/*
 * attention.c: the attention block, plain and flash numerics (see ops.h for the
 * contracts and the numerics).
 */
#include "tensor/ops.h"
#include "tensor/quants.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Waking the workers and joining them costs a few microseconds, so attention smaller
 * than this many multiply-adds runs on the caller (the matmul threshold in ops.c). */
#define NK_PAR_MIN_WORK 65536.0

/* ---- attention ----------------------------------------------------------------- */

/* Per-thread scratch of the per-query path: scores [n_ctx] f32, probabilities [n_ctx]
 * f32, the query in the cache type [hd] and the V accumulator [hd] (hd = max(hd_k,
 * hd_v)), each piece rounded up to 64 bytes; the tiled path's is tile_ws. */
static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ---- tiled flash attention (f16, q8_0 and q4_0 caches, AVX-512) ----
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
 *     (expf 16 at a time with the C library's bits, tile_expf), giving the rescale
 *     factor ms and the weight w of every row and position,
 *  4. the V accumulation: each V row is loaded and converted once per block of up to
 *     TILE_P rows whose f32 accumulators (TILE_D zmm of each row) stay in registers;
 *     per position and row exactly the scalar steps: acc = acc * ms when ms != 1,
 *     then acc = fma(v, w, acc) (v_mad_flash).
 * Every row's arithmetic is the scalar description's, so the bits do not depend on
 * the tiling, the chunking or the thread count.
 *
 * Why an f32 accumulator on every path. llama.cpp's CPU flash attention has no one
 * numerics: prompts of 64 rows and more (f16/f32 K and V) take its tiled kernel, which
 * accumulates V in f32 (a per-tile softmax and GEMMs); small batches take the
 * per-position kernel with an f16 accumulator rounded after every position; and a
 * single token over 512 positions or more splits the cache over the threads and merges
 * the parts. nook picks one description for every batch size and every path (the
 * per-query loop, this tiled path, decoding's dec_task): a token's logits then do not
 * depend on how its prompt was batched (tests/model/model_prefix_bits) or on the thread
 * count, and an f32 accumulator costs one fused multiply-add per 16 values where the f16
 * one cost two conversions more (about 40% of the attention's time at 4k positions). */
#define TILE_RMAX 16                  /* rows per tile: one lane each in the softmax    */
#define TILE_KF 8192                  /* floats of converted K per chunk (32 KiB, L1)     */
#define TILE_CMAX (TILE_KF / 32)      /* the largest chunk (hd_k 32)                      */
#define TILE_P 6                      /* rows per register block                          */
#define TILE_D 4                      /* zmm per row per register block (64 dims)         */
#define TILE_VAHEAD 8                 /* V rows prefetched ahead while the scores convert them */

typedef struct tile_ws {
    float *kf;                 /* [C][hd_k] chunk of K in f32, zero past the chunk */
    float *qf;                 /* [R][hd_k] queries rounded to f16                 */
    float *acc;                /* [R][hd_v] f32 accumulators                       */
    float *sc;                 /* [C][TILE_RMAX] scores, then their exponentials   */
    float *ms, *w;             /* [C][TILE_RMAX] rescale factor and weight         */
    uint32_t *resc, *valid;    /* [C] rows (bits) that rescale / use the position  */
} tile_ws;

static size_t tile_bytes(int hd) {
    return round64((size_t)TILE_KF * 4) + 2 * round64((size_t)TILE_RMAX * (size_t)hd * 4) +
           3 * round64((size_t)TILE_RMAX * TILE_CMAX * 4) + 2 * round64((size_t)TILE_CMAX * 4);
}

/* The plan: tiles of T tokens and G heads (T * G <= 16); tasks enumerate (KV head,
 * tile, head group), within a KV head the last tokens (the most positions) first.
 * The plan may depend on the thread count; the results do not (see above). */
typedef struct tile_plan {
    int T, G, n_tiles, n_hsplit, n_task;
    int NS, n_super;   /* tiles per task (consecutive tokens), tasks per KV head and head group */
} tile_plan;

/* Tiles per task: a task walks the positions once for up to TILE_NS consecutive tiles of
 * the same KV head and head group, each chunk of K and V used by all of them while it is
 * in L1/L2 (one tile per pass streamed the head's cache from L3 once per 16 rows: at
 * 4,096 positions 2 MB per head, more than L2, and the loads stalled the scores). */
#ifndef TILE_NS
#define TILE_NS 8   /* (bench builds try others with -D) */
#endif

static tile_plan tile_plan_make(const nk_attn *a, int nth) {
    const int group = a->n_head / a->n_head_kv;
    tile_plan p;
    p.G = NK_MIN(group, TILE_RMAX);
    /* small batches (decoding) with few KV heads: split the heads so that every
     * thread gets a task */
    while (p.G > 1 && (long)a->n_head_kv * ((group + p.G - 1) / p.G) * a->n_tok < 2L * nth) p.G = (p.G + 1) / 2;
    p.T = NK_MAX(1, TILE_RMAX / p.G);
    p.n_tiles = (a->n_tok + p.T - 1) / p.T;
    p.n_hsplit = (group + p.G - 1) / p.G;
    /* several tiles per task while that leaves about 8 tasks per thread (the queue
     * balances tasks of different lengths) */
    p.NS = TILE_NS;
    while (p.NS > 1 && (long)((p.n_tiles + p.NS - 1) / p.NS) * a->n_head_kv * p.n_hsplit < 8L * nth) p.NS /= 2;
    p.n_super = (p.n_tiles + p.NS - 1) / p.NS;
    p.n_task = p.n_super * a->n_head_kv * p.n_hsplit;
    return p;
}

static bool tile_ok(const nk_attn *a) {
    const bool type = a->kv_type == NK_TYPE_F16 || a->kv_type == NK_TYPE_Q8_0 || a->kv_type == NK_TYPE_Q4_0;
    return a->flash && type && a->hd_k % 32 == 0 && a->hd_k <= 256 && a->hd_v % 64 == 0 &&
           a->hd_v <= 256;
}

/* One-token segments (decoding, dec_task): an f16, Q8_0 or Q4_0 cache, tiled head sizes and at most
 * TILE_RMAX query heads per KV head, at any depth: the bits are the tiled path's. A
 * lone segment with fewer KV heads than threads takes the tiled path instead, which
 * splits a group so that every thread gets work. */
static bool dec_ok(const nk_attn *a) {
    return a->n_tok == 1 && tile_ok(a) && a->n_head / a->n_head_kv <= TILE_RMAX;
}
/* KV heads per task: about two tasks per thread over the run's n_dec one-token
 * segments (the queue balances segments of different depths), at most TILE_RMAX
 * query rows each */
#ifndef DEC_TPT
#define DEC_TPT 2   /* tasks per thread (bench_attn builds try others with -D) */
#endif
static int dec_hpt(const nk_attn *a, int nth, int n_dec) {
    const int per_seg = (DEC_TPT * nth + n_dec - 1) / n_dec;
    const int hpt = NK_MAX(1, a->n_head_kv / per_seg);
    return NK_MIN(hpt, TILE_RMAX / (a->n_head / a->n_head_kv));
}
/* floats per query row of dec_task's accumulators: hd, then M and S, 64-byte rows */
static size_t dec_head_floats(int hd) { return ((size_t)hd + 2 + 15) & ~(size_t)15; }
/* bytes per query row of a quantized cache's decoding (decq_prep's layout, below) */
static size_t decq_row_bytes(int hd_k) { return round64((size_t)hd_k + 128 * (size_t)((hd_k / 32 + 1) / 2)); }

/* Decoding on pairs of threads (dec_pipe_run): at most DEC_RMAX query rows per pair,
 * DEC_RING blocks of ms, w and rescale masks between the pair's two threads. */
#define DEC_RMAX 64
#ifndef DEC_RING
#define DEC_RING 8
#endif
#define DEC_MAX_PAIRS 16
typedef struct dec_pipe {
    _Alignas(64) atomic_int made;   /* blocks published by the producer */
    _Alignas(64) atomic_int used;   /* blocks the consumer has finished with */
    _Alignas(64) atomic_int quit;   /* a thread of the pair stopped (abort) */
    atomic_int yielded;             /* a wait outlasted the spin: the partner was off its core */
} dec_pipe;
static size_t dec_ring_slot(void) { return 2 * round64((size_t)DEC_RMAX * 16 * 4) + 2 * round64((size_t)DEC_RMAX * 4); }
static size_t dec_pipe_q(int hd) { return round64((size_t)DEC_RMAX * NK_MAX((size_t)hd * 4, decq_row_bytes(hd))); }
/* a thread's scratch for either role: the producer's queries, running maxima and the
 * ring; the consumer's accumulators and sums */
static size_t dec_pipe_bytes(int hd) {
    const size_t prod = dec_pipe_q(hd) + round64((size_t)DEC_RMAX * 4) + DEC_RING * dec_ring_slot();
    return NK_MAX(prod, round64((size_t)DEC_RMAX * dec_head_floats(hd) * 4));
}

/* the tiled path's queries and accumulators of a task's tiles past the first, after tile_bytes */
static size_t tile_more_bytes(int hd) { return (size_t)(TILE_NS - 1) * 2 * round64((size_t)TILE_RMAX * (size_t)hd * 4); }

/* per-thread scratch: the per-query path's, the tiled path's (with its task's further
 * tiles) or decoding's (the tiled path's and TILE_RMAX accumulator rows, or the pairs'),
 * whichever is larger */
static size_t attn_thread_bytes(int n_ctx, int hd) {
    const size_t plain = 2 * round64((size_t)n_ctx * 4) + 3 * round64((size_t)hd * 4);
    const size_t more = NK_MAX(round64((size_t)TILE_RMAX * dec_head_floats(hd) * 4), tile_more_bytes(hd));
    return NK_MAX(NK_MAX(plain, tile_bytes(hd) + more), dec_pipe_bytes(hd));
}

size_t nk_attn_wsize(int n_threads, int n_ctx, int hd) {
    return (size_t)n_threads * attn_thread_bytes(n_ctx, hd);
}

static inline float round_f16(float x) { return nk_fp16_to_fp32(nk_fp32_to_fp16(x)); }

/* The V accumulation, scalar reference versions (acc has hd_v floats):
 *  plain: acc = fma(v, p, acc)             (f32 accumulation)
 *  flash, f16 V: acc = acc * ms when ms != 1, then acc = fma(v, w, acc): an f32
 *         accumulator (the one description of every f16 path: see the tiled path's
 *         comment for why not llama.cpp's small-batch f16 accumulator). When ms != 1, w
 *         is 1 and the fma is the plain sum acc * ms + v.
 *  flash, f32 V (a dequantized Q8_0 / Q4_0 row): acc = acc * ms + v * w, both products
 *         rounded, then the sum (the quantized caches' description, unchanged). */
static void v_mad_plain(int n, float *acc, const void *v, bool f16, float p) {
    if (f16) {
        const uint16_t *h = v;
        for (int d = 0; d < n; d++) acc[d] = fmaf(nk_fp16_to_fp32(h[d]), p, acc[d]);
    } else {
        const float *f = v;
        for (int d = 0; d < n; d++) acc[d] = fmaf(f[d], p, acc[d]);
    }
}

static void v_mad_flash(int n, float *acc, const void *v, bool f16, float ms, float w) {
    if (f16) {
        const uint16_t *h = v;
        if (ms != 1.0f)
            for (int d = 0; d < n; d++) acc[d] = acc[d] * ms;
        for (int d = 0; d < n; d++) acc[d] = fmaf(nk_fp16_to_fp32(h[d]), w, acc[d]);
    } else {
        /* f32 (a dequantized Q8_0 row): two products, then the sum, never contracted to
         * an fma (separate statements), so the tiled Q8_0 path (tile_v_q8) gets these bits */
        const float *f = v;
        for (int d = 0; d < n; d++) {
            const float x = acc[d] * ms;
            const float y = f[d] * w;
            acc[d] = x + y;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ATTN_TGT __attribute__((target("avx2,fma,f16c")))

/* The same arithmetic 8 lanes at a time (F16C conversions round to nearest even,
 * exactly as the scalar nk_fp32_to_fp16, and FMA is fused like fmaf). */
ATTN_TGT static void v_mad_plain_f16c(int n, float *acc, const void *v, bool f16, float p) {
    if (!f16) {
        v_mad_plain(n, acc, v, f16, p);
        return;
    }
    const uint16_t *h = v;
    const __m256 vp = _mm256_set1_ps(p);
    int d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d)));
        _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(x, vp, _mm256_loadu_ps(acc + d)));
    }
    for (; d < n; d++) acc[d] = fmaf(nk_fp16_to_fp32(h[d]), p, acc[d]);
}

ATTN_TGT static void v_mad_flash_f16c(int n, float *acc, const void *v, bool f16, float ms, float w) {
    if (!f16) {
        v_mad_flash(n, acc, v, f16, ms, w);
        return;
    }
    const uint16_t *h = v;
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

/* avx512vnni: the quantized caches' integer dots (decq_*); these kernels run only when the
 * tensor layer picked its avx512vnni level (attn_simd512) */
#define ATTN_TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

ATTN_TGT512 static inline __m512 rt_f16_512(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

/* Scores of one f16 query against n_kv cache rows: the arithmetic of the AVX-512 F16
 * vec_dot (two 16-lane accumulators over 32-element steps, then the lane sum), with
 * the query converted once instead of per row. NQ = hd / 16 (even). */
ATTN_TGT512 static inline __attribute__((always_inline)) void scores_f16_512(const int NQ, int n_kv, const uint16_t *qh,
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

ATTN_TGT512 static bool scores_f16_fast(int hd, int n_kv, const uint16_t *qh, const uint8_t *kb, size_t k_row,
                                        float scale, float *scores) {
    switch (hd) {
    case 64: scores_f16_512(4, n_kv, qh, kb, k_row, scale, scores); return true;
    case 128: scores_f16_512(8, n_kv, qh, kb, k_row, scale, scores); return true;
    case 256: scores_f16_512(16, n_kv, qh, kb, k_row, scale, scores); return true;
    default: return false;
    }
}

/* f32 -> f16 with F16C (round to nearest even, the same bits as nk_fp32_to_fp16) */
ATTN_TGT static void f32_to_f16_f16c(const float *x, uint16_t *h, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = nk_fp32_to_fp16(x[i]);
}

static bool attn_simd512(void) { return strcmp(nk_tensor_isa(), "avx512vnni") == 0; }

/* The tensor layer's CPU detection picked an AVX2 (or AVX-512) level only if the CPU
 * and OS support AVX2, FMA and F16C, which is all these kernels use. */
static bool attn_simd(void) { return strncmp(nk_tensor_isa(), "avx", 3) == 0; }

void nk_f32_to_f16_row(const float *x, uint16_t *h, int n) {
    if (attn_simd()) f32_to_f16_f16c(x, h, n);
    else for (int i = 0; i < n; i++) h[i] = nk_fp32_to_fp16(x[i]);
}
#else
static bool attn_simd(void) { return false; }
static bool attn_simd512(void) { return false; }
static bool scores_f16_fast(int hd, int n_kv, const uint16_t *qh, const uint8_t *kb, size_t k_row, float scale,
                            float *scores) {
    (void)hd, (void)n_kv, (void)qh, (void)kb, (void)k_row, (void)scale, (void)scores;
    return false;
}
static void f32_to_f16_f16c(const float *x, uint16_t *h, int n) {
    for (int i = 0; i < n; i++) h[i] = nk_fp32_to_fp16(x[i]);
}

void nk_f32_to_f16_row(const float *x, uint16_t *h, int n) { f32_to_f16_f16c(x, h, n); }
#define v_mad_plain_f16c v_mad_plain
#define v_mad_flash_f16c v_mad_flash
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TILE_INLINE ATTN_TGT512 static inline __attribute__((always_inline))
/* the loops over rows and registers must unroll for the accumulators to stay in registers */
#define TILE_UNROLL _Pragma("GCC unroll 16")

static tile_ws tile_carve(void *base, int hd) {
    uint8_t *p = base;
    tile_ws t;
    t.kf = (float *)p, p += round64((size_t)TILE_KF * 4);
    t.qf = (float *)p, p += round64((size_t)TILE_RMAX * (size_t)hd * 4);
    t.acc = (float *)p, p += round64((size_t)TILE_RMAX * (size_t)hd * 4);
    t.sc = (float *)p, p += round64((size_t)TILE_RMAX * TILE_CMAX * 4);
    t.ms = (float *)p, p += round64((size_t)TILE_RMAX * TILE_CMAX * 4);
    t.w = (float *)p, p += round64((size_t)TILE_RMAX * TILE_CMAX * 4);
    t.resc = (uint32_t *)p, p += round64((size_t)TILE_CMAX * 4);
    t.valid = (uint32_t *)p;
    return t;
}

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
 * tile_exp_pd is that expression, 8 lanes at a time, operation for operation: the
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

TILE_INLINE __m512d tile_exp_pd(__m512d x, const __m512d *tab) {
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
        const __m512d ylo = tile_exp_pd(lo, tab), yhi = tile_exp_pd(hi, tab);
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
    return tile_exp_near(tile_exp_pd(lo, tab)) | (unsigned)tile_exp_near(tile_exp_pd(hi, tab)) << 8;
}

/* Once per process: the table, then tile_exp_pd against expf over [-103, 0] (every
 * 263rd float): every input whose double lies near a midpoint (where two libraries'
 * roundings could part) and every input of one block in 16; about 300,000 expf calls. */
static pthread_once_t tile_exp_once = PTHREAD_ONCE_INIT;
ATTN_TGT512 static void tile_exp_init(void) {
    for (int i = 0; i < 32; i++) {
        const double t = (double)exp2l((long double)i / 32.0L);
        uint64_t b;
        memcpy(&b, &t, 8);
        tile_exp_tab[i] = b - ((uint64_t)i << 47);
    }
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

ATTN_TGT512 static void tile_expf(float *x, int n) {
    int st = atomic_load_explicit(&tile_exp_state, memory_order_acquire);
    if (st == 0) {
        pthread_once(&tile_exp_once, tile_exp_init);
        st = atomic_load_explicit(&tile_exp_state, memory_order_acquire);
    }
    if (st == 1) tile_expf_run(x, n, true);
    else tile_expf_run(x, n, false);
}

void nk_attn_expf(float *x, int n) {
    if (attn_simd512()) tile_expf(x, n);
    else
        for (int i = 0; i < n; i++) x[i] = expf(x[i]);
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

/* _mm512_reduce_add_ps's tree (lanes l + l+8, then + l+4, then + l+2, then + l+1) on
 * 16 vectors at once: each level adds the same lane pairs of two vectors packed side
 * by side. Returns the 16 sums in position order. */
TILE_INLINE __m512 tile_pair1(__m512 x0, __m512 x1) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, 0x44), _mm512_shuffle_f32x4(x0, x1, 0xEE));
}
TILE_INLINE __m512 tile_pair2(__m512 y0, __m512 y1) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(y0, y1, 0x88), _mm512_shuffle_f32x4(y0, y1, 0xDD));
}
/* The tree's last two levels: z[g]'s 128-bit group i holds position 4g+i's 4 partial
 * sums (after tile_pair1/tile_pair2); returns the 16 sums in position order. */
TILE_INLINE __m512 tile_tree_last(const __m512 z[4]) {
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x44), _mm512_shuffle_ps(z[0], z[1], 0xEE));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_ps(z[2], z[3], 0x44), _mm512_shuffle_ps(z[2], z[3], 0xEE));
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, 0x88), _mm512_shuffle_ps(u0, u1, 0xDD));
    return _mm512_permutexvar_ps(order, r);   /* lane 4g+i of r holds position 4i+g */
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
} tile_one;

/* One task of the plan (see the section comment): up to pl->NS consecutive tiles of one
 * KV head and head group, walking the positions once in chunks; per chunk the tiles
 * run one after the other, the last (the most positions) first, so the chunk's K and V
 * are read from memory once and its V rows converted to f32 once for all of them. Each
 * row's arithmetic is the one-tile loop's: the chunking and the tile order change no
 * bits. ws: this thread's scratch. */
ATTN_TGT512 static void tile_task(const nk_attn *a, const tile_plan *pl, int task, void *scratch) {
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

    for (int c0 = j_first; c0 <= j_last; c0 += C) {
        /* positions of this chunk whose V rows t.kf holds in f32 (0: none; the small-tile
         * scores overwrite it with K) */
        int vf_n = 0;
        for (int k = 0; k < n_ts; k++) {
            tile_one *o = &ts[k];
            const int R = o->R;
            const int tj0 = o->lo[0], tj1 = o->hi[R - 1];
            if (tj1 < c0 || tj0 >= c0 + C) continue;   /* the tile sees nothing of this chunk */
            const int n = NK_MIN(C, tj1 + 1 - c0), npad = (n + 15) & ~15;
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
            tile_expf(t.sc, n_exp);
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
        const tile_one *o = &ts[k];
        float S[TILE_RMAX];
        _mm512_storeu_ps(S, o->vS);
        for (int r = 0; r < o->R; r++) {
            const int tl = r / ng, h = kvh * group + g0 + r % ng;
            float *out = a->out + (size_t)(o->t0 + tl) * o_stride + (size_t)h * (size_t)hd_v;
            const __m512 inv = _mm512_set1_ps(S[r] == 0.0f ? 0.0f : 1.0f / S[r]);
            for (int d = 0; d < hd_v; d += 16)
                _mm512_storeu_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(o->acc + (size_t)r * hd_v + d), inv));
        }
    }
}
/* ---- decoding at depth: the cache streamed in position order (f16 cache, AVX-512) ----
 *
 * One query token over a long cache is a tall, thin problem: a few query rows per KV
 * head against thousands of positions, bound by reading K and V once. A task is a run
 * of consecutive KV heads (dec_plan) over all the positions the token sees, walked in
 * blocks of 16 positions: for each block the K rows of the task's heads (one
 * contiguous stretch of every cache row) and then their V rows, so each thread streams
 * its own columns of the cache in order, in 2 MB pages (session.c), with software
 * prefetch ahead. Per block: for each KV head its query rows' 16 scores (the F16
 * vec_dot's arithmetic, tile_scores' reduction tree, each K row read from the cache and
 * converted once for two query rows: no f32 copy of K), the online softmax of the 16
 * positions at once (the running max as a prefix scan); then the exponentials of every
 * row of the task in one pass, the sums in position order (four rows' chains at once),
 * and per KV head the V accumulation in f32 as the scalar description (v_mad_flash: acc
 * = acc * ms when ms != 1, then fma(v, w, acc); the group's rows share each V load),
 * one pass over all positions.
 * The cache is not split over its length: the description accumulates in position
 * order, so any cut (flash-decoding's chunks, merged afterwards, as llama.cpp's decode
 * does at 512 positions and more) gives other bits than the one pass the tiled prefill
 * makes, and a request served from the prefix cache would sample differently from the
 * same request decoded whole. Every head is independent, so the bits are those of the
 * tiled and per-query paths and do not depend on the plan or the thread count. */
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
 * (R rows, queries qf q_stride bytes apart), in three steps. dec_blk_k: the scores of
 * every row (K read once per KV head from the cache) and the softmax exponents E
 * ([R][16]), with each row's running max M (M[r * m_stride]) and the lanes where the
 * exponential is ms (a new max: gts). */
ATTN_TGT512 static void dec_blk_k(const nk_attn *a, int kv0, int kv1, const void *qf, size_t q_stride, int b0, int n,
                                  int pf_n, float *M, size_t m_stride, float *E, uint32_t *gts) {
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
        for (int g = 0; g < group; g++)
            gts[r0 + g] = dec_softmax_arg(_mm512_loadu_ps(E + 16 * (r0 + g)), n, M + (size_t)(r0 + g) * m_stride,
                                          E + 16 * (r0 + g));
    }
}

/* dec_blk_soft: the exponentials of E in one pass, then per row ms, w ([R][16] each; ms
 * may be E itself) and the positions that rescale (resc), and the sums S = S * ms + w in
 * position order (S[r * s_stride]). */
ATTN_TGT512 static void dec_blk_soft(int R, int n, float *E, const uint32_t *gts, float *S, size_t s_stride, float *ms,
                                     float *w, uint32_t *resc) {
    tile_expf(E, 16 * R);
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

/* the rows' blocks of positions: [lo, j1) in DEC_B steps */
static int dec_lo(const nk_attn *a) { return a->n_swa > 0 ? NK_MAX(0, a->pos0 - a->n_swa + 1) : 0; }

/* the prefetches DEC_AHEAD blocks on: the positions of the block that far ahead */
static int dec_pf_n(const nk_attn *a, int b0) { return NK_MAX(0, NK_MIN(DEC_B, a->pos0 + 1 - (b0 + DEC_AHEAD * DEC_B))); }

/* Task `task` of segment a under plan (kv0 = task * hpt): its heads' outputs, block by
 * block: dec_blk_k, then dec_blk_v. */
ATTN_TGT512 static void dec_task(const nk_attn *a, int hpt, int task, void *scratch) {
    const int group = a->n_head / a->n_head_kv, hd_v = a->hd_v;
    const int kv0 = task * hpt, kv1 = NK_MIN(kv0 + hpt, a->n_head_kv), R = (kv1 - kv0) * group;
    const int hd = NK_MAX(a->hd_k, hd_v);
    const size_t hf = dec_head_floats(hd);
    const tile_ws t = tile_carve(scratch, hd);
    /* per query row of the task: the V accumulator, then M and S */
    float *accs = (float *)((uint8_t *)scratch + tile_bytes(hd));
    /* the queries (t.qf: R rows of at most 4 * hd bytes), the exponents and then the
     * exponentials (t.sc), ms and w (t.ms, t.w): [R][16] each */
    const size_t q_stride = dec_q_stride(a);
    dec_queries(a, kv0, R, t.qf, q_stride);
    for (int r = 0; r < R; r++) {
        float *ph = accs + (size_t)r * hf;
        memset(ph, 0, (size_t)hd_v * sizeof(float));
        ph[hd_v] = -INFINITY;
        ph[hd_v + 1] = 0.0f;
    }
    for (int b0 = dec_lo(a); b0 <= a->pos0; b0 += DEC_B) {
        const int n = NK_MIN(DEC_B, a->pos0 + 1 - b0), pf_n = dec_pf_n(a, b0);
        dec_blk_k(a, kv0, kv1, t.qf, q_stride, b0, n, pf_n, accs + hd_v, hf, t.sc, t.valid);
        dec_blk_soft(R, n, t.sc, t.valid, accs + hd_v + 1, hf, t.ms, t.w, t.resc);
        dec_blk_v(a, kv0, kv1, b0, n, pf_n, t.ms, t.w, t.resc, accs, hf);
    }
    dec_out(a, kv0, R, accs, hf, accs + hd_v + 1, hf);
}

/* ---- decoding at depth on a pair of threads: K on one, V on the other ----
 *
 * Split by KV heads, each of two threads reads its half of every cache row: 1 KB of
 * every 2 KB for qwen3-0.6b, two strided streams per thread. The hardware prefetchers
 * follow such a stream badly: on this machine (Zen 5, 2 cores) a plain read of half
 * rows moved 11-13 GB/s where the same bytes read as two contiguous streams, one
 * thread reading all of K and the other all of V, moved 30-34 GB/s (the same run). So a
 * lone one-token segment at depth on an even number of threads runs as pairs: the
 * producer (even ith) reads K and does dec_blk_k for all the pair's heads (the scores
 * and softmax exponents), writing each block's exponents and new-max lanes into a ring
 * of DEC_RING slots; the consumer (the next ith) reads V and does dec_blk_soft (the
 * exponentials, ms, w and the sums) and dec_blk_v, block by block, as soon as the
 * producer has published the block (with the f32 accumulator the scores cost about
 * twice the V accumulation: the exponentials and sums on the consumer even the pair
 * out). The arithmetic is dec_task's, in the same order per row: the same bits.
 * Each thread of the run executes its own role (no task queue: a queue could hand both
 * roles to one thread, which would wait forever on itself); a waiting thread spins,
 * then yields (a machine with more runnable threads than cores must run the other). */
#ifndef DEC_SPIN
#define DEC_SPIN 4096   /* pauses before a waiting thread yields */
#endif
#ifndef DEC_PIPE_MIN
#define DEC_PIPE_MIN 256   /* positions: below, the pair's handshakes cost more than the streams gain */
#endif

/* wait until *c >= target; false if the pair quits first */
static bool dec_wait(atomic_int *c, int target, dec_pipe *pp) {
    for (int i = 0; atomic_load_explicit(c, memory_order_acquire) < target; i++) {
        if (atomic_load_explicit(&pp->quit, memory_order_relaxed)) return false;
        if (i < DEC_SPIN) _mm_pause();
        else {
            if (i == DEC_SPIN) atomic_store_explicit(&pp->yielded, 1, memory_order_relaxed);
            sched_yield();
        }
    }
    return true;
}

/* Pair `pair` of n_pairs on segment a; producer or consumer; ws: this thread's scratch,
 * pws: the producer's (the ring, M and S). */
ATTN_TGT512 static void dec_pipe_run(const nk_attn *a, int pair, int n_pairs, bool producer, dec_pipe *pp, uint8_t *ws,
                                     uint8_t *pws, nk_pool *ctl, int ith) {
    const int group = a->n_head / a->n_head_kv, hd = NK_MAX(a->hd_k, a->hd_v), hd_v = a->hd_v;
    const int kv0 = pair * a->n_head_kv / n_pairs, kv1 = (pair + 1) * a->n_head_kv / n_pairs, R = (kv1 - kv0) * group;
    const size_t q_stride = dec_q_stride(a), hf = dec_head_floats(hd);
    /* the producer's scratch: queries, the running maxima, the ring; the consumer's:
     * per row the accumulator, then (at hd_v + 1) the sum */
    uint8_t *p = pws;
    void *qf = p;
    p += dec_pipe_q(hd);
    float *M = (float *)p;
    p += round64((size_t)DEC_RMAX * 4);
    uint8_t *ring = p;
    float *acc = (float *)ws;
    const int lo = dec_lo(a), nb = (a->pos0 + 1 - lo + DEC_B - 1) / DEC_B;
    if (producer) {
        dec_queries(a, kv0, R, qf, q_stride);
        for (int r = 0; r < R; r++) M[r] = -INFINITY;
    } else {
        for (int r = 0; r < R; r++) {
            memset(acc + (size_t)r * hf, 0, (size_t)hd_v * sizeof(float));
            acc[(size_t)r * hf + hd_v + 1] = 0.0f;
        }
    }
    for (int b = 0; b < nb; b++) {
        const int b0 = lo + b * DEC_B, n = NK_MIN(DEC_B, a->pos0 + 1 - b0), pf_n = dec_pf_n(a, b0);
        /* a slot: the exponents (then ms), w, resc, the new-max lanes */
        uint8_t *slot = ring + (size_t)(b % DEC_RING) * dec_ring_slot();
        float *E = (float *)slot, *w = (float *)(slot + round64((size_t)DEC_RMAX * 16 * 4));
        uint32_t *resc = (uint32_t *)(slot + 2 * round64((size_t)DEC_RMAX * 16 * 4));
        uint32_t *gts = resc + round64((size_t)DEC_RMAX * 4) / 4;
        if (b % 64 == 63 && nk_pool_should_stop(ctl, ith)) {
            atomic_store(&pp->quit, 1);
            return;
        }
        if (producer) {
            if (!dec_wait(&pp->used, b - DEC_RING + 1, pp)) return;
            dec_blk_k(a, kv0, kv1, qf, q_stride, b0, n, pf_n, M, 1, E, gts);
            atomic_store_explicit(&pp->made, b + 1, memory_order_release);
        } else {
            if (!dec_wait(&pp->made, b + 1, pp)) return;
            dec_blk_soft(R, n, E, gts, acc + hd_v + 1, hf, E, w, resc);
            dec_blk_v(a, kv0, kv1, b0, n, pf_n, E, w, resc, acc, hf);
            atomic_store_explicit(&pp->used, b + 1, memory_order_release);
        }
    }
    if (!producer) dec_out(a, kv0, R, acc, hf, acc + hd_v + 1, hf);
}
#else
void nk_attn_expf(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = expf(x[i]);
}
static void tile_task(const nk_attn *a, const tile_plan *pl, int task, void *scratch) {
    (void)a, (void)pl, (void)task, (void)scratch;
}
static void dec_task(const nk_attn *a, int hpt, int task, void *scratch) {
    (void)a, (void)hpt, (void)task, (void)scratch;
}
#define DEC_PIPE_MIN 256
static void dec_pipe_run(const nk_attn *a, int pair, int n_pairs, bool producer, dec_pipe *pp, uint8_t *ws, uint8_t *pws,
                         nk_pool *ctl, int ith) {
    (void)a, (void)pair, (void)n_pairs, (void)producer, (void)pp, (void)ws, (void)pws, (void)ctl, (void)ith;
}
#endif

/* The pairs need both threads on a core at once: a waiting thread spins on its
 * partner's progress every block. On a machine with more runnable threads than cores
 * (other processes busy) the partner is often off its core, and a run on pairs took 2-4x
 * longer than the same run split by heads (bench_attn at load 6 on 2 cores). So a run in
 * which a wait outlasted the spin (DEC_SPIN pauses, ~100 us) sends the next runs to the
 * split by heads, 16 at first and twice as many after each further such run (at most
 * 4096: ~150 tokens of a 28-layer model), and a run without such a wait clears it. The
 * bits are the same either way; this is process-wide (relaxed atomics: a heuristic). */
static atomic_int dec_backoff_left, dec_backoff_len;
static bool dec_backoff_skip(void) {
    if (atomic_load_explicit(&dec_backoff_left, memory_order_relaxed) <= 0) return false;
    atomic_fetch_sub_explicit(&dec_backoff_left, 1, memory_order_relaxed);
    return true;
}
static void dec_backoff_update(bool lost) {
    if (!lost) {
        atomic_store_explicit(&dec_backoff_len, 0, memory_order_relaxed);
        return;
    }
    const int len = NK_MIN(4096, NK_MAX(16, 2 * atomic_load_explicit(&dec_backoff_len, memory_order_relaxed)));
    atomic_store_explicit(&dec_backoff_len, len, memory_order_relaxed);
    atomic_store_explicit(&dec_backoff_left, len, memory_order_relaxed);
}

/* Segments per pool run (nk_attention_multi runs more in several). */
#define ATTN_MAX_SEG 64

typedef struct attn_run {
    const nk_attn *segs;
    int n_seg;
    const nk_type_traits *kt;   /* cache type traits (vec_dot, from_float) */
    bool simd, simd512, tiled;
    nk_pool *ctl;               /* whose abort flag the tasks check (may differ from the run's pool) */
    int first[ATTN_MAX_SEG + 1];   /* tasks of segment i: [first[i], first[i+1]) */
    tile_plan plan[ATTN_MAX_SEG];  /* tiled path: each segment's tasks */
    int dec[ATTN_MAX_SEG];         /* > 0: decoding at depth, KV heads per task (dec_task) */
    atomic_int next;
    int n_pairs;                   /* > 0: one segment decoded on pairs of threads (dec_pipe_run) */
    dec_pipe pipes[DEC_MAX_PAIRS];
} attn_run;

static int attn_seg_of(const attn_run *run, int task) {
    int i = 0;
    while (task >= run->first[i + 1]) i++;
    return i;
}

/* Threads take tasks in order (per segment the heaviest first) until none are left:
 * causal rows differ in length, so a fixed split by rows would leave one thread
 * waiting. */
static void attn_tile_fn(void *ctx, int ith, int nth) {
    attn_run *run = ctx;
    const nk_attn *a0 = &run->segs[0];
    const size_t tb = attn_thread_bytes(a0->n_ctx, NK_MAX(a0->hd_k, a0->hd_v));
    void *ws = (uint8_t *)a0->scratch + (size_t)ith * tb;
    /* the pairs, if the run got the threads they were planned for (a run outside a
     * lease may get fewer than nk_pool_size said: then the task queue below) */
    if (run->n_pairs && nth >= 2 * run->n_pairs) {
        if (ith < 2 * run->n_pairs)
            dec_pipe_run(a0, ith / 2, run->n_pairs, ith % 2 == 0, &run->pipes[ith / 2], ws,
                         (uint8_t *)a0->scratch + (size_t)(ith & ~1) * tb, run->ctl, ith);
        return;
    }
    const int n_task = run->first[run->n_seg];
    for (int task; (task = atomic_fetch_add_explicit(&run->next, 1, memory_order_relaxed)) < n_task;) {
        if (nk_pool_should_stop(run->ctl, ith)) return;
        const int sg = attn_seg_of(run, task);
        if (run->dec[sg]) dec_task(&run->segs[sg], run->dec[sg], task - run->first[sg], ws);
        else tile_task(&run->segs[sg], &run->plan[sg], task - run->first[sg], ws);
    }
}

/* One (token, head) of the per-query path; base: this thread's scratch. */
static void attn_one(const attn_run *run, const nk_attn *a, int t, int h, uint8_t *base) {
    const bool f16 = a->kv_type == NK_TYPE_F16;
    /* a quantized cache (Q8_0): the query meets K in K's dot partner format, and each
     * V row is dequantized and accumulated in f32, as ggml's flash kernel does */
    const bool vq = a->kv_type != NK_TYPE_F16 && a->kv_type != NK_TYPE_F32;
    const nk_type_traits *qt = (!f16 && run->kt->vec_dot_type != NK_TYPE_F32)
                                   ? nk_type_get((uint32_t)run->kt->vec_dot_type) : NULL;
    const size_t sz = round64((size_t)a->n_ctx * 4), hz = round64((size_t)NK_MAX(a->hd_k, a->hd_v) * 4);
    float *scores = (float *)base;
    float *aux = (float *)(base + sz);          /* flash: rescale factors; plain: f16 probabilities */
    void *qconv = base + 2 * sz;
    float *acc = (float *)(base + 2 * sz + hz);
    float *vrow = (float *)(base + 2 * sz + 2 * hz);   /* a dequantized V row */
    const int group = a->n_head / a->n_head_kv;
    const size_t k_head = nk_row_size(a->kv_type, a->hd_k), v_head = nk_row_size(a->kv_type, a->hd_v);
    const size_t k_row = (size_t)a->n_head_kv * k_head;   /* bytes per position */
    const size_t v_row = (size_t)a->n_head_kv * v_head;
    const size_t q_stride = (size_t)a->n_head * (size_t)a->hd_k;
    const size_t o_stride = (size_t)a->n_head * (size_t)a->hd_v;

    {
        const int kvh = h / group;
        const int pos = a->pos0 + t;
        const int lo = a->n_swa > 0 ? NK_MAX(0, pos - a->n_swa + 1) : 0;
        const int n_kv = pos + 1 - lo;
        const float *q = a->q + (size_t)t * q_stride + (size_t)h * (size_t)a->hd_k;
        const void *qv = q;
        if (f16) {
            if (run->simd) f32_to_f16_f16c(q, qconv, a->hd_k);
            else run->kt->from_float(q, qconv, a->hd_k);
            qv = qconv;
        } else if (qt) {
            qt->from_float(q, qconv, a->hd_k);
            qv = qconv;
        }
        const uint8_t *kb = (const uint8_t *)a->k + (size_t)lo * k_row + (size_t)kvh * k_head;
        const uint8_t *vb = (const uint8_t *)a->v + (size_t)lo * v_row + (size_t)kvh * v_head;
        if (!(f16 && run->simd512 && scores_f16_fast(a->hd_k, n_kv, qv, kb, k_row, a->scale, scores))) {
            for (int j = 0; j < n_kv; j++) {
                run->kt->vec_dot(a->hd_k, &scores[j], kb + (size_t)j * k_row, qv);
                scores[j] *= a->scale;
            }
        }
        float *out = a->out + (size_t)t * o_stride + (size_t)h * (size_t)a->hd_v;
        memset(acc, 0, (size_t)a->hd_v * sizeof *acc);

        if (a->flash) {
            /* one pass as ggml walks it: running max M and sum S; a new max rescales
             * the accumulator by exp(Mold - M), other positions weigh exp(s - M) */
            float M = -INFINITY, S = 0.0f;
            for (int j = 0; j < n_kv; j++) {
                const float s = scores[j];
                float ms = 1.0f, w = 1.0f;
                if (s > M) {
                    ms = expf(M - s);
                    M = s;
                } else {
                    w = expf(s - M);
                }
                S = S * ms + w;
                const void *vj = vb + (size_t)j * v_row;
                if (vq) {
                    run->kt->to_float(vj, vrow, a->hd_v);
                    vj = vrow;
                }
                if (run->simd) v_mad_flash_f16c(a->hd_v, acc, vj, f16, ms, w);
                else v_mad_flash(a->hd_v, acc, vj, f16, ms, w);
            }
            const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
            for (int d = 0; d < a->hd_v; d++) out[d] = acc[d] * S_inv;
            return;
        }

        /* plain: softmax (sum in double, as ggml), probabilities rounded to the cache
         * type as ggml's KQ x V matmul does, then the weighted sum of V rows */
        float max = -INFINITY;
        for (int j = 0; j < n_kv; j++) max = scores[j] > max ? scores[j] : max;
        double sum = 0.0;
        for (int j = 0; j < n_kv; j++) {
            scores[j] = expf(scores[j] - max);
            sum += (double)scores[j];
        }
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_kv; j++) {
            const float p = scores[j] * inv;
            aux[j] = f16 ? round_f16(p) : p;
        }
        for (int j = 0; j < n_kv; j++) {
            const void *vj = vb + (size_t)j * v_row;
            if (run->simd) v_mad_plain_f16c(a->hd_v, acc, vj, f16, aux[j]);
            else v_mad_plain(a->hd_v, acc, vj, f16, aux[j]);
        }
        memcpy(out, acc, (size_t)a->hd_v * sizeof *acc);
    }
}

/* The per-query path: (token, head) tasks over all segments, strided by thread. */
static void attn_fn(void *ctx, int ith, int nth) {
    const attn_run *run = ctx;
    const nk_attn *a0 = &run->segs[0];
    uint8_t *base = (uint8_t *)a0->scratch + (size_t)ith * attn_thread_bytes(a0->n_ctx, NK_MAX(a0->hd_k, a0->hd_v));
    const int n_task = run->first[run->n_seg];
    int sg = 0;
    for (int task = ith; task < n_task; task += nth) {
        if (nk_pool_should_stop(run->ctl, ith)) return;
        while (task >= run->first[sg + 1]) sg++;
        const nk_attn *a = &run->segs[sg];
        const int local = task - run->first[sg];
        attn_one(run, a, local / a->n_head, local % a->n_head, base);
    }
}

void nk_attention_multi(nk_pool *pool, const nk_attn *segs, int n_seg) {
    for (int s0 = 0; s0 < n_seg; s0 += ATTN_MAX_SEG) {
        if (nk_pool_aborted(pool)) return;
        attn_run run = {
            .segs = segs + s0,
            .n_seg = NK_MIN(ATTN_MAX_SEG, n_seg - s0),
            .kt = nk_type_get(segs[s0].kv_type),
            .simd = attn_simd(),
            .simd512 = attn_simd512(),
            .ctl = pool,
        };
        double work = 0;
        run.tiled = run.simd512;
        for (int i = 0; i < run.n_seg; i++) {
            const nk_attn *a = &run.segs[i];
            work += (double)a->n_tok * a->n_head * (double)(a->pos0 + a->n_tok) * (a->hd_k + a->hd_v);
            run.tiled = run.tiled && tile_ok(a);
        }
        nk_pool *use = work < NK_PAR_MIN_WORK ? NULL : pool;
        run.first[0] = 0;
        const int nth = use ? nk_pool_size(use) : 1;
        int n_dec = 0, n_dec_kvh = 0;
        for (int i = 0; i < run.n_seg; i++)
            if (run.tiled && dec_ok(&run.segs[i])) n_dec++, n_dec_kvh += run.segs[i].n_head_kv;
        if (n_dec_kvh < nth) n_dec = 0;   /* too few heads: the tiled path splits groups */
        for (int i = 0; i < run.n_seg; i++) {
            const nk_attn *a = &run.segs[i];
            run.dec[i] = n_dec && dec_ok(a) ? dec_hpt(a, nth, n_dec) : 0;
            if (run.tiled) run.plan[i] = tile_plan_make(a, nth);
            run.first[i + 1] = run.first[i] + (run.dec[i]     ? (a->n_head_kv + run.dec[i] - 1) / run.dec[i]
                                               : run.tiled ? run.plan[i].n_task
                                                           : a->n_tok * a->n_head);
        }
        atomic_init(&run.next, 0);
        /* a lone one-token segment at depth on an even number of threads: pairs, each
         * a run of KV heads (dec_pipe_run) */
        run.n_pairs = 0;
        if (run.n_seg == 1 && run.dec[0] && nth >= 2 && nth % 2 == 0 && !dec_backoff_skip()) {
            const nk_attn *a = &run.segs[0];
            const int pairs = NK_MIN(NK_MIN(nth / 2, a->n_head_kv), DEC_MAX_PAIRS);
            const int span = a->pos0 + 1 - (a->n_swa > 0 ? NK_MAX(0, a->pos0 - a->n_swa + 1) : 0);
            if (span >= DEC_PIPE_MIN && (a->n_head_kv + pairs - 1) / pairs * (a->n_head / a->n_head_kv) <= DEC_RMAX)
                run.n_pairs = pairs;
            for (int i = 0; i < run.n_pairs; i++) {
                atomic_init(&run.pipes[i].made, 0);
                atomic_init(&run.pipes[i].used, 0);
                atomic_init(&run.pipes[i].quit, 0);
                atomic_init(&run.pipes[i].yielded, 0);
            }
        }
        nk_pool_run(use, run.tiled ? attn_tile_fn : attn_fn, &run);
        if (run.n_pairs) {
            bool lost = false;
            for (int i = 0; i < run.n_pairs; i++) lost = lost || atomic_load_explicit(&run.pipes[i].yielded, memory_order_relaxed);
            dec_backoff_update(lost);
        }
    }
}

void nk_attention(nk_pool *pool, const nk_attn *a) { nk_attention_multi(pool, a, 1); }

/*
 * attention.c: the attention block, plain and flash numerics (see ops.h for the
 * contracts and the numerics).
 */
#include "tensor/ops.h"
#include "tensor/attn_plan.h"
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

/* The plan of the tiled path: tiles of T tokens and G heads (attn_plan.h) */
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

/* per-thread scratch: the per-query path's (scores [n_ctx] f32, probabilities [n_ctx]
 * f32, the query in the cache type [hd], the V accumulator [hd], a dequantized V row
 * [hd] and the merged pieces' accumulator [hd], hd = max(hd_k, hd_v), each rounded up
 * to 64 bytes), the tiled path's (with its task's further tiles and the tiles' merged
 * pieces) or decoding's (the tiled path's and, split by heads, TILE_RMAX rows of the
 * total and of the piece, or, split over the length, DEC_RMAX queries), whichever is
 * larger */
static size_t attn_thread_bytes(int n_ctx, int hd) {
    const size_t plain = 2 * round64((size_t)n_ctx * 4) + 4 * round64((size_t)hd * 4);
    const size_t more = NK_MAX(NK_MAX(dec_task_bytes(hd), dec_split_q(hd)), tile_more_bytes(hd));
    return NK_MAX(plain, tile_bytes(hd) + more);
}

/* The scratch: the pieces' states shared by the threads (dec_split_bytes), then each
 * thread's own. */
size_t nk_attn_wsize(int n_threads, int n_ctx, int hd) {
    return dec_split_bytes(n_ctx, hd) + (size_t)n_threads * attn_thread_bytes(n_ctx, hd);
}

static uint8_t *attn_thread_ws(const nk_attn *a0, int ith) {
    const int hd = NK_MAX(a0->hd_k, a0->hd_v);
    return (uint8_t *)a0->scratch + dec_split_bytes(a0->n_ctx, hd) + (size_t)ith * attn_thread_bytes(a0->n_ctx, hd);
}

/* The merge of the flash numerics' pieces (ops.h). Separate statements: never
 * contracted to an fma. */
void nk_attn_piece_merge(int n, float *restrict accT, float *MT, float *ST, const float *restrict acc, float M, float S) {
    float a, b;
    nk_attn_piece_factors(MT, ST, M, S, &a, &b);
    for (int d = 0; d < n; d++) {
        const float p = accT[d] * a, r = acc[d] * b;
        accT[d] = p + r;
    }
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
/* The x86 helpers (arch/x86/attn_query.c) for f16 rows; f32 rows keep the scalar loop */
static void v_mad_plain_f16c(int n, float *acc, const void *v, bool f16, float p) {
    if (f16) nk_attn_q_vmad_plain_f16(n, acc, v, p);
    else v_mad_plain(n, acc, v, f16, p);
}

static void v_mad_flash_f16c(int n, float *acc, const void *v, bool f16, float ms, float w) {
    if (f16) nk_attn_q_vmad_flash_f16(n, acc, v, ms, w);
    else v_mad_flash(n, acc, v, f16, ms, w);
}

static bool scores_f16_fast(int hd, int n_kv, const uint16_t *qh, const uint8_t *kb, size_t k_row, float scale,
                            float *scores) {
    return nk_attn_q_scores_f16(hd, n_kv, qh, kb, k_row, scale, scores);
}

static void f32_to_f16_f16c(const float *x, uint16_t *h, int n) { nk_attn_q_f32_to_f16(x, h, n); }

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
void nk_attn_expf(float *x, int n) {
    if (attn_simd512()) nk_attn_tile_expf(x, n);
    else
        for (int i = 0; i < n; i++) x[i] = expf(x[i]);
}
#else
void nk_attn_expf(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = expf(x[i]);
}
static void nk_attn_tile_task(const nk_attn *a, const tile_plan *pl, int task, void *scratch) {
    (void)a, (void)pl, (void)task, (void)scratch;
}
static void nk_attn_dec_task(const nk_attn *a, int hpt, int task, void *scratch) {
    (void)a, (void)hpt, (void)task, (void)scratch;
}
static void nk_attn_dec_piece_task(const nk_attn *a, int p0, int p1, float *st, void *scratch) {
    (void)a, (void)p0, (void)p1, (void)st, (void)scratch;
}
static void nk_attn_dec_split_merge(const nk_attn *a, const float *st, int n_piece) { (void)a, (void)st, (void)n_piece; }
#endif

/* Tasks per thread of a segment split over its length: each task is a run of
 * consecutive pieces. One (rounded down, so a last short task goes to whichever thread
 * is free first): a thread's second task starts a new stream, and at 4,096 positions
 * two tasks per thread took 0.73 ms per layer against 0.60 (bench_attn 4096 32 8 128,
 * session 12; equal at 16,384). bench_attn builds try others with -D. */
#ifndef DEC_TPT_SPLIT
#define DEC_TPT_SPLIT 1
#endif
static atomic_long dec_split_runs;
long nk_attn_dec_split_runs(void) { return atomic_load_explicit(&dec_split_runs, memory_order_relaxed); }

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
    int n_piece;                   /* > 0: one segment decoded split over its length, in pieces */
    int ppt;                       /* pieces per task (consecutive) */
    float *states;                 /* their states: [n_piece][n_head][dec_head_floats(hd)] */
    atomic_int done;               /* pieces finished */
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
    void *ws = attn_thread_ws(a0, ith);
    (void)nth;
    if (run->n_piece) {
        const size_t per = (size_t)a0->n_head * dec_head_floats(NK_MAX(a0->hd_k, a0->hd_v));
        const int n_task = (run->n_piece + run->ppt - 1) / run->ppt;
        for (int k; (k = atomic_fetch_add_explicit(&run->next, 1, memory_order_relaxed)) < n_task;) {
            if (nk_pool_should_stop(run->ctl, ith)) return;
            const int p0 = k * run->ppt, p1 = NK_MIN(run->n_piece, p0 + run->ppt);
            nk_attn_dec_piece_task(a0, p0, p1, run->states + (size_t)p0 * per, ws);
            /* release: these pieces' states; acquire (the last): every other's */
            if (atomic_fetch_add_explicit(&run->done, p1 - p0, memory_order_acq_rel) + (p1 - p0) == run->n_piece)
                nk_attn_dec_split_merge(a0, run->states, run->n_piece);   /* all states are written */
        }
        return;
    }
    const int n_task = run->first[run->n_seg];
    for (int task; (task = atomic_fetch_add_explicit(&run->next, 1, memory_order_relaxed)) < n_task;) {
        if (nk_pool_should_stop(run->ctl, ith)) return;
        const int sg = attn_seg_of(run, task);
        if (run->dec[sg]) nk_attn_dec_task(&run->segs[sg], run->dec[sg], task - run->first[sg], ws);
        else nk_attn_tile_task(&run->segs[sg], &run->plan[sg], task - run->first[sg], ws);
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
    float *accT = (float *)(base + 2 * sz + 3 * hz);   /* flash: the merged pieces */
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
            /* per piece (the positions cut at multiples of NK_ATTN_SPLIT), one pass as
             * ggml walks it: running max M and sum S; a new max rescales the
             * accumulator by exp(Mold - M), other positions weigh exp(s - M). The
             * pieces then merge in position order into the total (MT, ST, accT). */
            float MT = -INFINITY, ST = 0.0f;
            for (int j0 = 0; j0 < n_kv;) {
                const int j1 = NK_MIN(n_kv, nk_attn_piece_end(lo + j0) - lo);
                float M = -INFINITY, S = 0.0f;
                memset(acc, 0, (size_t)a->hd_v * sizeof *acc);
                for (int j = j0; j < j1; j++) {
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
                if (j0 == 0) {
                    MT = M, ST = S;
                    memcpy(accT, acc, (size_t)a->hd_v * sizeof *acc);
                } else {
                    nk_attn_piece_merge(a->hd_v, accT, &MT, &ST, acc, M, S);
                }
                j0 = j1;
            }
            const float S_inv = ST == 0.0f ? 0.0f : 1.0f / ST;
            for (int d = 0; d < a->hd_v; d++) out[d] = accT[d] * S_inv;
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
    uint8_t *base = attn_thread_ws(a0, ith);
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
        /* a lone one-token segment at depth on several threads: split over its length
         * when it has at least two pieces per thread */
        run.n_piece = 0;
        atomic_init(&run.done, 0);
        if (run.n_seg == 1 && run.dec[0] && nth >= 2 && run.segs[0].n_head <= DEC_RMAX) {
            const nk_attn *a = &run.segs[0];
            const int lo = a->n_swa > 0 ? NK_MAX(0, a->pos0 - a->n_swa + 1) : 0;
            const int n_piece = a->pos0 / NK_ATTN_SPLIT - lo / NK_ATTN_SPLIT + 1;
            if (n_piece >= 2 * nth) {
                run.n_piece = n_piece;
                run.ppt = NK_MAX(1, n_piece / (DEC_TPT_SPLIT * nth));
                run.states = (float *)a->scratch;
                atomic_fetch_add_explicit(&dec_split_runs, 1, memory_order_relaxed);
            }
        }
        nk_pool_run(use, run.tiled ? attn_tile_fn : attn_fn, &run);
    }
}

void nk_attention(nk_pool *pool, const nk_attn *a) { nk_attention_multi(pool, a, 1); }

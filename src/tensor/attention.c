/*
 * attention.c: the attention block, plain and flash numerics (see ops.h for the
 * contracts and the numerics).
 */
#include "tensor/ops.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Waking the workers and joining them costs a few microseconds, so attention smaller
 * than this many multiply-adds runs on the caller (the matmul threshold in ops.c). */
#define NK_PAR_MIN_WORK 65536.0

/* ---- attention ----------------------------------------------------------------- */

/* Per-thread scratch: scores [n_ctx] f32, probabilities [n_ctx] f32, the query in
 * the cache type [hd] and the V accumulator [hd] (hd = max(hd_k, hd_v)), each piece
 * rounded up to 64 bytes. */
static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t attn_thread_bytes(int n_ctx, int hd) {
    return 2 * round64((size_t)n_ctx * 4) + 2 * round64((size_t)hd * 4);
}

size_t nk_attn_wsize(int n_threads, int n_ctx, int hd) {
    return (size_t)n_threads * attn_thread_bytes(n_ctx, hd);
}

static inline float round_f16(float x) { return nk_fp16_to_fp32(nk_fp32_to_fp16(x)); }

/* The V accumulation, scalar reference versions (acc has hd_v floats):
 *  plain: acc = fma(v, p, acc)             (f32 accumulation)
 *  flash: acc = f16(acc * ms); acc = f16(fma(v, w, acc))   (ggml's f16 accumulator) */
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
            for (int d = 0; d < n; d++) acc[d] = round_f16(acc[d] * ms);
        for (int d = 0; d < n; d++) acc[d] = round_f16(fmaf(nk_fp16_to_fp32(h[d]), w, acc[d]));
    } else {
        const float *f = v;
        for (int d = 0; d < n; d++) acc[d] = acc[d] * ms + f[d] * w;
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
        if (ms != 1.0f) a = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(a, vms), _MM_FROUND_TO_NEAREST_INT));
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d)));
        a = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_fmadd_ps(x, vw, a), _MM_FROUND_TO_NEAREST_INT));
        _mm256_storeu_ps(acc + d, a);
    }
    for (; d < n; d++) {
        if (ms != 1.0f) acc[d] = round_f16(acc[d] * ms);
        acc[d] = round_f16(fmaf(nk_fp16_to_fp32(h[d]), w, acc[d]));
    }
}

#define ATTN_TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

ATTN_TGT512 static inline __m512 rt_f16_512(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

/* The flash loop over one query's positions with the f16 V accumulator held in
 * registers (NV = hd_v / 16 zmm) instead of memory: the same operations on the same
 * values as the scalar v_mad_flash loop (rescale rounded to f16 when the max moves,
 * then the fused multiply-add rounded to f16), so the same bits. */
ATTN_TGT512 static inline __attribute__((always_inline)) void flash_f16_512(const int NV, int n_kv, const float *scores,
                                                                             const uint8_t *vb, size_t v_row, float *out) {
    __m512 acc[16];
    for (int i = 0; i < NV; i++) acc[i] = _mm512_setzero_ps();
    float M = -INFINITY, S = 0.0f;
    for (int j = 0; j < n_kv; j++) {
        const float sc = scores[j];
        float ms = 1.0f, w = 1.0f;
        if (sc > M) {
            ms = expf(M - sc);
            M = sc;
        } else {
            w = expf(sc - M);
        }
        S = S * ms + w;
        const uint16_t *h = (const uint16_t *)(vb + (size_t)j * v_row);
        if (ms != 1.0f) {
            const __m512 vms = _mm512_set1_ps(ms);
            for (int i = 0; i < NV; i++) acc[i] = rt_f16_512(_mm512_mul_ps(acc[i], vms));
        }
        const __m512 vw = _mm512_set1_ps(w);
        for (int i = 0; i < NV; i++) {
            const __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + 16 * i)));
            acc[i] = rt_f16_512(_mm512_fmadd_ps(v, vw, acc[i]));
        }
    }
    const __m512 inv = _mm512_set1_ps(S == 0.0f ? 0.0f : 1.0f / S);
    for (int i = 0; i < NV; i++) _mm512_storeu_ps(out + 16 * i, _mm512_mul_ps(acc[i], inv));
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

/* hd_v 64, 128 or 256 (the head sizes models use); false: use the generic loop */
ATTN_TGT512 static bool flash_f16_fast(int hd, int n_kv, const float *scores, const uint8_t *vb, size_t v_row,
                                       float *out) {
    switch (hd) {
    case 64: flash_f16_512(4, n_kv, scores, vb, v_row, out); return true;
    case 128: flash_f16_512(8, n_kv, scores, vb, v_row, out); return true;
    case 256: flash_f16_512(16, n_kv, scores, vb, v_row, out); return true;
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
static bool flash_f16_fast(int hd, int n_kv, const float *scores, const uint8_t *vb, size_t v_row, float *out) {
    (void)hd, (void)n_kv, (void)scores, (void)vb, (void)v_row, (void)out;
    return false;
}
static void f32_to_f16_f16c(const float *x, uint16_t *h, int n) {
    for (int i = 0; i < n; i++) h[i] = nk_fp32_to_fp16(x[i]);
}

void nk_f32_to_f16_row(const float *x, uint16_t *h, int n) { f32_to_f16_f16c(x, h, n); }
#define v_mad_plain_f16c v_mad_plain
#define v_mad_flash_f16c v_mad_flash
#endif

typedef struct attn_run {
    const nk_attn *a;
    const nk_type_traits *kt;   /* cache type traits (vec_dot, from_float) */
    size_t esize;               /* bytes per cache element */
    bool simd, simd512;
} attn_run;

static void attn_fn(void *ctx, int ith, int nth) {
    const attn_run *run = ctx;
    const nk_attn *a = run->a;
    const size_t es = run->esize;
    const bool f16 = a->kv_type == NK_TYPE_F16;
    uint8_t *base = (uint8_t *)a->scratch + (size_t)ith * attn_thread_bytes(a->n_ctx, NK_MAX(a->hd_k, a->hd_v));
    const size_t sz = round64((size_t)a->n_ctx * 4), hz = round64((size_t)NK_MAX(a->hd_k, a->hd_v) * 4);
    float *scores = (float *)base;
    float *aux = (float *)(base + sz);          /* flash: rescale factors; plain: f16 probabilities */
    void *qconv = base + 2 * sz;
    float *acc = (float *)(base + 2 * sz + hz);
    const int group = a->n_head / a->n_head_kv;
    const size_t k_row = (size_t)a->n_head_kv * (size_t)a->hd_k * es;   /* bytes per position */
    const size_t v_row = (size_t)a->n_head_kv * (size_t)a->hd_v * es;
    const size_t q_stride = (size_t)a->n_head * (size_t)a->hd_k;
    const size_t o_stride = (size_t)a->n_head * (size_t)a->hd_v;
    const int n_task = a->n_tok * a->n_head;

    for (int task = ith; task < n_task; task += nth) {
        const int t = task / a->n_head, h = task % a->n_head, kvh = h / group;
        const int pos = a->pos0 + t;
        const int lo = a->n_swa > 0 ? NK_MAX(0, pos - a->n_swa + 1) : 0;
        const int n_kv = pos + 1 - lo;
        const float *q = a->q + (size_t)t * q_stride + (size_t)h * (size_t)a->hd_k;
        const void *qv = q;
        if (f16) {
            if (run->simd) f32_to_f16_f16c(q, qconv, a->hd_k);
            else run->kt->from_float(q, qconv, a->hd_k);
            qv = qconv;
        }
        const uint8_t *kb = (const uint8_t *)a->k + (size_t)lo * k_row + (size_t)kvh * (size_t)a->hd_k * es;
        const uint8_t *vb = (const uint8_t *)a->v + (size_t)lo * v_row + (size_t)kvh * (size_t)a->hd_v * es;
        if (!(f16 && run->simd512 && scores_f16_fast(a->hd_k, n_kv, qv, kb, k_row, a->scale, scores))) {
            for (int j = 0; j < n_kv; j++) {
                run->kt->vec_dot(a->hd_k, &scores[j], kb + (size_t)j * k_row, qv);
                scores[j] *= a->scale;
            }
        }
        float *out = a->out + (size_t)t * o_stride + (size_t)h * (size_t)a->hd_v;
        memset(acc, 0, (size_t)a->hd_v * sizeof *acc);

        if (a->flash && f16 && run->simd512 && flash_f16_fast(a->hd_v, n_kv, scores, vb, v_row, out)) continue;
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
                if (run->simd) v_mad_flash_f16c(a->hd_v, acc, vj, f16, ms, w);
                else v_mad_flash(a->hd_v, acc, vj, f16, ms, w);
            }
            const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
            for (int d = 0; d < a->hd_v; d++) out[d] = acc[d] * S_inv;
            continue;
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

void nk_attention(nk_pool *pool, const nk_attn *a) {
    attn_run run = {
        .a = a,
        .kt = nk_type_get(a->kv_type),
        .esize = a->kv_type == NK_TYPE_F32 ? 4 : 2,
        .simd = attn_simd(),
        .simd512 = attn_simd512(),
    };
    const double work = (double)a->n_tok * a->n_head * (double)(a->pos0 + a->n_tok) * (a->hd_k + a->hd_v);
    nk_pool_run(work < NK_PAR_MIN_WORK ? NULL : pool, attn_fn, &run);
}

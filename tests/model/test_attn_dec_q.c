/*
 * test_attn_dec_q.c: decoding at depth with a q8_0 or q4_0 KV cache (attention.c's
 * decq_* kernels inside dec_task: one query token over the cache, tasks over KV heads,
 * and the serving engine's one-token segments of several sequences in one run) must give
 * exactly the bits of the scalar description of the quantized cache's flash numerics:
 * the query quantized to Q8_0 by the installed from_float, each score by the installed
 * vec_dot times the scale, the online softmax with libm's expf, V rows dequantized and
 * acc = acc * ms + v * w in f32 (each product rounded), divided by the sum at the end.
 * Covers head sizes 64 to 256 (and 96, which takes the per-query path), K heads of an
 * odd number of blocks beside wider V heads, GQA groups of 1 to 16, depths from
 * an empty cache to 2,000 positions (blocks of 16, partial blocks, the prefetch reaching
 * past the end), sliding windows, 1 and 2 threads, the same query as the last row of a
 * prefill batch (the tiled path) and a double-precision reference.
 */
#include "nk_test.h"
#include "tensor/ops.h"
#include "attn_pieces.h"
#include "tensor/quants.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return ((float)(g_rng >> 40) / 16777216.0f - 0.5f) * 2.0f;
}

/* One query row (head h at position pos) by the scalar description; want: hv floats
 * (K heads of hd values, V heads of hv) */
static void scalar_row(uint32_t type, int hd, int hv, int n_swa, int NH, int NKV, int h, int pos, const float *q,
                       const uint8_t *K, const uint8_t *V, float scale, float *want) {
    const nk_type_traits *ct = nk_type_get(type), *q8 = nk_type_get(NK_TYPE_Q8_0);
    const size_t head = nk_row_size(type, hd), row = (size_t)NKV * head;
    const size_t vhead = nk_row_size(type, hv), vrow_b = (size_t)NKV * vhead;
    const int kvh = h / (NH / NKV), lo = n_swa > 0 && pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0;
    uint8_t qs[8 * 34];
    float vrow[256], acc[256];
    q8->from_float(q, qs, hd);
    float M = -INFINITY, S = 0, MT = 0, ST = 0, accT[256];
    int np = 0;
    memset(acc, 0, sizeof acc);
    for (int j = lo; j <= pos; j++) {
        if (ref_piece_starts(j, lo)) ref_piece_close(hv, &np, accT, &MT, &ST, acc, &M, &S);
        float s;
        ct->vec_dot(hd, &s, K + (size_t)j * row + (size_t)kvh * head, qs);
        s *= scale;
        float ms = 1, w = 1;
        if (s > M) { ms = expf(M - s); M = s; } else { w = expf(s - M); }
        S = S * ms + w;
        ct->to_float(V + (size_t)j * vrow_b + (size_t)kvh * vhead, vrow, hv);
        for (int d = 0; d < hv; d++) {
            const float x = acc[d] * ms;
            const float y = vrow[d] * w;
            acc[d] = x + y;
        }
    }
    ref_piece_close(hv, &np, accT, &MT, &ST, acc, &M, &S);
    const float inv = ST == 0 ? 0 : 1 / ST;
    for (int d = 0; d < hv; d++) want[d] = accT[d] * inv;
}

/* the same row in double precision from the dequantized query, K and V */
static double ref_err(uint32_t type, int hd, int hv, int n_swa, int NH, int NKV, int h, int pos, const float *q,
                      const uint8_t *K, const uint8_t *V, float scale, const float *got) {
    const nk_type_traits *ct = nk_type_get(type), *q8 = nk_type_get(NK_TYPE_Q8_0);
    const size_t head = nk_row_size(type, hd), row = (size_t)NKV * head;
    const size_t vhead = nk_row_size(type, hv), vrow_b = (size_t)NKV * vhead;
    const int kvh = h / (NH / NKV), lo = n_swa > 0 && pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0;
    uint8_t qs[8 * 34];
    float qd[256], x[256];
    double acc[256] = { 0 }, mx = -INFINITY, sum = 0;
    q8->from_float(q, qs, hd);
    q8->to_float(qs, qd, hd);
    double *sc = malloc(sizeof(double) * (size_t)(pos + 1));
    for (int j = lo; j <= pos; j++) {
        ct->to_float(K + (size_t)j * row + (size_t)kvh * head, x, hd);
        double s = 0;
        for (int d = 0; d < hd; d++) s += (double)qd[d] * x[d];
        sc[j] = s * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    for (int j = lo; j <= pos; j++) {
        const double w = exp(sc[j] - mx);
        sum += w;
        ct->to_float(V + (size_t)j * vrow_b + (size_t)kvh * vhead, x, hv);
        for (int d = 0; d < hv; d++) acc[d] += w * x[d];
    }
    free(sc);
    double e = 0;
    for (int d = 0; d < hv; d++) e = fmax(e, fabs(acc[d] / sum - got[d]));
    return e;
}

/* a cache of n positions, NKV heads of hd (K) and hv (V): K values in [-2, 2], V in [-1, 1] */
static void fill(uint32_t type, int hd, int hv, int NKV, int n, uint8_t *K, uint8_t *V) {
    const nk_type_traits *ct = nk_type_get(type);
    const size_t row = nk_row_size(type, (int64_t)NKV * hd), vrow = nk_row_size(type, (int64_t)NKV * hv);
    float *tmp = malloc(sizeof(float) * (size_t)NKV * (size_t)(hd > hv ? hd : hv));
    for (int p = 0; p < n; p++) {
        for (int i = 0; i < NKV * hd; i++) tmp[i] = frand() * 2;
        ct->from_float(tmp, K + (size_t)p * row, NKV * hd);
        for (int i = 0; i < NKV * hv; i++) tmp[i] = frand();
        ct->from_float(tmp, V + (size_t)p * vrow, NKV * hv);
    }
    free(tmp);
}

/* NSEG sequences, one token each at depth[s] (its own cache), in one nk_attention_multi
 * run, with a prefill segment of PF tokens ending at depth[0] (over sequence 0's cache)
 * when with_prefill: every row equals the scalar description at 1 and 2 threads, and
 * sequence 0's token equals the prefill's last row (tiled path vs decoding). K heads
 * of hd values, V heads of hv. */
static void check(uint32_t type, int hd, int hv, int n_swa, int NH, int NKV, int NSEG, const int *depth, int with_prefill) {
    enum { PF = 5 };
    int n_ctx = 1;
    for (int s = 0; s < NSEG; s++) n_ctx = depth[s] + 1 > n_ctx ? depth[s] + 1 : n_ctx;
    const size_t row = nk_row_size(type, (int64_t)NKV * hd), vrow = nk_row_size(type, (int64_t)NKV * hv);
    const size_t qrow = (size_t)NH * (size_t)hd, orow = (size_t)NH * (size_t)hv;
    uint8_t *K = malloc(row * (size_t)n_ctx * (size_t)NSEG), *V = malloc(vrow * (size_t)n_ctx * (size_t)NSEG);
    fill(type, hd, hv, NKV, n_ctx * NSEG, K, V);
    float *q = malloc(sizeof(float) * qrow * (size_t)(NSEG + PF)), *out = malloc(sizeof(float) * orow * (size_t)(NSEG + PF));
    for (size_t i = 0; i < qrow * (size_t)(NSEG + PF); i++) q[i] = frand() * 3;
    float *want = malloc(sizeof(float) * (size_t)hv);
    void *ws = nk_aligned_alloc(nk_attn_wsize(2, n_ctx, hd > hv ? hd : hv));
    nk_attn seg[9];
    const int pf = with_prefill && depth[0] + 1 >= PF;
    for (int s = 0; s < NSEG + pf; s++) {
        const bool is_pf = s == NSEG;
        const int c = is_pf ? 0 : s;
        /* the prefill's last query is sequence 0's */
        if (is_pf) memcpy(q + qrow * (size_t)(NSEG + PF - 1), q, sizeof(float) * qrow);
        seg[s] = (nk_attn){ .n_tok = is_pf ? PF : 1, .pos0 = is_pf ? depth[0] - PF + 1 : depth[s], .n_head = NH,
                            .n_head_kv = NKV, .hd_k = hd, .hd_v = hv, .n_ctx = n_ctx, .n_swa = n_swa,
                            .scale = 1.0f / sqrtf((float)hd), .kv_type = type, .flash = true,
                            .q = q + qrow * (size_t)s, .k = K + row * (size_t)n_ctx * (size_t)c,
                            .v = V + vrow * (size_t)n_ctx * (size_t)c, .out = out + orow * (size_t)s, .scratch = ws };
    }
    nk_pool *p2 = NULL;
    nk_pool_new(2, &p2, NULL);
    double maxerr = 0;
    for (int th = 1; th <= 2; th++) {
        memset(out, 0, sizeof(float) * orow * (size_t)(NSEG + PF));
        nk_attention_multi(th == 1 ? NULL : p2, seg, NSEG + pf);
        int bad = 0;
        for (int s = 0; s < NSEG; s++)
            for (int h = 0; h < NH; h++) {
                const float *got = seg[s].out + (size_t)h * hv;
                scalar_row(type, hd, hv, n_swa, NH, NKV, h, seg[s].pos0, seg[s].q + (size_t)h * hd, seg[s].k, seg[s].v,
                           seg[s].scale, want);
                bad += memcmp(want, got, sizeof(float) * (size_t)hv) != 0;
                if (th == 1) {
                    const double e = ref_err(type, hd, hv, n_swa, NH, NKV, h, seg[s].pos0, seg[s].q + (size_t)h * hd,
                                             seg[s].k, seg[s].v, seg[s].scale, got);
                    maxerr = e > maxerr ? e : maxerr;
                }
            }
        CHECK_MSG(bad == 0, "%s hd %d/%d swa %d heads %d/%d, %d segments at depth %d.., %d threads: %d rows differ from the "
                  "scalar description", nk_type_get(type)->name, hd, hv, n_swa, NH, NKV, NSEG, depth[0], th, bad);
        if (pf)
            CHECK_MSG(memcmp(seg[NSEG].out + orow * (PF - 1), seg[0].out, sizeof(float) * orow) == 0,
                      "%s hd %d/%d heads %d/%d depth %d, %d threads: the decoded token differs from the prefill's last row",
                      nk_type_get(type)->name, hd, hv, NH, NKV, depth[0], th);
    }
    /* f32 accumulation of values |v| <= 1 over up to ~4,200 positions */
    CHECK_MSG(maxerr < 1e-4, "%s hd %d/%d heads %d/%d depth %d: max error %g against the double reference",
              nk_type_get(type)->name, hd, hv, NH, NKV, depth[0], maxerr);
    nk_pool_free(p2);
    nk_aligned_free(ws);
    free(K); free(V); free(q); free(out); free(want);
}

static void check_kv(int hd, int hv, int n_swa, int NH, int NKV, int NSEG, const int *depth, int with_prefill) {
    check(NK_TYPE_Q8_0, hd, hv, n_swa, NH, NKV, NSEG, depth, with_prefill);
    check(NK_TYPE_Q4_0, hd, hv, n_swa, NH, NKV, NSEG, depth, with_prefill);
}
static void check_both(int hd, int n_swa, int NH, int NKV, int NSEG, const int *depth, int with_prefill) {
    check_kv(hd, hd, n_swa, NH, NKV, NSEG, depth, with_prefill);
}

int main(void) {
    nk_tensor_init();
    /* at 2 threads the lone segments of 4 pieces or more (NK_ATTN_SPLIT positions
     * each) are split over the cache length */
    const long split_runs = nk_attn_dec_split_runs();
    static const int d1[][1] = { { 0 }, { 15 }, { 16 }, { 17 }, { 63 }, { 64 }, { 65 }, { 130 }, { 777 }, { 2047 }, { 4100 } };
    /* one sequence: qwen3-0.6b's shape (16/8, hd 128) at depths around the 16-position
     * blocks and the prefetch distance (64), with and without a prefill beside it */
    for (int i = 0; i < (int)(sizeof d1 / sizeof d1[0]); i++) check_both(128, 0, 16, 8, 1, d1[i], i % 2);
    /* head sizes 64..256, GQA 1..16, windows */
    const int deep[] = { 4200 }, mid[] = { 333 };
    check_both(64, 0, 32, 8, 1, deep, 1);     /* llama3.2-1b: 32/8, hd 64 */
    check_both(256, 0, 8, 4, 1, mid, 1);      /* gemma3: hd 256 */
    check_both(192, 40, 6, 2, 1, mid, 1);     /* 6 blocks, V in 64-dim steps, a window */
    check_both(96, 0, 6, 2, 1, mid, 1);       /* hd_v % 64: the per-query path */
    check_both(96, 0, 6, 2, 1, deep, 1);      /* ... over five pieces */
    check_both(128, 100, 16, 1, 1, deep, 1);  /* GQA 16, window of 100 */
    check_both(128, 0, 4, 4, 1, mid, 1);      /* no GQA */
    check_both(64, 3500, 8, 2, 1, deep, 0);
    /* K heads of an odd number of blocks (the vec_dot's tail: one accumulator), V of 64 or 128 */
    check_kv(32, 64, 0, 4, 2, 1, mid, 1);
    check_kv(96, 128, 20, 8, 2, 1, mid, 1);
    check_kv(160, 128, 0, 8, 4, 1, deep, 0);
    check_kv(224, 256, 0, 4, 2, 1, mid, 1);
    /* the serving engine's decode step: sequences at their own depths in one run */
    const int dep4[] = { 600, 0, 17, 250 }, dep3[] = { 90, 1, 400 };
    check_both(128, 0, 16, 8, 4, dep4, 1);
    check_both(64, 0, 32, 8, 3, dep3, 0);
    check_both(256, 30, 8, 2, 3, dep3, 1);
    /* split over the length, q8_0 and q4_0 each: 4,101 positions (16/8), 4,201 in a window of 3,500 (8/2), 4,201 (8/4) */
    if (strcmp(nk_tensor_isa(), "avx512vnni") == 0)
        CHECK_MSG(nk_attn_dec_split_runs() - split_runs == 6, "%ld of 6 runs split over the length",
                  nk_attn_dec_split_runs() - split_runs);
    NK_TEST_DONE();
}

/*
 * test_attn_fast.c: the fast flash-attention paths (attention.c, AVX-512: the tiled
 * path for head sizes that are multiples of 32 (K) and 64 (V), the per-query loop
 * otherwise) must give exactly the bits of the scalar description of ggml's flash
 * kernel: scores by the installed F16 dot of the f16-rounded query, an online softmax
 * with libm's expf, and an f32 V accumulator (acc = acc * ms when ms != 1, then
 * acc = fma(v, w, acc)) per piece of NK_ATTN_SPLIT positions, the pieces merged in
 * position order (attn_pieces.h), divided by the sum at the end.
 * Covers GQA groups of 1 to 32, prompts
 * from position 0 over several K chunks and tiles, decoding (one token), sliding
 * windows, decoding at depth (one token over hundreds of positions: dec_task, alone
 * and beside prefill segments in one run, and split over the cache length), several sequences' one-token segments at
 * their own depths in one run (the serving engine's decode step) and thread-count
 * independence. On CPUs without AVX-512 it checks the
 * generic path against the same description.
 */
#include "nk_test.h"
#include "tensor/ops.h"
#include "attn_pieces.h"

#include <math.h>

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static float frand(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return ((float)(g_rng >> 40) / 16777216.0f - 0.5f) * 2.0f;
}

/* NH query heads over NKV KV heads, NTOK queries at POS0.., a cache of NCTX rows */
static void check_shape(int hd, int n_swa, int NH, int NKV, int NTOK, int POS0, int NCTX) {
    const size_t row = (size_t)NKV * (size_t)hd;
    float *q = malloc(sizeof(float) * NTOK * NH * (size_t)hd);
    uint16_t *k = malloc(2 * NCTX * row), *v = malloc(2 * NCTX * row);
    float *out1 = malloc(sizeof(float) * NTOK * NH * (size_t)hd), *out2 = malloc(sizeof(float) * NTOK * NH * (size_t)hd);
    for (size_t i = 0; i < (size_t)NTOK * NH * (size_t)hd; i++) q[i] = frand() * 3;
    for (size_t i = 0; i < NCTX * row; i++) {
        k[i] = nk_fp32_to_fp16(frand() * 2);
        v[i] = nk_fp32_to_fp16(frand());
    }
    void *ws = nk_aligned_alloc(nk_attn_wsize(2, NCTX, hd));
    const float scale = 1.0f / sqrtf((float)hd);
    nk_attn a = { .n_tok = NTOK, .pos0 = POS0, .n_head = NH, .n_head_kv = NKV, .hd_k = hd, .hd_v = hd,
                  .n_ctx = NCTX, .n_swa = n_swa, .scale = scale, .kv_type = NK_TYPE_F16,
                  .flash = true, .q = q, .k = k, .v = v, .out = out1, .scratch = ws };
    nk_attention(NULL, &a);
    nk_pool *p2 = NULL;
    nk_pool_new(2, &p2, NULL);
    a.out = out2;
    nk_attention(p2, &a);
    CHECK_MSG(memcmp(out1, out2, sizeof(float) * (size_t)NTOK * NH * (size_t)hd) == 0, "hd %d: 1 vs 2 threads differ", hd);

    const nk_vec_dot_fn dot = nk_type_get(NK_TYPE_F16)->vec_dot;
    uint16_t *qh = malloc(2 * (size_t)hd);
    float *acc = malloc(sizeof(float) * (size_t)hd), *accT = malloc(sizeof(float) * (size_t)hd);
    int mismatches = 0;
    for (int t = 0; t < NTOK; t++)
        for (int h = 0; h < NH; h++) {
            const int kvh = h / (NH / NKV), pos = POS0 + t;
            const int lo = n_swa > 0 ? (pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0) : 0;
            for (int d = 0; d < hd; d++) qh[d] = nk_fp32_to_fp16(q[((size_t)t * NH + h) * hd + d]);
            memset(acc, 0, sizeof(float) * (size_t)hd);
            float M = -INFINITY, S = 0, MT = 0, ST = 0;
            int np = 0;
            for (int j = lo; j <= pos; j++) {
                if (ref_piece_starts(j, lo)) ref_piece_close(hd, &np, accT, &MT, &ST, acc, &M, &S);
                float s;
                dot(hd, &s, k + (size_t)j * row + (size_t)kvh * hd, qh);
                s *= scale;
                float ms = 1, w = 1;
                if (s > M) { ms = expf(M - s); M = s; } else { w = expf(s - M); }
                S = S * ms + w;
                const uint16_t *vj = v + (size_t)j * row + (size_t)kvh * hd;
                for (int d = 0; d < hd; d++) {
                    if (ms != 1.0f) acc[d] = acc[d] * ms;
                    acc[d] = fmaf(nk_fp16_to_fp32(vj[d]), w, acc[d]);
                }
            }
            ref_piece_close(hd, &np, accT, &MT, &ST, acc, &M, &S);
            const float inv = ST == 0 ? 0 : 1 / ST;
            for (int d = 0; d < hd; d++) {
                const float want = accT[d] * inv, got = out1[((size_t)t * NH + h) * hd + d];
                if (memcmp(&want, &got, sizeof want) != 0) mismatches++;
            }
        }
    CHECK_MSG(mismatches == 0, "hd %d swa %d heads %d/%d tokens %d at %d: %d outputs differ from the scalar flash description",
              hd, n_swa, NH, NKV, NTOK, POS0, mismatches);
    nk_pool_free(p2);
    nk_aligned_free(ws);
    free(q); free(k); free(v); free(out1); free(out2); free(qh); free(acc); free(accT);
}

static void check(int hd, int n_swa) { check_shape(hd, n_swa, 4, 2, 6, 60, 70); }

/* The scalar description for one query row (head h, position pos): out[hd] */
static void scalar_row(int hd, int n_swa, int NH, int NKV, int h, int pos, const float *qrow, const uint16_t *k,
                       const uint16_t *v, float scale, float *out) {
    const size_t row = (size_t)NKV * (size_t)hd;
    const nk_vec_dot_fn dot = nk_type_get(NK_TYPE_F16)->vec_dot;
    uint16_t qh[256];
    float acc[256] = { 0 };
    const int kvh = h / (NH / NKV), lo = n_swa > 0 ? (pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0) : 0;
    for (int d = 0; d < hd; d++) qh[d] = nk_fp32_to_fp16(qrow[d]);
    float M = -INFINITY, S = 0, MT = 0, ST = 0, accT[256];
    int np = 0;
    for (int j = lo; j <= pos; j++) {
        if (ref_piece_starts(j, lo)) ref_piece_close(hd, &np, accT, &MT, &ST, acc, &M, &S);
        float s;
        dot(hd, &s, k + (size_t)j * row + (size_t)kvh * hd, qh);
        s *= scale;
        float ms = 1, w = 1;
        if (s > M) { ms = expf(M - s); M = s; } else { w = expf(s - M); }
        S = S * ms + w;
        const uint16_t *vj = v + (size_t)j * row + (size_t)kvh * hd;
        for (int d = 0; d < hd; d++) {
            if (ms != 1.0f) acc[d] = acc[d] * ms;
            acc[d] = fmaf(nk_fp16_to_fp32(vj[d]), w, acc[d]);
        }
    }
    ref_piece_close(hd, &np, accT, &MT, &ST, acc, &M, &S);
    const float inv = ST == 0 ? 0 : 1 / ST;
    for (int d = 0; d < hd; d++) out[d] = accT[d] * inv;
}

/* The serving engine's decode step: NSEG sequences, one token each at its own depth
 * (0 to hundreds of positions, each in its own cache), in one nk_attention_multi run,
 * alone and beside a prefill segment; every output equals the scalar description at
 * 1 and 2 threads. */
static void check_multi_decode(int hd, int n_swa, int NH, int NKV, int NSEG, const int *depth, int with_prefill) {
    enum { NCTX = 700, PF = 9 };
    const size_t row = (size_t)NKV * (size_t)hd, qrow = (size_t)NH * (size_t)hd;
    const int nseg_all = NSEG + (with_prefill ? 1 : 0);
    uint16_t *k = malloc(2 * NCTX * row * (size_t)nseg_all), *v = malloc(2 * NCTX * row * (size_t)nseg_all);
    float *q = malloc(sizeof(float) * PF * qrow * (size_t)nseg_all), *out = malloc(sizeof(float) * PF * qrow * (size_t)nseg_all);
    float *want = malloc(sizeof(float) * (size_t)hd);
    for (size_t i = 0; i < NCTX * row * (size_t)nseg_all; i++) {
        k[i] = nk_fp32_to_fp16(frand() * 2);
        v[i] = nk_fp32_to_fp16(frand());
    }
    for (size_t i = 0; i < PF * qrow * (size_t)nseg_all; i++) q[i] = frand() * 3;
    void *ws = nk_aligned_alloc(nk_attn_wsize(2, NCTX, hd));
    nk_attn seg[17];
    for (int s = 0; s < nseg_all; s++) {
        const bool pf = s == NSEG;
        seg[s] = (nk_attn){ .n_tok = pf ? PF : 1, .pos0 = pf ? 200 : depth[s], .n_head = NH, .n_head_kv = NKV,
                            .hd_k = hd, .hd_v = hd, .n_ctx = NCTX, .n_swa = n_swa, .scale = 1.0f / sqrtf((float)hd),
                            .kv_type = NK_TYPE_F16, .flash = true, .q = q + (size_t)s * PF * qrow,
                            .k = k + (size_t)s * NCTX * row, .v = v + (size_t)s * NCTX * row,
                            .out = out + (size_t)s * PF * qrow, .scratch = ws };
    }
    nk_pool *p2 = NULL;
    nk_pool_new(2, &p2, NULL);
    for (int th = 1; th <= 2; th++) {
        memset(out, 0, sizeof(float) * PF * qrow * (size_t)nseg_all);
        nk_attention_multi(th == 1 ? NULL : p2, seg, nseg_all);
        int bad = 0;
        for (int s = 0; s < nseg_all; s++)
            for (int t = 0; t < seg[s].n_tok; t++)
                for (int h = 0; h < NH; h++) {
                    scalar_row(hd, n_swa, NH, NKV, h, seg[s].pos0 + t, seg[s].q + (size_t)t * qrow + (size_t)h * hd, seg[s].k,
                               seg[s].v, seg[s].scale, want);
                    bad += memcmp(want, seg[s].out + (size_t)t * qrow + (size_t)h * hd, sizeof(float) * (size_t)hd) != 0;
                }
        CHECK_MSG(bad == 0, "multi decode hd %d swa %d heads %d/%d, %d segments%s, %d threads: %d rows differ", hd, n_swa,
                  NH, NKV, NSEG, with_prefill ? " + prefill" : "", th, bad);
    }
    nk_pool_free(p2);
    nk_aligned_free(ws);
    free(k); free(v); free(q); free(out); free(want);
}

/* nk_f32_to_f16_row: the scalar conversion's bits (odd length, tiny and huge values) */
static void check_f16_row(void) {
    enum { N = 1003 };
    float x[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++) x[i] = frand() * (i % 3 == 0 ? 1e-6f : i % 3 == 1 ? 7e4f : 3.0f);
    nk_f32_to_f16_row(x, h, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += h[i] != nk_fp32_to_fp16(x[i]);
    CHECK_MSG(bad == 0, "f32->f16 rows: %d of %d differ", bad, N);
}

/* The bits of a query do not depend on how the tokens were batched: N queries
 * prefilled at once, the same in odd pieces, and the last ones decoded one at a time
 * (decoding at depth) beside a prefill piece of another sequence in one run
 * (nk_attention_multi), at 1 and 2 threads, all give the same outputs. */
static void check_split_vs_prefill(void) {
    enum { HD = 128, NH = 16, NKV = 8, N = 4200 };   /* 5 pieces: the last tokens decode split */
    const size_t row = (size_t)NKV * HD, qrow = (size_t)NH * HD;
    float *q = malloc(sizeof(float) * N * qrow), *full = malloc(sizeof(float) * N * qrow);
    float *got = malloc(sizeof(float) * N * qrow);
    uint16_t *k = malloc(2 * N * row), *v = malloc(2 * N * row);
    for (size_t i = 0; i < N * qrow; i++) q[i] = frand() * 3;
    for (size_t i = 0; i < N * row; i++) k[i] = nk_fp32_to_fp16(frand() * 2), v[i] = nk_fp32_to_fp16(frand());
    void *ws = nk_aligned_alloc(nk_attn_wsize(2, N, HD));
    const nk_attn base = { .n_head = NH, .n_head_kv = NKV, .hd_k = HD, .hd_v = HD, .n_ctx = N,
                           .scale = 1.0f / sqrtf((float)HD), .kv_type = NK_TYPE_F16, .flash = true,
                           .k = k, .v = v, .scratch = ws };
    nk_attn a = base;
    a.n_tok = N, a.q = q, a.out = full;
    nk_attention(NULL, &a);
    nk_pool *p2 = NULL;
    nk_pool_new(2, &p2, NULL);
    for (int th = 1; th <= 2; th++) {
        nk_pool *pool = th == 1 ? NULL : p2;
        /* odd pieces, each beside the decode of one of the last tokens */
        memset(got, 0, sizeof(float) * N * qrow);
        int t = 0, piece = 1, dec = N - 1;
        while (t < N - 20) {
            const int n = NK_MIN(piece, N - 20 - t);
            nk_attn seg[2] = { base, base };
            seg[0].n_tok = n, seg[0].pos0 = t, seg[0].q = q + (size_t)t * qrow, seg[0].out = got + (size_t)t * qrow;
            seg[1].n_tok = 1, seg[1].pos0 = dec, seg[1].q = q + (size_t)dec * qrow, seg[1].out = got + (size_t)dec * qrow;
            nk_attention_multi(pool, seg, dec >= N - 20 ? 2 : 1);
            if (dec >= N - 20) dec--;
            t += n;
            piece = piece * 3 % 61 + 1;
        }
        for (; dec >= N - 20; dec--) {   /* the rest alone */
            nk_attn d1 = base;
            d1.n_tok = 1, d1.pos0 = dec, d1.q = q + (size_t)dec * qrow, d1.out = got + (size_t)dec * qrow;
            nk_attention(pool, &d1);
        }
        CHECK_MSG(memcmp(got, full, sizeof(float) * N * qrow) == 0, "%d threads: pieces + split decoding differ from one prefill", th);
    }
    nk_pool_free(p2);
    nk_aligned_free(ws);
    free(q); free(full); free(got); free(k); free(v);
}

int main(void) {
    nk_tensor_init();
    check_f16_row();
    printf("attention kernels: %s\n", nk_tensor_isa());
    const int hds[] = { 64, 128, 256, 80 };
    for (size_t i = 0; i < NK_ARRAY_LEN(hds); i++) {
        check(hds[i], 0);
        check(hds[i], 17);
    }
    /* the tiled path's cases: a prompt from position 0 over several K chunks and
     * tiles, GQA groups of 1..32 (odd ones too), decoding (one token), windows */
    check_shape(128, 0, 16, 8, 150, 0, 150);
    check_shape(64, 0, 8, 2, 37, 100, 140);
    check_shape(256, 50, 8, 2, 37, 100, 140);
    check_shape(128, 0, 6, 2, 29, 3, 40);
    check_shape(64, 0, 3, 3, 20, 0, 20);
    check_shape(128, 0, 16, 2, 9, 40, 60);
    check_shape(64, 0, 32, 1, 5, 70, 80);
    check_shape(128, 0, 16, 8, 1, 200, 260);
    check_shape(256, 30, 4, 1, 1, 90, 100);
    check_shape(96, 0, 4, 2, 11, 5, 20);
    /* at depth: prefill tiles and decoding at depth (dec_task) over hundreds of
     * positions, windows, head sizes 64..256 and 80/96 (no tiles), GQA 1..16 */
    check_shape(128, 0, 16, 8, 1, 700, 701);
    check_shape(128, 0, 16, 8, 40, 600, 640);
    check_shape(64, 0, 8, 1, 1, 1030, 1031);
    check_shape(64, 0, 8, 1, 23, 1000, 1023);
    check_shape(256, 0, 8, 4, 1, 513, 514);
    check_shape(256, 300, 8, 4, 19, 500, 519);
    check_shape(128, 300, 16, 2, 1, 900, 901);
    check_shape(128, 0, 4, 4, 1, 255, 256);
    check_shape(128, 0, 4, 4, 1, 256, 257);
    check_shape(64, 0, 32, 2, 1, 400, 401);
    check_shape(128, 0, 14, 2, 1, 333, 334);
    check_shape(64, 0, 8, 2, 300, 0, 300);
    /* full tiles whose scores convert the chunk's V rows on the way (session 9):
     * llama3.2-1b's and the 8B's shapes (GQA 4), gemma3's head of 256 in a window,
     * over several chunks, from position 0 and at depth */
    check_shape(64, 0, 32, 8, 200, 0, 200);
    check_shape(128, 0, 32, 8, 130, 300, 430);
    check_shape(256, 64, 8, 4, 90, 0, 90);
    check_shape(128, 100, 16, 8, 170, 40, 210);
    check_shape(96, 0, 4, 2, 1, 600, 601);
    check_shape(80, 100, 4, 2, 9, 600, 609);
    /* the per-query path across the pieces' ends: over three pieces, and in a window
     * that starts inside one */
    check_shape(96, 0, 4, 2, 3, 2100, 2103);
    check_shape(80, 1500, 4, 2, 2, 2500, 2502);
    /* long prompts (session 11, the 16k work): tasks of several tiles walking tens of
     * K chunks, past 2,048 positions; one KV head so that 1 and 2 threads plan different
     * tiles per task (8 and 4); qwen3-0.6b's head (128, GQA 2) and llama3.2-1b's (64,
     * GQA 4), from position 0, at depth, in a window */
    check_shape(128, 0, 2, 1, 2100, 0, 2100);
    check_shape(64, 0, 4, 1, 300, 0, 300);
    check_shape(64, 0, 4, 1, 1200, 0, 1200);
    check_shape(128, 0, 4, 2, 500, 900, 1400);
    check_shape(64, 0, 8, 2, 200, 900, 1100);
    check_shape(128, 256, 4, 2, 700, 100, 800);
    check_shape(64, 300, 4, 1, 900, 0, 900);
    /* rows whose window starts inside a piece and crosses two piece ends */
    check_shape(128, 1500, 4, 2, 300, 2000, 2300);
    /* decoding at depth split over the cache length (pieces of NK_ATTN_SPLIT positions
     * taken by the threads, their states merged by the thread that ends the last): at
     * 2 threads a lone segment with at least 4 pieces. GQA 16 with 64 query rows (the
     * most a piece task takes), llama3.2-1b's shape in a window and at 4,201
     * positions, qwen3-0.6b's at 4,099 positions (a last block of 3) and at exactly 4
     * pieces, GQA 1 in a window; and beside them the ones split by heads: one piece
     * (255, 256 positions), 3 pieces (3,072), 128 query rows. */
    const long split_runs = nk_attn_dec_split_runs();
    check_shape(128, 0, 64, 4, 1, 4500, 4501);
    check_shape(64, 3500, 32, 8, 1, 5000, 5001);
    check_shape(128, 0, 16, 8, 1, 4098, 4099);
    check_shape(64, 0, 32, 8, 1, 4200, 4201);
    check_shape(128, 3300, 8, 8, 1, 5000, 5001);
    check_shape(128, 0, 16, 8, 1, 4095, 4096);
    check_shape(128, 0, 16, 8, 1, 255, 256);
    check_shape(128, 0, 16, 8, 1, 254, 255);
    check_shape(64, 0, 16, 2, 1, 700, 701);
    check_shape(128, 0, 16, 8, 1, 3071, 3072);
    check_shape(64, 0, 128, 8, 1, 4500, 4501);
    if (strcmp(nk_tensor_isa(), "avx512vnni") == 0)
        CHECK_MSG(nk_attn_dec_split_runs() - split_runs == 6, "%ld of 6 runs split over the length",
                  nk_attn_dec_split_runs() - split_runs);
    check_split_vs_prefill();
    /* one-token segments of several sequences at their own depths (the serving
     * engine's decode step), from an empty cache to hundreds of positions */
    const int dep8[] = { 0, 3, 17, 40, 255, 256, 300, 650 };
    check_multi_decode(128, 0, 16, 8, 8, dep8, 0);
    check_multi_decode(128, 0, 16, 8, 8, dep8, 1);
    check_multi_decode(64, 0, 32, 8, 8, dep8, 0);
    check_multi_decode(256, 100, 8, 1, 8, dep8, 1);
    check_multi_decode(128, 0, 16, 1, 2, dep8 + 5, 0);
    const int dep3[] = { 1, 600, 20 };
    check_multi_decode(128, 50, 12, 4, 3, dep3, 0);
    check_multi_decode(64, 0, 4, 4, 3, dep3, 1);
    const int dep1[] = { 5 };
    check_multi_decode(128, 0, 16, 8, 1, dep1, 0);
    NK_TEST_DONE();
}

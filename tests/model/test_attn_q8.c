/* nk_attention with a q8_0 or q4_0 KV cache (nook_session_params.kv_type =
 * NOOK_KV_Q8_0, NOOK_KV_Q4_0) against a double-precision reference of what ggml's flash
 * kernel computes for such a cache: the query quantized to Q8_0 (K's dot partner for
 * both), scores from the quantized
 * codes, softmax, and the dequantized V rows summed. GQA, several tokens at a causal
 * offset, a sliding window, 1 and 2 threads (bit for bit), depths of hundreds of
 * positions. Bit for bit also: the scalar description of the per-query path (the
 * Q8_0 dot, expf, acc = acc * ms + v * w in f32, each product rounded), which the
 * tiled path must reproduce, and each query decoded alone (one token) against the
 * same query in the prefill batch. */
#include "tensor/ops.h"
#include "attn_pieces.h"
#include "tensor/quants.h"
#include "nk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void check_type(uint32_t type, int hd, int n_head, int n_head_kv, int n_tok, int pos0, int n_swa) {
    const int n_ctx = pos0 + n_tok + 3, n_kv = n_head_kv * hd;
    const nk_type_traits *q8 = nk_type_get(NK_TYPE_Q8_0), *ct = nk_type_get(type);
    const size_t row = nk_row_size(type, n_kv), head = nk_row_size(type, hd), qhead = nk_row_size(NK_TYPE_Q8_0, hd);
    uint8_t *K = calloc((size_t)n_ctx, row), *V = calloc((size_t)n_ctx, row);
    float *tmp = malloc(sizeof(float) * (size_t)n_kv);
    float *q = malloc(sizeof(float) * (size_t)n_tok * n_head * hd);
    float *out1 = malloc(sizeof(float) * (size_t)n_tok * n_head * hd), *out2 = malloc(sizeof(float) * (size_t)n_tok * n_head * hd);
    for (int p = 0; p < pos0 + n_tok; p++) {
        for (int i = 0; i < n_kv; i++) tmp[i] = frand() * 2.0f;
        ct->from_float(tmp, K + (size_t)p * row, n_kv);
        for (int i = 0; i < n_kv; i++) tmp[i] = frand();
        ct->from_float(tmp, V + (size_t)p * row, n_kv);
    }
    for (int i = 0; i < n_tok * n_head * hd; i++) q[i] = frand();
    void *ws1 = nk_aligned_alloc(nk_attn_wsize(1, n_ctx, hd)), *ws2 = nk_aligned_alloc(nk_attn_wsize(2, n_ctx, hd));
    nk_attn a = { .n_tok = n_tok, .pos0 = pos0, .n_head = n_head, .n_head_kv = n_head_kv, .hd_k = hd, .hd_v = hd,
                  .n_ctx = n_ctx, .n_swa = n_swa, .scale = 1.0f / sqrtf((float)hd), .kv_type = type,
                  .flash = true, .q = q, .k = K, .v = V, .out = out1, .scratch = ws1 };
    nk_attention(NULL, &a);
    nk_pool *pool = NULL;
    CHECK_EQ_INT(nk_pool_new(2, &pool, NULL), NOOK_OK);
    a.out = out2;
    a.scratch = ws2;
    a.n_tok = n_tok;
    nk_attention(pool, &a);
    CHECK_MSG(memcmp(out1, out2, sizeof(float) * (size_t)n_tok * n_head * hd) == 0, "hd %d: 1 vs 2 threads differ", hd);

    /* the scalar description, bit for bit; and each query alone (n_tok 1) */
    float *one = malloc(sizeof(float) * (size_t)n_head * hd), *sacc = malloc(sizeof(float) * hd), *saccT = malloc(sizeof(float) * hd);
    uint8_t *qs = malloc(qhead);
    float *vrow = malloc(sizeof(float) * hd);
    int bad = 0, bad_one = 0;
    for (int t = 0; t < n_tok; t++) {
        nk_attn a1 = a;
        a1.n_tok = 1, a1.pos0 = pos0 + t, a1.q = q + (size_t)t * n_head * hd, a1.out = one, a1.scratch = ws2;
        nk_attention(t % 2 ? pool : NULL, &a1);
        bad_one += memcmp(one, out1 + (size_t)t * n_head * hd, sizeof(float) * (size_t)n_head * hd) != 0;
        for (int h = 0; h < n_head; h++) {
            const int kvh = h / (n_head / n_head_kv), pos = pos0 + t;
            const int lo = n_swa > 0 && pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0;
            q8->from_float(q + ((size_t)t * n_head + h) * hd, qs, hd);
            float M = -INFINITY, S = 0, MT = 0, ST = 0;
            int np = 0;
            memset(sacc, 0, sizeof(float) * hd);
            for (int j = lo; j <= pos; j++) {
                if (ref_piece_starts(j, lo)) ref_piece_close(hd, &np, saccT, &MT, &ST, sacc, &M, &S);
                float sj;
                ct->vec_dot(hd, &sj, K + (size_t)j * row + (size_t)kvh * head, qs);
                sj *= a.scale;
                float ms = 1, w = 1;
                if (sj > M) { ms = expf(M - sj); M = sj; } else { w = expf(sj - M); }
                S = S * ms + w;
                ct->to_float(V + (size_t)j * row + (size_t)kvh * head, vrow, hd);
                for (int d = 0; d < hd; d++) {
                    const float x = sacc[d] * ms;
                    const float y = vrow[d] * w;
                    sacc[d] = x + y;
                }
            }
            ref_piece_close(hd, &np, saccT, &MT, &ST, sacc, &M, &S);
            const float inv = ST == 0 ? 0 : 1 / ST;
            for (int d = 0; d < hd; d++) {
                const float want = saccT[d] * inv;
                bad += memcmp(&want, &out1[((size_t)t * n_head + h) * hd + d], sizeof want) != 0;
            }
        }
    }
    CHECK_MSG(bad == 0, "%s hd %d heads %d/%d tokens %d at %d swa %d: %d outputs differ from the scalar description", ct->name, hd,
              n_head, n_head_kv, n_tok, pos0, n_swa, bad);
    CHECK_MSG(bad_one == 0, "hd %d: %d tokens decoded alone differ from the batch", hd, bad_one);
    free(one); free(sacc); free(saccT); free(qs); free(vrow);

    double maxerr = 0;
    float *qd = malloc(sizeof(float) * hd), *kd = malloc(sizeof(float) * hd), *vd = malloc(sizeof(float) * hd);
    double *acc = malloc(sizeof(double) * hd), *sc = malloc(sizeof(double) * n_ctx);
    uint8_t *qq = malloc(qhead);
    for (int t = 0; t < n_tok; t++) {
        for (int h = 0; h < n_head; h++) {
            const int kvh = h / (n_head / n_head_kv), pos = pos0 + t;
            const int lo = n_swa > 0 && pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0;
            q8->from_float(q + ((size_t)t * n_head + h) * hd, qq, hd);
            q8->to_float(qq, qd, hd);
            double mx = -INFINITY, sum = 0;
            for (int j = lo; j <= pos; j++) {
                ct->to_float(K + (size_t)j * row + (size_t)kvh * head, kd, hd);
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qd[d] * kd[d];
                sc[j] = s * a.scale;
                if (sc[j] > mx) mx = sc[j];
            }
            memset(acc, 0, sizeof(double) * hd);
            for (int j = lo; j <= pos; j++) {
                const double w = exp(sc[j] - mx);
                sum += w;
                ct->to_float(V + (size_t)j * row + (size_t)kvh * head, vd, hd);
                for (int d = 0; d < hd; d++) acc[d] += w * vd[d];
            }
            for (int d = 0; d < hd; d++) {
                const double e = fabs(acc[d] / sum - out1[((size_t)t * n_head + h) * hd + d]);
                if (e > maxerr) maxerr = e;
            }
        }
    }
    /* f32 accumulation over at most ~40 positions of values |v| < 1 */
    CHECK_MSG(maxerr < 2e-5, "%s hd %d heads %d/%d swa %d: max error %g", ct->name, hd, n_head, n_head_kv, n_swa, maxerr);
    nk_pool_free(pool);
    nk_aligned_free(ws1);
    nk_aligned_free(ws2);
    free(K); free(V); free(tmp); free(q); free(out1); free(out2);
    free(qd); free(kd); free(vd); free(acc); free(sc); free(qq);
}

static void check(int hd, int n_head, int n_head_kv, int n_tok, int pos0, int n_swa) {
    check_type(NK_TYPE_Q8_0, hd, n_head, n_head_kv, n_tok, pos0, n_swa);
    check_type(NK_TYPE_Q4_0, hd, n_head, n_head_kv, n_tok, pos0, n_swa);
}

int main(void) {
    nk_tensor_init();
    check(32, 4, 2, 5, 0, 0);
    check(64, 8, 2, 7, 13, 0);
    check(128, 4, 4, 3, 30, 0);
    check(128, 6, 2, 9, 20, 8);   /* sliding window */
    check(256, 2, 1, 4, 11, 0);
    /* at depth: tiles over hundreds of positions, windows, GQA 1..8 */
    check(128, 16, 8, 20, 600, 0);
    check(64, 8, 1, 9, 700, 0);
    check(128, 8, 2, 17, 500, 200);
    check(96, 4, 2, 5, 300, 0);   /* no tiles (hd_v % 64): the per-query path */
    /* across the pieces' ends (NK_ATTN_SPLIT): a batch that crosses one, a window that
     * starts inside a piece, and the per-query path over three pieces */
    check(128, 8, 2, 9, 2040, 0);
    check(128, 6, 2, 5, 2100, 1500);
    check(96, 4, 2, 3, 2100, 0);
    NK_TEST_DONE();
}

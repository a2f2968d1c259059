/* test_ops: the shared transformer blocks against straightforward double-precision
 * references, and the guarantee the engine's tests rely on: results do not depend on
 * the thread count (bit for bit), nor on how tokens are batched below the batch
 * kernels' min_tok (bit for bit; within 1e-5 relative across it). */
#include "tensor/ops.h"
#include "nk_test.h"
#include "tensor/ops_gemm.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void test_rmsnorm(void) {
    float x[37], w[37], y[37];
    for (int i = 0; i < 37; i++) { x[i] = frand() * 3; w[i] = frand(); }
    nk_rmsnorm(y, x, w, 37, 1e-5f);
    double ss = 0;
    for (int i = 0; i < 37; i++) ss += (double)x[i] * x[i];
    double sc = 1.0 / sqrt(ss / 37 + 1e-5);
    int bad = 0;
    for (int i = 0; i < 37; i++) bad += fabs(y[i] - x[i] * sc * w[i]) > 1e-5;
    CHECK_EQ_INT(bad, 0);
}

/* nk_rmsnorm_rows (8 rows' sums side by side) gives nk_rmsnorm's bits for every row,
 * for every group split (8, 4, 2, 1 rows), with and without weights, in place too. */
static void test_rmsnorm_rows(void) {
    static const int rows[] = { 1, 2, 3, 5, 7, 8, 13, 24, 31 }, ns[] = { 37, 128 };
    enum { MAXR = 31, MAXN = 128, STRIDE = 131 };
    static float x[MAXR * STRIDE], y[MAXR * STRIDE], z[MAXR * STRIDE], w[MAXN];
    int bad = 0;
    for (size_t a = 0; a < sizeof rows / sizeof rows[0]; a++)
        for (size_t b = 0; b < 2; b++)
            for (int use_w = 0; use_w < 2; use_w++) {
                const int R = rows[a], n = ns[b];
                for (int i = 0; i < MAXR * STRIDE; i++) x[i] = frand() * (1.0f + (float)(i % 7));
                for (int i = 0; i < n; i++) w[i] = frand();
                const float *wp = use_w ? w : NULL;
                for (int r = 0; r < R; r++) nk_rmsnorm(z + r * STRIDE, x + r * STRIDE, wp, n, 1e-6f);
                nk_rmsnorm_rows(y, x, STRIDE, wp, n, R, 1e-6f);
                for (int r = 0; r < R; r++) bad += memcmp(y + r * STRIDE, z + r * STRIDE, sizeof(float) * (size_t)n) != 0;
                nk_rmsnorm_rows(x, x, STRIDE, wp, n, R, 1e-6f);   /* in place */
                for (int r = 0; r < R; r++) bad += memcmp(x + r * STRIDE, z + r * STRIDE, sizeof(float) * (size_t)n) != 0;
            }
    CHECK_EQ_INT(bad, 0);
}

static void test_rope(void) {
    for (int mode = 0; mode <= 2; mode += 2) {
        nk_rope r = { .mode = mode, .n_rot = 8, .freq_base = 10000.0f, .freq_scale = 1.0f,
                      .attn_factor = 1.0f, .beta_fast = 32, .beta_slow = 1, .n_ctx_orig = 2048 };
        float cs[8], x[2 * 10], x0[2 * 10];
        for (int i = 0; i < 20; i++) x0[i] = x[i] = frand();
        const int pos = 37;
        nk_rope_cache(&r, pos, cs);
        nk_rope_apply(&r, cs, x, 2, 10);   /* head dim 10, 8 rotated, 2 passed through */
        int bad = 0;
        for (int h = 0; h < 2; h++) {
            const float *a = x0 + h * 10;
            const float *b = x + h * 10;
            for (int i = 0; i < 4; i++) {
                double th = pos * pow(10000.0, -2.0 * i / 8);
                int i0 = mode == NK_ROPE_NEOX ? i : 2 * i, i1 = mode == NK_ROPE_NEOX ? i + 4 : 2 * i + 1;
                double e0 = a[i0] * cos(th) - a[i1] * sin(th), e1 = a[i0] * sin(th) + a[i1] * cos(th);
                bad += fabs(b[i0] - e0) > 1e-4 || fabs(b[i1] - e1) > 1e-4;
            }
            bad += b[8] != a[8] || b[9] != a[9];
        }
        CHECK_MSG(bad == 0, "rope mode %d: %d mismatches", mode, bad);
    }
}

/* y = W x for a weight of `type`, checked against dequantized W times x in double,
 * and for bitwise equality across thread counts and batch splits. */
static void test_matmul(uint32_t type, double tol) {
    enum { N_IN = 256, N_OUT = 37, N_TOK = 21 };
    const nk_type_traits *tr = nk_type_get(type);
    CHECK(tr != NULL);
    if (!tr || !nk_matmul_supported(type, N_IN)) return;
    static float wf[N_OUT * N_IN], x[N_TOK * N_IN], y1[N_TOK * N_OUT], y3[N_TOK * N_OUT], yb[N_TOK * N_OUT];
    static float row[N_IN];
    for (int i = 0; i < N_OUT * N_IN; i++) wf[i] = frand();
    for (int i = 0; i < N_TOK * N_IN; i++) x[i] = frand();
    size_t nb1 = nk_row_size(type, N_IN);
    uint8_t *wq = malloc(nb1 * N_OUT);
    for (int r = 0; r < N_OUT; r++) {
        if (type == NK_TYPE_F32) memcpy(wq + r * nb1, wf + r * N_IN, nb1);
        else tr->from_float(wf + r * N_IN, wq + r * nb1, N_IN);
    }
    nk_tensor W = { .name = "w", .type = type, .ne = { N_IN, N_OUT, 1, 1 }, .nb1 = nb1, .data = wq };
    size_t ws = nk_matmul_wsize(type, N_IN, N_TOK);
    void *wbuf = ws ? nk_aligned_alloc(ws) : NULL;
    nk_pool *p3 = NULL;
    CHECK_EQ_INT(nk_pool_new(3, &p3, NULL), NOOK_OK);

    nk_matmul(NULL, &W, x, N_IN, N_TOK, y1, N_OUT, wbuf);
    nk_matmul(p3, &W, x, N_IN, N_TOK, y3, N_OUT, wbuf);
    for (int t = 0; t < N_TOK; t++)   /* one token at a time */
        nk_matmul(p3, &W, x + t * N_IN, N_IN, 1, yb + t * N_OUT, N_OUT, wbuf);
    CHECK_MSG(memcmp(y1, y3, sizeof y1) == 0, "%s: 1 vs 3 threads differ", tr->name);
    /* A type with a batch kernel (nk_gemm_pick: Q4_K, Q6_K, Q8_0 on AVX-512) computes
     * a 21-token batch with other instructions than one token: the same integer sums,
     * another float rounding order, so equal within 1e-5 relative; otherwise (and
     * always across thread counts) bit for bit. */
    if (nk_gemm_pick(type, N_TOK) == nk_gemm_pick(type, 1)) {
        CHECK_MSG(memcmp(y1, yb, sizeof y1) == 0, "%s: batched vs single differ", tr->name);
    } else {
        int far = 0;
        for (int i = 0; i < N_TOK * N_OUT; i++) far += fabsf(y1[i] - yb[i]) > 1e-5f * (1.0f + fabsf(yb[i]));
        CHECK_MSG(far == 0, "%s: batched vs single differ beyond 1e-5 (%d outputs)", tr->name, far);
    }

    double maxerr = 0;
    for (int r = 0; r < N_OUT; r++) {
        tr->to_float(wq + r * nb1, row, N_IN);
        for (int t = 0; t < N_TOK; t++) {
            double s = 0;
            for (int i = 0; i < N_IN; i++) s += (double)row[i] * x[t * N_IN + i];
            double e = fabs(s - y1[t * N_OUT + r]);
            if (e > maxerr) maxerr = e;
        }
    }
    CHECK_MSG(maxerr <= tol, "%s: max error %g > %g", tr->name, maxerr, tol);
    nk_pool_free(p3);
    nk_aligned_free(wbuf);
    free(wq);
}

/* Attention against a naive f32 implementation, for both cache types. */
static void test_attention(uint32_t kv_type, bool flash, double tol) {
    enum { NH = 4, NKV = 2, HD = 8, NCTX = 40, NTOK = 5, POS0 = 30 };
    const int es = kv_type == NK_TYPE_F32 ? 4 : 2;
    static float q[NTOK * NH * HD], kf[NCTX * NKV * HD], vf[NCTX * NKV * HD];
    static float out1[NTOK * NH * HD], out3[NTOK * NH * HD];
    for (size_t i = 0; i < NK_ARRAY_LEN(q); i++) q[i] = frand() * 2;
    for (size_t i = 0; i < NK_ARRAY_LEN(kf); i++) { kf[i] = frand() * 2; vf[i] = frand(); }
    uint8_t *k = calloc(NCTX * NKV * HD, es), *v = calloc(NCTX * NKV * HD, es);
    for (int pos = 0; pos < NCTX; pos++)
        for (int d = 0; d < NKV * HD; d++) {
            float kv = kf[pos * NKV * HD + d], vv = vf[pos * NKV * HD + d];
            size_t ki = (size_t)pos * NKV * HD + d, vi = ki;
            if (es == 4) { ((float *)k)[ki] = kv; ((float *)v)[vi] = vv; }
            else { ((uint16_t *)k)[ki] = nk_fp32_to_fp16(kv); ((uint16_t *)v)[vi] = nk_fp32_to_fp16(vv); }
        }
    void *ws = nk_aligned_alloc(nk_attn_wsize(3, NCTX, HD));
    CHECK(ws != NULL);
    nk_attn a = { .n_tok = NTOK, .pos0 = POS0, .n_head = NH, .n_head_kv = NKV, .hd_k = HD, .hd_v = HD,
                  .n_ctx = NCTX, .n_swa = 0, .scale = 1.0f / sqrtf(HD), .kv_type = kv_type,
                  .flash = flash, .q = q, .k = k, .v = v, .out = out1, .scratch = ws };
    nk_attention(NULL, &a);
    nk_pool *p3 = NULL;
    nk_pool_new(3, &p3, NULL);
    a.out = out3;
    nk_attention(p3, &a);
    CHECK(memcmp(out1, out3, sizeof out1) == 0);

    double maxerr = 0;
    for (int t = 0; t < NTOK; t++)
        for (int h = 0; h < NH; h++) {
            const int kvh = h / (NH / NKV), n_kv = POS0 + t + 1;
            double sc[NCTX], mx = -1e30, sum = 0;
            for (int j = 0; j < n_kv; j++) {
                double s = 0;
                for (int d = 0; d < HD; d++) s += (double)q[(t * NH + h) * HD + d] * kf[(j * NKV + kvh) * HD + d];
                sc[j] = s / sqrt(HD);
                if (sc[j] > mx) mx = sc[j];
            }
            for (int j = 0; j < n_kv; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
            for (int d = 0; d < HD; d++) {
                double o = 0;
                for (int j = 0; j < n_kv; j++) o += sc[j] / sum * vf[(j * NKV + kvh) * HD + d];
                double e = fabs(o - out1[(t * NH + h) * HD + d]);
                if (e > maxerr) maxerr = e;
            }
        }
    CHECK_MSG(maxerr <= tol, "attention (%s cache, flash %d): max error %g > %g", nk_type_name(kv_type), flash, maxerr, tol);
    nk_pool_free(p3);
    nk_aligned_free(ws);
    free(k);
    free(v);
}

int main(void) {
    nk_tensor_init();
    test_rmsnorm();
    test_rmsnorm_rows();
    test_rope();
    test_matmul(NK_TYPE_F32, 1e-4);
    test_matmul(NK_TYPE_F16, 0.05);   /* activations rounded to f16: ~256 * 2^-11 worst case */
    test_matmul(NK_TYPE_Q8_0, 0.1);   /* activations quantized to 8 bits */
    test_matmul(NK_TYPE_Q4_0, 0.3);
    test_matmul(NK_TYPE_Q4_K, 0.3);
    for (int fl = 0; fl <= 1; fl++) {
        test_attention(NK_TYPE_F32, fl, 1e-5);
        test_attention(NK_TYPE_F16, fl, 5e-3);   /* K, V, Q in f16 (the plain path: probabilities too) */
    }
    NK_TEST_DONE();
}

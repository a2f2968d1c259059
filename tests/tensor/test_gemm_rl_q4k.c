/*
 * test_gemm_rl_q4k.c: the rows-in-lanes Q4_K batch kernel (nk_gemm_rl_q4_K, contract
 * in tensor/ops_gemm.h) against the plain-C reference dot.
 *
 * - Accuracy: every output within 1e-5 * sum|w_i*x_i| of nk_vec_dot_q4_K_ref on the
 *   reference Q8_K activations (the kernel computes the same integers; only float
 *   rounding order differs), over row counts 1..16 and past 16 (several row groups,
 *   partial last group), token counts 1..70 (partial groups of 8, more than one 64
 *   token pass) and K = 256..4352. Weight rows and activation rows are allocated to
 *   their exact size, so ASan catches a read past the last row.
 * - Extremes: every code 15, every scale and min 63, activations at +-127, where the
 *   int32 sums are largest.
 * - Determinism: the same product split into arbitrary row and token pieces (not
 *   multiples of 16 or 8), and single elements computed alone, give the same bits.
 * - End to end: nk_matmul on 2 threads picks the kernel from min_tok tokens on, and
 *   its outputs equal one direct call bit for bit (chunking and threads change
 *   nothing); below min_tok it still matches the reference.
 *
 * Skips (exit 77) on CPUs without AVX-512 VNNI, where the kernel is absent.
 */
#include "nk_test.h"
#include "tensor/ops.h"
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rnd_f(void) { return ((float)(rnd_u32() & 0xFFFFFF) / 16777216.0f - 0.5f) * 4.0f; }
static uint16_t rnd_scale(void) { return nk_fp32_to_fp16(rnd_f() * 0.01f); }

/* Q4_K blocks with every code, scale and min bit random (extreme: all at maximum). */
static void q4k_blocks(nk_block_q4_K *b, size_t nb, bool extreme) {
    for (size_t i = 0; i < nb; i++) {
        uint8_t *p = (uint8_t *)&b[i];
        for (size_t k = 0; k < sizeof b[i]; k++) p[k] = extreme ? 0xFF : (uint8_t)rnd_u32();
        b[i].d = rnd_scale();
        b[i].dmin = rnd_scale();
    }
}

typedef struct prob {
    int n, nr, nt;
    size_t wrow, arow, srow;
    uint8_t *w, *act, *std;
    float *x;
} prob;

static void prob_new(prob *p, const nk_gemm_kernel *gk, int n, int nr, int nt, bool extreme) {
    p->n = n; p->nr = nr; p->nt = nt;
    p->wrow = nk_row_size(NK_TYPE_Q4_K, n);
    p->arow = gk->act_row_size(n);
    p->srow = nk_row_size(NK_TYPE_Q8_K, n);
    p->w = nk_malloc(p->wrow * (size_t)nr);      /* exact sizes: no slack for over-reads */
    p->act = nk_malloc(p->arow * (size_t)nt);
    p->std = nk_malloc(p->srow * (size_t)nt);
    p->x = nk_malloc(sizeof(float) * (size_t)n * (size_t)nt);
    q4k_blocks((nk_block_q4_K *)p->w, p->wrow * (size_t)nr / sizeof(nk_block_q4_K), extreme);
    for (size_t i = 0; i < (size_t)n * (size_t)nt; i++) {
        const float v = rnd_f();
        p->x[i] = extreme ? (i % 7 == 3 ? -2.0f : 2.0f) : v;
    }
    for (int t = 0; t < nt; t++) {
        gk->act_quant(p->x + (size_t)t * (size_t)n, p->act + (size_t)t * p->arow, n);
        nk_quant_q8_K_ref(p->x + (size_t)t * (size_t)n, p->std + (size_t)t * p->srow, n);
    }
}

static void prob_free(prob *p) {
    nk_free(p->w); nk_free(p->act); nk_free(p->std); nk_free(p->x);
}

/* y (row stride ys) against the reference: returns the count beyond the bound. */
static int check_ref(const prob *p, const float *y, size_t ys, double *worst) {
    float *wf = nk_malloc(sizeof(float) * (size_t)p->n);
    int bad = 0;
    for (int r = 0; r < p->nr; r++) {
        nk_dequant_q4_K(p->w + (size_t)r * p->wrow, wf, p->n);
        for (int t = 0; t < p->nt; t++) {
            float ref;
            nk_vec_dot_q4_K_ref(p->n, &ref, p->w + (size_t)r * p->wrow, p->std + (size_t)t * p->srow);
            double mag = 0;
            for (int i = 0; i < p->n; i++) mag += fabs((double)wf[i] * p->x[(size_t)t * (size_t)p->n + i]);
            const double err = fabs((double)y[(size_t)t * ys + (size_t)r] - (double)ref);
            if (err / (mag + 1e-30) > *worst) *worst = err / (mag + 1e-30);
            if (!(err <= 1e-5 * mag + 1e-30)) bad++;
        }
    }
    nk_free(wf);
    return bad;
}

/* One product, checked against the reference and against itself split up. */
static void check_shape(const nk_gemm_kernel *gk, int n, int nr, int nt, bool extreme) {
    prob p;
    prob_new(&p, gk, n, nr, nt, extreme);
    const size_t ys = (size_t)nr + 5;   /* a row stride wider than nr */
    float *y = nk_malloc(sizeof(float) * ys * (size_t)nt);
    for (size_t i = 0; i < ys * (size_t)nt; i++) y[i] = 12345.0f;
    gk->gemm(n, nr, nt, p.w, p.wrow, p.act, p.arow, y, ys);
    double worst = 0;
    const int bad = check_ref(&p, y, ys, &worst);
    CHECK_MSG(bad == 0, "n %d, %d x %d%s: %d outputs beyond 1e-5 relative (worst %.2e)", n, nr, nt,
              extreme ? " (extreme)" : "", bad, worst);
    /* the padding columns past nr are never written */
    int pad_written = 0;
    for (int t = 0; t < nt; t++)
        for (size_t c = (size_t)nr; c < ys; c++) pad_written += y[(size_t)t * ys + c] != 12345.0f;
    CHECK_MSG(pad_written == 0, "n %d, %d x %d: %d stores past row nr", n, nr, nt, pad_written);

    /* the same product in random pieces of rows and tokens */
    float *z = nk_malloc(sizeof(float) * ys * (size_t)nt);
    for (int r0 = 0; r0 < nr;) {
        const int rr = 1 + (int)(rnd_u32() % (uint32_t)(nr - r0 < 23 ? nr - r0 : 23));
        for (int t0 = 0; t0 < nt;) {
            const int tt = 1 + (int)(rnd_u32() % (uint32_t)(nt - t0 < 13 ? nt - t0 : 13));
            gk->gemm(n, rr, tt, p.w + (size_t)r0 * p.wrow, p.wrow, p.act + (size_t)t0 * p.arow, p.arow,
                     z + (size_t)t0 * ys + (size_t)r0, ys);
            t0 += tt;
        }
        r0 += rr;
    }
    int diff = 0;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) diff += memcmp(&y[(size_t)t * ys + r], &z[(size_t)t * ys + r], sizeof(float)) != 0;
    CHECK_MSG(diff == 0, "n %d, %d x %d: %d outputs differ when split", n, nr, nt, diff);
    /* a few elements alone */
    diff = 0;
    for (int k = 0; k < 6; k++) {
        const int r = (int)(rnd_u32() % (uint32_t)nr), t = (int)(rnd_u32() % (uint32_t)nt);
        float one;
        gk->gemm(n, 1, 1, p.w + (size_t)r * p.wrow, p.wrow, p.act + (size_t)t * p.arow, p.arow, &one, 1);
        diff += memcmp(&one, &y[(size_t)t * ys + r], sizeof one) != 0;
    }
    CHECK_MSG(diff == 0, "n %d, %d x %d: %d outputs differ computed alone", n, nr, nt, diff);
    nk_free(z);
    nk_free(y);
    prob_free(&p);
}

/* nk_matmul on a pool against one direct kernel call (bits) and the reference. */
static void check_matmul(const nk_gemm_kernel *gk, nk_pool *pool, int n, int rows, int nt) {
    prob p;
    prob_new(&p, gk, n, rows, nt, false);
    const bool batch = nt >= gk->min_tok;
    const char *off = getenv("NOOK_NO_RL"), *nog = getenv("NOOK_NO_GEMM"), *nos = getenv("NOOK_NO_SIMD");
    const bool env_off = (off && off[0] == '1') || (nog && nog[0] == '1') || (nos && nos[0] == '1');
    if (!env_off) CHECK_MSG((nk_gemm_pick(NK_TYPE_Q4_K, nt) == gk) == batch, "pick for %d tokens", nt);
    const nk_tensor W = { .name = "w", .type = NK_TYPE_Q4_K, .ne = { n, rows, 1, 1 }, .nb1 = p.wrow, .data = p.w };
    void *wbuf = nk_aligned_alloc(nk_matmul_wsize(NK_TYPE_Q4_K, n, nt) + 64);
    float *y = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    float *z = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    nk_matmul(pool, &W, p.x, (size_t)n, nt, y, (size_t)rows, wbuf);
    double worst = 0;
    const int bad = check_ref(&p, y, (size_t)rows, &worst);
    CHECK_MSG(bad == 0, "nk_matmul n %d, %d rows x %d tokens: %d beyond 1e-5 (worst %.2e)", n, rows, nt, bad, worst);
    if (batch && !env_off) {
        gk->gemm(n, rows, nt, p.w, p.wrow, p.act, p.arow, z, (size_t)rows);
        CHECK_MSG(memcmp(y, z, sizeof(float) * (size_t)rows * (size_t)nt) == 0,
                  "nk_matmul n %d, %d x %d differs from one direct call", n, rows, nt);
    }
    nk_free(y); nk_free(z);
    nk_aligned_free(wbuf);
    prob_free(&p);
}

int main(void) {
    nk_tensor_init();
    const nk_gemm_kernel *gk = nk_gemm_rl_q4_K();
    if (!gk) nk_test_skip("no AVX-512 VNNI on this CPU: no rows-in-lanes Q4_K kernel");
    CHECK(gk->min_tok >= 4);   /* test_errors.c: batches of 3 equal token by token */
    CHECK(gk->act_row_size(512) == 2 * gk->act_row_size(256));

    /* every row count of one group and a few past it, token counts around 8 and 64 */
    for (int nr = 1; nr <= 16; nr++) check_shape(gk, 256, nr, 1 + (nr * 5) % 11, false);
    const int shapes[][3] = {
        { 512, 16, 8 }, { 768, 17, 9 }, { 256, 33, 70 }, { 1024, 16, 64 }, { 2304, 31, 65 },
        { 4096, 16, 16 }, { 4352, 5, 3 }, { 3072, 48, 24 }, { 1280, 7, 1 }, { 256, 1, 70 },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(shapes); i++) check_shape(gk, shapes[i][0], shapes[i][1], shapes[i][2], false);
    check_shape(gk, 1024, 16, 9, true);
    check_shape(gk, 512, 5, 3, true);

    nk_pool *pool = NULL;
    nook_error err;
    CHECK(nk_pool_new(2, &pool, &err) == NOOK_OK);
    if (pool) {
        const int toks[] = { gk->min_tok - 1, gk->min_tok, gk->min_tok + 5, 64, 67 };
        for (size_t i = 0; i < NK_ARRAY_LEN(toks); i++) check_matmul(gk, pool, 1024, 200, toks[i]);
        check_matmul(gk, pool, 2048, 12, 40);   /* small matrix: chunks of 4 rows */
        nk_pool_free(pool);
    }
    NK_TEST_DONE();
}

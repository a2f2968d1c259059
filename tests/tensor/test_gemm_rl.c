/*
 * test_gemm_rl.c: the rows-in-lanes batch kernels for Q8_0, Q5_0, Q4_0
 * (tensor/arch/x86/gemm_rl_q8_0.c: one driver, per-type weight unpacking) and Q6_K
 * (gemm_rl_q6k.c) against the plain-C reference dot, on random blocks with every code
 * bit random (Q4_K has its own test: its activation layout differs).
 *
 *  - accuracy: |gemm - ref| <= 1e-5 * sum|w_i*x_i| (+1e-30), the bound test_gemm.c
 *    uses (same integer codes, only the float accumulation order differs), over
 *    block counts that are odd, cross the kernel's slabs, rows 1..33 (partial and
 *    several 16-row passes), tokens 1..70; weight rows and activation rows end at the
 *    end of their allocations (ASan catches over-reads), and the output's padding
 *    (a row stride wider than nr) must stay untouched;
 *  - determinism: the same outputs bit for bit when the product is split into
 *    sub-products at arbitrary row and token boundaries, and element by element;
 *  - end to end: nk_matmul gives the same bits with 1 or 2 threads, within the
 *    bound; once nk_gemm_pick dispatches to the kernel (batches >= min_tok), the same
 *    bits as the kernel called directly.
 *
 * Skips (exit 77) on CPUs without AVX-512 VNNI, where there is no batch kernel.
 */
#include "nk_test.h"
#include "tensor/ops.h"
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"


static uint32_t RL_TYPE;   /* the weight type under test */

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rnd_f(void) { return ((float)(rnd_u32() & 0xFFFFFF) / 16777216.0f - 0.5f) * 4.0f; }
static uint16_t rnd_scale(void) { return nk_fp32_to_fp16(rnd_f() * 0.01f); }

/* Random bytes everywhere, then a finite scale per block. */
static void random_rows(uint8_t *w, size_t bytes) {
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd_u32();
    const size_t bs = nk_type_get(RL_TYPE)->type_size;
    for (size_t b = 0; b < bytes / bs; b++) {   /* a sane f16 scale in every block */
        const uint16_t d = rnd_scale();
        if (RL_TYPE == NK_TYPE_Q6_K) ((nk_block_q6_K *)(w + b * bs))->d = d;
        else memcpy(w + b * bs, &d, 2);          /* the first field of the 32-blocks */
    }
}

typedef struct prob {
    int n, nr, nt;
    size_t wrow, arow, srow;
    uint8_t *w, *act, *std;
    float *x;
} prob;

static void prob_new(prob *p, const nk_gemm_kernel *gk, int n, int nr, int nt) {
    p->n = n; p->nr = nr; p->nt = nt;
    p->wrow = nk_row_size(RL_TYPE, n);
    p->arow = gk->act_row_size(n);
    const uint32_t vt = (uint32_t)nk_type_get(RL_TYPE)->vec_dot_type;
    p->srow = nk_row_size(vt, n);
    p->w = nk_malloc(p->wrow * (size_t)nr);          /* exact sizes: no slack for over-reads */
    p->act = nk_malloc(p->arow * (size_t)nt);
    p->std = nk_malloc(p->srow * (size_t)nt);
    p->x = nk_malloc(sizeof(float) * (size_t)n * (size_t)nt);
    random_rows(p->w, p->wrow * (size_t)nr);
    for (size_t i = 0; i < (size_t)n * (size_t)nt; i++) p->x[i] = rnd_f();
    for (int t = 0; t < nt; t++) {
        gk->act_quant(p->x + (size_t)t * (size_t)n, p->act + (size_t)t * p->arow, n);
        nk_type_get(vt)->from_float(p->x + (size_t)t * (size_t)n, p->std + (size_t)t * p->srow, n);
    }
}

static void prob_free(prob *p) {
    nk_free(p->w); nk_free(p->act); nk_free(p->std); nk_free(p->x);
}

/* Outputs within the reference bound; *worst gets the largest relative error. */
static int count_bad(const prob *p, const float *y, size_t ys, double *worst) {
    const nk_type_traits *tr = nk_type_get(RL_TYPE);
    float *wf = nk_malloc(sizeof(float) * (size_t)p->n);
    int bad = 0;
    for (int r = 0; r < p->nr; r++) {
        tr->to_float(p->w + (size_t)r * p->wrow, wf, p->n);
        for (int t = 0; t < p->nt; t++) {
            float ref;
            tr->vec_dot_ref(p->n, &ref, p->w + (size_t)r * p->wrow, p->std + (size_t)t * p->srow);
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

static void check_shape(const nk_gemm_kernel *gk, int n, int nr, int nt) {
    prob p;
    prob_new(&p, gk, n, nr, nt);
    const size_t ys = (size_t)nr + 3;
    float *y = nk_malloc(sizeof(float) * ys * (size_t)nt);
    for (size_t i = 0; i < ys * (size_t)nt; i++) y[i] = -7.0f;   /* sentinel */
    gk->gemm(n, nr, nt, p.w, p.wrow, p.act, p.arow, y, ys);
    double worst = 0;
    const int bad = count_bad(&p, y, ys, &worst);
    CHECK_MSG(bad == 0, "n %d, %d x %d: %d outputs beyond 1e-5 relative (worst %.2e)", n, nr, nt, bad, worst);
    int pad = 0;
    for (int t = 0; t < nt; t++)
        for (size_t r = (size_t)nr; r < ys; r++) pad += y[(size_t)t * ys + r] != -7.0f;
    CHECK_MSG(pad == 0, "n %d, %d x %d: %d padding floats written", n, nr, nt, pad);

    /* the same product in random sub-products: identical bits */
    float *y2 = nk_malloc(sizeof(float) * ys * (size_t)nt);
    for (int t0 = 0; t0 < nt;) {
        const int tn = 1 + (int)(rnd_u32() % (uint32_t)(nt - t0));
        for (int r0 = 0; r0 < nr;) {
            const int rn = 1 + (int)(rnd_u32() % (uint32_t)(nr - r0));
            gk->gemm(n, rn, tn, p.w + (size_t)r0 * p.wrow, p.wrow, p.act + (size_t)t0 * p.arow, p.arow,
                     y2 + (size_t)t0 * ys + (size_t)r0, ys);
            r0 += rn;
        }
        t0 += tn;
    }
    int diff = 0;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) diff += memcmp(&y[(size_t)t * ys + r], &y2[(size_t)t * ys + r], 4) != 0;
    CHECK_MSG(diff == 0, "n %d, %d x %d: %d outputs differ when split", n, nr, nt, diff);
    /* a few elements alone */
    diff = 0;
    for (int k = 0; k < 4; k++) {
        const int r = (int)(rnd_u32() % (uint32_t)nr), t = (int)(rnd_u32() % (uint32_t)nt);
        float one;
        gk->gemm(n, 1, 1, p.w + (size_t)r * p.wrow, p.wrow, p.act + (size_t)t * p.arow, p.arow, &one, 1);
        diff += memcmp(&one, &y[(size_t)t * ys + r], 4) != 0;
    }
    CHECK_MSG(diff == 0, "n %d, %d x %d: %d outputs differ computed alone", n, nr, nt, diff);
    nk_free(y); nk_free(y2);
    prob_free(&p);
}

/* nk_matmul with the batch kernel: same bits as the kernel called directly, 1 or 2
 * threads, and within the reference bound. */
static void check_matmul(const nk_gemm_kernel *gk, int n, int rows, int nt) {
    const char *off = getenv("NOOK_NO_RL");
    const bool rl_on = !(off && off[0] == '1') && nk_gemm_get(RL_TYPE) != NULL;
    if (rl_on) CHECK(nk_gemm_pick(RL_TYPE, nt) == (nt >= gk->min_tok ? gk : nk_gemm_get(RL_TYPE)));
    prob p;
    prob_new(&p, gk, n, rows, nt);
    nk_tensor W = { .name = "w", .type = RL_TYPE, .ne = { n, rows, 1, 1 }, .nb1 = p.wrow, .data = p.w };
    void *wbuf = nk_aligned_alloc(nk_matmul_wsize(RL_TYPE, n, nt) + 64);
    float *y1 = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    float *y2 = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    float *yd = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    nk_pool *pool = NULL;
    nook_error err;
    CHECK(nk_pool_new(2, &pool, &err) == NOOK_OK);
    nk_matmul(NULL, &W, p.x, (size_t)n, nt, y1, (size_t)rows, wbuf);
    nk_matmul(pool, &W, p.x, (size_t)n, nt, y2, (size_t)rows, wbuf);
    gk->gemm(n, rows, nt, p.w, p.wrow, p.act, p.arow, yd, (size_t)rows);
    CHECK_MSG(memcmp(y1, y2, sizeof(float) * (size_t)rows * (size_t)nt) == 0, "matmul %d x %d: 1 vs 2 threads",
              rows, nt);
    if (rl_on && nt >= gk->min_tok)
        CHECK_MSG(memcmp(y1, yd, sizeof(float) * (size_t)rows * (size_t)nt) == 0,
                  "matmul %d x %d: differs from the kernel called directly", rows, nt);
    double worst = 0;
    const int bad = count_bad(&p, y2, (size_t)rows, &worst);
    CHECK_MSG(bad == 0, "matmul n %d, %d x %d: %d outputs beyond 1e-5 relative (worst %.2e)", n, rows, nt, bad,
              worst);
    nk_pool_free(pool);
    nk_aligned_free(wbuf);
    nk_free(y1); nk_free(y2); nk_free(yd);
    prob_free(&p);
}

static void run_type(uint32_t type, const nk_gemm_kernel *gk) {
    RL_TYPE = type;
    CHECK(gk->min_tok >= 4);   /* test_errors.c compares batches of 3 with single tokens */
    const bool k256 = type == NK_TYPE_Q6_K;
    const int ns32[] = { 32, 64, 96, 1056, 2080, 4128 }, ns256[] = { 256, 512, 768, 1280, 2304, 4352 };
    const int *ns = k256 ? ns256 : ns32;
    const int rs[] = { 1, 3, 16, 17, 33 };
    const int ts[] = { 1, 5, 9, 70 };
    for (size_t a = 0; a < NK_ARRAY_LEN(ns32); a++)
        for (size_t b = 0; b < NK_ARRAY_LEN(rs); b++)
            for (size_t c = 0; c < NK_ARRAY_LEN(ts); c++) {
                if (ns[a] > 1100 && rs[b] * ts[c] > 600) continue;   /* keep the reference cheap */
                check_shape(gk, ns[a], rs[b], ts[c]);
            }
    check_shape(gk, k256 ? 4352 : 4128, 33, 19);
    check_shape(gk, k256 ? 1024 : 1152, 16, 64);   /* 1152: gemma3-1b's n_embd, two slabs */
    check_matmul(gk, 1024, 100, 70);
    check_matmul(gk, k256 ? 256 : 96, 20, 3);
    check_matmul(gk, 2048, 36, 9);
    if (!k256) check_matmul(gk, 1152, 40, 12);
}

int main(void) {
    nk_tensor_init();
    const struct { uint32_t type; const nk_gemm_kernel *gk; } kernels[] = {
        { NK_TYPE_Q8_0, nk_gemm_rl_q8_0() }, { NK_TYPE_Q5_0, nk_gemm_rl_q5_0() },
        { NK_TYPE_Q4_0, nk_gemm_rl_q4_0() }, { NK_TYPE_Q6_K, nk_gemm_rl_q6_K() },
    };
    for (size_t i = 1; i < NK_ARRAY_LEN(kernels); i++) CHECK((kernels[i].gk == NULL) == (kernels[0].gk == NULL));
    if (!kernels[0].gk) nk_test_skip("no AVX-512 VNNI batch kernel on this CPU");
    for (size_t i = 0; i < NK_ARRAY_LEN(kernels); i++) run_type(kernels[i].type, kernels[i].gk);
    NK_TEST_DONE();
}

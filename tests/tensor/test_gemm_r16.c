/*
 * test_gemm_r16.c: Q6_K and Q4_K weights repacked into 16-row interleaved groups
 * (nk_q6k_r16_pack in gemm_rl_q6k.c, nk_q4k_r16_pack in gemm_rl_q4k.c) and their
 * kernels (nk_gemm_r16_q6_K, nk_gemm_r16_q4_K), on random blocks with every code bit
 * random:
 *  - accuracy: against the plain-C reference dot (the type's vec_dot_ref on Q8_K
 *    activations) within test_gemm_rl.c's bound, 1..16 tokens and prompt-sized ones,
 *    row counts that are not multiples of 16 (the last partial group stays in the
 *    file's layout) and block counts that are odd;
 *  - bits: the same as the type's rows-in-lanes kernel (gemm_rl_q6_K, rl_gemm) on
 *    the original rows, so a repacked model's outputs do not depend on the batch size
 *    or the split between calls;
 *  - get_rows: every row of a repacked tensor reads back as the type's dequantizer
 *    gives the original row, bit for bit;
 *  - nk_matmul on a repacked nk_tensor (nk_tensor_repack): 1 and 2 threads agree and
 *    equal the kernel called directly.
 * Skips (exit 77) on CPUs without AVX-512 VNNI.
 */
#include "nk_test.h"
#include "tensor/ops.h"
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rnd_f(void) { return ((float)(rnd_u32() & 0xFFFFFF) / 16777216.0f - 0.5f) * 4.0f; }

static uint32_t TYPE;   /* the weight type under test */

static void random_rows(uint8_t *w, size_t bytes) {
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd_u32();
    if (TYPE == NK_TYPE_Q6_K)
        for (size_t b = 0; b < bytes / sizeof(nk_block_q6_K); b++)
            ((nk_block_q6_K *)w)[b].d = nk_fp32_to_fp16(rnd_f() * 0.01f);
    else
        for (size_t b = 0; b < bytes / sizeof(nk_block_q4_K); b++) {
            const uint16_t d = nk_fp32_to_fp16(rnd_f() * 0.01f), dm = nk_fp32_to_fp16(rnd_f() * 0.01f);
            memcpy(w + b * sizeof(nk_block_q4_K), &d, 2);
            memcpy(w + b * sizeof(nk_block_q4_K) + 2, &dm, 2);
        }
}

static const nk_gemm_kernel *packed_kernel(void) {
    return TYPE == NK_TYPE_Q6_K ? nk_gemm_r16_q6_K() : nk_gemm_r16_q4_K();
}
static bool pack(const void *src, void *dst, int64_t nr, int64_t n) {
    return TYPE == NK_TYPE_Q6_K ? nk_q6k_r16_pack(src, dst, nr, n) : nk_q4k_r16_pack(src, dst, nr, n);
}
static void row_to_float(const void *data, int64_t r, int64_t nr, int64_t n, float *dst) {
    if (TYPE == NK_TYPE_Q6_K) nk_q6k_r16_row_to_float(data, r, nr, n, dst);
    else nk_q4k_r16_row_to_float(data, r, nr, n, dst);
}

static void check(int n, int nr, int nt) {
    const nk_gemm_kernel *pk = packed_kernel(), *rl = TYPE == NK_TYPE_Q6_K ? nk_gemm_rl_q6_K() : nk_gemm_rl_q4_K();
    const nk_type_traits *tr = nk_type_get(TYPE);
    const size_t wrow = nk_row_size(TYPE, n), arow = pk->act_row_size(n);
    const size_t srow = nk_row_size(NK_TYPE_Q8_K, n);
    uint8_t *w = nk_malloc(wrow * (size_t)nr), *wp = nk_malloc(wrow * (size_t)nr);
    uint8_t *act = nk_malloc(arow * (size_t)nt), *std = nk_malloc(srow * (size_t)nt);
    float *x = nk_malloc(sizeof(float) * (size_t)n * (size_t)nt);
    random_rows(w, wrow * (size_t)nr);
    CHECK(pack(w, wp, nr, n));
    for (size_t i = 0; i < (size_t)n * (size_t)nt; i++) x[i] = rnd_f();
    for (int t = 0; t < nt; t++) {
        pk->act_quant(x + (size_t)t * (size_t)n, act + (size_t)t * arow, n);
        nk_type_get(NK_TYPE_Q8_K)->from_float(x + (size_t)t * (size_t)n, std + (size_t)t * srow, n);
    }
    const size_t ys = (size_t)nr + 2;
    float *y = nk_malloc(sizeof(float) * ys * (size_t)nt), *yr = nk_malloc(sizeof(float) * ys * (size_t)nt);
    for (size_t i = 0; i < ys * (size_t)nt; i++) y[i] = yr[i] = -7.0f;
    pk->gemm(n, nr, nt, wp, wrow, act, arow, y, ys);
    rl->gemm(n, nr, nt, w, wrow, act, arow, yr, ys);
    int bad = 0, diff = 0, pad = 0;
    double worst = 0;
    float *wf = nk_malloc(sizeof(float) * (size_t)n), *wg = nk_malloc(sizeof(float) * (size_t)n);
    for (int r = 0; r < nr; r++) {
        tr->to_float(w + (size_t)r * wrow, wf, n);
        row_to_float(wp, r, nr, n, wg);
        CHECK_MSG(memcmp(wf, wg, sizeof(float) * (size_t)n) == 0, "n %d rows %d: row %d reads back differently", n,
                  nr, r);
        for (int t = 0; t < nt; t++) {
            float ref;
            tr->vec_dot_ref(n, &ref, w + (size_t)r * wrow, std + (size_t)t * srow);
            double mag = 0;
            for (int i = 0; i < n; i++) mag += fabs((double)wf[i] * x[(size_t)t * (size_t)n + i]);
            const float got = y[(size_t)t * ys + (size_t)r];
            const double err = fabs((double)got - (double)ref);
            if (err / (mag + 1e-30) > worst) worst = err / (mag + 1e-30);
            bad += !(err <= 1e-5 * mag + 1e-30);
            diff += memcmp(&got, &yr[(size_t)t * ys + (size_t)r], 4) != 0;
        }
    }
    for (int t = 0; t < nt; t++)
        for (size_t r = (size_t)nr; r < ys; r++) pad += y[(size_t)t * ys + r] != -7.0f;
    CHECK_MSG(bad == 0, "n %d, %d x %d: %d outputs beyond 1e-5 relative (worst %.2e)", n, nr, nt, bad, worst);
    CHECK_MSG(diff == 0, "%s n %d, %d x %d: %d outputs differ from the rows-in-lanes kernel's bits", tr->name, n, nr,
              nt, diff);
    CHECK_MSG(pad == 0, "n %d, %d x %d: %d padding floats written", n, nr, nt, pad);
    nk_free(wf); nk_free(wg);
    nk_free(w); nk_free(wp); nk_free(act); nk_free(std); nk_free(x); nk_free(y); nk_free(yr);
}

/* nk_matmul of a repacked tensor: the kernel's bits with 1 and 2 threads. */
static void check_matmul(int n, int rows, int nt) {
    const size_t wrow = nk_row_size(TYPE, n);
    uint8_t *w = nk_malloc(wrow * (size_t)rows), *wp = nk_malloc(wrow * (size_t)rows);
    random_rows(w, wrow * (size_t)rows);
    nk_tensor W = { .name = "w", .type = TYPE, .ne = { n, rows, 1, 1 }, .nb1 = wrow, .data = w };
    if (!nk_tensor_repack_wanted(&W)) {   /* NOOK_NO_REPACK / NOOK_NO_GEMM set by the caller */
        nk_free(w); nk_free(wp);
        return;
    }
    /* the same matrix with its copy still being made (a model's weights right after
     * load, src/model/repack.c): the file's rows through the rows-in-lanes kernels */
    nk_tensor_pack rec = { .layout = TYPE == NK_TYPE_Q6_K ? NK_LAYOUT_Q6K_R16 : NK_LAYOUT_Q4K_R16 };
    atomic_init(&rec.data, NULL);
    nk_tensor Wpend = W;
    Wpend.pack = &rec;
    CHECK(!nk_tensor_repack_wanted(&Wpend));   /* already being copied */
    CHECK(nk_tensor_repack(&W, wp));
    CHECK(W.layout == (TYPE == NK_TYPE_Q6_K ? NK_LAYOUT_Q6K_R16 : NK_LAYOUT_Q4K_R16) && W.data == wp);
    float *x = nk_malloc(sizeof(float) * (size_t)n * (size_t)nt);
    for (size_t i = 0; i < (size_t)n * (size_t)nt; i++) x[i] = rnd_f();
    const nk_gemm_kernel *pk = packed_kernel();
    const size_t arow = pk->act_row_size(n);
    uint8_t *act = nk_malloc(arow * (size_t)nt);
    for (int t = 0; t < nt; t++) pk->act_quant(x + (size_t)t * (size_t)n, act + (size_t)t * arow, n);
    void *wbuf = nk_aligned_alloc(nk_matmul_wsize(TYPE, n, nt) + 64);
    float *y1 = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    float *y2 = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    float *yd = nk_malloc(sizeof(float) * (size_t)rows * (size_t)nt);
    nk_pool *pool = NULL;
    nook_error err;
    CHECK(nk_pool_new(2, &pool, &err) == NOOK_OK);
    nk_matmul(NULL, &W, x, (size_t)n, nt, y1, (size_t)rows, wbuf);
    nk_matmul(pool, &W, x, (size_t)n, nt, y2, (size_t)rows, wbuf);
    pk->gemm(n, rows, nt, wp, wrow, act, arow, yd, (size_t)rows);
    const size_t bytes = sizeof(float) * (size_t)rows * (size_t)nt;
    CHECK_MSG(memcmp(y1, y2, bytes) == 0, "matmul %d x %d: 1 vs 2 threads", rows, nt);
    CHECK_MSG(memcmp(y1, yd, bytes) == 0, "matmul %d x %d: differs from the kernel called directly", rows, nt);
    /* pending: the copy's bits (so a model's results do not depend on when it lands),
     * then published: the copy itself */
    float *yp = nk_malloc(bytes);
    for (int th = 0; th < 2; th++) {
        memset(yp, 0, bytes);
        nk_matmul(th ? pool : NULL, &Wpend, x, (size_t)n, nt, yp, (size_t)rows, wbuf);
        CHECK_MSG(memcmp(y1, yp, bytes) == 0, "matmul %d x %d, copy pending, %d threads: not the copy's bits", rows,
                  nt, th + 1);
    }
    atomic_store_explicit(&rec.data, (const void *)wp, memory_order_release);
    memset(yp, 0, bytes);
    nk_matmul(pool, &Wpend, x, (size_t)n, nt, yp, (size_t)rows, wbuf);
    CHECK_MSG(memcmp(y1, yp, bytes) == 0, "matmul %d x %d, copy published: not the copy's bits", rows, nt);
    nk_free(yp);
    /* get_rows on the repacked table */
    const int32_t ids[3] = { 0, rows - 1, rows / 2 };
    float *g = nk_malloc(sizeof(float) * (size_t)n * 3), *ref = nk_malloc(sizeof(float) * (size_t)n);
    for (int v = 0; v < 2; v++) {   /* the repacked view, and the published one */
        nk_get_rows(v ? &Wpend : &W, ids, 3, g);
        for (int i = 0; i < 3; i++) {
            nk_type_get(TYPE)->to_float(w + (size_t)ids[i] * wrow, ref, n);
            CHECK_MSG(memcmp(ref, g + (size_t)i * (size_t)n, sizeof(float) * (size_t)n) == 0, "get_rows row %d", ids[i]);
        }
    }
    nk_pool_free(pool);
    nk_aligned_free(wbuf);
    nk_free(g); nk_free(ref); nk_free(x); nk_free(act); nk_free(y1); nk_free(y2); nk_free(yd); nk_free(w); nk_free(wp);
}

static void run_type(uint32_t type) {
    TYPE = type;
    const int ns[] = { 256, 768, 1280 };
    const int rs[] = { 16, 37, 5, 48 };
    for (size_t a = 0; a < NK_ARRAY_LEN(ns); a++)
        for (size_t b = 0; b < NK_ARRAY_LEN(rs); b++)
            for (int nt = 1; nt <= 16; nt++) check(ns[a], rs[b], nt);
    check(1024, 33, 17);   /* the slab path (>= 17 tokens) */
    check(512, 19, 70);    /* more than one 64-token pass */
    check_matmul(1024, 100, 1);
    check_matmul(1024, 100, 8);
    check_matmul(512, 45, 5);
    check_matmul(256, 300, 70);
    check_matmul(3072, 64, 3);
}

int main(void) {
    nk_tensor_init();
    if (!nk_gemm_r16_q6_K() || !nk_gemm_r16_q4_K()) nk_test_skip("no AVX-512 VNNI on this CPU");
    run_type(NK_TYPE_Q6_K);
    run_type(NK_TYPE_Q4_K);
    NK_TEST_DONE();
}

/*
 * test_gemm.c: the register-blocked matmul kernels (tensor/ops_gemm.h) against the
 * plain-C reference dot, on random blocks with every code bit random.
 *
 * Bounds: the kernels compute the reference's integers (same activation codes), so
 * they differ only by float accumulation order: |gemm - ref| <= 1e-5 * sum|w_i*x_i|
 * (+1e-30), the bound test_simd.c uses for the vec_dot kernels. Shapes cover full and
 * edge tiles (rows and tokens 1..9; for the K-quants every decode batch of 2..8
 * tokens, which runs one row at a time), odd block counts (Q8_0/Q5_0/Q4_0 pair blocks),
 * and weight rows that end exactly at the end of their allocation (ASan catches an
 * over-read). Tile independence is checked bit for bit: every output of a 9 x 7
 * product equals the same element computed alone (1 x 1).
 *
 * Skips (exit 77) on CPUs without AVX-512 VNNI, where nook has no gemm kernels.
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
static uint16_t rnd_scale(void) { return nk_fp32_to_fp16(rnd_f() * 0.01f); }

static void random_blocks(uint32_t type, void *buf, int nb) {
    const nk_type_traits *t = nk_type_get(type);
    uint8_t *p = buf;
    for (size_t i = 0; i < (size_t)nb * t->type_size; i++) p[i] = (uint8_t)rnd_u32();
    for (int b = 0; b < nb; b++) {
        void *blk = p + (size_t)b * t->type_size;
        switch (type) {
        case NK_TYPE_Q4_0: ((nk_block_q4_0 *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q5_0: ((nk_block_q5_0 *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q8_0: ((nk_block_q8_0 *)blk)->d = rnd_scale(); break;
        case NK_TYPE_Q4_K: ((nk_block_q4_K *)blk)->d = rnd_scale(); ((nk_block_q4_K *)blk)->dmin = rnd_scale(); break;
        case NK_TYPE_Q6_K: ((nk_block_q6_K *)blk)->d = rnd_scale(); break;
        default: break;
        }
    }
}

/* One product: nr weight rows of n elements x nt activation rows. */
static void check_shape(uint32_t type, const nk_gemm_kernel *gk, int n, int nr, int nt) {
    const nk_type_traits *tr = nk_type_get(type);
    const uint32_t vt = (uint32_t)tr->vec_dot_type;
    const size_t wrow = nk_row_size(type, n), arow = gk->act_row_size(n), srow = nk_row_size(vt, n);
    uint8_t *w = nk_malloc(wrow * (size_t)nr);          /* exact size: no slack for over-reads */
    uint8_t *act = nk_malloc(arow * (size_t)nt);
    uint8_t *std = nk_malloc(srow * (size_t)nt);
    float *x = nk_malloc(sizeof(float) * (size_t)n * (size_t)nt);
    float *wf = nk_malloc(sizeof(float) * (size_t)n);
    float *y = nk_malloc(sizeof(float) * (size_t)nr * (size_t)nt);
    random_blocks(type, w, (int)(wrow * (size_t)nr / tr->type_size));
    for (size_t i = 0; i < (size_t)n * (size_t)nt; i++) x[i] = rnd_f();
    for (int t = 0; t < nt; t++) {
        gk->act_quant(x + (size_t)t * (size_t)n, act + (size_t)t * arow, n);
        nk_type_get(vt)->from_float(x + (size_t)t * (size_t)n, std + (size_t)t * srow, n);
    }
    const size_t ys = (size_t)nr + 3;   /* a row stride wider than nr */
    float *yy = nk_malloc(sizeof(float) * ys * (size_t)nt);
    gk->gemm(n, nr, nt, w, wrow, act, arow, yy, ys);
    double worst = 0;
    int bad = 0, diff_bits = 0;
    for (int r = 0; r < nr; r++) {
        tr->to_float(w + (size_t)r * wrow, wf, n);
        for (int t = 0; t < nt; t++) {
            float ref;
            tr->vec_dot_ref(n, &ref, w + (size_t)r * wrow, std + (size_t)t * srow);
            double mag = 0;
            for (int i = 0; i < n; i++) mag += fabs((double)wf[i] * x[(size_t)t * (size_t)n + i]);
            const float got = yy[(size_t)t * ys + (size_t)r];
            const double err = fabs((double)got - (double)ref), lim = 1e-5 * mag + 1e-30;
            if (err / (mag + 1e-30) > worst) worst = err / (mag + 1e-30);
            if (!(err <= lim)) bad++;
            /* the same element alone must give the same bits */
            float one;
            gk->gemm(n, 1, 1, w + (size_t)r * wrow, wrow, act + (size_t)t * arow, arow, &one, 1);
            if (memcmp(&one, &got, sizeof one) != 0) diff_bits++;
        }
    }
    CHECK_MSG(bad == 0, "%s n %d, %d x %d: %d outputs beyond 1e-5 relative (worst %.2e)",
              tr->name, n, nr, nt, bad, worst);
    CHECK_MSG(diff_bits == 0, "%s n %d, %d x %d: %d outputs differ from the 1 x 1 computation",
              tr->name, n, nr, nt, diff_bits);
    (void)y;
    nk_free(w); nk_free(act); nk_free(std); nk_free(x); nk_free(wf); nk_free(y); nk_free(yy);
}

int main(void) {
    nk_tensor_init();
    const uint32_t types[] = { NK_TYPE_Q8_0, NK_TYPE_Q5_0, NK_TYPE_Q4_0, NK_TYPE_Q4_K, NK_TYPE_Q6_K };
    int tested = 0;
    for (size_t i = 0; i < NK_ARRAY_LEN(types); i++) {
        const nk_gemm_kernel *gk = nk_gemm_avx512(types[i]);
        if (!gk) continue;
        tested++;
        const bool k = nk_type_get(types[i])->blck == QK_K;
        const int ns_k[] = { 256, 768, 2304 }, ns_32[] = { 32, 64, 96, 1152, 1184 };
        const int *ns = k ? ns_k : ns_32;
        const int nn = k ? 3 : 5;
        for (int a = 0; a < nn; a++) {
            check_shape(types[i], gk, ns[a], 9, 7);
            check_shape(types[i], gk, ns[a], 4, 4);
            check_shape(types[i], gk, ns[a], 1, 1);
            check_shape(types[i], gk, ns[a], 3, 2);
            check_shape(types[i], gk, ns[a], 6, 1);
            check_shape(types[i], gk, ns[a], 5, 13);
            /* decode batches of 2..8 sequences: the K-quants' one-row tiles with
             * every token in the tile (and one 2-row tile shape past them) */
            if (k)
                for (int nt = 2; nt <= 9; nt++) check_shape(types[i], gk, ns[a], 3, nt);
        }
    }
    if (!tested) nk_test_skip("no AVX-512 VNNI gemm kernels on this CPU");
    printf("gemm kernels checked: %d types\n", tested);
    NK_TEST_DONE();
}

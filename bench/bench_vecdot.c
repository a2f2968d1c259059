/*
 * bench_vecdot.c: time each vec_dot kernel level (reference, AVX2, AVX512-VNNI) and
 * the activation quantizers on cache-resident rows, to measure the SIMD speedups
 * quoted in docs/quants.md. Single-threaded; K = 4096 columns, 64 weight rows
 * (at most ~0.6 MB of weights, so it measures the kernel, not DRAM).
 *
 * Build and run (from the repository root; needs only the base and tensor layers):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_vecdot.c src/tensor/types.c \
 *      src/tensor/quants_*.c src/tensor/arch/*/*.c src/base/base.c -lm -lpthread \
 *      -o /tmp/bench_vecdot && /tmp/bench_vecdot
 */
#include "tensor/quants.h"

#include <stdio.h>
#include <stdlib.h>

enum { K = 4096, ROWS = 64 };

static uint64_t g_rng = 88172645463325252ull;
static float rnd_f(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return ((float)(g_rng >> 40) / 16777216.0f - 0.5f) * 2.0f;
}

/* best of 15 runs (the minimum filters out time stolen by other processes) of `reps` passes over all rows, in ns per row dot */
static double time_dot(nk_vec_dot_fn f, const uint8_t *w, size_t row_bytes, const void *act, int reps) {
    double best = 1e30;
    volatile float sink = 0;
    for (int run = 0; run < 15; run++) {
        double t0 = nk_time_ms();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < ROWS; i++) {
                float s;
                f(K, &s, w + (size_t)i * row_bytes, act);
                sink += s;
            }
        double ns = (nk_time_ms() - t0) * 1e6 / ((double)reps * ROWS);
        if (ns < best) best = ns;
    }
    (void)sink;
    return best;
}

static double time_quant(nk_from_float_fn f, const float *x, void *out, int reps) {
    double best = 1e30;
    for (int run = 0; run < 15; run++) {
        double t0 = nk_time_ms();
        for (int r = 0; r < reps; r++) f(x, out, K);
        double ns = (nk_time_ms() - t0) * 1e6 / reps;
        if (ns < best) best = ns;
    }
    return best;
}

int main(void) {
    static const uint32_t types[] = {NK_TYPE_Q4_K, NK_TYPE_Q6_K, NK_TYPE_Q8_0, NK_TYPE_Q4_0, NK_TYPE_F16,
        NK_TYPE_F32, NK_TYPE_Q5_K, NK_TYPE_Q5_0, NK_TYPE_Q4_1, NK_TYPE_Q5_1, NK_TYPE_BF16, NK_TYPE_Q2_K, NK_TYPE_Q3_K};
    float *wf = malloc(sizeof(float) * K * ROWS), *xf = malloc(sizeof(float) * K);
    uint8_t *w = malloc((size_t)K * ROWS * 4), *act = malloc((size_t)K * 4);
    for (int i = 0; i < K * ROWS; i++) wf[i] = rnd_f();
    for (int i = 0; i < K; i++) xf[i] = rnd_f();
    printf("vec_dot, K=%d, ns per row (speedup vs reference)\n", K);
    printf("%-6s %12s %20s %20s\n", "type", "reference", "avx2", "avx512vnni");
    for (size_t k = 0; k < NK_ARRAY_LEN(types); k++) {
        const nk_type_traits *t = nk_type_get(types[k]);
        const nk_type_traits *a = nk_type_get((uint32_t)t->vec_dot_type);
        size_t rb = nk_row_size(types[k], K);
        for (int i = 0; i < ROWS; i++) t->from_float_ref(wf + (size_t)i * K, w + (size_t)i * rb, K);
        a->from_float_ref(xf, act, K);
        double ref = time_dot(t->vec_dot_ref, w, rb, act, 20);
        printf("%-6s %12.1f", t->name, ref);
        for (int isa = NK_ISA_AVX2; isa < NK_ISA_COUNT; isa++) {
            nk_vec_dot_fn f = nk_vec_dot_variant(types[k], isa);
            if (!nk_isa_supported(isa) || !f) { printf(" %20s", "-"); continue; }
            double ns = time_dot(f, w, rb, act, 200);
            char cell[32];
            snprintf(cell, sizeof cell, "%.1f (%.1fx)", ns, ref / ns);
            printf(" %20s", cell);
        }
        printf("\n");
    }
    printf("\nactivation quantizers, K=%d, ns per row\n", K);
    static const uint32_t qtypes[] = {NK_TYPE_Q8_0, NK_TYPE_Q8_1, NK_TYPE_Q8_K};
    for (size_t k = 0; k < NK_ARRAY_LEN(qtypes); k++) {
        const nk_type_traits *t = nk_type_get(qtypes[k]);
        double ref = time_quant(t->from_float_ref, xf, act, 200);
        printf("%-6s %12.1f", t->name, ref);
        for (int isa = NK_ISA_AVX2; isa < NK_ISA_COUNT; isa++) {
            nk_from_float_fn f = nk_from_float_variant(qtypes[k], isa);
            if (!nk_isa_supported(isa) || !f) { printf(" %20s", "-"); continue; }
            double ns = time_quant(f, xf, act, 2000);
            char cell[32];
            snprintf(cell, sizeof cell, "%.1f (%.1fx)", ns, ref / ns);
            printf(" %20s", cell);
        }
        printf("\n");
    }
    free(wf); free(xf); free(w); free(act);
    return 0;
}

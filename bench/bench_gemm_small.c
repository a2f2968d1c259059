/*
 * bench_gemm_small.c: the weight kernels at decode-sized batches (1-16 tokens), on
 * weights streamed from DRAM as a decode step of several sequences reads them: ROWS
 * rows of K elements (two copies used in turn, on transparent huge pages, larger than
 * the L3), one thread, thread CPU time (which a shared machine does not inflate the
 * way it inflates wall time), best of R. For each token count it times the kernel
 * nk_matmul would pick (nk_gemm_pick) and, where the type has both, the small-batch
 * tiles (gemm_avx512.c) and the rows-in-lanes batch kernel called directly.
 *
 * Build and run (from the repository root, after building build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_gemm_small.c build/libnook_tensor.a \
 *      build/libnook_base.a -lm -lpthread -o /tmp/bench_gemm_small && /tmp/bench_gemm_small Q6_K
 * Arguments: TYPE [K=1024] [ROWS=100000] [MAXTOK=8] [R=5]
 */
#include "tensor/ops.h"
#include "tensor/ops_gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t g_rng = 88172645463325252ull;
static float rnd_f(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return ((float)(g_rng >> 40) / 16777216.0f - 0.5f) * 2.0f;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *huge_alloc(size_t bytes) {
    const size_t align = (size_t)2 << 20;
    uint8_t *p = nk_aligned_alloc(bytes + align);
    if (!p) return NULL;
    uint8_t *q = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
#ifdef MADV_HUGEPAGE
    (void)madvise(q, bytes, MADV_HUGEPAGE);
#endif
    return q;
}

/* Best thread CPU ms of one product of every row by nt tokens (copies in turn). */
static double time_kernel(const nk_gemm_kernel *gk, int k, int rows, int nt, uint8_t *const w[2], size_t wrow,
                          const float *x, float *y, void *act, int reps) {
    const size_t as = gk->act_row_size(k);
    for (int t = 0; t < nt; t++) gk->act_quant(x + (size_t)t * (size_t)k, (uint8_t *)act + (size_t)t * as, k);
    double best = 1e30;
    for (int r = 0; r < 2 * reps; r++) {
        const double t0 = cpu_ms();
        gk->gemm(k, rows, nt, w[r & 1], wrow, act, as, y, (size_t)rows);
        const double t = cpu_ms() - t0;
        if (r >= 1 && t < best) best = t;   /* the first pass faults the pages in */
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gemm_small TYPE [K] [ROWS] [MAXTOK] [R]\n");
        return 2;
    }
    nk_tensor_init();
    const int type = nk_type_from_name(argv[1]);
    const int k = argc > 2 ? atoi(argv[2]) : 1024, rows = argc > 3 ? atoi(argv[3]) : 100000;
    const int maxtok = argc > 4 ? atoi(argv[4]) : 8, reps = argc > 5 ? atoi(argv[5]) : 5;
    const nk_type_traits *tr = type >= 0 ? nk_type_get((uint32_t)type) : NULL;
    const nk_gemm_kernel *small = tr ? nk_gemm_avx512((uint32_t)type) : NULL;
    if (!tr || !tr->from_float_ref || !small || maxtok < 1 || maxtok > 64) {
        fprintf(stderr, "no AVX-512 kernel for this type on this CPU, or bad arguments\n");
        return 2;
    }
    const nk_gemm_kernel *batch = NULL;
    switch (type) {
    case NK_TYPE_Q4_K: batch = nk_gemm_rl_q4_K(); break;
    case NK_TYPE_Q6_K: batch = nk_gemm_rl_q6_K(); break;
    case NK_TYPE_Q8_0: batch = nk_gemm_rl_q8_0(); break;
    case NK_TYPE_Q5_0: batch = nk_gemm_rl_q5_0(); break;
    case NK_TYPE_Q4_0: batch = nk_gemm_rl_q4_0(); break;
    default: break;
    }
    const size_t wrow = nk_row_size((uint32_t)type, k);
    uint8_t *w[2];
    float *tmp = malloc(sizeof(float) * (size_t)k);
    for (int c = 0; c < 2; c++) {
        w[c] = huge_alloc(wrow * (size_t)rows);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < k; i++) tmp[i] = rnd_f();
            tr->from_float_ref(tmp, w[c] + (size_t)r * wrow, k);
        }
    }
    /* Q4_K, Q6_K: the same rows repacked as a model load does (nk_tensor_repack) */
    const nk_gemm_kernel *packed = type == NK_TYPE_Q6_K ? nk_gemm_r16_q6_K()
                                 : type == NK_TYPE_Q4_K ? nk_gemm_r16_q4_K() : NULL;
    uint8_t *wp[2] = { NULL, NULL };
    if (packed)
        for (int c = 0; c < 2; c++) {
            wp[c] = huge_alloc(wrow * (size_t)rows);
            if (type == NK_TYPE_Q6_K) nk_q6k_r16_pack(w[c], wp[c], rows, k);
            else nk_q4k_r16_pack(w[c], wp[c], rows, k);
        }
    float *x = nk_aligned_alloc(sizeof(float) * (size_t)k * (size_t)maxtok);
    float *y = nk_aligned_alloc(sizeof(float) * (size_t)rows * (size_t)maxtok);
    for (size_t i = 0; i < (size_t)k * (size_t)maxtok; i++) x[i] = rnd_f();
    size_t arow = small->act_row_size(k);
    if (batch && batch->act_row_size(k) > arow) arow = batch->act_row_size(k);
    if (packed && packed->act_row_size(k) > arow) arow = packed->act_row_size(k);
    void *act = nk_aligned_alloc(arow * (size_t)maxtok + 64);
    printf("%s K=%d rows=%d (%.1f MB per copy), 1 thread, thread CPU ms, best of %d\n", tr->name, k, rows,
           (double)wrow * rows / 1e6, reps);
    printf("tokens  picked  small-tiles  batch(min_tok %d)  picked GMAC/s%s\n", batch ? batch->min_tok : 0,
           packed ? "  repacked (r16)" : "");
    for (int nt = 1; nt <= maxtok; nt++) {
        const double ts = time_kernel(small, k, rows, nt, w, wrow, x, y, act, reps);
        const double tb = batch ? time_kernel(batch, k, rows, nt, w, wrow, x, y, act, reps) : 0;
        const double tr16 = packed ? time_kernel(packed, k, rows, nt, wp, wrow, x, y, act, reps) : 0;
        const nk_gemm_kernel *p = nk_gemm_pick((uint32_t)type, nt);
        const double tp = p == batch ? tb : ts;
        printf("%6d  %6.2f  %11.2f  %17.2f  %6.1f", nt, tp, ts, tb, (double)k * rows * nt / tp / 1e6);
        if (packed) printf("  %15.2f", tr16);
        printf("\n");
    }
    return 0;
}

/*
 * bench_gemm.c: nk_matmul throughput for one weight matrix, as decode (1 token, the
 * matrix streamed from DRAM) and as prompt processing (N tokens, compute-bound),
 * with the gemm kernels and with NOOK_NO_GEMM-style vec_dot (run twice, the second
 * time with NOOK_NO_GEMM=1). Best of R runs: the minimum filters out time stolen by
 * other processes on a shared machine.
 *
 * Build and run (from the repository root, after building build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_gemm.c build/libnook_tensor.a \
 *      build/libnook_base.a -lm -lpthread -o /tmp/bench_gemm && /tmp/bench_gemm Q4_K 2048 8192 2
 * Arguments: TYPE K ROWS THREADS [TOKENS=512]
 */
#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t g_rng = 88172645463325252ull;
static float rnd_f(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return ((float)(g_rng >> 40) / 16777216.0f - 0.5f) * 2.0f;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_gemm TYPE K ROWS THREADS [TOKENS]\n");
        return 2;
    }
    nk_tensor_init();
    const int type = nk_type_from_name(argv[1]);
    const int k = atoi(argv[2]), rows = atoi(argv[3]), nth = atoi(argv[4]);
    const int ntok = argc > 5 ? atoi(argv[5]) : 512;
    const nk_type_traits *tr = type >= 0 ? nk_type_get((uint32_t)type) : NULL;
    if (!tr || !tr->from_float || !nk_matmul_supported((uint32_t)type, k)) {
        fprintf(stderr, "unsupported type or size\n");
        return 2;
    }
    /* several copies of the matrix, used in turn, so decode reads DRAM, not L3 */
    enum { COPIES = 4 };
    const size_t wrow = nk_row_size((uint32_t)type, k);
    uint8_t *w[COPIES];
    float *tmp = malloc(sizeof(float) * (size_t)k);
    for (int c = 0; c < COPIES; c++) {
        w[c] = nk_aligned_alloc(wrow * (size_t)rows);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < k; i++) tmp[i] = rnd_f();
            tr->from_float_ref(tmp, w[c] + (size_t)r * wrow, k);
        }
    }
    float *x = nk_aligned_alloc(sizeof(float) * (size_t)k * (size_t)ntok);
    float *y = nk_aligned_alloc(sizeof(float) * (size_t)rows * (size_t)ntok);
    for (size_t i = 0; i < (size_t)k * (size_t)ntok; i++) x[i] = rnd_f();
    void *wbuf = nk_aligned_alloc(nk_matmul_wsize((uint32_t)type, k, ntok) + 64);
    nk_pool *pool = NULL;
    nook_error err;
    if (nk_pool_new(nth, &pool, &err)) return 1;
    nk_tensor W[COPIES];
    for (int c = 0; c < COPIES; c++)
        W[c] = (nk_tensor){ .name = "w", .type = (uint32_t)type, .ne = { k, rows, 1, 1 }, .nb1 = wrow, .data = w[c] };

    double best_tg = 1e30, best_pp = 1e30;
    for (int run = 0; run < 20; run++) {
        double t0 = nk_time_ms();
        for (int i = 0; i < 16; i++) nk_matmul(pool, &W[i % COPIES], x, (size_t)k, 1, y, (size_t)rows, wbuf);
        double t = (nk_time_ms() - t0) / 16;
        if (t < best_tg) best_tg = t;
    }
    for (int run = 0; run < 5; run++) {
        double t0 = nk_time_ms();
        nk_matmul(pool, &W[0], x, (size_t)k, ntok, y, (size_t)rows, wbuf);
        double t = nk_time_ms() - t0;
        if (t < best_pp) best_pp = t;
    }
    const double bytes = (double)wrow * rows, macs = (double)k * rows;
    printf("%s K=%d rows=%d threads=%d%s: decode %.3f ms (%.1f GB/s), %d tokens %.2f ms (%.1f GMAC/s)\n",
           tr->name, k, rows, nth, getenv("NOOK_NO_GEMM") && getenv("NOOK_NO_GEMM")[0] == '1' ? " (vec_dot)" : "", best_tg, bytes / best_tg / 1e6, ntok,
           best_pp, macs * ntok / best_pp / 1e6);
    nk_pool_free(pool);
    return 0;
}

/*
 * bench_prefill.c: prompt (prefill) attention as one layer of a model runs it: N_TOK
 * query tokens at positions DEPTH.. over an f16 cache holding DEPTH + N_TOK rows (the
 * tiled flash path, causal). Prints the best wall time and the least CPU time (all
 * threads, spinning included) of R calls (the minimum filters out time stolen by other
 * processes on a shared machine) and the attention FLOP rate of the best wall time
 * (2 * hd_k + 2 * hd_v per query, head and visible position).
 *
 * Build and run (from the repository root, after building build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_prefill.c build/libnook_tensor.a \
 *      build/libnook_base.a -lm -lpthread -o /tmp/bench_prefill && /tmp/bench_prefill 4096 16 8 128 2
 * To compare with another version of the kernel, put its attention.c and arch/x86/attn_*.c (compiled
 * with the same flags) before the library on the command line: its symbols win.
 * Arguments: N_TOK N_HEAD N_HEAD_KV HEAD_DIM THREADS [REPS=3] [DEPTH=0]
 */
#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s N_TOK N_HEAD N_HEAD_KV HEAD_DIM THREADS [REPS] [DEPTH]\n", argv[0]);
        return 2;
    }
    const int n_tok = atoi(argv[1]), nh = atoi(argv[2]), nkv = atoi(argv[3]), hd = atoi(argv[4]), nth = atoi(argv[5]);
    const int reps = argc > 6 ? atoi(argv[6]) : 3, depth = argc > 7 ? atoi(argv[7]) : 0;
    if (n_tok < 1 || nh < 1 || nkv < 1 || nh % nkv || hd < 16 || nth < 1 || reps < 1 || depth < 0) return 2;
    nk_tensor_init();
    nk_pool *pool = NULL;
    if (nth > 1 && nk_pool_new(nth, &pool, NULL)) return 1;
    const int n_ctx = depth + n_tok;
    const size_t row = (size_t)nkv * (size_t)hd, qn = (size_t)n_tok * (size_t)nh * (size_t)hd;
    uint16_t *k = malloc(2 * row * (size_t)n_ctx), *v = malloc(2 * row * (size_t)n_ctx);
    float *q = malloc(sizeof(float) * qn), *out = malloc(sizeof(float) * qn);
    void *ws = nk_aligned_alloc(nk_attn_wsize(nth, n_ctx, hd));
    if (!k || !v || !q || !out || !ws) return 1;
    uint64_t g = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < row * (size_t)n_ctx; i++) {
        g ^= g << 13, g ^= g >> 7, g ^= g << 17;
        k[i] = nk_fp32_to_fp16((float)(g >> 40) / 16777216.0f * 2.0f - 1.0f);
        v[i] = nk_fp32_to_fp16((float)((g >> 16) & 0xFFFFFF) / 16777216.0f - 0.5f);
    }
    for (size_t i = 0; i < qn; i++) {
        g ^= g << 13, g ^= g >> 7, g ^= g << 17;
        q[i] = (float)(g >> 40) / 16777216.0f * 4.0f - 2.0f;
    }
    nk_attn a = { .n_tok = n_tok, .pos0 = depth, .n_head = nh, .n_head_kv = nkv, .hd_k = hd, .hd_v = hd,
                  .n_ctx = n_ctx, .scale = 1.0f / (float)hd, .kv_type = NK_TYPE_F16, .flash = true, .q = q,
                  .k = k, .v = v, .out = out, .scratch = ws };
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = nk_time_ms(), c0 = cpu_ms();
        nk_attention(pool, &a);
        const double t = nk_time_ms() - t0, c = cpu_ms() - c0;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    /* visible positions summed over the queries: depth + 1 .. depth + n_tok */
    const double vis = (double)n_tok * depth + (double)n_tok * (n_tok + 1) / 2.0;
    const double flop = vis * nh * 4.0 * hd;
    double sum = 0;
    for (size_t i = 0; i < qn; i++) sum += out[i];
    printf("n_tok %d depth %d heads %d/%d hd %d, %d threads: %.1f ms (cpu %.1f ms), %.1f GFLOP/s [checksum %.6g]\n", n_tok,
           depth, nh, nkv, hd, nth, best, best_cpu, flop / best / 1e6, sum);
    nk_pool_free(pool);
    return 0;
}

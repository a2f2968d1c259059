/*
 * bench_attn.c: single-token (decode) attention over a long f16 cache, as one layer of
 * a model decodes it, with the cache in 2 MB pages (MADV_HUGEPAGE, as a session
 * allocates it) or 4 KiB pages. Prints the best time of R calls (the minimum filters
 * out time stolen by other processes on a shared machine), the CPU time of that call
 * and the cache bytes read per second.
 *
 * Build and run (from the repository root, after building build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_attn.c build/libnook_tensor.a \
 *      build/libnook_base.a -lm -lpthread -o /tmp/bench_attn && /tmp/bench_attn 4096 16 8 128 2
 * To compare with another version of the kernel, put its attention.c and arch/x86/attn_*.c (compiled
 * with the same flags) before the library on the command line: its symbols win.
 * Arguments: N_KV N_HEAD N_HEAD_KV HEAD_DIM THREADS [REPS=50] [SEQS=1]
 * SEQS > 1: the serving engine's decode step, SEQS sequences each with one token at
 * depth N_KV in its own cache, in one nk_attention_multi call.
 * The cache spans LAYERS (8; the environment's LAYERS overrides it: 1 keeps a small
 * cache in L2/L3, to time the arithmetic alone) copies so that it does not sit in the L3
 * cache between calls. KV=q8_0 or KV=q4_0 in the environment times a quantized cache
 * (random codes, scales 1/64). It prints how many runs were split over the cache
 * length (a lone segment of at least two pieces per thread).
 */
#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static int LAYERS = 8;

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* best wall time per layer; *cpu: the CPU time (all threads, spinning included) of that rep */
static double run(nk_pool *pool, nk_attn *a, int n_seq, uint8_t *k, uint8_t *v, size_t layer_bytes, int reps,
                  double *cpu) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = nk_time_ms(), c0 = cpu_ms();
        for (int l = 0; l < LAYERS; l++) {
            for (int s = 0; s < n_seq; s++) {
                a[s].k = k + ((size_t)l * n_seq + s) * layer_bytes;
                a[s].v = v + ((size_t)l * n_seq + s) * layer_bytes;
            }
            nk_attention_multi(pool, a, n_seq);
        }
        const double t = (nk_time_ms() - t0) / LAYERS;
        if (t < best) best = t, *cpu = (cpu_ms() - c0) / LAYERS;
    }
    return best;
}

static uint32_t KV = NK_TYPE_F16;

static uint8_t *cache(size_t n, int huge) {
    uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) exit(1);
    (void)madvise(p, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    if (KV != NK_TYPE_F16) {   /* blocks of 34 (q8_0) or 18 (q4_0) bytes: scale, codes */
        const size_t bs = KV == NK_TYPE_Q8_0 ? 34 : 18;
        const uint16_t d = nk_fp32_to_fp16(1.0f / 64);
        for (size_t b = 0; b + bs <= n; b += bs) {
            memcpy(p + b, &d, 2);
            for (size_t i = 2; i < bs; i++) p[b + i] = (uint8_t)(((b + i) * 2654435761u) >> 13);
        }
        return p;
    }
    uint16_t *h = (uint16_t *)p;
    for (size_t i = 0; i < n / 2; i++) h[i] = nk_fp32_to_fp16((float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f);
    return p;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s N_KV N_HEAD N_HEAD_KV HEAD_DIM THREADS [REPS]\n", argv[0]);
        return 2;
    }
    const int n_kv = atoi(argv[1]), nh = atoi(argv[2]), nkv = atoi(argv[3]), hd = atoi(argv[4]), nth = atoi(argv[5]);
    const int reps = argc > 6 ? atoi(argv[6]) : 50, n_seq = argc > 7 ? atoi(argv[7]) : 1;
    if (n_seq < 1 || n_seq > 64) return 2;
    if (getenv("LAYERS")) LAYERS = atoi(getenv("LAYERS"));
    if (getenv("KV")) KV = !strcmp(getenv("KV"), "q8_0") ? NK_TYPE_Q8_0 : !strcmp(getenv("KV"), "q4_0") ? NK_TYPE_Q4_0 : NK_TYPE_F16;
    nk_tensor_init();
    nk_pool *pool = NULL;
    if (nth > 1 && nk_pool_new(nth, &pool, NULL)) return 1;
    const size_t layer_bytes = (size_t)n_kv * nk_row_size(KV, (int64_t)nkv * hd);
    const size_t qn = (size_t)n_seq * (size_t)nh * (size_t)hd;
    float *q = malloc(sizeof(float) * qn), *out = malloc(sizeof(float) * qn);
    for (size_t i = 0; i < qn; i++) q[i] = (float)(i % 17) / 17.0f - 0.5f;
    void *ws = nk_aligned_alloc(nk_attn_wsize(nth, n_kv, hd));
    printf("n_kv %d, heads %d/%d, hd %d, %d threads, %d sequences: %.1f MB of K+V per layer\n", n_kv, nh, nkv, hd, nth,
           n_seq, 2.0 * (double)layer_bytes * n_seq / 1e6);
    const size_t all = layer_bytes * LAYERS * (size_t)n_seq;
    nk_attn a[64];
    for (int huge = 1; huge >= 0; huge--) {
        uint8_t *k = cache(all, huge), *v = cache(all, huge);
        for (int s = 0; s < n_seq; s++)
            a[s] = (nk_attn){ .n_tok = 1, .pos0 = n_kv - 1, .n_head = nh, .n_head_kv = nkv, .hd_k = hd, .hd_v = hd,
                              .n_ctx = n_kv, .scale = 0.088f, .kv_type = KV, .flash = true,
                              .q = q + (size_t)s * nh * hd, .out = out + (size_t)s * nh * hd, .scratch = ws };
        double cpu = 0;
        const double ms = run(pool, a, n_seq, k, v, layer_bytes, reps, &cpu);
        printf("  %-8s %8.3f ms/layer (cpu %.3f)  %6.1f GB/s\n", huge ? "2MB" : "4KiB", ms, cpu,
               2.0 * (double)layer_bytes * n_seq / ms / 1e6);
        munmap(k, all);
        munmap(v, all);
    }
    printf("  runs split over the length: %ld\n", nk_attn_dec_split_runs());
    nk_pool_free(pool);
    return 0;
}

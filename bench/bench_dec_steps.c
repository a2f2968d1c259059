/*
 * bench_dec_steps.c: where decoding at depth spends its arithmetic, step by step
 * (arch/x86/attn_dec.c, f16 cache): one thread runs dec_task's four steps per block of
 * 16 positions (dec_blk_k: the scores; dec_blk_arg: the running max and softmax
 * exponents; dec_blk_soft: expf, ms, w and the sums; dec_blk_v: the V accumulation)
 * over a cache small enough for L2/L3, with the time-stamp counter read around each;
 * prints the TSC cycles per position of each step (all KV heads), best of REPS passes
 * (the minimum filters out preemption on a shared machine). On pairs of threads the
 * producer runs dec_blk_k and the consumer the other three, so this is each role's
 * compute.
 *
 * It includes attn_dec.c itself (its steps are static). Build and run (from the
 * repository root, after building build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/bench_dec_steps.c build/libnook_tensor.a \
 *      build/libnook_base.a -lm -lpthread -o /tmp/bench_dec_steps && /tmp/bench_dec_steps 2048 16 8 128 300
 * Arguments: N_KV N_HEAD N_HEAD_KV HEAD_DIM [REPS=300]
 */
#include "tensor/arch/x86/attn_dec.c"

#include <stdio.h>
#include <stdlib.h>
#include <x86intrin.h>

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s N_KV N_HEAD N_HEAD_KV HEAD_DIM [REPS]\n", argv[0]);
        return 2;
    }
    const int N = atoi(argv[1]), nh = atoi(argv[2]), nkv = atoi(argv[3]), hd = atoi(argv[4]);
    const int reps = argc > 5 ? atoi(argv[5]) : 300;
    nk_tensor_init();
    if (N < 1 || nkv < 1 || nh % nkv || nh / nkv > TILE_RMAX || hd % 64 || hd > 256 ||
        strcmp(nk_tensor_isa(), "avx512vnni")) {
        fprintf(stderr, "needs AVX-512 VNNI, hd a multiple of 64 up to 256, at most %d query heads per KV head\n", TILE_RMAX);
        return 2;
    }
    const size_t n = (size_t)N * nkv * hd;
    uint16_t *k = nk_aligned_alloc(2 * n), *v = nk_aligned_alloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        k[i] = nk_fp32_to_fp16((float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f);
        v[i] = k[i] ^ 1;
    }
    float *q = malloc(sizeof(float) * (size_t)nh * hd), *out = malloc(sizeof(float) * (size_t)nh * hd);
    for (int i = 0; i < nh * hd; i++) q[i] = (float)(i % 17) / 17.0f - 0.5f;
    void *ws = nk_aligned_alloc(nk_attn_wsize(1, N, hd));
    const nk_attn a = { .n_tok = 1, .pos0 = N - 1, .n_head = nh, .n_head_kv = nkv, .hd_k = hd, .hd_v = hd, .n_ctx = N,
                        .scale = 0.088f, .kv_type = NK_TYPE_F16, .flash = true, .q = q, .k = k, .v = v, .out = out,
                        .scratch = ws };
    const size_t hf = dec_head_floats(hd), q_stride = dec_q_stride(&a);
    const tile_ws t = tile_carve(ws, hd);
    float *accs = (float *)((uint8_t *)ws + tile_bytes(hd));
    double best[4] = { 1e30, 1e30, 1e30, 1e30 };
    for (int r = 0; r < reps; r++) {
        dec_queries(&a, 0, nh, t.qf, q_stride);
        for (int i = 0; i < nh; i++) {
            memset(accs + i * hf, 0, sizeof(float) * (size_t)hd);
            accs[i * hf + hd] = -INFINITY;
            accs[i * hf + hd + 1] = 0.0f;
        }
        unsigned long long c[4] = { 0 };
        for (int b0 = 0; b0 < N; b0 += DEC_B) {
            const int nb = NK_MIN(DEC_B, N - b0), pf_n = dec_pf_n(&a, b0);
            const unsigned long long t0 = __rdtsc();
            dec_blk_k(&a, 0, nkv, t.qf, q_stride, b0, nb, pf_n, t.sc);
            const unsigned long long t1 = __rdtsc();
            dec_blk_arg(nh, nb, accs + hd, hf, t.sc, t.valid);
            const unsigned long long t2 = __rdtsc();
            dec_blk_soft(nh, nb, t.sc, t.valid, accs + hd + 1, hf, t.ms, t.w, t.resc);
            const unsigned long long t3 = __rdtsc();
            dec_blk_v(&a, 0, nkv, b0, nb, pf_n, t.ms, t.w, t.resc, accs, hf);
            const unsigned long long t4 = __rdtsc();
            c[0] += t1 - t0, c[1] += t2 - t1, c[2] += t3 - t2, c[3] += t4 - t3;
        }
        for (int i = 0; i < 4; i++)
            if ((double)c[i] / N < best[i]) best[i] = (double)c[i] / N;
    }
    printf("n_kv %d, heads %d/%d, hd %d: TSC cycles per position, best of %d: scores %.1f, exponents %.1f, "
           "soft %.1f, V %.1f (producer %.1f, consumer %.1f)\n",
           N, nh, nkv, hd, reps, best[0], best[1], best[2], best[3], best[0], best[1] + best[2] + best[3]);
    return 0;
}

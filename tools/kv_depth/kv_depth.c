/*
 * kv_depth.c: decode speed at depth with several KV cache types in one process, the
 * types' timed steps interleaved, so that a shared machine's load falls on all of them
 * alike (separate `nook bench -d` runs of a 16k-token depth are ~15 minutes apart here).
 * One session per type, each filled once (untimed) with the same DEPTH pseudo-random
 * tokens after BOS; then ROUNDS rounds, each decoding STEPS greedy tokens from the
 * depth with every type in turn (the cache cut back to DEPTH before each). Prints per
 * round and type the wall t/s and the process CPU seconds per token, and each type's
 * median wall t/s over the rounds with its ratio to the first type's.
 *
 * Built with the engine (tools/kv_depth: build/kv_depth); run:
 *   build/kv_depth MODEL.gguf DEPTH [STEPS=32] [ROUNDS=3] [THREADS=2] [TYPES=f16,q8_0]
 */
#include "nook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) b = x[i] > x[b] ? i : b;
    return b;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf DEPTH [STEPS=32] [ROUNDS=3] [THREADS=2] [TYPES=f16,q8_0]\n", argv[0]);
        return 2;
    }
    const int depth = atoi(argv[2]), steps = argc > 3 ? atoi(argv[3]) : 32, rounds = argc > 4 ? atoi(argv[4]) : 3;
    const int nth = argc > 5 ? atoi(argv[5]) : 2;
    char types[128];
    snprintf(types, sizeof types, "%s", argc > 6 ? argv[6] : "f16,q8_0");
    enum { MAXT = 4, MAXR = 64 };
    if (depth < 1 || steps < 1 || rounds < 1 || rounds > MAXR || nth < 1) return 2;
    const char *names[MAXT];
    nook_kv_type kv[MAXT];
    int nt = 0;
    for (char *tok = strtok(types, ","); tok && nt < MAXT; tok = strtok(NULL, ",")) {
        names[nt] = tok;
        if (!strcmp(tok, "f16")) kv[nt] = NOOK_KV_F16;
        else if (!strcmp(tok, "q8_0")) kv[nt] = NOOK_KV_Q8_0;
        else if (!strcmp(tok, "q4_0")) kv[nt] = NOOK_KV_Q4_0;
        else if (!strcmp(tok, "f32")) kv[nt] = NOOK_KV_F32;
        else return fprintf(stderr, "unknown cache type %s\n", tok), 2;
        nt++;
    }
    nook_error err = { 0 };
    nook_model *m = NULL;
    nook_model_params mp = nook_model_default_params();
    if (nook_model_load(argv[1], &mp, &m, &err) != NOOK_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    const int n_vocab = nook_model_n_vocab(m);
    nook_token *toks = malloc(sizeof(nook_token) * (size_t)depth);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    toks[0] = nook_token_bos(m);
    for (int i = 1; i < depth; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        toks[i] = (nook_token)(rng % (uint64_t)n_vocab);
    }
    nook_session *s[MAXT];
    for (int k = 0; k < nt; k++) {
        nook_session_params sp = nook_session_default_params();
        sp.n_ctx = depth + steps + 16;
        sp.n_threads = nth;
        sp.kv_type = kv[k];
        if (nook_session_new(m, &sp, &s[k], &err) != NOOK_OK) return fprintf(stderr, "%s: %s\n", names[k], err.msg), 1;
        const double t0 = now(CLOCK_MONOTONIC);
        if (nook_session_decode(s[k], toks, depth, NULL, &err) != NOOK_OK) return fprintf(stderr, "%s: %s\n", names[k], err.msg), 1;
        fprintf(stderr, "%s: filled %d tokens in %.1f s\n", names[k], depth, now(CLOCK_MONOTONIC) - t0);
    }
    printf("%s, depth %d, %d threads, %d greedy steps per round and type\n", argv[1], depth, nth, steps);
    double tps[MAXT][MAXR];
    for (int r = 0; r < rounds; r++) {
        printf("round %d:", r + 1);
        for (int k = 0; k < nt; k++) {
            nook_session_truncate(s[k], depth);
            nook_token t = toks[depth - 1];
            const double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            for (int i = 0; i < steps; i++) {
                if (nook_session_decode(s[k], &t, 1, NULL, &err) != NOOK_OK)
                    return fprintf(stderr, "%s: %s\n", names[k], err.msg), 1;
                t = argmax(nook_session_logits(s[k]), n_vocab);
            }
            const double w = now(CLOCK_MONOTONIC) - w0, c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
            tps[k][r] = steps / w;
            printf("  %s %.2f t/s (cpu %.1f ms/token)", names[k], tps[k][r], 1e3 * c / steps);
        }
        printf("\n");
        fflush(stdout);
    }
    double med[MAXT];
    for (int k = 0; k < nt; k++) {
        qsort(tps[k], (size_t)rounds, sizeof(double), cmp_d);
        med[k] = rounds % 2 ? tps[k][rounds / 2] : (tps[k][rounds / 2 - 1] + tps[k][rounds / 2]) / 2;
    }
    printf("median:");
    for (int k = 0; k < nt; k++) printf("  %s %.2f t/s (%.2fx %s)", names[k], med[k], med[k] / med[0], names[0]);
    printf("\n");
    for (int k = 0; k < nt; k++) nook_session_free(s[k]);
    nook_model_free(m);
    free(toks);
    return 0;
}

/*
 * kv_accuracy.c: what a quantized KV cache costs in accuracy. A text is decoded once
 * with each cache type (f16, q8_0, q4_0, and f32 as the closest to exact); at every
 * position the log-probability of the token that follows (what perplexity sums) is
 * compared with the f16 cache's: max and mean |delta log p|, and each type's
 * perplexity. Also the max |delta log p| over the whole vocabulary at every position
 * (tokens with log p > -20 under f16).
 *
 * Built with the engine (tools/kv_accuracy: build/kv_accuracy); run:
 *   build/kv_accuracy MODEL.gguf TEXT_FILE [MAX_TOKENS=2048] [THREADS=2]
 */
#include "nook.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE 128

/* log-softmax of logits[n] into lp */
static void log_softmax(const float *logits, int n, double *lp) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    const double ls = log(sum);
    for (int i = 0; i < n; i++) lp[i] = (double)logits[i] - mx - ls;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf TEXT_FILE [MAX_TOKENS] [THREADS]\n", argv[0]);
        return 2;
    }
    const int max_tok = argc > 3 ? atoi(argv[3]) : 2048, nth = argc > 4 ? atoi(argv[4]) : 2;
    FILE *f = fopen(argv[2], "rb");
    if (!f) return perror(argv[2]), 1;
    static char text[1 << 22];
    const size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    nook_error err = { 0 };
    nook_model *m = NULL;
    nook_model_params mp = nook_model_default_params();
    if (nook_model_load(argv[1], &mp, &m, &err) != NOOK_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    const int n_vocab = nook_model_n_vocab(m);
    nook_token *toks = malloc(sizeof(nook_token) * (len + 16));
    size_t n_tok = 0;
    if (nook_tokenize(m, text, len, true, false, toks, len + 16, &n_tok, &err) != NOOK_OK)
        return fprintf(stderr, "%s\n", err.msg), 1;
    const int n = (int)n_tok < max_tok ? (int)n_tok : max_tok;
    static const nook_kv_type kvs[] = { NOOK_KV_F16, NOOK_KV_Q8_0, NOOK_KV_Q4_0, NOOK_KV_F32 };
    static const char *names[] = { "f16", "q8_0", "q4_0", "f32" };
    enum { NT = 4 };
    /* the next token's log p per type and position; the full distributions of f16 are
     * compared piece by piece, so every type decodes the same pieces side by side */
    double *next = calloc((size_t)NT * (size_t)n, sizeof(double));
    double vmax[NT] = { 0 };
    nook_session *s[NT];
    for (int k = 0; k < NT; k++) {
        nook_session_params sp = nook_session_default_params();
        sp.n_ctx = n + 16;
        sp.n_batch = PIECE;
        sp.n_threads = nth;
        sp.kv_type = kvs[k];
        if (nook_session_new(m, &sp, &s[k], &err) != NOOK_OK) return fprintf(stderr, "%s: %s\n", names[k], err.msg), 1;
    }
    float *logits = malloc(sizeof(float) * (size_t)PIECE * (size_t)n_vocab);
    double *lp0 = malloc(sizeof(double) * (size_t)PIECE * (size_t)n_vocab), *lp = malloc(sizeof(double) * (size_t)n_vocab);
    for (int p = 0; p < n - 1; p += PIECE) {
        const int c = p + PIECE < n - 1 ? PIECE : n - 1 - p;
        for (int k = 0; k < NT; k++) {
            if (nook_session_decode(s[k], toks + p, c, logits, &err) != NOOK_OK)
                return fprintf(stderr, "%s: %s\n", names[k], err.msg), 1;
            for (int i = 0; i < c; i++) {
                double *dst = k == 0 ? lp0 + (size_t)i * (size_t)n_vocab : lp;
                log_softmax(logits + (size_t)i * (size_t)n_vocab, n_vocab, dst);
                next[(size_t)k * (size_t)n + (size_t)(p + i)] = dst[toks[p + i + 1]];
                if (k == 0) continue;
                const double *ref = lp0 + (size_t)i * (size_t)n_vocab;
                for (int v = 0; v < n_vocab; v++)
                    if (ref[v] > -20 && fabs(lp[v] - ref[v]) > vmax[k]) vmax[k] = fabs(lp[v] - ref[v]);
            }
        }
        fprintf(stderr, "\r%d/%d", p + c, n - 1);
    }
    fprintf(stderr, "\n");
    printf("%s, %d tokens of %s, %d threads\n", argv[1], n, argv[2], nth);
    printf("%-6s %-12s %-22s %-22s %s\n", "cache", "perplexity", "max |dlogp| next tok", "mean |dlogp| next tok",
           "max |dlogp| vocab (lp>-20)");
    for (int k = 0; k < NT; k++) {
        double nll = 0, mx = 0, mean = 0;
        for (int i = 0; i < n - 1; i++) {
            const double x = next[(size_t)k * (size_t)n + (size_t)i], d = fabs(x - next[i]);
            nll -= x;
            mx = d > mx ? d : mx;
            mean += d;
        }
        printf("%-6s %-12.4f %-22.3g %-22.3g %.3g\n", names[k], exp(nll / (n - 1)), mx, mean / (n - 1), vmax[k]);
    }
    for (int k = 0; k < NT; k++) nook_session_free(s[k]);
    nook_model_free(m);
    free(toks), free(next), free(logits), free(lp0), free(lp);
    return 0;
}

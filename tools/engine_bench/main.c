/*
 * engine_bench: measurements of issue 9 that are not tests (they take minutes).
 *
 *   engine_bench cancel MODEL [--threads N] [--prompt N] [--runs N] [--max-ms MS]
 *       Cancel latency: a prompt of N random tokens (default 256, one pass) is decoded
 *       while another thread raises a flag at a random moment in [0, min(
 *       0.9 x decode time, MS)]; the session's abort callback reads the flag. Reports
 *       the time from raising the flag to nook_session_decode returning (p50, p99, max
 *       over --runs cancels, default 50; a decode that finished first is retried), the
 *       part of it until the callback first saw the flag, and checks each cancelled
 *       decode returned NOOK_EABORTED with the cache holding whole passes only.
 *   engine_bench prefix MODEL [--threads N] [--turn1 N] [--turn2 N]
 *       Prefix reuse: time to first token (decode + greedy pick) of a first turn of
 *       --turn1 tokens (default 2000) into an empty cache, then of the next turn (the
 *       same tokens, a 16-token reply, then --turn2 new tokens, default 32) in the
 *       same session, where nook_session_prefix_match finds the cached prefix and only
 *       the rest is decoded. Prints both and the ratio.
 *   engine_bench embed MODEL --texts FILE [--threads N] [--reps N] [--json]
 *       Embedding throughput: the lines of FILE (empty ones skipped) embedded by one
 *       nook_session_embed call, as `nook embed` does (a session with embeddings on,
 *       up to 16 texts per pass, the model's pooling or mean), after one untimed
 *       warm-up; the best of --reps (default 3) calls, as texts per second (model
 *       load and session creation not included, like llamacpp_ext.mjs embed).
 *
 * A developer tool: it prints; the library does not.
 */
#include "nook.h"
#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int arg_int(int argc, char **argv, const char *name, int def) {
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return atoi(argv[i + 1]);
    return def;
}

static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return g_rng;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct canceller {
    atomic_bool flag;
    double delay_ms, raised_at, seen_at;
} canceller;

/* Notes when the decode first saw the flag (detection vs unwinding, reported apart). */
static bool abort_cb(void *ud) {
    canceller *c = ud;
    const bool up = atomic_load_explicit(&c->flag, memory_order_acquire);
    if (up && c->seen_at == 0) c->seen_at = nk_time_ms();
    return up;
}

static void *cancel_main(void *arg) {
    canceller *c = arg;
    const double t0 = nk_time_ms();
    while (nk_time_ms() - t0 < c->delay_ms) {
        struct timespec ts = { 0, 200 * 1000 };
        nanosleep(&ts, NULL);
    }
    c->raised_at = nk_time_ms();
    atomic_store(&c->flag, true);
    return NULL;
}

static nook_session *mk_session(const nook_model *m, int threads, int n_ctx, int n_batch) {
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = threads;
    sp.n_ctx = n_ctx;
    sp.n_batch = n_batch;
    nook_session *s = NULL;
    nook_error err;
    if (nook_session_new(m, &sp, &s, &err)) {
        fprintf(stderr, "session: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static int do_cancel(const nook_model *m, int argc, char **argv) {
    const int threads = arg_int(argc, argv, "--threads", 2), n = arg_int(argc, argv, "--prompt", 256);
    const int runs = arg_int(argc, argv, "--runs", 50), max_ms = arg_int(argc, argv, "--max-ms", 4000);
    const int n_vocab = nook_model_n_vocab(m);
    nook_token *toks = malloc(sizeof *toks * (size_t)n);
    for (int i = 0; i < n; i++) toks[i] = (nook_token)(rnd() % (uint64_t)n_vocab);
    nook_session *s = mk_session(m, threads, n + 16, n);
    nook_error err;
    /* the first decode faults the weights in; the second is the time a cancel can land in */
    double full = 0;
    for (int w = 0; w < 2; w++) {
        nook_session_truncate(s, 0);
        const double t0 = nk_time_ms();
        if (nook_session_decode(s, toks, n, NULL, &err)) return fprintf(stderr, "decode: %s\n", err.msg), 1;
        full = nk_time_ms() - t0;
    }
    printf("full decode of %d tokens: %.0f ms (%d threads)\n", n, full, threads);
    double *lat = malloc(sizeof *lat * (size_t)runs), *det = malloc(sizeof *det * (size_t)runs);
    int k = 0, bad = 0, tries = 0;
    /* runs counts cancels: a decode that finished before its flag went up is retried
     * (at most 3 x runs decodes in all) */
    for (; k < runs && tries < 3 * runs; tries++) {
        canceller c = { .delay_ms = (double)(rnd() % 10000) / 10000.0 * NK_MIN(0.9 * full, (double)max_ms) };
        atomic_init(&c.flag, false);
        nook_session_truncate(s, 0);
        nook_session_set_abort(s, abort_cb, &c);
        pthread_t th;
        pthread_create(&th, NULL, cancel_main, &c);
        const nook_status st = nook_session_decode(s, toks, n, NULL, &err);
        const double end = nk_time_ms();
        pthread_join(th, NULL);
        nook_session_set_abort(s, NULL, NULL);
        if (st == NOOK_EABORTED) {
            det[k] = c.seen_at - c.raised_at;
            lat[k++] = end - c.raised_at;
            if (nook_session_n_past(s) % n != 0) bad++;
        } else if (st != NOOK_OK) {
            return fprintf(stderr, "decode: %s\n", err.msg), 1;
        }
    }
    qsort(lat, (size_t)k, sizeof *lat, cmp_d);
    qsort(det, (size_t)k, sizeof *det, cmp_d);
    if (k) {
        printf("cancel latency over %d cancels (of %d decodes): p50 %.2f ms, p99 %.2f ms, max %.2f ms; cache after "
               "cancel not whole passes: %d\n",
               k, tries, lat[k / 2], lat[NK_MIN(k - 1, (int)(0.99 * k))], lat[k - 1], bad);
        printf("  of which until the abort callback first saw the flag: p50 %.2f ms, p99 %.2f ms\n", det[k / 2],
               det[NK_MIN(k - 1, (int)(0.99 * k))]);
    }
    nook_session_free(s);
    free(lat);
    free(det);
    free(toks);
    return bad ? 1 : 0;
}

static nook_token argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int do_prefix(const nook_model *m, int argc, char **argv) {
    const int threads = arg_int(argc, argv, "--threads", 2);
    const int n1 = arg_int(argc, argv, "--turn1", 2000), n2 = arg_int(argc, argv, "--turn2", 32), reply = 16;
    const int n_vocab = nook_model_n_vocab(m), total = n1 + reply + n2;
    nook_token *conv = malloc(sizeof *conv * (size_t)total);
    for (int i = 0; i < total; i++) conv[i] = (nook_token)(rnd() % (uint64_t)n_vocab);
    nook_session *s = mk_session(m, threads, total + 64, 512);
    nook_error err;
    /* warm-up (pages in the weights), then the first turn into an empty cache */
    if (nook_session_decode(s, conv, 64, NULL, &err)) return fprintf(stderr, "decode: %s\n", err.msg), 1;
    nook_session_truncate(s, 0);
    double t0 = nk_time_ms();
    if (nook_session_decode(s, conv, n1, NULL, &err)) return fprintf(stderr, "decode: %s\n", err.msg), 1;
    volatile nook_token first = argmax(nook_session_logits(s), n_vocab);
    const double ttft1 = nk_time_ms() - t0;
    /* the reply is generated (decoded one token at a time) */
    for (int i = 0; i < reply; i++)
        if (nook_session_decode(s, &conv[n1 + i], 1, NULL, &err)) return fprintf(stderr, "decode: %s\n", err.msg), 1;
    /* next turn: the whole conversation arrives again; reuse the cached prefix */
    t0 = nk_time_ms();
    nook_seq best = -1;
    int keep = nook_session_prefix_match(s, conv, total, &best);
    if (keep >= total) keep = total - 1;
    nook_session_seq_rm(s, best < 0 ? 0 : best, keep, -1);
    if (nook_session_decode(s, conv + keep, total - keep, NULL, &err)) return fprintf(stderr, "decode: %s\n", err.msg), 1;
    first = argmax(nook_session_logits(s), n_vocab);
    (void)first;
    const double ttft2 = nk_time_ms() - t0;
    printf("first turn: %d tokens, ttft %.1f ms; next turn: %d tokens of which %d cached, ttft %.1f ms (%.1f%% of the "
           "first)\n",
           n1, ttft1, total, keep, ttft2, 100.0 * ttft2 / ttft1);
    nook_session_free(s);
    free(conv);
    return 0;
}

static const char *arg_str(int argc, char **argv, const char *name) {
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return NULL;
}

static int do_embed(const nook_model *m, int argc, char **argv) {
    const int threads = arg_int(argc, argv, "--threads", 2), reps = arg_int(argc, argv, "--reps", 3);
    const char *path = arg_str(argc, argv, "--texts");
    bool json = false;
    for (int i = 3; i < argc; i++) json |= !strcmp(argv[i], "--json");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return fprintf(stderr, "embed: --texts FILE (one text per line) is required and readable\n"), 2;
    static char buf[1 << 20];
    const size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char **texts = malloc(sizeof *texts * (len + 1));
    int n = 0;
    for (char *p = buf; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (*p) texts[n++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    if (n == 0) return fprintf(stderr, "embed: no texts in %s\n", path), 2;
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = threads;
    sp.embeddings = true;
    sp.n_seq_max = NK_MIN(n, 16);
    sp.n_ctx = 512;
    sp.n_batch = 512;
    nook_session *s = NULL;
    nook_error err;
    if (nook_session_new(m, &sp, &s, &err)) return fprintf(stderr, "session: %s\n", err.msg), 1;
    const int n_embd = nook_model_n_embd(m);
    float *out = malloc(sizeof *out * (size_t)n * (size_t)n_embd);
    int n_tok = 0;
    double best = 1e300;
    for (int r = 0; r <= reps; r++) {   /* r == 0: warm-up */
        const double t0 = nk_time_ms();
        if (nook_session_embed(s, texts, n, false, true, out, &n_tok, &err))
            return fprintf(stderr, "embed: %s\n", err.msg), 1;
        const double t = nk_time_ms() - t0;
        if (r > 0 && t < best) best = t;
    }
    if (json)
        printf("{\"runtime\":\"nook\",\"texts\":%d,\"tokens\":%d,\"threads\":%d,\"best_ms\":%.3f,\"texts_per_s\":%.3f}\n",
               n, n_tok, threads, best, n * 1e3 / best);
    else
        printf("embedded %d texts (%d tokens) in %.1f ms (best of %d, %d threads): %.2f texts/s\n", n, n_tok, best, reps,
               threads, n * 1e3 / best);
    nook_session_free(s);
    free(out);
    free(texts);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "cancel") && strcmp(argv[1], "prefix") && strcmp(argv[1], "embed"))) {
        fprintf(stderr, "usage: engine_bench cancel|prefix|embed MODEL [options] (see the source's header)\n");
        return 2;
    }
    nook_model *m = NULL;
    nook_error err;
    if (nook_model_load(argv[2], NULL, &m, &err)) return fprintf(stderr, "load: %s\n", err.msg), 1;
    const int rc = !strcmp(argv[1], "cancel") ? do_cancel(m, argc, argv)
                 : !strcmp(argv[1], "prefix") ? do_prefix(m, argc, argv) : do_embed(m, argc, argv);
    nook_model_free(m);
    return rc;
}

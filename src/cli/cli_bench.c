/*
 * cli_bench.c: `nook bench MODEL`: prompt-processing and generation speed, measured
 * the way llama-bench (and the reference tool's `bench` verb) measures them, so the
 * two can be run side by side on the same file (bench/vs-llamacpp.sh):
 *
 *   ppN  one batch of N pseudo-random tokens into an empty KV cache (one decode call)
 *   tgN  N single-token decodes from an empty cache, the first fed BOS, each followed
 *        by a greedy pick over the logits (sampling is part of generation's cost)
 *
 *   -d D1,D2,...: llama-bench's -d: each figure measured with D tokens already in the
 *        cache (BOS and pseudo-random tokens decoded untimed once per depth; before
 *        each timed run the cache is cut back to D). The context holds D + pp + tg.
 *        One line (one JSON object with --json, with a "depth" key) per depth.
 *        The fill is timed too (fill_ms, fill_tps: prompt processing of D tokens into
 *        an empty cache in forward passes of --fill-batch tokens, default 2048 as
 *        llama-bench's n_batch), so one fill gives issue 17's two figures at a depth:
 *        bench/depth-vs-llamacpp.sh compares them with llama.cpp's fill and decode.
 *
 *   --parallel P1,P2,...: for each level P, P sequences decoded together: each step
 *        is one batch of P tokens (one per sequence, each followed by its greedy
 *        pick), tgN steps from BOS; tg_tps is the summed rate (P * N tokens over the
 *        time), as llama.cpp's batched-bench reports S_TG. One line (one JSON object
 *        with --json) per level.
 *
 * One untimed warm-up of each first (it also pages in the mapped weights), then -r
 * repetitions; medians are reported. load_ms is nook_model_load (warm page cache
 * assumed); ttft_ms is time to first token for a cold start: load + session + a
 * 10-token prompt + the first greedy pick (measured once, with the first depth), while
 * the weights are still being re-laid after the load; ready_ms is when that work was
 * done (nook_model_wait_ready), and every timed run starts after it.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_opts {
    int pp, tg, threads, reps, ctx, fill_batch;
    bool json, no_mmap;
    const char *kv_type;
    const char *parallel;
    const char *depths;
} bench_opts;

static bench_opts o;

static const cli_opt k_opts[] = {
    { "prompt",  'p', OPT_INT,  &o.pp, 0, 1 << 20, "N", "prompt tokens, one batch (0: skip) [512]" },
    { "gen",     'n', OPT_INT,  &o.tg, 0, 1 << 20, "N", "tokens generated one at a time (0: skip) [128]" },
    { "threads", 't', OPT_INT,  &o.threads, 0, 1024, "N", "worker threads (0: all cores) [0]" },
    { "reps",    'r', OPT_INT,  &o.reps, 1, 1000, "N", "timed repetitions after one warm-up [3]" },
    { "ctx",     'c', OPT_INT,  &o.ctx, 0, 1 << 24, "N", "context length (0: max(1024, pp + gen + 16)) [0]" },
    { "json",    0,   OPT_FLAG, &o.json, 0, 0, NULL, "print one JSON object on stdout" },
    { "no-mmap", 0,   OPT_FLAG, &o.no_mmap, 0, 0, NULL, "copy the model into private memory instead of mapping it" },
    { "kv-cache-type", 0, OPT_STR, &o.kv_type, 0, 0, "T", "KV cache type: f16, q8_0, q4_0 or f32 [f16]" },
    { "parallel", 0, OPT_STR, &o.parallel, 0, 0, "LIST", "sequences decoded together, e.g. 1,2,4,8 (tg only)" },
    { "depth",   'd', OPT_STR, &o.depths, 0, 0, "LIST", "tokens already in the cache, e.g. 0,4096,16384 [0]" },
    { "fill-batch", 0, OPT_INT, &o.fill_batch, 1, 1 << 20, "N", "tokens per forward pass of the (timed) depth fill [2048]" },
};

static const cli_verb_info k_info = {
    "bench", "MODEL", "Measure prompt processing (pp) and generation (tg) speed, llama-bench style",
    k_opts, (int)NK_ARRAY_LEN(k_opts),
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The greedy pick: the first index of the largest logit (as the scalar loop
 * `if (x[i] > x[best]) best = i` finds it). The scalar loop's compare-and-branch
 * chain took ~1 ms per sequence and step on a 151,936-token vocabulary, 10% of a
 * --parallel 8 run's CPU time on one thread (perf record), time the engine's worker
 * threads sat idle: so the maximum is taken 16 lanes at a time per 256-logit block
 * (a loop the compiler vectorizes), and only the first block holding it is scanned. */
static nook_token argmax(const float *x, int n) {
    enum { LANES = 16, BLK = 256 };
    int best_blk = -1;
    float best = 0;
    int i = 0;
    for (; i + BLK <= n; i += BLK) {
        float m[LANES];
        for (int l = 0; l < LANES; l++) m[l] = x[i + l];
        for (int j = LANES; j < BLK; j += LANES)
            for (int l = 0; l < LANES; l++) m[l] = x[i + j + l] > m[l] ? x[i + j + l] : m[l];
        float bm = m[0];
        for (int l = 1; l < LANES; l++) bm = m[l] > bm ? m[l] : bm;
        if (best_blk < 0 || bm > best) best = bm, best_blk = i;
    }
    int b = 0;
    if (best_blk >= 0) {
        for (int k = best_blk; k < best_blk + BLK; k++)
            if (x[k] == best) {
                b = k;
                break;
            }
        if (x[b] != best) b = best_blk;   /* only NaNs in the block: keep a valid index */
    }
    for (; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* The reference tool's LCG, so both runtimes see the same kind of token stream. */
static uint64_t g_seed = 12345;
static nook_token rand_token(int n_vocab) {
    g_seed = (g_seed * 1103515245u + 12345u) % 2147483648u;
    return (nook_token)((double)g_seed / 2147483648.0 * n_vocab);
}

static int fail_decode(const nook_error *err) {
    return cli_fail(CLI_EFAIL, "decode failed: %s", err->msg);
}

/* ms for one prompt batch of o.pp tokens into a cache holding depth tokens; < 0 on error */
static double run_pp(nook_session *s, int depth, nook_token *toks, int n_vocab, nook_error *err) {
    for (int i = 0; i < o.pp; i++) toks[i] = rand_token(n_vocab);
    nook_session_truncate(s, depth);
    const double t0 = now_ms();
    if (nook_session_decode(s, toks, o.pp, NULL, err) != NOOK_OK) return -1;
    return now_ms() - t0;
}

/* ms for o.tg greedy single-token decodes after depth cached tokens (from BOS in an
 * empty cache, from a random token after a filled one); < 0 on error */
static double run_tg(nook_session *s, int depth, nook_token bos, int n_vocab, nook_error *err) {
    nook_session_truncate(s, depth);
    nook_token t = depth > 0 ? rand_token(n_vocab) : bos;
    const double t0 = now_ms();
    for (int i = 0; i < o.tg; i++) {
        if (nook_session_decode(s, &t, 1, NULL, err) != NOOK_OK) return -1;
        t = argmax(nook_session_logits(s), n_vocab);
    }
    return now_ms() - t0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ms for o.tg steps of np sequences decoded together (one batch of np entries per
 * step, greedy pick per sequence), from BOS in every sequence; < 0 on error */
static double run_tg_par(nook_session *s, nook_batch *b, int np, nook_token bos, int n_vocab, nook_token *cur,
                         nook_error *err) {
    nook_session_seq_clear(s, -1);
    for (int q = 0; q < np; q++) cur[q] = bos;
    const double t0 = now_ms();
    for (int i = 0; i < o.tg; i++) {
        nook_batch_clear(b);
        for (int q = 0; q < np; q++) nook_batch_add(b, cur[q], i, q, true);
        if (nook_session_decode_batch(s, b, err) != NOOK_OK) return -1;
        for (int q = 0; q < np; q++) cur[q] = argmax(nook_session_logits_ith(s, q), n_vocab);
    }
    return now_ms() - t0;
}

/* --parallel: one level after another on the same model */
static int bench_parallel(const char *path, nook_model *m, const nook_session_params *base) {
    nook_model_wait_ready(m);   /* steady speed: the weights' re-layout done */
    const int n_vocab = nook_model_n_vocab(m);
    const nook_token bos = nook_token_bos(m) >= 0 ? nook_token_bos(m) : 0;
    const char *p = o.parallel;
    while (*p) {
        char *end;
        const long np = strtol(p, &end, 10);
        if (end == p || np < 1 || np > 256 || (*end && *end != ','))
            return cli_fail(CLI_EUSAGE, "--parallel wants a list of counts in [1, 256] like 1,2,4,8 (got '%s')",
                            o.parallel);
        p = *end ? end + 1 : end;
        nook_session_params sp = *base;
        sp.n_seq_max = (int)np;
        sp.n_ctx = o.tg + 16;
        sp.n_batch = (int)np;
        nook_session *s = NULL;
        nook_error err = { 0 };
        nook_batch b = { 0 };
        nook_token cur[256];
        double ms[1000];
        int rc = CLI_EFAIL;
        if (nook_session_new(m, &sp, &s, &err) != NOOK_OK || nook_batch_init(&b, (int)np, &err) != NOOK_OK) {
            cli_fail(CLI_EFAIL, "cannot create a session of %ld sequences: %s", np, err.msg);
            goto next;
        }
        if (run_tg_par(s, &b, (int)np, bos, n_vocab, cur, &err) < 0) {   /* warm-up */
            fail_decode(&err);
            goto next;
        }
        for (int r = 0; r < o.reps; r++) {
            const double t = run_tg_par(s, &b, (int)np, bos, n_vocab, cur, &err);
            if (t < 0) {
                fail_decode(&err);
                goto next;
            }
            ms[r] = (double)np * o.tg * 1e3 / t;
            if (!o.json) fprintf(stderr, "parallel %ld rep %d/%d: %.2f t/s\n", np, r + 1, o.reps, ms[r]);
        }
        const double tps = median(ms, o.reps);
        if (o.json)
            printf("{\"model\":\"%s\",\"threads\":%d,\"parallel\":%ld,\"tg\":%d,\"reps\":%d,\"tg_tps\":%.3f,"
                   "\"tg_tps_per_seq\":%.3f}\n",
                   base_name(path), o.threads ? o.threads : nook_max_threads(), np, o.tg, o.reps, tps, tps / (double)np);
        else
            printf("%s, %d threads: parallel %ld, tg%d: %.2f t/s summed (%.2f per sequence)\n", base_name(path),
                   o.threads ? o.threads : nook_max_threads(), np, o.tg, tps, tps / (double)np);
        fflush(stdout);
        rc = CLI_OK;
    next:
        nook_batch_free(&b);
        nook_session_free(s);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

/* One depth: a session sized for depth + pp + tg, the cache filled once (untimed),
 * then the warm-up and the timed repetitions; prints the line or JSON object. The cold
 * start figure (ttft_ms: load + session + a 10-token prompt + the first pick) is
 * measured with the first depth's session. */
static int bench_depth(const char *path, nook_model *m, const nook_session_params *base, int depth,
                       double load_ms, double t_load, double *ttft) {
    const int n_vocab = nook_model_n_vocab(m);
    nook_session_params sp = *base;
    sp.n_ctx = o.ctx ? o.ctx : NK_MAX(1024, depth + o.pp + o.tg + 16);
    /* passes of up to pp tokens for the pp runs, of fill_batch for the depth's fill */
    sp.n_batch = NK_MAX(o.pp, depth > 0 ? NK_MIN(o.fill_batch, depth) : 16);
    if (sp.n_ctx < depth + NK_MAX(o.pp + o.tg, 16))
        return cli_fail(CLI_EUSAGE, "--ctx %d is smaller than the %d tokens the runs need", sp.n_ctx,
                        depth + NK_MAX(o.pp + o.tg, 16));
    nook_session *s = NULL;
    nook_error err = { 0 };
    int rc = CLI_EFAIL;
    const size_t n_toks = (size_t)NK_MAX(NK_MAX(o.pp, 10), depth);
    nook_token *toks = nk_alloc_array(n_toks, sizeof *toks);
    double *pp_ms = nk_alloc_array((size_t)o.reps, sizeof *pp_ms);
    double *tg_ms = nk_alloc_array((size_t)o.reps, sizeof *tg_ms);
    if (!toks || !pp_ms || !tg_ms) {
        cli_fail(CLI_EFAIL, "out of memory");
        goto done;
    }
    const double t_sess = now_ms();
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        cli_fail(CLI_EFAIL, "cannot create a session: %s", err.msg);
        goto done;
    }
    const nook_token bos = nook_token_bos(m) >= 0 ? nook_token_bos(m) : 0;
    const double sess_ms = now_ms() - t_sess;
    toks[0] = bos;
    for (int i = 1; i < 10; i++) toks[i] = rand_token(n_vocab);
    if (nook_session_decode(s, toks, 10, NULL, &err) != NOOK_OK) {
        fail_decode(&err);
        goto done;
    }
    volatile nook_token first = argmax(nook_session_logits(s), n_vocab);
    (void)first;
    if (*ttft < 0) *ttft = now_ms() - t_load;
    const double ttft_ms = *ttft;
    /* the weights' re-layout runs on after the load (nook_model_wait_ready): timed runs
     * start once it is done; ready_ms is when it was (measured once, from the load) */
    nook_model_wait_ready(m);
    static double ready = -1;
    if (ready < 0) ready = now_ms() - t_load;
    const double ready_ms = ready;

    /* the depth: BOS and random tokens, decoded once; each run cuts the cache back to it */
    double fill_ms = 0;
    if (depth > 0) {
        nook_session_truncate(s, 0);
        toks[0] = bos;
        for (int i = 1; i < depth; i++) toks[i] = rand_token(n_vocab);
        const double t_fill = now_ms();
        if (nook_session_decode(s, toks, depth, NULL, &err) != NOOK_OK) {
            fail_decode(&err);
            goto done;
        }
        fill_ms = now_ms() - t_fill;
        if (!o.json)
            fprintf(stderr, "depth %d: filled in %.1f s (%.2f t/s, passes of %d)\n", depth, fill_ms / 1e3,
                    depth * 1e3 / fill_ms, sp.n_batch);
    }

    /* warm-up, then the timed repetitions */
    if ((o.pp && run_pp(s, depth, toks, n_vocab, &err) < 0) || (o.tg && run_tg(s, depth, bos, n_vocab, &err) < 0)) {
        fail_decode(&err);
        goto done;
    }
    for (int r = 0; r < o.reps; r++) {
        pp_ms[r] = o.pp ? run_pp(s, depth, toks, n_vocab, &err) : 0;
        tg_ms[r] = o.tg ? run_tg(s, depth, bos, n_vocab, &err) : 0;
        if (pp_ms[r] < 0 || tg_ms[r] < 0) {
            fail_decode(&err);
            goto done;
        }
        if (!o.json)
            fprintf(stderr, "depth %d rep %d/%d: pp%d %.2f t/s, tg%d %.2f t/s\n", depth, r + 1, o.reps, o.pp,
                    o.pp ? o.pp * 1e3 / pp_ms[r] : 0.0, o.tg, o.tg ? o.tg * 1e3 / tg_ms[r] : 0.0);
    }
    /* tokens per second per repetition, then medians */
    double lo_pp = 1e300, hi_pp = 0, lo_tg = 1e300, hi_tg = 0;
    for (int r = 0; r < o.reps; r++) {
        pp_ms[r] = o.pp ? o.pp * 1e3 / pp_ms[r] : 0;
        tg_ms[r] = o.tg ? o.tg * 1e3 / tg_ms[r] : 0;
        lo_pp = NK_MIN(lo_pp, pp_ms[r]), hi_pp = NK_MAX(hi_pp, pp_ms[r]);
        lo_tg = NK_MIN(lo_tg, tg_ms[r]), hi_tg = NK_MAX(hi_tg, tg_ms[r]);
    }
    const double pp_tps = median(pp_ms, o.reps), tg_tps = median(tg_ms, o.reps);
    const char *isa = nook_model_arch(m);
    if (o.json) {
        printf("{\"model\":\"%s\",\"arch\":\"%s\",\"threads\":%d,\"depth\":%d,\"pp\":%d,\"tg\":%d,\"reps\":%d,"
               "\"pp_tps\":%.3f,\"tg_tps\":%.3f,\"pp_tps_min\":%.3f,\"pp_tps_max\":%.3f,"
               "\"tg_tps_min\":%.3f,\"tg_tps_max\":%.3f,\"load_ms\":%.1f,\"session_ms\":%.1f,\"ttft_ms\":%.1f,"
               "\"ready_ms\":%.1f,\"fill_batch\":%d,\"fill_ms\":%.1f,\"fill_tps\":%.3f}\n",
               base_name(path), isa, o.threads ? o.threads : nk_n_cores(), depth, o.pp, o.tg, o.reps, pp_tps, tg_tps,
               o.pp ? lo_pp : 0, hi_pp, o.tg ? lo_tg : 0, hi_tg, load_ms, sess_ms, ttft_ms, ready_ms,
               depth > 0 ? sp.n_batch : 0, fill_ms, depth > 0 ? depth * 1e3 / fill_ms : 0.0);
    } else {
        printf("%s (%s), %d threads, depth %d: load %.1f ms, session %.1f ms, ttft %.1f ms, ready %.1f ms, pp%d %.2f t/s [%.2f..%.2f], tg%d %.2f t/s [%.2f..%.2f]\n",
               base_name(path), isa, o.threads ? o.threads : nk_n_cores(), depth, load_ms, sess_ms, ttft_ms, ready_ms, o.pp, pp_tps,
               o.pp ? lo_pp : 0, hi_pp, o.tg, tg_tps, o.tg ? lo_tg : 0, hi_tg);
    }
    fflush(stdout);
    rc = CLI_OK;
done:
    nook_session_free(s);
    nk_free(toks);
    nk_free(pp_ms);
    nk_free(tg_ms);
    return rc;
}

int cli_bench(int argc, char **argv) {
    o = (bench_opts){ .pp = 512, .tg = 128, .reps = 3, .fill_batch = 2048, .kv_type = "f16" };
    int n_pos = 0;
    int rc = cli_parse(&k_info, argc, argv, &n_pos);
    if (rc != CLI_OK) return rc;
    if (n_pos != 1) return cli_fail(CLI_EUSAGE, "bench takes one MODEL (see 'nook bench --help')");
    const char *path = argv[0];

    /* cold start: load, session, a 10-token prompt, the first pick */
    const double t_load = now_ms();
    nook_model *m = cli_load_model(path, o.threads, o.no_mmap);
    if (!m) return CLI_EFAIL;
    const double load_ms = now_ms() - t_load;
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = o.threads;
    if (cli_kv_type("bench", o.kv_type, &sp.kv_type) != CLI_OK) {
        nook_model_free(m);
        return CLI_EUSAGE;
    }
    if (o.parallel) {
        rc = bench_parallel(path, m, &sp);   /* --reps is at most 1000: ms[] fits */
        nook_model_free(m);
        return rc;
    }
    /* the depths: "0" unless -d */
    int depths[64], n_depth = 0;
    const char *dp = o.depths ? o.depths : "0";
    while (*dp) {
        char *end;
        const long d = strtol(dp, &end, 10);
        if (end == dp || d < 0 || d > (1 << 22) || (*end && *end != ',') || n_depth == (int)NK_ARRAY_LEN(depths)) {
            nook_model_free(m);
            return cli_fail(CLI_EUSAGE, "-d wants a list of at most 64 depths in [0, 4194304] like 0,4096,16384 (got '%s')",
                            o.depths);
        }
        depths[n_depth++] = (int)d;
        dp = *end ? end + 1 : end;
    }
    double ttft = -1;
    for (int di = 0; di < n_depth; di++) {
        rc = bench_depth(path, m, &sp, depths[di], load_ms, t_load, &ttft);
        if (rc != CLI_OK) break;
    }
    nook_model_free(m);
    return rc;
}

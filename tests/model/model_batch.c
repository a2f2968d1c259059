/*
 * model_batch.c: several sequences in one batch give what each gives alone.
 *
 * For stories260K (the real trained model) and tiny random-weight qwen3, llama3 and
 * gemma3 files (sliding window; model_arch.h's writer) at Q4_K_M and Q8_0: four
 * prompts of different lengths, interleaved entry by entry in one batch, then
 * single-token steps over the sequences still running (they stop at different steps,
 * and the order of entries changes every step). Each sequence is fed the tokens its
 * alone-run fed (teacher forcing, so one near-tie cannot derail the rest); checked:
 *  - with the small-batch matmul kernels for every row count (NOOK_NO_RL=1, set here):
 *    the same bits as alone, at every step, for every model: masking, positions,
 *    slots and sliding windows are exact;
 *  - with the default kernels: a step with >= min_tok rows goes through the "rows in
 *    lanes" kernels, which sum in another float order (1e-5 relative per product).
 *    The random-weight files amplify that through their layers (sharp attention and
 *    activations that no training tamed): measured up to 2e-2 of the largest logit
 *    (llama3 Q4_K_M 3e-7); the bound below is 4e-2, and the argmax must agree
 *    wherever the alone-run's top two are further apart than twice that;
 *  - the single-sequence API and a one-sequence batch give the same bits.
 * Then the cache operations on stories260K: prefix match, fork (seq_cp) continuing
 * bit-identically in one batch, seq_rm refusing holes, argument errors; and
 * cancellation: an abort at varying moments of a chunked prompt returns
 * NOOK_EABORTED with the cache holding whole chunks, and decoding on from there gives
 * the bits of an uncancelled run.
 */
#include "model_arch.h"
#include "tensor/ops_gemm.h"

static char g_path[1024];

static const arch_cfg CFG_QWEN3 = {
    .name = "qwen3", .arch = "qwen3", .n_embd = 256, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 128,
    .n_ff = 768, .n_ctx = 40960, .tied = true, .key_length = true, .qk_norm = true, .rope_base = 1e6f, .eps = 1e-6f,
};
static const arch_cfg CFG_LLAMA3 = {
    .name = "llama3", .arch = "llama", .n_embd = 256, .n_layer = 4, .n_head = 8, .n_head_kv = 2, .head_dim = 32,
    .n_ff = 768, .n_ctx = 131072, .tied = true, .rope_dim = true, .rope_base = 500000.0f, .eps = 1e-5f,
    .llama3_rope = 32.0f,
};
static const arch_cfg CFG_GEMMA3 = {
    .name = "gemma3", .arch = "gemma3", .n_embd = 256, .n_layer = 6, .n_head = 4, .n_head_kv = 1, .head_dim = 256,
    .n_ff = 512, .n_ctx = 32768, .tied = true, .key_length = true, .qk_norm = true, .post_norms = true,
    .rope_base = 1e6f, .eps = 1e-6f, .n_swa = 8,
};

enum { NSEQ = 4, MAXP = 24, MAXG = 14, MAXV = 512 };
static const int P_LEN[NSEQ] = { 3, 17, 7, 22 };   /* prompt lengths */
static const int G_LEN[NSEQ] = { 6, 12, 2, 9 };    /* generated tokens: they stop at different steps */

static nook_session *new_session(const nook_model *m, int n_seq, int n_ctx, int n_batch, int n_threads) {
    nook_session_params sp = nook_session_default_params();
    sp.n_seq_max = n_seq;
    sp.n_ctx = n_ctx;
    sp.n_batch = n_batch;
    sp.n_threads = n_threads;
    nook_session *s = NULL;
    nook_error err;
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        fprintf(stderr, "session: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static float top2_gap(const float *x, int n) {
    const int b = argmax(x, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != b && x[i] > second) second = x[i];
    return x[b] - second;
}

typedef struct ref_run {
    int prompt[MAXP];
    int toks[MAXG];                  /* fed after the prompt */
    float logits[MAXG + 1][MAXV];    /* after the prompt, then after each fed token */
} ref_run;

static ref_run g_ref[NSEQ];

static void make_prompt(int seq, int n_vocab, int *out) {
    for (int i = 0; i < P_LEN[seq]; i++) out[i] = 3 + (int)((uint64_t)(seq * 131 + i * 37 + 11) * 2654435761u % (uint64_t)(n_vocab - 3));
    if (n_vocab == 512) out[0] = 1;   /* BOS of stories260K */
}

/* Each sequence alone, single-sequence API, greedy. */
static void run_alone(const nook_model *m, int n_vocab) {
    nook_error err;
    for (int q = 0; q < NSEQ; q++) {
        ref_run *r = &g_ref[q];
        make_prompt(q, n_vocab, r->prompt);
        nook_session *s = new_session(m, 1, 64, 64, 1);
        CHECK_EQ_INT(nook_session_decode(s, r->prompt, P_LEN[q], NULL, &err), NOOK_OK);
        memcpy(r->logits[0], nook_session_logits(s), (size_t)n_vocab * sizeof(float));
        for (int i = 0; i < G_LEN[q]; i++) {
            r->toks[i] = argmax(r->logits[i], n_vocab);
            CHECK_EQ_INT(nook_session_decode(s, &r->toks[i], 1, NULL, &err), NOOK_OK);
            memcpy(r->logits[i + 1], nook_session_logits(s), (size_t)n_vocab * sizeof(float));
        }
        nook_session_free(s);
    }
}

static double g_worst;

static void compare(const char *what, int q, int step, const float *got, int n_vocab, float tol) {
    const float *want = g_ref[q].logits[step];
    float scale = 1.0f, d = 0.0f;
    for (int i = 0; i < n_vocab; i++) scale = fmaxf(scale, fabsf(want[i]));
    for (int i = 0; i < n_vocab; i++) d = fmaxf(d, fabsf(got[i] - want[i]));
    if (d / scale > g_worst) g_worst = d / scale;
    CHECK_MSG(d <= tol * scale, "%s seq %d step %d: max |logit diff| %g > %g", what, q, step, d, tol * scale);
    if (top2_gap(want, n_vocab) > 2 * tol * scale || tol == 0)
        CHECK_MSG(argmax(got, n_vocab) == argmax(want, n_vocab), "%s seq %d step %d: argmax %d vs %d", what, q, step,
                  argmax(got, n_vocab), argmax(want, n_vocab));
}

/* All four in one session, interleaved; tol: relative bound on logits. */
static void run_batched(const char *what, const nook_model *m, int n_vocab, float tol, int n_threads) {
    nook_error err;
    nook_session *s = new_session(m, NSEQ, 64, 64, n_threads);
    nook_batch b;
    CHECK_EQ_INT(nook_batch_init(&b, 128, &err), NOOK_OK);
    /* prompts: round-robin over the sequences, output on each last prompt token */
    int at[NSEQ] = { 0 }, last_entry[NSEQ];
    for (int more = 1; more;) {
        more = 0;
        for (int q = 0; q < NSEQ; q++) {
            if (at[q] >= P_LEN[q]) continue;
            more = 1;
            const bool last = at[q] == P_LEN[q] - 1;
            if (last) last_entry[q] = b.n_tokens;
            CHECK(nook_batch_add(&b, g_ref[q].prompt[at[q]], at[q], q, last));
            at[q]++;
        }
    }
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);
    for (int q = 0; q < NSEQ; q++) {
        CHECK_EQ_INT(nook_session_seq_pos_max(s, q), P_LEN[q] - 1);
        const float *lg = nook_session_logits_ith(s, last_entry[q]);
        CHECK(lg != NULL);
        if (lg) compare(what, q, 0, lg, n_vocab, tol);
    }
    CHECK(nook_session_logits_ith(s, 0) == NULL);   /* seq 0's first prompt token asked for nothing */
    /* generation steps: each running sequence feeds its next token; order alternates */
    for (int step = 0; step < MAXG; step++) {
        nook_batch_clear(&b);
        int entry[NSEQ];
        for (int k = 0; k < NSEQ; k++) {
            const int q = step % 2 ? NSEQ - 1 - k : k;
            entry[q] = -1;
            if (step >= G_LEN[q]) continue;
            entry[q] = b.n_tokens;
            nook_batch_add(&b, g_ref[q].toks[step], step % 3 ? -1 : P_LEN[q] + step, q, true);
        }
        if (!b.n_tokens) break;
        CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);
        for (int q = 0; q < NSEQ; q++)
            if (entry[q] >= 0) {
                const float *lg = nook_session_logits_ith(s, entry[q]);
                CHECK(lg != NULL);
                if (lg) compare(what, q, step + 1, lg, n_vocab, tol);
            }
    }
    for (int q = 0; q < NSEQ; q++) CHECK_EQ_INT(nook_session_seq_pos_max(s, q), P_LEN[q] + G_LEN[q] - 1);
    nook_batch_free(&b);
    nook_session_free(s);
}

/* The single-sequence API and a one-sequence batch: the same bits. */
static void single_vs_batch(const nook_model *m, int n_vocab) {
    nook_error err;
    nook_session *a = new_session(m, 1, 64, 64, 1), *c = new_session(m, 2, 64, 64, 1);
    nook_batch b;
    nook_batch_init(&b, 64, &err);
    const ref_run *r = &g_ref[3];
    for (int i = 0; i < P_LEN[3]; i++) nook_batch_add(&b, r->prompt[i], -1, 1, i == P_LEN[3] - 1);
    CHECK_EQ_INT(nook_session_decode(a, r->prompt, P_LEN[3], NULL, &err), NOOK_OK);
    CHECK_EQ_INT(nook_session_decode_batch(c, &b, &err), NOOK_OK);
    CHECK(memcmp(nook_session_logits(a), nook_session_logits_ith(c, P_LEN[3] - 1), (size_t)n_vocab * 4) == 0);
    CHECK(memcmp(nook_session_logits(a), nook_session_logits(c), (size_t)n_vocab * 4) == 0);
    nook_batch_free(&b);
    nook_session_free(a);
    nook_session_free(c);
}

/* threads2: also run the batched pass on 2 threads (results do not depend on the
 * thread count; on a loaded machine every 2-thread run waits for a descheduled
 * worker, so only some models do it) */
static void run_model(const char *what, const char *path, float tol, bool threads2) {
    nook_model *m = NULL;
    nook_error err;
    if (nook_model_load(path, NULL, &m, &err) != NOOK_OK) {
        CHECK_MSG(0, "load %s: %s", path, err.msg);
        return;
    }
    const int n_vocab = nook_model_n_vocab(m);
    CHECK(n_vocab <= MAXV);
    /* nk_gemm_reread_env must not run while the load's background repack reads the
     * choices it rewrites (TSan: a race on g_repack_on) */
    nook_model_wait_ready(m);
    g_worst = 0;
    setenv("NOOK_NO_RL", "1", 1);
    nk_gemm_reread_env();
    run_alone(m, n_vocab);
    run_batched(what, m, n_vocab, 0.0f, 1);
    if (threads2) run_batched(what, m, n_vocab, 0.0f, 2);
    printf("%-16s small-batch kernels: worst relative logit difference batched vs alone %.2e\n", what, g_worst);
    unsetenv("NOOK_NO_RL");
    nk_gemm_reread_env();
    g_worst = 0;
    run_alone(m, n_vocab);
    run_batched(what, m, n_vocab, tol, threads2 ? 2 : 1);
    single_vs_batch(m, n_vocab);
    printf("%-16s default kernels:      worst relative logit difference batched vs alone %.2e\n", what, g_worst);
    nook_model_free(m);
}

/* ---- cache operations (stories260K) ---- */

static void cache_ops(const nook_model *m) {
    nook_error err;
    const int n_vocab = nook_model_n_vocab(m);
    nook_session *s = new_session(m, 4, 64, 64, 1);
    nook_batch b;
    nook_batch_init(&b, 64, &err);
    const ref_run *r = &g_ref[3];
    for (int i = 0; i < P_LEN[3]; i++) nook_batch_add(&b, r->prompt[i], i, 0, i == P_LEN[3] - 1);
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);

    /* prefix match: the prompt plus more tokens finds seq 0's whole prompt */
    int ask[MAXP + 2];
    memcpy(ask, r->prompt, sizeof(int) * (size_t)P_LEN[3]);
    ask[P_LEN[3]] = 5;
    nook_seq best = 7;
    CHECK_EQ_INT(nook_session_prefix_match(s, ask, P_LEN[3] + 1, &best), P_LEN[3]);
    CHECK_EQ_INT(best, 0);
    ask[4] = ask[4] == 9 ? 10 : 9;
    CHECK_EQ_INT(nook_session_prefix_match(s, ask, P_LEN[3] + 1, &best), 4);
    ask[0] = ask[0] == 9 ? 10 : 9;
    CHECK_EQ_INT(nook_session_prefix_match(s, ask, P_LEN[3] + 1, &best), 0);
    CHECK_EQ_INT(best, -1);

    /* fork: seq 2 = seq 0; both fed the same token in one batch give the same bits,
     * and those of seq 0 continued alone */
    CHECK(nook_session_seq_cp(s, 0, 2, 0, -1));
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 2), P_LEN[3] - 1);
    CHECK_EQ_INT(nook_session_prefix_match(s, r->prompt, P_LEN[3], &best), P_LEN[3]);
    CHECK_EQ_INT(best, 0);   /* ties: lowest id */
    nook_batch_clear(&b);
    nook_batch_add(&b, r->toks[0], -1, 2, true);
    nook_batch_add(&b, r->toks[0], -1, 0, true);
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);
    CHECK(memcmp(nook_session_logits_ith(s, 0), nook_session_logits_ith(s, 1), (size_t)n_vocab * 4) == 0);
    compare("fork", 3, 1, nook_session_logits_ith(s, 0), n_vocab, 1e-5f);

    /* seq_rm: a tail goes, a hole is refused */
    CHECK(!nook_session_seq_rm(s, 2, 2, 5));
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 2), P_LEN[3]);
    CHECK(nook_session_seq_rm(s, 2, 5, -1));
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 2), 4);
    CHECK(nook_session_seq_rm(s, 2, 3, 100));
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 2), 2);
    /* decode after a cut: same as a fresh prefix */
    nook_batch_clear(&b);
    for (int i = 3; i < P_LEN[3]; i++) nook_batch_add(&b, r->prompt[i], i, 2, i == P_LEN[3] - 1);
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);
    compare("rm+redecode", 3, 0, nook_session_logits_ith(s, b.n_tokens - 1), n_vocab, 1e-5f);
    /* cp onto a longer dst keeps dst's head; p0 past dst's length is refused */
    CHECK(!nook_session_seq_cp(s, 0, 1, 3, -1));
    CHECK(!nook_session_seq_cp(s, 0, 9, 0, -1));
    nook_session_seq_clear(s, 2);
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 2), -1);
    CHECK(nook_session_seq_rm(s, -1, 0, -1));
    for (int q = 0; q < 4; q++) CHECK_EQ_INT(nook_session_seq_pos_max(s, q), -1);

    /* argument errors change nothing */
    nook_batch_clear(&b);
    nook_batch_add(&b, 1, 0, 0, true);
    nook_batch_add(&b, 1, 5, 0, true);   /* skips positions 1..4 */
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_EINVAL);
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 0), -1);
    b.seq[1] = 4;
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_EINVAL);
    b.seq[1] = 1, b.token[1] = n_vocab;
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_EINVAL);
    nook_batch_clear(&b);
    for (int i = 0; i < 64; i++) nook_batch_add(&b, 1, -1, 3, false);
    CHECK(!nook_batch_add(&b, 1, -1, 3, false));   /* full */
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);   /* exactly n_ctx */
    nook_batch_clear(&b);
    nook_batch_add(&b, 1, -1, 3, false);
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_ERANGE);
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 3), 63);
    nook_batch_free(&b);
    nook_session_free(s);
}

/* ---- cancellation ---- */

typedef struct abort_at {
    int calls, at;
} abort_at;

static bool abort_cb(void *ud) {
    abort_at *a = ud;
    return ++a->calls >= a->at;
}

/* n_threads 1: thread 0 does all the polling, so the poll count is the same every run;
 * with 2 threads it varies with the scheduling, so then only the invariants are checked. */
static void cancellation(const char *what, const nook_model *m, int n_threads) {
    nook_error err;
    const int n_vocab = nook_model_n_vocab(m);
    enum { N = 40, CHUNK = 8 };
    int toks[N];
    for (int i = 0; i < N; i++) toks[i] = i == 0 ? 1 : 3 + (i * 53) % (n_vocab - 3);
    static float want[MAXV];
    nook_session *s = new_session(m, 1, 64, CHUNK, n_threads);
    CHECK_EQ_INT(nook_session_decode(s, toks, N, NULL, &err), NOOK_OK);
    memcpy(want, nook_session_logits(s), (size_t)n_vocab * 4);
    /* count the polls of an uncancelled run, then cancel at spread-out moments */
    abort_at count = { 0, 1 << 30 };
    nook_session_truncate(s, 0);
    nook_session_set_abort(s, abort_cb, &count);
    CHECK_EQ_INT(nook_session_decode(s, toks, N, NULL, &err), NOOK_OK);
    CHECK(count.calls > 10);
    int aborted = 0;
    for (int k = 1; k <= 9; k++) {
        abort_at a = { 0, 1 + count.calls * k / 10 };
        nook_session_truncate(s, 0);
        nook_session_set_abort(s, abort_cb, &a);
        const nook_status st = nook_session_decode(s, toks, N, NULL, &err);
        const int held = nook_session_n_past(s);
        if (st == NOOK_EABORTED) {
            aborted++;
            CHECK_MSG(held % CHUNK == 0 && held < N, "%s: %d tokens held after abort", what, held);
            CHECK(nook_session_logits_ith(s, N - 1) == NULL);
        } else {
            CHECK_EQ_INT(st, NOOK_OK);
        }
        /* decode on from where it stopped: the bits of the uncancelled run */
        nook_session_set_abort(s, NULL, NULL);
        if (held < N) CHECK_EQ_INT(nook_session_decode(s, toks + held, N - held, NULL, &err), NOOK_OK);
        CHECK_MSG(memcmp(nook_session_logits(s), want, (size_t)n_vocab * 4) == 0, "%s: abort at poll %d", what, a.at);
    }
    if (n_threads == 1) CHECK(aborted >= 8);
    else CHECK(aborted >= 1);
    /* a batch of two sequences aborted in its second pass keeps the first pass */
    nook_session_free(s);
    s = new_session(m, 2, 64, CHUNK, 1);
    nook_batch b;
    nook_batch_init(&b, 64, &err);
    for (int i = 0; i < 12; i++) nook_batch_add(&b, toks[i], -1, i % 2, false);
    abort_at a = { 0, 0 };
    count.calls = 0;
    nook_session_set_abort(s, abort_cb, &count);
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_OK);
    a.at = count.calls * 3 / 4;   /* inside the second pass */
    nook_session_seq_clear(s, -1);
    nook_session_set_abort(s, abort_cb, &a);
    CHECK_EQ_INT(nook_session_decode_batch(s, &b, &err), NOOK_EABORTED);
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 0), 3);
    CHECK_EQ_INT(nook_session_seq_pos_max(s, 1), 3);
    CHECK_STR(nook_status_str(NOOK_EABORTED), "aborted");
    nook_batch_free(&b);
    nook_session_free(s);
}

int main(void) {
    nk_test_fixture(g_path, sizeof g_path, "stories260K.gguf");
    nook_model *st = NULL;
    nook_error err;
    if (nook_model_load(g_path, NULL, &st, &err) != NOOK_OK) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    run_model("stories260K", g_path, 1e-5f, true);
    run_alone(st, nook_model_n_vocab(st));
    cache_ops(st);
    cancellation("stories260K", st, 1);
    cancellation("stories260K", st, 2);
    nook_model_free(st);

    const arch_cfg *cfgs[] = { &CFG_QWEN3, &CFG_LLAMA3, &CFG_GEMMA3 };
    const int fts[] = { FT_Q4_K_M, FT_Q8_0 };
    for (size_t c = 0; c < NK_ARRAY_LEN(cfgs); c++)
        for (size_t f = 0; f < NK_ARRAY_LEN(fts); f++) {
            if (ARCH_SANITIZED && f) continue;
            char path[512], what[64];
            snprintf(path, sizeof path, "/tmp/nook-batch-%s-%s-%d.gguf", cfgs[c]->name, arch_ft_names[fts[f]],
                     (int)getpid());
            snprintf(what, sizeof what, "%s %s", cfgs[c]->name, arch_ft_names[fts[f]]);
            CHECK_EQ_INT(arch_write(cfgs[c], fts[f], path), 0);
            run_model(what, path, 4e-2f, c == 0 && f == 0);
            if (c == 0 && f == 0) {
                nook_model *m = NULL;
                if (nook_model_load(path, NULL, &m, &err) == NOOK_OK) {
                    cancellation(what, m, 1);
                    nook_model_free(m);
                }
            }
            remove(path);
        }
    NK_TEST_DONE();
}

/* test_errors: nook_model_load and nook_session_decode fail with the right status and
 * a message that names the problem; plus a synthetic model runs end to end (batched
 * vs one token at a time, 1 vs 3 threads, f16 weights). No fixtures needed. */
#include "nook.h"
#include "nk_test.h"
#include "synth.h"

static nook_status load(const char *path, nook_model **m, nook_error *err) {
    nook_model_params mp = nook_model_default_params();
    return nook_model_load(path, &mp, m, err);
}

static void test_missing_file(void) {
    nook_model *m = (nook_model *)1;
    nook_error err;
    const char *path = "/tmp/nook-definitely-not-here.gguf";
    CHECK_EQ_INT(load(path, &m, &err), NOOK_EIO);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message: %s", err.msg);
}

static void test_not_gguf(void) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/nook-notgguf-%d.txt", (int)getpid());
    FILE *f = fopen(path, "wb");
    fputs("this is not a gguf file, just some text that is long enough\n", f);
    fclose(f);
    nook_model *m = NULL;
    nook_error err;
    CHECK_EQ_INT(load(path, &m, &err), NOOK_EFORMAT);
    CHECK(m == NULL);
    unlink(path);
}

/* Write a synthetic model with opts and expect load to fail with code and a message
 * containing needle. */
static void expect_load_fail(const synth_opts *o, nook_status code, const char *needle) {
    char path[128];
    synth_tmp(path, sizeof path, "err");
    CHECK_EQ_INT(synth_write(path, o), 0);
    nook_model *m = NULL;
    nook_error err = { 0 };
    nook_status st = load(path, &m, &err);
    CHECK_MSG(st == code, "expected %s, got %s: %s", nook_status_str(code), nook_status_str(st), err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message lacks \"%s\": %s", needle, err.msg);
    CHECK(m == NULL);
    nook_model_free(m);
    unlink(path);
}

static void test_bad_models(void) {
    expect_load_fail(&(synth_opts){ .arch = "foo" }, NOOK_EUNSUPPORTED, "foo");
    expect_load_fail(&(synth_opts){ .skip = "blk.1.ffn_up.weight" }, NOOK_EFORMAT, "blk.1.ffn_up.weight");
    expect_load_fail(&(synth_opts){ .skip = "output_norm.weight" }, NOOK_EFORMAT, "output_norm.weight");
    expect_load_fail(&(synth_opts){ .retype = "blk.0.attn_q.weight", .retype_to = NK_TYPE_I32 },
                     NOOK_EUNSUPPORTED, "tensor blk.0.attn_q.weight has type I32");
    expect_load_fail(&(synth_opts){ .retype = "blk.0.attn_norm.weight", .retype_to = NK_TYPE_F16 },
                     NOOK_EUNSUPPORTED, "blk.0.attn_norm.weight");
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* Run the synthetic model: context overflow, and invariance to batching/threads. */
static void test_run(uint32_t wtype, bool tied) {
    char path[128];
    synth_tmp(path, sizeof path, "run");
    CHECK_EQ_INT(synth_write(path, &(synth_opts){ .wtype = wtype, .tied = tied }), 0);
    nook_model *m = NULL;
    nook_error err = { 0 };
    if (load(path, &m, &err) != NOOK_OK) {
        CHECK_MSG(0, "load synthetic %s: %s", nk_type_name(wtype), err.msg);
        unlink(path);
        return;
    }
    CHECK_STR(nook_model_arch(m), "llama");
    CHECK_STR(nook_model_name(m), "synthetic");
    CHECK_EQ_INT(nook_model_n_vocab(m), SYN_VOCAB);
    CHECK_EQ_INT(nook_model_n_embd(m), SYN_EMBD);
    CHECK_EQ_INT(nook_model_n_layer(m), SYN_LAYER);
    CHECK_EQ_INT(nook_model_n_ctx_train(m), 64);
    const uint64_t per_layer = 2 * SYN_EMBD + (uint64_t)SYN_EMBD * SYN_EMBD * 2 + 2ull * SYN_EMBD * (SYN_EMBD / 2) +
                               3ull * SYN_EMBD * SYN_FF;
    CHECK_EQ_INT(nook_model_n_params(m), (tied ? 1 : 2) * (uint64_t)SYN_EMBD * SYN_VOCAB + SYN_EMBD + SYN_LAYER * per_layer);

    /* n_ctx 8: 9 tokens do not fit, 5 + 4 do not either; the message says why */
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = 8;
    sp.n_threads = 1;
    nook_session *s = NULL;
    CHECK_EQ_INT(nook_session_new(m, &sp, &s, &err), NOOK_OK);
    nook_token toks[9] = { 1, 5, 9, 30, 31, 7, 8, 3, 4 };
    CHECK_EQ_INT(nook_session_decode(s, toks, 9, NULL, &err), NOOK_ERANGE);
    CHECK_MSG(strstr(err.msg, "n_ctx 8") != NULL, "message: %s", err.msg);
    CHECK_EQ_INT(nook_session_n_past(s), 0);
    CHECK_EQ_INT(nook_session_decode(s, toks, 5, NULL, &err), NOOK_OK);
    CHECK_EQ_INT(nook_session_decode(s, toks, 4, NULL, &err), NOOK_ERANGE);
    CHECK_MSG(strstr(err.msg, "n_past 5") != NULL, "message: %s", err.msg);
    nook_token bad = SYN_VOCAB;
    CHECK_EQ_INT(nook_session_decode(s, &bad, 1, NULL, &err), NOOK_EINVAL);
    nook_session_free(s);

    /* all logits batched (3 threads, n_batch 3 so batches split) vs one at a time (1 thread) */
    enum { N = 7 };
    static float all[N * SYN_VOCAB], one[N * SYN_VOCAB];
    sp.n_ctx = 16;
    sp.n_threads = 3;
    sp.n_batch = 3;
    CHECK_EQ_INT(nook_session_new(m, &sp, &s, &err), NOOK_OK);
    CHECK_EQ_INT(nook_session_decode(s, toks, N, all, &err), NOOK_OK);
    CHECK_EQ_INT(nook_session_n_past(s), N);
    CHECK(memcmp(nook_session_logits(s), all + (N - 1) * SYN_VOCAB, SYN_VOCAB * sizeof(float)) == 0);
    /* truncate and redo the tail: same logits */
    nook_session_truncate(s, 4);
    CHECK_EQ_INT(nook_session_n_past(s), 4);
    CHECK_EQ_INT(nook_session_decode(s, toks + 4, N - 4, NULL, &err), NOOK_OK);
    CHECK(memcmp(nook_session_logits(s), all + (N - 1) * SYN_VOCAB, SYN_VOCAB * sizeof(float)) == 0);
    nook_session_free(s);

    sp.n_threads = 1;
    sp.n_batch = 0;
    CHECK_EQ_INT(nook_session_new(m, &sp, &s, &err), NOOK_OK);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(nook_session_decode(s, toks + i, 1, NULL, &err), NOOK_OK);
        memcpy(one + i * SYN_VOCAB, nook_session_logits(s), SYN_VOCAB * sizeof(float));
    }
    CHECK_MSG(memcmp(all, one, sizeof all) == 0, "%s: batched and token-by-token logits differ", nk_type_name(wtype));
    int finite = 1;
    for (int i = 0; i < N * SYN_VOCAB; i++) finite &= isfinite(all[i]) != 0;
    CHECK(finite);
    CHECK(argmax(one, SYN_VOCAB) >= 0);
    nook_session_free(s);
    nook_model_free(m);
    unlink(path);
}

/* Push tokens through a detokenizer and flush; returns the text. */
static const char *detok(const nook_model *m, const int *toks, int n, char *out, size_t cap) {
    nook_detok d;
    nook_detok_init(&d, m, false);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        char buf[64];
        size_t k = nook_detok_push(&d, toks[i], buf, sizeof buf);
        CHECK_EQ_INT(k, strlen(buf));
        strncat(out, buf, cap - strlen(out) - 1);
    }
    char buf[64];
    nook_detok_flush(&d, buf, sizeof buf);
    strncat(out, buf, cap - strlen(out) - 1);
    return out;
}

/* The streaming detokenizer never releases half a character; impossible sequences
 * become U+FFFD. Byte tokens 40..45 are E2 96 81 FF C3 A9. */
static void test_detok(void) {
    char path[128];
    synth_tmp(path, sizeof path, "detok");
    CHECK_EQ_INT(synth_write(path, &(synth_opts){ 0 }), 0);
    nook_model *m = NULL;
    nook_error err;
    if (load(path, &m, &err) != NOOK_OK) {
        CHECK_MSG(0, "load: %s", err.msg);
        return;
    }
    char out[256];
    /* E2 96 81 arrives in three tokens: nothing until the third */
    nook_detok d;
    nook_detok_init(&d, m, false);
    char buf[64];
    CHECK_EQ_INT(nook_detok_push(&d, 40, buf, sizeof buf), 0);
    CHECK_EQ_INT(nook_detok_push(&d, 41, buf, sizeof buf), 0);
    CHECK_EQ_INT(nook_detok_push(&d, 42, buf, sizeof buf), 3);
    CHECK_STR(buf, "\xE2\x96\x81");
    CHECK_EQ_INT(nook_detok_push(&d, 3, buf, sizeof buf), 1);   /* "a" */
    CHECK_STR(buf, "a");
    CHECK_STR(detok(m, (int[]){ 44, 45, 4 }, 3, out, sizeof out), "\xC3\xA9" "b");       /* é b */
    CHECK_STR(detok(m, (int[]){ 40, 3 }, 2, out, sizeof out), "\xEF\xBF\xBD" "a");      /* E2 'a' */
    CHECK_STR(detok(m, (int[]){ 43, 3 }, 2, out, sizeof out), "\xEF\xBF\xBD" "a");      /* FF */
    CHECK_STR(detok(m, (int[]){ 41 }, 1, out, sizeof out), "\xEF\xBF\xBD");             /* lone continuation */
    CHECK_STR(detok(m, (int[]){ 40, 41 }, 2, out, sizeof out), "\xEF\xBF\xBD");         /* cut short: flush */
    CHECK_STR(detok(m, (int[]){ 44, 40, 41, 42 }, 4, out, sizeof out), "\xEF\xBF\xBD\xE2\x96\x81");
    CHECK_STR(detok(m, (int[]){ 29, 30 }, 2, out, sizeof out), " a b");                 /* ▁a ▁b */
    nook_model_free(m);
    unlink(path);
}

int main(void) {
    test_detok();
    test_missing_file();
    test_not_gguf();
    test_bad_models();
    test_run(NK_TYPE_F32, false);
    test_run(NK_TYPE_F16, true);
    test_run(NK_TYPE_Q8_0, false);
    test_run(NK_TYPE_Q4_0, true);
    NK_TEST_DONE();
}

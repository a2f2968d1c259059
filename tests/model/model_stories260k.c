/* model_stories260k: the real trained llama2.c model against llama.cpp's reference
 * outputs (SOURCES.md section 1): tokens, greedy continuation, next-token
 * probabilities, the published llama2.c text, batching and threading invariance.
 * Also prints prompt and decode speed (nothing asserts a speed). */
#include "nook.h"
#include "nk_test.h"

#include <time.h>

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static nook_session *new_session(const nook_model *m, int n_threads, int n_ctx) {
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = n_threads;
    sp.n_ctx = n_ctx;
    nook_session *s = NULL;
    nook_error err;
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        fprintf(stderr, "session: %s\n", err.msg);
        exit(1);
    }
    return s;
}

/* Greedy: feed prompt, then n argmax tokens; writes them to out. */
static void greedy(nook_session *s, int n_vocab, const nook_token *prompt, int n_prompt, int n, nook_token *out) {
    nook_error err;
    CHECK_EQ_INT(nook_session_decode(s, prompt, n_prompt, NULL, &err), NOOK_OK);
    for (int i = 0; i < n; i++) {
        out[i] = argmax(nook_session_logits(s), n_vocab);
        CHECK_EQ_INT(nook_session_decode(s, &out[i], 1, NULL, &err), NOOK_OK);
    }
}

int main(void) {
    char path[1024];
    nk_test_fixture(path, sizeof path, "stories260K.gguf");
    nook_model *m = NULL;
    nook_error err;
    nook_model_params mp = nook_model_default_params();
    if (nook_model_load(path, &mp, &m, &err) != NOOK_OK) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    CHECK_STR(nook_model_arch(m), "llama");
    CHECK_EQ_INT(nook_model_n_vocab(m), 512);
    CHECK_EQ_INT(nook_model_n_embd(m), 64);
    CHECK_EQ_INT(nook_model_n_layer(m), 5);
    CHECK_EQ_INT(nook_model_n_ctx_train(m), 2048);
    CHECK_EQ_INT(nook_model_n_params(m) * 4, 1171200);   /* llama.cpp: 1,171,200 bytes, all F32 */
    const int n_vocab = nook_model_n_vocab(m);

    /* tokenize with BOS */
    nook_token prompt[16];
    size_t n_prompt = 0;
    const char *text = "Once upon a time";
    CHECK_EQ_INT(nook_tokenize(m, text, strlen(text), true, false, prompt, 16, &n_prompt, &err), NOOK_OK);
    const nook_token want_prompt[] = { 1, 403, 407, 261, 378 };
    CHECK_EQ_INT(n_prompt, 5);
    CHECK(n_prompt == 5 && memcmp(prompt, want_prompt, sizeof want_prompt) == 0);

    /* next-token probabilities (softmax of raw logits) vs llama.cpp's */
    nook_session *s = new_session(m, 1, 256);
    CHECK_EQ_INT(nook_session_decode(s, want_prompt, 5, NULL, &err), NOOK_OK);
    static float first[512];
    memcpy(first, nook_session_logits(s), sizeof first);
    double mx = first[argmax(first, n_vocab)], sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp(first[i] - mx);
    const struct { int id; double p; } probs[] = {
        { 432, 0.968719 }, { 383, 0.028802 }, { 322, 0.000298 }, { 353, 0.000263 }, { 323, 0.000168 } };
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++) {
        double p = exp(first[probs[i].id] - mx) / sum;
        CHECK_NEAR(p, probs[i].p, 1e-4);
        printf("p(%d) = %.6f (llama.cpp %.6f)\n", probs[i].id, p, probs[i].p);
    }
    nook_session_free(s);

    /* greedy 40 tokens after [BOS] Once upon a time */
    const nook_token want40[40] = { 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410,
                                    408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370,
                                    432, 352, 266, 268, 388, 426 };
    nook_token got[64];
    s = new_session(m, 1, 256);
    greedy(s, n_vocab, want_prompt, 5, 40, got);
    int first_diff = -1;
    for (int i = 0; i < 40 && first_diff < 0; i++) if (got[i] != want40[i]) first_diff = i;
    CHECK_MSG(first_diff < 0, "greedy differs from llama.cpp at token %d", first_diff);
    char text40[1024] = "";
    nook_detok dt;
    nook_detok_init(&dt, m, false);
    for (int i = 0; i < 40; i++) {
        char buf[256];
        nook_detok_push(&dt, got[i], buf, sizeof buf);
        strncat(text40, buf, sizeof text40 - strlen(text40) - 1);
    }
    CHECK_STR(text40, ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.");
    nook_session_free(s);

    /* the same with 2 threads: identical tokens and identical first logits */
    s = new_session(m, 2, 256);
    nook_token got2[40];
    CHECK_EQ_INT(nook_session_decode(s, want_prompt, 5, NULL, &err), NOOK_OK);
    CHECK(memcmp(nook_session_logits(s), first, sizeof first) == 0);
    nook_session_truncate(s, 0);
    greedy(s, n_vocab, want_prompt, 5, 40, got2);
    CHECK(memcmp(got, got2, sizeof got2) == 0);
    nook_session_free(s);

    /* batched prompt (all positions) vs one token at a time */
    static float all[5 * 512];
    s = new_session(m, 1, 256);
    CHECK_EQ_INT(nook_session_decode(s, want_prompt, 5, all, &err), NOOK_OK);
    nook_session_free(s);
    s = new_session(m, 1, 256);
    double maxd = 0;
    for (int t = 0; t < 5; t++) {
        CHECK_EQ_INT(nook_session_decode(s, &want_prompt[t], 1, NULL, &err), NOOK_OK);
        const float *l = nook_session_logits(s);
        for (int i = 0; i < n_vocab; i++) maxd = fmax(maxd, fabs(l[i] - all[t * n_vocab + i]));
    }
    CHECK_MSG(maxd <= 1e-5, "batched vs sequential: max |diff| %g", maxd);
    nook_session_free(s);

    /* greedy from BOS alone, 64 tokens: llama2.c's published text */
    s = new_session(m, 1, 256);
    const nook_token bos = nook_token_bos(m);
    CHECK_EQ_INT(bos, 1);
    greedy(s, n_vocab, &bos, 1, 64, got);
    char text64[2048] = "";
    nook_detok_init(&dt, m, false);
    for (int i = 0; i < 64; i++) {
        char buf[256];
        nook_detok_push(&dt, got[i], buf, sizeof buf);
        strncat(text64, buf, sizeof text64 - strlen(text64) - 1);
    }
    char rest[16];
    nook_detok_flush(&dt, rest, sizeof rest);
    strncat(text64, rest, sizeof text64 - strlen(text64) - 1);
    /* SPM pieces carry their word's leading space; llama2.c drops the one after BOS */
    CHECK(text64[0] == ' ');
    CHECK_STR(text64 + 1, "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                      "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily");
    nook_session_free(s);

    /* speed (printed, never asserted): prompt of 128 tokens, then 128 decodes */
    for (int nt = 1; nt <= 2; nt++) {
        s = new_session(m, nt, 512);
        nook_token pp[128];
        for (int i = 0; i < 128; i++) pp[i] = (nook_token)(3 + (i * 37) % 500);
        double t0 = now_ms();
        CHECK_EQ_INT(nook_session_decode(s, pp, 128, NULL, &err), NOOK_OK);
        double t1 = now_ms();
        nook_token tok = argmax(nook_session_logits(s), n_vocab);
        for (int i = 0; i < 128; i++) {
            CHECK_EQ_INT(nook_session_decode(s, &tok, 1, NULL, &err), NOOK_OK);
            tok = argmax(nook_session_logits(s), n_vocab);
        }
        double t2 = now_ms();
        printf("stories260K, %d thread(s): pp128 %.0f tok/s, tg128 %.0f tok/s\n", nt, 128 / ((t1 - t0) / 1e3),
               128 / ((t2 - t1) / 1e3));
        nook_session_free(s);
    }
    nook_model_free(m);
    NK_TEST_DONE();
}

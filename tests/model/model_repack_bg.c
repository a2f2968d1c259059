/*
 * model_repack_bg.c: the Q4_K/Q6_K weights re-laid on a thread after load
 * (src/model/repack.c) never change a result.
 *
 * A random-weight qwen3-shaped Q4_K_M file (model_arch.h's writer; tied output, so
 * get_rows reads the copy too) is decoded right after nook_model_load returns, while
 * the copies are being made (two sequences in one batch, 2 threads), again after
 * nook_model_wait_ready, and with the copies made before the load returns
 * (NOOK_REPACK_SYNC=1) or a private copy of the file (no_mmap, which repacks before
 * returning too): every logit must have the same bits in all of them. Models freed
 * while their copies are still being made must stop cleanly (ASan: nothing leaks;
 * TSan, CI's suite: the publication is race-free). The tensor-level check that a
 * matrix whose copy is pending runs the copy's bits is in test_gemm_r16.
 */
#include "model_arch.h"
#include "tensor/ops_gemm.h"

#include <unistd.h>

static const arch_cfg CFG = {
    .name = "qwen3", .arch = "qwen3", .n_embd = 512, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 128,
    .n_ff = 1536, .n_ctx = 40960, .tied = true, .key_length = true, .qk_norm = true, .rope_base = 1e6f, .eps = 1e-6f,
};

enum { N_SEQ = 2, N_TOK = 6 };

/* Logits of every entry of a 2-sequence prompt batch, then of one more step of both:
 * (N_SEQ * N_TOK + N_SEQ) * n_vocab floats into out. */
static void decode(nook_model *m, float *out) {
    const int nv = nook_model_n_vocab(m);
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = 2;
    sp.n_seq_max = N_SEQ;
    sp.n_ctx = 64;
    nook_session *s = NULL;
    nook_error err = { 0 };
    nook_batch b = { 0 };
    CHECK(nook_session_new(m, &sp, &s, &err) == NOOK_OK);
    CHECK(nook_batch_init(&b, N_SEQ * N_TOK, &err) == NOOK_OK);
    if (!s || !b.token) goto done;
    for (int t = 0; t < N_TOK; t++)
        for (int q = 0; q < N_SEQ; q++) nook_batch_add(&b, (nook_token)(1 + 37 * q + 11 * t) % nv, t, q, true);
    CHECK(nook_session_decode_batch(s, &b, &err) == NOOK_OK);
    for (int i = 0; i < N_SEQ * N_TOK; i++) {
        const float *l = nook_session_logits_ith(s, i);
        CHECK(l != NULL);
        if (l) memcpy(out + (size_t)i * (size_t)nv, l, sizeof(float) * (size_t)nv);
    }
    nook_batch_clear(&b);
    for (int q = 0; q < N_SEQ; q++) nook_batch_add(&b, (nook_token)(5 + q), N_TOK, q, true);
    CHECK(nook_session_decode_batch(s, &b, &err) == NOOK_OK);
    for (int q = 0; q < N_SEQ; q++) {
        const float *l = nook_session_logits_ith(s, q);
        CHECK(l != NULL);
        if (l) memcpy(out + (size_t)(N_SEQ * N_TOK + q) * (size_t)nv, l, sizeof(float) * (size_t)nv);
    }
done:
    nook_batch_free(&b);
    nook_session_free(s);
}

int main(void) {
    if (!nk_gemm_r16_q4_K()) nk_test_skip("no AVX-512 VNNI on this CPU: nothing is repacked");
    char path[256];
    snprintf(path, sizeof path, "/tmp/nook-repack-bg-%d.gguf", (int)getpid());
    CHECK_EQ_INT(arch_write(&CFG, FT_Q4_K_M, path), 0);
    nook_error err = { 0 };
    nook_model *m = NULL;

    /* the reference: copies made before the load returns */
    setenv("NOOK_REPACK_SYNC", "1", 1);
    CHECK(nook_model_load(path, NULL, &m, &err) == NOOK_OK);
    unsetenv("NOOK_REPACK_SYNC");
    if (!m) {
        remove(path);
        NK_TEST_DONE();
    }
    const size_t n = (size_t)(N_SEQ * N_TOK + N_SEQ) * (size_t)nook_model_n_vocab(m);
    float *ref = nk_malloc(sizeof(float) * n), *got = nk_malloc(sizeof(float) * n);
    decode(m, ref);
    nook_model_free(m);

    for (int rep = 0; rep < (ARCH_SANITIZED ? 1 : 3); rep++) {
        m = NULL;
        CHECK(nook_model_load(path, NULL, &m, &err) == NOOK_OK);
        if (!m) break;
        memset(got, 0, sizeof(float) * n);
        decode(m, got);   /* at once: copies still being made */
        CHECK_MSG(memcmp(ref, got, sizeof(float) * n) == 0, "rep %d: decoding during the copies changed bits", rep);
        nook_model_wait_ready(m);
        nook_model_wait_ready(m);   /* again: returns at once */
        memset(got, 0, sizeof(float) * n);
        decode(m, got);
        CHECK_MSG(memcmp(ref, got, sizeof(float) * n) == 0, "rep %d: bits after the copies differ", rep);
        nook_model_free(m);
    }

    /* a private copy of the file: repacked before the load returns */
    nook_model_params mp = nook_model_default_params();
    mp.no_mmap = true;
    m = NULL;
    CHECK(nook_model_load(path, &mp, &m, &err) == NOOK_OK);
    if (m) {
        memset(got, 0, sizeof(float) * n);
        decode(m, got);
        CHECK_MSG(memcmp(ref, got, sizeof(float) * n) == 0, "no_mmap: bits differ");
        nook_model_free(m);
    }

    /* freed while copying (and at every moment around it): stops, joins, frees */
    for (int rep = 0; rep < (ARCH_SANITIZED ? 2 : 4); rep++) {
        m = NULL;
        CHECK(nook_model_load(path, NULL, &m, &err) == NOOK_OK);
        if (rep & 1) usleep(200 * (useconds_t)rep);
        nook_model_free(m);
    }
    nk_free(ref);
    nk_free(got);
    remove(path);
    NK_TEST_DONE();
}

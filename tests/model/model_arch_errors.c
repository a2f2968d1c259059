/*
 * model_arch_errors.c: the architecture files refuse malformed or unsupported files with
 * a status and a message naming the problem (tiny models from model_arch.h with one
 * tensor left out, or extra Phi-3 longrope tensors), and load the intact ones.
 */
#include "model_arch.h"

static const arch_cfg QWEN3 = { .name = "e-qwen3", .arch = "qwen3", .n_embd = 64, .n_layer = 2, .n_head = 2,
    .n_head_kv = 1, .head_dim = 64, .n_ff = 128, .n_ctx = 256, .tied = true, .key_length = true, .qk_norm = true,
    .rope_base = 1e6f, .eps = 1e-6f };
static const arch_cfg QWEN2 = { .name = "e-qwen2", .arch = "qwen2", .n_embd = 64, .n_layer = 2, .n_head = 2,
    .n_head_kv = 1, .head_dim = 32, .n_ff = 128, .n_ctx = 256, .tied = true, .qkv_bias = true, .rope_base = 1e6f,
    .eps = 1e-6f };
static const arch_cfg GEMMA3 = { .name = "e-gemma3", .arch = "gemma3", .n_embd = 64, .n_layer = 2, .n_head = 2,
    .n_head_kv = 1, .head_dim = 32, .n_ff = 128, .n_ctx = 256, .tied = true, .key_length = true, .qk_norm = true,
    .post_norms = true, .rope_base = 1e6f, .eps = 1e-6f, .n_swa = 8 };
static const arch_cfg PHI3 = { .name = "e-phi3", .arch = "phi3", .n_embd = 192, .n_layer = 2, .n_head = 2,
    .n_head_kv = 2, .head_dim = 96, .n_ff = 128, .n_ctx = 256, .rope_dim = true, .fused = true,
    .rope_base = 10000.0f, .eps = 1e-5f };

/* Write c (F32) with the given skip/longrope, load it, expect status want and, on
 * failure, a message containing `needle`. */
static void expect(const arch_cfg *base, const char *skip, bool longrope, nook_status want, const char *needle) {
    arch_cfg c = *base;
    c.skip = skip;
    c.longrope = longrope;
    char path[256];
    snprintf(path, sizeof path, "/tmp/nook-arch-err-%s-%d.gguf", c.name, (int)getpid());
    CHECK_MSG(arch_write(&c, FT_F32, path) == 0, "writing %s", path);
    nook_model *m = NULL;
    nook_error err = { 0 };
    nook_status st = nook_model_load(path, NULL, &m, &err);
    CHECK_MSG(st == want, "%s skip=%s longrope=%d: status %d, want %d (%s)", c.name, skip ? skip : "-", longrope,
              (int)st, (int)want, err.msg);
    if (needle) CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", c.name, err.msg, needle);
    if (st == NOOK_OK) {
        /* an intact model runs: one decode gives finite logits */
        nook_session *s = NULL;
        nook_session_params sp = nook_session_default_params();
        sp.n_ctx = 32;
        sp.n_threads = 1;
        CHECK(nook_session_new(m, &sp, &s, &err) == NOOK_OK);
        const int ids[4] = { 1, 300, 301, 302 };
        CHECK(s && nook_session_decode(s, ids, 4, NULL, &err) == NOOK_OK);
        const float *l = s ? nook_session_logits(s) : NULL;
        int finite = l != NULL;
        for (int i = 0; l && i < nook_model_n_vocab(m); i++) finite &= isfinite(l[i]) != 0;
        CHECK_MSG(finite, "%s: non-finite logits", c.name);
        CHECK_STR(nook_model_arch(m), c.arch);
        nook_session_free(s);
    }
    nook_model_free(m);
    remove(path);
}

int main(void) {
    expect(&QWEN3, NULL, false, NOOK_OK, NULL);
    expect(&QWEN3, "blk.1.attn_k_norm.weight", false, NOOK_EFORMAT, "blk.1.attn_k_norm.weight");
    expect(&QWEN2, NULL, false, NOOK_OK, NULL);
    expect(&QWEN2, "blk.1.attn_v.bias", false, NOOK_EFORMAT, "blk.1.attn_v.bias");
    expect(&QWEN2, "blk.0.attn_q.bias", false, NOOK_EFORMAT, "blk.0.attn_q.bias");
    expect(&GEMMA3, NULL, false, NOOK_OK, NULL);
    expect(&GEMMA3, "blk.0.post_ffw_norm.weight", false, NOOK_EFORMAT, "blk.0.post_ffw_norm.weight");
    expect(&GEMMA3, "blk.1.attn_q_norm.weight", false, NOOK_EFORMAT, "blk.1.attn_q_norm.weight");
    expect(&PHI3, NULL, false, NOOK_OK, NULL);
    /* without the fused tensor phi3 looks for separate q/k/v, as llama.cpp does */
    expect(&PHI3, "blk.1.attn_qkv.weight", false, NOOK_EFORMAT, "blk.1.attn_q.weight");
    expect(&PHI3, "blk.0.ffn_up.weight", false, NOOK_EFORMAT, "blk.0.ffn_up.weight");
    expect(&PHI3, NULL, true, NOOK_EUNSUPPORTED, "longrope");
    NK_TEST_DONE();
}

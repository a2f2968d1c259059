/*
 * synth.h: writes a tiny random-weight llama GGUF with the gguf writer, so the
 * engine's fast tests run end to end without fixture models. Options let a test
 * break one thing at a time (architecture name, a missing tensor, a tensor type).
 */
#ifndef NK_TEST_SYNTH_H
#define NK_TEST_SYNTH_H

#include "gguf/gguf.h"
#include "tensor/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct synth_opts {
    const char *arch;        /* general.architecture (default "llama") */
    const char *skip;        /* name of a tensor to leave out, or NULL */
    uint32_t wtype;          /* type of the 2-D weights (default F32) */
    int n_ctx_train;         /* default 64 */
    bool tied;               /* no output.weight */
    const char *retype;      /* name of a tensor to store as retype_to (zeros) */
    uint32_t retype_to;
} synth_opts;

enum { SYN_EMBD = 32, SYN_FF = 64, SYN_HEAD = 4, SYN_HEAD_KV = 2, SYN_LAYER = 2, SYN_VOCAB = 46 };
/* ids 40..45 are byte tokens for these bytes (for detokenizer tests) */
static const unsigned char syn_bytes[6] = { 0xE2, 0x96, 0x81, 0xFF, 0xC3, 0xA9 };

static uint64_t syn_rng = 12345;
static float syn_rand(void) {
    syn_rng = syn_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((syn_rng >> 40) / (double)(1 << 24)) - 0.5f;
}

static int syn_add(gguf_writer *w, const synth_opts *o, const char *name, uint32_t type, int64_t ne0, int64_t ne1) {
    if (o->skip && strcmp(o->skip, name) == 0) return 0;
    if (o->retype && strcmp(o->retype, name) == 0) {
        size_t nbz = nk_row_size(o->retype_to, ne0) * (size_t)(ne1 ? ne1 : 1);
        void *z = calloc(1, nbz ? nbz : 1);
        uint64_t nez[2] = { (uint64_t)ne0, (uint64_t)ne1 };
        int rcz = gguf_add_tensor(w, name, o->retype_to, ne1 ? 2 : 1, nez, z, nbz);
        free(z);
        return rcz;
    }
    const int64_t n = ne0 * (ne1 ? ne1 : 1);
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++) f[i] = ne1 ? syn_rand() : 1.0f + 0.1f * syn_rand();
    size_t nb = nk_row_size(type, ne0) * (size_t)(ne1 ? ne1 : 1);
    void *data = malloc(nb);
    if (type == NK_TYPE_F32) memcpy(data, f, nb);
    else nk_type_get(type)->from_float(f, data, n);
    uint64_t ne[2] = { (uint64_t)ne0, (uint64_t)ne1 };
    int rc = gguf_add_tensor(w, name, type, ne1 ? 2 : 1, ne, data, nb);
    free(f);
    free(data);
    return rc;
}

/* Write the model to path; returns 0 on success. */
static int synth_write(const char *path, const synth_opts *o) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return -1;
    const char *arch = o->arch ? o->arch : "llama";
    uint32_t wt = o->wtype ? o->wtype : NK_TYPE_F32;
    char k[128];
    int rc = 0;
    rc |= gguf_set_str(w, "general.architecture", arch);
    rc |= gguf_set_str(w, "general.name", "synthetic");
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    rc |= gguf_set_u32(w, KEY("context_length"), (uint32_t)(o->n_ctx_train ? o->n_ctx_train : 64));
    rc |= gguf_set_u32(w, KEY("embedding_length"), SYN_EMBD);
    rc |= gguf_set_u32(w, KEY("block_count"), SYN_LAYER);
    rc |= gguf_set_u32(w, KEY("feed_forward_length"), SYN_FF);
    rc |= gguf_set_u32(w, KEY("attention.head_count"), SYN_HEAD);
    rc |= gguf_set_u32(w, KEY("attention.head_count_kv"), SYN_HEAD_KV);
    rc |= gguf_set_u32(w, KEY("rope.dimension_count"), SYN_EMBD / SYN_HEAD);
    rc |= gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    rc |= gguf_set_f32(w, KEY("rope.freq_base"), 10000.0f);
#undef KEY
    /* an SPM vocab: <unk> <s> </s>, then a few pieces */
    const char *toks[SYN_VOCAB];
    char store[SYN_VOCAB][16];
    float scores[SYN_VOCAB];
    int32_t types[SYN_VOCAB];
    const char *base[] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < SYN_VOCAB; i++) {
        if (i < 3) snprintf(store[i], sizeof store[i], "%s", base[i]);
        else if (i < 3 + 26) snprintf(store[i], sizeof store[i], "%c", 'a' + (i - 3));
        else if (i < 40) snprintf(store[i], sizeof store[i], "\xE2\x96\x81%c", 'a' + (i - 29));
        else snprintf(store[i], sizeof store[i], "<0x%02X>", syn_bytes[i - 40]);
        toks[i] = store[i];
        scores[i] = i < 3 || i >= 40 ? 0.0f : -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i >= 40 ? 6 : 1;
    }
    rc |= gguf_set_str(w, "tokenizer.ggml.model", "llama");
    rc |= gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, SYN_VOCAB);
    rc |= gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, SYN_VOCAB);
    rc |= gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, SYN_VOCAB);
    rc |= gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    rc |= gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    rc |= gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);

    const int hd = SYN_EMBD / SYN_HEAD;
    rc |= syn_add(w, o, "token_embd.weight", wt, SYN_EMBD, SYN_VOCAB);
    rc |= syn_add(w, o, "output_norm.weight", NK_TYPE_F32, SYN_EMBD, 0);
    if (!o->tied) rc |= syn_add(w, o, "output.weight", wt, SYN_EMBD, SYN_VOCAB);
    for (int l = 0; l < SYN_LAYER; l++) {
        char n[64];
#define T(s, ty, a, b) (snprintf(n, sizeof n, "blk.%d.%s", l, s), rc |= syn_add(w, o, n, ty, a, b))
        T("attn_norm.weight", NK_TYPE_F32, SYN_EMBD, 0);
        T("attn_q.weight", wt, SYN_EMBD, SYN_HEAD * hd);
        T("attn_k.weight", wt, SYN_EMBD, SYN_HEAD_KV * hd);
        T("attn_v.weight", wt, SYN_EMBD, SYN_HEAD_KV * hd);
        T("attn_output.weight", wt, SYN_HEAD * hd, SYN_EMBD);
        T("ffn_norm.weight", NK_TYPE_F32, SYN_EMBD, 0);
        T("ffn_gate.weight", wt, SYN_EMBD, SYN_FF);
        T("ffn_up.weight", wt, SYN_EMBD, SYN_FF);
        T("ffn_down.weight", wt, SYN_FF, SYN_EMBD);
#undef T
    }
    nook_error err;
    if (rc == 0) rc = gguf_write_file(w, path, &err);
    gguf_writer_free(w);
    return rc;
}

/* A fresh temporary file name under /tmp. */
static const char *synth_tmp(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/nook-%s-%d.gguf", tag, (int)getpid());
    return buf;
}

#endif

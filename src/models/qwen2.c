/*
 * qwen2.c: the "qwen2" architecture (Qwen2, Qwen2.5 dense, and models converted as
 * qwen2 such as DeepSeek-R1-Distill-Qwen).
 *
 * The llama-like skeleton with NEOX RoPE and biases on Q, K and V (not on the output
 * projection). llama.cpp requires the three biases, and so does nook: a qwen2 file
 * without them is malformed. Tied output on 0.5B-3B, untied from 7B.
 */
#include "model/arch.h"

static nook_status qwen2_hparams(nook_model *m, nook_error *err) {
    nook_status st = nk_hparams_llama_like(m, err);
    if (st) return st;
    m->hp.rope.mode = NK_ROPE_NEOX;
    m->hp.rope_swa = m->hp.rope;
    return NOOK_OK;
}

static nook_status qwen2_bind(nook_model *m, nook_error *err) {
    nook_status st = nk_bind_llama_like(m, err);
    if (st) return st;
    for (int i = 0; i < m->hp.n_layer; i++) {
        const nk_layer *L = &m->layers[i];
        const char *missing = !L->bq.data ? "attn_q" : !L->bk.data ? "attn_k" : !L->bv.data ? "attn_v" : NULL;
        if (missing) return nk_fail(err, NOOK_EFORMAT, "missing tensor blk.%d.%s.bias", i, missing);
    }
    return NOOK_OK;
}

const nk_arch nk_arch_qwen2 = {
    .name = "qwen2",
    .load_hparams = qwen2_hparams,
    .bind = qwen2_bind,
};

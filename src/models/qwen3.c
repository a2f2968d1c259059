/*
 * qwen3.c: the "qwen3" architecture (Qwen3 dense: 0.6B ... 32B).
 *
 * The llama-like skeleton with NEOX RoPE (rotate halves; Qwen weights are not
 * permuted) and a per-head RMSNorm on Q and K before RoPE (attn_q_norm/attn_k_norm,
 * [head_dim], shared by all heads). Head dim comes from attention.key_length (128),
 * which is not n_embd / n_head. Tied output on the small models, untied from 8B.
 */
#include "model/arch.h"

static nook_status qwen3_hparams(nook_model *m, nook_error *err) {
    nook_status st = nk_hparams_llama_like(m, err);
    if (st) return st;
    m->hp.rope.mode = NK_ROPE_NEOX;
    m->hp.rope_swa = m->hp.rope;
    return NOOK_OK;
}

static nook_status qwen3_bind(nook_model *m, nook_error *err) {
    nook_status st = nk_bind_llama_like(m, err);
    if (st) return st;
    const int64_t hd = m->hp.head_dim_k;
    for (int i = 0; i < m->hp.n_layer; i++) {
        nk_layer *L = &m->layers[i];
        if ((st = nk_bind(m, &L->q_norm, NK_USE_F32, true, hd, 0, err, "blk.%d.attn_q_norm.weight", i))) return st;
        if ((st = nk_bind(m, &L->k_norm, NK_USE_F32, true, hd, 0, err, "blk.%d.attn_k_norm.weight", i))) return st;
    }
    return NOOK_OK;
}

const nk_arch nk_arch_qwen3 = {
    .name = "qwen3",
    .load_hparams = qwen3_hparams,
    .bind = qwen3_bind,
};

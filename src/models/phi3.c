/*
 * phi3.c: the "phi3" architecture (Phi-3 / Phi-3.5 mini and medium, Phi-4 mini).
 *
 * The llama-like skeleton with NEOX RoPE and two fused weights:
 *  - attn_qkv [n_embd, n_q + n_k + n_v]: rows Q | K | V (separate attn_q/k/v are
 *    accepted too, as llama.cpp does);
 *  - ffn_up [n_embd, 2*n_ff]: rows gate | up, SwiGLU = silu(first half) * second half;
 *    there is no ffn_gate tensor.
 * A weight's rows are contiguous in the file whatever its type, so each part is bound
 * as a row-range view of the fused tensor: no copy, and each output row is the same
 * vec_dot on the same bytes as in the fused matmul, so the numbers are unchanged.
 * Q is multiplied by 1/sqrt(head_dim) after RoPE and the scores are not scaled again,
 * as llama.cpp does. The sliding_window key Phi-3 files carry is ignored: llama.cpp
 * disables Phi-3 SWA. Longrope variants (128k: rope_factors_long/short) are refused:
 * llama.cpp picks the factor set by the context size, which nook does not model yet.
 */
#include "model/arch.h"

#include <math.h>

static nook_status phi3_hparams(nook_model *m, nook_error *err) {
    nk_hparams *hp = &m->hp;
    nook_status st = nk_hparams_llama_like(m, err);
    if (st) return st;
    hp->rope.mode = NK_ROPE_NEOX;
    hp->rope_swa = hp->rope;
    hp->q_scale = 1.0f / sqrtf((float)hp->head_dim_k);
    hp->attn_scale = 1.0f;
    hp->n_swa = 0;
    return NOOK_OK;
}

/* Rows [r0, r0 + n) of a bound 2-D weight, as a weight of its own. */
static nk_tensor row_view(const nk_tensor *t, int64_t r0, int64_t n) {
    nk_tensor v = *t;
    v.data = (const uint8_t *)t->data + (size_t)r0 * t->nb1;
    v.ne[1] = n;
    return v;
}

static nook_status phi3_bind(nook_model *m, nook_error *err) {
    const nk_hparams *hp = &m->hp;
    const int64_t n_embd = hp->n_embd, n_ff = hp->n_ff;
    const int64_t n_q = (int64_t)hp->n_head * hp->head_dim_k;
    const int64_t n_k = (int64_t)hp->n_head_kv * hp->head_dim_k;
    const int64_t n_v = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t n_o = (int64_t)hp->n_head * hp->head_dim_v;
    nook_status st;

    if (gguf_find_tensor(m->gguf, "rope_factors_long.weight") || gguf_find_tensor(m->gguf, "blk.0.rope_factors_long.weight"))
        return nk_fail(err, NOOK_EUNSUPPORTED, "phi3 longrope (rope_factors_long/short, 128k variants) is not supported by nook");
    if ((st = nk_bind_globals(m, err))) return st;

    for (int i = 0; i < hp->n_layer; i++) {
        nk_layer *L = &m->layers[i];
        if ((st = nk_bind(m, &L->attn_norm, NK_USE_F32, true, n_embd, 0, err, "blk.%d.attn_norm.weight", i))) return st;
        nk_tensor qkv;
        if ((st = nk_bind(m, &qkv, NK_USE_MATMUL, false, n_embd, n_q + n_k + n_v, err, "blk.%d.attn_qkv.weight", i)))
            return st;
        if (qkv.data) {
            L->wq = row_view(&qkv, 0, n_q);
            L->wk = row_view(&qkv, n_q, n_k);
            L->wv = row_view(&qkv, n_q + n_k, n_v);
        } else {
            if ((st = nk_bind(m, &L->wq, NK_USE_MATMUL, true, n_embd, n_q, err, "blk.%d.attn_q.weight", i))) return st;
            if ((st = nk_bind(m, &L->wk, NK_USE_MATMUL, true, n_embd, n_k, err, "blk.%d.attn_k.weight", i))) return st;
            if ((st = nk_bind(m, &L->wv, NK_USE_MATMUL, true, n_embd, n_v, err, "blk.%d.attn_v.weight", i))) return st;
        }
        if ((st = nk_bind(m, &L->wo, NK_USE_MATMUL, true, n_o, n_embd, err, "blk.%d.attn_output.weight", i))) return st;
        if ((st = nk_bind(m, &L->ffn_norm, NK_USE_F32, true, n_embd, 0, err, "blk.%d.ffn_norm.weight", i))) return st;
        nk_tensor up;
        if ((st = nk_bind(m, &up, NK_USE_MATMUL, true, n_embd, 2 * n_ff, err, "blk.%d.ffn_up.weight", i))) return st;
        L->ffn_gate = row_view(&up, 0, n_ff);
        L->ffn_up = row_view(&up, n_ff, n_ff);
        if ((st = nk_bind(m, &L->ffn_down, NK_USE_MATMUL, true, n_ff, n_embd, err, "blk.%d.ffn_down.weight", i))) return st;
    }
    return NOOK_OK;
}

const nk_arch nk_arch_phi3 = {
    .name = "phi3",
    .load_hparams = phi3_hparams,
    .bind = phi3_bind,
};

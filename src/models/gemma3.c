/*
 * gemma3.c: the "gemma3" architecture (Gemma 3 text models, 270M ... 27B).
 *
 * Differences from the llama-like skeleton, all as llama.cpp runs it:
 *  - NEOX RoPE; the input embeddings are multiplied by sqrt(n_embd);
 *  - per-head RMSNorm on Q and K before RoPE (like qwen3);
 *  - Q is multiplied by f_attention_scale after RoPE and the scores are not scaled
 *    again (kq scale 1): 1/sqrt(head_dim), or 1/sqrt(n_embd/n_head) for the 27B
 *    (62 layers), as llama.cpp decides by layer count;
 *  - post-attention and post-FFN RMSNorms on each block's output before the residual add;
 *  - GeGLU FFN (tanh GELU through ggml's f16 table, see nk_geglu);
 *  - interleaved sliding window: with attention.sliding_window > 0, layer il is local
 *    iff il % 6 < 5 (llama.cpp fixes the pattern at 6; the file does not state it).
 *    Local layers use RoPE base 10000 and no scaling; global layers use the file's base
 *    and rope.scaling (linear x8 on 4B/12B/27B).
 * The stored norm weights already include Gemma's "+1" (the converter adds it), so
 * they are applied as plain RMSNorm weights. Output is tied to token_embd.
 */
#include "model/arch.h"

#include <math.h>

static nook_status gemma3_hparams(nook_model *m, nook_error *err) {
    nk_hparams *hp = &m->hp;
    nook_status st = nk_hparams_llama_like(m, err);
    if (st) return st;
    hp->rope.mode = NK_ROPE_NEOX;
    hp->ffn_act = NK_FFN_GEGLU;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    const float scale = hp->n_layer == 62 ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head))
                                          : 1.0f / sqrtf((float)hp->head_dim_k);
    hp->q_scale = scale;
    hp->attn_scale = 1.0f;

    float softcap = 0.0f;
    if ((st = nk_hp_f32(m, "final_logit_softcapping", false, &softcap, err))) return st;
    if ((st = nk_hp_u32(m, "attention.sliding_window", false, &hp->n_swa, err))) return st;
    if (hp->n_swa > 0) {
        /* llama.cpp's sliding-window build ignores final_logit_softcapping */
        hp->swa_pattern = 6;
        hp->rope_swa = hp->rope;
        hp->rope_swa.freq_base = 10000.0f;
        hp->rope_swa.freq_scale = 1.0f;
    } else {
        hp->n_swa = 0;
        hp->swa_pattern = 0;
        hp->rope_swa = hp->rope;
        if (softcap != 0.0f)
            return nk_fail(err, NOOK_EUNSUPPORTED,
                           "gemma3 without a sliding window but with final_logit_softcapping %g is not supported by nook",
                           (double)softcap);
    }
    return NOOK_OK;
}

static nook_status gemma3_bind(nook_model *m, nook_error *err) {
    nook_status st = nk_bind_llama_like(m, err);
    if (st) return st;
    const int64_t hd = m->hp.head_dim_k, n_embd = m->hp.n_embd;
    for (int i = 0; i < m->hp.n_layer; i++) {
        nk_layer *L = &m->layers[i];
        if ((st = nk_bind(m, &L->q_norm, NK_USE_F32, true, hd, 0, err, "blk.%d.attn_q_norm.weight", i))) return st;
        if ((st = nk_bind(m, &L->k_norm, NK_USE_F32, true, hd, 0, err, "blk.%d.attn_k_norm.weight", i))) return st;
        if ((st = nk_bind(m, &L->post_attn_norm, NK_USE_F32, true, n_embd, 0, err,
                          "blk.%d.post_attention_norm.weight", i))) return st;
        if ((st = nk_bind(m, &L->post_ffn_norm, NK_USE_F32, true, n_embd, 0, err,
                          "blk.%d.post_ffw_norm.weight", i))) return st;
    }
    return NOOK_OK;
}

const nk_arch nk_arch_gemma3 = {
    .name = "gemma3",
    .load_hparams = gemma3_hparams,
    .bind = gemma3_bind,
};

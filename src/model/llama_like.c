/*
 * llama_like.c: hyperparameters and tensors common to the llama family (llama,
 * mistral, qwen2/3, gemma3, phi3 all start from these and adjust).
 */
#include "model/arch.h"

#include <math.h>
#include <string.h>

/* Generous limits: they stop size arithmetic from overflowing on hostile metadata,
 * far above any real model. */
#define MAX_DIM   (1 << 20)
#define MAX_LAYER 4096
#define MAX_HEAD  4096

static nook_status check_range(const char *what, int v, int lo, int hi, nook_error *err) {
    if (v < lo || v > hi) return nk_fail(err, NOOK_EFORMAT, "%s = %d is out of range [%d, %d]", what, v, lo, hi);
    return NOOK_OK;
}

nook_status nk_hparams_llama_like(nook_model *m, nook_error *err) {
    nk_hparams *hp = &m->hp;
    nook_status st;
    if ((st = nk_hp_u32(m, "context_length", true, &hp->n_ctx_train, err))) return st;
    if ((st = nk_hp_u32(m, "embedding_length", true, &hp->n_embd, err))) return st;
    if ((st = nk_hp_u32(m, "block_count", true, &hp->n_layer, err))) return st;
    if ((st = nk_hp_u32(m, "feed_forward_length", true, &hp->n_ff, err))) return st;
    if ((st = nk_hp_u32(m, "attention.head_count", true, &hp->n_head, err))) return st;
    if ((st = check_range("n_embd", hp->n_embd, 1, MAX_DIM, err))) return st;
    if ((st = check_range("n_layer", hp->n_layer, 1, MAX_LAYER, err))) return st;
    if ((st = check_range("n_ff", hp->n_ff, 1, MAX_DIM, err))) return st;
    if ((st = check_range("n_head", hp->n_head, 1, MAX_HEAD, err))) return st;
    if ((st = check_range("n_ctx_train", hp->n_ctx_train, 1, INT32_MAX, err))) return st;
    if ((st = check_range("n_vocab", hp->n_vocab, 1, INT32_MAX / 2, err))) return st;

    hp->n_head_kv = hp->n_head;
    if ((st = nk_hp_u32(m, "attention.head_count_kv", false, &hp->n_head_kv, err))) return st;
    if ((st = check_range("n_head_kv", hp->n_head_kv, 1, hp->n_head, err))) return st;
    if (hp->n_head % hp->n_head_kv != 0)
        return nk_fail(err, NOOK_EFORMAT, "n_head %d is not a multiple of n_head_kv %d", hp->n_head, hp->n_head_kv);

    hp->head_dim_k = hp->n_embd / hp->n_head;
    if ((st = nk_hp_u32(m, "attention.key_length", false, &hp->head_dim_k, err))) return st;
    hp->head_dim_v = hp->head_dim_k;
    if ((st = nk_hp_u32(m, "attention.value_length", false, &hp->head_dim_v, err))) return st;
    if ((st = check_range("head_dim_k", hp->head_dim_k, 1, MAX_DIM, err))) return st;
    if ((st = check_range("head_dim_v", hp->head_dim_v, 1, MAX_DIM, err))) return st;
    if ((int64_t)hp->n_head * hp->head_dim_k > MAX_DIM || (int64_t)hp->n_head * hp->head_dim_v > MAX_DIM)
        return nk_fail(err, NOOK_EFORMAT, "n_head x head_dim is too large");

    if ((st = nk_hp_f32(m, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps, err))) return st;
    if (!(hp->rms_eps >= 0.0f) || !isfinite(hp->rms_eps))
        return nk_fail(err, NOOK_EFORMAT, "layer_norm_rms_epsilon %g is invalid", (double)hp->rms_eps);

    /* RoPE: NORM (adjacent pairs) for the llama arch; others switch to NEOX */
    nk_rope *r = &hp->rope;
    r->mode = NK_ROPE_NORM;
    r->n_rot = hp->head_dim_k;
    if ((st = nk_hp_u32(m, "rope.dimension_count", false, &r->n_rot, err))) return st;
    if (r->n_rot < 2 || r->n_rot > hp->head_dim_k || r->n_rot % 2)
        return nk_fail(err, NOOK_EFORMAT, "rope.dimension_count %d must be even and in [2, head_dim %d]",
                       r->n_rot, hp->head_dim_k);
    r->freq_base = 10000.0f;
    if ((st = nk_hp_f32(m, "rope.freq_base", false, &r->freq_base, err))) return st;
    if (!(r->freq_base > 0.0f) || !isfinite(r->freq_base))
        return nk_fail(err, NOOK_EFORMAT, "rope.freq_base %g is invalid", (double)r->freq_base);

    char type[32];
    nk_hp_str(m, "rope.scaling.type", type, sizeof type);
    float factor = 0.0f;
    if ((st = nk_hp_f32(m, "rope.scaling.factor", false, &factor, err))) return st;
    if (factor == 0.0f && (st = nk_hp_f32(m, "rope.scale_linear", false, &factor, err))) return st;
    if (factor == 0.0f) factor = 1.0f;
    if (!(factor > 0.0f) || !isfinite(factor))
        return nk_fail(err, NOOK_EFORMAT, "rope.scaling.factor %g is invalid", (double)factor);
    r->freq_scale = 1.0f;
    r->ext_factor = 0.0f;
    r->attn_factor = 1.0f;
    r->beta_fast = 32.0f;
    r->beta_slow = 1.0f;
    r->n_ctx_orig = hp->n_ctx_train;
    if ((st = nk_hp_u32(m, "rope.scaling.original_context_length", false, &r->n_ctx_orig, err))) return st;
    if (type[0] == 0 || strcmp(type, "linear") == 0) {
        r->freq_scale = 1.0f / factor;
    } else if (strcmp(type, "none") == 0) {
        r->freq_scale = 1.0f;
    } else if (strcmp(type, "yarn") == 0) {
        r->freq_scale = 1.0f / factor;
        r->ext_factor = 1.0f;
        if ((st = nk_hp_f32(m, "rope.scaling.attn_factor", false, &r->attn_factor, err))) return st;
        if ((st = nk_hp_f32(m, "rope.scaling.yarn_beta_fast", false, &r->beta_fast, err))) return st;
        if ((st = nk_hp_f32(m, "rope.scaling.yarn_beta_slow", false, &r->beta_slow, err))) return st;
    } else {
        return nk_fail(err, NOOK_EUNSUPPORTED, "%s.rope.scaling.type \"%s\" is not supported by nook",
                       m->arch_name, type);
    }

    hp->ffn_act = NK_FFN_SWIGLU;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim_k);
    hp->q_scale = 1.0f;
    hp->embd_scale = 1.0f;
    hp->n_swa = 0;
    hp->swa_pattern = 0;
    hp->rope_swa = *r;
    return NOOK_OK;
}

nook_status nk_bind_globals(nook_model *m, nook_error *err) {
    const int64_t n_embd = m->hp.n_embd, n_vocab = m->hp.n_vocab;
    nook_status st;
    if ((st = nk_bind(m, &m->tok_embd, NK_USE_ROWS, true, n_embd, n_vocab, err, "token_embd.weight"))) return st;
    if ((st = nk_bind(m, &m->output_norm, NK_USE_F32, true, n_embd, 0, err, "output_norm.weight"))) return st;
    if ((st = nk_bind(m, &m->output, NK_USE_MATMUL, false, n_embd, n_vocab, err, "output.weight"))) return st;
    if (!m->output.data) {
        /* tied embeddings: the classifier is token_embd */
        if (!nk_matmul_supported(m->tok_embd.type, n_embd))
            return nk_fail(err, NOOK_EUNSUPPORTED, "tensor token_embd.weight (used as output) has type %s, which nook does not support for matmul",
                           nk_type_name(m->tok_embd.type));
        m->output = m->tok_embd;
    }
    return NOOK_OK;
}

nook_status nk_bind_llama_like(nook_model *m, nook_error *err) {
    const nk_hparams *hp = &m->hp;
    const int64_t n_embd = hp->n_embd, n_ff = hp->n_ff;
    const int64_t n_q = (int64_t)hp->n_head * hp->head_dim_k;
    const int64_t n_k = (int64_t)hp->n_head_kv * hp->head_dim_k;
    const int64_t n_v = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t n_o = (int64_t)hp->n_head * hp->head_dim_v;
    nook_status st;

    if ((st = nk_bind_globals(m, err))) return st;
    if ((st = nk_bind(m, &m->rope_freqs, NK_USE_F32, false, hp->rope.n_rot / 2, 0, err, "rope_freqs.weight"))) return st;
    if (m->rope_freqs.data) m->hp.rope.freq_factors = m->rope_freqs.data;

    for (int i = 0; i < hp->n_layer; i++) {
        nk_layer *L = &m->layers[i];
        if ((st = nk_bind(m, &L->attn_norm, NK_USE_F32, true, n_embd, 0, err, "blk.%d.attn_norm.weight", i))) return st;
        if ((st = nk_bind(m, &L->wq, NK_USE_MATMUL, true, n_embd, n_q, err, "blk.%d.attn_q.weight", i))) return st;
        if ((st = nk_bind(m, &L->wk, NK_USE_MATMUL, true, n_embd, n_k, err, "blk.%d.attn_k.weight", i))) return st;
        if ((st = nk_bind(m, &L->wv, NK_USE_MATMUL, true, n_embd, n_v, err, "blk.%d.attn_v.weight", i))) return st;
        if ((st = nk_bind(m, &L->wo, NK_USE_MATMUL, true, n_o, n_embd, err, "blk.%d.attn_output.weight", i))) return st;
        if ((st = nk_bind(m, &L->bq, NK_USE_F32, false, n_q, 0, err, "blk.%d.attn_q.bias", i))) return st;
        if ((st = nk_bind(m, &L->bk, NK_USE_F32, false, n_k, 0, err, "blk.%d.attn_k.bias", i))) return st;
        if ((st = nk_bind(m, &L->bv, NK_USE_F32, false, n_v, 0, err, "blk.%d.attn_v.bias", i))) return st;
        if ((st = nk_bind(m, &L->bo, NK_USE_F32, false, n_embd, 0, err, "blk.%d.attn_output.bias", i))) return st;
        if ((st = nk_bind(m, &L->ffn_norm, NK_USE_F32, true, n_embd, 0, err, "blk.%d.ffn_norm.weight", i))) return st;
        if ((st = nk_bind(m, &L->ffn_gate, NK_USE_MATMUL, true, n_embd, n_ff, err, "blk.%d.ffn_gate.weight", i))) return st;
        if ((st = nk_bind(m, &L->ffn_up, NK_USE_MATMUL, true, n_embd, n_ff, err, "blk.%d.ffn_up.weight", i))) return st;
        if ((st = nk_bind(m, &L->ffn_down, NK_USE_MATMUL, true, n_ff, n_embd, err, "blk.%d.ffn_down.weight", i))) return st;
    }
    return NOOK_OK;
}

/*
 * llama.c: the "llama" architecture (Llama 1/2/3.x, Mistral 7B, Mixtral-free
 * derivatives, TinyLlama, llama2.c checkpoints converted by llama.cpp).
 *
 * Everything is the llama-like skeleton: NORM RoPE (adjacent pairs; the converter
 * permutes Q/K rows for it), SwiGLU FFN, kq scale 1/sqrt(head_dim), optional
 * rope_freqs (Llama 3.1+ scaling baked into a tensor), tied or untied output.
 */
#include "model/arch.h"

static nook_status llama_hparams(nook_model *m, nook_error *err) {
    return nk_hparams_llama_like(m, err);
}

static nook_status llama_bind(nook_model *m, nook_error *err) {
    return nk_bind_llama_like(m, err);
}

const nk_arch nk_arch_llama = {
    .name = "llama",
    .load_hparams = llama_hparams,
    .bind = llama_bind,
};

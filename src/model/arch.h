/*
 * arch.h: the architecture registry and the model's internal representation.
 *
 * An architecture is a small table (nk_arch): its general.architecture name, a
 * function that reads its hyperparameters from metadata, and a function that binds
 * and validates its tensors. Its forward pass is the shared llama-like skeleton in
 * session.c, steered by the choices the arch writes into nk_hparams (rope mode, FFN
 * activation, q/k norms, extra norms, embedding scale). An architecture whose
 * forward pass does not fit the skeleton supplies its own `forward`.
 *
 * Adding an architecture = one file in src/models/ defining an nk_arch, plus one
 * line in the registry (model.c).
 */
#ifndef NOOK_MODEL_ARCH_H
#define NOOK_MODEL_ARCH_H

#include "gguf/gguf.h"
#include "tensor/ops.h"
#include "tokenizer/tokenizer.h"

typedef enum { NK_FFN_SWIGLU = 0, NK_FFN_GEGLU } nk_ffn_act;

/* Hyperparameters, always read from metadata. */
typedef struct nk_hparams {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    int n_head, n_head_kv, head_dim_k, head_dim_v;
    float rms_eps;
    nk_rope rope;              /* mode, n_rot, base, scaling (freq_factors bound later) */
    nk_ffn_act ffn_act;
    float attn_scale;          /* kq scale (default 1/sqrt(head_dim_k)) */
    float q_scale;             /* Q multiplied by this after RoPE, before attention (1: none);
                                * gemma3/phi3 scale Q this way with a kq scale of 1, which
                                * rounds differently from scaling the scores */
    float embd_scale;          /* input embeddings multiplied by this (1: none) */
    int n_swa;                 /* sliding window (0: none) */
    int swa_pattern;           /* with n_swa > 0: 0 = every layer is local; P > 0 = layer il
                                * is local iff il % P < P - 1 (llama.cpp's set_swa_pattern) */
    nk_rope rope_swa;          /* RoPE of the local layers when swa_pattern > 0 */
} nk_hparams;

/* True if layer il attends through the sliding window. */
static inline bool nk_layer_is_swa(const nk_hparams *hp, int il) {
    if (hp->n_swa <= 0) return false;
    return hp->swa_pattern <= 0 || il % hp->swa_pattern < hp->swa_pattern - 1;
}

/* One block's weights; optional ones have data == NULL. Shapes in ggml order
 * [ne0 = input, ne1 = output]. */
typedef struct nk_layer {
    nk_tensor attn_norm;       /* [n_embd] */
    nk_tensor wq, wk, wv;      /* [n_embd, n_head*hd_k], [n_embd, n_head_kv*hd_k], [.., n_head_kv*hd_v] */
    nk_tensor bq, bk, bv;      /* optional biases */
    nk_tensor wo;              /* [n_head*hd_v, n_embd] */
    nk_tensor bo;              /* optional */
    nk_tensor q_norm, k_norm;  /* optional [hd_k], before RoPE */
    nk_tensor post_attn_norm;  /* optional [n_embd], on the attention output */
    nk_tensor ffn_norm;        /* [n_embd] */
    nk_tensor ffn_gate, ffn_up;/* [n_embd, n_ff] */
    nk_tensor ffn_down;        /* [n_ff, n_embd] */
    nk_tensor post_ffn_norm;   /* optional [n_embd], on the FFN output */
} nk_layer;

typedef struct nk_arch nk_arch;

struct nook_model {
    nk_map map;
    char *path;                /* as given to nook_model_load, for messages */
    gguf_file *gguf;
    nk_vocab *vocab;
    const nk_arch *arch;
    char *arch_name;
    char *name;
    char *chat_template;       /* NULL if none */
    nk_hparams hp;
    nk_tensor tok_embd;        /* [n_embd, n_vocab] */
    nk_tensor output_norm;     /* [n_embd] */
    nk_tensor output;          /* [n_embd, n_vocab]; token_embd when tied */
    nk_tensor rope_freqs;      /* optional [n_rot/2] */
    nk_layer *layers;          /* [n_layer] */
    char *names;               /* storage for the tensors' NUL-terminated names */
    size_t names_len, names_cap;
    uint64_t n_params;
    void *pack;                /* repacked weights (repack.c), NULL if none */
    size_t pack_len;
    struct nk_repack_bg *bg;   /* the thread making them after load, NULL if none */
};

/* Re-lay the weights the batch kernels read faster repacked (repack.c), after bind.
 * Failing to get memory leaves the file's layout (not an error); NOOK_ENOMEM only for
 * the bookkeeping. nk_model_repack_free releases them (nook_model_free calls it). */
nook_status nk_model_repack(nook_model *m, nook_error *err);
/* Block until the copies nk_model_repack left to its thread are all published (at once
 * if none). Thread-safe. */
void nk_model_repack_wait(const nook_model *m);
/* Stop and join that thread (it stops within one slice of rows), then unmap. */
void nk_model_repack_free(nook_model *m);

/* Tensor roles, for validation: what the forward pass will do with it. */
typedef enum {
    NK_USE_MATMUL,   /* a weight multiplied by activations: needs a dot kernel */
    NK_USE_ROWS,     /* rows looked up (embeddings): needs to_float */
    NK_USE_F32,      /* read directly as floats (norms, biases, rope factors) */
} nk_use;

/* Bind tensor `name` (printf-formatted) to *out after checking it exists, has exactly
 * the shape ne0 x ne1 (ne1 = 0 for a vector), and a type the use supports. A missing
 * optional tensor leaves out->data NULL and succeeds. Errors name the tensor:
 * NOOK_EFORMAT (missing, wrong shape), NOOK_EUNSUPPORTED (type). */
nook_status nk_bind(nook_model *m, nk_tensor *out, nk_use use, bool required,
                    int64_t ne0, int64_t ne1, nook_error *err, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Metadata helpers for {arch}.key (the arch prefix is added). u32 accepts a
 * per-layer array whose entries are all equal (NOOK_EUNSUPPORTED otherwise).
 * Absent keys: the *_opt forms leave the default and succeed; required ones fail
 * with NOOK_EFORMAT naming the key. */
nook_status nk_hp_u32(const nook_model *m, const char *key, bool required, int *out, nook_error *err);
nook_status nk_hp_f32(const nook_model *m, const char *key, bool required, float *out, nook_error *err);
/* {arch}.key as a string into buf ("" if absent). */
void nk_hp_str(const nook_model *m, const char *key, char *buf, size_t cap);

/* The common llama-like hyperparameters: sizes, GQA, head dims, eps, RoPE
 * (NORM, base, linear/yarn scaling). Arch files call it, then adjust. */
nook_status nk_hparams_llama_like(nook_model *m, nook_error *err);
/* Bind the common llama-like tensors: token_embd, output_norm, output (or tied),
 * rope_freqs, and per layer attn_norm, attn_q/k/v/output (+ optional biases),
 * ffn_norm, ffn_gate/up/down. */
nook_status nk_bind_llama_like(nook_model *m, nook_error *err);
/* Bind the model-wide tensors every llama-like family has: token_embd, output_norm,
 * and output (token_embd when absent: tied embeddings, checked usable for matmul). */
nook_status nk_bind_globals(nook_model *m, nook_error *err);

struct nk_arch {
    const char *name;    /* general.architecture */
    nook_status (*load_hparams)(nook_model *m, nook_error *err);
    nook_status (*bind)(nook_model *m, nook_error *err);
};

/* Architectures, one file each in src/models. */
extern const nk_arch nk_arch_llama;
extern const nk_arch nk_arch_qwen2;
extern const nk_arch nk_arch_qwen3;
extern const nk_arch nk_arch_gemma3;
extern const nk_arch nk_arch_phi3;

/* Registry lookup by name; NULL if unknown. */
const nk_arch *nk_arch_find(const char *name);

#endif /* NOOK_MODEL_ARCH_H */

/*
 * session.h: the session's internal state, shared by session.c (creation, the
 * sequences' bookkeeping, accessors) and forward.c (the forward pass and decode).
 *
 * KV cache: fixed slots. Per layer, K of every sequence then V of every sequence,
 * each sequence a slot of n_ctx rows indexed by position ([n_seq][n_ctx][row]). A
 * sequence is a run of positions 0..len-1 (seq_len), so its keys are contiguous and
 * attention over it is the single-sequence kernel with the slot as its cache: the
 * same numbers, the same code, and the tiled flash kernel's streaming access, with
 * no mask to build. Why slots and not llama.cpp's cells: docs/design.md.
 */
#ifndef NOOK_MODEL_SESSION_H
#define NOOK_MODEL_SESSION_H

#include "model/arch.h"

struct nook_session {
    const nook_model *m;
    nk_pool *pool;
    int n_ctx, n_batch, n_seq;
    uint32_t kv_type;
    size_t k_row, v_row;     /* cache bytes per position (all KV heads) */
    bool flash;              /* flash-attention numerics */
    uint8_t *kv;             /* n_layer x (K of all slots, then V of all slots) */
    size_t k_bytes, v_bytes; /* per layer, all slots */

    int *seq_len;            /* [n_seq] positions held */
    nook_token *seq_tok;     /* [n_seq][n_ctx] the token at each position */
    int *next_pos;           /* [n_seq] scratch: validation and chunk positions */

    /* scratch, [n_batch][width] each */
    float *x;                /* residual stream, n_embd */
    float *xb;               /* normed input of a block, n_embd */
    float *q;                /* n_head*hd_k */
    float *k;                /* n_head_kv*hd_k */
    float *v;                /* n_head_kv*hd_v */
    float *att;              /* attention output, n_head*hd_v */
    float *tmp;              /* block outputs, n_embd */
    float *gate, *up;        /* n_ff */
    float *rope_cs;          /* cos/sin per token, n_rot */
    void *wbuf;              /* quantized activations for matmul */
    void *attn_ws;           /* attention scratch */
    nk_attn *segs;           /* [n_seq] attention segments of a pass */

    /* the pass being run: entries sorted by sequence (stable), [n_batch] each */
    nook_token *c_tok;
    int32_t *c_pos;
    nook_seq *c_seq;
    bool *c_out;             /* wants output */
    int32_t *c_src;          /* index in the caller's batch */
    int *c_cnt;              /* [n_seq + 1] counting sort */

    /* outputs */
    float *logits;           /* n_vocab: the last token (single-sequence decode) */
    const float *last_out;   /* nook_session_logits(): the last output row */
    float *out;              /* batch outputs, out_cap rows of out_w floats */
    size_t out_cap;
    int out_w;
    int32_t *out_map;        /* [map_cap] batch entry -> output row, -1: none */
    int map_cap;
    int n_entries;           /* entries of the last decode */
    bool single;             /* the last decode was nook_session_decode */

    /* embeddings */
    bool embeddings;
    nook_pooling pooling;
    float *pooled;           /* [n_seq][n_embd] */
    int *pooled_n;           /* [n_seq] entries pooled in the last batch */
};

/* Slot base of sequence seq in layer l's K (or V) cache. */
static inline uint8_t *nk_sess_k(const nook_session *s, int l, int seq) {
    return s->kv + (size_t)l * (s->k_bytes + s->v_bytes) + (size_t)seq * (size_t)s->n_ctx * s->k_row;
}
static inline uint8_t *nk_sess_v(const nook_session *s, int l, int seq) {
    return s->kv + (size_t)l * (s->k_bytes + s->v_bytes) + s->k_bytes + (size_t)seq * (size_t)s->n_ctx * s->v_row;
}

#endif /* NOOK_MODEL_SESSION_H */

/*
 * session.c: sessions (KV cache, scratch, thread pool) and the llama-like forward
 * pass every architecture in src/models shares.
 *
 * Memory: nook_session_new allocates everything a decode can touch, sized for
 * n_batch tokens and n_ctx positions; nook_session_decode allocates nothing.
 *
 * KV cache: per layer, K and V rows by position ([n_ctx][n_head_kv*hd]). Elements
 * are f16 by default, as llama.cpp stores them, so values round as in llama.cpp;
 * nook_session_params.kv_type selects q8_0 (each head's row quantized as whole
 * blocks, as llama.cpp's --cache-type-k/v q8_0) or f32; NOOK_KV_F32=1 in the
 * environment forces f32 (a debugging aid).
 *
 * Attention numerics follow llama.cpp's flash-attention kernel, which its default
 * (-fa auto) selects on the CPU; nook_session_params.plain_attn selects the numerics
 * of its non-flash path (-fa off) instead. Both match the reference to ~1e-5 in
 * log-probability on the fixture models (tests/model).
 */
#include "model/arch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nook_session {
    const nook_model *m;
    nk_pool *pool;
    int n_ctx, n_batch, n_past;
    uint32_t kv_type;
    size_t k_row, v_row;     /* cache bytes per position (all KV heads) */
    bool flash;              /* flash-attention numerics */
    uint8_t *kv;             /* n_layer x (K then V) */
    size_t k_bytes, v_bytes; /* per layer */
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
    float *logits;           /* n_vocab, last token */
    void *wbuf;              /* quantized activations for matmul */
    void *attn_ws;           /* attention scratch */
};

nook_session_params nook_session_default_params(void) {
    return (nook_session_params){ .n_ctx = 0, .n_batch = 0, .n_threads = 0 };
}

void nook_session_free(nook_session *s) {
    if (!s) return;
    nk_pool_free(s->pool);
    nk_aligned_free(s->kv);
    float **bufs[] = { &s->x, &s->xb, &s->q, &s->k, &s->v, &s->att, &s->tmp, &s->gate, &s->up,
                       &s->rope_cs, &s->logits };
    for (size_t i = 0; i < NK_ARRAY_LEN(bufs); i++) nk_aligned_free(*bufs[i]);
    nk_aligned_free(s->wbuf);
    nk_aligned_free(s->attn_ws);
    nk_free(s);
}

/* Allocate rows x width floats (64-byte aligned); false on overflow or OOM. Not
 * cleared: every row a step reads was written by an earlier step of the same batch,
 * and clearing n_batch rows up front faults in every page (25-100 MB: 13% of a
 * short `nook run` on qwen3-0.6b, on this VM ~5 us per 4 KiB page) for prompts
 * that use a few rows. */
static bool alloc_f32(float **out, int64_t rows, int64_t width) {
    uint64_t n;
    if (!nk_mul_ok((uint64_t)rows, (uint64_t)width, &n) || !nk_mul_ok(n, sizeof(float), &n) || n > SIZE_MAX)
        return false;
    *out = nk_aligned_alloc((size_t)n);
    return *out != NULL;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

nook_status nook_session_new(const nook_model *m, const nook_session_params *p,
                             nook_session **out, nook_error *err) {
    if (!out) return nk_fail(err, NOOK_EINVAL, "nook_session_new: out is NULL");
    *out = NULL;
    if (!m) return nk_fail(err, NOOK_EINVAL, "nook_session_new: model is NULL");
    if (!m->arch || !m->layers)
        return nk_fail(err, NOOK_EINVAL, "model was loaded vocab-only: it has no weights to run");
    nook_session_params d = nook_session_default_params();
    if (!p) p = &d;
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_threads < 0)
        return nk_fail(err, NOOK_EINVAL, "session params must not be negative (n_ctx %d, n_batch %d, n_threads %d)",
                       p->n_ctx, p->n_batch, p->n_threads);
    const nk_hparams *hp = &m->hp;
    nook_session *s = nk_calloc(1, sizeof *s);
    if (!s) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    s->m = m;
    s->n_ctx = p->n_ctx ? p->n_ctx : NK_MIN(hp->n_ctx_train, 4096);
    s->n_batch = NK_MIN(p->n_batch ? p->n_batch : 512, s->n_ctx);
    const char *kv32 = getenv("NOOK_KV_F32");
    s->kv_type = p->kv_type == NOOK_KV_Q8_0 ? NK_TYPE_Q8_0 : p->kv_type == NOOK_KV_F32 ? NK_TYPE_F32 : NK_TYPE_F16;
    if (kv32 && kv32[0] == '1') s->kv_type = NK_TYPE_F32;
    s->flash = !p->plain_attn;
    if ((unsigned)p->kv_type > NOOK_KV_F32) {
        nk_free(s);
        return nk_fail(err, NOOK_EINVAL, "unknown KV cache type %d", (int)p->kv_type);
    }
    if (s->kv_type == NK_TYPE_Q8_0 && !s->flash) {
        nk_free(s);
        return nk_fail(err, NOOK_EINVAL, "a q8_0 KV cache needs flash attention (as in llama.cpp)");
    }
    if (s->kv_type == NK_TYPE_Q8_0 && (hp->head_dim_k % 32 || hp->head_dim_v % 32)) {
        nk_free(s);
        return nk_fail(err, NOOK_EUNSUPPORTED, "a q8_0 KV cache needs head sizes that are multiples of 32 (model: %d, %d)",
                       hp->head_dim_k, hp->head_dim_v);
    }

    nook_status st = nk_pool_new(p->n_threads ? p->n_threads : nk_n_cores(), &s->pool, err);
    if (st) goto fail;

    const int64_t n_q = (int64_t)hp->n_head * hp->head_dim_k;
    const int64_t n_k = (int64_t)hp->n_head_kv * hp->head_dim_k;
    const int64_t n_v = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t n_o = (int64_t)hp->n_head * hp->head_dim_v;
    uint64_t kb, vb, total;
    s->k_row = nk_row_size(s->kv_type, n_k);
    s->v_row = nk_row_size(s->kv_type, n_v);
    if (!nk_mul_ok((uint64_t)s->n_ctx, (uint64_t)s->k_row, &kb) ||
        !nk_mul_ok((uint64_t)s->n_ctx, (uint64_t)s->v_row, &vb) ||
        !nk_add_ok(kb, vb, &total) || !nk_mul_ok(total, (uint64_t)hp->n_layer, &total) || total > SIZE_MAX / 2) {
        st = nk_fail(err, NOOK_ERANGE, "KV cache for n_ctx %d does not fit in memory", s->n_ctx);
        goto fail;
    }
    s->k_bytes = (size_t)kb;
    s->v_bytes = (size_t)vb;
    s->kv = nk_aligned_alloc((size_t)total);
    if (!s->kv) {
        st = nk_fail(err, NOOK_ENOMEM, "cannot allocate the KV cache (%llu bytes for n_ctx %d)",
                     (unsigned long long)total, s->n_ctx);
        goto fail;
    }
    /* not cleared: positions >= n_past are never read, and touching gigabytes here
     * (8B model, 4096 positions: 1.2 GB) would delay the first token; the pages
     * fault in as decoding writes them */

    const int nb = s->n_batch;
    if (!alloc_f32(&s->x, nb, hp->n_embd) || !alloc_f32(&s->xb, nb, hp->n_embd) || !alloc_f32(&s->q, nb, n_q) ||
        !alloc_f32(&s->k, nb, n_k) || !alloc_f32(&s->v, nb, n_v) || !alloc_f32(&s->att, nb, n_o) ||
        !alloc_f32(&s->tmp, nb, hp->n_embd) || !alloc_f32(&s->gate, nb, hp->n_ff) || !alloc_f32(&s->up, nb, hp->n_ff) ||
        !alloc_f32(&s->rope_cs, nb, hp->rope.n_rot) || !alloc_f32(&s->logits, 1, hp->n_vocab)) {
        st = nk_fail(err, NOOK_ENOMEM, "cannot allocate session buffers for n_batch %d", nb);
        goto fail;
    }

    /* matmul scratch: the largest activation conversion any weight needs */
    size_t ws = nk_matmul_wsize(m->output.type, m->output.ne[0], nb);
    for (int l = 0; l < hp->n_layer; l++) {
        const nk_layer *L = &m->layers[l];
        const nk_tensor *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up, &L->ffn_down };
        for (size_t i = 0; i < NK_ARRAY_LEN(mats); i++)
            ws = max_sz(ws, nk_matmul_wsize(mats[i]->type, mats[i]->ne[0], nb));
    }
    if (ws && !(s->wbuf = nk_aligned_alloc(ws))) {
        st = nk_fail(err, NOOK_ENOMEM, "cannot allocate %zu bytes of matmul scratch", ws);
        goto fail;
    }
    const size_t aw = nk_attn_wsize(nk_pool_size(s->pool), s->n_ctx, NK_MAX(hp->head_dim_k, hp->head_dim_v));
    if (!(s->attn_ws = nk_aligned_alloc(aw))) {
        st = nk_fail(err, NOOK_ENOMEM, "cannot allocate %zu bytes of attention scratch", aw);
        goto fail;
    }
    *out = s;
    return NOOK_OK;
fail:
    nook_session_free(s);
    return st;
}

int nook_session_n_past(const nook_session *s) { return s->n_past; }
int nook_session_n_ctx(const nook_session *s) { return s->n_ctx; }
const float *nook_session_logits(const nook_session *s) { return s->logits; }
const nook_model *nook_session_model(const nook_session *s) { return s->m; }

void nook_session_truncate(nook_session *s, int pos) {
    /* entries past n_past are never read, so forgetting is just moving the mark */
    if (pos < 0) pos = 0;
    if (pos < s->n_past) s->n_past = pos;
}

/* ---- forward ---------------------------------------------------------------------- */

static void add_bias(float *y, const nk_tensor *b, int n_tok, int64_t width) {
    if (!b->data) return;
    for (int t = 0; t < n_tok; t++) nk_add(y + (size_t)t * (size_t)width, b->data, (size_t)width);
}

/* Per-head RMSNorm (qwen3/gemma3 q/k norms), weights [head_dim] shared by heads. */
static void head_norm(float *x, const nk_tensor *w, int n_tok, int n_head, int hd, float eps) {
    if (!w->data) return;
    for (int64_t i = 0; i < (int64_t)n_tok * n_head; i++) nk_rmsnorm(x + i * hd, x + i * hd, w->data, hd, eps);
}

static void rows_norm(float *y, const float *x, const nk_tensor *w, int n_tok, int n, float eps) {
    for (int t = 0; t < n_tok; t++)
        nk_rmsnorm(y + (size_t)t * (size_t)n, x + (size_t)t * (size_t)n, w->data, n, eps);
}

/* Write the batch's K and V (after RoPE) into layer l's cache at pos0.. */
static void store_kv(nook_session *s, int l, int pos0, int n_tok) {
    const nk_hparams *hp = &s->m->hp;
    const int n_k = hp->n_head_kv * hp->head_dim_k, n_v = hp->n_head_kv * hp->head_dim_v;
    uint8_t *kc = s->kv + (size_t)l * (s->k_bytes + s->v_bytes);
    uint8_t *vc = kc + s->k_bytes;
    const nk_type_traits *kt = nk_type_get(s->kv_type);
    for (int t = 0; t < n_tok; t++) {
        const size_t pos = (size_t)(pos0 + t);
        const float *k = s->k + (size_t)t * (size_t)n_k;
        const float *v = s->v + (size_t)t * (size_t)n_v;
        if (s->kv_type == NK_TYPE_F16) {
            nk_f32_to_f16_row(k, (uint16_t *)(kc + pos * s->k_row), n_k);
            nk_f32_to_f16_row(v, (uint16_t *)(vc + pos * s->v_row), n_v);
            continue;
        }
        kt->from_float(k, kc + pos * s->k_row, n_k);
        kt->from_float(v, vc + pos * s->v_row, n_v);
    }
}

/* One forward pass over n_tok tokens at positions n_past..; writes logits of the
 * rows [first_out, n_tok) to out (n_vocab floats per row) when out is non-NULL. */
static void forward(nook_session *s, const nook_token *tokens, int n_tok, int first_out, float *out) {
    const nook_model *m = s->m;
    const nk_hparams *hp = &m->hp;
    const int n_embd = hp->n_embd, n_ff = hp->n_ff;
    const int n_q = hp->n_head * hp->head_dim_k, n_k = hp->n_head_kv * hp->head_dim_k;
    const int n_v = hp->n_head_kv * hp->head_dim_v, n_o = hp->n_head * hp->head_dim_v;
    const int pos0 = s->n_past;
    const float eps = hp->rms_eps;
    nk_pool *pool = s->pool;

    nk_get_rows(&m->tok_embd, tokens, n_tok, s->x);
    if (hp->embd_scale != 1.0f)
        for (size_t i = 0; i < (size_t)n_tok * (size_t)n_embd; i++) s->x[i] *= hp->embd_scale;
    const nk_rope *cached = NULL;   /* the rope whose table rope_cs holds */

    for (int l = 0; l < hp->n_layer; l++) {
        const nk_layer *L = &m->layers[l];
        /* local (sliding-window) layers may have their own RoPE (gemma3: base 10000) */
        const bool swa = nk_layer_is_swa(hp, l);
        const nk_rope *rope = swa && hp->swa_pattern > 0 ? &hp->rope_swa : &hp->rope;
        if (rope != cached) {
            for (int t = 0; t < n_tok; t++) nk_rope_cache(rope, pos0 + t, s->rope_cs + (size_t)t * (size_t)rope->n_rot);
            cached = rope;
        }

        /* attention block */
        rows_norm(s->xb, s->x, &L->attn_norm, n_tok, n_embd, eps);
        {   /* one pool run (and one activation conversion) when the types agree */
            const nk_tensor *W[3] = { &L->wq, &L->wk, &L->wv };
            float *const Y[3] = { s->q, s->k, s->v };
            const size_t YS[3] = { (size_t)n_q, (size_t)n_k, (size_t)n_v };
            nk_matmul_n(pool, 3, W, s->xb, (size_t)n_embd, n_tok, Y, YS, s->wbuf);
        }
        add_bias(s->q, &L->bq, n_tok, n_q);
        add_bias(s->k, &L->bk, n_tok, n_k);
        add_bias(s->v, &L->bv, n_tok, n_v);
        head_norm(s->q, &L->q_norm, n_tok, hp->n_head, hp->head_dim_k, eps);
        head_norm(s->k, &L->k_norm, n_tok, hp->n_head_kv, hp->head_dim_k, eps);
        for (int t = 0; t < n_tok; t++) {
            const float *cs = s->rope_cs + (size_t)t * (size_t)rope->n_rot;
            nk_rope_apply(rope, cs, s->q + (size_t)t * (size_t)n_q, hp->n_head, hp->head_dim_k);
            nk_rope_apply(rope, cs, s->k + (size_t)t * (size_t)n_k, hp->n_head_kv, hp->head_dim_k);
        }
        if (hp->q_scale != 1.0f)
            for (size_t i = 0; i < (size_t)n_tok * (size_t)n_q; i++) s->q[i] *= hp->q_scale;
        store_kv(s, l, pos0, n_tok);
        const uint8_t *kc = s->kv + (size_t)l * (s->k_bytes + s->v_bytes);
        const nk_attn a = {
            .n_tok = n_tok, .pos0 = pos0, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
            .hd_k = hp->head_dim_k, .hd_v = hp->head_dim_v, .n_ctx = s->n_ctx, .n_swa = swa ? hp->n_swa : 0,
            .scale = hp->attn_scale, .kv_type = s->kv_type, .flash = s->flash,
            .q = s->q, .k = kc, .v = kc + s->k_bytes, .out = s->att, .scratch = s->attn_ws,
        };
        nk_attention(pool, &a);
        nk_matmul(pool, &L->wo, s->att, (size_t)n_o, n_tok, s->tmp, (size_t)n_embd, s->wbuf);
        add_bias(s->tmp, &L->bo, n_tok, n_embd);
        if (L->post_attn_norm.data) rows_norm(s->tmp, s->tmp, &L->post_attn_norm, n_tok, n_embd, eps);
        nk_add(s->x, s->tmp, (size_t)n_tok * (size_t)n_embd);

        /* feed-forward block */
        rows_norm(s->xb, s->x, &L->ffn_norm, n_tok, n_embd, eps);
        {
            const nk_tensor *W[2] = { &L->ffn_gate, &L->ffn_up };
            float *const Y[2] = { s->gate, s->up };
            const size_t YS[2] = { (size_t)n_ff, (size_t)n_ff };
            nk_matmul_n(pool, 2, W, s->xb, (size_t)n_embd, n_tok, Y, YS, s->wbuf);
        }
        nk_glu(pool, hp->ffn_act == NK_FFN_GEGLU, s->gate, s->up, (size_t)n_tok * (size_t)n_ff);
        nk_matmul(pool, &L->ffn_down, s->gate, (size_t)n_ff, n_tok, s->tmp, (size_t)n_embd, s->wbuf);
        if (L->post_ffn_norm.data) rows_norm(s->tmp, s->tmp, &L->post_ffn_norm, n_tok, n_embd, eps);
        nk_add(s->x, s->tmp, (size_t)n_tok * (size_t)n_embd);
    }

    if (!out) return;
    const int n_out = n_tok - first_out;
    float *xo = s->xb + (size_t)first_out * (size_t)n_embd;
    rows_norm(xo, s->x + (size_t)first_out * (size_t)n_embd, &m->output_norm, n_out, n_embd, eps);
    nk_matmul(pool, &m->output, xo, (size_t)n_embd, n_out, out, (size_t)hp->n_vocab, s->wbuf);
}

nook_status nook_session_decode(nook_session *s, const nook_token *tokens, int n,
                                float *all_logits, nook_error *err) {
    if (!s) return nk_fail(err, NOOK_EINVAL, "nook_session_decode: session is NULL");
    if (n < 0 || (n > 0 && !tokens)) return nk_fail(err, NOOK_EINVAL, "nook_session_decode: bad token array (n %d)", n);
    if (n == 0) return NOOK_OK;
    const int n_vocab = s->m->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return nk_fail(err, NOOK_EINVAL, "token %d at index %d is out of range [0, %d)", tokens[i], i, n_vocab);
    if ((int64_t)s->n_past + n > s->n_ctx)
        return nk_fail(err, NOOK_ERANGE, "context full: n_past %d + %d new tokens exceeds n_ctx %d",
                       s->n_past, n, s->n_ctx);

    for (int i = 0; i < n; i += s->n_batch) {
        const int nb = NK_MIN(s->n_batch, n - i);
        const bool last = i + nb == n;
        if (all_logits) forward(s, tokens + i, nb, 0, all_logits + (size_t)i * (size_t)n_vocab);
        else forward(s, tokens + i, nb, nb - 1, last ? s->logits : NULL);
        s->n_past += nb;
    }
    if (all_logits)
        memcpy(s->logits, all_logits + (size_t)(n - 1) * (size_t)n_vocab, (size_t)n_vocab * sizeof(float));
    return NOOK_OK;
}

/*
 * forward.c: the llama-like forward pass every architecture in src/models shares, and
 * decode (one sequence, or a batch over several).
 *
 * A pass runs up to n_batch entries of any sequences. Its entries are first sorted
 * by sequence (stable, so each sequence's positions stay in order): the matmuls see
 * one block of rows (each weight matrix is streamed once for all sequences), RoPE and
 * the cache writes go per row to the row's slot and position, and attention runs one
 * segment per sequence over that sequence's slot (nk_attention_multi, one pool run
 * for all). Row order does not change any row's result: every output element is
 * computed by the same instructions whatever the other rows are; only the number of
 * rows of a matmul picks the kernel (see nk_gemm_pick).
 *
 * Memory: nothing is allocated here except the batch output buffer, which grows to
 * the largest number of outputs a batch has asked for and is then reused.
 *
 * Cancellation: the pool's abort flag is checked by the kernels between chunks of
 * work and here between layers and after each pool run of a layer, so the rest of
 * an aborted layer (norms, RoPE, cache writes, the next products' activation
 * conversion) is not run: with the check between layers only, a 512-token pass on
 * the 8B's shapes took p50 17.7 ms from the cancel to returning, 3.2 ms with these.
 * An aborted pass leaves the sequences' lengths as they were (its rows in the cache
 * lie past them and are never read).
 */
#include "model/session.h"

#include <string.h>

static void add_bias(float *y, const nk_tensor *b, int n_tok, int64_t width) {
    if (!b->data) return;
    for (int t = 0; t < n_tok; t++) nk_add(y + (size_t)t * (size_t)width, b->data, (size_t)width);
}

/* Per-head RMSNorm (qwen3/gemma3 q/k norms), weights [head_dim] shared by heads. */
static void head_norm(float *x, const nk_tensor *w, int n_tok, int n_head, int hd, float eps) {
    if (!w->data) return;
    nk_rmsnorm_rows(x, x, (size_t)hd, w->data, hd, n_tok * n_head, eps);
}

static void rows_norm(float *y, const float *x, const nk_tensor *w, int n_tok, int n, float eps) {
    nk_rmsnorm_rows(y, x, (size_t)n, w->data, n, n_tok, eps);
}

/* Write the pass's K and V (after RoPE) into layer l's cache, each row at its
 * sequence's slot and position. */
static void store_kv(nook_session *s, int l, int t0, int t1) {
    const nk_hparams *hp = &s->m->hp;
    const int n_k = hp->n_head_kv * hp->head_dim_k, n_v = hp->n_head_kv * hp->head_dim_v;
    const nk_type_traits *kt = nk_type_get(s->kv_type);
    for (int t = t0; t < t1; t++) {
        const size_t pos = (size_t)s->c_pos[t];
        uint8_t *kc = nk_sess_k(s, l, s->c_seq[t]) + pos * s->k_row;
        uint8_t *vc = nk_sess_v(s, l, s->c_seq[t]) + pos * s->v_row;
        const float *k = s->k + (size_t)t * (size_t)n_k;
        const float *v = s->v + (size_t)t * (size_t)n_v;
        if (s->kv_type == NK_TYPE_F16) {
            nk_f32_to_f16_row(k, (uint16_t *)kc, n_k);
            nk_f32_to_f16_row(v, (uint16_t *)vc, n_v);
            continue;
        }
        kt->from_float(k, kc, n_k);
        kt->from_float(v, vc, n_v);
    }
}

/* What follows the Q/K/V products, per row: biases, the per-head norms, RoPE, the
 * query scale and the cache writes. Rows are independent (each writes its own cache
 * row), so a batch splits them over the pool: on one thread these were ~5% of a step
 * of 8 sequences (the norms sum in double, one add after another), time the other
 * threads sat idle. Every element sees the same operations in the same order as
 * when the rows run one after another. */
typedef struct qkv_job {
    nook_session *s;
    const nk_layer *L;
    const nk_rope *rope;
    int l;
    int n_tok;
} qkv_job;

static void qkv_rows(nook_session *s, const nk_layer *L, const nk_rope *rope, int l, int t0, int t1) {
    const nk_hparams *hp = &s->m->hp;
    const int n_q = hp->n_head * hp->head_dim_k, n_k = hp->n_head_kv * hp->head_dim_k;
    const int n_v = hp->n_head_kv * hp->head_dim_v;
    const float eps = hp->rms_eps;
    for (int t = t0; t < t1; t++) {
        float *q = s->q + (size_t)t * (size_t)n_q, *k = s->k + (size_t)t * (size_t)n_k;
        add_bias(q, &L->bq, 1, n_q);
        add_bias(k, &L->bk, 1, n_k);
        add_bias(s->v + (size_t)t * (size_t)n_v, &L->bv, 1, n_v);
        head_norm(q, &L->q_norm, 1, hp->n_head, hp->head_dim_k, eps);
        head_norm(k, &L->k_norm, 1, hp->n_head_kv, hp->head_dim_k, eps);
        const float *cs = s->rope_cs + (size_t)t * (size_t)rope->n_rot;
        nk_rope_apply(rope, cs, q, hp->n_head, hp->head_dim_k);
        nk_rope_apply(rope, cs, k, hp->n_head_kv, hp->head_dim_k);
        if (hp->q_scale != 1.0f)
            for (int i = 0; i < n_q; i++) q[i] *= hp->q_scale;
    }
    store_kv(s, l, t0, t1);
}

static void qkv_fn(void *ctx, int ith, int nth) {
    const qkv_job *j = ctx;
    const int t0 = (int)((int64_t)j->n_tok * ith / nth), t1 = (int)((int64_t)j->n_tok * (ith + 1) / nth);
    qkv_rows(j->s, j->L, j->rope, j->l, t0, t1);
}

/* One forward pass over the n_tok sorted entries in s->c_*. Writes, for the rows
 * with c_out set (in row order), logits (n_vocab floats each) to out, or with
 * embeddings on, the normed hidden state (n_embd floats) for pooling NONE and the
 * pooled sums into s->pooled otherwise. Returns false if aborted. */
static bool forward(nook_session *s, int n_tok, float *out) {
    const nook_model *m = s->m;
    const nk_hparams *hp = &m->hp;
    const int n_embd = hp->n_embd, n_ff = hp->n_ff;
    const int n_q = hp->n_head * hp->head_dim_k, n_k = hp->n_head_kv * hp->head_dim_k;
    const int n_v = hp->n_head_kv * hp->head_dim_v, n_o = hp->n_head * hp->head_dim_v;
    const float eps = hp->rms_eps;
    nk_pool *pool = s->pool;

    /* segments: runs of one sequence */
    int n_seg = 0;
    for (int t = 0; t < n_tok;) {
        int e = t + 1;
        while (e < n_tok && s->c_seq[e] == s->c_seq[t]) e++;
        s->segs[n_seg++] = (nk_attn){ .n_tok = e - t, .pos0 = s->c_pos[t] };
        t = e;
    }

    nk_get_rows(&m->tok_embd, s->c_tok, n_tok, s->x);
    if (hp->embd_scale != 1.0f)
        for (size_t i = 0; i < (size_t)n_tok * (size_t)n_embd; i++) s->x[i] *= hp->embd_scale;
    const nk_rope *cached = NULL;   /* the rope whose table rope_cs holds */

    for (int l = 0; l < hp->n_layer; l++) {
        if (nk_pool_should_stop(pool, 0)) return false;
        const nk_layer *L = &m->layers[l];
        /* local (sliding-window) layers may have their own RoPE (gemma3: base 10000) */
        const bool swa = nk_layer_is_swa(hp, l);
        const nk_rope *rope = swa && hp->swa_pattern > 0 ? &hp->rope_swa : &hp->rope;
        if (rope != cached) {
            for (int t = 0; t < n_tok; t++) nk_rope_cache(rope, s->c_pos[t], s->rope_cs + (size_t)t * (size_t)rope->n_rot);
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
        if (nk_pool_aborted(pool)) return false;
        if (n_tok == 1) {
            qkv_rows(s, L, rope, l, 0, 1);   /* one row: not worth waking the workers */
        } else {
            qkv_job qj = { .s = s, .L = L, .rope = rope, .l = l, .n_tok = n_tok };
            nk_pool_run(pool, qkv_fn, &qj);
        }
        for (int g = 0, r0 = 0; g < n_seg; g++) {
            nk_attn *a = &s->segs[g];
            const int seq = s->c_seq[r0];
            *a = (nk_attn){
                .n_tok = a->n_tok, .pos0 = a->pos0, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                .hd_k = hp->head_dim_k, .hd_v = hp->head_dim_v, .n_ctx = s->n_ctx, .n_swa = swa ? hp->n_swa : 0,
                .scale = hp->attn_scale, .kv_type = s->kv_type, .flash = s->flash,
                .q = s->q + (size_t)r0 * (size_t)n_q, .k = nk_sess_k(s, l, seq), .v = nk_sess_v(s, l, seq),
                .out = s->att + (size_t)r0 * (size_t)n_o, .scratch = s->attn_ws,
            };
            r0 += a->n_tok;
        }
        nk_attention_multi(pool, s->segs, n_seg);
        if (nk_pool_aborted(pool)) return false;
        nk_matmul(pool, &L->wo, s->att, (size_t)n_o, n_tok, s->tmp, (size_t)n_embd, s->wbuf);
        if (nk_pool_aborted(pool)) return false;
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
        if (nk_pool_aborted(pool)) return false;
        nk_glu(pool, hp->ffn_act == NK_FFN_GEGLU, s->gate, s->up, (size_t)n_tok * (size_t)n_ff);
        nk_matmul(pool, &L->ffn_down, s->gate, (size_t)n_ff, n_tok, s->tmp, (size_t)n_embd, s->wbuf);
        if (L->post_ffn_norm.data) rows_norm(s->tmp, s->tmp, &L->post_ffn_norm, n_tok, n_embd, eps);
        nk_add(s->x, s->tmp, (size_t)n_tok * (size_t)n_embd);
    }
    if (nk_pool_should_stop(pool, 0)) return false;

    if (s->embeddings) {
        /* llama.cpp's embeddings: the hidden state after the final norm */
        rows_norm(s->xb, s->x, &m->output_norm, n_tok, n_embd, eps);
        int n_out = 0;
        for (int t = 0; t < n_tok; t++) {
            const float *h = s->xb + (size_t)t * (size_t)n_embd;
            if (s->pooling == NOOK_POOLING_NONE) {
                if (s->c_out[t] && out) memcpy(out + (size_t)n_out++ * (size_t)n_embd, h, (size_t)n_embd * sizeof *h);
                continue;
            }
            const int q = s->c_seq[t];
            float *pv = s->pooled + (size_t)q * (size_t)n_embd;
            if (s->pooling == NOOK_POOLING_MEAN && s->pooled_n[q]) nk_add(pv, h, (size_t)n_embd);
            else if (s->pooling != NOOK_POOLING_CLS || !s->pooled_n[q]) memcpy(pv, h, (size_t)n_embd * sizeof *h);
            s->pooled_n[q]++;
        }
        return true;
    }
    if (!out) return true;
    /* gather the rows that want logits, norm them, one matmul for all */
    int n_out = 0;
    for (int t = 0; t < n_tok; t++)
        if (s->c_out[t]) {
            if (n_out != t)
                memmove(s->x + (size_t)n_out * (size_t)n_embd, s->x + (size_t)t * (size_t)n_embd,
                        (size_t)n_embd * sizeof(float));
            n_out++;
        }
    if (!n_out) return true;
    rows_norm(s->xb, s->x, &m->output_norm, n_out, n_embd, eps);
    nk_matmul(pool, &m->output, s->xb, (size_t)n_embd, n_out, out, (size_t)hp->n_vocab, s->wbuf);
    return !nk_pool_aborted(pool);
}

/* The pass is done: its entries join their sequences (lengths and token ids). */
static void commit(nook_session *s, int n_tok) {
    for (int t = 0; t < n_tok; t++) {
        const int q = s->c_seq[t];
        s->seq_tok[(size_t)q * (size_t)s->n_ctx + (size_t)s->c_pos[t]] = s->c_tok[t];
        if (s->c_pos[t] + 1 > s->seq_len[q]) s->seq_len[q] = s->c_pos[t] + 1;
    }
}

static void begin(nook_session *s) {
    nk_pool_clear_abort(s->pool);
    nk_pool_acquire(s->pool);
    s->last_out = NULL;
    s->n_entries = 0;
    memset(s->pooled_n, 0, (size_t)s->n_seq * sizeof *s->pooled_n);
}

static nook_status finish(nook_session *s, nook_status st, nook_error *err) {
    nk_pool_release(s->pool);
    /* a weights file truncated during the pass was read as zeros (src/base/mapguard.c):
     * fail rather than return garbage; the model stays failed (nook_model_check), so
     * the cache entries just written are never used */
    if (st == NOOK_OK && (st = nook_model_check(s->m, err)) != NOOK_OK) return st;
    if (st == NOOK_OK && s->embeddings && s->pooling == NOOK_POOLING_MEAN) {
        const int n_embd = s->m->hp.n_embd;
        for (int q = 0; q < s->n_seq; q++) {
            if (!s->pooled_n[q]) continue;
            float *pv = s->pooled + (size_t)q * (size_t)n_embd;
            const float inv = 1.0f / (float)s->pooled_n[q];
            for (int i = 0; i < n_embd; i++) pv[i] *= inv;
        }
    }
    if (st == NOOK_EABORTED) {
        memset(s->pooled_n, 0, (size_t)s->n_seq * sizeof *s->pooled_n);
        s->last_out = NULL;
        s->n_entries = 0;
        return nk_fail(err, NOOK_EABORTED, "decode aborted by the caller");
    }
    return st;
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
    if ((int64_t)s->seq_len[0] + n > s->n_ctx)
        return nk_fail(err, NOOK_ERANGE, "context full: n_past %d + %d new tokens exceeds n_ctx %d",
                       s->seq_len[0], n, s->n_ctx);

    /* the weights' file must still be the one mapped: a truncated one would fault */
    nook_status cst = nook_model_check(s->m, err);
    if (cst) return cst;
    begin(s);
    s->single = true;
    nook_status st = NOOK_OK;
    for (int i = 0; i < n; i += s->n_batch) {
        const int nb = NK_MIN(s->n_batch, n - i);
        const bool last = i + nb == n;
        for (int t = 0; t < nb; t++) {
            s->c_tok[t] = tokens[i + t];
            s->c_pos[t] = s->seq_len[0] + t;
            s->c_seq[t] = 0;
            s->c_out[t] = all_logits || (last && t == nb - 1) || (s->embeddings && s->pooling == NOOK_POOLING_NONE);
            s->c_src[t] = i + t;
        }
        float *out = all_logits ? all_logits + (size_t)i * (size_t)n_vocab : last ? s->logits : NULL;
        if (s->embeddings) out = NULL;   /* pooled, or per entry through the batch API only */
        if (!forward(s, nb, out)) {
            st = NOOK_EABORTED;
            break;
        }
        commit(s, nb);
    }
    if (st == NOOK_OK) {
        s->n_entries = n;
        if (!s->embeddings) {
            if (all_logits)
                memcpy(s->logits, all_logits + (size_t)(n - 1) * (size_t)n_vocab, (size_t)n_vocab * sizeof(float));
            s->last_out = s->logits;
        }
    }
    return finish(s, st, err);
}

/* Make room for n_out output rows and a map of n entries (grows, never shrinks). */
static nook_status reserve_out(nook_session *s, int n_out, int n, nook_error *err) {
    const int w = s->embeddings ? s->m->hp.n_embd : s->m->hp.n_vocab;
    if ((size_t)n_out > s->out_cap || s->out_w != w) {
        const size_t cap = NK_MAX((size_t)n_out, (size_t)s->n_seq);
        float *o = nk_aligned_alloc(cap * (size_t)w * sizeof(float));
        if (!o) return nk_fail(err, NOOK_ENOMEM, "cannot allocate outputs for %d entries", n_out);
        nk_aligned_free(s->out);
        s->out = o;
        s->out_cap = cap;
        s->out_w = w;
    }
    if (n > s->map_cap) {
        int32_t *mp = nk_alloc_array((size_t)n, sizeof *mp);
        if (!mp) return nk_fail(err, NOOK_ENOMEM, "cannot allocate the output map for %d entries", n);
        nk_free(s->out_map);
        s->out_map = mp;
        s->map_cap = n;
    }
    return NOOK_OK;
}

nook_status nook_session_decode_batch(nook_session *s, const nook_batch *b, nook_error *err) {
    if (!s || !b) return nk_fail(err, NOOK_EINVAL, "nook_session_decode_batch: NULL argument");
    const int n = b->n_tokens;
    if (n < 0 || n > b->cap || (n > 0 && (!b->token || !b->pos || !b->seq || !b->output)))
        return nk_fail(err, NOOK_EINVAL, "nook_session_decode_batch: malformed batch (%d entries, capacity %d)", n,
                       b->cap);
    const int n_vocab = s->m->hp.n_vocab;
    /* validate everything first, so that a refused batch changes nothing */
    memcpy(s->next_pos, s->seq_len, (size_t)s->n_seq * sizeof *s->next_pos);
    int n_out = 0;
    for (int i = 0; i < n; i++) {
        const nook_seq q = b->seq[i];
        if (q < 0 || q >= s->n_seq)
            return nk_fail(err, NOOK_EINVAL, "batch entry %d: sequence %d is out of range [0, %d)", i, q, s->n_seq);
        if (b->token[i] < 0 || b->token[i] >= n_vocab)
            return nk_fail(err, NOOK_EINVAL, "batch entry %d: token %d is out of range [0, %d)", i, b->token[i], n_vocab);
        if (b->pos[i] >= 0 && b->pos[i] != s->next_pos[q])
            return nk_fail(err, NOOK_EINVAL,
                           "batch entry %d: position %d does not continue sequence %d (its next position is %d)", i,
                           b->pos[i], q, s->next_pos[q]);
        if (++s->next_pos[q] > s->n_ctx)
            return nk_fail(err, NOOK_ERANGE, "context full: sequence %d would exceed n_ctx %d", q, s->n_ctx);
        n_out += b->output[i];
    }
    if (s->embeddings && s->pooling != NOOK_POOLING_NONE) n_out = 0;
    nook_status st = reserve_out(s, n_out, n, err);
    if (st) return st;
    if (n == 0) return NOOK_OK;
    if ((st = nook_model_check(s->m, err)) != NOOK_OK) return st;   /* as nook_session_decode */

    begin(s);
    s->single = false;
    int out_base = 0;
    for (int i = 0; i < n; i += s->n_batch) {
        const int nb = NK_MIN(s->n_batch, n - i);
        /* counting sort by sequence; positions continue each sequence in order */
        memset(s->c_cnt, 0, (size_t)(s->n_seq + 1) * sizeof *s->c_cnt);
        for (int t = 0; t < nb; t++) s->c_cnt[b->seq[i + t] + 1]++;
        for (int q = 0; q < s->n_seq; q++) s->c_cnt[q + 1] += s->c_cnt[q];
        memcpy(s->next_pos, s->seq_len, (size_t)s->n_seq * sizeof *s->next_pos);
        for (int t = 0; t < nb; t++) {
            const int q = b->seq[i + t], r = s->c_cnt[q]++;
            s->c_tok[r] = b->token[i + t];
            s->c_pos[r] = s->next_pos[q]++;
            s->c_seq[r] = q;
            s->c_out[r] = b->output[i + t];
            s->c_src[r] = i + t;
        }
        int k = 0;
        for (int r = 0; r < nb; r++) {
            const int src = s->c_src[r];
            s->out_map[src] = -1;
            if (s->c_out[r] && n_out) s->out_map[src] = out_base + k++;
        }
        if (!forward(s, nb, n_out ? s->out + (size_t)out_base * (size_t)s->out_w : NULL)) {
            st = NOOK_EABORTED;
            break;
        }
        commit(s, nb);
        out_base += k;
    }
    if (st == NOOK_OK) {
        s->n_entries = n;
        for (int i = n - 1; i >= 0 && !s->embeddings; i--)
            if (s->out_map[i] >= 0) {
                s->last_out = s->out + (size_t)s->out_map[i] * (size_t)s->out_w;
                break;
            }
    }
    return finish(s, st, err);
}

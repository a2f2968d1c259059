/*
 * session.c: sessions (KV cache, scratch, thread pool) and the llama-like forward
 * pass every architecture in src/models shares.
 *
 * Memory: nook_session_new allocates everything a decode can touch, sized for
 * n_batch tokens and n_ctx positions; nook_session_decode allocates nothing.
 *
 * KV cache: per layer and per sequence slot, K and V rows by position
 * ([n_seq][n_ctx][n_head_kv*hd], see session.h). Elements are f16 by default, as llama.cpp stores them, so values round as in llama.cpp;
 * nook_session_params.kv_type selects q8_0 or q4_0 (each head's row quantized as
 * whole blocks, as llama.cpp's --cache-type-k/v q8_0 / q4_0) or f32; NOOK_KV_F32=1 in the
 * environment forces f32 (a debugging aid).
 *
 * Attention numerics follow llama.cpp's flash-attention kernel, which its default
 * (-fa auto) selects on the CPU; nook_session_params.plain_attn selects the numerics
 * of its non-flash path (-fa off) instead. Both match the reference to ~1e-5 in
 * log-probability on the fixture models (tests/model).
 */
#include "model/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* MADV_HUGEPAGE on the 2 MB-aligned pages inside [p, p + n) (large blocks only: the
 * allocator gives those their own mapping), only when NOOK_KV_HUGEPAGES=1. Off by
 * default: with the kernel's usual THP defrag setting ("madvise"), a first touch of an
 * advised region may compact memory in the faulting thread, and the server stalled
 * 0.9-2.9 s (TTFT p99 0.75-1.5 s instead of 0.12 s) when 4 clients first used fresh
 * slots of a qwen3-0.6b cache (bench/serve-load.mjs, session 7). Decoding at depth
 * gains a little from 2 MB pages (bench/bench_attn.c), so it stays available. */
static void advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    const char *env = getenv("NOOK_KV_HUGEPAGES");
    if (!env || strcmp(env, "1") != 0) return;
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (n < 2 * huge) return;
    const uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + n) & ~(huge - 1);
    if (e > a) (void)madvise((void *)a, (size_t)(e - a), MADV_HUGEPAGE);
#else
    (void)p, (void)n;
#endif
}

nook_session_params nook_session_default_params(void) {
    return (nook_session_params){ .n_ctx = 0, .n_batch = 0, .n_threads = 0, .pooling = NOOK_POOLING_UNSPECIFIED };
}

void nook_session_free(nook_session *s) {
    if (!s) return;
    nk_pool_free(s->pool);
    nk_aligned_free(s->kv);
    float **bufs[] = { &s->x, &s->xb, &s->q, &s->k, &s->v, &s->att, &s->tmp, &s->gate, &s->up,
                       &s->rope_cs, &s->logits, &s->out, &s->pooled };
    for (size_t i = 0; i < NK_ARRAY_LEN(bufs); i++) nk_aligned_free(*bufs[i]);
    nk_aligned_free(s->wbuf);
    nk_aligned_free(s->attn_ws);
    void *plain[] = { s->seq_len, s->seq_tok, s->next_pos, s->segs, s->c_tok, s->c_pos, s->c_seq, s->c_out,
                      s->c_src, s->c_cnt, s->out_map, s->pooled_n };
    for (size_t i = 0; i < NK_ARRAY_LEN(plain); i++) nk_free(plain[i]);
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
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_threads < 0 || p->n_seq_max < 0)
        return nk_fail(err, NOOK_EINVAL,
                       "session params must not be negative (n_ctx %d, n_batch %d, n_threads %d, n_seq_max %d)",
                       p->n_ctx, p->n_batch, p->n_threads, p->n_seq_max);
    if (p->n_seq_max > 4096) return nk_fail(err, NOOK_EINVAL, "n_seq_max %d is above 4096", p->n_seq_max);
    if (p->pooling < NOOK_POOLING_UNSPECIFIED || p->pooling > NOOK_POOLING_LAST)
        return nk_fail(err, NOOK_EINVAL, "unknown pooling type %d", (int)p->pooling);
    const nk_hparams *hp = &m->hp;
    nook_session *s = nk_calloc(1, sizeof *s);
    if (!s) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    s->m = m;
    s->n_ctx = p->n_ctx ? p->n_ctx : NK_MIN(hp->n_ctx_train, 4096);
    s->n_seq = p->n_seq_max ? p->n_seq_max : 1;
    /* a pass holds at most n_ctx tokens of each sequence */
    s->n_batch = (int)NK_MIN((int64_t)(p->n_batch ? p->n_batch : 512), (int64_t)s->n_ctx * s->n_seq);
    s->embeddings = p->embeddings;
    s->pooling = p->pooling;
    if (s->pooling == NOOK_POOLING_UNSPECIFIED) {
        /* <arch>.pooling_type as llama.cpp numbers it (0 none, 1 mean, 2 cls, 3 last;
         * 4 rank is not an embedding); mean when absent */
        int pt = NOOK_POOLING_MEAN;
        nook_status pst = nk_hp_u32(m, "pooling_type", false, &pt, NULL);
        s->pooling = pst == NOOK_OK && pt >= NOOK_POOLING_NONE && pt <= NOOK_POOLING_LAST ? (nook_pooling)pt
                                                                                          : NOOK_POOLING_MEAN;
    }
    const char *kv32 = getenv("NOOK_KV_F32");
    s->kv_type = p->kv_type == NOOK_KV_Q8_0   ? NK_TYPE_Q8_0
                 : p->kv_type == NOOK_KV_Q4_0 ? NK_TYPE_Q4_0
                 : p->kv_type == NOOK_KV_F32  ? NK_TYPE_F32
                                              : NK_TYPE_F16;
    if (kv32 && kv32[0] == '1') s->kv_type = NK_TYPE_F32;
    s->flash = !p->plain_attn;
    if ((unsigned)p->kv_type > NOOK_KV_Q4_0) {
        nk_free(s);
        return nk_fail(err, NOOK_EINVAL, "unknown KV cache type %d", (int)p->kv_type);
    }
    const bool kv_quant = s->kv_type == NK_TYPE_Q8_0 || s->kv_type == NK_TYPE_Q4_0;
    const char *kv_name = s->kv_type == NK_TYPE_Q4_0 ? "q4_0" : "q8_0";
    if (kv_quant && !s->flash) {
        nk_free(s);
        return nk_fail(err, NOOK_EINVAL, "a %s KV cache needs flash attention (as in llama.cpp)", kv_name);
    }
    if (kv_quant && (hp->head_dim_k % 32 || hp->head_dim_v % 32)) {
        nk_free(s);
        return nk_fail(err, NOOK_EUNSUPPORTED, "a %s KV cache needs head sizes that are multiples of 32 (model: %d, %d)",
                       kv_name, hp->head_dim_k, hp->head_dim_v);
    }

    nook_status st = nk_pool_new(p->n_threads ? p->n_threads : nook_max_threads(), &s->pool, err);
    if (st) goto fail;

    const int64_t n_q = (int64_t)hp->n_head * hp->head_dim_k;
    const int64_t n_k = (int64_t)hp->n_head_kv * hp->head_dim_k;
    const int64_t n_v = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t n_o = (int64_t)hp->n_head * hp->head_dim_v;
    uint64_t kb, vb, total;
    s->k_row = nk_row_size(s->kv_type, n_k);
    s->v_row = nk_row_size(s->kv_type, n_v);
    uint64_t slots;
    if (!nk_mul_ok((uint64_t)s->n_ctx, (uint64_t)s->n_seq, &slots) || !nk_mul_ok(slots, (uint64_t)s->k_row, &kb) ||
        !nk_mul_ok(slots, (uint64_t)s->v_row, &vb) ||
        !nk_add_ok(kb, vb, &total) || !nk_mul_ok(total, (uint64_t)hp->n_layer, &total) || total > SIZE_MAX / 2) {
        st = nk_fail(err, NOOK_ERANGE, "KV cache for n_ctx %d x %d sequences does not fit in memory", s->n_ctx,
                     s->n_seq);
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
    /* Decoding at depth streams the whole cache every step: 4 KiB pages would cost a
     * TLB miss (a page walk, slow on a VM) every two rows of a head, so the cache asks
     * for transparent 2 MB pages (advice only: the 2 MB-aligned inside of the block) */
    advise_huge(s->kv, (size_t)total);
    /* not cleared: positions >= n_past are never read, and touching gigabytes here
     * (8B model, 4096 positions: 1.2 GB) would delay the first token; the pages
     * fault in as decoding writes them */

    const int nb = s->n_batch;
    if (!alloc_f32(&s->x, nb, hp->n_embd) || !alloc_f32(&s->xb, nb, hp->n_embd) || !alloc_f32(&s->q, nb, n_q) ||
        !alloc_f32(&s->k, nb, n_k) || !alloc_f32(&s->v, nb, n_v) || !alloc_f32(&s->att, nb, n_o) ||
        !alloc_f32(&s->tmp, nb, hp->n_embd) || !alloc_f32(&s->gate, nb, hp->n_ff) || !alloc_f32(&s->up, nb, hp->n_ff) ||
        !alloc_f32(&s->rope_cs, nb, hp->rope.n_rot) || !alloc_f32(&s->logits, 1, hp->n_vocab) ||
        !alloc_f32(&s->pooled, s->n_seq, hp->n_embd)) {
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
    s->seq_len = nk_calloc((size_t)s->n_seq, sizeof *s->seq_len);
    s->seq_tok = nk_alloc_array(slots, sizeof *s->seq_tok);
    s->next_pos = nk_calloc((size_t)s->n_seq, sizeof *s->next_pos);
    s->segs = nk_calloc((size_t)s->n_seq, sizeof *s->segs);
    s->pooled_n = nk_calloc((size_t)s->n_seq, sizeof *s->pooled_n);
    s->c_cnt = nk_calloc((size_t)s->n_seq + 1, sizeof *s->c_cnt);
    s->c_tok = nk_calloc((size_t)nb, sizeof *s->c_tok);
    s->c_pos = nk_calloc((size_t)nb, sizeof *s->c_pos);
    s->c_seq = nk_calloc((size_t)nb, sizeof *s->c_seq);
    s->c_out = nk_calloc((size_t)nb, sizeof *s->c_out);
    s->c_src = nk_calloc((size_t)nb, sizeof *s->c_src);
    if (!s->seq_len || !s->seq_tok || !s->next_pos || !s->segs || !s->pooled_n || !s->c_cnt || !s->c_tok ||
        !s->c_pos || !s->c_seq || !s->c_out || !s->c_src) {
        st = nk_fail(err, NOOK_ENOMEM, "cannot allocate the bookkeeping of %d sequences", s->n_seq);
        goto fail;
    }
    /* the pool's largest lease: attention scratch is per thread */
    const size_t aw = nk_attn_wsize(nk_pool_size(s->pool), s->n_ctx, NK_MAX(hp->head_dim_k, hp->head_dim_v));
    if (!(s->attn_ws = nk_aligned_alloc(aw))) {
        st = nk_fail(err, NOOK_ENOMEM, "cannot allocate %zu bytes of attention scratch", aw);
        goto fail;
    }
    nk_log(NK_LOG_DEBUG, "session: n_ctx %d x %d sequences (KV %.1f MiB), n_batch %d, up to %d threads", s->n_ctx,
           s->n_seq, (double)total / (1024.0 * 1024.0), s->n_batch, nk_pool_size(s->pool));
    *out = s;
    return NOOK_OK;
fail:
    nook_session_free(s);
    return st;
}

/* ---- accessors -------------------------------------------------------------------- */

int nook_session_n_past(const nook_session *s) { return s->seq_len[0]; }
int nook_session_n_ctx(const nook_session *s) { return s->n_ctx; }
int nook_session_n_seq_max(const nook_session *s) { return s->n_seq; }
const float *nook_session_logits(const nook_session *s) { return s->last_out ? s->last_out : s->logits; }
nook_pooling nook_session_pooling(const nook_session *s) { return s->pooling; }
const nook_model *nook_session_model(const nook_session *s) { return s->m; }

const float *nook_session_logits_ith(const nook_session *s, int i) {
    if (!s || s->embeddings || i < 0 || i >= s->n_entries) return NULL;
    if (s->single) return i == s->n_entries - 1 && s->last_out ? s->last_out : NULL;
    const int r = s->out_map[i];
    return r < 0 ? NULL : s->out + (size_t)r * (size_t)s->out_w;
}

const float *nook_session_embeddings_ith(const nook_session *s, int i) {
    if (!s || !s->embeddings || s->pooling != NOOK_POOLING_NONE || s->single || i < 0 || i >= s->n_entries)
        return NULL;
    const int r = s->out_map[i];
    return r < 0 ? NULL : s->out + (size_t)r * (size_t)s->out_w;
}

const float *nook_session_embeddings_seq(const nook_session *s, nook_seq seq) {
    if (!s || !s->embeddings || s->pooling == NOOK_POOLING_NONE || seq < 0 || seq >= s->n_seq || !s->pooled_n[seq])
        return NULL;
    return s->pooled + (size_t)seq * (size_t)s->m->hp.n_embd;
}

void nook_session_set_abort(nook_session *s, bool (*fn)(void *ud), void *ud) {
    if (s) nk_pool_set_abort(s->pool, fn, ud);
}

/* ---- sequences --------------------------------------------------------------------- */

void nook_session_truncate(nook_session *s, int pos) {
    /* entries past a sequence's length are never read, so forgetting is moving the mark */
    if (pos < 0) pos = 0;
    if (pos < s->seq_len[0]) s->seq_len[0] = pos;
}

int nook_session_seq_pos_max(const nook_session *s, nook_seq seq) {
    if (!s || seq < 0 || seq >= s->n_seq) return -1;
    return s->seq_len[seq] - 1;
}

bool nook_session_seq_rm(nook_session *s, nook_seq seq, int p0, int p1) {
    if (!s || seq >= s->n_seq) return false;
    if (p0 < 0) p0 = 0;
    const int lo = seq < 0 ? 0 : seq, hi = seq < 0 ? s->n_seq : seq + 1;
    /* a hole in any sequence: refuse before changing any */
    for (int q = lo; q < hi; q++)
        if (p1 >= 0 && p1 < s->seq_len[q] && p0 < p1) return false;
    for (int q = lo; q < hi; q++)
        if (p0 < s->seq_len[q]) s->seq_len[q] = p0;
    return true;
}

void nook_session_seq_clear(nook_session *s, nook_seq seq) {
    if (!s || seq >= s->n_seq) return;
    for (int q = seq < 0 ? 0 : seq; q < (seq < 0 ? s->n_seq : seq + 1); q++) s->seq_len[q] = 0;
}

bool nook_session_seq_cp(nook_session *s, nook_seq src, nook_seq dst, int p0, int p1) {
    if (!s || src < 0 || dst < 0 || src >= s->n_seq || dst >= s->n_seq) return false;
    if (p0 < 0) p0 = 0;
    if (p1 < 0 || p1 > s->seq_len[src]) p1 = s->seq_len[src];
    if (p0 > s->seq_len[dst] || p0 > s->seq_len[src]) return false;
    if (src == dst) return true;
    if (p1 < p0) p1 = p0;
    const size_t n = (size_t)(p1 - p0);
    for (int l = 0; l < s->m->hp.n_layer && n; l++) {
        memcpy(nk_sess_k(s, l, dst) + (size_t)p0 * s->k_row, nk_sess_k(s, l, src) + (size_t)p0 * s->k_row, n * s->k_row);
        memcpy(nk_sess_v(s, l, dst) + (size_t)p0 * s->v_row, nk_sess_v(s, l, src) + (size_t)p0 * s->v_row, n * s->v_row);
    }
    memcpy(s->seq_tok + (size_t)dst * (size_t)s->n_ctx + p0, s->seq_tok + (size_t)src * (size_t)s->n_ctx + p0,
           n * sizeof *s->seq_tok);
    s->seq_len[dst] = p1;
    return true;
}

int nook_session_prefix_match(const nook_session *s, const nook_token *toks, int n, nook_seq *best) {
    if (best) *best = -1;
    if (!s || !toks || n <= 0) return 0;
    int best_len = 0;
    for (int q = 0; q < s->n_seq; q++) {
        const nook_token *held = s->seq_tok + (size_t)q * (size_t)s->n_ctx;
        const int lim = NK_MIN(n, s->seq_len[q]);
        int k = 0;
        while (k < lim && held[k] == toks[k]) k++;
        if (k > best_len) {
            best_len = k;
            if (best) *best = q;
        }
    }
    return best_len;
}

/* ---- batches ----------------------------------------------------------------------- */

nook_status nook_batch_init(nook_batch *b, int cap, nook_error *err) {
    if (!b) return nk_fail(err, NOOK_EINVAL, "nook_batch_init: batch is NULL");
    memset(b, 0, sizeof *b);
    if (cap < 1) return nk_fail(err, NOOK_EINVAL, "nook_batch_init: capacity %d must be at least 1", cap);
    b->token = nk_alloc_array((size_t)cap, sizeof *b->token);
    b->pos = nk_alloc_array((size_t)cap, sizeof *b->pos);
    b->seq = nk_alloc_array((size_t)cap, sizeof *b->seq);
    b->output = nk_alloc_array((size_t)cap, sizeof *b->output);
    if (!b->token || !b->pos || !b->seq || !b->output) {
        nook_batch_free(b);
        return nk_fail(err, NOOK_ENOMEM, "cannot allocate a batch of %d entries", cap);
    }
    b->cap = cap;
    return NOOK_OK;
}

void nook_batch_free(nook_batch *b) {
    if (!b) return;
    nk_free(b->token);
    nk_free(b->pos);
    nk_free(b->seq);
    nk_free(b->output);
    memset(b, 0, sizeof *b);
}

void nook_batch_clear(nook_batch *b) {
    if (b) b->n_tokens = 0;
}

bool nook_batch_add(nook_batch *b, nook_token tok, int32_t pos, nook_seq seq, bool output) {
    if (!b || b->n_tokens >= b->cap) return false;
    const int i = b->n_tokens++;
    b->token[i] = tok;
    b->pos[i] = pos;
    b->seq[i] = seq;
    b->output[i] = output;
    return true;
}

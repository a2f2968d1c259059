/*
 * embed.c: a model's pooled embedding of a text, the features of `--from MODEL`.
 *
 * The engine does the work (nook_session_params.embeddings: the hidden states after
 * the final norm, pooled as the model's pooling_type says, mean when absent). A text
 * longer than the session's context is cut to its first n_ctx tokens (what a
 * classifier of short texts needs; stated in docs/specialist.md).
 */
#include "specialist/specialist.h"

#include <string.h>

/* Below this many parameters the embedder decodes on one thread (see nk_embedder_open). */
#define NK_EMBED_SMALL_PARAMS 50000000u

struct nk_embedder {
    nook_model *m;
    nook_session *s;
    nook_batch b;
    nook_token *toks;
    int n_ctx, dim;
};

nook_status nk_embedder_open(const char *model_path, int n_threads, nk_embedder **out, nook_error *err) {
    *out = NULL;
    nk_embedder *e = nk_calloc(1, sizeof *e);
    if (!e) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_model_params mp = nook_model_default_params();
    mp.n_threads = n_threads;
    nook_status st = nook_model_load(model_path, &mp, &e->m, err);
    if (st) { nk_free(e); return st; }
    nook_session_params sp = nook_session_default_params();
    sp.embeddings = true;
    /* A small model's decode of one short text is microseconds of work per kernel:
     * more threads only add barriers, and on a busy machine every barrier waits for a
     * descheduled thread (measured in docs/specialist.md "Speed"). One thread then. */
    if (n_threads <= 0 && nook_model_n_params(e->m) < NK_EMBED_SMALL_PARAMS) n_threads = 1;
    sp.n_threads = n_threads;
    sp.n_ctx = NK_MIN(nook_model_n_ctx_train(e->m), 512);
    if ((st = nook_session_new(e->m, &sp, &e->s, err))) goto fail;
    e->n_ctx = nook_session_n_ctx(e->s);
    e->dim = nook_model_n_embd(e->m);
    if ((st = nook_batch_init(&e->b, e->n_ctx, err))) goto fail;
    e->toks = nk_alloc_array((size_t)e->n_ctx + 1, sizeof *e->toks);
    if (!e->toks) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto fail; }
    if (nook_session_pooling(e->s) == NOOK_POOLING_NONE) {
        st = nk_fail(err, NOOK_EUNSUPPORTED, "%s: the model's pooling is 'none'; a specialist needs one vector per text",
                     model_path);
        goto fail;
    }
    *out = e;
    return NOOK_OK;
fail:
    nk_embedder_free(e);
    return st;
}

uint32_t nk_embedder_dim(const nk_embedder *e) { return (uint32_t)e->dim; }

nook_status nk_embedder_embed(nk_embedder *e, const char *text, size_t len, float *out, nook_error *err) {
    size_t n = 0;
    nook_status st = nook_tokenize(e->m, text, len, true, false, e->toks, (size_t)e->n_ctx, &n, err);
    if (st == NOOK_ERANGE) st = NOOK_OK;   /* longer than the context: the first n_ctx tokens */
    if (st) return st;
    if (n > (size_t)e->n_ctx) n = (size_t)e->n_ctx;
    if (n == 0) return nk_fail(err, NOOK_EINVAL, "the text has no tokens");
    nook_session_seq_clear(e->s, -1);
    nook_batch_clear(&e->b);
    for (size_t i = 0; i < n; i++) nook_batch_add(&e->b, e->toks[i], (int32_t)i, 0, true);
    if ((st = nook_session_decode_batch(e->s, &e->b, err))) return st;
    const float *v = nook_session_embeddings_seq(e->s, 0);
    if (!v) return nk_fail(err, NOOK_EINTERNAL, "the session returned no embedding");
    memcpy(out, v, (size_t)e->dim * sizeof *out);
    return NOOK_OK;
}

void nk_embedder_free(nk_embedder *e) {
    if (!e) return;
    nk_free(e->toks);
    nook_batch_free(&e->b);
    nook_session_free(e->s);
    nook_model_free(e->m);
    nk_free(e);
}

nook_status nk_embed_dataset(nk_embedder *e, const nk_dataset *d, float **out, nook_error *err) {
    *out = NULL;
    float *v = nk_alloc_array(d->n * (size_t)e->dim + 1, sizeof *v);
    if (!v) return nk_fail(err, NOOK_ENOMEM, "out of memory (%zu embeddings)", d->n);
    for (size_t i = 0; i < d->n; i++) {
        nook_status st = nk_embedder_embed(e, d->texts[i], strlen(d->texts[i]), v + i * (size_t)e->dim, err);
        if (st) {
            nk_prefix(err, "line %zu: ", d->lines[i]);
            nk_free(v);
            return st;
        }
    }
    *out = v;
    return NOOK_OK;
}

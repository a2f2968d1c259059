/*
 * embed.c: embeddings for a batch of texts (nook_session_embed, nook_embed).
 *
 * Texts are tokenized with add_special (BOS/EOS as the vocabulary's add_bos/add_eos
 * say: llama.cpp's rule, which gives Qwen3-Embedding its trailing <|endoftext|>, the
 * token whose hidden state its last-token pooling reads) and without parsing control
 * tokens in the text. Several texts go into one batch, one sequence each, as long as
 * they fit n_seq_max sequences and n_batch tokens (a longer text gets a batch of its
 * own and is pooled across passes). Pooling happens in the decode (forward.c); here
 * the pooled vectors are copied out and L2-normalised (Ollama's /api/embed) unless
 * raw.
 */
#include "model/session.h"

#include <math.h>
#include <string.h>

static void l2_normalize(float *v, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)v[i] * v[i];
    if (ss <= 0) return;
    const float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < n; i++) v[i] *= inv;
}

nook_status nook_session_embed(nook_session *s, const char *const *texts, int n_texts, bool raw, bool truncate,
                               float *out, int *n_tokens, nook_error *err) {
    if (n_tokens) *n_tokens = 0;
    if (!s || n_texts < 0 || (n_texts && (!texts || !out)))
        return nk_fail(err, NOOK_EINVAL, "nook_session_embed: NULL argument");
    if (!s->embeddings || s->pooling == NOOK_POOLING_NONE)
        return nk_fail(err, NOOK_EINVAL, "nook_session_embed: the session needs embeddings on and a pooling other than none");
    const nook_model *m = s->m;
    const int n_embd = m->hp.n_embd;
    /* token ids of every text, one buffer (this is not the token loop) */
    size_t total = 0;
    nook_status st = NOOK_OK;
    int *offs = nk_alloc_array((size_t)n_texts + 1, sizeof *offs);
    nook_token *toks = NULL;
    nook_batch b = { 0 };
    if (!offs) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    for (int i = 0; i < n_texts; i++) {
        if (!texts[i]) {
            st = nk_fail(err, NOOK_EINVAL, "text %d is NULL", i);
            goto done;
        }
        size_t need = 0;
        st = nook_tokenize(m, texts[i], strlen(texts[i]), true, false, NULL, 0, &need, err);
        if (st && st != NOOK_ERANGE) {
            nk_prefix(err, "text %d: ", i);
            goto done;
        }
        st = NOOK_OK;
        if (need == 0) {
            st = nk_fail(err, NOOK_EINVAL, "text %d is empty and the vocabulary adds no special tokens", i);
            goto done;
        }
        if (need > (size_t)s->n_ctx && !truncate) {
            st = nk_fail(err, NOOK_ERANGE, "text %d has %zu tokens, more than the context of %d", i, need, s->n_ctx);
            goto done;
        }
        total += need;
    }
    toks = nk_alloc_array(total ? total : 1, sizeof *toks);
    if (!toks || nook_batch_init(&b, s->n_batch, err) != NOOK_OK) {
        st = nk_fail(err, NOOK_ENOMEM, "out of memory");
        goto done;
    }
    size_t at = 0;
    for (int i = 0; i < n_texts; i++) {
        size_t n = 0;
        st = nook_tokenize(m, texts[i], strlen(texts[i]), true, false, toks + at, total - at, &n, err);
        if (st) goto done;
        offs[i] = (int)at;
        at += n;
    }
    offs[n_texts] = (int)at;

    int done_texts = 0, sum = 0;
    while (done_texts < n_texts) {
        /* as many texts as fit one pass (at least one) */
        nook_session_seq_clear(s, -1);
        int k = 0, used = 0;
        while (done_texts + k < n_texts && k < s->n_seq) {
            const int i = done_texts + k;
            const int len = NK_MIN(offs[i + 1] - offs[i], s->n_ctx);
            if (k > 0 && used + len > s->n_batch) break;
            used += len;
            k++;
        }
        /* one batch per text group; a text longer than n_batch is one batch of its own
         * (the decode cuts it into passes) */
        for (int j = 0; j < k; j++) {
            const int i = done_texts + j;
            const int len = NK_MIN(offs[i + 1] - offs[i], s->n_ctx);
            if (b.cap < len + b.n_tokens) {
                nook_batch nb;
                if ((st = nook_batch_init(&nb, len + b.n_tokens, err))) goto done;
                memcpy(nb.token, b.token, (size_t)b.n_tokens * sizeof *b.token);
                memcpy(nb.pos, b.pos, (size_t)b.n_tokens * sizeof *b.pos);
                memcpy(nb.seq, b.seq, (size_t)b.n_tokens * sizeof *b.seq);
                memcpy(nb.output, b.output, (size_t)b.n_tokens * sizeof *b.output);
                nb.n_tokens = b.n_tokens;
                nook_batch_free(&b);
                b = nb;
            }
            for (int t = 0; t < len; t++) nook_batch_add(&b, toks[offs[i] + t], t, j, t == len - 1);
            sum += len;
        }
        if ((st = nook_session_decode_batch(s, &b, err))) goto done;
        for (int j = 0; j < k; j++) {
            const float *e = nook_session_embeddings_seq(s, j);
            if (!e) {
                st = nk_fail(err, NOOK_EINTERNAL, "no pooled embedding for sequence %d", j);
                goto done;
            }
            float *o = out + (size_t)(done_texts + j) * (size_t)n_embd;
            memcpy(o, e, (size_t)n_embd * sizeof *o);
            if (!raw) l2_normalize(o, n_embd);
        }
        nook_batch_clear(&b);
        done_texts += k;
    }
    nook_session_seq_clear(s, -1);
    if (n_tokens) *n_tokens = sum;
done:
    nook_batch_free(&b);
    nk_free(toks);
    nk_free(offs);
    return st;
}

nook_status nook_embed(const nook_model *m, const char *const *texts, int n_texts, nook_pooling pooling, bool raw,
                       int n_threads, float *out, nook_error *err) {
    if (!m) return nk_fail(err, NOOK_EINVAL, "nook_embed: model is NULL");
    nook_session_params sp = nook_session_default_params();
    sp.embeddings = true;
    sp.pooling = pooling;
    sp.n_threads = n_threads;
    sp.n_seq_max = NK_MAX(1, NK_MIN(n_texts, 16));
    /* each sequence up to the longest text (whole texts, as Ollama's truncate=false) */
    int longest = 1;
    for (int i = 0; i < n_texts; i++) {
        size_t need = 0;
        if (texts && texts[i]) nook_tokenize(m, texts[i], strlen(texts[i]), true, false, NULL, 0, &need, NULL);
        longest = NK_MAX(longest, (int)NK_MIN(need, (size_t)m->hp.n_ctx_train));
    }
    sp.n_ctx = longest;
    sp.n_batch = NK_MAX(512, longest);
    nook_session *s = NULL;
    nook_status st = nook_session_new(m, &sp, &s, err);
    if (st) return st;
    st = nook_session_embed(s, texts, n_texts, raw, false, out, NULL, err);
    nook_session_free(s);
    return st;
}

/*
 * zeroshot.c: the general model, prompted zero-shot with the label set, as the
 * learning curve's comparison (docs/specialist.md "Results"): the label whose tokens
 * are most probable after the prompt
 *     Text: <the text>
 *     Which label fits the text: <l1>, <l2>, ...?
 *     Label:
 * wins; a label's score is the sum of the log-probabilities of its tokens (written
 * with a leading space, " <label>", as a completion would continue), so with labels of
 * unequal token counts the longer ones pay for their extra tokens (no length
 * normalisation). The prompt is decoded once per text; each label's tokens after it
 * reuse its cache (seq_rm back to the prompt). The model runs raw, without a chat
 * template (what a base model needs; an instruct model is prompted the same way).
 * A text longer than the context is cut to its first tokens.
 */
#include "specialist/specialist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ZS_CTX 1024   /* context; the text gets what the rest leaves */

struct nk_zeroshot {
    nook_model *m;               /* freed with z only when owned (nk_zeroshot_open)  */
    bool own_model;
    nook_session *s;
    nook_batch b;
    int k, n_ctx, n_vocab;
    nook_token *toks;            /* [n_ctx] */
    nook_token **lab;            /* [k] label tokens */
    int *n_lab;
    nook_token *suffix;          /* "\nWhich label fits ...?\nLabel:" */
    int n_suffix, max_lab;
};

void nk_zeroshot_free(nk_zeroshot *z) {
    if (!z) return;
    if (z->lab)
        for (int c = 0; c < z->k; c++) nk_free(z->lab[c]);
    nk_free(z->lab);
    nk_free(z->n_lab);
    nk_free(z->suffix);
    nk_free(z->toks);
    nook_batch_free(&z->b);
    nook_session_free(z->s);
    if (z->own_model) nook_model_free(z->m);
    nk_free(z);
}

/* Tokens of text (no BOS) into a new array. */
static nook_status tok(const nook_model *m, const char *text, nook_token **out, int *n, int cap, nook_error *err) {
    nook_token *t = nk_alloc_array((size_t)cap, sizeof *t);
    if (!t) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    size_t got = 0;
    nook_status st = nook_tokenize(m, text, strlen(text), false, false, t, (size_t)cap, &got, err);
    if (st) { nk_free(t); return st; }
    *out = t;
    *n = (int)got;
    return NOOK_OK;
}

/* The scorer over z->m (set, owned or not): its session, the prompt's suffix, the
 * labels' tokens. Frees z on failure. */
static nook_status zs_init(nk_zeroshot *z, char *const *labels, int k, nk_zeroshot **out, nook_error *err) {
    nook_status st;
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = NK_MIN(nook_model_n_ctx_train(z->m), ZS_CTX);
    if (nook_model_n_params(z->m) < 50000000u) sp.n_threads = 1;   /* as nk_embedder_open: barriers cost more */
    if ((st = nook_session_new(z->m, &sp, &z->s, err))) goto fail;
    z->n_ctx = nook_session_n_ctx(z->s);
    z->n_vocab = nook_model_n_vocab(z->m);
    if ((st = nook_batch_init(&z->b, z->n_ctx, err))) goto fail;
    z->toks = nk_alloc_array((size_t)z->n_ctx + 1, sizeof *z->toks);
    z->lab = nk_calloc((size_t)k, sizeof *z->lab);
    z->n_lab = nk_calloc((size_t)k, sizeof *z->n_lab);
    size_t cap = 128;
    for (int c = 0; c < k; c++) cap += strlen(labels[c]) + 2;
    char *suffix = nk_malloc(cap);
    if (!z->toks || !z->lab || !z->n_lab || !suffix) { nk_free(suffix); st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto fail; }
    size_t o = (size_t)snprintf(suffix, cap, "\nWhich label fits the text: ");
    for (int c = 0; c < k; c++) o += (size_t)snprintf(suffix + o, cap - o, "%s%s", labels[c], c + 1 < k ? ", " : "?\nLabel:");
    st = tok(z->m, suffix, &z->suffix, &z->n_suffix, z->n_ctx, err);
    nk_free(suffix);
    if (st) goto fail;
    for (int c = 0; c < k && !st; c++) {
        char lb[NK_SPEC_MAX_LABEL + 2];
        snprintf(lb, sizeof lb, " %s", labels[c]);
        if (!(st = tok(z->m, lb, &z->lab[c], &z->n_lab[c], 64, err)) && z->n_lab[c] == 0)
            st = nk_fail(err, NOOK_EINVAL, "zero-shot: label '%s' has no tokens", labels[c]);
        z->max_lab = NK_MAX(z->max_lab, z->n_lab[c]);
    }
    if (st) goto fail;
    if (z->n_suffix + z->max_lab + 8 > z->n_ctx) { st = nk_fail(err, NOOK_EINVAL, "zero-shot: the labels leave no room for text"); goto fail; }
    *out = z;
    return NOOK_OK;
fail:
    nk_zeroshot_free(z);
    return st;
}

nook_status nk_zeroshot_open(const char *model_path, char *const *labels, int k, nk_zeroshot **out, nook_error *err) {
    *out = NULL;
    if (k < 2) return nk_fail(err, NOOK_EINVAL, "zero-shot: need at least two labels");
    nk_zeroshot *z = nk_calloc(1, sizeof *z);
    if (!z) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    z->k = k;
    nook_model_params mp = nook_model_default_params();
    nook_status st = nook_model_load(model_path, &mp, &z->m, err);
    if (st) { nk_free(z); return st; }
    z->own_model = true;
    return zs_init(z, labels, k, out, err);
}

nook_status nk_zeroshot_open_model(const nook_model *m, char *const *labels, int k, nk_zeroshot **out,
                                   nook_error *err) {
    *out = NULL;
    if (!m) return nk_fail(err, NOOK_EINVAL, "zero-shot: no model");
    if (k < 2) return nk_fail(err, NOOK_EINVAL, "zero-shot: need at least two labels");
    nk_zeroshot *z = nk_calloc(1, sizeof *z);
    if (!z) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    z->k = k;
    z->m = (nook_model *)m;   /* only read: never freed here (own_model false) */
    return zs_init(z, labels, k, out, err);
}

static double log_softmax_at(const float *l, int n, int t) {
    double m = l[0];
    for (int i = 1; i < n; i++) m = l[i] > m ? l[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)l[i] - m);
    return (double)l[t] - m - log(s);
}

nook_status nk_zeroshot_classify(nk_zeroshot *z, const char *text, size_t len, double *logp, int *best, nook_error *err) {
    /* "Text: " + the text (with BOS), cut to leave room for the suffix and a label */
    const int room = z->n_ctx - z->n_suffix - z->max_lab;
    char *pre = nk_malloc(len + 8);
    if (!pre) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    memcpy(pre, "Text: ", 6);
    memcpy(pre + 6, text, len);
    size_t n = 0;
    nook_status st = nook_tokenize(z->m, pre, len + 6, true, false, z->toks, (size_t)room, &n, err);
    nk_free(pre);
    if (st == NOOK_ERANGE) st = NOOK_OK;
    if (st) return st;
    if (n > (size_t)room) n = (size_t)room;
    memcpy(z->toks + n, z->suffix, (size_t)z->n_suffix * sizeof *z->toks);
    const int np = (int)n + z->n_suffix;
    nook_session_seq_clear(z->s, -1);
    nook_batch_clear(&z->b);
    for (int i = 0; i < np; i++) nook_batch_add(&z->b, z->toks[i], i, 0, i == np - 1);
    if ((st = nook_session_decode_batch(z->s, &z->b, err))) return st;
    const float *l0 = nook_session_logits_ith(z->s, np - 1);
    if (!l0) return nk_fail(err, NOOK_EINTERNAL, "zero-shot: no logits");
    /* every label's first token from the prompt's logits (copied: the next decode reuses the buffer) */
    for (int c = 0; c < z->k; c++) logp[c] = log_softmax_at(l0, z->n_vocab, z->lab[c][0]);
    for (int c = 0; c < z->k; c++) {
        if (z->n_lab[c] < 2) continue;
        nook_session_seq_rm(z->s, 0, np, -1);
        nook_batch_clear(&z->b);
        for (int j = 0; j < z->n_lab[c] - 1; j++) nook_batch_add(&z->b, z->lab[c][j], np + j, 0, true);
        if ((st = nook_session_decode_batch(z->s, &z->b, err))) return st;
        for (int j = 0; j < z->n_lab[c] - 1; j++)
            logp[c] += log_softmax_at(nook_session_logits_ith(z->s, j), z->n_vocab, z->lab[c][j + 1]);
    }
    int b = 0;
    for (int c = 1; c < z->k; c++) if (logp[c] > logp[b]) b = c;
    *best = b;
    return NOOK_OK;
}

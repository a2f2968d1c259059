/*
 * classify.c: a loaded specialist applied to texts: features, calibrated
 * probabilities, the abstain decision, the JSON result that the CLI and the server
 * both print, and evaluation on labelled data.
 */
#include "specialist/specialist.h"
#include "specialist/spec_internal.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

nook_status nk_spec_classify(const nk_spec *s, const char *text, size_t len, const float *emb,
                             double *probs, nk_class_result *res, nook_error *err) {
    if (s->embed_dim && !emb)
        return nk_fail(err, NOOK_EINVAL, "specialist '%s' needs the embedding of model '%s'", s->name,
                       s->base_model);
    nk_sparse cnt[2] = { { 0 }, { 0 } };
    nook_status st = NOOK_OK;
    uint32_t *col = NULL;
    double *val = NULL;
    const bool text_feats = s->feat.word_max || s->feat.char_max;
    if (text_feats && (st = nk_feat_counts(&s->feat, text, len, cnt, err))) return st;
    size_t m = cnt[0].n + cnt[1].n + s->embed_dim;
    col = nk_alloc_array(m + 1, sizeof *col);
    val = nk_alloc_array(m + 1, sizeof *val);
    if (!col || !val) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
    const double scale = 1.0 / sqrt((double)nk_feat_blocks(&s->feat, s->embed_dim, text_feats));
    size_t nz = 0;
    if (text_feats) nz = nk_feat_row(s->ids, s->idf, s->d_text, cnt, scale, col, val);
    if (s->embed_dim) nz += nk_feat_embed_row(emb, s->embed_dim, s->d_text, scale, col + nz, val + nz);
    const int k = s->k;
    for (int c = 0; c < k; c++) probs[c] = s->b[c];
    for (size_t p = 0; p < nz; p++) {
        const float *w = s->W + (size_t)col[p] * (size_t)k;
        for (int c = 0; c < k; c++) probs[c] += val[p] * (double)w[c];
    }
    nk_lr_softmax(probs, k, s->temperature);
    int best = 0;
    for (int c = 1; c < k; c++) if (probs[c] > probs[best]) best = c;
    res->label = best;
    res->confidence = probs[best];
    res->abstain = probs[best] < s->threshold;
out:
    nk_sparse_free(&cnt[0]);
    nk_sparse_free(&cnt[1]);
    nk_free(col);
    nk_free(val);
    return st;
}

void *nk_spec_result_json(const nk_spec *s, const double *probs, const nk_class_result *res) {
    json_t *o = json_object();
    json_t *pr = json_object();
    if (!o || !pr) { json_decref(o); json_decref(pr); return NULL; }
    for (int c = 0; c < s->k; c++)
        if (json_object_set_new(pr, s->labels[c], json_real(probs[c]))) goto fail;
    if (json_object_set_new(o, "label", json_string(s->labels[res->label])) ||
        json_object_set_new(o, "confidence", json_real(res->confidence)) ||
        json_object_set_new(o, "probabilities", pr) ||
        json_object_set_new(o, "abstain", json_boolean(res->abstain)))
        goto fail_o;
    return o;
fail:
    json_decref(pr);
fail_o:
    json_decref(o);
    return NULL;
}

nook_status nk_spec_evaluate(const nk_spec *s, const nk_dataset *d, const float *emb,
                             size_t *conf, nk_eval_report *rep, nook_error *err) {
    const int k = s->k;
    memset(conf, 0, (size_t)k * k * sizeof *conf);
    memset(rep, 0, sizeof *rep);
    if (d->n == 0) return nk_fail(err, NOOK_EINVAL, "no examples to evaluate");
    int *map = nk_alloc_array((size_t)d->n_labels + 1, sizeof *map);
    double *P = nk_alloc_array(d->n * (size_t)k, sizeof *P);
    int *y = nk_alloc_array(d->n, sizeof *y);
    nook_status st = NOOK_OK;
    if (!map || !P || !y) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
    for (int l = 0; l < d->n_labels; l++) {
        map[l] = -1;
        for (int c = 0; c < k; c++)
            if (strcmp(d->label_names[l], s->labels[c]) == 0) map[l] = c;
    }
    double t0 = nk_time_ms();
    size_t correct = 0, kept = 0, kept_ok = 0;
    for (size_t i = 0; i < d->n; i++) {
        int yi = map[d->labels[i]];
        if (yi < 0) {
            st = nk_fail(err, NOOK_EINVAL, "line %zu: label '%s' is not one of the specialist's labels",
                         d->lines[i], d->label_names[d->labels[i]]);
            goto out;
        }
        y[i] = yi;
        nk_class_result r;
        if ((st = nk_spec_classify(s, d->texts[i], strlen(d->texts[i]), emb ? emb + i * s->embed_dim : NULL,
                                   P + i * (size_t)k, &r, err))) {
            nk_prefix(err, "line %zu: ", d->lines[i]);
            goto out;
        }
        conf[(size_t)yi * k + r.label]++;
        correct += r.label == yi;
        if (!r.abstain) { kept++; kept_ok += r.label == yi; }
    }
    rep->ms = nk_time_ms() - t0;
    rep->texts_per_s = rep->ms > 0 ? (double)d->n / (rep->ms / 1000.0) : 0;
    rep->macro_f1 = nk_macro_f1(conf, k);
    rep->accuracy = (double)correct / (double)d->n;
    rep->ece = nk_ece(P, y, d->n, k, 10);
    rep->coverage = (double)kept / (double)d->n;
    rep->accuracy_kept = kept ? (double)kept_ok / (double)kept : 0;
out:
    nk_free(map);
    nk_free(P);
    nk_free(y);
    return st;
}

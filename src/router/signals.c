/*
 * signals.c: per-token confidence signals and their per-answer summary (signals.h).
 * Everything is computed in double from the float logits, so the values do not depend
 * on the vocabulary size's rounding; the cost is one pass over the logits per token
 * (the generation loop already makes one for sampling).
 */
#include "router/signals.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

nk_tok_sig nk_tok_sig_from_logits(const float *logits, int n, nook_token tok) {
    nk_tok_sig s = { -INFINITY, NAN, NAN };
    if (n <= 0) return s;
    /* max, then sum of exp(l - max) and of exp(l - max) * (l - max): entropy is
     * log Z - E[l - max] with Z the partition sum of the shifted logits */
    double mx = -INFINITY, m1 = -INFINITY, m2 = -INFINITY;
    for (int i = 0; i < n; i++) {
        double l = logits[i];
        if (l > mx) mx = l;
        if (l > m1) { m2 = m1; m1 = l; }
        else if (l > m2) m2 = l;
    }
    if (!isfinite(mx)) return s;
    double z = 0, zl = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)logits[i] - mx;
        if (!isfinite(d)) continue;   /* -inf logits (masked) have p = 0 */
        double e = exp(d);
        z += e;
        zl += e * d;
    }
    double logz = log(z);
    s.entropy = logz - zl / z;
    if (s.entropy < 0) s.entropy = 0;   /* rounding when one token has all the mass */
    if (tok >= 0 && tok < n) s.logprob = (double)logits[tok] - mx - logz;
    double p1 = exp(m1 - mx - logz), p2 = isfinite(m2) ? exp(m2 - mx - logz) : 0;
    s.margin = p1 - p2;
    return s;
}

nk_tok_sig nk_tok_sig_from_event(double logprob, double entropy, double top1_lp, double top2_lp) {
    nk_tok_sig s = { logprob, entropy, NAN };
    if (isfinite(top1_lp)) s.margin = exp(top1_lp) - (isfinite(top2_lp) ? exp(top2_lp) : 0);
    return s;
}

double nk_label_mass(const float *logits, int n, const nook_token *labels, int n_labels) {
    double mx = -INFINITY;
    for (int i = 0; i < n_labels; i++)
        if (labels[i] >= 0 && labels[i] < n && logits[labels[i]] > mx) mx = logits[labels[i]];
    if (!isfinite(mx)) return NAN;
    double z = 0;
    for (int i = 0; i < n_labels; i++)
        if (labels[i] >= 0 && labels[i] < n) z += exp((double)logits[labels[i]] - mx);
    return 1.0 / z;   /* the best label's exp(0) = 1 over the sum */
}

void nk_sig_acc_init(nk_sig_acc *a) {
    memset(a, 0, sizeof *a);
    a->label_mass = NAN;
}

nook_status nk_sig_acc_reserve(nk_sig_acc *a, int n, nook_error *err) {
    if (n <= a->cap) return NOOK_OK;
    nk_tok_sig *p = nk_realloc(a->v, (size_t)n * sizeof *p);
    if (!p) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    a->v = p;
    a->cap = n;
    return NOOK_OK;
}

nook_status nk_sig_acc_push(nk_sig_acc *a, nk_tok_sig s, nook_error *err) {
    if (a->n == a->cap) {
        nook_status st = nk_sig_acc_reserve(a, a->cap ? a->cap * 2 : 64, err);
        if (st) return st;
    }
    a->v[a->n++] = s;
    return NOOK_OK;
}

void nk_sig_acc_free(nk_sig_acc *a) {
    nk_free(a->v);
    nk_sig_acc_init(a);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

double nk_quantile(double *v, int n, double q) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double h = q * (n - 1);
    int lo = (int)floor(h);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (h - lo) * (v[lo + 1] - v[lo]);
}

/* Mean, min, max of the finite values of one field; quantiles from a scratch copy. */
typedef struct stat1 { double mean, min, max; int n; } stat1;

static stat1 field_stats(const nk_sig_acc *a, size_t off, double *scratch) {
    stat1 s = { NAN, INFINITY, -INFINITY, 0 };
    double sum = 0;
    for (int i = 0; i < a->n; i++) {
        double v = *(const double *)((const char *)&a->v[i] + off);
        if (!isfinite(v)) continue;
        scratch[s.n++] = v;
        sum += v;
        if (v < s.min) s.min = v;
        if (v > s.max) s.max = v;
    }
    if (s.n) s.mean = sum / s.n;
    else s.min = s.max = NAN;
    return s;
}

void nk_signals_summarize(const nk_sig_acc *a, nk_signals *o) {
    *o = (nk_signals){ 0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN };
    o->n_tokens = a->n;
    o->label_mass = a->label_mass;
    if (a->n == 0) return;
    double *tmp = nk_malloc((size_t)a->n * sizeof *tmp);
    if (!tmp) return;   /* all NAN: the caller sees no signals, as for an empty answer */
    /* a log-probability of -inf (a token given zero mass) is left out of the mean and
     * quantiles but kept as the minimum */
    stat1 lp = field_stats(a, offsetof(nk_tok_sig, logprob), tmp);
    o->mean_logprob = lp.mean;
    o->min_logprob = lp.min;
    o->p10_logprob = nk_quantile(tmp, lp.n, 0.10);
    o->p50_logprob = nk_quantile(tmp, lp.n, 0.50);
    for (int i = 0; i < a->n; i++)
        if (a->v[i].logprob == -INFINITY) { o->min_logprob = -INFINITY; break; }
    stat1 en = field_stats(a, offsetof(nk_tok_sig, entropy), tmp);
    o->mean_entropy = en.mean;
    o->max_entropy = en.max;
    o->p50_entropy = nk_quantile(tmp, en.n, 0.50);
    o->p90_entropy = nk_quantile(tmp, en.n, 0.90);
    stat1 mg = field_stats(a, offsetof(nk_tok_sig, margin), tmp);
    o->mean_margin = mg.mean;
    o->min_margin = mg.min;
    o->p10_margin = nk_quantile(tmp, mg.n, 0.10);
    o->first_logprob = a->v[0].logprob;
    o->first_entropy = a->v[0].entropy;
    o->first_margin = a->v[0].margin;
    nk_free(tmp);
}

const char *const nk_feature_names[NK_N_FEATURES] = {
    "mean_logprob", "min_logprob", "p10_logprob", "p50_logprob",
    "mean_entropy", "max_entropy", "p50_entropy", "p90_entropy",
    "mean_margin", "min_margin", "p10_margin",
    "first_logprob", "first_entropy", "first_margin", "label_mass",
};

void nk_features(const nk_signals *s, double x[NK_N_FEATURES]) {
    const double v[NK_N_FEATURES] = {
        s->mean_logprob, s->min_logprob, s->p10_logprob, s->p50_logprob,
        s->mean_entropy, s->max_entropy, s->p50_entropy, s->p90_entropy,
        s->mean_margin, s->min_margin, s->p10_margin,
        s->first_logprob, s->first_entropy, s->first_margin, s->label_mass,
    };
    for (int i = 0; i < NK_N_FEATURES; i++) x[i] = isfinite(v[i]) ? v[i] : NAN;
}

json_t *nk_signals_json(const nk_signals *s) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "n_tokens", json_integer(s->n_tokens));
    double x[NK_N_FEATURES];
    nk_features(s, x);
    for (int i = 0; i < NK_N_FEATURES; i++)
        if (isfinite(x[i])) json_object_set_new(o, nk_feature_names[i], json_real(x[i]));
    return o;
}

void nk_features_from_json(json_t *o, double x[NK_N_FEATURES]) {
    for (int i = 0; i < NK_N_FEATURES; i++) {
        json_t *v = json_object_get(o, nk_feature_names[i]);
        x[i] = json_is_number(v) ? json_number_value(v) : NAN;
    }
}

void nk_signals_from_json(json_t *o, nk_signals *s) {
    double x[NK_N_FEATURES];
    nk_features_from_json(o, x);
    double *const dst[NK_N_FEATURES] = {   /* the order of nk_feature_names */
        &s->mean_logprob, &s->min_logprob, &s->p10_logprob, &s->p50_logprob,
        &s->mean_entropy, &s->max_entropy, &s->p50_entropy, &s->p90_entropy,
        &s->mean_margin, &s->min_margin, &s->p10_margin,
        &s->first_logprob, &s->first_entropy, &s->first_margin, &s->label_mass,
    };
    for (int i = 0; i < NK_N_FEATURES; i++) *dst[i] = x[i];
    s->n_tokens = (int)json_integer_value(json_object_get(o, "n_tokens"));
}

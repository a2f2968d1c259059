/*
 * eval.c: replay evaluation of routers over stored local and remote answers (contract
 * in eval.h). Pure computation: no model, no network.
 */
#include "router/eval.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- quality: token F1 ------------------------------------------------------------------ */

typedef struct words {
    char **w;
    int n;
} words;

static bool word_byte(unsigned char c) { return c >= 0x80 || isalnum(c); }

static bool split_words(const char *s, words *out) {
    out->w = NULL;
    out->n = 0;
    int cap = 0;
    for (const char *p = s ? s : ""; *p;) {
        while (*p && !word_byte((unsigned char)*p)) p++;
        const char *b = p;
        while (*p && word_byte((unsigned char)*p)) p++;
        if (p == b) continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nw = nk_realloc(out->w, sizeof *nw * (size_t)cap);
            if (!nw) return false;
            out->w = nw;
        }
        char *w = nk_strndup(b, (size_t)(p - b));
        if (!w) return false;
        for (char *q = w; *q; q++) *q = (char)tolower((unsigned char)*q);
        out->w[out->n++] = w;
    }
    return true;
}

static void words_free(words *w) {
    for (int i = 0; i < w->n; i++) nk_free(w->w[i]);
    nk_free(w->w);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

double nk_eval_f1(const char *answer, const char *reference) {
    words a, r;
    bool ok_a = split_words(answer, &a), ok_r = split_words(reference, &r);   /* both: a and r are freed below */
    bool ok = ok_a && ok_r;
    double f1 = NAN;
    if (ok) {
        if (a.n == 0 || r.n == 0) f1 = a.n == r.n ? 1.0 : 0.0;
        else {
            if (a.n > 1) qsort(a.w, (size_t)a.n, sizeof *a.w, cmp_str);
            if (r.n > 1) qsort(r.w, (size_t)r.n, sizeof *r.w, cmp_str);
            int i = 0, j = 0, common = 0;
            while (i < a.n && j < r.n) {
                int c = strcmp(a.w[i], r.w[j]);
                if (c == 0) { common++; i++; j++; }
                else if (c < 0) i++;
                else j++;
            }
            double p = (double)common / a.n, q = (double)common / r.n;
            f1 = common ? 2 * p * q / (p + q) : 0.0;
        }
    }
    words_free(&a);
    words_free(&r);
    return f1;
}

/* ---- ordering by confidence ---------------------------------------------------------------- */

typedef struct keyed {
    double s;
    int i;
} keyed;

/* NAN (unknown) is the least confident; ties keep the prompt order */
static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    bool na = isnan(a->s), nb = isnan(b->s);
    if (na != nb) return na ? -1 : 1;
    if (!na && a->s != b->s) return a->s < b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* ord[0..n): the least confident first (the order in which a threshold escalates). */
static bool order_by(const double *score, int n, int *ord) {
    keyed *k = nk_malloc(sizeof *k * (size_t)(n ? n : 1));
    if (!k) return false;
    for (int i = 0; i < n; i++) k[i] = (keyed){ score[i], i };
    if (n > 1) qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    for (int i = 0; i < n; i++) ord[i] = k[i].i;
    nk_free(k);
    return true;
}

double nk_eval_auroc(const double *score, const bool *fail, int n) {
    int *ord = nk_malloc(sizeof *ord * (size_t)(n ? n : 1));
    if (!ord || !order_by(score, n, ord)) { nk_free(ord); return NAN; }
    /* average ranks (1-based) over runs of equal scores; NANs are one tied run */
    double rank_sum_fail = 0;
    long n_fail = 0;
    for (int a = 0; a < n;) {
        int b = a + 1;
        double sa = score[ord[a]];
        while (b < n && ((isnan(sa) && isnan(score[ord[b]])) || score[ord[b]] == sa)) b++;
        double avg = (a + 1 + b) / 2.0;
        for (int t = a; t < b; t++)
            if (fail[ord[t]]) { rank_sum_fail += avg; n_fail++; }
        a = b;
    }
    nk_free(ord);
    long n_ok = n - n_fail;
    if (n_fail == 0 || n_ok == 0) return NAN;
    /* U counts (ok, fail) pairs where the failure ranks higher; AUROC is the complement */
    double u_fail = rank_sum_fail - (double)n_fail * (n_fail + 1) / 2.0;
    return 1.0 - u_fail / ((double)n_fail * n_ok);
}

/* ---- curves ------------------------------------------------------------------------------------- */

#define N_RATES 11

static void set_num(json_t *o, const char *k, double v) {
    json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

/* One operating point: the rows with esc[i] escalate. */
static json_t *point(const nk_eval_row *rows, int n, const bool *esc, double mean_q_remote) {
    double q = 0, cost = 0;
    int calls = 0;
    for (int i = 0; i < n; i++) {
        q += esc[i] ? rows[i].q_remote : rows[i].q_local;
        if (esc[i]) { calls++; cost += rows[i].cost; }
    }
    json_t *o = json_object();
    if (!o) return NULL;
    set_num(o, "rate", n ? (double)calls / n : NAN);
    set_num(o, "quality", n ? q / n : NAN);
    set_num(o, "retained", n && mean_q_remote > 0 ? q / n / mean_q_remote : NAN);
    set_num(o, "calls", n ? (double)calls / n : NAN);
    set_num(o, "cost", n ? cost / n : NAN);   /* NAN (null) when a row's cost is unknown */
    return o;
}

/* The curve of a fixed escalation order at rates 0, 0.1, ..., 1. */
static json_t *curve(const nk_eval_row *rows, int n, const int *ord, bool *esc, double mean_q_remote) {
    json_t *a = json_array();
    for (int r = 0; a && r < N_RATES; r++) {
        int k = (int)floor((double)r / (N_RATES - 1) * n + 0.5);
        for (int i = 0; i < n; i++) esc[i] = false;
        for (int i = 0; i < k; i++) esc[ord[i]] = true;
        json_array_append_new(a, point(rows, n, esc, mean_q_remote));
    }
    return a;
}

/* Risk (failure rate) among the answers kept local, at coverage 0.1, ..., 1: the most
 * confident round(c*n) are kept. */
static json_t *risk_coverage(int n, const int *ord, const bool *fail) {
    json_t *a = json_array();
    for (int r = 1; a && r < N_RATES; r++) {
        double c = (double)r / (N_RATES - 1);
        int m = (int)floor(c * n + 0.5), bad = 0;
        for (int i = n - m; i < n; i++) bad += fail[ord[i]];
        json_t *o = json_object();
        set_num(o, "coverage", c);
        set_num(o, "risk", m ? (double)bad / m : NAN);
        json_array_append_new(a, o);
    }
    return a;
}

static const struct {
    const char *name;
    double sign;        /* +1: higher is more confident */
    size_t off;
} k_signals[] = {
    { "mean_logprob", 1, offsetof(nk_signals, mean_logprob) },
    { "min_logprob", 1, offsetof(nk_signals, min_logprob) },
    { "p10_logprob", 1, offsetof(nk_signals, p10_logprob) },
    { "mean_entropy", -1, offsetof(nk_signals, mean_entropy) },
    { "max_entropy", -1, offsetof(nk_signals, max_entropy) },
    { "p90_entropy", -1, offsetof(nk_signals, p90_entropy) },
    { "mean_margin", 1, offsetof(nk_signals, mean_margin) },
    { "first_logprob", 1, offsetof(nk_signals, first_logprob) },
    { "first_margin", 1, offsetof(nk_signals, first_margin) },
    { "label_mass", 1, offsetof(nk_signals, label_mass) },
};

static double sig_value(const nk_signals *s, size_t off) { return *(const double *)((const char *)s + off); }

/* A rule's operating point: esc[i] already set. */
static json_t *rule_point(const nk_eval_row *rows, int n, const bool *esc, double mean_q_remote, double threshold) {
    json_t *o = point(rows, n, esc, mean_q_remote);
    if (o) set_num(o, "threshold", threshold);
    return o;
}

json_t *nk_eval_report(const nk_eval_row *rows, int n, double fail_below, double default_threshold,
                       const nk_combiner *comb) {
    size_t sz = (size_t)(n ? n : 1);
    double *score = nk_malloc(sizeof *score * sz), *gain = nk_malloc(sizeof *gain * sz);
    bool *fail = nk_malloc(sizeof *fail * sz), *esc = nk_malloc(sizeof *esc * sz);
    int *ord = nk_malloc(sizeof *ord * sz);
    json_t *rep = json_object(), *sigs = json_object();
    if (!score || !gain || !fail || !esc || !ord || !rep || !sigs) goto oom;
    double ql = 0, qr = 0;
    int n_fail = 0;
    for (int i = 0; i < n; i++) {
        ql += rows[i].q_local;
        qr += rows[i].q_remote;
        fail[i] = !(rows[i].q_local >= fail_below);
        n_fail += fail[i];
    }
    double mean_qr = n ? qr / n : NAN;
    json_object_set_new(rep, "n", json_integer(n));
    set_num(rep, "fail_below", fail_below);
    json_object_set_new(rep, "failures", json_integer(n_fail));
    set_num(rep, "mean_q_local", n ? ql / n : NAN);
    set_num(rep, "mean_q_remote", mean_qr);
    json_object_set_new(rep, "signals", sigs);
    int n_sig = (int)NK_ARRAY_LEN(k_signals) + (comb ? 1 : 0);
    for (int s = 0; s < n_sig; s++) {
        const char *name = s < (int)NK_ARRAY_LEN(k_signals) ? k_signals[s].name : "p_ok";
        int finite = 0;
        for (int i = 0; i < n; i++) {
            if (s < (int)NK_ARRAY_LEN(k_signals)) score[i] = k_signals[s].sign * sig_value(&rows[i].sig, k_signals[s].off);
            else {
                double x[NK_N_FEATURES];
                nk_features(&rows[i].sig, x);
                score[i] = nk_combiner_prob(comb, x);
            }
            finite += isfinite(score[i]) ? 1 : 0;
        }
        if (finite == 0) continue;   /* e.g. label_mass outside closed-label tasks */
        if (!order_by(score, n, ord)) goto oom;
        json_t *o = json_object();
        set_num(o, "auroc", nk_eval_auroc(score, fail, n));
        json_object_set_new(o, "curve", curve(rows, n, ord, esc, mean_qr));
        json_object_set_new(o, "risk_coverage", risk_coverage(n, ord, fail));
        json_object_set_new(sigs, name, o);
    }
    /* random routing: each prompt escalates with probability rate (the expectation) */
    json_t *rc = json_array();
    double cost_all = 0;
    for (int i = 0; i < n; i++) cost_all += rows[i].cost;
    for (int r = 0; rc && r < N_RATES; r++) {
        double rate = (double)r / (N_RATES - 1);
        json_t *o = json_object();
        set_num(o, "rate", rate);
        set_num(o, "quality", n ? (1 - rate) * ql / n + rate * qr / n : NAN);
        set_num(o, "retained", n && qr > 0 ? ((1 - rate) * ql + rate * qr) / qr : NAN);
        set_num(o, "calls", rate);
        set_num(o, "cost", n ? rate * cost_all / n : NAN);
        json_array_append_new(rc, o);
    }
    json_object_set_new(rep, "random", json_pack("{s:o}", "curve", rc));
    /* the oracle: the largest gain from escalating first */
    for (int i = 0; i < n; i++) gain[i] = -(rows[i].q_remote - rows[i].q_local);
    if (!order_by(gain, n, ord)) goto oom;
    json_object_set_new(rep, "oracle", json_pack("{s:o}", "curve", curve(rows, n, ord, esc, mean_qr)));
    /* the routers as configured: the uncalibrated default, and the calibrated combiner */
    for (int i = 0; i < n; i++) esc[i] = !(rows[i].sig.mean_logprob >= default_threshold);
    json_object_set_new(rep, "default_router", rule_point(rows, n, esc, mean_qr, default_threshold));
    if (comb) {
        for (int i = 0; i < n; i++) {
            double x[NK_N_FEATURES];
            nk_features(&rows[i].sig, x);
            esc[i] = !(nk_combiner_prob(comb, x) >= comb->threshold);
        }
        json_object_set_new(rep, "calibrated_router", rule_point(rows, n, esc, mean_qr, comb->threshold));
    }
    nk_free(score);
    nk_free(gain);
    nk_free(fail);
    nk_free(esc);
    nk_free(ord);
    return rep;
oom:
    nk_free(score);
    nk_free(gain);
    nk_free(fail);
    nk_free(esc);
    nk_free(ord);
    if (!json_object_get(rep, "signals")) json_decref(sigs);
    json_decref(rep);
    return NULL;
}

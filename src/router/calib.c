/*
 * calib.c: the calibrated combiner (signals.h): logistic regression fitted by Newton's
 * method on standardised features, thresholds for a target escalation rate or an error
 * bound, and the JSON form `nook route calibrate` writes to $NOOK_HOME/router.json.
 */
#include "router/signals.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double z) {
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* Solves A x = r in place (A m x m, row-major) by Gaussian elimination with partial
 * pivoting; false if singular. */
static bool solve(double *A, double *r, int m) {
    for (int c = 0; c < m; c++) {
        int piv = c;
        for (int i = c + 1; i < m; i++)
            if (fabs(A[i * m + c]) > fabs(A[piv * m + c])) piv = i;
        if (fabs(A[piv * m + c]) < 1e-300) return false;
        if (piv != c) {
            for (int j = 0; j < m; j++) { double t = A[c * m + j]; A[c * m + j] = A[piv * m + j]; A[piv * m + j] = t; }
            double t = r[c]; r[c] = r[piv]; r[piv] = t;
        }
        for (int i = c + 1; i < m; i++) {
            double f = A[i * m + c] / A[c * m + c];
            if (f == 0) continue;
            for (int j = c; j < m; j++) A[i * m + j] -= f * A[c * m + j];
            r[i] -= f * r[c];
        }
    }
    for (int c = m - 1; c >= 0; c--) {
        double s = r[c];
        for (int j = c + 1; j < m; j++) s -= A[c * m + j] * r[j];
        r[c] = s / A[c * m + c];
    }
    return true;
}

nook_status nk_logreg_fit(const double *X, const int *y, int n, int d, double l2, double *w,
                          double *b, nook_error *err) {
    if (n < 2 || d < 0 || d > 64) return nk_fail(err, NOOK_EINVAL, "logistic fit: need at least 2 examples");
    int pos = 0;
    for (int i = 0; i < n; i++) pos += y[i] != 0;
    if (pos == 0 || pos == n)
        return nk_fail(err, NOOK_EINVAL, "logistic fit: all %d examples are %s; need both graded ok and not ok",
                       n, pos ? "ok" : "not ok");
    int m = d + 1;   /* parameters: w[0..d), bias last */
    double *beta = nk_calloc((size_t)m, sizeof *beta), *H = nk_malloc((size_t)m * m * sizeof *H);
    double *g = nk_malloc((size_t)m * sizeof *g);
    if (!beta || !H || !g) {
        nk_free(beta); nk_free(H); nk_free(g);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    beta[d] = log((double)pos / (n - pos));
    bool conv = false;
    for (int it = 0; it < 100 && !conv; it++) {
        /* gradient of the penalised log-likelihood and the negative Hessian */
        memset(H, 0, (size_t)m * m * sizeof *H);
        for (int j = 0; j < m; j++) g[j] = j < d ? -l2 * beta[j] : 0;
        for (int j = 0; j < d; j++) H[j * m + j] = l2;
        for (int i = 0; i < n; i++) {
            const double *x = X + (size_t)i * d;
            double z = beta[d];
            for (int j = 0; j < d; j++) z += beta[j] * x[j];
            double p = sigmoid(z), r = (y[i] != 0) - p, v = p * (1 - p);
            for (int j = 0; j < m; j++) {
                double xj = j < d ? x[j] : 1.0;
                g[j] += r * xj;
                for (int k = 0; k <= j; k++) H[j * m + k] += v * xj * (k < d ? x[k] : 1.0);
            }
        }
        for (int j = 0; j < m; j++)
            for (int k = j + 1; k < m; k++) H[j * m + k] = H[k * m + j];
        if (!solve(H, g, m)) break;   /* g becomes the Newton step */
        double step = 0;
        for (int j = 0; j < m; j++) {
            /* cap the step: separable data would walk off to infinity */
            double s = g[j] > 10 ? 10 : g[j] < -10 ? -10 : g[j];
            beta[j] += s;
            step = fmax(step, fabs(s));
        }
        conv = step < 1e-9;
    }
    for (int j = 0; j < d; j++) w[j] = beta[j];
    *b = beta[d];
    nk_free(beta); nk_free(H); nk_free(g);
    if (!conv) return nk_fail(err, NOOK_ERANGE, "logistic fit did not converge (separable data? add examples or raise the L2 penalty)");
    return NOOK_OK;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

double nk_threshold_for_rate(const double *p, int n, double rate) {
    if (n <= 0) return NAN;
    if (rate <= 0) return -INFINITY;
    if (rate >= 1) return INFINITY;
    double *v = nk_malloc((size_t)n * sizeof *v);
    if (!v) return NAN;
    memcpy(v, p, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    /* the k = round(rate*n) lowest escalate: the threshold sits between v[k-1] and v[k] */
    int k = (int)lround(rate * n);
    double t = k <= 0 ? -INFINITY : k >= n ? INFINITY : 0.5 * (v[k - 1] + v[k]);
    nk_free(v);
    return t;
}

typedef struct py { double p; int y; } py;
static int cmp_py_desc(const void *a, const void *b) {
    double x = ((const py *)a)->p, y = ((const py *)b)->p;
    return x > y ? -1 : x < y ? 1 : 0;
}

double nk_threshold_for_error(const double *p, const int *y, int n, double max_err) {
    py *v = nk_malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) return NAN;
    for (int i = 0; i < n; i++) v[i] = (py){ p[i], y[i] != 0 };
    qsort(v, (size_t)n, sizeof *v, cmp_py_desc);
    /* accept the k best; keep the largest k (at a boundary between distinct scores)
     * whose error rate is within the bound */
    double t = INFINITY;
    int bad = 0;
    for (int k = 1; k <= n; k++) {
        bad += !v[k - 1].y;
        if (k < n && v[k].p == v[k - 1].p) continue;
        if ((double)bad / k <= max_err) t = k < n ? 0.5 * (v[k - 1].p + v[k].p) : -INFINITY;
    }
    nk_free(v);
    return t;
}

double nk_combiner_prob(const nk_combiner *c, const double x[NK_N_FEATURES]) {
    double z = c->b;
    for (int j = 0; j < c->n; j++) {
        double v = x[c->idx[j]];
        if (!isfinite(v)) return NAN;
        z += c->w[j] * (v - c->mu[j]) / c->sd[j];
    }
    return sigmoid(z);
}

nook_status nk_combiner_train(const double (*x)[NK_N_FEATURES], const int *ok, int n, double rate,
                              double max_err, nk_combiner *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    if (n < 2) return nk_fail(err, NOOK_EINVAL, "calibration needs at least 2 graded examples (got %d)", n);
    for (int f = 0; f < NK_N_FEATURES; f++) {
        double s = 0, s2 = 0;
        bool all = true;
        for (int i = 0; i < n && all; i++) {
            if (!isfinite(x[i][f])) all = false;
            else { s += x[i][f]; s2 += x[i][f] * x[i][f]; }
        }
        if (!all) continue;
        double mu = s / n, var = s2 / n - mu * mu;
        if (!(var > 1e-18)) continue;   /* constant: carries nothing */
        out->idx[out->n] = f;
        out->mu[out->n] = mu;
        out->sd[out->n] = sqrt(var);
        out->n++;
    }
    if (out->n == 0) return nk_fail(err, NOOK_EINVAL, "calibration: no signal is present and varying in every example");
    int d = out->n;
    double *X = nk_alloc_array((size_t)n * d, sizeof *X), *p = nk_alloc_array((size_t)n, sizeof *p);
    if (!X || !p) { nk_free(X); nk_free(p); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) X[(size_t)i * d + j] = (x[i][out->idx[j]] - out->mu[j]) / out->sd[j];
    /* a small ridge keeps correlated signals (mean and median log-probability) stable */
    nook_status st = nk_logreg_fit(X, ok, n, d, 1e-3 * n, out->w, &out->b, err);
    if (!st) {
        for (int i = 0; i < n; i++) p[i] = nk_combiner_prob(out, x[i]);
        out->threshold = rate >= 0 ? nk_threshold_for_rate(p, n, rate) : nk_threshold_for_error(p, ok, n, max_err);
    }
    nk_free(X);
    nk_free(p);
    return st;
}

json_t *nk_combiner_json(const nk_combiner *c) {
    json_t *f = json_array(), *o;
    for (int j = 0; j < c->n; j++)
        json_array_append_new(f, json_pack("{s:s,s:f,s:f,s:f}", "name", nk_feature_names[c->idx[j]],
                                           "mean", c->mu[j], "sd", c->sd[j], "weight", c->w[j]));
    o = json_pack("{s:o,s:f}", "features", f, "bias", c->b);
    /* +-inf thresholds (escalate all / none) are written as strings JSON can hold */
    if (isfinite(c->threshold)) json_object_set_new(o, "threshold", json_real(c->threshold));
    else json_object_set_new(o, "threshold", json_string(c->threshold > 0 ? "inf" : "-inf"));
    return o;
}

nook_status nk_combiner_from_json(json_t *o, nk_combiner *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    json_t *f = json_object_get(o, "features"), *b = json_object_get(o, "bias"), *t = json_object_get(o, "threshold");
    if (!json_is_array(f) || !json_is_number(b) || json_array_size(f) == 0 || json_array_size(f) > NK_N_FEATURES)
        return nk_fail(err, NOOK_EFORMAT, "calibration: expected {\"features\":[...],\"bias\":B,\"threshold\":T}");
    size_t i;
    json_t *e;
    json_array_foreach(f, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *mu = json_object_get(e, "mean"), *sd = json_object_get(e, "sd"), *w = json_object_get(e, "weight");
        int idx = -1;
        for (int k = 0; name && k < NK_N_FEATURES; k++) if (strcmp(name, nk_feature_names[k]) == 0) idx = k;
        if (idx < 0 || !json_is_number(mu) || !json_is_number(sd) || !json_is_number(w) || !(json_number_value(sd) > 0))
            return nk_fail(err, NOOK_EFORMAT, "calibration: feature %zu: unknown name or bad mean/sd/weight", i);
        out->idx[out->n] = idx;
        out->mu[out->n] = json_number_value(mu);
        out->sd[out->n] = json_number_value(sd);
        out->w[out->n] = json_number_value(w);
        out->n++;
    }
    out->b = json_number_value(b);
    if (json_is_number(t)) out->threshold = json_number_value(t);
    else if (json_is_string(t) && strcmp(json_string_value(t), "inf") == 0) out->threshold = INFINITY;
    else if (json_is_string(t) && strcmp(json_string_value(t), "-inf") == 0) out->threshold = -INFINITY;
    else return nk_fail(err, NOOK_EFORMAT, "calibration: threshold must be a number, \"inf\" or \"-inf\"");
    return NOOK_OK;
}

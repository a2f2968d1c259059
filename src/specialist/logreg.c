/*
 * logreg.c: multinomial L2-regularised logistic regression (L-BFGS, double precision),
 * temperature scaling and the metrics training reports.
 *
 * Why L-BFGS: the objective is smooth and strictly convex in W; with hundreds of
 * examples and up to ~10^5 sparse columns, one function+gradient evaluation costs
 * two passes over the nonzeros, and L-BFGS needs tens to a few hundred of them, with
 * memory m vectors of the parameter size (m shrinks for very wide problems). The
 * line search is backtracking on the Armijo condition, starting at the unit step
 * (the quasi-Newton step is well scaled after the first iteration); curvature pairs
 * with s.y <= 0 are skipped, which keeps the inverse-Hessian estimate positive.
 */
#include "specialist/specialist.h"
#include "specialist/spec_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

void nk_lr_logits(const nk_csr *X, size_t i, int k, const double *W, const double *b, double *z) {
    for (int c = 0; c < k; c++) z[c] = b[c];
    for (size_t p = X->row[i]; p < X->row[i + 1]; p++) {
        const double *w = W + (size_t)X->col[p] * (size_t)k;
        double v = X->val[p];
        for (int c = 0; c < k; c++) z[c] += v * w[c];
    }
}

static double logsumexp(const double *z, int k) {
    double m = z[0];
    for (int c = 1; c < k; c++) m = z[c] > m ? z[c] : m;
    double s = 0;
    for (int c = 0; c < k; c++) s += exp(z[c] - m);
    return m + log(s);
}

void nk_lr_softmax(double *z, int k, double T) {
    for (int c = 0; c < k; c++) z[c] /= T;
    double l = logsumexp(z, k);
    for (int c = 0; c < k; c++) z[c] = exp(z[c] - l);
}

typedef struct problem {
    const nk_csr *X;
    const int *y;
    int k;
    const size_t *rows;
    size_t n_rows;
    double C;
    const double *cw;   /* [k] class weights, or NULL */
    size_t nw;      /* d*k */
    double *z;      /* [k] scratch */
} problem;

/* f and its gradient g at theta = [W, b]. */
static double eval_fg(const problem *P, const double *th, double *g) {
    const int k = P->k;
    const double *W = th, *b = th + P->nw;
    double f = 0;
    for (size_t j = 0; j < P->nw; j++) { f += 0.5 * th[j] * th[j]; g[j] = th[j]; }
    double *gb = g + P->nw;
    for (int c = 0; c < k; c++) gb[c] = 0;
    double *z = P->z;
    for (size_t r = 0; r < P->n_rows; r++) {
        size_t i = P->rows ? P->rows[r] : r;
        nk_lr_logits(P->X, i, k, W, b, z);
        double l = logsumexp(z, k);
        int yi = P->y[i];
        const double Ci = P->cw ? P->C * P->cw[yi] : P->C;
        f += Ci * (l - z[yi]);
        for (int c = 0; c < k; c++) z[c] = Ci * exp(z[c] - l);
        z[yi] -= Ci;
        for (int c = 0; c < k; c++) gb[c] += z[c];
        for (size_t p = P->X->row[i]; p < P->X->row[i + 1]; p++) {
            double *gw = g + (size_t)P->X->col[p] * (size_t)k;
            double v = P->X->val[p];
            for (int c = 0; c < k; c++) gw[c] += v * z[c];
        }
    }
    return f;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* The L-BFGS loop both solvers share (here and logreg_kernel.c): two-loop recursion,
 * backtracking Armijo line search from the unit step (a scaled gradient step while
 * there is no history), curvature pairs with s.y <= 0 skipped, stops when
 * gnorm(g) <= tol * gnorm(g at the start), when no step decreases f at double precision,
 * or after five steps in a row that gain nothing. Only the inner product, the norm of
 * the stopping test and f/g differ between the solvers; they come as callbacks. */
int nk_lbfgs(const nk_lbfgs_prob *P, double *th, double tol, int max_iter) {
    const size_t n = P->L;
    const int m = P->m;
    void *cx = P->ctx;
    double *buf = nk_alloc_array(n * (size_t)(4 + 2 * m) + (size_t)m * 2, sizeof(double));
    if (!buf) return -1;
    double *g = buf, *d = g + n, *th2 = d + n, *g2 = th2 + n;
    double *S = g2 + n, *Yv = S + n * (size_t)m, *rho = Yv + n * (size_t)m, *alpha = rho + m;
    double f = P->eval(cx, th, g);
    const double g0 = NK_MAX(P->gnorm(cx, g), 1e-300);
    int it = 0, hist = 0, head = 0, stalls = 0;
    for (; it < max_iter; it++) {
        if (P->gnorm(cx, g) <= tol * g0) break;
        /* two-loop recursion: d = -H g */
        for (size_t i = 0; i < n; i++) d[i] = -g[i];
        for (int h = 0; h < hist; h++) {
            int j = (head - 1 - h + m) % m;
            alpha[j] = rho[j] * P->dot(cx, S + (size_t)j * n, d);
            const double *yj = Yv + (size_t)j * n;
            for (size_t i = 0; i < n; i++) d[i] -= alpha[j] * yj[i];
        }
        if (hist) {
            int j = (head - 1 + m) % m;
            const double *yj = Yv + (size_t)j * n;
            double gamma = 1.0 / (rho[j] * P->dot(cx, yj, yj));
            for (size_t i = 0; i < n; i++) d[i] *= gamma;
        }
        for (int h = hist - 1; h >= 0; h--) {
            int j = (head - 1 - h + m) % m;
            double beta = rho[j] * P->dot(cx, Yv + (size_t)j * n, d);
            const double *sj = S + (size_t)j * n;
            for (size_t i = 0; i < n; i++) d[i] += (alpha[j] - beta) * sj[i];
        }
        double gd = P->dot(cx, g, d);
        if (!(gd < 0)) {   /* not a descent direction (numerical trouble): restart */
            for (size_t i = 0; i < n; i++) d[i] = -g[i];
            gd = -P->dot(cx, g, g);
            hist = 0;
        }
        double step = hist ? 1.0 : 1.0 / NK_MAX(sqrt(-gd), 1.0);
        double f2 = 0;
        int ls = 0;
        for (; ls < 40; ls++) {
            for (size_t i = 0; i < n; i++) th2[i] = th[i] + step * d[i];
            f2 = P->eval(cx, th2, g2);
            if (isfinite(f2) && f2 <= f + 1e-4 * step * gd) break;
            step *= 0.5;
        }
        if (ls == 40) break;   /* no decrease possible at double precision: converged */
        /* curvature pair */
        double *sj = S + (size_t)head * n, *yj = Yv + (size_t)head * n;
        for (size_t i = 0; i < n; i++) { sj[i] = th2[i] - th[i]; yj[i] = g2[i] - g[i]; }
        double sy = P->dot(cx, sj, yj);
        if (sy > 1e-12 * sqrt(NK_MAX(P->dot(cx, sj, sj), 0) * NK_MAX(P->dot(cx, yj, yj), 0))) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (hist < m) hist++;
        }
        /* five steps in a row that gain nothing at double precision: converged */
        stalls = f - f2 <= 4 * DBL_EPSILON * fabs(f) ? stalls + 1 : 0;
        memcpy(th, th2, n * sizeof *th);
        memcpy(g, g2, n * sizeof *g);
        f = f2;
        if (stalls >= 5) { it++; break; }
    }
    nk_free(buf);
    return it;
}

static double primal_eval(void *ctx, const double *th, double *g) { return eval_fg(ctx, th, g); }
static double primal_dot(void *ctx, const double *u, const double *v) {
    const problem *P = ctx;
    return dot(u, v, P->nw + (size_t)P->k);
}
static double primal_gnorm(void *ctx, const double *g) {
    const problem *P = ctx;
    return max_abs(g, P->nw + (size_t)P->k);
}

nook_status nk_lr_fit(const nk_csr *X, const int *y, int k, const size_t *rows, size_t n_rows,
                      const nk_lr_opts *o, double *W, double *b, int *iters, nook_error *err) {
    if (k < 2 || !(o->C > 0) || !isfinite(o->C) || X->d == 0)
        return nk_fail(err, NOOK_EINVAL, "logistic regression: need k >= 2, C > 0 and at least one column");
    uint64_t nw64;
    if (!nk_mul_ok(X->d, (uint64_t)k, &nw64) || nw64 > (1ull << 34))
        return nk_fail(err, NOOK_EINVAL, "logistic regression: %zu columns x %d labels is too large", X->d, k);
    problem P = { .X = X, .y = y, .k = k, .rows = rows, .n_rows = rows ? n_rows : X->n, .C = o->C,
                  .cw = o->class_w, .nw = (size_t)nw64 };
    const size_t n = P.nw + (size_t)k;
    /* memory: at most ~256 MiB of history, between 3 and 10 pairs */
    int m = (int)NK_MIN((size_t)10, NK_MAX((size_t)3, (size_t)(256u << 20) / (16 * n)));
    double *th = nk_alloc_array(n + (size_t)k, sizeof(double));
    if (!th) return nk_fail(err, NOOK_ENOMEM, "logistic regression: out of memory (%zu parameters)", n);
    P.z = th + n;
    memcpy(th, W, P.nw * sizeof *th);
    memcpy(th + P.nw, b, (size_t)k * sizeof *th);
    const nk_lbfgs_prob LP = { .L = n, .m = m, .eval = primal_eval, .dot = primal_dot, .gnorm = primal_gnorm,
                               .ctx = &P };
    int it = nk_lbfgs(&LP, th, o->tol > 0 ? o->tol : 1e-6, o->max_iter > 0 ? o->max_iter : 500);
    if (it < 0) {
        nk_free(th);
        return nk_fail(err, NOOK_ENOMEM, "logistic regression: out of memory (%zu parameters)", n);
    }
    memcpy(W, th, P.nw * sizeof *th);
    memcpy(b, th + P.nw, (size_t)k * sizeof *th);
    if (iters) *iters = it;
    nk_free(th);
    return NOOK_OK;
}

static double nll_at(const double *z, const int *y, size_t n, int k, double beta) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double *zi = z + i * (size_t)k;
        /* logsumexp(beta*z) without a buffer for large k */
        double m = beta * zi[0];
        for (int c = 1; c < k; c++) m = beta * zi[c] > m ? beta * zi[c] : m;
        double e = 0;
        for (int c = 0; c < k; c++) e += exp(beta * zi[c] - m);
        s += m + log(e) - beta * zi[y[i]];
    }
    return s / (double)(n ? n : 1);
}

double nk_fit_temperature(const double *z, const int *y, size_t n, int k) {
    /* The NLL is convex in beta = 1/T, so unimodal in log beta: golden-section search
     * on log beta in [-7, 5] (T between 0.007 and 1100). */
    if (n == 0) return 1.0;
    const double gr = (sqrt(5.0) - 1) / 2;
    double lo = -7, hi = 5;
    double x1 = hi - gr * (hi - lo), x2 = lo + gr * (hi - lo);
    double f1 = nll_at(z, y, n, k, exp(x1)), f2 = nll_at(z, y, n, k, exp(x2));
    for (int it = 0; it < 100 && hi - lo > 1e-9; it++) {
        if (f1 <= f2) {
            hi = x2; x2 = x1; f2 = f1;
            x1 = hi - gr * (hi - lo);
            f1 = nll_at(z, y, n, k, exp(x1));
        } else {
            lo = x1; x1 = x2; f1 = f2;
            x2 = lo + gr * (hi - lo);
            f2 = nll_at(z, y, n, k, exp(x2));
        }
    }
    return 1.0 / exp((lo + hi) / 2);
}

double nk_ece(const double *p, const int *y, size_t n, int k, int n_bins) {
    if (n == 0 || n_bins < 1) return 0;
    double conf[100] = { 0 }, acc[100] = { 0 };
    size_t cnt[100] = { 0 };
    if (n_bins > 100) n_bins = 100;
    for (size_t i = 0; i < n; i++) {
        const double *pi = p + i * (size_t)k;
        int best = 0;
        for (int c = 1; c < k; c++) if (pi[c] > pi[best]) best = c;
        int bin = (int)(pi[best] * n_bins);
        if (bin >= n_bins) bin = n_bins - 1;
        if (bin < 0) bin = 0;
        conf[bin] += pi[best];
        acc[bin] += best == y[i];
        cnt[bin]++;
    }
    double e = 0;
    for (int b = 0; b < n_bins; b++)
        if (cnt[b]) e += fabs(acc[b] - conf[b]) / (double)n;
    return e;
}

double nk_macro_f1(const size_t *conf, int k) {
    double sum = 0;
    int used = 0;
    for (int c = 0; c < k; c++) {
        size_t tp = conf[(size_t)c * k + c], fp = 0, fn = 0;
        for (int r = 0; r < k; r++) {
            if (r == c) continue;
            fp += conf[(size_t)r * k + c];
            fn += conf[(size_t)c * k + r];
        }
        if (2 * tp + fp + fn == 0) continue;
        sum += 2.0 * (double)tp / (double)(2 * tp + fp + fn);
        used++;
    }
    return used ? sum / used : 0;
}

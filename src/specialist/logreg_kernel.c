/*
 * logreg_kernel.c: the same logistic regression as logreg.c, solved in the span of the
 * training rows: for when there are far fewer examples than feature columns (100
 * e-mails have ~17,000 columns, 1,000 about 10^5).
 *
 * Why it is the same solution, step for step: the gradient of the objective at W is
 * W + X^T Z (Z: C times the softmax minus the one-hot labels), so from W = 0 or any
 * W = X^T A every L-BFGS iterate, direction and curvature pair stays of the form
 * X^T a. Each such vector is kept as its coefficients a (n_rows x k), the bias part
 * (k), and K a (K = X X^T restricted to the rows, the Gram matrix): inner products
 * <X^T u, X^T v> = u . (K v) cost O(n k) instead of O(d k), linear combinations act on
 * all three parts alike, the logits of the rows are K a + b, and one function and
 * gradient evaluation costs one n x n matrix product (K Z) instead of two passes over
 * every nonzero of X. The iterates equal the primal L-BFGS's up to rounding; only the
 * stopping test differs: the gradient's Euclidean norm (in feature space) relative to
 * its starting value, where logreg.c uses the max norm.
 */
#include "specialist/specialist.h"
#include "specialist/spec_internal.h"

#include <math.h>
#include <string.h>

/* A vector: [a: nk][beta: k][Ka: nk]; L = 2nk + k doubles. */
typedef struct kprob {
    const double *K;    /* [n*n] rows' Gram matrix, row-major */
    const int *y;       /* [n] labels of the rows             */
    size_t n;
    int k;
    double C;
    const double *cw;   /* [k] class weights, or NULL */
    size_t nk, L;
    double *z, *Z;      /* scratch: [k], [nk] */
} kprob;

static double kdot(const kprob *P, const double *u, const double *v) {
    double s = 0;
    const double *vka = v + P->nk + (size_t)P->k;
    for (size_t j = 0; j < P->nk; j++) s += u[j] * vka[j];
    for (int c = 0; c < P->k; c++) s += u[P->nk + (size_t)c] * v[P->nk + (size_t)c];
    return s;
}

/* out[n x k] = K a[n x k]. zero_sum: every row of a sums to zero (a gradient's Z:
 * softmax minus one-hot), so the last column is minus the sum of the others and only
 * k-1 columns are multiplied (half the work for two labels; K is read once either way). */
static void kmul(const kprob *P, const double *a, double *out, bool zero_sum) {
    const size_t n = P->n;
    const int k = P->k, kc = zero_sum ? k - 1 : k;
    memset(out, 0, P->nk * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const double *Ki = P->K + i * n;
        double *oi = out + i * (size_t)k;
        if (kc == 1) {
            double s = 0;
            for (size_t j = 0; j < n; j++) s += Ki[j] * a[j * (size_t)k];
            oi[0] = s;
        } else {
            for (size_t j = 0; j < n; j++) {
                const double kij = Ki[j];
                const double *aj = a + j * (size_t)k;
                for (int c = 0; c < kc; c++) oi[c] += kij * aj[c];
            }
        }
        if (zero_sum) {
            double s = 0;
            for (int c = 0; c < kc; c++) s += oi[c];
            oi[k - 1] = -s;
        }
    }
}

static double logsumexp(const double *z, int k) {
    double m = z[0];
    for (int c = 1; c < k; c++) m = z[c] > m ? z[c] : m;
    double s = 0;
    for (int c = 0; c < k; c++) s += exp(z[c] - m);
    return m + log(s);
}

/* f and its gradient g (a full vector, Ka part included) at th. */
static double keval(const kprob *P, const double *th, double *g) {
    const int k = P->k;
    const double *A = th, *b = th + P->nk, *KA = th + P->nk + (size_t)k;
    double f = 0;
    for (size_t j = 0; j < P->nk; j++) f += 0.5 * A[j] * KA[j];
    double *gb = g + P->nk;
    for (int c = 0; c < k; c++) gb[c] = 0;
    for (size_t i = 0; i < P->n; i++) {
        double *z = P->z;
        for (int c = 0; c < k; c++) z[c] = KA[i * (size_t)k + (size_t)c] + b[c];
        double l = logsumexp(z, k);
        int yi = P->y[i];
        const double Ci = P->cw ? P->C * P->cw[yi] : P->C;
        f += Ci * (l - z[yi]);
        double *Zi = P->Z + i * (size_t)k;
        for (int c = 0; c < k; c++) Zi[c] = Ci * exp(z[c] - l);
        Zi[yi] -= Ci;
        for (int c = 0; c < k; c++) gb[c] += Zi[c];
    }
    /* g.a = A + Z;  g.Ka = KA + K Z */
    double *gKa = g + P->nk + (size_t)k;
    kmul(P, P->Z, gKa, true);
    for (size_t j = 0; j < P->nk; j++) { g[j] = A[j] + P->Z[j]; gKa[j] += KA[j]; }
    return f;
}

static double kprob_eval(void *ctx, const double *th, double *g) { return keval(ctx, th, g); }
static double kprob_dot(void *ctx, const double *u, const double *v) { return kdot(ctx, u, v); }
static double kprob_gnorm(void *ctx, const double *g) { return sqrt(NK_MAX(kdot(ctx, g, g), 0)); }

nook_status nk_lr_fit_kernel(const double *K, const int *y, size_t n, int k, const nk_lr_opts *o, double *A,
                             double *b, int *iters, nook_error *err) {
    if (k < 2 || !(o->C > 0) || !isfinite(o->C) || n == 0)
        return nk_fail(err, NOOK_EINVAL, "logistic regression: need k >= 2, C > 0 and at least one example");
    kprob P = { .K = K, .y = y, .n = n, .k = k, .C = o->C, .cw = o->class_w, .nk = n * (size_t)k };
    P.L = 2 * P.nk + (size_t)k;
    double *th = nk_alloc_array(P.L + (size_t)k + P.nk, sizeof(double));
    if (!th) return nk_fail(err, NOOK_ENOMEM, "logistic regression: out of memory (%zu examples)", n);
    P.z = th + P.L;
    P.Z = P.z + k;
    memcpy(th, A, P.nk * sizeof *th);
    memcpy(th + P.nk, b, (size_t)k * sizeof *th);
    kmul(&P, th, th + P.nk + (size_t)k, false);
    const nk_lbfgs_prob LP = { .L = P.L, .m = 10, .eval = kprob_eval, .dot = kprob_dot, .gnorm = kprob_gnorm,
                               .ctx = &P };
    int it = nk_lbfgs(&LP, th, o->tol > 0 ? o->tol : 1e-6, o->max_iter > 0 ? o->max_iter : 500);
    if (it < 0) {
        nk_free(th);
        return nk_fail(err, NOOK_ENOMEM, "logistic regression: out of memory (%zu examples)", n);
    }
    memcpy(A, th, P.nk * sizeof *th);
    memcpy(b, th + P.nk, (size_t)k * sizeof *th);
    if (iters) *iters = it;
    nk_free(th);
    return NOOK_OK;
}

nook_status nk_csr_gram(const nk_csr *X, double **out, nook_error *err) {
    *out = NULL;
    const size_t n = X->n;
    uint64_t nn;
    if (!nk_mul_ok(n, n, &nn) || nn > (1ull << 28))
        return nk_fail(err, NOOK_EINVAL, "Gram matrix of %zu examples is too large", n);
    double *K = nk_alloc_array((size_t)nn + 1, sizeof *K);
    double *dense = nk_calloc(X->d + 1, sizeof *dense);
    if (!K || !dense) { nk_free(K); nk_free(dense); return nk_fail(err, NOOK_ENOMEM, "out of memory (Gram matrix)"); }
    for (size_t i = 0; i < n; i++) {
        for (size_t p = X->row[i]; p < X->row[i + 1]; p++) dense[X->col[p]] = X->val[p];
        for (size_t l = 0; l <= i; l++) {
            double s = 0;
            for (size_t p = X->row[l]; p < X->row[l + 1]; p++) s += X->val[p] * dense[X->col[p]];
            K[i * n + l] = K[l * n + i] = s;
        }
        for (size_t p = X->row[i]; p < X->row[i + 1]; p++) dense[X->col[p]] = 0;
    }
    nk_free(dense);
    *out = K;
    return NOOK_OK;
}

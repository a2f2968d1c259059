/*
 * test_logreg.c: the specialist's logistic regression against an independent
 * double-precision reference (a dense Newton solver written here, with the last
 * class's bias pinned at 0 so its Hessian is positive definite), recovery of known
 * weights from synthetic data, the kernel solver against both, temperature scaling and
 * ECE, macro-F1.
 */
#include "nk_test.h"
#include "specialist/specialist.h"

static uint64_t rng_state = 42;
static double urand(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static double nrand(void) {
    double u = urand(), v = urand();
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}
static int sample(const double *p, int k) {
    double u = urand(), c = 0;
    for (int i = 0; i < k; i++) { c += p[i]; if (u < c) return i; }
    return k - 1;
}

/* dense X (n x d) as CSR with every entry */
static nk_csr dense_csr(const double *X, size_t n, size_t d) {
    nk_csr m = { .n = n, .d = d };
    m.row = malloc((n + 1) * sizeof *m.row);
    m.col = malloc(n * d * sizeof *m.col);
    m.val = malloc(n * d * sizeof *m.val);
    for (size_t i = 0; i < n; i++) {
        m.row[i] = i * d;
        for (size_t j = 0; j < d; j++) { m.col[i * d + j] = (uint32_t)j; m.val[i * d + j] = X[i * d + j]; }
    }
    m.row[n] = n * d;
    return m;
}
static void csr_free(nk_csr *m) { free(m->row); free(m->col); free(m->val); }

/* Solves A x = b (n x n, row-major) by Gaussian elimination with partial pivoting. */
static void solve(double *A, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++) if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        for (int j = 0; j < n; j++) { double t = A[c * n + j]; A[c * n + j] = A[p * n + j]; A[p * n + j] = t; }
        double t = b[c]; b[c] = b[p]; b[p] = t;
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            for (int j = c; j < n; j++) A[r * n + j] -= f * A[c * n + j];
            b[r] -= f * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        for (int j = c + 1; j < n; j++) b[c] -= A[c * n + j] * b[j];
        b[c] /= A[c * n + c];
    }
}

/* Reference: Newton's method on theta = (W[d][k], b[0..k-2]), b[k-1] = 0. */
enum { RD = 4, RK = 3, RN = 40, NP = RD * RK + RK - 1 };
static void ref_fit(const double *X, const int *y, double C, double *W, double *b) {
    memset(W, 0, sizeof(double) * RD * RK);
    memset(b, 0, sizeof(double) * RK);
    for (int it = 0; it < 100; it++) {
        double g[NP] = { 0 }, H[NP * NP] = { 0 };
        for (int j = 0; j < RD * RK; j++) { g[j] = W[j]; H[j * NP + j] = 1; }
        for (int i = 0; i < RN; i++) {
            double z[RK], m = -1e300, s = 0;
            for (int c = 0; c < RK; c++) {
                z[c] = b[c];
                for (int j = 0; j < RD; j++) z[c] += X[i * RD + j] * W[j * RK + c];
                if (z[c] > m) m = z[c];
            }
            for (int c = 0; c < RK; c++) s += exp(z[c] - m);
            double p[RK];
            for (int c = 0; c < RK; c++) p[c] = exp(z[c] - m) / s;
            /* parameter index of (feature a or bias, class c); -1 for the pinned bias */
            double xa[RD + 1];
            for (int a = 0; a < RD; a++) xa[a] = X[i * RD + a];
            xa[RD] = 1;
            for (int c = 0; c < RK; c++)
                for (int a = 0; a <= RD; a++) {
                    int u = a < RD ? a * RK + c : (c < RK - 1 ? RD * RK + c : -1);
                    if (u < 0) continue;
                    g[u] += C * (p[c] - (y[i] == c)) * xa[a];
                    for (int c2 = 0; c2 < RK; c2++)
                        for (int a2 = 0; a2 <= RD; a2++) {
                            int v = a2 < RD ? a2 * RK + c2 : (c2 < RK - 1 ? RD * RK + c2 : -1);
                            if (v < 0) continue;
                            H[u * NP + v] += C * p[c] * ((c == c2) - p[c2]) * xa[a] * xa[a2];
                        }
                }
        }
        double gn = 0;
        for (int u = 0; u < NP; u++) gn = fmax(gn, fabs(g[u]));
        if (gn < 1e-13) break;
        solve(H, g, NP);
        for (int j = 0; j < RD * RK; j++) W[j] -= g[j];
        for (int c = 0; c < RK - 1; c++) b[c] -= g[RD * RK + c];
    }
}

static void test_reference(void) {
    double X[RN * RD];
    int y[RN];
    rng_state = 7;
    for (int i = 0; i < RN; i++) {
        for (int j = 0; j < RD; j++) X[i * RD + j] = nrand();
        /* a noisy rule so the classes overlap (a finite optimum without much help from L2) */
        double s0 = X[i * RD] + 0.5 * nrand(), s1 = X[i * RD + 1] - X[i * RD + 2] + 0.5 * nrand();
        y[i] = s0 > 0.3 ? 0 : (s1 > 0 ? 1 : 2);
    }
    nk_csr m = dense_csr(X, RN, RD);
    for (int ci = 0; ci < 3; ci++) {
        double C = ci == 0 ? 0.3 : ci == 1 ? 2.0 : 50.0;
        double Wr[RD * RK], br[RK], W[RD * RK] = { 0 }, b[RK] = { 0 };
        ref_fit(X, y, C, Wr, br);
        nk_lr_opts o = { .C = C, .tol = 1e-12, .max_iter = 10000 };
        nook_error err = { 0 };
        int iters = 0;
        CHECK(nk_lr_fit(&m, y, RK, NULL, 0, &o, W, b, &iters, &err) == NOOK_OK);
        double maxw = 0, maxb = 0, maxp = 0;
        for (int j = 0; j < RD * RK; j++) maxw = fmax(maxw, fabs(W[j] - Wr[j]));
        for (int c = 0; c < RK; c++) maxb = fmax(maxb, fabs((b[c] - b[RK - 1]) - br[c]));
        for (int i = 0; i < RN; i++) {
            double z[RK], zr[RK];
            nk_lr_logits(&m, (size_t)i, RK, W, b, z);
            nk_lr_logits(&m, (size_t)i, RK, Wr, br, zr);
            nk_lr_softmax(z, RK, 1.0);
            nk_lr_softmax(zr, RK, 1.0);
            for (int c = 0; c < RK; c++) maxp = fmax(maxp, fabs(z[c] - zr[c]));
        }
        CHECK_MSG(maxw < 1e-7, "C=%g: weights differ by %g (%d iterations)", C, maxw, iters);
        CHECK_MSG(maxb < 1e-7, "C=%g: biases differ by %g", C, maxb);
        CHECK_MSG(maxp < 1e-8, "C=%g: probabilities differ by %g", C, maxp);
    }
    /* a subset of rows equals fitting on that subset alone */
    size_t rows[20];
    for (int i = 0; i < 20; i++) rows[i] = (size_t)(2 * i);
    double W1[RD * RK] = { 0 }, b1[RK] = { 0 }, W2[RD * RK] = { 0 }, b2[RK] = { 0 };
    double Xs[20 * RD];
    int ys[20];
    for (int i = 0; i < 20; i++) { memcpy(Xs + i * RD, X + 2 * i * RD, sizeof(double) * RD); ys[i] = y[2 * i]; }
    nk_csr ms = dense_csr(Xs, 20, RD);
    nk_lr_opts o = { .C = 1.0, .tol = 1e-12, .max_iter = 10000 };
    CHECK(nk_lr_fit(&m, y, RK, rows, 20, &o, W1, b1, NULL, NULL) == NOOK_OK);
    CHECK(nk_lr_fit(&ms, ys, RK, NULL, 0, &o, W2, b2, NULL, NULL) == NOOK_OK);
    double md = 0;
    for (int j = 0; j < RD * RK; j++) md = fmax(md, fabs(W1[j] - W2[j]));
    CHECK_MSG(md < 1e-8, "row subset: %g", md);
    csr_free(&ms);
    csr_free(&m);
}

/* The kernel solver (logreg_kernel.c) reaches the same optimum as the reference on the
 * same data, and as the primal solver on a wide sparse problem (d >> n, k = 2 and 3,
 * the specialist's case), with W = X^T A. */
static void kernel_weights(const nk_csr *m, const double *A, int k, double *W) {
    memset(W, 0, m->d * (size_t)k * sizeof *W);
    for (size_t i = 0; i < m->n; i++)
        for (size_t p = m->row[i]; p < m->row[i + 1]; p++)
            for (int c = 0; c < k; c++) W[(size_t)m->col[p] * k + c] += m->val[p] * A[i * (size_t)k + c];
}

static void test_kernel(void) {
    double X[RN * RD];
    int y[RN];
    rng_state = 7;   /* the data of test_reference */
    for (int i = 0; i < RN; i++) {
        for (int j = 0; j < RD; j++) X[i * RD + j] = nrand();
        double s0 = X[i * RD] + 0.5 * nrand(), s1 = X[i * RD + 1] - X[i * RD + 2] + 0.5 * nrand();
        y[i] = s0 > 0.3 ? 0 : (s1 > 0 ? 1 : 2);
    }
    nk_csr m = dense_csr(X, RN, RD);
    double *K = NULL;
    CHECK(nk_csr_gram(&m, &K, NULL) == NOOK_OK);
    for (int ci = 0; ci < 3; ci++) {
        double C = ci == 0 ? 0.3 : ci == 1 ? 2.0 : 50.0;
        double Wr[RD * RK], br[RK], W[RD * RK], A[RN * RK] = { 0 }, b[RK] = { 0 };
        ref_fit(X, y, C, Wr, br);
        nk_lr_opts o = { .C = C, .tol = 1e-12, .max_iter = 10000 };
        CHECK(nk_lr_fit_kernel(K, y, RN, RK, &o, A, b, NULL, NULL) == NOOK_OK);
        kernel_weights(&m, A, RK, W);
        double maxw = 0, maxb = 0;
        for (int j = 0; j < RD * RK; j++) maxw = fmax(maxw, fabs(W[j] - Wr[j]));
        for (int c = 0; c < RK; c++) maxb = fmax(maxb, fabs((b[c] - b[RK - 1]) - br[c]));
        CHECK_MSG(maxw < 1e-6, "kernel C=%g: weights differ by %g", C, maxw);
        CHECK_MSG(maxb < 1e-6, "kernel C=%g: biases differ by %g", C, maxb);
    }
    free(K);
    csr_free(&m);
    /* wide and sparse: 40 rows, 300 columns, about 10% filled */
    enum { WN = 40, WD = 300 };
    for (int k = 2; k <= 3; k++) {
        double *Xw = calloc(WN * WD, sizeof *Xw);
        int yw[WN];
        rng_state = 11 + (uint64_t)k;
        for (int i = 0; i < WN; i++) {
            yw[i] = i % k;
            for (int j = 0; j < WD; j++)
                if (urand() < 0.1) Xw[i * WD + j] = fabs(nrand()) + (j % k == yw[i] ? 0.5 : 0);
        }
        nk_csr mw = dense_csr(Xw, WN, WD);
        double *Kw = NULL;
        CHECK(nk_csr_gram(&mw, &Kw, NULL) == NOOK_OK);
        double *Wp = calloc(WD * 3, sizeof *Wp), *Wk = calloc(WD * 3, sizeof *Wk), A[WN * 3] = { 0 };
        double bp[3] = { 0 }, bk[3] = { 0 };
        nk_lr_opts o = { .C = 10.0, .tol = 1e-12, .max_iter = 10000 };
        CHECK(nk_lr_fit(&mw, yw, k, NULL, 0, &o, Wp, bp, NULL, NULL) == NOOK_OK);
        CHECK(nk_lr_fit_kernel(Kw, yw, WN, k, &o, A, bk, NULL, NULL) == NOOK_OK);
        kernel_weights(&mw, A, k, Wk);
        double md = 0, mp = 0;
        for (int j = 0; j < WD * k; j++) md = fmax(md, fabs(Wp[j] - Wk[j]));
        for (int i = 0; i < WN; i++) {
            double zp[3], zk[3];
            nk_lr_logits(&mw, (size_t)i, k, Wp, bp, zp);
            nk_lr_logits(&mw, (size_t)i, k, Wk, bk, zk);
            nk_lr_softmax(zp, k, 1.0);
            nk_lr_softmax(zk, k, 1.0);
            for (int c = 0; c < k; c++) mp = fmax(mp, fabs(zp[c] - zk[c]));
        }
        CHECK_MSG(md < 1e-6, "wide k=%d: kernel and primal weights differ by %g", k, md);
        CHECK_MSG(mp < 1e-8, "wide k=%d: probabilities differ by %g", k, mp);
        free(Kw); free(Wp); free(Wk); free(Xw);
        csr_free(&mw);
    }
}

/* Class weights (class balancing): weighting label c's examples by an integer w_c is
 * the same objective as repeating each of them w_c times, so both solvers with weights
 * must land where the primal solver lands on the repeated rows; weights of 1 are the
 * unweighted fit exactly. */
static void test_class_weights(void) {
    enum { N = 30, D = 6, K = 3 };
    const double w[K] = { 1, 3, 2 };
    double X[N * D], Xr[N * 3 * D];
    int y[N], yr[N * 3];
    size_t nr = 0;
    rng_state = 23;
    for (int i = 0; i < N; i++) {
        y[i] = i % K;
        for (int j = 0; j < D; j++) X[i * D + j] = nrand() + (j % K == y[i] ? 0.7 : 0);
        for (int r = 0; r < (int)w[y[i]]; r++, nr++) {
            memcpy(Xr + nr * D, X + i * D, D * sizeof *X);
            yr[nr] = y[i];
        }
    }
    nk_csr m = dense_csr(X, N, D), mr = dense_csr(Xr, nr, D);
    double Wd[D * K] = { 0 }, bd[K] = { 0 }, Ww[D * K] = { 0 }, bw[K] = { 0 }, Wk[D * K], A[N * K] = { 0 }, bk[K] = { 0 };
    nk_lr_opts o = { .C = 2.0, .tol = 1e-12, .max_iter = 10000 };
    CHECK(nk_lr_fit(&mr, yr, K, NULL, 0, &o, Wd, bd, NULL, NULL) == NOOK_OK);
    o.class_w = w;
    CHECK(nk_lr_fit(&m, y, K, NULL, 0, &o, Ww, bw, NULL, NULL) == NOOK_OK);
    double *G = NULL;
    CHECK(nk_csr_gram(&m, &G, NULL) == NOOK_OK);
    CHECK(nk_lr_fit_kernel(G, y, N, K, &o, A, bk, NULL, NULL) == NOOK_OK);
    kernel_weights(&m, A, K, Wk);
    double mw = 0, mk = 0;
    for (int j = 0; j < D * K; j++) { mw = fmax(mw, fabs(Ww[j] - Wd[j])); mk = fmax(mk, fabs(Wk[j] - Wd[j])); }
    for (int c = 0; c < K; c++) { mw = fmax(mw, fabs(bw[c] - bd[c])); mk = fmax(mk, fabs(bk[c] - bd[c])); }
    CHECK_MSG(mw < 1e-6, "class weights: primal differs from repeated rows by %g", mw);
    CHECK_MSG(mk < 1e-6, "class weights: kernel differs from repeated rows by %g", mk);
    /* all ones: bit-identical to no weights */
    const double ones[K] = { 1, 1, 1 };
    double W0[D * K] = { 0 }, b0[K] = { 0 }, W1[D * K] = { 0 }, b1[K] = { 0 };
    o.class_w = NULL;
    CHECK(nk_lr_fit(&m, y, K, NULL, 0, &o, W0, b0, NULL, NULL) == NOOK_OK);
    o.class_w = ones;
    CHECK(nk_lr_fit(&m, y, K, NULL, 0, &o, W1, b1, NULL, NULL) == NOOK_OK);
    CHECK(memcmp(W0, W1, sizeof W0) == 0 && memcmp(b0, b1, sizeof b0) == 0);
    free(G);
    csr_free(&m);
    csr_free(&mr);
}

static void test_recovery(void) {
    enum { N = 20000, D = 5, K = 3 };
    /* true weights with rows summing to zero across classes (the representative L2 picks) */
    const double Wt[D * K] = { 1.5, -0.5, -1.0,   -1.0, 2.0, -1.0,   0.5, 0.5, -1.0,
                               0.0, -1.2, 1.2,    0.8, -0.4, -0.4 };
    const double bt[K] = { 0.3, -0.1, -0.2 };
    double *X = malloc(sizeof(double) * N * D);
    int *y = malloc(sizeof(int) * N);
    rng_state = 99;
    for (int i = 0; i < N; i++) {
        double z[K];
        for (int j = 0; j < D; j++) X[i * D + j] = nrand();
        for (int c = 0; c < K; c++) {
            z[c] = bt[c];
            for (int j = 0; j < D; j++) z[c] += X[i * D + j] * Wt[j * K + c];
        }
        nk_lr_softmax(z, K, 1.0);
        y[i] = sample(z, K);
    }
    nk_csr m = dense_csr(X, N, D);
    double W[D * K] = { 0 }, b[K] = { 0 };
    nk_lr_opts o = { .C = 1e4, .tol = 1e-9, .max_iter = 5000 };
    CHECK(nk_lr_fit(&m, y, K, NULL, 0, &o, W, b, NULL, NULL) == NOOK_OK);
    double mw = 0, mb = 0, bm = (b[0] + b[1] + b[2]) / 3;
    for (int j = 0; j < D * K; j++) mw = fmax(mw, fabs(W[j] - Wt[j]));
    for (int c = 0; c < K; c++) mb = fmax(mb, fabs(b[c] - bm - bt[c]));
    CHECK_MSG(mw < 0.08, "recovered weights off by %g", mw);
    CHECK_MSG(mb < 0.08, "recovered biases off by %g", mb);
    csr_free(&m);
    free(X);
    free(y);
}

static void test_calibration(void) {
    enum { N = 20000, K = 4 };
    double *z = malloc(sizeof(double) * N * K), *p = malloc(sizeof(double) * N * K);
    int *y = malloc(sizeof(int) * N);
    rng_state = 5;
    const double T_true = 2.5;
    for (int i = 0; i < N; i++) {
        double q[K];
        for (int c = 0; c < K; c++) q[c] = z[i * K + c] = 3.0 * nrand();
        nk_lr_softmax(q, K, T_true);
        y[i] = sample(q, K);
    }
    double T = nk_fit_temperature(z, y, N, K);
    CHECK_MSG(fabs(T - T_true) < 0.1, "temperature %g, want about %g", T, T_true);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            memcpy(p + i * K, z + i * K, sizeof(double) * K);
            nk_lr_softmax(p + i * K, K, pass ? T : 1.0);
        }
        double e = nk_ece(p, y, N, K, 10);
        if (pass) CHECK_MSG(e < 0.02, "ECE after temperature scaling %g", e);
        else CHECK_MSG(e > 0.1, "ECE of the overconfident probabilities %g", e);
    }
    /* ECE by hand: two bins */
    double ph[4 * 2] = { 0.95, 0.05, 0.95, 0.05, 0.35, 0.65, 0.4, 0.6 };
    int yh[4] = { 0, 1, 1, 1 };
    /* bin 9: conf 0.95 x2, acc 0.5 -> |0.5-0.95|*2/4; bin 6: conf .65,.6 acc 1 -> |1-.625|*2/4 */
    CHECK_NEAR(nk_ece(ph, yh, 4, 2, 10), 0.45 * 0.5 + 0.375 * 0.5, 1e-12);
    free(z);
    free(p);
    free(y);
}

static void test_f1(void) {
    /* true x pred: label 0: tp 5, fn 1 (as 1), fp 2 (from 1) -> F1 10/13;
       label 1: tp 3, fn 2, fp 1 -> 6/9; label 2: never occurs -> left out */
    size_t conf[9] = { 5, 1, 0, 2, 3, 0, 0, 0, 0 };
    CHECK_NEAR(nk_macro_f1(conf, 3), (10.0 / 13 + 6.0 / 9) / 2, 1e-12);
}

int main(void) {
    test_reference();
    test_kernel();
    test_class_weights();
    test_recovery();
    test_calibration();
    test_f1();
    NK_TEST_DONE();
}

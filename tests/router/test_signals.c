/*
 * test_signals.c: per-token entropy, margin and log-probability against a long-double
 * reference (random, peaked, uniform, masked and huge logits); the per-answer summary;
 * the logistic fit recovering known weights on synthetic data; a threshold chosen for a
 * 30% escalation rate landing within +-2 points on held-out data; the error-bound
 * threshold; the combiner's JSON round trip.
 */
#include "nk_test.h"
#include "router/signals.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}
static double nrand(void) {   /* Box-Muller */
    double u = urand(), v = urand();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void reference(const float *l, int n, int tok, long double *lp, long double *ent, long double *mar) {
    long double mx = -INFINITY, z = 0, h = 0, p1 = 0, p2 = 0;
    for (int i = 0; i < n; i++) if (l[i] > mx) mx = l[i];
    for (int i = 0; i < n; i++) if (isfinite(l[i])) z += expl((long double)l[i] - mx);
    for (int i = 0; i < n; i++) {
        if (!isfinite(l[i])) continue;
        long double p = expl((long double)l[i] - mx) / z;
        if (p > 0) h -= p * logl(p);
        if (p > p1) { p2 = p1; p1 = p; } else if (p > p2) p2 = p;
    }
    *lp = (long double)l[tok] - mx - logl(z);
    *ent = h;
    *mar = p1 - p2;
}

static void check_tok(const float *l, int n, int tok) {
    long double lp, ent, mar;
    reference(l, n, tok, &lp, &ent, &mar);
    nk_tok_sig s = nk_tok_sig_from_logits(l, n, tok);
    CHECK_NEAR(s.logprob, (double)lp, 1e-9 * (1 + fabs((double)lp)));
    CHECK_NEAR(s.entropy, (double)ent, 1e-9 * (1 + (double)ent));
    CHECK_NEAR(s.margin, (double)mar, 1e-12);
}

static void test_token_signals(void) {
    int n = 32000;
    float *l = malloc((size_t)n * sizeof *l);
    for (int rep = 0; rep < 5; rep++) {
        double scale = rep == 0 ? 0.01 : rep == 1 ? 1 : rep == 2 ? 5 : rep == 3 ? 30 : 1000;
        for (int i = 0; i < n; i++) l[i] = (float)(nrand() * scale + (rep == 4 ? 5e4 : 0));
        check_tok(l, n, 7);
        check_tok(l, n, n - 1);
    }
    /* uniform: entropy log n, margin 0 */
    for (int i = 0; i < n; i++) l[i] = 3.0f;
    nk_tok_sig s = nk_tok_sig_from_logits(l, n, 5);
    CHECK_NEAR(s.entropy, log((double)n), 1e-9);
    CHECK_NEAR(s.margin, 0, 1e-15);
    CHECK_NEAR(s.logprob, -log((double)n), 1e-9);
    /* one token has (almost) all the mass; masked (-inf) logits have none */
    for (int i = 0; i < n; i++) l[i] = i % 2 ? -INFINITY : -100.0f;
    l[10] = 100.0f;
    check_tok(l, n, 10);
    s = nk_tok_sig_from_logits(l, n, 10);
    CHECK(s.entropy >= 0 && s.entropy < 1e-40 * n + 1e-80 + 1e-70);
    CHECK_NEAR(s.margin, 1.0, 1e-15);
    s = nk_tok_sig_from_logits(l, n, 1);
    CHECK(s.logprob == -INFINITY);
    /* from the generation loop's numbers */
    s = nk_tok_sig_from_event(-0.5, 1.2, log(0.6), log(0.3));
    CHECK_NEAR(s.margin, 0.3, 1e-12);
    /* label mass: labels with logits 2, 1, 0 -> e^2 / (e^2 + e + 1) */
    for (int i = 0; i < n; i++) l[i] = 0;
    l[100] = 2; l[200] = 1; l[300] = 0;
    nook_token labels[3] = { 300, 100, 200 };
    CHECK_NEAR(nk_label_mass(l, n, labels, 3), exp(2) / (exp(2) + exp(1) + 1), 1e-12);
    free(l);
}

static void test_summary(void) {
    double v[4] = { 4, 1, 3, 2 };
    CHECK_NEAR(nk_quantile(v, 4, 0.1), 1.3, 1e-12);   /* numpy.quantile([1,2,3,4], .1) */
    CHECK_NEAR(nk_quantile(v, 4, 0.9), 3.7, 1e-12);
    nk_sig_acc a;
    nk_sig_acc_init(&a);
    nook_error err;
    for (int i = 0; i < 10; i++)
        CHECK(nk_sig_acc_push(&a, (nk_tok_sig){ -0.1 * (i + 1), 0.2 * i, 1.0 - 0.05 * i }, &err) == NOOK_OK);
    nk_signals s;
    nk_signals_summarize(&a, &s);
    CHECK_EQ_INT(s.n_tokens, 10);
    CHECK_NEAR(s.mean_logprob, -0.55, 1e-12);
    CHECK_NEAR(s.min_logprob, -1.0, 1e-12);
    CHECK_NEAR(s.p10_logprob, -0.91, 1e-12);
    CHECK_NEAR(s.mean_entropy, 0.9, 1e-12);
    CHECK_NEAR(s.max_entropy, 1.8, 1e-12);
    CHECK_NEAR(s.p90_entropy, 1.62, 1e-12);
    CHECK_NEAR(s.min_margin, 0.55, 1e-12);
    CHECK_NEAR(s.first_logprob, -0.1, 1e-12);
    CHECK(isnan(s.label_mass));
    json_t *j = nk_signals_json(&s);
    double x[NK_N_FEATURES];
    nk_features_from_json(j, x);
    CHECK_NEAR(x[0], -0.55, 1e-12);
    CHECK(isnan(x[14]));
    json_decref(j);
    nk_sig_acc_free(&a);
    nk_sig_acc_init(&a);
    nk_signals_summarize(&a, &s);
    CHECK(s.n_tokens == 0 && isnan(s.mean_logprob));
}

static void test_logreg(void) {
    int n = 20000, d = 3;
    double w_true[3] = { 1.5, -2.0, 0.5 }, b_true = 0.3;
    double *X = malloc(sizeof(double) * n * d);
    int *y = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        double z = b_true;
        for (int j = 0; j < d; j++) { X[i * d + j] = nrand(); z += w_true[j] * X[i * d + j]; }
        y[i] = urand() < 1 / (1 + exp(-z));
    }
    double w[3], b;
    nook_error err;
    CHECK(nk_logreg_fit(X, y, n, d, 0, w, &b, &err) == NOOK_OK);
    for (int j = 0; j < d; j++) CHECK_NEAR(w[j], w_true[j], 0.08);
    CHECK_NEAR(b, b_true, 0.06);
    /* one class only is refused */
    for (int i = 0; i < n; i++) y[i] = 1;
    CHECK(nk_logreg_fit(X, y, n, d, 0, w, &b, &err) == NOOK_EINVAL);
    free(X);
    free(y);
}

/* Synthetic answers: a latent quality q; acceptable with probability sigmoid(3q); the
 * signals are noisy functions of q (as mean log-probability and entropy would be). */
static void synth(int n, double (*x)[NK_N_FEATURES], int *ok) {
    for (int i = 0; i < n; i++) {
        double q = nrand();
        ok[i] = urand() < 1 / (1 + exp(-3 * q));
        for (int f = 0; f < NK_N_FEATURES; f++) x[i][f] = NAN;
        x[i][0] = -1.5 + 0.5 * q + 0.3 * nrand();    /* mean_logprob */
        x[i][4] = 2.0 - 0.6 * q + 0.4 * nrand();     /* mean_entropy */
        x[i][8] = 0.5 + 0.1 * q + 0.1 * nrand();     /* mean_margin  */
        x[i][11] = -2 + 0.3 * nrand();               /* first_logprob: pure noise */
    }
}

static void test_calibration(void) {
    int ntr = 20000, nte = 20000;
    double (*xtr)[NK_N_FEATURES] = malloc(sizeof *xtr * ntr), (*xte)[NK_N_FEATURES] = malloc(sizeof *xte * nte);
    int *ytr = malloc(sizeof(int) * ntr), *yte = malloc(sizeof(int) * nte);
    synth(ntr, xtr, ytr);
    synth(nte, xte, yte);
    nook_error err;
    nk_combiner c;
    double rates[3] = { 0.1, 0.3, 0.5 };
    for (int r = 0; r < 3; r++) {
        CHECK(nk_combiner_train((const double (*)[NK_N_FEATURES])xtr, ytr, ntr, rates[r], 0, &c, &err) == NOOK_OK);
        CHECK_EQ_INT(c.n, 4);
        int esc = 0;
        for (int i = 0; i < nte; i++) esc += nk_combiner_prob(&c, xte[i]) < c.threshold;
        double rate = (double)esc / nte;
        CHECK_MSG(fabs(rate - rates[r]) <= 0.02, "held-out escalation rate %.4f for target %.2f", rate, rates[r]);
        printf("target escalation %.2f: held-out %.4f\n", rates[r], rate);
    }
    /* error bound: accepted answers' error on held-out data near the bound, and far
     * below the error of accepting everything */
    CHECK(nk_combiner_train((const double (*)[NK_N_FEATURES])xtr, ytr, ntr, -1, 0.10, &c, &err) == NOOK_OK);
    int acc = 0, bad = 0, bad_all = 0;
    for (int i = 0; i < nte; i++) {
        bad_all += !yte[i];
        if (nk_combiner_prob(&c, xte[i]) >= c.threshold) { acc++; bad += !yte[i]; }
    }
    double e = (double)bad / acc;
    printf("error bound 0.10: held-out error of accepted %.4f, coverage %.3f (all: %.3f)\n",
           e, (double)acc / nte, (double)bad_all / nte);
    CHECK(e <= 0.12);
    CHECK(acc > nte / 4);
    /* exact on a tiny case: scores .9 .8 .7 .6 with ok 1 1 0 1: bound 0 -> accept 2 */
    double p[4] = { 0.9, 0.8, 0.7, 0.6 };
    int y[4] = { 1, 1, 0, 1 };
    CHECK_NEAR(nk_threshold_for_error(p, y, 4, 0.0), 0.75, 1e-12);
    CHECK(nk_threshold_for_error(p, y, 4, 0.25) == -INFINITY);
    CHECK_NEAR(nk_threshold_for_rate(p, 4, 0.5), 0.75, 1e-12);
    /* JSON round trip */
    json_t *j = nk_combiner_json(&c);
    nk_combiner c2;
    CHECK(nk_combiner_from_json(j, &c2, &err) == NOOK_OK);
    CHECK_NEAR(nk_combiner_prob(&c2, xte[0]), nk_combiner_prob(&c, xte[0]), 1e-12);
    CHECK_NEAR(c2.threshold, c.threshold, 1e-12);
    json_decref(j);
    free(xtr); free(xte); free(ytr); free(yte);
}

int main(void) {
    test_token_signals();
    test_summary();
    test_logreg();
    test_calibration();
    NK_TEST_DONE();
}

/*
 * test_eval.c: the replay evaluation's arithmetic (src/router/eval.c) on hand-checked
 * cases: token F1 (case, punctuation, repeated words, empty answers, UTF-8), the AUROC
 * against an O(n^2) pair count (ties, NANs, perfect and inverted signals, one class),
 * and the report's curves: rate 0 and 1 equal all-local and all-remote, the oracle
 * dominates, random is the straight line, a signal that orders perfectly matches the
 * oracle when escalating exactly the failures; unknown costs give null.
 */
#include "nk_test.h"
#include "router/eval.h"

static double pairs_auroc(const double *s, const bool *fail, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (!fail[i] || fail[j]) continue;
            double a = isnan(s[i]) ? -INFINITY : s[i], b = isnan(s[j]) ? -INFINITY : s[j];
            num += a < b ? 1 : a == b ? 0.5 : 0;
            den++;
        }
    return num / den;
}

static void test_f1(void) {
    CHECK_NEAR(nk_eval_f1("The cat sat.", "the CAT sat"), 1.0, 1e-12);
    CHECK_NEAR(nk_eval_f1("a a b", "a b b"), 2.0 / 3, 1e-12);   /* common a, b: p = q = 2/3 */
    CHECK_NEAR(nk_eval_f1("x y", "z"), 0.0, 1e-12);
    CHECK_NEAR(nk_eval_f1("", ""), 1.0, 1e-12);
    CHECK_NEAR(nk_eval_f1("...", "word"), 0.0, 1e-12);
    CHECK_NEAR(nk_eval_f1("héllo wörld", "wörld"), 2 * 0.5 * 1 / 1.5, 1e-12);
    CHECK_NEAR(nk_eval_f1("one two three four", "two four"), 2 * 0.5 * 1 / 1.5, 1e-12);
}

static void test_auroc(void) {
    const double s1[] = { 0.1, 0.2, 0.3, 0.9, 0.8, 0.7 };
    const bool f1[] = { true, true, true, false, false, false };
    CHECK_NEAR(nk_eval_auroc(s1, f1, 6), 1.0, 1e-12);
    const bool f2[] = { false, false, false, true, true, true };
    CHECK_NEAR(nk_eval_auroc(s1, f2, 6), 0.0, 1e-12);
    const double s3[] = { 0.5, NAN, 0.5, 0.2, 0.5, NAN, 1.0, 0.2 };
    const bool f3[] = { true, false, false, true, true, true, false, false };
    CHECK_NEAR(nk_eval_auroc(s3, f3, 8), pairs_auroc(s3, f3, 8), 1e-12);
    CHECK(isnan(nk_eval_auroc(s1, f1, 3)));   /* failures only */
    /* random data against the pair count */
    uint64_t x = 88172645463325252ull;
    double s[200];
    bool f[200];
    for (int i = 0; i < 200; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        s[i] = (double)(x % 17) / 4;   /* many ties */
        f[i] = (x >> 20) % 3 == 0;
        if (i % 37 == 0) s[i] = NAN;
    }
    CHECK_NEAR(nk_eval_auroc(s, f, 200), pairs_auroc(s, f, 200), 1e-12);
}

static double curve_at(json_t *rep, const char *path1, const char *path2, int k, const char *field) {
    json_t *o = json_object_get(rep, path1);
    if (path2) o = json_object_get(o, path2);
    return json_number_value(json_object_get(json_array_get(json_object_get(o, "curve"), (size_t)k), field));
}

static void test_report(void) {
    enum { N = 10 };
    nk_eval_row rows[N];
    memset(rows, 0, sizeof rows);
    double ql_sum = 0, qr_sum = 0;
    for (int i = 0; i < N; i++) {
        /* answers 0..4 fail (q_local 0.1), with the lowest mean_logprob */
        rows[i].q_local = i < 5 ? 0.1 : 0.9;
        rows[i].q_remote = 0.8;
        rows[i].cost = 0.5;
        rows[i].sig.n_tokens = 8;
        rows[i].sig.mean_logprob = i < 5 ? -3.0 - i : -0.5 + 0.01 * i;
        rows[i].sig.mean_entropy = 2.0;   /* constant: AUROC 0.5 */
        rows[i].sig.label_mass = NAN;     /* absent: not reported */
        rows[i].sig.min_logprob = rows[i].sig.p10_logprob = rows[i].sig.max_entropy = rows[i].sig.p90_entropy = NAN;
        rows[i].sig.mean_margin = rows[i].sig.first_logprob = rows[i].sig.first_margin = NAN;
        ql_sum += rows[i].q_local;
        qr_sum += rows[i].q_remote;
    }
    json_t *rep = nk_eval_report(rows, N, 0.5, -1.5, NULL);
    CHECK(rep != NULL);
    CHECK_EQ_INT((int)json_integer_value(json_object_get(rep, "failures")), 5);
    json_t *sigs = json_object_get(rep, "signals");
    CHECK(json_object_get(sigs, "label_mass") == NULL);
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(sigs, "mean_logprob"), "auroc")), 1.0, 1e-12);
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(sigs, "mean_entropy"), "auroc")), 0.5, 1e-12);
    /* rate 0: all local; rate 1: all remote */
    CHECK_NEAR(curve_at(rep, "signals", "mean_logprob", 0, "quality"), ql_sum / N, 1e-12);
    CHECK_NEAR(curve_at(rep, "signals", "mean_logprob", 10, "quality"), qr_sum / N, 1e-12);
    CHECK_NEAR(curve_at(rep, "signals", "mean_logprob", 10, "cost"), 0.5, 1e-12);
    /* at 50% the perfect signal escalates exactly the failures, as the oracle */
    double q50 = (5 * 0.8 + 5 * 0.9) / N;
    CHECK_NEAR(curve_at(rep, "signals", "mean_logprob", 5, "quality"), q50, 1e-12);
    CHECK_NEAR(curve_at(rep, "oracle", NULL, 5, "quality"), q50, 1e-12);
    CHECK_NEAR(curve_at(rep, "signals", "mean_logprob", 5, "retained"), q50 / 0.8, 1e-12);
    CHECK_NEAR(curve_at(rep, "random", NULL, 5, "quality"), 0.5 * ql_sum / N + 0.5 * qr_sum / N, 1e-12);
    for (int k = 0; k <= 10; k++)
        CHECK(curve_at(rep, "oracle", NULL, k, "quality") >= curve_at(rep, "signals", "mean_entropy", k, "quality") - 1e-12);
    /* risk among the kept half: none of the kept failed */
    json_t *rc = json_object_get(json_object_get(sigs, "mean_logprob"), "risk_coverage");
    CHECK_NEAR(json_number_value(json_object_get(json_array_get(rc, 4), "risk")), 0.0, 1e-12);
    CHECK_NEAR(json_number_value(json_object_get(json_array_get(rc, 9), "risk")), 0.5, 1e-12);
    /* the default rule: mean_logprob < -1.5 escalates the five failures */
    json_t *d = json_object_get(rep, "default_router");
    CHECK_NEAR(json_number_value(json_object_get(d, "rate")), 0.5, 1e-12);
    CHECK_NEAR(json_number_value(json_object_get(d, "quality")), q50, 1e-12);
    json_decref(rep);
    /* an unknown cost makes the cost null, not a number */
    rows[0].cost = NAN;
    rep = nk_eval_report(rows, N, 0.5, -1.5, NULL);
    CHECK(json_is_null(json_object_get(json_array_get(json_object_get(json_object_get(json_object_get(rep, "signals"),
                                                                       "mean_logprob"), "curve"), 10), "cost")));
    CHECK_NEAR(curve_at(rep, "signals", "mean_logprob", 0, "cost"), 0.0, 1e-12);
    json_decref(rep);
    /* no rows at all: a report, no crash */
    rep = nk_eval_report(rows, 0, 0.5, -1.5, NULL);
    CHECK(rep != NULL);
    json_decref(rep);
}

int main(void) {
    test_f1();
    test_auroc();
    test_report();
    NK_TEST_DONE();
}

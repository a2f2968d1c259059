/*
 * signals.h: confidence signals from the local model's own token distribution, and the
 * calibrated combiner that turns them into P(acceptable) (docs/privacy.md, "routing").
 *
 * Per token, on the untempered distribution p = softmax(logits) (no extra forward pass:
 * the logits are the ones the answer was sampled from):
 *   logprob  log p(chosen token)
 *   entropy  -sum p log p (nats)
 *   margin   p(top 1) - p(top 2)
 * Per answer: mean, min and quantiles of each, the first token's values, and for
 * closed-label tasks the mass of the label tokens renormalised among themselves at the
 * first answer token (nk_label_mass).
 *
 * The combiner is logistic regression on standardised features (nk_features): trained
 * by `nook route calibrate` from graded examples; a threshold per task chosen for a
 * target escalation rate or a bound on the error of accepted answers. Uncalibrated,
 * `auto` uses NK_DEFAULT_MIN_MEAN_LOGPROB (documented in docs/privacy.md).
 */
#ifndef NOOK_ROUTER_SIGNALS_H
#define NOOK_ROUTER_SIGNALS_H

#include "base/base.h"

#include <jansson.h>

typedef struct nk_tok_sig {
    double logprob, entropy, margin;
} nk_tok_sig;

/* Signals of token tok under logits[0..n) (computed in double; max-subtracted).
 * tok out of range gives logprob -INFINITY. */
nk_tok_sig nk_tok_sig_from_logits(const float *logits, int n, nook_token tok);

/* The same from what the generation loop reports: the token's log-probability and
 * entropy and the two best log-probabilities (top2_lp = -INFINITY if unknown). */
nk_tok_sig nk_tok_sig_from_event(double logprob, double entropy, double top1_lp, double top2_lp);

/* The mass of the label tokens, renormalised among themselves: max_i p(label_i) /
 * sum_i p(label_i) (the probability of the label the model prefers). n_labels >= 1. */
double nk_label_mass(const float *logits, int n, const nook_token *labels, int n_labels);

/* Per-answer accumulator: push each token's signals. Allocation grows geometrically;
 * nk_sig_acc_reserve up front keeps the token loop allocation-free. */
typedef struct nk_sig_acc {
    nk_tok_sig *v;
    int n, cap;
    double label_mass;      /* NAN unless set */
} nk_sig_acc;

void nk_sig_acc_init(nk_sig_acc *a);
nook_status nk_sig_acc_reserve(nk_sig_acc *a, int n, nook_error *err);
nook_status nk_sig_acc_push(nk_sig_acc *a, nk_tok_sig s, nook_error *err);
void nk_sig_acc_free(nk_sig_acc *a);

/* The answer's summary. Quantiles by linear interpolation between order statistics
 * (numpy's default). All NAN when there are no tokens. */
typedef struct nk_signals {
    int n_tokens;
    double mean_logprob, min_logprob, p10_logprob, p50_logprob;
    double mean_entropy, max_entropy, p50_entropy, p90_entropy;
    double mean_margin, min_margin, p10_margin;
    double first_logprob, first_entropy, first_margin;
    double label_mass;
} nk_signals;

void nk_signals_summarize(const nk_sig_acc *a, nk_signals *out);

/* Quantile q in [0,1] of v[0..n) (v is sorted in place). */
double nk_quantile(double *v, int n, double q);

/* The features the combiner reads, by name (the keys of nk_signals_json); label_mass
 * is a feature only for closed-label tasks (NAN elsewhere, then it is left out). */
#define NK_N_FEATURES 15
extern const char *const nk_feature_names[NK_N_FEATURES];
void nk_features(const nk_signals *s, double x[NK_N_FEATURES]);

/* {"n_tokens":..,"mean_logprob":..,...}: every finite value (NAN ones are omitted). */
json_t *nk_signals_json(const nk_signals *s);
/* Reads features back from such an object (missing names are NAN). */
void nk_features_from_json(json_t *o, double x[NK_N_FEATURES]);
/* The inverse of nk_signals_json (missing values are NAN, a missing n_tokens 0). */
void nk_signals_from_json(json_t *o, nk_signals *s);

/* ---- the combiner ------------------------------------------------------------------ */

/* Uncalibrated default: escalate when the answer's mean token log-probability is below
 * this (a geometric-mean token probability under e^-1.5 = 0.22). Chosen from
 * stories260K (trained) against a random-weight model of its vocabulary: see
 * docs/privacy.md for the measurement. */
#define NK_DEFAULT_MIN_MEAN_LOGPROB (-1.5)

typedef struct nk_combiner {
    int n;                              /* features used                             */
    int idx[NK_N_FEATURES];             /* which nk_feature_names, in order          */
    double mu[NK_N_FEATURES], sd[NK_N_FEATURES], w[NK_N_FEATURES], b;
    double threshold;                   /* escalate when P(acceptable) < threshold   */
} nk_combiner;

/* P(acceptable) for features x. NAN if a used feature is NAN. */
double nk_combiner_prob(const nk_combiner *c, const double x[NK_N_FEATURES]);

/* Logistic regression by Newton's method (IRLS) on n rows of X (n x d, row-major) with
 * labels y (1 = acceptable), L2 penalty l2 on the weights (not the bias). Writes w[d]
 * and *b. Errors: NOOK_EINVAL (n < 2, one class only), NOOK_ENOMEM, NOOK_ERANGE (no
 * convergence). */
nook_status nk_logreg_fit(const double *X, const int *y, int n, int d, double l2, double *w,
                          double *b, nook_error *err);

/* Threshold for a target escalation rate r in [0,1]: the r-quantile of the scores
 * (answers scoring below it escalate). */
double nk_threshold_for_rate(const double *p, int n, double rate);
/* Threshold for a bound e on the error of accepted answers: the lowest t such that the
 * answers with p >= t have an error rate <= e (the most coverage for the bound);
 * +INFINITY (escalate everything) if even the best answer alone fails. */
double nk_threshold_for_error(const double *p, const int *y, int n, double max_err);

/* Train a combiner from graded rows (features x[n][NK_N_FEATURES] with NAN for
 * missing, ok[n]): uses the features present (finite) in every row and not constant,
 * standardises them, fits, and picks the threshold: rate >= 0 -> nk_threshold_for_rate,
 * else max_err -> nk_threshold_for_error. */
nook_status nk_combiner_train(const double (*x)[NK_N_FEATURES], const int *ok, int n, double rate,
                              double max_err, nk_combiner *out, nook_error *err);

json_t *nk_combiner_json(const nk_combiner *c);
nook_status nk_combiner_from_json(json_t *o, nk_combiner *out, nook_error *err);

#endif /* NOOK_ROUTER_SIGNALS_H */

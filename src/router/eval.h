/*
 * eval.h: replay evaluation of routers (`nook route eval`, docs/privacy.md). A prompt
 * set is run once through the local model (its answer and every signal) and once through
 * the remote; the stored rows are then replayed under every router and threshold with
 * no model calls: escalation rate, quality and quality retained, cost per task, the
 * AUROC of each signal for a local failure, and risk-coverage, against random routing
 * and the oracle.
 *
 * Quality is the caller's (nk_eval_f1 against a reference, or the local answer's
 * agreement with the remote's); a local failure is q_local < fail_below.
 */
#ifndef NOOK_ROUTER_EVAL_H
#define NOOK_ROUTER_EVAL_H

#include "router/signals.h"

typedef struct nk_eval_row {
    nk_signals sig;           /* the local answer's                                   */
    double q_local, q_remote; /* quality of each answer, in [0, 1]                    */
    double cost;              /* the remote's cost for this prompt; NAN unknown       */
} nk_eval_row;

/* Token F1 of answer against reference: words (split on whitespace and punctuation,
 * case folded for ASCII) matched as multisets; 1 when both are empty. */
double nk_eval_f1(const char *answer, const char *reference);

/* The AUROC of score for predicting failure (fail[i]): the probability that a failed
 * answer scores lower (less confident) than an acceptable one, ties counting half
 * (Mann-Whitney with average ranks). NAN scores rank lowest. NAN when one class is
 * empty. */
double nk_eval_auroc(const double *score, const bool *fail, int n);

/* The whole report (new reference; NULL when out of memory):
 *   {"n", "fail_below", "failures", "mean_q_local", "mean_q_remote",
 *    "signals": {NAME: {"auroc", "curve": [{"rate","quality","retained","calls","cost"}...],
 *                       "risk_coverage": [{"coverage","risk"}...]}},
 *    "random": {"curve": [...]}, "oracle": {"curve": [...]},
 *    "default_router": {"threshold", "rate", "quality", "retained", "calls", "cost"},
 *    "calibrated_router": {...} (when comb is given)}
 * rates 0, 0.1, ..., 1: the lowest-scoring round(rate*n) answers escalate (random: the
 * expectation; oracle: the largest q_remote - q_local first). cost is null when a
 * row's cost is unknown; calls is remote calls per task. comb (may be NULL): the
 * calibrated combiner, also replayed as the signal "p_ok". */
json_t *nk_eval_report(const nk_eval_row *rows, int n, double fail_below, double default_threshold,
                       const nk_combiner *comb);

#endif /* NOOK_ROUTER_EVAL_H */

/*
 * model_signals.c: the confidence signals separate a trained model from a random one.
 * stories260K continues 100 story openings; so does a copy of it with random weights
 * (tools/randomize: the same vocabulary and tokenizer). Through the real routing path
 * (nk_route_generate, policy ask, so nothing is ever sent) each answer's mean entropy
 * and mean log-probability are collected; the test reports the AUROC of each signal
 * for "this answer came from the random model" and requires >= 0.95, and requires that
 * auto's default rule keeps >= 95% of the trained model's answers local and escalates
 * >= 95% of the random one's. It also measures what the router adds to a local
 * request: nk_router_open + nk_route_plan, and the time to the first token through
 * nk_route_generate(policy local) against nook_generate directly (interleaved runs).
 */
#include "nk_test.h"
#include "router/router.h"

#include <sys/wait.h>

#define N_PROMPTS 100

static const char *k_names[] = { "Lily", "Tom", "Sue", "Ben", "Mia", "Max", "Anna", "Tim", "Lucy", "Sam" };
static const char *k_starts[] = {
    "Once upon a time, there was a little girl named %s.",
    "One day, %s went to the park with mom.",
    "%s had a big red ball. One day,",
    "There was a small dog. The dog was friends with %s.",
    "%s liked to play in the garden. Every day",
    "It was a sunny day. %s wanted to go outside.",
    "%s saw a bird in the tree. The bird",
    "Mom gave %s a toy car. %s was very happy.",
    "%s and the cat were best friends. They",
    "In a small house lived a boy named %s. He",
};

typedef struct first_tok { double t0, t_first; } first_tok;
static bool on_first(const nook_event *ev, void *ud) {
    first_tok *f = ud;
    if (ev->kind == NOOK_EVENT_TOKEN && f->t_first == 0) { f->t_first = nk_time_ms(); return false; }
    return true;
}

static double auroc(const double *pos, int np, const double *neg, int nn) {
    /* P(score(pos) > score(neg)) + ties/2: Mann-Whitney */
    double s = 0;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < nn; j++) s += pos[i] > neg[j] ? 1 : pos[i] == neg[j] ? 0.5 : 0;
    return s / ((double)np * nn);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    char path[4096], rnd[4200], cmd[9000];
    nk_test_fixture(path, sizeof path, "stories260K.gguf");
    const char *bin = getenv("NOOK_BIN");
    snprintf(rnd, sizeof rnd, "/tmp/nook-signals-random-%d.gguf", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s/randomize '%s' '%s' 1", bin ? bin : "build", path, rnd);
    if (system(cmd) != 0) nk_test_skip("tools/randomize is not built");
    char home[64];
    snprintf(home, sizeof home, "/tmp/nook-signals-home-XXXXXX");
    if (!mkdtemp(home)) return 1;
    setenv("NOOK_HOME", home, 1);
    /* a remote that is never contacted: policy ask only suggests */
    setenv("NOOK_ESCALATE_URL", "http://127.0.0.1:9/v1", 1);
    setenv("NOOK_ESCALATE_MODEL", "stand-in", 1);
    unsetenv("NOOK_ESCALATE_KEY_ENV");
    unsetenv("NOOK_OFFLINE");
    nook_error err;
    nk_router *rt = NULL;
    CHECK(nk_router_open(home, &rt, &err) == NOOK_OK);
    nook_model *m[2] = { NULL, NULL };
    nook_session *s[2] = { NULL, NULL };
    const char *paths[2] = { path, rnd };
    nook_model_params mp = nook_model_default_params();
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = 256;
    sp.n_threads = 1;
    for (int k = 0; k < 2; k++) {
        CHECK(nook_model_load(paths[k], &mp, &m[k], &err) == NOOK_OK);
        CHECK(m[k] && nook_session_new(m[k], &sp, &s[k], &err) == NOOK_OK);
    }
    if (!s[0] || !s[1]) { fprintf(stderr, "%s\n", err.msg); NK_TEST_DONE(); }
    CHECK_EQ_INT(nook_model_n_vocab(m[0]), nook_model_n_vocab(m[1]));

    nook_gen_params gp = nook_gen_default_params();
    gp.sampler.temperature = 0;
    gp.num_predict = 24;
    double ent[2][N_PROMPTS], lp[2][N_PROMPTS];
    int kept_local[2] = { 0, 0 };
    for (int i = 0; i < N_PROMPTS; i++) {
        char text[256];
        const char *nm = k_names[i % 10];
        snprintf(text, sizeof text, k_starts[i / 10], nm, nm);
        nook_prompt pr = nook_prompt_default();
        pr.text = text;
        pr.raw = true;
        for (int k = 0; k < 2; k++) {
            nk_route_req rq = { .policy = NK_ROUTE_ASK, .model_policy = NK_ROUTE_UNSET };
            nk_route route;
            char *answer = NULL;
            nook_status st = nk_route_generate(rt, s[k], &pr, &gp, &rq, NULL, NULL, &route, &answer, &err);
            CHECK_MSG(st == NOOK_OK, "%s", err.msg);
            CHECK(route.have_signals && route.audit_id[0] == 0);
            ent[k][i] = route.signals.mean_entropy;
            lp[k][i] = route.signals.mean_logprob;
            kept_local[k] += route.target == NK_TARGET_LOCAL;
            CHECK(route.target == NK_TARGET_LOCAL || route.target == NK_TARGET_SUGGEST);
            nk_free(answer);
            nk_route_clear(&route);
        }
    }
    /* positive class: the random model's answers (high entropy, low log-probability) */
    double neg_lp[2][N_PROMPTS];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N_PROMPTS; i++) neg_lp[k][i] = -lp[k][i];
    double auc_ent = auroc(ent[1], N_PROMPTS, ent[0], N_PROMPTS);
    double auc_lp = auroc(neg_lp[1], N_PROMPTS, neg_lp[0], N_PROMPTS);
    double me[2] = { 0, 0 }, ml[2] = { 0, 0 };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N_PROMPTS; i++) { me[k] += ent[k][i] / N_PROMPTS; ml[k] += lp[k][i] / N_PROMPTS; }
    printf("stories260K: mean entropy %.3f nats, mean logprob %.3f; random weights: %.3f, %.3f\n",
           me[0], ml[0], me[1], ml[1]);
    printf("AUROC over %d prompts each: mean entropy %.4f, mean log-probability %.4f\n", N_PROMPTS, auc_ent, auc_lp);
    printf("auto (default threshold %.2f): kept local %d/%d of stories260K, %d/%d of the random model\n",
           NK_DEFAULT_MIN_MEAN_LOGPROB, kept_local[0], N_PROMPTS, kept_local[1], N_PROMPTS);
    CHECK(auc_ent >= 0.95);
    CHECK(auc_lp >= 0.95);
    CHECK(kept_local[0] >= 95);
    CHECK(kept_local[1] <= 5);

    /* what the router adds to a local request */
    int reps = 2000;
    double t0 = nk_time_ms();
    for (int i = 0; i < reps; i++) {
        nk_router *r2 = NULL;
        nk_route route;
        nk_route_req rq = { .policy = NK_ROUTE_LOCAL, .model_policy = NK_ROUTE_UNSET };
        json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "Once upon a time");
        if (nk_router_open(home, &r2, &err) || nk_route_plan(r2, &rq, msgs, &route, &err)) CHECK(0);
        json_decref(msgs);
        nk_router_free(r2);
    }
    double plan_us = (nk_time_ms() - t0) * 1000 / reps;
    printf("router on the local path: open + plan %.1f us per request (mean of %d)\n", plan_us, reps);
    CHECK(plan_us < 1000);
    /* time to first token, interleaved: nook_generate vs nk_route_generate(local) */
    int n = 41;
    double a[41], b[41];
    nook_prompt pr = nook_prompt_default();
    pr.text = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
    pr.raw = true;
    for (int i = 0; i < n; i++) {
        first_tok f = { nk_time_ms(), 0 };
        nook_generate(s[0], &pr, &gp, on_first, &f, &err);
        a[i] = f.t_first - f.t0;
        first_tok g = { nk_time_ms(), 0 };
        nk_router *r2 = NULL;
        nk_route route;
        char *answer = NULL;
        nk_route_req rq = { .policy = NK_ROUTE_LOCAL, .model_policy = NK_ROUTE_UNSET };
        if (nk_router_open(home, &r2, &err) == NOOK_OK)
            nk_route_generate(r2, s[0], &pr, &gp, &rq, on_first, &g, &route, &answer, &err);
        nk_router_free(r2);
        b[i] = g.t_first - g.t0;
        CHECK(answer == NULL);
    }
    qsort(a, (size_t)n, sizeof *a, cmp_d);
    qsort(b, (size_t)n, sizeof *b, cmp_d);
    printf("time to first token (stories260K, 1 thread, median of %d): nook_generate %.3f ms, "
           "through the router (policy local) %.3f ms, difference %.3f ms\n", n, a[n / 2], b[n / 2], b[n / 2] - a[n / 2]);

    for (int k = 0; k < 2; k++) { nook_session_free(s[k]); nook_model_free(m[k]); }
    nk_router_free(rt);
    unlink(rnd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", home);
    if (system(cmd) != 0) return 1;
    NK_TEST_DONE();
}

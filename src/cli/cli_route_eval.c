/*
 * cli_route_eval.c: `nook route eval` (docs/privacy.md, "Replay evaluation").
 *
 *   nook route eval PROMPTS --model MODEL [--out RUN.jsonl] [--report R.json] [-n N]
 *   nook route eval --replay RUN.jsonl [--report R.json]
 *
 * PROMPTS: one JSON object per line, {"prompt": "...", "reference": "..." (optional),
 * "task": "..." (optional)}. Each prompt runs once through the local model (greedy, N
 * tokens, its answer held with every signal, src/router's nk_route_hold_*) and once
 * through the configured remote by the real escalation path (nk_route_escalate:
 * redaction, the egress ledger, the POST), so a "remote" here is whatever
 * NOOK_ESCALATE_URL / route.remote names: in the tests a second `nook serve` on another
 * loopback port. Both answers and the signals are stored in RUN (one line per prompt);
 * the report then replays every signal as a router at rates 0..100% with no model
 * calls (src/router/eval.c), against random routing and the oracle. --replay reads a
 * stored RUN and reports again (other --fail-below, a new calibration) without models.
 *
 * Quality: token F1 against the reference when a prompt has one, else the local
 * answer's F1 against the remote's (the remote counts as 1).
 */
#include "cli/cli.h"
#include "cli/cli_store.h"
#include "router/eval.h"
#include "router/router.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *o_model, *o_out, *o_report, *o_replay, *o_fail_arg;
static int o_n = 48, o_threads = 0;
static double o_fail_below = 0.5;   /* from --fail-below, read in double (a float would print 0.8999...) */
static const cli_opt k_eval_opts[] = {
    { "model", 'm', OPT_STR, &o_model, 0, 0, "MODEL", "the local model (a path or a store name)" },
    { "out", 'o', OPT_STR, &o_out, 0, 0, "PATH", "where to store the answers and signals [route-eval.jsonl]" },
    { "report", 0, OPT_STR, &o_report, 0, 0, "PATH", "also write the whole report as JSON" },
    { "replay", 0, OPT_STR, &o_replay, 0, 0, "RUN", "report on a stored run, with no model calls" },
    { "num-predict", 'n', OPT_INT, &o_n, 1, 4096, "N", "tokens per local answer [48]" },
    { "fail-below", 0, OPT_STR, &o_fail_arg, 0, 0, "Q", "a local answer of quality below Q is a failure [0.5]" },
    { "threads", 't', OPT_INT, &o_threads, 0, 1024, "N", "threads for the local model [all cores]" },
};
static const cli_verb_info k_eval_info = {
    "route eval", "PROMPTS --model MODEL | --replay RUN",
    "Replay evaluation of the router: local and remote answers once, then every router and threshold",
    k_eval_opts, (int)NK_ARRAY_LEN(k_eval_opts),
};

static bool hold_cb(const nook_event *ev, void *ud) { return nk_route_hold_event(ud, ev); }

/* Runs the prompts; writes one line per prompt to out. */
static int run_prompts(const char *path, FILE *out) {
    FILE *f = fopen(path, "r");
    if (!f) return cli_fail(CLI_EFAIL, "route eval: cannot open %s", path);
    nk_model_ref ref;
    memset(&ref, 0, sizeof ref);
    nk_router *rt = NULL;
    nook_model *m = NULL;
    nook_session *s = NULL;
    nook_error err = { 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = cli_resolve_model(o_model, false, &ref), lineno = 0;
    if (rc) goto out;
    if (nk_router_open(NULL, &rt, &err)) { rc = cli_fail(CLI_EFAIL, "%s", err.msg); goto out; }
    if (!nk_router_has_remote(rt)) {
        rc = cli_fail(CLI_EFAIL, "route eval: no remote configured (set NOOK_ESCALATE_URL and NOOK_ESCALATE_MODEL, "
                                 "or route.remote in $NOOK_HOME/config.json)");
        goto out;
    }
    if (!(m = cli_load_model(ref.path, o_threads, false))) { rc = CLI_EFAIL; goto out; }
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = o_threads;
    if (nook_session_new(m, &sp, &s, &err)) { rc = cli_fail(CLI_EFAIL, "%s", err.msg); goto out; }
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (len == 1 && line[0] == '\n') continue;
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        const char *prompt = json_string_value(json_object_get(o, "prompt"));
        const char *refer = json_string_value(json_object_get(o, "reference"));
        const char *task = json_string_value(json_object_get(o, "task"));
        if (!prompt) {
            json_decref(o);
            rc = cli_fail(CLI_EFAIL, "route eval: %s:%d: expected {\"prompt\": \"...\"}", path, lineno);
            break;
        }
        /* the local answer, held, with its signals */
        nook_prompt pr = nook_prompt_default();
        pr.text = prompt;
        pr.system = ref.system;
        pr.template_src = ref.template_jinja;
        nook_gen_params gp = nook_gen_default_params();
        gp.sampler.temperature = 0;
        gp.num_predict = o_n;
        nk_route_hold_params(&gp);
        nk_route_hold h;
        nk_route_hold_init(&h);
        nook_status st = nook_generate(s, &pr, &gp, hold_cb, &h, &err);
        if (!st && h.reason == NOOK_DONE_ERROR) st = nk_fail(&err, h.status ? h.status : NOOK_EINTERNAL, "%s", h.error);
        if (!st && h.oom) st = nk_fail(&err, NOOK_ENOMEM, "out of memory");
        nk_signals sig;
        nk_signals_summarize(&h.acc, &sig);
        /* the remote's answer, by the real path (ledger first) */
        nk_route route;
        char *answer = NULL;
        json_t *msgs = NULL;
        if (!st) {
            nk_route_req rq = { .policy = NK_ROUTE_REMOTE, .model_policy = NK_ROUTE_UNSET, .task = task };
            msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", prompt);
            st = nk_route_plan(rt, &rq, msgs, &route, &err);
            if (!st) {
                if (route.policy != NK_ROUTE_REMOTE)   /* pinned (global or the task's local_only) */
                    st = nk_fail(&err, NOOK_EINVAL, "prompt %d: %s", lineno, route.reason);
                else st = nk_route_escalate(rt, &route, msgs, &answer, &err);
                if (!st && !answer) st = nk_fail(&err, NOOK_EINVAL, "prompt %d: %s", lineno, route.reason);
            }
        }
        if (st) {
            rc = cli_fail(CLI_EFAIL, "route eval: %s", err.msg);
        } else {
            const char *local = h.text ? h.text : "";
            double ql = refer ? nk_eval_f1(local, refer) : nk_eval_f1(local, answer);
            double qr = refer ? nk_eval_f1(answer, refer) : 1.0;
            json_t *row = json_pack("{s:i,s:s,s:o,s:s*,s:{s:s,s:o},s:{s:s,s:s,s:o},s:f,s:f}", "line", lineno, "prompt", prompt,
                                    "task", task ? json_string(task) : json_null(), "reference", refer, "local", "text",
                                    local, "signals", nk_signals_json(&sig), "remote", "text", answer, "audit_id",
                                    route.audit_id, "cost", isfinite(route.cost) ? json_real(route.cost) : json_null(),
                                    "q_local", ql, "q_remote", qr);
            char *txt = row ? json_dumps(row, JSON_COMPACT) : NULL;
            json_decref(row);
            if (!txt || fprintf(out, "%s\n", txt) < 0) rc = cli_fail(CLI_EFAIL, "route eval: cannot write the run");
            free(txt);
        }
        if (!st) nk_route_clear(&route);
        nk_free(answer);
        json_decref(msgs);
        nk_route_hold_free(&h);
        json_decref(o);
        if (rc) break;
    }
out:
    free(line);
    fclose(f);
    if (s) nook_session_free(s);
    if (m) nook_model_free(m);
    nk_router_free(rt);
    nk_model_ref_free(&ref);
    return rc;
}

/* Reads a stored run into rows. */
static int read_run(const char *path, nk_eval_row **rows_out, int *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) return cli_fail(CLI_EFAIL, "route eval: cannot open %s", path);
    nk_eval_row *rows = NULL;
    int n = 0, cap = 0, lineno = 0, rc = CLI_OK;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        lineno++;
        if (len == 1 && line[0] == '\n') continue;
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        json_t *sig = json_object_get(json_object_get(o, "local"), "signals");
        json_t *ql = json_object_get(o, "q_local"), *qr = json_object_get(o, "q_remote");
        if (!json_is_object(sig) || !json_is_number(ql) || !json_is_number(qr)) {
            json_decref(o);
            rc = cli_fail(CLI_EFAIL, "route eval: %s:%d: not a line of a stored run", path, lineno);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            nk_eval_row *nr = nk_realloc(rows, sizeof *nr * (size_t)cap);
            if (!nr) { json_decref(o); rc = cli_fail(CLI_EFAIL, "out of memory"); break; }
            rows = nr;
        }
        nk_eval_row *r = &rows[n++];
        nk_signals_from_json(sig, &r->sig);
        r->q_local = json_number_value(ql);
        r->q_remote = json_number_value(qr);
        json_t *c = json_object_get(json_object_get(o, "remote"), "cost");
        r->cost = json_is_number(c) ? json_number_value(c) : NAN;
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (rc) { nk_free(rows); return rc; }
    *rows_out = rows;
    *n_out = n;
    return CLI_OK;
}

/* The report: JSON to --report, a summary on stdout. */
static int report(const char *run_path) {
    nk_eval_row *rows = NULL;
    int n = 0;
    int rc = read_run(run_path, &rows, &n);
    if (rc) return rc;
    nk_router *rt = NULL;
    nook_error err = { 0 };
    if (nk_router_open(NULL, &rt, &err)) { nk_free(rows); return cli_fail(CLI_EFAIL, "%s", err.msg); }
    json_t *rep = nk_eval_report(rows, n, o_fail_below, NK_DEFAULT_MIN_MEAN_LOGPROB, nk_router_combiner(rt, NULL));
    nk_router_free(rt);
    nk_free(rows);
    if (!rep) return cli_fail(CLI_EFAIL, "out of memory");
    if (o_report) {
        char *txt = json_dumps(rep, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (!txt || nk_write_file_atomic(o_report, txt, strlen(txt), &err)) rc = cli_fail(CLI_EFAIL, "route eval: cannot write %s", o_report);
        free(txt);
    }
    if (!rc) {
        printf("%d prompts, %lld local failures (quality < %.2f); mean quality local %.3f, remote %.3f\n", n,
               (long long)json_integer_value(json_object_get(rep, "failures")), o_fail_below,
               json_number_value(json_object_get(rep, "mean_q_local")), json_number_value(json_object_get(rep, "mean_q_remote")));
        printf("%-14s %7s   quality retained at escalation rate 20%% / 50%% / 80%%\n", "router", "AUROC");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(rep, "signals"), k, v) {
            json_t *c = json_object_get(v, "curve");
            printf("%-14s %7.3f   %.3f / %.3f / %.3f\n", k, json_number_value(json_object_get(v, "auroc")),
                   json_number_value(json_object_get(json_array_get(c, 2), "retained")),
                   json_number_value(json_object_get(json_array_get(c, 5), "retained")),
                   json_number_value(json_object_get(json_array_get(c, 8), "retained")));
        }
        const char *base[] = { "random", "oracle" };
        for (int i = 0; i < 2; i++) {
            json_t *c = json_object_get(json_object_get(rep, base[i]), "curve");
            printf("%-14s %7s   %.3f / %.3f / %.3f\n", base[i], "", json_number_value(json_object_get(json_array_get(c, 2), "retained")),
                   json_number_value(json_object_get(json_array_get(c, 5), "retained")),
                   json_number_value(json_object_get(json_array_get(c, 8), "retained")));
        }
        json_t *d = json_object_get(rep, "default_router");
        printf("default router (mean_logprob < %.2f): escalates %.1f%%, quality retained %.3f\n", NK_DEFAULT_MIN_MEAN_LOGPROB,
               100 * json_number_value(json_object_get(d, "rate")), json_number_value(json_object_get(d, "retained")));
        if ((d = json_object_get(rep, "calibrated_router")))
            printf("calibrated router (P(acceptable) < %.3f): escalates %.1f%%, quality retained %.3f\n",
                   json_number_value(json_object_get(d, "threshold")), 100 * json_number_value(json_object_get(d, "rate")),
                   json_number_value(json_object_get(d, "retained")));
    }
    json_decref(rep);
    return rc;
}

int cli_route_eval(int argc, char **argv) {
    int n_pos = 0;
    int rc = cli_parse(&k_eval_info, argc, argv, &n_pos);
    if (rc) return rc;
    if (o_fail_arg) {
        char *end;
        o_fail_below = strtod(o_fail_arg, &end);
        if (*end || end == o_fail_arg || !(o_fail_below >= 0 && o_fail_below <= 1))
            return cli_fail(CLI_EUSAGE, "route eval: bad value '%s' for --fail-below (a number in [0, 1])", o_fail_arg);
    }
    if (o_replay) {
        if (n_pos != 0 || o_model) return cli_fail(CLI_EUSAGE, "route eval: --replay RUN takes no prompts and no --model");
        return report(o_replay);
    }
    if (n_pos != 1 || !o_model)
        return cli_fail(CLI_EUSAGE, "route eval: usage: nook route eval PROMPTS --model MODEL [--out RUN] | --replay RUN");
    const char *out_path = o_out ? o_out : "route-eval.jsonl";
    FILE *out = fopen(out_path, "w");
    if (!out) return cli_fail(CLI_EFAIL, "route eval: cannot write %s", out_path);
    rc = run_prompts(argv[0], out);
    if (fclose(out) != 0 && !rc) rc = cli_fail(CLI_EFAIL, "route eval: cannot write %s", out_path);
    if (rc) return rc;
    fprintf(stderr, "answers and signals stored in %s\n", out_path);
    return report(out_path);
}

/*
 * cli_route.c: `nook route calibrate FILE`: trains the router's combiner (logistic
 * regression on the confidence signals, src/router/signals.h) from graded examples and
 * stores it, with its threshold, for a task in $NOOK_HOME/router.json.
 *
 * FILE has one JSON object per line: {"signals": {...}, "ok": true|false, "task": "..."}
 * where signals are as a response's route.signals (a whole {"route": {...}} object is
 * accepted too), ok is the grade (the answer was acceptable) and task is optional
 * (--task keeps only that task's lines). The threshold is chosen for --rate (the share of
 * answers to escalate) or --max-error (the error allowed among the answers kept local).
 */
#include "cli/cli.h"
#include "net/ledger.h"
#include "router/signals.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *o_task, *o_out;
static float o_rate = -1, o_max_err = -1;
static const cli_opt k_route_opts[] = {
    { "task", 0, OPT_STR, &o_task, 0, 0, "NAME", "the task to calibrate (lines of other tasks are skipped) [the default task]" },
    { "rate", 0, OPT_FLOAT, &o_rate, 0, 1, "R", "choose the threshold so that this share of answers escalates [0.2]" },
    { "max-error", 0, OPT_FLOAT, &o_max_err, 0, 1, "E", "instead: the highest error rate allowed among answers kept local" },
    { "out", 0, OPT_STR, &o_out, 0, 0, "PATH", "where to write [$NOOK_HOME/router.json]" },
};
static const cli_verb_info k_route_info = {
    "route", "calibrate FILE  (or: route eval --help)",
    "Train the router's confidence combiner from graded examples (docs/privacy.md)",
    k_route_opts, (int)NK_ARRAY_LEN(k_route_opts),
};

int cli_route(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "eval") == 0) return cli_route_eval(argc - 1, argv + 1);
    int n_pos = 0;
    int rc = cli_parse(&k_route_info, argc, argv, &n_pos);
    if (rc) return rc;
    if (n_pos != 2 || strcmp(argv[0], "calibrate") != 0)
        return cli_fail(CLI_EUSAGE, "route: usage: nook route calibrate FILE [--task T] [--rate R | --max-error E], or nook route eval ...");
    if (o_rate >= 0 && o_max_err >= 0) return cli_fail(CLI_EUSAGE, "route: give --rate or --max-error, not both");
    double rate = o_max_err >= 0 ? -1 : o_rate >= 0 ? o_rate : 0.2;
    FILE *f = fopen(argv[1], "r");
    if (!f) return cli_fail(CLI_EFAIL, "route: cannot open %s", argv[1]);
    double (*x)[NK_N_FEATURES] = NULL;
    int *ok = NULL, n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    rc = CLI_OK;
    while ((len = getline(&line, &lcap, f)) > 0) {
        lineno++;
        if (len == 1 && line[0] == '\n') continue;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        json_t *sig = json_object_get(o, "signals"), *g = json_object_get(o, "ok");
        if (!sig) sig = json_object_get(json_object_get(o, "route"), "signals");
        const char *task = json_string_value(json_object_get(o, "task"));
        if (!json_is_object(sig) || !json_is_boolean(g)) {
            json_decref(o);
            rc = cli_fail(CLI_EFAIL, "route: %s:%d: expected {\"signals\": {...}, \"ok\": true|false}", argv[1], lineno);
            break;
        }
        if ((o_task && (!task || strcmp(task, o_task))) || (!o_task && task && *task)) { json_decref(o); continue; }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            x = realloc(x, sizeof *x * (size_t)cap);
            ok = realloc(ok, sizeof *ok * (size_t)cap);
            if (!x || !ok) { json_decref(o); rc = cli_fail(CLI_EFAIL, "out of memory"); break; }
        }
        nk_features_from_json(sig, x[n]);
        ok[n++] = json_is_true(g);
        json_decref(o);
    }
    free(line);
    fclose(f);
    nk_combiner c;
    nook_error err;
    if (rc == CLI_OK && nk_combiner_train((const double (*)[NK_N_FEATURES])x, ok, n, rate, o_max_err, &c, &err))
        rc = cli_fail(CLI_EFAIL, "route: %s", err.msg);
    if (rc == CLI_OK) {
        int esc = 0, acc = 0, bad = 0, npos = 0;
        for (int i = 0; i < n; i++) {
            npos += ok[i];
            if (nk_combiner_prob(&c, x[i]) < c.threshold) esc++;
            else { acc++; bad += !ok[i]; }
        }
        char path[4096], home[4000];
        if (o_out) snprintf(path, sizeof path, "%s", o_out);
        else if (nk_nook_home(home, sizeof home)) snprintf(path, sizeof path, "%s/router.json", home);
        else { rc = cli_fail(CLI_EFAIL, "route: set NOOK_HOME or HOME, or give --out"); goto out; }
        json_t *root = json_load_file(path, 0, NULL);
        if (!json_is_object(root)) { json_decref(root); root = json_object(); }
        if (!json_is_object(json_object_get(root, "tasks"))) json_object_set_new(root, "tasks", json_object());
        json_object_set_new(json_object_get(root, "tasks"), o_task ? o_task : "", nk_combiner_json(&c));
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!text || nk_write_file_atomic(path, text, strlen(text), &err)) rc = cli_fail(CLI_EFAIL, "route: cannot write %s", path);
        free(text);
        if (rc == CLI_OK) {
            printf("calibrated task \"%s\" on %d examples (%d acceptable) -> %s\nfeatures:", o_task ? o_task : "", n,
                   npos, path);
            for (int j = 0; j < c.n; j++) printf(" %s", nk_feature_names[c.idx[j]]);
            printf("\nthreshold %.4f on P(acceptable): escalates %.1f%% of these examples; error among kept %.1f%%\n",
                   c.threshold, 100.0 * esc / n, acc ? 100.0 * bad / acc : 0.0);
        }
    }
out:
    free(x);
    free(ok);
    return rc;
}

/*
 * cli_classify.c: `nook classify NAME|FILE [TEXT...]` prints the label a specialist
 * gives TEXT (the arguments joined, else stdin); `--jsonl` reads JSON lines with a
 * "text" field from stdin and prints, in order, one JSON object per line:
 * {"label","confidence","probabilities":{LABEL:p},"abstain"}, or {"error": "line N:
 * ..."} for a line that cannot be classified (the exit status is then 1; the other
 * lines are still answered). Below its threshold a specialist abstains: the label is
 * still the most likely one, and "abstain" is true.
 */
#include "cli/cli.h"
#include "specialist/specialist.h"
#include "router/router.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool o_jsonl, o_json, o_verbose;
static float o_threshold;
static const char *o_route, *o_local;

static const cli_opt k_cls_opts[] = {
    { "jsonl",     0, OPT_FLAG,  &o_jsonl,     0, 0, NULL, "read JSON lines {\"text\": ...} from stdin, print one JSON result per line" },
    { "json",      0, OPT_FLAG,  &o_json,      0, 0, NULL, "print the result for TEXT as a JSON object" },
    { "threshold", 0, OPT_FLOAT, &o_threshold, 0, 1, "P", "abstain below this confidence (default: the specialist's own)" },
    { "verbose",   0, OPT_FLAG,  &o_verbose,   0, 0, NULL, "also print every label's probability (on stderr)" },
    { "local-model", 0, OPT_STR, &o_local,     0, 0, "MODEL", "an abstaining case the router keeps here goes to this local general model (a GGUF or a stored name; default $NOOK_SPECIALIST_GENERAL), prompted with the labels" },
    { "route",     0, OPT_STR,   &o_route,     0, 0, "POLICY", "where an abstaining case goes: local (default), auto, remote or ask (the router's policy, docs/privacy.md)" },
};
static const cli_verb_info k_cls_info = {
    "classify", "NAME|FILE [TEXT...]",
    "Classify TEXT (or stdin) with a specialist; --jsonl classifies JSON lines.",
    k_cls_opts, (int)NK_ARRAY_LEN(k_cls_opts),
};

static void print_json(json_t *o) {
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (js) { puts(js); free(js); }
    else puts("{\"error\":\"out of memory\"}");
    fflush(stdout);
}

static void print_error_line(size_t lineno, const char *msg) {
    json_t *o = json_object();
    char buf[600];
    snprintf(buf, sizeof buf, "line %zu: %s", lineno, msg);
    json_object_set_new(o, "error", json_string(buf));
    print_json(o);
    json_decref(o);
}

/* One JSON line: classify its "text" and print the result. false when it failed. */
static nk_embedder *g_emb;
static float *g_vec;

/* Classifies one text (with the base model's embedding when the specialist has one). */
static nook_status classify_text(const nk_spec *s, const char *text, size_t len, double *probs,
                                 nk_class_result *r, nook_error *err) {
    if (s->embed_dim) {
        nook_status st = nk_embedder_embed(g_emb, text, len, g_vec, err);
        if (st) return st;
    }
    return nk_spec_classify(s, text, len, s->embed_dim ? g_vec : NULL, probs, r, err);
}

/* An abstaining result goes to the router (nk_spec_escalate) when the policy (--route,
 * else the router's configuration) is not local; *esc gets the "escalation" object
 * then (NULL otherwise). The router is opened once, on the first abstention. */
static nk_router *g_rt;
static nk_zeroshot *g_zs;
static char g_general[4400];   /* the local general model's path (--local-model, $NOOK_SPECIALIST_GENERAL); "" none */
static nook_status maybe_escalate(const nk_spec *s, const char *text, const nk_class_result *r, json_t **esc,
                                  int *label, nook_error *err) {
    *esc = NULL;
    *label = r->label;
    if (!r->abstain) return NOOK_OK;
    nook_status st = NOOK_OK;
    if (!g_rt && (st = nk_router_open(NULL, &g_rt, err))) return st;
    nk_route_req rq = { .policy = NK_ROUTE_UNSET, .model_policy = NK_ROUTE_UNSET };
    if (o_route) rq.policy = nk_route_policy_parse(o_route);
    nk_spec_escalation e;
    st = nk_spec_escalate_with(s, g_rt, &rq, text, r, g_general[0] ? g_general : NULL, &g_zs, &e, err);
    if (!st && e.asked) *esc = nk_spec_escalation_json(s, &e);
    if (!st && e.escalated && e.label >= 0) *label = e.label;
    nk_spec_escalation_clear(&e);
    return st;
}

static bool classify_line(const nk_spec *s, double *probs, const char *line, size_t n, size_t lineno) {
    json_error_t je;
    json_t *in = json_loadb(line, n, 0, &je);
    nook_error err = { 0 };
    bool ok = false;
    if (!in) {
        snprintf(err.msg, sizeof err.msg, "invalid JSON at column %d: %s", je.column, je.text);
    } else if (!json_is_string(json_object_get(in, "text"))) {
        snprintf(err.msg, sizeof err.msg, "expected an object with a string \"text\"");
    } else {
        json_t *t = json_object_get(in, "text");
        nk_class_result r;
        json_t *esc = NULL;
        int lab;
        if (classify_text(s, json_string_value(t), json_string_length(t), probs, &r, &err) == NOOK_OK &&
            maybe_escalate(s, json_string_value(t), &r, &esc, &lab, &err) == NOOK_OK) {
            json_t *o = nk_spec_result_json(s, probs, &r);
            if (o && esc) json_object_set_new(o, "escalation", esc);
            else json_decref(esc);
            print_json(o);
            json_decref(o);
            ok = true;
        }
    }
    if (!ok) print_error_line(lineno, err.msg);
    json_decref(in);
    return ok;
}

static int run_jsonl(const nk_spec *s, double *probs) {
    char *line = nk_malloc(NK_SPEC_MAX_LINE + 1);
    if (!line) return cli_fail(CLI_EFAIL, "out of memory");
    size_t lineno = 0;
    int failed = 0;
    for (;;) {
        size_t n = 0;
        int c = 0;
        bool too_long = false;
        while ((c = getc_unlocked(stdin)) != EOF && c != '\n') {
            if (n < NK_SPEC_MAX_LINE) line[n++] = (char)c;
            else too_long = true;   /* read on to the newline, keep nothing */
        }
        if (c == EOF && n == 0 && !too_long) break;
        lineno++;
        if (n && line[n - 1] == '\r') n--;
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++) blank = line[i] == ' ' || line[i] == '\t';
        if (too_long) {
            char m[80];
            snprintf(m, sizeof m, "line is longer than %u bytes", NK_SPEC_MAX_LINE);
            print_error_line(lineno, m);
            failed++;
        } else if (!blank && !classify_line(s, probs, line, n, lineno)) {
            failed++;
        }
        if (c == EOF) break;
    }
    nk_free(line);
    if (failed) return cli_fail(CLI_EFAIL, "classify: %d of %zu lines could not be classified", failed, lineno);
    return CLI_OK;
}

int cli_classify(int argc, char **argv) {
    int npos;
    o_jsonl = o_json = o_verbose = false;
    o_threshold = -1;
    o_route = o_local = NULL;
    g_rt = NULL;
    g_zs = NULL;
    int rc = cli_parse(&k_cls_info, argc, argv, &npos);
    if (rc) return rc;
    if (o_route && nk_route_policy_parse(o_route) == NK_ROUTE_UNSET)
        return cli_fail(CLI_EUSAGE, "classify: --route must be local, auto, remote or ask (got '%s')", o_route);
    if (npos < 1) return cli_fail(CLI_EUSAGE, "classify: missing NAME (usage: nook classify NAME|FILE [TEXT])");
    if (o_jsonl && npos > 1) return cli_fail(CLI_EUSAGE, "classify: --jsonl reads stdin; give no TEXT");
    nook_error err = { 0 };
    g_general[0] = 0;
    const char *gref = o_local ? o_local : getenv("NOOK_SPECIALIST_GENERAL");
    if (gref && *gref && nk_spec_general_path(gref, g_general, sizeof g_general, &err))
        return cli_fail(CLI_EFAIL, "classify: %s", err.msg);
    nk_spec *s = NULL;
    if (nk_spec_open(argv[0], &s, &err)) return cli_fail(CLI_EFAIL, "%s", err.msg);
    g_emb = NULL;
    g_vec = NULL;
    if (s->embed_dim) {
        if (nk_embedder_open(s->base_model, 0, &g_emb, &err) == NOOK_OK && nk_embedder_dim(g_emb) != s->embed_dim)
            nk_fail(&err, NOOK_EINVAL, "%s gives %u-dimensional embeddings; specialist '%s' was trained on %u",
                    s->base_model, nk_embedder_dim(g_emb), s->name, s->embed_dim);
        if (err.code == NOOK_OK) g_vec = nk_alloc_array(s->embed_dim, sizeof *g_vec);
        if (err.code != NOOK_OK || !g_vec) {
            rc = cli_fail(CLI_EFAIL, "classify: %s", err.code ? err.msg : "out of memory");
            nk_embedder_free(g_emb);
            nk_spec_free(s);
            return rc;
        }
    }
    if (o_threshold >= 0) s->threshold = o_threshold;
    double *probs = nk_alloc_array((size_t)s->k, sizeof *probs);
    if (!probs) { nk_spec_free(s); return cli_fail(CLI_EFAIL, "out of memory"); }
    if (o_jsonl) {
        rc = run_jsonl(s, probs);
    } else {
        size_t len = 0;
        char *text = npos > 1 ? cli_join_args(argv, 1, npos, &len) : cli_read_stream(stdin, false, &len);
        nk_class_result r;
        json_t *esc = NULL;
        int lab = 0;
        if (!text) {
            rc = cli_fail(CLI_EFAIL, "classify: cannot read the text");
        } else if (classify_text(s, text, len, probs, &r, &err) || maybe_escalate(s, text, &r, &esc, &lab, &err)) {
            rc = cli_fail(CLI_EFAIL, "classify: %s", err.msg);
        } else if (o_json) {
            json_t *o = nk_spec_result_json(s, probs, &r);
            if (o && esc) { json_object_set_new(o, "escalation", esc); esc = NULL; }
            print_json(o);
            json_decref(o);
        } else {
            puts(s->labels[lab]);   /* the router's label when it escalated and one came back */
            if (o_verbose)
                for (int c = 0; c < s->k; c++) fprintf(stderr, "%s\t%.6f\n", s->labels[c], probs[c]);
            if (r.abstain) {
                fprintf(stderr, "nook: abstained: confidence %.3f is below the threshold %.2f (%s)\n", r.confidence,
                        s->threshold, lab != r.label || json_is_true(json_object_get(esc, "escalated"))
                                          ? "escalated: the general model's label is printed"
                                          : "the most likely label is printed");
                char *ej = esc ? json_dumps(esc, JSON_COMPACT) : NULL;
                if (ej) fprintf(stderr, "nook: escalation: %s\n", ej);
                free(ej);
            }
        }
        json_decref(esc);
        nk_free(text);
    }
    nk_free(probs);
    nk_free(g_vec);
    nk_embedder_free(g_emb);
    nk_router_free(g_rt);
    g_rt = NULL;
    nk_zeroshot_free(g_zs);
    g_zs = NULL;
    nk_spec_free(s);
    return rc;
}

/* `nook show NAME` of a specialist: what it is, its labels, features and what
 * cross-validation measured when it was trained. */
int cli_show_specialist(const char *ref) {
    nk_spec *s = NULL;
    nook_error err = { 0 };
    nk_map map;
    struct stat sb;
    if (stat(ref, &sb) == 0 && S_ISREG(sb.st_mode)) {   /* a file: only when it is a specialist */
        if (nk_map_file(ref, false, &map, &err)) return -1;
        bool is = nk_spec_is_specialist_mem(map.data, map.size);
        nk_unmap(&map);
        if (!is) return -1;
    }
    nook_status st = nk_spec_open(ref, &s, &err);
    if (st == NOOK_ENOTFOUND || st == NOOK_EINVAL) return -1;   /* a model, or nothing: show says so */
    if (st) return cli_fail(CLI_EFAIL, "show: %s", err.msg);
    /* printed from the library's description, the one the server's /api/show gives */
    json_t *o = nk_spec_show_json(s, ref);
    nk_spec_free(s);
    if (!o) return cli_fail(CLI_EFAIL, "show: out of memory");
    const json_t *mi = json_object_get(o, "model_info");
#define MI(k) json_object_get(mi, "specialist." k)
    printf("  Specialist (a text classifier: nook classify %s TEXT)\n", ref);
    printf("    %-20s %s\n", "name", json_string_value(json_object_get(mi, "general.name")));
    printf("    %-20s", "labels");
    size_t i, nl = json_array_size(MI("labels"));
    const json_t *l;
    json_array_foreach(MI("labels"), i, l) printf(" %s%s", json_string_value(l), i + 1 < nl ? "," : "");
    putchar('\n');
    printf("    %-20s %.2f (abstains below this confidence)\n", "threshold", json_real_value(MI("threshold")));
    printf("    %-20s %.4f\n", "temperature", json_real_value(MI("temperature")));
    printf("    %-20s %lld", "feature columns", (long long)json_integer_value(MI("columns")));
    if (json_integer_value(MI("text_columns")))
        printf(" (word n-grams 1..%lld, character n-grams %lld..%lld, 2^%lld hashed ids%s)",
               (long long)json_integer_value(MI("features.word_max")), (long long)json_integer_value(MI("features.char_min")),
               (long long)json_integer_value(MI("features.char_max")), (long long)json_integer_value(MI("features.hash_bits")),
               json_is_true(MI("features.idf")) ? ", IDF" : "");
    putchar('\n');
    if (json_integer_value(MI("embed_dim")))
        printf("    %-20s %s (%lld-dimensional embedding)\n", "base model", json_string_value(MI("base_model")),
               (long long)json_integer_value(MI("embed_dim")));
    printf("    %-20s %lld examples, C=%g, out-of-fold macro-F1 %.4f, ECE %.4f -> %.4f\n", "trained on",
           (long long)json_integer_value(MI("n_train")), json_real_value(MI("cv.c")), json_real_value(MI("cv.macro_f1")),
           json_real_value(MI("cv.ece_raw")), json_real_value(MI("cv.ece_cal")));
#undef MI
    json_decref(o);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(CLI_EFAIL, "show: writing to stdout failed");
}

/*
 * router.c: configuration, the policy and pin resolution, the confidence decision, and
 * the escalation of a chat request (contract in router.h). Sending goes through
 * src/net/escalate.c only, which writes the egress ledger first.
 */
#include "router/router.h"
#include "net/escalate.h"
#include "net/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct task_cfg {
    char *name;
    nk_route_policy policy;
    bool local_only;
} task_cfg;

typedef struct task_comb {
    char *name;
    nk_combiner comb;
} task_comb;

struct nk_router {
    char home[4000];
    nk_route_policy policy;
    bool local_only, strict, log_body;
    double default_min_mean_logprob;
    char **deny;
    size_t n_deny;
    char *url, *model, *key_env;
    long timeout_ms;
    bool allow_http;
    double price_in, price_out;
    long max_tokens;              /* sent as the body's max_tokens; 0: none */
    task_cfg *tasks;
    size_t n_tasks;
    task_comb *combs;
    size_t n_combs;
};

static const char *const k_policy_names[] = { "local", "auto", "remote", "ask" };

const char *nk_route_policy_name(nk_route_policy p) {
    return p >= NK_ROUTE_LOCAL && p <= NK_ROUTE_ASK ? k_policy_names[p] : "unset";
}

nk_route_policy nk_route_policy_parse(const char *s) {
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, k_policy_names[i]) == 0) return (nk_route_policy)i;
    return NK_ROUTE_UNSET;
}

void nk_router_free(nk_router *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_deny; i++) nk_free(r->deny[i]);
    nk_free(r->deny);
    nk_free(r->url);
    nk_free(r->model);
    nk_free(r->key_env);
    for (size_t i = 0; i < r->n_tasks; i++) nk_free(r->tasks[i].name);
    nk_free(r->tasks);
    for (size_t i = 0; i < r->n_combs; i++) nk_free(r->combs[i].name);
    nk_free(r->combs);
    nk_free(r);
}

bool nk_router_has_remote(const nk_router *r) { return r->url && *r->url && r->model && *r->model; }
const char *nk_router_home(const nk_router *r) { return r->home; }

static nook_status get_str(json_t *o, const char *k, char **dst, const char *path, nook_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v) return NOOK_OK;
    if (!json_is_string(v)) return nk_fail(err, NOOK_EFORMAT, "%s: route.%s must be a string", path, k);
    nk_free(*dst);
    if (!(*dst = nk_strdup(json_string_value(v)))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    return NOOK_OK;
}

static nook_status get_bool(json_t *o, const char *k, bool *dst, const char *path, nook_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v) return NOOK_OK;
    if (!json_is_boolean(v)) return nk_fail(err, NOOK_EFORMAT, "%s: route.%s must be true or false", path, k);
    *dst = json_is_true(v);
    return NOOK_OK;
}

static nook_status get_num(json_t *o, const char *k, double *dst, const char *path, nook_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v) return NOOK_OK;
    if (!json_is_number(v)) return nk_fail(err, NOOK_EFORMAT, "%s: route.%s must be a number", path, k);
    *dst = json_number_value(v);
    return NOOK_OK;
}

static nook_status get_policy(json_t *o, const char *k, nk_route_policy *dst, const char *path, nook_error *err) {
    json_t *v = json_object_get(o, k);
    if (!v) return NOOK_OK;
    nk_route_policy p = nk_route_policy_parse(json_string_value(v));
    if (p == NK_ROUTE_UNSET)
        return nk_fail(err, NOOK_EFORMAT, "%s: route.%s must be \"local\", \"auto\", \"remote\" or \"ask\"", path, k);
    *dst = p;
    return NOOK_OK;
}

static nook_status parse_config(nk_router *r, json_t *root, const char *path, nook_error *err) {
    json_t *c = json_object_get(root, "route");
    if (!c) return NOOK_OK;
    if (!json_is_object(c)) return nk_fail(err, NOOK_EFORMAT, "%s: \"route\" must be an object", path);
    nook_status st;
    if ((st = get_policy(c, "policy", &r->policy, path, err)) || (st = get_bool(c, "local_only", &r->local_only, path, err)) ||
        (st = get_bool(c, "strict", &r->strict, path, err)) || (st = get_bool(c, "log_body", &r->log_body, path, err)) ||
        (st = get_num(c, "default_min_mean_logprob", &r->default_min_mean_logprob, path, err)))
        return st;
    json_t *deny = json_object_get(c, "deny");
    if (deny) {
        if (!json_is_array(deny)) return nk_fail(err, NOOK_EFORMAT, "%s: route.deny must be an array of strings", path);
        r->deny = nk_calloc(json_array_size(deny) + 1, sizeof *r->deny);
        if (!r->deny) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        size_t i;
        json_t *v;
        json_array_foreach(deny, i, v) {
            if (!json_is_string(v)) return nk_fail(err, NOOK_EFORMAT, "%s: route.deny[%zu] must be a string", path, i);
            if (!(r->deny[r->n_deny++] = nk_strdup(json_string_value(v)))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        }
    }
    json_t *rem = json_object_get(c, "remote");
    if (rem) {
        if (!json_is_object(rem)) return nk_fail(err, NOOK_EFORMAT, "%s: route.remote must be an object", path);
        double tmo = (double)r->timeout_ms / 1000, maxt = (double)r->max_tokens;
        if ((st = get_str(rem, "url", &r->url, path, err)) || (st = get_str(rem, "model", &r->model, path, err)) ||
            (st = get_str(rem, "key_env", &r->key_env, path, err)) || (st = get_num(rem, "timeout_s", &tmo, path, err)) ||
            (st = get_bool(rem, "allow_http", &r->allow_http, path, err)) ||
            (st = get_num(rem, "price_in", &r->price_in, path, err)) || (st = get_num(rem, "price_out", &r->price_out, path, err)) ||
            (st = get_num(rem, "max_tokens", &maxt, path, err)))
            return st;
        if (!(maxt >= 0 && maxt <= 1e7 && maxt == floor(maxt)))
            return nk_fail(err, NOOK_EFORMAT, "%s: route.remote.max_tokens must be a whole number in [0, 10000000]", path);
        r->max_tokens = (long)maxt;
        if (!(tmo > 0 && tmo < 86400)) return nk_fail(err, NOOK_EFORMAT, "%s: route.remote.timeout_s must be in (0, 86400)", path);
        r->timeout_ms = (long)(tmo * 1000);
    }
    json_t *tasks = json_object_get(c, "tasks");
    if (tasks) {
        if (!json_is_object(tasks)) return nk_fail(err, NOOK_EFORMAT, "%s: route.tasks must be an object", path);
        r->tasks = nk_calloc(json_object_size(tasks) + 1, sizeof *r->tasks);
        if (!r->tasks) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        const char *k;
        json_t *v;
        json_object_foreach(tasks, k, v) {
            if (!json_is_object(v)) return nk_fail(err, NOOK_EFORMAT, "%s: route.tasks.%s must be an object", path, k);
            task_cfg *t = &r->tasks[r->n_tasks++];
            t->policy = NK_ROUTE_UNSET;
            if (!(t->name = nk_strdup(k))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
            if ((st = get_policy(v, "policy", &t->policy, path, err)) || (st = get_bool(v, "local_only", &t->local_only, path, err)))
                return st;
        }
    }
    return NOOK_OK;
}

static nook_status parse_calibration(nk_router *r, json_t *root, const char *path, nook_error *err) {
    json_t *tasks = json_object_get(root, "tasks");
    if (!json_is_object(tasks)) return nk_fail(err, NOOK_EFORMAT, "%s: expected {\"tasks\": {...}}", path);
    r->combs = nk_calloc(json_object_size(tasks) + 1, sizeof *r->combs);
    if (!r->combs) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(tasks, k, v) {
        task_comb *t = &r->combs[r->n_combs];
        nook_status st = nk_combiner_from_json(v, &t->comb, err);
        if (st) { nk_prefix(err, "%s: task \"%s\": ", path, k); return st; }
        if (!(t->name = nk_strdup(k))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        r->n_combs++;
    }
    return NOOK_OK;
}

/* A router with the defaults and no configuration. */
static nk_router *router_new(void) {
    nk_router *r = nk_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->policy = NK_ROUTE_LOCAL;
    r->default_min_mean_logprob = NK_DEFAULT_MIN_MEAN_LOGPROB;
    r->timeout_ms = 120000;
    return r;
}

/* Parses the two files' bytes into r (len 0 or NULL text: the file is absent). path and
 * calib_path name them in messages. The one parser of both files, for nk_router_open
 * and the fuzz target. */
static nook_status parse_files(nk_router *r, const char *cfg, size_t cfg_len, const char *path,
                               const char *calib, size_t calib_len, const char *calib_path, nook_error *err) {
    nook_status st = NOOK_OK;
    json_error_t je;
    if (cfg) {
        json_t *j = json_loadb(cfg, cfg_len, JSON_REJECT_DUPLICATES, &je);
        if (!j) return nk_fail(err, NOOK_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        st = parse_config(r, j, path, err);
        json_decref(j);
    }
    if (!st && calib) {
        json_t *j = json_loadb(calib, calib_len, JSON_REJECT_DUPLICATES, &je);
        if (!j) return nk_fail(err, NOOK_EFORMAT, "%s:%d:%d: %s", calib_path, je.line, je.column, je.text);
        st = parse_calibration(r, j, calib_path, err);
        json_decref(j);
    }
    return st;
}

nook_status nk_router_open_buf(const char *config, size_t config_len, const char *calib, size_t calib_len,
                               nk_router **out, nook_error *err) {
    *out = NULL;
    nk_router *r = router_new();
    if (!r) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status st = parse_files(r, config, config_len, "config.json", calib, calib_len, "router.json", err);
    if (st) { nk_router_free(r); return st; }
    *out = r;
    return NOOK_OK;
}

/* Reads a whole file of at most NK_CONFIG_MAX bytes; *buf = NULL when it does not exist. */
#define NK_CONFIG_MAX (16u << 20)
static nook_status read_small_file(const char *path, char **buf, size_t *len, nook_error *err) {
    *buf = NULL;
    *len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return NOOK_OK;
    if (S_ISREG(sb.st_mode) && sb.st_size > (off_t)NK_CONFIG_MAX)
        return nk_fail(err, NOOK_EFORMAT, "%s: larger than %u MiB", path, NK_CONFIG_MAX >> 20);
    return nk_read_file(path, buf, len, err);   /* refuses what is not a regular file */
}

nook_status nk_router_open(const char *home, nk_router **out, nook_error *err) {
    *out = NULL;
    nk_router *r = router_new();
    if (!r) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (home) snprintf(r->home, sizeof r->home, "%s", home);
    else if (!nk_nook_home(r->home, sizeof r->home)) r->home[0] = 0;
    nook_status st = NOOK_OK;
    if (r->home[0]) {
        char path[4096], cpath[4096];
        char *cfg = NULL, *cal = NULL;
        size_t cfg_len = 0, cal_len = 0;
        snprintf(path, sizeof path, "%s/config.json", r->home);
        snprintf(cpath, sizeof cpath, "%s/router.json", r->home);
        if (!(st = read_small_file(path, &cfg, &cfg_len, err)) && !(st = read_small_file(cpath, &cal, &cal_len, err)))
            st = parse_files(r, cfg, cfg_len, path, cal, cal_len, cpath, err);
        nk_free(cfg);
        nk_free(cal);
    }
    const char *e;
    if (!st && (e = getenv("NOOK_ESCALATE_URL")) && *e) { nk_free(r->url); r->url = nk_strdup(e); }
    if (!st && (e = getenv("NOOK_ESCALATE_MODEL")) && *e) { nk_free(r->model); r->model = nk_strdup(e); }
    if (!st && (e = getenv("NOOK_ESCALATE_KEY_ENV")) && *e) { nk_free(r->key_env); r->key_env = nk_strdup(e); }
    if (!st && (e = getenv("NOOK_ROUTE")) && *e) {
        r->policy = nk_route_policy_parse(e);
        if (r->policy == NK_ROUTE_UNSET)
            st = nk_fail(err, NOOK_EINVAL, "NOOK_ROUTE=%s: expected local, auto, remote or ask", e);
    }
    if (st) { nk_router_free(r); return st; }
    *out = r;
    return NOOK_OK;
}

const nk_combiner *nk_router_combiner(const nk_router *rt, const char *task) {
    const char *want = task ? task : "";
    for (size_t i = 0; i < rt->n_combs; i++)
        if (strcmp(rt->combs[i].name, want) == 0) return &rt->combs[i].comb;
    if (task) return nk_router_combiner(rt, NULL);
    return NULL;
}

nook_status nk_route_req_from_json(json_t *route, nk_route_req *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    out->policy = out->model_policy = NK_ROUTE_UNSET;
    if (!route || json_is_null(route)) return NOOK_OK;
    if (!json_is_object(route)) return nk_fail(err, NOOK_EINVAL, "\"route\" must be an object");
    json_t *p = json_object_get(route, "policy"), *t = json_object_get(route, "task"), *l = json_object_get(route, "local_only");
    if (p) {
        out->policy = nk_route_policy_parse(json_string_value(p));
        if (out->policy == NK_ROUTE_UNSET)
            return nk_fail(err, NOOK_EINVAL, "route.policy must be \"local\", \"auto\", \"remote\" or \"ask\"");
    }
    if (t && !json_is_string(t)) return nk_fail(err, NOOK_EINVAL, "route.task must be a string");
    out->task = t ? json_string_value(t) : NULL;
    if (l && !json_is_boolean(l)) return nk_fail(err, NOOK_EINVAL, "route.local_only must be true or false");
    out->local_only = json_is_true(l);
    json_t *lab = json_object_get(route, "labels");
    if (lab && !json_is_null(lab)) {
        size_t n = json_array_size(lab), i;
        json_t *v;
        if (!json_is_array(lab) || n < 2 || n > NK_MAX_LABELS)
            return nk_fail(err, NOOK_EINVAL, "route.labels must be an array of 2 to %d strings", NK_MAX_LABELS);
        json_array_foreach(lab, i, v)
            if (!json_is_string(v) || !*json_string_value(v))
                return nk_fail(err, NOOK_EINVAL, "route.labels[%zu] must be a non-empty string", i);
        out->labels = lab;
    }
    return NOOK_OK;
}

int nk_route_field_parse(const json_t *body, int kind, void **slot, char *msg, size_t cap) {
    (void)kind;
    *slot = NULL;
    json_t *route = json_object_get(body, "route");
    if (!route || json_is_null(route)) return 0;
    nk_route_req *q = nk_malloc(sizeof *q);
    if (!q) { snprintf(msg, cap, "out of memory"); return 500; }
    nook_error err;
    if (nk_route_req_from_json(route, q, &err) != NOOK_OK) {
        nk_free(q);
        snprintf(msg, cap, "%s", err.msg);
        return 400;
    }
    *slot = q;
    return 0;
}

void nk_route_field_free(void *slot) { nk_free(slot); }

/* A message pins the request local: "local_only": true, or the marker in its text. */
static bool content_pinned(json_t *messages) {
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (json_is_true(json_object_get(m, "local_only"))) return true;
        const char *c = json_string_value(json_object_get(m, "content"));
        if (c && strstr(c, NK_LOCAL_MARKER)) return true;
    }
    return false;
}

static const task_cfg *find_task(const nk_router *rt, const char *name) {
    for (size_t i = 0; name && i < rt->n_tasks; i++)
        if (strcmp(rt->tasks[i].name, name) == 0) return &rt->tasks[i];
    return NULL;
}

static void pin(nk_route *r, const char *why) {
    r->policy = NK_ROUTE_LOCAL;
    r->target = NK_TARGET_LOCAL;
    r->pinned = true;
    snprintf(r->reason, sizeof r->reason, "pinned local (%s)", why);
}

/* Whether the remote may be contacted now: configured, and not refused by offline mode. */
static bool remote_usable(const nk_router *rt, char *why, size_t cap) {
    if (!nk_router_has_remote(rt)) {
        snprintf(why, cap, "no remote configured");
        return false;
    }
    nook_error e;
    if (nk_net_check_url(rt->url, rt->allow_http, NULL, &e) != NOOK_OK) {
        snprintf(why, cap, "remote not usable: %.180s", e.msg);
        return false;
    }
    return true;
}

nook_status nk_route_plan(const nk_router *rt, const nk_route_req *req, json_t *messages,
                          nk_route *r, nook_error *err) {
    memset(r, 0, sizeof *r);
    r->p_ok = NAN;
    r->threshold = NAN;
    r->cost = NAN;
    if (req && req->request_id) snprintf(r->request_id, sizeof r->request_id, "%.47s", req->request_id);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(r->request_id, sizeof r->request_id, "req-%lld-%d-%09ld", (long long)ts.tv_sec, (int)getpid(), ts.tv_nsec);
    }
    const task_cfg *task = find_task(rt, req ? req->task : NULL);
    nk_route_policy p = NK_ROUTE_UNSET;
    const char *from = "default";
    if (req && req->policy != NK_ROUTE_UNSET) { p = req->policy; from = "request"; }
    else if (req && req->model_policy != NK_ROUTE_UNSET) { p = req->model_policy; from = "model"; }
    else if (task && task->policy != NK_ROUTE_UNSET) { p = task->policy; from = "task"; }
    else { p = rt->policy; from = rt->policy == NK_ROUTE_LOCAL ? "default" : "global"; }
    r->policy = p;
    r->target = NK_TARGET_LOCAL;
    snprintf(r->reason, sizeof r->reason, "policy %s (%s)", nk_route_policy_name(p), from);
    if (p == NK_ROUTE_LOCAL) return NOOK_OK;
    if (rt->local_only) { pin(r, "global local_only"); return NOOK_OK; }
    if (task && task->local_only) { pin(r, "task local_only"); return NOOK_OK; }
    if (req && req->local_only) { pin(r, "request local_only"); return NOOK_OK; }
    if (messages && content_pinned(messages)) { pin(r, "a message is marked local"); return NOOK_OK; }
    char why[200];
    if (!remote_usable(rt, why, sizeof why)) {
        if (p == NK_ROUTE_REMOTE)
            return nk_fail(err, NOOK_EINVAL, "route policy remote: %s (set NOOK_ESCALATE_URL and "
                           "NOOK_ESCALATE_MODEL, or route.remote in $NOOK_HOME/config.json); nothing was sent", why);
        r->policy = NK_ROUTE_LOCAL;
        snprintf(r->reason, sizeof r->reason, "policy %s, answered locally: %.160s", nk_route_policy_name(p), why);
        return NOOK_OK;
    }
    const nk_combiner *c = nk_router_combiner(rt, req ? req->task : NULL);
    if (c) { r->calibrated = true; r->comb = *c; r->threshold = c->threshold; }
    else r->threshold = rt->default_min_mean_logprob;
    if (p == NK_ROUTE_REMOTE) r->target = NK_TARGET_REMOTE;
    return NOOK_OK;
}

bool nk_route_decide(const nk_router *rt, nk_route *r, const nk_signals *s) {
    (void)rt;
    r->have_signals = true;
    r->signals = *s;
    bool esc;
    if (r->calibrated) {
        double x[NK_N_FEATURES];
        nk_features(s, x);
        r->p_ok = nk_combiner_prob(&r->comb, x);
        /* a feature the combiner needs is missing (an empty answer): not confident */
        esc = !(r->p_ok >= r->threshold);
        snprintf(r->reason, sizeof r->reason, "%s: P(acceptable) %.3f %s threshold %.3f",
                 esc ? "low confidence" : "confident", r->p_ok, esc ? "<" : ">=", r->threshold);
    } else {
        esc = !(s->mean_logprob >= r->threshold);
        snprintf(r->reason, sizeof r->reason, "%s: mean token log-probability %.3f %s %.3f (uncalibrated default)",
                 esc ? "low confidence" : "confident", s->mean_logprob, esc ? "<" : ">=", r->threshold);
    }
    r->target = esc ? (r->policy == NK_ROUTE_ASK ? NK_TARGET_SUGGEST : NK_TARGET_REMOTE) : NK_TARGET_LOCAL;
    return esc;
}

/* The redacted chat body: {"model", "messages": [{"role","content"}...], "stream": false}. */
static nook_status build_body(const nk_router *rt, nk_route *r, nk_redactor *red, json_t *messages,
                              size_t *hits, char **body, nook_error *err) {
    *hits = 0;
    size_t i;
    json_t *m;
    nook_status st = NOOK_OK;
    json_array_foreach(messages, i, m) {
        const char *c = json_string_value(json_object_get(m, "content"));
        if (c && (st = nk_redact_reserve(red, c, strlen(c), err))) return st;
    }
    json_t *arr = json_array(), *o = NULL;
    if (!arr) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *c = json_string_value(json_object_get(m, "content"));
        if (!role || !c) { st = nk_fail(err, NOOK_EINVAL, "message %zu: role and text content are needed to escalate", i); break; }
        char *rc = NULL;
        size_t rl = 0, n = 0;
        if ((st = nk_redact(red, c, strlen(c), &rc, &rl, &n, err))) break;
        *hits += n;
        json_array_append_new(arr, json_pack("{s:s,s:s%}", "role", role, "content", rc, rl));
        nk_free(rc);
    }
    if (st) { json_decref(arr); return st; }
    for (int t = 0; t < NK_RED_NTYPES; t++) r->redactions[t] = nk_redactor_count(red, (nk_redact_type)t);
    o = json_pack("{s:s,s:o,s:b}", "model", rt->model, "messages", arr, "stream", 0);
    if (o && rt->max_tokens > 0) json_object_set_new(o, "max_tokens", json_integer(rt->max_tokens));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    *body = nk_strdup(s);
    free(s);
    return *body ? NOOK_OK : nk_fail(err, NOOK_ENOMEM, "out of memory");
}

static json_t *redactions_json(const size_t *counts) {
    json_t *o = json_object();
    for (int t = 0; o && t < NK_RED_NTYPES; t++)
        if (counts[t]) json_object_set_new(o, nk_redact_type_name((nk_redact_type)t), json_integer((json_int_t)counts[t]));
    return o;
}

nook_status nk_route_escalate(const nk_router *rt, nk_route *r, json_t *messages, char **answer,
                              nook_error *err) {
    *answer = NULL;
    nk_redactor *red = NULL;
    nook_status st = nk_redactor_new((const char *const *)rt->deny, rt->n_deny, &red, err);
    if (st) return st;
    char *body = NULL;
    size_t hits = 0;
    if ((st = build_body(rt, r, red, messages, &hits, &body, err))) goto out;
    if (rt->strict && hits > 0) {
        r->target = NK_TARGET_LOCAL;
        r->pinned = true;
        snprintf(r->reason, sizeof r->reason, "pinned local (strict mode: %zu redaction hit%s; nothing sent)",
                 hits, hits == 1 ? "" : "s");
        goto out;
    }
    if (r->target == NK_TARGET_SUGGEST || r->policy == NK_ROUTE_ASK) {
        r->target = NK_TARGET_SUGGEST;
        r->suggestion = body;
        body = NULL;
        goto out;
    }
    json_t *sig = r->have_signals ? nk_signals_json(&r->signals) : NULL;
    json_t *rj = redactions_json(r->redactions);
    nk_escalate_req er = {
        .base_url = rt->url, .key_env = rt->key_env, .timeout_ms = rt->timeout_ms, .allow_http = rt->allow_http,
        .price_in = rt->price_in, .price_out = rt->price_out, .ledger_dir = rt->home[0] ? rt->home : NULL,
        .info = { .request_id = r->request_id, .model = rt->model, .policy = nk_route_policy_name(r->policy),
                  .reason = r->reason, .signals = sig, .threshold = r->threshold, .redactions = rj,
                  .tokens = -1, .body = body, .body_len = strlen(body), .log_body = rt->log_body },
    };
    nk_escalate_resp resp;
    st = nk_escalate_post(&er, &resp, err);
    json_decref(sig);
    json_decref(rj);
    if (st) goto out;
    snprintf(r->audit_id, sizeof r->audit_id, "%s", resp.audit_id);
    r->target = NK_TARGET_REMOTE;
    r->cost = resp.cost;
    if (resp.status < 200 || resp.status >= 300) {
        st = nk_fail(err, NOOK_EIO, "the remote answered HTTP %ld (audit id %s): %.200s", resp.status, resp.audit_id,
                     resp.body ? resp.body : "");
    } else {
        json_t *o = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
        const char *text = json_string_value(json_object_get(msg, "content"));
        if (!text) st = nk_fail(err, NOOK_EFORMAT, "the remote's answer has no choices[0].message.content (audit id %s)", resp.audit_id);
        else st = nk_unredact(red, text, strlen(text), answer, NULL, err);
        json_decref(o);
    }
    nk_escalate_resp_free(&resp);
out:
    nk_free(body);
    nk_redactor_free(red);
    return st;
}

static void set_num(json_t *o, const char *k, double v) {
    if (isfinite(v)) json_object_set_new(o, k, json_real(v));
}

json_t *nk_route_json(const nk_route *r) {
    static const char *const targets[] = { "local", "remote", "suggest" };
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "target", json_string(targets[r->target]));
    json_object_set_new(o, "policy", json_string(nk_route_policy_name(r->policy)));
    json_object_set_new(o, "reason", json_string(r->reason));
    if (r->have_signals) json_object_set_new(o, "signals", nk_signals_json(&r->signals));
    set_num(o, "threshold", r->threshold);
    set_num(o, "p_ok", r->p_ok);
    if (r->have_signals || isfinite(r->threshold)) json_object_set_new(o, "calibrated", json_boolean(r->calibrated));
    json_object_set_new(o, "audit_id", r->audit_id[0] ? json_string(r->audit_id) : json_null());
    /* the ledger's request id, when something was sent (a local reply stays repeatable) */
    if (r->audit_id[0]) json_object_set_new(o, "request_id", json_string(r->request_id));
    size_t any = 0;
    for (int t = 0; t < NK_RED_NTYPES; t++) any += r->redactions[t];
    if (any) json_object_set_new(o, "redactions", redactions_json(r->redactions));
    if (r->suggestion) {
        json_t *s = json_loads(r->suggestion, 0, NULL);
        json_object_set_new(o, "suggestion", s ? s : json_string(r->suggestion));
    }
    return o;
}

void nk_route_clear(nk_route *r) {
    nk_free(r->suggestion);
    r->suggestion = NULL;
}

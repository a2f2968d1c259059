/*
 * escalate.c: a specialist's unsure case handed to the router (docs/specialist.md
 * "Abstaining and escalating"). When a specialist abstains and the routing policy is
 * not local, the text goes to the router's general model, prompted with the label set
 * (system: the labels and "answer with the label only"; user: the text), through
 * nk_route_escalate: so redaction, the deny-list, strict mode, ask, pins and the egress
 * ledger apply exactly as for any escalated request. The answer is mapped back to a
 * label: an exact (case-insensitive, trimmed) match, else the one label that occurs in
 * it as a whole word; anything else is reported as not a label. A local general model
 * can take the case instead (nk_spec_escalate_local: zeroshot.c's label-token
 * log-probabilities), when the caller has one and the router kept the case here.
 */
#include "specialist/specialist.h"
#include "router/router.h"
#include "store/store.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool word_char(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

/* Whether label occurs in s as a whole word (ASCII case-insensitive). */
static bool has_word(const char *s, const char *label) {
    size_t n = strlen(label);
    if (!n) return false;
    for (const char *p = s; *p; p++) {
        if (strncasecmp(p, label, n) != 0) continue;
        bool left = p == s || !word_char((unsigned char)p[-1]) || !word_char((unsigned char)label[0]);
        bool right = !word_char((unsigned char)p[n]) || !word_char((unsigned char)label[n - 1]);
        if (left && right) return true;
    }
    return false;
}

int nk_spec_match_label(const nk_spec *s, const char *answer) {
    if (!answer) return -1;
    const char *a = answer;
    while (*a && isspace((unsigned char)*a)) a++;
    size_t n = strlen(a);
    while (n && (isspace((unsigned char)a[n - 1]) || a[n - 1] == '.')) n--;
    for (int c = 0; c < s->k; c++)
        if (strlen(s->labels[c]) == n && strncasecmp(a, s->labels[c], n) == 0) return c;
    int found = -1;
    for (int c = 0; c < s->k; c++) {
        if (!has_word(answer, s->labels[c])) continue;
        if (found >= 0) return -1;   /* two labels named: not an answer */
        found = c;
    }
    return found;
}

/* The prompt: the label set in the system message, the text as the user's. */
static json_t *prompt_messages(const nk_spec *s, const char *text) {
    size_t cap = 256;
    for (int c = 0; c < s->k; c++) cap += strlen(s->labels[c]) + 4;
    char *sys = nk_malloc(cap);
    if (!sys) return NULL;
    size_t o = (size_t)snprintf(sys, cap, "Classify the user's text. Answer with exactly one of these labels and nothing else: ");
    for (int c = 0; c < s->k; c++) o += (size_t)snprintf(sys + o, cap - o, "%s%s", s->labels[c], c + 1 < s->k ? ", " : ".");
    json_t *m = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content", sys, "role", "user", "content", text);
    nk_free(sys);
    return m;
}

nook_status nk_spec_escalate(const nk_spec *s, const nk_router *rt, const nk_route_req *req, const char *text,
                             const nk_class_result *res, nk_spec_escalation *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    out->label = -1;
    json_t *msgs = prompt_messages(s, text);
    json_t *labels = json_array();
    for (int c = 0; labels && c < s->k; c++) json_array_append_new(labels, json_string(s->labels[c]));
    if (!msgs || !labels) {
        json_decref(msgs);
        json_decref(labels);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    nk_route_req rq = req ? *req : (nk_route_req){ .policy = NK_ROUTE_UNSET, .model_policy = NK_ROUTE_UNSET };
    if (!rq.labels && s->k <= NK_MAX_LABELS) rq.labels = labels;
    nook_status st = nk_route_plan(rt, &rq, msgs, &out->route, err);
    if (st) goto done;
    /* a policy other than local was asked for, even if a pin or a missing remote keeps it here */
    out->asked = !(out->route.policy == NK_ROUTE_LOCAL && strncmp(out->route.reason, "policy local", 12) == 0);
    if (out->route.policy == NK_ROUTE_LOCAL || out->route.pinned) goto done;   /* stays here: the abstaining answer stands */
    snprintf(out->route.reason, sizeof out->route.reason,
             "specialist abstained: confidence %.3f below its threshold %.2f (policy %s)", res->confidence, s->threshold,
             nk_route_policy_name(out->route.policy));
    char *answer = NULL;
    if ((st = nk_route_escalate(rt, &out->route, msgs, &answer, err))) goto done;
    out->escalated = out->route.target == NK_TARGET_REMOTE;
    out->answer = answer;
    out->label = nk_spec_match_label(s, answer);
done:
    json_decref(msgs);
    json_decref(labels);
    return st;
}

nook_status nk_spec_escalate_local(const nk_spec *s, nk_zeroshot *z, const char *general, const char *text,
                                   nk_spec_escalation *out, nook_error *err) {
    double *lp = nk_alloc_array((size_t)s->k, sizeof *lp);
    if (!lp) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    int best = -1;
    nook_status st = nk_zeroshot_classify(z, text, strlen(text), lp, &best, err);
    nk_free(lp);
    if (st) return st;
    out->asked = true;
    out->escalated = true;
    out->local = true;
    out->label = best;
    snprintf(out->route.reason, sizeof out->route.reason,
             "specialist abstained; asked the local general model %.120s (nothing left the machine)", general);
    return NOOK_OK;
}

nook_status nk_spec_general_path(const char *ref, char *path, size_t cap, nook_error *err) {
    struct stat sb;
    if (stat(ref, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if ((size_t)snprintf(path, cap, "%s", ref) >= cap) return nk_fail(err, NOOK_EINVAL, "path too long: %.100s", ref);
        return NOOK_OK;
    }
    nk_store *st = NULL;
    nook_status rc = nk_store_open(NULL, &st, err);
    if (rc) return rc;
    nk_model_ref mr;
    rc = nk_model_resolve(st, ref, &mr, err);
    nk_store_free(st);
    if (rc) {
        nk_prefix(err, "the local general model: ");
        return rc;
    }
    if ((size_t)snprintf(path, cap, "%s", mr.path) >= cap) rc = nk_fail(err, NOOK_EINVAL, "path too long: %.100s", mr.path);
    nk_model_ref_free(&mr);
    return rc;
}

bool nk_spec_wants_local(const nk_spec_escalation *e, const char *general) {
    return !e->escalated && general && *general && e->route.target != NK_TARGET_SUGGEST;
}

nook_status nk_spec_escalate_with(const nk_spec *s, const nk_router *rt, const nk_route_req *req, const char *text,
                                  const nk_class_result *res, const char *general, nk_zeroshot **zs,
                                  nk_spec_escalation *out, nook_error *err) {
    nook_status st = nk_spec_escalate(s, rt, req, text, res, out, err);
    if (st || !nk_spec_wants_local(out, general)) return st;
    if (!*zs && (st = nk_zeroshot_open(general, s->labels, s->k, zs, err))) {
        nk_prefix(err, "the local general model %.200s: ", general);
        return st;
    }
    return nk_spec_escalate_local(s, *zs, general, text, out, err);
}

void nk_spec_escalation_clear(nk_spec_escalation *e) {
    nk_free(e->answer);
    e->answer = NULL;
    nk_route_clear(&e->route);
}

void *nk_spec_escalation_json(const nk_spec *s, const nk_spec_escalation *e) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "escalated", json_boolean(e->escalated));
    if (e->escalated) {
        json_object_set_new(o, "general", json_string(e->local ? "local" : "remote"));
        json_object_set_new(o, "label", e->label >= 0 ? json_string(s->labels[e->label]) : json_null());
        json_object_set_new(o, "answer", e->answer ? json_string(e->answer) : json_null());
    }
    json_object_set_new(o, "route", nk_route_json(&e->route));
    return o;
}

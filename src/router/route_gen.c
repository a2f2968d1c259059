/*
 * route_gen.c: one routed request on a session (nk_route_generate, router.h): plan,
 * local generation with signals held back until the decision, escalation.
 */
#include "router/router.h"

#include <math.h>
#include <string.h>

json_t *nk_route_messages(const nook_prompt *pr, nook_error *err) {
    if (pr->n_messages > 0) {
        json_t *a = json_array();
        for (int i = 0; a && i < pr->n_messages; i++)
            json_array_append_new(a, json_pack("{s:s,s:s}", "role", pr->messages[i].role ? pr->messages[i].role : "user",
                                               "content", pr->messages[i].content ? pr->messages[i].content : ""));
        return a;
    }
    if (pr->messages_json) {
        json_error_t je;
        json_t *a = json_loads(pr->messages_json, 0, &je);
        if (!json_is_array(a)) {
            json_decref(a);
            nk_fail(err, NOOK_EINVAL, "messages: not a JSON array (%s)", je.text);
            return NULL;
        }
        return a;
    }
    json_t *a = json_array();
    if (a && pr->system && *pr->system) json_array_append_new(a, json_pack("{s:s,s:s}", "role", "system", "content", pr->system));
    if (a) json_array_append_new(a, json_pack("{s:s,s:s}", "role", "user", "content", pr->text ? pr->text : ""));
    if (!a) nk_fail(err, NOOK_ENOMEM, "out of memory");
    return a;
}

typedef struct held {
    nk_sig_acc acc;
    char *text;
    size_t len, cap;
    bool oom, early;
    double win_sum;
    nook_done_reason reason;
    nook_status status;
    char error[256];
} held;

static void held_put(held *h, const char *p, size_t n) {
    if (h->oom || n == 0) return;
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        while (cap < h->len + n + 1) cap *= 2;
        char *q = nk_realloc(h->text, cap);
        if (!q) { h->oom = true; return; }
        h->text = q;
        h->cap = cap;
    }
    memcpy(h->text + h->len, p, n);
    h->len += n;
    h->text[h->len] = 0;
}

static bool held_event(const nook_event *ev, void *ud) {
    held *h = ud;
    if (ev->kind == NOOK_EVENT_TOKEN) {
        double t1 = ev->n_top > 0 ? ev->top[0].logprob : -INFINITY, t2 = ev->n_top > 1 ? ev->top[1].logprob : -INFINITY;
        if (nk_sig_acc_push(&h->acc, nk_tok_sig_from_event(ev->logprob, ev->entropy, t1, t2), NULL)) h->oom = true;
        /* the entropy of the last NK_EARLY_WINDOW tokens */
        int n = h->acc.n;
        h->win_sum += isfinite(ev->entropy) ? ev->entropy : 0;
        if (n > NK_EARLY_WINDOW) {
            double old = h->acc.v[n - 1 - NK_EARLY_WINDOW].entropy;
            h->win_sum -= isfinite(old) ? old : 0;
        }
        if (n >= NK_EARLY_WINDOW && h->win_sum / NK_EARLY_WINDOW > NK_EARLY_MAX_ENTROPY) h->early = true;
    }
    if (ev->kind != NOOK_EVENT_SHIFT) held_put(h, ev->content, ev->content_len);
    if (ev->kind == NOOK_EVENT_DONE) {
        h->reason = ev->done_reason;
        h->status = ev->status;
        if (ev->error) snprintf(h->error, sizeof h->error, "%s", ev->error);
    }
    return !h->oom && !h->early;
}

nook_status nk_route_generate(const nk_router *rt, nook_session *s, const nook_prompt *pr,
                              const nook_gen_params *gp, const nk_route_req *req,
                              nook_event_fn on_event, void *ud, nk_route *route, char **answer,
                              nook_error *err) {
    *answer = NULL;
    memset(route, 0, sizeof *route);
    json_t *msgs = nk_route_messages(pr, err);
    if (!msgs) return err ? err->code : NOOK_EINVAL;
    nook_status st = nk_route_plan(rt, req, msgs, route, err);
    if (st) { json_decref(msgs); return st; }
    if (route->policy == NK_ROUTE_LOCAL) {
        json_decref(msgs);
        return nook_generate(s, pr, gp, on_event, ud, err);
    }
    if (route->policy == NK_ROUTE_REMOTE) {
        st = nk_route_escalate(rt, route, msgs, answer, err);
        json_decref(msgs);
        return st;
    }
    /* auto / ask: generate locally with signals, held back */
    nook_gen_params p = *gp;
    p.logprobs = true;
    if (p.top_logprobs < 2) p.top_logprobs = 2;
    held h = { 0 };
    nk_sig_acc_init(&h.acc);
    if ((st = nk_sig_acc_reserve(&h.acc, 256, err))) { json_decref(msgs); return st; }
    st = nook_generate(s, pr, &p, held_event, &h, err);
    if (h.oom) st = nk_fail(err, NOOK_ENOMEM, "out of memory");
    else if (st == NOOK_OK || h.early) {
        st = NOOK_OK;
        if (h.reason == NOOK_DONE_ERROR) st = nk_fail(err, h.status ? h.status : NOOK_EINTERNAL, "%s", h.error);
    }
    if (!st) {
        nk_signals sig;
        nk_signals_summarize(&h.acc, &sig);
        bool esc = nk_route_decide(rt, route, &sig);
        if (h.early) {
            size_t n = strlen(route->reason);
            snprintf(route->reason + n, sizeof route->reason - n, "; stopped early at token %d (windowed entropy above %.1f)",
                     h.acc.n, NK_EARLY_MAX_ENTROPY);
            if (!esc) { esc = true; route->target = route->policy == NK_ROUTE_ASK ? NK_TARGET_SUGGEST : NK_TARGET_REMOTE; }
        }
        if (esc) {
            st = nk_route_escalate(rt, route, msgs, answer, err);
            if (!st && !*answer) {   /* ask, or pinned by strict mode: the local answer */
                *answer = h.text ? h.text : nk_strdup("");
                h.text = NULL;
            }
        } else {
            *answer = h.text ? h.text : nk_strdup("");
            h.text = NULL;
        }
    }
    nk_free(h.text);
    nk_sig_acc_free(&h.acc);
    json_decref(msgs);
    return st;
}

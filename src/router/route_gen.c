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

void nk_route_hold_init(nk_route_hold *h) {
    memset(h, 0, sizeof *h);
    nk_sig_acc_init(&h->acc);
    /* most answers fit: the token loop then does not allocate */
    if (nk_sig_acc_reserve(&h->acc, 256, NULL)) h->oom = true;
}

void nk_route_hold_free(nk_route_hold *h) {
    nk_free(h->text);
    h->text = NULL;
    nk_sig_acc_free(&h->acc);
}

void nk_route_hold_params(nook_gen_params *p) {
    p->logprobs = true;
    if (p->top_logprobs < 2) p->top_logprobs = 2;
}

/* The constraint hook that only reads: the label mass at the first answer token. */
static nook_status label_peek(void *ud, float *logits, int n_vocab, nook_error *err) {
    (void)err;
    nk_route_hold *h = ud;
    if (!h->label_done) {
        h->label_done = true;
        h->acc.label_mass = nk_label_mass(logits, n_vocab, h->label_tok, h->n_labels);
    }
    return NOOK_OK;
}

nook_status nk_route_hold_labels(nk_route_hold *h, const nook_model *m, json_t *labels, nook_gen_params *gp,
                                 nook_error *err) {
    if (!labels || gp->grammar || gp->format || gp->constraint.mask || gp->constraint.accept) return NOOK_OK;
    size_t n_lab = json_array_size(labels);
    if (n_lab > NK_MAX_LABELS) n_lab = NK_MAX_LABELS;
    char piece[8];
    /* the first token of the label's tokenization, past a lone space the tokenizer puts
     * in front (SentencePiece's space prefix) */
    for (size_t i = 0; i < n_lab; i++) {
        const char *lab = json_string_value(json_array_get(labels, i));
        nook_token tok[16];
        size_t n = 0;
        nook_status st = nook_tokenize(m, lab ? lab : "", lab ? strlen(lab) : 0, false, false, tok, NK_ARRAY_LEN(tok), &n, err);
        if (st && st != NOOK_ERANGE) return st;   /* ERANGE: more than 16 tokens; the first ones are there */
        if (n == 0) return nk_fail(err, NOOK_EINVAL, "route.labels[%zu] gives no token", i);
        size_t k = 0;   /* tok[0..min(n, 16)) are written */
        if (n > 1 && nook_token_to_piece(m, tok[0], false, piece, sizeof piece) == 1 && piece[0] == ' ') k = 1;
        h->label_tok[i] = tok[k];
    }
    for (size_t i = 0; i < n_lab; i++)
        for (size_t k = 0; k < i; k++)
            if (h->label_tok[k] == h->label_tok[i])
                return nk_fail(err, NOOK_EINVAL, "route.labels[%zu] and [%zu] start with the same token: the label mass "
                               "cannot tell them apart", k, i);
    h->n_labels = (int)n_lab;
    gp->constraint.mask = label_peek;
    gp->constraint.accept = NULL;
    gp->constraint.ud = h;
    return NOOK_OK;
}

static void hold_put(nk_route_hold *h, const char *p, size_t n) {
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

bool nk_route_hold_event(nk_route_hold *h, const nook_event *ev) {
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
    if (ev->kind != NOOK_EVENT_SHIFT) hold_put(h, ev->content, ev->content_len);
    if (ev->kind == NOOK_EVENT_DONE) {
        h->reason = ev->done_reason;
        h->status = ev->status;
        if (ev->error) snprintf(h->error, sizeof h->error, "%s", ev->error);
    }
    return !h->oom && !h->early;
}

nook_status nk_route_hold_finish(const nk_router *rt, nk_route *r, nk_route_hold *h, nook_status gen_status,
                                 json_t *messages, char **answer, nook_error *err) {
    *answer = NULL;
    nook_status st = gen_status;
    if (h->oom) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (st == NOOK_OK || h->early) {
        st = NOOK_OK;
        if (h->reason == NOOK_DONE_ERROR) return nk_fail(err, h->status ? h->status : NOOK_EINTERNAL, "%s", h->error);
    }
    if (st) return st;
    nk_signals sig;
    nk_signals_summarize(&h->acc, &sig);
    bool esc = nk_route_decide(rt, r, &sig);
    if (h->early) {
        size_t n = strlen(r->reason);
        snprintf(r->reason + n, sizeof r->reason - n, "; stopped early at token %d (windowed entropy above %.1f)",
                 h->acc.n, NK_EARLY_MAX_ENTROPY);
        if (!esc) { esc = true; r->target = r->policy == NK_ROUTE_ASK ? NK_TARGET_SUGGEST : NK_TARGET_REMOTE; }
    }
    return esc ? nk_route_escalate(rt, r, messages, answer, err) : NOOK_OK;
}

static bool hold_cb(const nook_event *ev, void *ud) { return nk_route_hold_event(ud, ev); }

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
        /* strict mode pinned it local (a detector fired, nothing sent): answer here */
        if (!st && !*answer && route->target == NK_TARGET_LOCAL) return nook_generate(s, pr, gp, on_event, ud, err);
        return st;
    }
    /* auto / ask: generate locally with signals, held back */
    nook_gen_params p = *gp;
    nk_route_hold_params(&p);
    nk_route_hold h;
    nk_route_hold_init(&h);
    if (req && (st = nk_route_hold_labels(&h, nook_session_model(s), req->labels, &p, err))) {
        nk_route_hold_free(&h);
        json_decref(msgs);
        return st;
    }
    st = nook_generate(s, pr, &p, hold_cb, &h, err);
    st = nk_route_hold_finish(rt, route, &h, st, msgs, answer, err);
    if (!st && !*answer) {   /* kept, ask, or pinned by strict mode: the local answer */
        *answer = h.text ? h.text : nk_strdup("");
        h.text = NULL;
        if (!*answer) st = nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    nk_route_hold_free(&h);
    json_decref(msgs);
    return st;
}

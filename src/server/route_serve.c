/*
 * route_serve.c: the router in the server's generation endpoints (contract in
 * route_serve.h). Nothing here decides anything: the policy, pins, decision, redaction
 * and the ledgered send are the router library's.
 */
#include "server/route_serve.h"
#include "router/router.h"
#include "store/store.h"

#include <string.h>
#include <sys/stat.h>

struct srv_routing {
    nk_router *rt;
    nk_route route;
    nk_route_hold hold;
    bool holding;
    json_t *messages;     /* OpenAI-shaped, what an escalation sends (redacted) */
    json_t *labels;       /* the request's route.labels (borrowed from its body), or NULL */
    srv_route_mode mode;
};

void srv_route_free(srv_routing *r) {
    if (!r) return;
    if (r->holding) nk_route_hold_free(&r->hold);
    nk_route_clear(&r->route);
    json_decref(r->messages);
    nk_router_free(r->rt);
    nk_free(r);
}

srv_route_mode srv_route_get_mode(const srv_routing *r) { return r->mode; }

/* The model's own policy (Modelfile PARAMETER route), for a store name; a GGUF path has
 * none. *exists tells whether the name names a model at all. */
static nk_route_policy model_policy(const char *name, bool *exists) {
    struct stat st;
    *exists = false;
    if (!name) return NK_ROUTE_UNSET;
    if (stat(name, &st) == 0 && S_ISREG(st.st_mode)) { *exists = true; return NK_ROUTE_UNSET; }
    nk_store *store = NULL;
    nook_error err = { 0 };
    if (nk_store_open(NULL, &store, &err) != NOOK_OK) return NK_ROUTE_UNSET;
    nk_model_ref ref;
    memset(&ref, 0, sizeof ref);
    nk_route_policy p = NK_ROUTE_UNSET;
    if (nk_model_resolve(store, name, &ref, &err) == NOOK_OK) {
        *exists = true;
        if (ref.params) p = nk_route_policy_parse(json_string_value(json_object_get(ref.params, "route")));
    }
    nk_model_ref_free(&ref);
    nk_store_free(store);
    return p;
}

/* The request's conversation as the router sees it: chat messages (role, content; a
 * message's "local_only": true carried over for the content pin), or the prompt (and
 * system) as one user message. */
static json_t *request_messages(const srv_gen_request *q) {
    json_t *a = json_array();
    if (!a) return NULL;
    if (q->kind == SRV_CHAT || q->kind == SRV_OAI_CHAT) {
        /* the body's messages are the last ones: a Modelfile's SYSTEM and MESSAGE turns
         * may have been put in front (model_defaults.c) */
        const json_t *body_msgs = json_object_get(q->body, "messages");
        long off = (long)q->n_messages - (long)json_array_size(body_msgs);
        bool any_pin = false;
        size_t bi;
        json_t *bm;
        json_array_foreach(body_msgs, bi, bm) any_pin = any_pin || json_is_true(json_object_get(bm, "local_only"));
        for (int i = 0; i < q->n_messages; i++) {
            json_t *m = json_pack("{s:s,s:s}", "role", q->messages[i].role, "content",
                                  q->messages[i].content ? q->messages[i].content : "");
            if (!m || json_array_append_new(a, m)) { json_decref(a); return NULL; }
            bool pin = off >= 0 ? i >= off && json_is_true(json_object_get(json_array_get(body_msgs, (size_t)(i - off)), "local_only"))
                                : any_pin;   /* cannot happen; a flag is never lost */
            if (pin) json_object_set_new(m, "local_only", json_true());
        }
        return a;
    }
    if (q->system && *q->system) json_array_append_new(a, json_pack("{s:s,s:s}", "role", "system", "content", q->system));
    json_array_append_new(a, json_pack("{s:s,s:s}", "role", "user", "content", q->prompt ? q->prompt : ""));
    return a;
}

int srv_route_begin(const srv_gen_request *q, srv_routing **out, char *msg, size_t cap) {
    *out = NULL;
    srv_routing *r = nk_calloc(1, sizeof *r);
    if (!r) { snprintf(msg, cap, "out of memory"); return 500; }
    nook_error err = { 0 };
    if (nk_router_open(NULL, &r->rt, &err) != NOOK_OK) {
        snprintf(msg, cap, "router configuration: %s", err.msg);
        srv_route_free(r);
        return 500;
    }
    nk_route_req rq = { .policy = NK_ROUTE_UNSET, .model_policy = NK_ROUTE_UNSET };
    const nk_route_req *given = q->ext[SRV_EXT_ROUTE];
    if (given) rq = *given;
    r->labels = rq.labels;
    bool exists = false;
    rq.model_policy = model_policy(q->model, &exists);
    if (!(r->messages = request_messages(q))) {
        snprintf(msg, cap, "out of memory");
        srv_route_free(r);
        return 500;
    }
    if (nk_route_plan(r->rt, &rq, r->messages, &r->route, &err) != NOOK_OK) {
        snprintf(msg, cap, "%s", err.msg);
        srv_route_free(r);
        return 400;
    }
    switch (r->route.policy) {
    case NK_ROUTE_REMOTE:
        if (!exists) {   /* as a local request would be answered */
            snprintf(msg, cap, "model '%s' not found", q->model ? q->model : "");
            srv_route_free(r);
            return 404;
        }
        r->mode = SRV_ROUTE_REMOTE;
        break;
    case NK_ROUTE_AUTO:
    case NK_ROUTE_ASK:
        r->mode = SRV_ROUTE_HOLD;
        nk_route_hold_init(&r->hold);
        r->holding = true;
        break;
    default:
        r->mode = SRV_ROUTE_LOCAL;
    }
    *out = r;
    return 0;
}

int srv_route_params(srv_routing *r, const nook_model *m, nook_gen_params *gp, char *msg, size_t cap) {
    if (r->mode != SRV_ROUTE_HOLD) return 0;
    nk_route_hold_params(gp);
    nook_error err = { 0 };
    if (nk_route_hold_labels(&r->hold, m, r->labels, gp, &err) != NOOK_OK) {
        snprintf(msg, cap, "%s", err.msg);
        return 400;
    }
    return 0;
}

bool srv_route_event(srv_routing *r, const nook_event *ev) {
    return r->mode != SRV_ROUTE_HOLD || nk_route_hold_event(&r->hold, ev);
}

static int http_status(nook_status st) {
    switch (st) {
    case NOOK_EIO: case NOOK_EFORMAT: return 502;   /* the remote failed or answered badly */
    case NOOK_EABORTED: return 499;
    default: return 500;
    }
}

int srv_route_finish(srv_routing *r, nook_done_reason done_reason, char **answer, char *msg, size_t cap) {
    *answer = NULL;
    nook_error err = { 0 };
    nook_status st;
    if (r->mode == SRV_ROUTE_REMOTE) {
        st = nk_route_escalate(r->rt, &r->route, r->messages, answer, &err);
        /* strict mode pinned it local: the caller answers locally */
        if (!st && !*answer) r->mode = SRV_ROUTE_LOCAL;
    } else if (r->mode == SRV_ROUTE_HOLD) {
        nook_status gen = done_reason == NOOK_DONE_CANCELLED ? NOOK_EABORTED : NOOK_OK;
        st = nk_route_hold_finish(r->rt, &r->route, &r->hold, gen, r->messages, answer, &err);
        if (st == NOOK_EABORTED && !err.msg[0]) snprintf(err.msg, sizeof err.msg, "client closed the request");
    } else {
        return 0;
    }
    if (st) {
        snprintf(msg, cap, "%s", err.msg[0] ? err.msg : nook_status_str(st));
        return http_status(st);
    }
    return 0;
}

json_t *srv_route_json(const srv_routing *r) { return nk_route_json(&r->route); }

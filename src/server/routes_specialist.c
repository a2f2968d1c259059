/*
 * routes_specialist.c: specialists (src/specialist) through the server.
 *   POST /api/classify  {"model": NAME, "input": TEXT or [TEXT, ...], "threshold"?: P,
 *                        "route"?: {...}}
 *     -> {"model": NAME, "results": [{"label","confidence","probabilities","abstain",
 *                                     "escalation"? }]}
 *   POST /api/chat, POST /v1/chat/completions with a specialist's name as "model": the
 *     last user message is classified and the answer's content is the label (streamed
 *     too); any other model goes on to the generation routes (routes_gen.c) unchanged.
 * NAME is looked up in the model store only (nk_spec_store_find: a strict name, never
 * a path), so a request cannot make the server open a file. An abstaining result still
 * carries the most likely label; with a routing policy other than local (the request's
 * "route", or the router's configuration) it goes to the router's general model
 * prompted with the label set (nk_spec_escalate), and "escalation" says what came back;
 * a case the router keeps here goes to the local general model the operator names in
 * $NOOK_SPECIALIST_GENERAL (a GGUF path or stored name), when set: nothing leaves.
 */
#include "server/models.h"
#include "specialist/specialist.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INPUTS 4096

/* Loads the specialist `name` from the store. Returns 1 (loaded), 0 (not a specialist:
 * no such name, a model, or not a name at all), or an HTTP status with msg. */
static int lookup(const char *name, nk_spec **out, char *msg, size_t cap) {
    *out = NULL;
    if (!name) return 0;
    nk_store *st = NULL;
    nook_error err = { 0 };
    if (nk_store_open(NULL, &st, &err)) { snprintf(msg, cap, "model store: %s", err.msg); return 500; }
    char path[4400];
    nook_status rc = nk_spec_store_find(st, name, path, sizeof path, &err);
    if (rc == NOOK_OK) rc = nk_spec_store_open(st, name, out, &err);
    nk_store_free(st);
    if (rc == NOOK_OK) return 1;
    if (rc == NOOK_ENOTFOUND || rc == NOOK_EINVAL) return 0;
    snprintf(msg, cap, "specialist '%s': %s", name, err.msg);
    return 500;
}

/* The embeddings of texts from the specialist's base model (through the server's model
 * residency, so it is loaded once and shared), when it has one. */
static int embed(srv_server *srv, const nk_spec *s, char *const *texts, int n, float **out, char *msg, size_t cap) {
    *out = NULL;
    if (!s->embed_dim) return 0;
    srv_model *m = NULL;
    int64_t waited = 0;
    int st = srv_models_acquire(srv, s->base_model, 0, &m, &waited, msg, cap);
    if (st) return st == 404 ? 500 : st;   /* the specialist exists; its base model is missing */
    int d = 0, ntok = 0;
    st = srv_model_embed(m, texts, n, true, out, &d, &ntok, msg, cap);
    srv_models_release(srv, m, false, 0);
    if (!st && (uint32_t)d != s->embed_dim) {
        snprintf(msg, cap, "the base model %s gives %d-dimensional embeddings; the specialist was trained on %u",
                 s->base_model, d, s->embed_dim);
        nk_free(*out);
        *out = NULL;
        return 500;
    }
    return st;
}

/* Classifies texts[0..n): a JSON array of result objects (escalating abstentions as
 * routed: to the router's remote, or, when the router keeps the case here, to the local
 * general model $NOOK_SPECIALIST_GENERAL names, taken from the server's registry (resident
 * between requests) and asked as nk_spec_escalate_with does), or NULL with an HTTP status
 * and msg. */
static json_t *classify_all(srv_server *srv, const nk_spec *s, char *const *texts, int n, const json_t *route,
                            int *status, char *msg, size_t cap) {
    float *emb = NULL;
    if ((*status = embed(srv, s, texts, n, &emb, msg, cap))) return NULL;
    double *probs = nk_alloc_array((size_t)s->k, sizeof *probs);
    json_t *arr = json_array();
    nk_router *rt = NULL;
    nk_zeroshot *zs = NULL;   /* over gm's model, which it borrows */
    srv_model *gm = NULL;
    int64_t waited_ns = 0;
    nk_route_req rq = { .policy = NK_ROUTE_UNSET, .model_policy = NK_ROUTE_UNSET };
    nook_error err = { 0 };
    char general[4400] = "";
    if (!probs || !arr) { *status = 500; snprintf(msg, cap, "out of memory"); goto fail; }
    if (nk_route_req_from_json((json_t *)route, &rq, &err)) { *status = 400; snprintf(msg, cap, "route: %s", err.msg); goto fail; }
    for (int i = 0; i < n; i++) {
        nk_class_result res;
        if (nk_spec_classify(s, texts[i], strlen(texts[i]), emb ? emb + (size_t)i * s->embed_dim : NULL, probs, &res, &err)) {
            *status = err.code == NOOK_ENOMEM ? 500 : 400;
            snprintf(msg, cap, "input %d: %s", i, err.msg);
            goto fail;
        }
        json_t *o = nk_spec_result_json(s, probs, &res);
        if (!o) { *status = 500; snprintf(msg, cap, "out of memory"); goto fail; }
        json_array_append_new(arr, o);
        if (!res.abstain) continue;
        if (!rt && nk_router_open(NULL, &rt, &err)) { *status = 500; snprintf(msg, cap, "router configuration: %s", err.msg); goto fail; }
        /* the operator's local general model (the environment, never the request) */
        const char *gref = getenv("NOOK_SPECIALIST_GENERAL");
        if (gref && *gref && !general[0] && nk_spec_general_path(gref, general, sizeof general, &err)) {
            *status = 500;
            snprintf(msg, cap, "NOOK_SPECIALIST_GENERAL: %s", err.msg);
            goto fail;
        }
        nk_spec_escalation e;
        nook_status st = nk_spec_escalate(s, rt, &rq, texts[i], &res, &e, &err);
        if (st == NOOK_OK && nk_spec_wants_local(&e, general) && !zs) {
            /* the general model comes from the server's registry, as any model: loaded by
             * the first escalation, then resident under keep_alive and eviction rules
             * (NOOK_KEEP_ALIVE, NOOK_MAX_LOADED_MODELS), not loaded per request */
            int ast = srv_models_acquire(srv, general, 0, &gm, &waited_ns, msg, cap);
            if (ast) {
                nk_spec_escalation_clear(&e);
                char why[512];
                snprintf(why, sizeof why, "%s", msg);
                snprintf(msg, cap, "NOOK_SPECIALIST_GENERAL: %s", why);
                *status = ast;
                goto fail;
            }
            if ((st = nk_zeroshot_open_model(srv_model_model(gm), s->labels, s->k, &zs, &err)))
                nk_prefix(&err, "the local general model %.200s: ", general);
        }
        if (st == NOOK_OK && nk_spec_wants_local(&e, general)) st = nk_spec_escalate_local(s, zs, general, texts[i], &e, &err);
        if (st) {
            nk_spec_escalation_clear(&e);
            *status = st == NOOK_EINVAL ? 400 : 502;
            snprintf(msg, cap, "input %d: escalation: %s", i, err.msg);
            goto fail;
        }
        if (e.asked) json_object_set_new(o, "escalation", nk_spec_escalation_json(s, &e));
        nk_spec_escalation_clear(&e);
    }
    nk_free(probs);
    nk_free(emb);
    nk_router_free(rt);
    nk_zeroshot_free(zs);
    if (gm) srv_models_release(srv, gm, false, 0);
    return arr;
fail:
    json_decref(arr);
    nk_free(probs);
    nk_free(emb);
    nk_router_free(rt);
    nk_zeroshot_free(zs);
    if (gm) srv_models_release(srv, gm, false, 0);
    return NULL;
}

static void h_classify(srv_req *r) {
    json_t *body = srv_req_json(r);
    if (!body) return;
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model) { srv_reply_error(r, 400, "model is required"); return; }
    json_t *in = json_object_get(body, "input");
    int n = json_is_string(in) ? 1 : json_is_array(in) ? (int)NK_MIN(json_array_size(in), (size_t)MAX_INPUTS + 1) : -1;
    if (n < 0) { srv_reply_error(r, 400, "input must be a string or an array of strings"); return; }
    if (n > MAX_INPUTS) { srv_reply_error(r, 400, "input: at most %d texts per request", MAX_INPUTS); return; }
    json_t *th = json_object_get(body, "threshold");
    if (th && (!json_is_number(th) || json_number_value(th) < 0 || json_number_value(th) > 1)) {
        srv_reply_error(r, 400, "threshold must be a number in [0, 1]");
        return;
    }
    char **texts = nk_alloc_array((size_t)n + 1, sizeof *texts);
    if (!texts) { srv_reply_error(r, 500, "out of memory"); return; }
    for (int i = 0; i < n; i++) {
        json_t *t = json_is_string(in) ? in : json_array_get(in, (size_t)i);
        if (!json_is_string(t)) { nk_free(texts); srv_reply_error(r, 400, "input[%d] is not a string", i); return; }
        texts[i] = (char *)json_string_value(t);
    }
    char msg[600];
    nk_spec *s = NULL;
    int st = lookup(model, &s, msg, sizeof msg);
    if (st == 0) {
        nk_free(texts);
        srv_reply_error(r, 404, "specialist '%s' not found", model);
        return;
    }
    if (st != 1) { nk_free(texts); srv_reply_error(r, st, "%s", msg); return; }
    if (th) s->threshold = json_number_value(th);
    json_t *res = classify_all(srv_req_server(r), s, texts, n, json_object_get(body, "route"), &st, msg, sizeof msg);
    nk_free(texts);
    nk_spec_free(s);
    if (!res) { srv_reply_error(r, st, "%s", msg); return; }
    srv_reply_json(r, 200, json_pack("{s:s,s:o}", "model", model, "results", res));
}

/* ---- chat with a specialist ---------------------------------------------------------- */

/* The text of the last user message (a string, or OpenAI's parts: the text parts
 * joined by "\n"); NULL when there is none. nk_malloc'd. */
static char *last_user_text(const json_t *msgs) {
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        if (!json_is_string(json_object_get(m, "role")) || strcmp(json_string_value(json_object_get(m, "role")), "user")) continue;
        const json_t *c = json_object_get(m, "content");
        if (json_is_string(c)) return nk_strdup(json_string_value(c));
        if (!json_is_array(c)) return NULL;
        size_t len = 0, j;
        const json_t *p;
        json_array_foreach(c, j, p) len += json_string_length(json_object_get(p, "text")) + 1;
        char *out = nk_malloc(len + 1), *o = out;
        if (!out) return NULL;
        json_array_foreach(c, j, p) {
            const json_t *t = json_object_get(p, "text");
            if (!json_is_string(t)) continue;
            if (o > out) *o++ = '\n';
            memcpy(o, json_string_value(t), json_string_length(t));
            o += json_string_length(t);
        }
        *o = 0;
        return out;
    }
    return NULL;
}

/* Hands the request on to the route of the same method and path in table t (the
 * generation routes for chat, the store's for /api/show). */
static void delegate(srv_req *r, const srv_route_table *t) {
    for (size_t i = 0; i < t->n; i++) {
        const srv_route *rt = &t->routes[i];
        if (strcmp(rt->method, srv_req_method(r)) == 0 && strcmp(rt->pattern, srv_req_path(r)) == 0) {
            rt->handler(r);
            return;
        }
    }
    srv_reply_error(r, 500, "no route for %s to hand on to", srv_req_path(r));
}

static void chat(srv_req *r, bool openai) {
    json_t *body = srv_req_json(r);
    if (!body) return;
    const char *model = json_string_value(json_object_get(body, "model"));
    char msg[600];
    nk_spec *s = NULL;
    int st = lookup(model, &s, msg, sizeof msg);
    if (st == 0) { delegate(r, &srv_routes_gen); return; }
    if (st != 1) { srv_reply_error(r, st, "%s", msg); return; }
    char *text = last_user_text(json_object_get(body, "messages"));
    if (!text) {
        nk_spec_free(s);
        srv_reply_error(r, 400, "a specialist classifies the last user message; the request has none with text");
        return;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_t *res = classify_all(srv_req_server(r), s, &text, 1, json_object_get(body, "route"), &st, msg, sizeof msg);
    nk_free(text);
    if (!res) { nk_spec_free(s); srv_reply_error(r, st, "%s", msg); return; }
    json_t *one = json_array_get(res, 0);
    const json_t *esc = json_object_get(one, "escalation");
    const char *label = json_string_value(json_object_get(esc, "label"));   /* what the router's model answered */
    if (!label) label = json_string_value(json_object_get(one, "label"));
    json_t *sj = json_object_get(body, "stream");
    bool stream = openai ? json_is_true(sj) : !json_is_false(sj);   /* Ollama streams unless told not to */
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    json_int_t ns = (json_int_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    if (!openai) {
        char ts[64];
        srv_created_at(ts, sizeof ts);
        json_t *fin = json_pack("{s:s,s:s,s:{s:s,s:s},s:b,s:s,s:I,s:I,s:i,s:i,s:O}", "model", model, "created_at", ts,
                                "message", "role", "assistant", "content", stream ? "" : label, "done", 1, "done_reason",
                                "stop", "total_duration", ns, "load_duration", (json_int_t)0, "prompt_eval_count", 0,
                                "eval_count", 1, "classification", one);
        if (!stream) {
            srv_reply_json(r, 200, fin);
        } else {
            srv_stream *ss = srv_reply_stream(r, "application/x-ndjson");
            json_t *c = json_pack("{s:s,s:s,s:{s:s,s:s},s:b}", "model", model, "created_at", ts, "message", "role",
                                  "assistant", "content", label, "done", 0);
            if (ss) {
                srv_stream_json_line(ss, c);
                srv_stream_json_line(ss, fin);
                srv_stream_end(ss);
            }
            json_decref(c);
            json_decref(fin);
        }
    } else {
        char id[64];
        snprintf(id, sizeof id, "chatcmpl-spec-%lld%09ld", (long long)t1.tv_sec, t1.tv_nsec);
        json_int_t created = (json_int_t)time(NULL);
        if (!stream) {
            srv_reply_json(r, 200,
                           json_pack("{s:s,s:s,s:I,s:s,s:s,s:[{s:i,s:{s:s,s:s},s:n,s:s}],s:{s:i,s:i,s:i},s:O}", "id", id,
                                     "object", "chat.completion", "created", created, "model", model,
                                     "system_fingerprint", "fp_nook", "choices", "index", 0, "message", "role", "assistant",
                                     "content", label, "logprobs", "finish_reason", "stop", "usage", "prompt_tokens", 0,
                                     "completion_tokens", 1, "total_tokens", 1, "classification", one));
        } else {
            srv_stream *ss = srv_reply_stream(r, "text/event-stream");
            json_t *c1 = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[{s:i,s:{s:s,s:s},s:n,s:n}]}", "id", id, "object",
                                   "chat.completion.chunk", "created", created, "model", model, "system_fingerprint",
                                   "fp_nook", "choices", "index", 0, "delta", "role", "assistant", "content", label,
                                   "logprobs", "finish_reason");
            json_t *c2 = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[{s:i,s:{},s:n,s:s}],s:O}", "id", id, "object",
                                   "chat.completion.chunk", "created", created, "model", model, "system_fingerprint",
                                   "fp_nook", "choices", "index", 0, "delta", "logprobs", "finish_reason", "stop",
                                   "classification", one);
            if (ss) {
                srv_stream_sse(ss, c1);
                srv_stream_sse(ss, c2);
                srv_stream_write(ss, "data: [DONE]\n\n", 14);
                srv_stream_end(ss);
            }
            json_decref(c1);
            json_decref(c2);
        }
    }
    json_decref(res);
    nk_spec_free(s);
}

/* POST /api/show with a specialist's name ("model", or the older "name"): the library's
 * description (nk_spec_show_json, what `nook show` prints); any other name goes on to
 * the store's /api/show (routes_store.c). */
static void h_show(srv_req *r) {
    json_t *body = srv_req_json(r);
    if (!body) return;
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model) model = json_string_value(json_object_get(body, "name"));
    char msg[600];
    nk_spec *s = NULL;
    int st = lookup(model, &s, msg, sizeof msg);
    if (st == 0) { delegate(r, &srv_routes_store); return; }
    if (st != 1) { srv_reply_error(r, st, "%s", msg); return; }
    json_t *o = nk_spec_show_json(s, model);
    nk_spec_free(s);
    if (!o) { srv_reply_error(r, 500, "out of memory"); return; }
    srv_reply_json(r, 200, o);
}

static void h_chat(srv_req *r) { chat(r, false); }
static void h_oai_chat(srv_req *r) { chat(r, true); }

static const srv_route k_routes[] = {
    { "POST", "/api/classify",         SRV_API_OLLAMA, 0, h_classify },
    { "POST", "/api/chat",             SRV_API_OLLAMA, 0, h_chat },       /* other models: routes_gen.c */
    { "POST", "/v1/chat/completions",  SRV_API_OPENAI, 0, h_oai_chat },
    { "POST", "/api/show",             SRV_API_OLLAMA, 0, h_show },       /* other models: routes_store.c */
};
const srv_route_table srv_routes_specialist = { k_routes, NK_ARRAY_LEN(k_routes) };

/*
 * routes_gen.c: the generation endpoints: Ollama's /api/generate and /api/chat, and
 * OpenAI's /v1/chat/completions and /v1/completions. One flow for all four:
 *
 *   parse the body (request.c) -> empty prompt: preload / unload (Ollama) ->
 *   acquire the model (models.c) -> a job runs the engine on a worker thread ->
 *   the handler waits for the first event (or an error before it, answered with its
 *   own status: 400, 404, 503) -> streamed: the events become NDJSON lines or SSE
 *   events as they come; not streamed: the handler waits for the end and answers once.
 *
 * A client that disconnects cancels its job at once: the stream's cancel hook (or the
 * handler's poll of the socket while it waits) sets the job's cancel flag, and the
 * event callback returns false at the next token. An error after streaming began
 * arrives as a final line ({"error": ...}), as Ollama does.
 */
#include "server/compat.h"
#include "server/models.h"
#include "server/request.h"
#include "server/route_serve.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static bool sb_add(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = nk_realloc(b->p, cap);
        if (!np) return false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

/* OpenAI's n > 1: one gen_job per choice, sharing one reply. The first choice (the
 * leader) is submitted at once; the others wait until its first event, when its prompt
 * is in the cache, and are then submitted with the same prompt, so the scheduler's
 * prefix reuse forks the leader's sequence (a copy of its K/V rows, nook_session_seq_cp)
 * and each decodes only its last prompt token. Streamed chunks carry their choice's
 * index; the usage chunk and [DONE] follow the last choice's end. Lock order: a job's
 * mu, then the group's. */
typedef struct gen_group {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, refs;
    struct gen_job **jobs;        /* n choices; jobs[0] is the leader */
    bool lead_started;            /* the leader's first event (or its end) passed */
    bool lead_failed;             /* the leader was refused before any event */
    int n_ended;                  /* choices whose stream end (finish chunk) was written */
    int n_finished;               /* workers done */
    int completion_tokens;        /* summed over the choices that ended */
    int prompt_tokens;            /* the prompt (the same for every choice) */
    srv_stream *stream;
    strbuf pending;
} gen_group;

typedef struct gen_job {
    srv_server *srv;
    gen_group *grp;               /* n > 1: the reply shared with the other choices */
    int index;                    /* the choice's index (0 when n == 1) */
    srv_shape shape;              /* /v1/responses, /v1/messages: translated (compat.c) */
    srv_compat cx;                /* their answer's shape and stream state */
    json_t *own_body;             /* their request translated to a chat request */
    srv_gen_request req;          /* owns every string the prompt and params point to */
    srv_model *model;
    int64_t load_ns;
    nook_prompt prompt;
    nook_message *msgs;
    char *messages_json;
    char *plain_text;             /* chat without a template: the conversation as text */
    char *tools_json;             /* the request's tools, for the template's `tools`   */
    const char *tmpl;             /* the chat template in use (its tool-call format)   */
    bool parse_tools;             /* tools offered: the answer is parsed for calls, so its
                                     content is held back until the end, also when streamed */
    json_t *tool_calls;           /* the calls found (nook_tool_parse's shape) or NULL */
    nook_gen_params gp;
    const char *api_model;        /* the name to echo (req.model) */
    char id[40];
    int64_t created;              /* unix seconds (OpenAI) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool started, finished;
    nook_status setup_status;     /* an error before any event */
    char setup_err[512];
    atomic_bool cancel;
    srv_stream *stream;           /* streamed replies: attached by the handler */
    strbuf pending;               /* stream bytes produced before the stream was attached */
    bool sent_role;               /* OpenAI stream: the first delta carries the role */

    /* accumulated for replies that are not streamed, and the end */
    strbuf content, thinking;
    json_t *logprobs;             /* Ollama's or OpenAI's per-token list, or NULL */
    nook_done_reason reason;
    nook_timings t;
    json_t *context;
    int n_prompt;                 /* prompt tokens (the DONE event's context minus the answer) */
    char error[512];
    srv_routing *route;           /* the router's plan and decision (route_serve.h) */
    bool held;                    /* auto / ask: the local answer waits for the decision */
    srv_req *inline_req;          /* run on the connection's thread (not streamed): its
                                     client is polled while the generation runs       */
} gen_job;

static void group_unref(gen_group *g) {
    pthread_mutex_lock(&g->mu);
    int left = --g->refs;
    pthread_mutex_unlock(&g->mu);
    if (left) return;
    if (g->stream) srv_stream_end(g->stream);
    nk_free(g->pending.p);
    nk_free(g->jobs);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    nk_free(g);
}

/* The leader's prompt is cached (its first event), or it ended (failed: refused before
 * any event): followers may start. */
static void group_lead_started(gen_group *g, bool failed) {
    pthread_mutex_lock(&g->mu);
    g->lead_started = true;
    if (failed) g->lead_failed = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static bool group_lead_failed(gen_group *g) {
    pthread_mutex_lock(&g->mu);
    bool f = g->lead_failed;
    pthread_mutex_unlock(&g->mu);
    return f;
}

static int status_of(nook_status st);

static void job_unref(gen_job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    if (j->model) srv_models_release(j->srv, j->model, j->req.has_keep_alive, j->req.keep_alive_ns);
    if (j->stream) srv_stream_end(j->stream);
    srv_gen_request_free(&j->req);
    json_decref(j->own_body);
    nk_free(j->msgs);
    free(j->messages_json);
    nk_free(j->plain_text);
    nk_free(j->tools_json);
    json_decref(j->tool_calls);
    nk_free(j->pending.p);
    nk_free(j->content.p);
    nk_free(j->thinking.p);
    json_decref(j->logprobs);
    json_decref(j->context);
    srv_route_free(j->route);
    srv_compat_clear(&j->cx);
    if (j->grp) group_unref(j->grp);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    nk_free(j);
}

/* ---- response objects ---------------------------------------------------------------------- */

static bool is_openai(const gen_job *j) { return j->req.kind == SRV_OAI_CHAT || j->req.kind == SRV_OAI_COMPLETION; }

/* Declared in server.h: Ollama's created_at, the current UTC time in RFC 3339 with
 * nanoseconds. The one copy, for every route that answers in Ollama's shape. */
void srv_created_at(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%09ldZ", ts.tv_nsec);
}

static const char *finish_reason(nook_done_reason r) {
    return r == NOOK_DONE_LENGTH ? "length" : "stop";
}

/* OpenAI's finish_reason: "tool_calls" when the answer called tools. */
static const char *oai_finish(const gen_job *j) {
    return j->tool_calls && json_array_size(j->tool_calls) ? "tool_calls" : finish_reason(j->reason);
}

static json_t *token_bytes(const char *s, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* A token's text for logprobs (control tokens rendered). Invalid UTF-8 pieces
 * (part of a character) become "" with their bytes in "bytes". */
static json_t *token_entry(const nook_model *m, nook_token id, double lp, const char *piece, size_t piece_len) {
    char buf[256];
    if (!piece) {
        int n = nook_token_to_piece(m, id, true, buf, sizeof buf);
        if (n < 0) n = 0;
        if (n > (int)sizeof buf) n = sizeof buf;
        piece = buf;
        piece_len = (size_t)n;
    }
    json_t *tok = nk_utf8_invalid_at(piece, piece_len) < 0 ? json_stringn(piece, piece_len) : json_string("");
    return json_pack("{s:o,s:f,s:o}", "token", tok, "logprob", lp, "bytes", token_bytes(piece, piece_len));
}

static json_t *logprob_item(gen_job *j, const nook_event *ev) {
    const nook_model *m = srv_model_model(j->model);
    json_t *e = token_entry(m, ev->id, ev->logprob, ev->piece, ev->piece_len);
    if (!e) return NULL;
    json_t *top = json_array();
    /* the router may ask the engine for more alternatives than the client did */
    int n_top = ev->n_top < j->req.top_logprobs ? ev->n_top : j->req.top_logprobs;
    for (int i = 0; i < n_top; i++) json_array_append_new(top, token_entry(m, ev->top[i].id, ev->top[i].logprob, NULL, 0));
    json_object_set_new(e, "top_logprobs", top);
    return e;
}

/* One streamed chunk with this text (Ollama line or OpenAI event), or NULL. */
static json_t *chunk(gen_job *j, const char *content, size_t cn, const char *thinking, size_t tn, json_t *lps) {
    char ts[48];
    switch (j->req.kind) {
    case SRV_GENERATE: {
        srv_created_at(ts, sizeof ts);
        json_t *o = json_pack("{s:s,s:s,s:s%,s:b}", "model", j->api_model, "created_at", ts, "response", content, cn,
                              "done", 0);
        if (o && tn) json_object_set_new(o, "thinking", json_stringn(thinking, tn));
        if (o && lps) json_object_set(o, "logprobs", lps);
        return o;
    }
    case SRV_CHAT: {
        srv_created_at(ts, sizeof ts);
        json_t *msg = json_pack("{s:s,s:s%}", "role", "assistant", "content", content, cn);
        if (msg && tn) json_object_set_new(msg, "thinking", json_stringn(thinking, tn));
        json_t *o = json_pack("{s:s,s:s,s:o,s:b}", "model", j->api_model, "created_at", ts, "message", msg, "done", 0);
        if (o && lps) json_object_set(o, "logprobs", lps);
        return o;
    }
    case SRV_OAI_CHAT: {
        json_t *delta = json_object();
        if (!j->sent_role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            j->sent_role = true;
        }
        if (cn || !tn) json_object_set_new(delta, "content", json_stringn(content, cn));
        if (tn) json_object_set_new(delta, "reasoning", json_stringn(thinking, tn));
        json_t *choice = json_pack("{s:i,s:o,s:n}", "index", j->index, "delta", delta, "finish_reason");
        if (choice && lps) json_object_set_new(choice, "logprobs", json_pack("{s:O}", "content", lps));
        return json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", j->id, "object", "chat.completion.chunk", "created",
                         (json_int_t)j->created, "model", j->api_model, "system_fingerprint", "fp_nook", "choices",
                         choice);
    }
    default: {
        json_t *choice = json_pack("{s:s%,s:i,s:n,s:n}", "text", content, cn, "index", j->index, "finish_reason", "logprobs");
        return json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", j->id, "object", "text_completion", "created",
                         (json_int_t)j->created, "model", j->api_model, "system_fingerprint", "fp_nook", "choices",
                         choice);
    }
    }
}

static void add_timings(json_t *o, const nook_timings *t, int64_t load_ns) {
    json_object_set_new(o, "total_duration", json_integer(t->total_ns + load_ns - t->load_ns));
    json_object_set_new(o, "load_duration", json_integer(load_ns));
    json_object_set_new(o, "prompt_eval_count", json_integer(t->prompt_eval_count));
    json_object_set_new(o, "prompt_eval_duration", json_integer(t->prompt_eval_ns));
    json_object_set_new(o, "eval_count", json_integer(t->eval_count));
    json_object_set_new(o, "eval_duration", json_integer(t->eval_ns));
}

/* OpenAI's usage counts the whole prompt (prompt_eval_count counts only the tokens
 * decoded, after a reused prefix, as Ollama's). */
static json_t *usage(const gen_job *j) {
    int prompt = j->n_prompt > 0 ? j->n_prompt : j->t.prompt_eval_count;
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", prompt, "completion_tokens", j->t.eval_count,
                     "total_tokens", prompt + j->t.eval_count);
}

/* The router's decision on the final object (or chunk) of every reply. */
static json_t *with_route(const gen_job *j, json_t *o) {
    if (o && j->route) json_object_set_new(o, "route", srv_route_json(j->route));
    return o;
}

/* The final object of an Ollama reply: streamed (empty text) or whole. */
static json_t *ollama_final(gen_job *j, bool whole) {
    char ts[48];
    srv_created_at(ts, sizeof ts);
    json_t *o;
    const char *c = whole && j->content.p ? j->content.p : "";
    if (j->req.kind == SRV_GENERATE) {
        o = json_pack("{s:s,s:s,s:s}", "model", j->api_model, "created_at", ts, "response", c);
    } else {
        json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", c);
        o = json_pack("{s:s,s:s,s:o}", "model", j->api_model, "created_at", ts, "message", msg);
        if (o && whole && j->thinking.n) json_object_set_new(msg, "thinking", json_string(j->thinking.p));
        if (o && whole && j->tool_calls)
            json_object_set_new(msg, "tool_calls", srv_tool_calls_for(j->req.kind, j->tool_calls, false));
    }
    if (!o) return NULL;
    if (whole && j->thinking.n && j->req.kind == SRV_GENERATE) json_object_set_new(o, "thinking", json_string(j->thinking.p));
    json_object_set_new(o, "done", json_true());
    json_object_set_new(o, "done_reason", json_string(finish_reason(j->reason)));
    if (j->req.kind == SRV_GENERATE && j->context) json_object_set(o, "context", j->context);
    add_timings(o, &j->t, j->load_ns);
    if (whole && j->logprobs) json_object_set(o, "logprobs", j->logprobs);
    return with_route(j, o);
}

/* One choice of a whole OpenAI reply. */
static json_t *openai_choice(gen_job *j) {
    json_t *choice;
    if (j->req.kind == SRV_OAI_CHAT) {
        json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", j->content.p ? j->content.p : "");
        if (msg && j->thinking.n) json_object_set_new(msg, "reasoning", json_string(j->thinking.p));
        if (msg && j->tool_calls) {
            json_object_set_new(msg, "tool_calls", srv_tool_calls_for(j->req.kind, j->tool_calls, false));
            if (!j->content.n) json_object_set_new(msg, "content", json_null());   /* as OpenAI's */
        }
        choice = json_pack("{s:i,s:o,s:s}", "index", j->index, "message", msg, "finish_reason", oai_finish(j));
        if (choice)
            json_object_set_new(choice, "logprobs", j->logprobs ? json_pack("{s:O}", "content", j->logprobs) : json_null());
    } else {
        choice = json_pack("{s:s,s:i,s:s,s:n}", "text", j->content.p ? j->content.p : "", "index", j->index,
                           "finish_reason", finish_reason(j->reason), "logprobs");
    }
    return choice;
}

/* The whole OpenAI reply: every choice of the group (n > 1; each finished), whose
 * usage counts the prompt once and the completions of all (as OpenAI's). */
static json_t *openai_final(gen_job *j) {
    if (j->shape) {
        json_t *u = usage(j);
        int prompt = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
        json_decref(u);
        return with_route(j, srv_compat_whole(&j->cx, j->content.p ? j->content.p : "", j->thinking.p, j->tool_calls,
                                              j->reason == NOOK_DONE_LENGTH, prompt, j->t.eval_count));
    }
    json_t *choices = json_array();
    json_t *u = usage(j);
    if (j->grp) {
        int completion = 0;
        for (int i = 0; i < j->grp->n; i++) {
            json_array_append_new(choices, openai_choice(j->grp->jobs[i]));
            completion += j->grp->jobs[i]->t.eval_count;
        }
        int prompt = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
        json_decref(u);
        u = json_pack("{s:i,s:i,s:i}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens",
                      prompt + completion);
    } else {
        json_array_append_new(choices, openai_choice(j));
    }
    return with_route(j, json_pack("{s:s,s:s,s:I,s:s,s:s,s:o,s:o}", "id", j->id, "object",
                                   j->req.kind == SRV_OAI_CHAT ? "chat.completion" : "text_completion", "created",
                                   (json_int_t)j->created, "model", j->api_model, "system_fingerprint", "fp_nook",
                                   "choices", choices, "usage", u));
}

/* ---- the worker ------------------------------------------------------------------------------- */

/* Queues bytes for the client: to the stream when attached, else held. j->mu held. */
static bool out_locked(gen_job *j, const char *s, size_t n) {
    if (j->grp) {   /* n > 1: the group's reply */
        gen_group *g = j->grp;
        pthread_mutex_lock(&g->mu);
        bool ok = g->stream ? srv_stream_write(g->stream, s, n) : sb_add(&g->pending, s, n);
        pthread_mutex_unlock(&g->mu);
        return ok;
    }
    if (j->stream) return srv_stream_write(j->stream, s, n);
    return sb_add(&j->pending, s, n);
}

/* srv_compat's sink: out_locked. */
static bool sink_locked(void *ud, const char *s, size_t n) { return out_locked(ud, s, n); }

static bool out_json_locked(gen_job *j, json_t *v) {
    if (!v) return false;
    char *txt = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!txt) return false;
    bool ok = is_openai(j) ? out_locked(j, "data: ", 6) && out_locked(j, txt, strlen(txt)) && out_locked(j, "\n\n", 2)
                           : out_locked(j, txt, strlen(txt)) && out_locked(j, "\n", 1);
    free(txt);
    return ok;
}

/* Tools offered: the whole answer is parsed for calls (the template's format); the
 * text outside them stays the content. A text that holds no call is all content. */
static void tools_finish(gen_job *j) {
    char *content = NULL, *calls = NULL;
    nook_error e = { 0 };
    if (nook_tool_parse(j->tmpl, j->content.p ? j->content.p : "", j->content.n, &content, &calls, &e) != NOOK_OK)
        return;   /* out of memory: the answer stays plain content */
    if (calls) {
        j->tool_calls = json_loads(calls, 0, NULL);
        j->content.n = 0;
        sb_add(&j->content, content, strlen(content));
    }
    nook_free(content);
    nook_free(calls);
}

/* The calls found (if any) into a streamed chunk (o, returned). */
static json_t *with_tool_calls(const gen_job *j, json_t *o) {
    if (!o || !j->tool_calls) return o;
    json_t *calls = srv_tool_calls_for(j->req.kind, j->tool_calls, true);
    json_t *where = is_openai(j) ? json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta")
                                 : json_object_get(o, "message");
    if (where) json_object_set(where, "tool_calls", calls);
    if (where && is_openai(j) && !j->content.n) json_object_del(where, "content");
    json_decref(calls);
    return o;
}

/* Streamed with tools offered: the held content (and log-probabilities) and the calls,
 * as one chunk before the final one. j->mu held. */
static bool tools_flush_locked(gen_job *j) {
    if (j->shape)   /* the calls follow as their own blocks (stream_end_locked) */
        return !j->content.n || srv_compat_delta(&j->cx, j->content.p, j->content.n, NULL, 0, sink_locked, j);
    if (!j->content.n && !j->tool_calls && !j->logprobs) return true;
    json_t *o = chunk(j, j->content.p ? j->content.p : "", j->content.n, "", 0, j->logprobs);
    return out_json_locked(j, with_tool_calls(j, o));
}
/* The usage chunk (when asked) and [DONE] of an OpenAI stream. j->mu held. */
static void oai_stream_close_locked(gen_job *j, json_t *u) {
    if (j->req.include_usage) {
        json_t *uc = chunk(j, "", 0, "", 0, NULL);
        if (uc) {
            json_object_set_new(uc, "choices", json_array());
            json_object_set(uc, "usage", u);
        }
        out_json_locked(j, uc);
    }
    out_locked(j, "data: [DONE]\n\n", 14);
}

/* n > 1: one more choice of the group ended (its finish chunk or error was written).
 * Returns the group's usage when it was the last (the caller then closes the stream),
 * else NULL. */
static json_t *group_choice_ended(gen_job *j) {
    gen_group *g = j->grp;
    json_t *u = usage(j);
    int prompt = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
    json_decref(u);
    pthread_mutex_lock(&g->mu);
    g->completion_tokens += j->t.eval_count;
    if (prompt > g->prompt_tokens) g->prompt_tokens = prompt;
    bool last_one = ++g->n_ended == g->n;
    int completion = g->completion_tokens;
    prompt = g->prompt_tokens;
    pthread_mutex_unlock(&g->mu);
    if (!last_one) return NULL;
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens",
                     prompt + completion);
}

/* The end of a streamed reply: an error line, or the final object (Ollama) or chunks
 * (OpenAI: finish_reason, usage when asked, [DONE]; with n > 1 each choice's finish
 * chunk, then the usage and [DONE] after the last). j->mu held. */
static void stream_end_locked(gen_job *j) {
    if (j->shape) {   /* /v1/responses, /v1/messages: their closing events */
        if (j->reason == NOOK_DONE_ERROR) {
            srv_compat_error(&j->cx, j->error, sink_locked, j);
        } else {
            json_t *u = usage(j);
            int prompt = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
            json_decref(u);
            srv_compat_finish(&j->cx, j->reason == NOOK_DONE_LENGTH, j->tool_calls, prompt, j->t.eval_count,
                              sink_locked, j);
        }
        return;
    }
    if (j->reason == NOOK_DONE_ERROR) {
        json_t *e = srv_error_body(is_openai(j) ? SRV_API_OPENAI : SRV_API_OLLAMA, 500, j->error);
        out_json_locked(j, e);
        if (j->grp) {
            json_t *u = group_choice_ended(j);
            if (u) oai_stream_close_locked(j, u);
            json_decref(u);
        }
    } else if (!is_openai(j)) {
        out_json_locked(j, ollama_final(j, false));
    } else {
        json_t *last = chunk(j, "", 0, "", 0, NULL);
        json_t *choice = last ? json_array_get(json_object_get(last, "choices"), 0) : NULL;
        if (choice) {
            json_object_set_new(choice, "finish_reason", json_string(oai_finish(j)));
            if (j->req.kind == SRV_OAI_CHAT) json_object_set_new(choice, "delta", json_object());
        }
        out_json_locked(j, with_route(j, last));
        json_t *u = j->grp ? group_choice_ended(j) : usage(j);
        if (u) oai_stream_close_locked(j, u);
        json_decref(u);
    }
}

static bool on_event(const nook_event *ev, void *ud) {
    gen_job *j = ud;
    pthread_mutex_lock(&j->mu);
    if (!j->started) {
        j->started = true;
        pthread_cond_broadcast(&j->cv);
        if (j->grp && j->index == 0) group_lead_started(j->grp, false);
    }
    /* auto / ask: the router sees every event; the client none until the decision */
    bool ok = !j->held || srv_route_event(j->route, ev);
    if (ev->kind == NOOK_EVENT_TOKEN || ev->kind == NOOK_EVENT_TEXT || ev->kind == NOOK_EVENT_DONE) {
        json_t *lp = NULL;
        if (ev->kind == NOOK_EVENT_TOKEN && j->req.logprobs) lp = logprob_item(j, ev);
        if (j->req.stream && !j->held && !j->parse_tools) {
            if (j->shape) {
                if (ev->content_len || ev->thinking_len)
                    ok = srv_compat_delta(&j->cx, ev->content, ev->content_len, ev->thinking, ev->thinking_len,
                                          sink_locked, j);
            } else if (ev->content_len || ev->thinking_len || lp) {
                json_t *arr = lp ? json_array() : NULL;
                if (arr) json_array_append(arr, lp);
                ok = out_json_locked(j, chunk(j, ev->content ? ev->content : "", ev->content_len,
                                              ev->thinking ? ev->thinking : "", ev->thinking_len, arr));
                json_decref(arr);
            }
        } else if (j->req.stream && !j->held) {   /* tools offered: content held, reasoning streamed */
            if (ev->content_len && !sb_add(&j->content, ev->content, ev->content_len)) ok = false;
            if (ev->thinking_len && j->shape)
                ok = srv_compat_delta(&j->cx, NULL, 0, ev->thinking, ev->thinking_len, sink_locked, j) && ok;
            else if (ev->thinking_len) ok = out_json_locked(j, chunk(j, "", 0, ev->thinking, ev->thinking_len, NULL)) && ok;
            if (lp) {
                if (!j->logprobs) j->logprobs = json_array();
                json_array_append(j->logprobs, lp);
            }
        } else {
            if ((ev->content_len && !sb_add(&j->content, ev->content, ev->content_len)) ||
                (ev->thinking_len && !sb_add(&j->thinking, ev->thinking, ev->thinking_len)))
                ok = false;
            if (lp) {
                if (!j->logprobs) j->logprobs = json_array();
                json_array_append(j->logprobs, lp);
            }
        }
        json_decref(lp);
        if (ev->kind == NOOK_EVENT_TOKEN) srv_metric_add(SRV_M_GEN_TOKENS, 1);
    }
    if (ev->kind == NOOK_EVENT_DONE) {
        j->reason = ev->done_reason;
        if (j->shape == SRV_SHAPE_MESSAGES) srv_compat_set_stop(&j->cx, ev->stop);
        if (ev->timings) j->t = *ev->timings;
        srv_metric_add(SRV_M_PROMPT_TOKENS, (uint64_t)j->t.prompt_eval_count);
        if (ev->done_reason == NOOK_DONE_CANCELLED) srv_metric_add(SRV_M_CANCELLED, 1);
        if (ev->done_reason == NOOK_DONE_ERROR)
            snprintf(j->error, sizeof j->error, "%s", ev->error ? ev->error : nook_status_str(ev->status));
        if (ev->context) j->n_prompt = ev->n_context - j->t.eval_count;
        if (j->req.kind == SRV_GENERATE && ev->context) {
            j->context = json_array();
            for (int i = 0; i < ev->n_context; i++) json_array_append_new(j->context, json_integer(ev->context[i]));
        }
        /* tools offered: the answer is parsed now (held by the router: once decided) */
        bool answered = ev->done_reason != NOOK_DONE_CANCELLED && ev->done_reason != NOOK_DONE_ERROR;
        if (j->parse_tools && answered && !j->held) tools_finish(j);
        if (j->req.stream && !j->held && ev->done_reason != NOOK_DONE_CANCELLED) {
            if (j->parse_tools && answered) ok = tools_flush_locked(j) && ok;
            stream_end_locked(j);
        }
    }
    bool cancel = atomic_load(&j->cancel);
    pthread_mutex_unlock(&j->mu);
    return ok && !cancel;
}

static void worker_finish(gen_job *j, nook_status st, const nook_error *errp);

/* A generation run on the connection's thread: its client left (polled every 20 ms). */
static bool job_client_gone(void *arg) {
    gen_job *j = arg;
    if (atomic_load(&j->cancel)) return true;
    if (!srv_req_client_gone(j->inline_req)) return false;
    atomic_store(&j->cancel, true);
    return true;
}

static void *worker_main(void *arg) {
    gen_job *j = arg;
    nook_error err = { 0 };
    nook_status st;
    if (j->grp && j->index > 0) {
        /* a follower: once the leader's prompt is cached, the same prompt forks it */
        gen_group *g = j->grp;
        pthread_mutex_lock(&g->mu);
        while (!g->lead_started && !atomic_load(&j->cancel)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
        pthread_mutex_unlock(&g->mu);
    }
    if (atomic_load(&j->cancel)) st = nk_fail(&err, NOOK_EABORTED, "client closed the request");
    else if (j->grp && j->index > 0 && group_lead_failed(j->grp))
        st = nk_fail(&err, NOOK_EABORTED, "the request failed");   /* the handler answers the leader's error */
    else st = srv_model_generate_abortable(j->model, &j->prompt, &j->gp, on_event, j, &j->cancel,
                                           j->inline_req ? job_client_gone : NULL, j, &err);
    worker_finish(j, st, &err);
    return NULL;
}

/* The end of a job's worker (also of one whose thread could not start): the model
 * goes back, the outcome is published, the worker's reference dropped. */
static void worker_finish(gen_job *j, nook_status st, const nook_error *errp) {
    const nook_error err = *errp;
    /* Give the model back before the request can complete: once the reply is done the
     * server may stop (SIGTERM drains in-flight requests), and the registry with it. */
    srv_models_release(j->srv, j->model, j->req.has_keep_alive, j->req.keep_alive_ns);
    pthread_mutex_lock(&j->mu);
    j->model = NULL;
    if (!j->started) {   /* refused before any event */
        j->setup_status = st != NOOK_OK ? st : NOOK_EINTERNAL;
        snprintf(j->setup_err, sizeof j->setup_err, "%s", err.msg[0] ? err.msg : nook_status_str(st));
    }
    j->finished = true;
    if (j->stream) {   /* the body is complete */
        srv_stream_end(j->stream);
        j->stream = NULL;
    }
    bool streaming_group = j->grp && j->req.stream;
    bool failed_early = !j->started;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (j->grp) {
        gen_group *g = j->grp;
        if (j->index == 0) group_lead_started(g, failed_early);   /* followers stop waiting */
        if (streaming_group && failed_early) {
            /* a choice refused after the stream began (a full queue): an error event */
            json_t *e = srv_error_body(SRV_API_OPENAI, status_of(j->setup_status), j->setup_err);
            pthread_mutex_lock(&j->mu);
            out_json_locked(j, e);
            json_t *u = group_choice_ended(j);
            if (u) oai_stream_close_locked(j, u);
            json_decref(u);
            pthread_mutex_unlock(&j->mu);
        }
        pthread_mutex_lock(&g->mu);
        bool last = ++g->n_finished == g->n;
        if (last && g->stream) {   /* the group's body is complete */
            srv_stream_end(g->stream);
            g->stream = NULL;
        }
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
    job_unref(j);
}

static void on_stream_cancel(void *arg) {
    gen_job *j = arg;
    atomic_store(&j->cancel, true);
}

/* The client of an n > 1 reply went away: every choice stops. Takes no lock: a stream
 * write made under the group's lock may run this hook (a client that stopped reading);
 * waiting followers poll their flag. */
static void on_group_cancel(void *arg) {
    gen_group *g = arg;
    for (int i = 0; i < g->n; i++) atomic_store(&g->jobs[i]->cancel, true);
}

/* ---- building the engine's request ---------------------------------------------------------------- */

static uint64_t engine_seed(int64_t s) {
    /* Ollama: -1 random; the engine's 0 is "random", so a requested 0 maps to a fixed value. */
    return s < 0 ? 0 : s == 0 ? 0x9E3779B97F4A7C15ull : (uint64_t)s;
}

static int build(gen_job *j, char *msg, size_t cap) {
    srv_gen_request *q = &j->req;
    const srv_options *o = &q->opt;
    nook_gen_params *g = &j->gp;
    *g = nook_gen_default_params();
    if (o->set & SRV_OPT_TEMPERATURE) g->sampler.temperature = o->temperature;
    if (o->set & SRV_OPT_TOP_K) g->sampler.top_k = o->top_k;
    if (o->set & SRV_OPT_TOP_P) g->sampler.top_p = o->top_p;
    if (o->set & SRV_OPT_MIN_P) g->sampler.min_p = o->min_p;
    if (o->set & SRV_OPT_REPEAT_PENALTY) g->sampler.repeat_penalty = o->repeat_penalty > 0 ? o->repeat_penalty : 1.0f;
    if (o->set & SRV_OPT_REPEAT_LAST_N) g->sampler.repeat_last_n = o->repeat_last_n;
    if (o->set & SRV_OPT_PRESENCE_PENALTY) g->sampler.presence_penalty = o->presence_penalty;
    if (o->set & SRV_OPT_FREQUENCY_PENALTY) g->sampler.frequency_penalty = o->frequency_penalty;
    g->sampler.seed = engine_seed((o->set & SRV_OPT_SEED) ? o->seed : -1);
    if (o->set & SRV_OPT_NUM_PREDICT) g->num_predict = o->num_predict;
    if (o->set & SRV_OPT_NUM_KEEP) g->num_keep = o->num_keep;
    g->stop = (const char *const *)o->stop;
    g->n_stop = o->n_stop;
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i][0]) {   /* the engine wants non-empty stop strings; an empty one stops nothing */
            snprintf(msg, cap, "stop strings must not be empty");
            return 400;
        }
    g->logprobs = q->logprobs;
    g->top_logprobs = q->logprobs ? q->top_logprobs : 0;
    g->load_ns = j->load_ns;

    /* Structured output (format / response_format) and forced tool calls (tool_choice
     * required or named) as the generation's grammar, in the template's call format;
     * tools offered: the answer is parsed for calls at the end. */
    j->tmpl = q->template_text ? q->template_text : nook_model_chat_template(srv_model_model(j->model));
    nook_error gerr = { 0 };
    if (srv_grammar_apply(q->ext[SRV_EXT_GRAMMAR], j->tmpl, g, &gerr) != NOOK_OK) {
        snprintf(msg, cap, "%s", gerr.msg);
        return 400;
    }
    const json_t *offered = srv_tools_offered(q);
    j->parse_tools = offered != NULL;

    nook_prompt *p = &j->prompt;
    *p = nook_prompt_default();
    p->think = q->think == SRV_THINK_ON ? 1 : q->think == SRV_THINK_OFF ? 0 : -1;
    p->template_src = q->template_text;
    if (q->kind == SRV_GENERATE || q->kind == SRV_OAI_COMPLETION) {
        p->text = q->prompt ? q->prompt : "";
        p->system = q->system;
        p->raw = q->raw;
        p->context = q->context;
        p->n_context = q->n_context;
        return 0;
    }
    if (!q->template_text && !nook_model_chat_template(srv_model_model(j->model))) {
        /* No chat template: plain completion of the conversation's text, the messages'
         * contents one per line (documented in docs/api.md), rather than an error or a
         * format the model never saw. */
        strbuf t = { 0 };
        for (int i = 0; i < q->n_messages; i++) {
            if (i && !sb_add(&t, "\n", 1)) break;
            if (!sb_add(&t, q->messages[i].content, strlen(q->messages[i].content))) break;
        }
        j->plain_text = t.p;
        p->text = t.p ? t.p : "";
        return 0;
    }
    /* chat: plain messages, or the OpenAI-shaped JSON when tool calls are involved */
    bool tools = offered != NULL;
    for (int i = 0; i < q->n_messages; i++)
        if (q->messages[i].tool_calls || q->messages[i].tool_call_id || !strcmp(q->messages[i].role, "tool")) tools = true;
    if (!tools) {
        j->msgs = nk_calloc((size_t)q->n_messages, sizeof *j->msgs);
        if (!j->msgs) { snprintf(msg, cap, "out of memory"); return 500; }
        for (int i = 0; i < q->n_messages; i++) {
            j->msgs[i].role = q->messages[i].role;
            j->msgs[i].content = q->messages[i].content;
            j->msgs[i].thinking = q->messages[i].thinking;
        }
        p->messages = j->msgs;
        p->n_messages = q->n_messages;
        return 0;
    }
    json_t *arr = json_array();
    for (int i = 0; i < q->n_messages; i++) {
        const srv_message *m = &q->messages[i];
        json_t *o2 = json_pack("{s:s,s:s}", "role", m->role, "content", m->content);
        if (!o2) continue;
        if (m->thinking) json_object_set_new(o2, "reasoning_content", json_string(m->thinking));
        if (m->tool_calls) json_object_set(o2, "tool_calls", m->tool_calls);
        if (m->tool_call_id) json_object_set_new(o2, "tool_call_id", json_string(m->tool_call_id));
        if (m->tool_name) json_object_set_new(o2, "name", json_string(m->tool_name));
        json_array_append_new(arr, o2);
    }
    j->messages_json = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!j->messages_json) { snprintf(msg, cap, "out of memory"); return 500; }
    p->messages_json = j->messages_json;
    if (offered) {
        char *tj = json_dumps(offered, JSON_COMPACT | JSON_PRESERVE_ORDER);
        j->tools_json = tj ? nk_strdup(tj) : NULL;
        free(tj);
        if (!j->tools_json) { snprintf(msg, cap, "out of memory"); return 500; }
        p->tools_json = j->tools_json;
    }
    return 0;
}

/* ---- the handler ------------------------------------------------------------------------------------ */

static int status_of(nook_status st) {
    switch (st) {
    case NOOK_EBUSY: return 503;
    case NOOK_EABORTED: return 499;   /* the client went away (Ollama's 499) */
    case NOOK_ENOTFOUND: return 404;
    case NOOK_ENOMEM: case NOOK_EINTERNAL: case NOOK_EIO: return 500;
    default: return 400;   /* EINVAL, ERANGE (prompt longer than the context), EUNSUPPORTED, EFORMAT */
    }
}

/* Preload (empty prompt) or unload (and keep_alive 0), as Ollama answers them. */
static void preload(srv_req *r, srv_gen_request *q) {
    srv_server *s = srv_req_server(r);
    char ts[48];
    srv_created_at(ts, sizeof ts);
    const char *reason = "load";
    if (q->has_keep_alive && q->keep_alive_ns == 0) {
        srv_models_unload(s, q->model);
        reason = "unload";
    } else {
        srv_model *m = NULL;
        int64_t waited;
        char msg[600];
        int st = srv_models_acquire(s, q->model, q->opt.num_ctx, &m, &waited, msg, sizeof msg);
        if (st) { srv_reply_error(r, st, "%s", msg); return; }
        srv_models_release(s, m, q->has_keep_alive, q->keep_alive_ns);
    }
    json_t *o = q->kind == SRV_GENERATE
        ? json_pack("{s:s,s:s,s:s,s:b,s:s}", "model", q->model, "created_at", ts, "response", "", "done", 1,
                    "done_reason", reason)
        : json_pack("{s:s,s:s,s:{s:s,s:s},s:b,s:s}", "model", q->model, "created_at", ts, "message", "role",
                    "assistant", "content", "", "done", 1, "done_reason", reason);
    srv_reply_json(r, 200, o);
}

/* Replies with the whole answer at once (the router's: held back, or the remote's):
 * one object, or a stream of the answer's chunk and the end. */
static void reply_whole(srv_req *r, gen_job *j) {
    if (!j->req.stream) {
        srv_reply_json(r, 200, is_openai(j) ? openai_final(j) : ollama_final(j, true));
        return;
    }
    pthread_mutex_lock(&j->mu);
    j->pending.n = 0;
    bool ok = true;
    if (j->shape)
        ok = srv_compat_delta(&j->cx, j->content.p, j->content.n, j->thinking.p, j->thinking.n, sink_locked, j);
    else if (j->content.n || j->thinking.n || j->logprobs || j->tool_calls)
        ok = out_json_locked(j, with_tool_calls(j, chunk(j, j->content.p ? j->content.p : "", j->content.n,
                                                         j->thinking.p ? j->thinking.p : "", j->thinking.n, j->logprobs)));
    if (ok) stream_end_locked(j);
    pthread_mutex_unlock(&j->mu);
    srv_stream *sm = srv_reply_stream(r, is_openai(j) ? "text/event-stream" : "application/x-ndjson");
    if (!sm) return;
    srv_stream_write(sm, j->pending.p, j->pending.n);
    srv_stream_end(sm);
}

/* The router's decision after a held local answer (auto, ask), or at once for remote;
 * then the reply. Returns false when the request is to be answered locally after all
 * (remote pinned local by strict mode). */
static bool route_reply(srv_req *r, gen_job *j) {
    if (j->held && j->reason == NOOK_DONE_ERROR) {
        srv_reply_error(r, 500, "%s", j->error);
        return true;
    }
    char *answer = NULL, msg[600];
    int st = srv_route_finish(j->route, j->reason, &answer, msg, sizeof msg);
    if (st) {
        srv_reply_error(r, st, "%s", msg);
        return true;
    }
    if (!j->held && !answer) return false;
    if (answer) {   /* the remote's answer replaces the local one (and its tokens) */
        j->content.n = j->thinking.n = 0;
        if (!sb_add(&j->content, answer, strlen(answer))) {
            nk_free(answer);
            srv_reply_error(r, 500, "out of memory");
            return true;
        }
        nk_free(answer);
        json_decref(j->logprobs);
        json_decref(j->context);
        j->logprobs = j->context = NULL;
    }
    else if (j->parse_tools && j->reason != NOOK_DONE_CANCELLED) tools_finish(j);   /* the local answer stands */
    /* an answer the router stopped early ended as cancelled; the reply says stop */
    if (j->reason == NOOK_DONE_CANCELLED || answer) j->reason = NOOK_DONE_STOP;
    reply_whole(r, j);
    return true;
}

static gen_job *job_new(srv_server *s) {
    gen_job *j = nk_calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->srv = s;
    return j;
}

/* Readies choice `index` of an n > 1 request as the leader was: the same body read
 * again (so it owns its strings), the same model, its own sampler seed (seed + index
 * when a seed was given, so the choices differ yet repeat). 0 or an HTTP status. */
static int follower_prepare(srv_req *r, gen_job *lead, gen_job *f, json_t *body, srv_kind kind, int index,
                            char *msg, size_t cap) {
    srv_server *s = srv_req_server(r);
    int st = srv_gen_request_parse(body, kind, srv_get_config(s)->max_messages, &f->req, msg, cap);
    if (st) return st;
    f->api_model = f->req.model;
    f->index = index;
    f->created = lead->created;
    memcpy(f->id, lead->id, sizeof f->id);
    if ((st = srv_model_defaults(&f->req, msg, cap))) return st;
    if ((st = srv_route_begin(&f->req, &f->route, msg, cap))) return st;
    if ((st = srv_models_acquire(s, f->req.model, f->req.opt.num_ctx, &f->model, &f->load_ns, msg, cap))) return st;
    if ((st = build(f, msg, cap))) return st;
    if ((st = srv_route_params(f->route, srv_model_model(f->model), &f->gp, msg, cap))) return st;
    const srv_options *o = &f->req.opt;
    if ((o->set & SRV_OPT_SEED) && o->seed >= 0) f->gp.sampler.seed = engine_seed(o->seed + index);
    return 0;
}

/* OpenAI's n > 1 (see gen_group): the leader `lead` is prepared; the other choices are
 * prepared here, every worker started, and the reply is one object with n choices or
 * one SSE stream whose chunks carry their choice's index. */
static void handle_group(srv_req *r, gen_job *lead, json_t *body, srv_kind kind) {
    int n = lead->req.n;
    char msg[600];
    gen_group *g = nk_calloc(1, sizeof *g);
    if (g) g->jobs = nk_calloc((size_t)n, sizeof *g->jobs);
    if (!g || !g->jobs) {
        if (g) nk_free(g);
        srv_reply_error(r, 500, "out of memory");
        job_unref(lead);
        return;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->n = n;
    g->refs = 1;   /* the handler's; each job holds one more */
    g->jobs[0] = lead;
    lead->grp = g;
    g->refs++;
    for (int i = 1; i < n; i++) {
        gen_job *f = job_new(srv_req_server(r));
        int st = f ? 0 : 500;
        if (!f) snprintf(msg, sizeof msg, "out of memory");
        if (f) {
            f->grp = g;
            g->refs++;
            st = follower_prepare(r, lead, f, body, kind, i, msg, sizeof msg);
        }
        if (st) {
            srv_reply_error(r, st, "%s", msg);
            if (f) job_unref(f);
            for (int k = 0; k < i; k++) job_unref(g->jobs[k]);
            group_unref(g);
            return;
        }
        g->jobs[i] = f;
    }
    /* every worker: the handler keeps its own reference to each job until the end */
    for (int i = 0; i < n; i++) {
        gen_job *j = g->jobs[i];
        j->refs = 2;
        if (srv_spawn(worker_main, j) != 0) {
            nook_error e = { 0 };
            worker_finish(j, nk_fail(&e, NOOK_ENOMEM, "cannot start a worker thread"), &e);
        }
    }

    /* Wait for the leader's first event (streamed) or every choice's end; a client
     * that leaves cancels every choice. */
    bool stream = lead->req.stream;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        if (g->n_finished == n || (stream && g->lead_started)) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT && srv_req_client_gone(r)) {
            pthread_mutex_unlock(&g->mu);
            on_group_cancel(g);
            pthread_mutex_lock(&g->mu);
        }
    }
    bool lead_failed = g->lead_failed;
    pthread_mutex_unlock(&g->mu);
    /* a choice refused before any event (the leader, or any when not streamed) */
    gen_job *failed = lead_failed ? lead : NULL;
    for (int i = 0; !failed && !stream && i < n; i++) {
        gen_job *j = g->jobs[i];
        pthread_mutex_lock(&j->mu);
        if (!j->started) failed = j;
        pthread_mutex_unlock(&j->mu);
    }
    if (failed) {
        int st = status_of(failed->setup_status);
        srv_reply_error(r, st, "%s%s", failed->setup_err,
                        failed->setup_status == NOOK_ERANGE ? " (the prompt is longer than the context length; raise num_ctx)" : "");
    } else if (stream) {
        srv_stream *sm = srv_reply_stream(r, "text/event-stream");
        if (!sm) {
            on_group_cancel(g);
        } else {
            srv_stream_on_cancel(sm, on_group_cancel, g);
            pthread_mutex_lock(&g->mu);
            if (g->pending.n) srv_stream_write(sm, g->pending.p, g->pending.n);
            g->pending.n = 0;
            if (g->n_finished == n) srv_stream_end(sm);
            else g->stream = sm;   /* the last worker ends it */
            pthread_mutex_unlock(&g->mu);
        }
    } else {
        nook_done_reason worst = NOOK_DONE_STOP;
        const char *err = "";
        for (int i = 0; i < n; i++) {
            gen_job *j = g->jobs[i];
            if (j->reason == NOOK_DONE_CANCELLED) worst = NOOK_DONE_CANCELLED;
            else if (j->reason == NOOK_DONE_ERROR && worst != NOOK_DONE_CANCELLED) { worst = NOOK_DONE_ERROR; err = j->error; }
        }
        if (worst == NOOK_DONE_CANCELLED) srv_reply_error(r, 499, "client closed the request");
        else if (worst == NOOK_DONE_ERROR) srv_reply_error(r, 500, "%s", err);
        else srv_reply_json(r, 200, openai_final(lead));
    }
    for (int i = 0; i < n; i++) job_unref(g->jobs[i]);
    group_unref(g);
}

static void handle(srv_req *r, srv_kind kind, srv_shape shape) {
    srv_server *s = srv_req_server(r);
    const srv_config *cfg = srv_get_config(s);
    json_t *body = srv_req_json(r);
    if (!body) return;
    gen_job *j = job_new(s);
    if (!j) { srv_reply_error(r, 500, "out of memory"); return; }
    char msg[600];
    int st;
    const json_t *given = body;
    if (shape) {   /* /v1/responses, /v1/messages: as a chat request (compat.c) */
        j->shape = shape;
        if (!(j->own_body = srv_compat_to_chat(shape, body, msg, sizeof msg))) {
            srv_reply_error(r, 400, "%s", msg);
            job_unref(j);
            return;
        }
        body = j->own_body;
    }
    st = srv_gen_request_parse(body, kind, cfg->max_messages, &j->req, msg, sizeof msg);
    if (st) { srv_reply_error(r, st, "%s", msg); job_unref(j); return; }
    srv_gen_request *q = &j->req;
    j->api_model = q->model;
    /* a store model's Modelfile settings under the request's (model_defaults.c) */
    if ((st = srv_model_defaults(q, msg, sizeof msg))) { srv_reply_error(r, st, "%s", msg); job_unref(j); return; }
    bool empty = (kind == SRV_GENERATE && (!q->prompt || !q->prompt[0]) && !q->n_context) ||
                 (kind == SRV_CHAT && q->n_messages == 0);
    if (empty) { preload(r, q); job_unref(j); return; }
    if (kind == SRV_OAI_CHAT && q->n_messages == 0) {
        srv_reply_error(r, 400, "'messages' must not be empty");
        job_unref(j);
        return;
    }

    j->created = (int64_t)time(NULL);
    static atomic_ulong seq;
    snprintf(j->id, sizeof j->id, "%s-%lu", kind == SRV_OAI_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long)atomic_fetch_add(&seq, 1) + 1);
    if (shape) srv_compat_init(&j->cx, shape, j->api_model, j->created, given);
    /* the router: local (as always), remote (no local generation), or held (auto, ask) */
    if ((st = srv_route_begin(q, &j->route, msg, sizeof msg))) { srv_reply_error(r, st, "%s", msg); job_unref(j); return; }
    if (srv_route_get_mode(j->route) == SRV_ROUTE_REMOTE) {
        j->reason = NOOK_DONE_STOP;
        if (route_reply(r, j)) { job_unref(j); return; }
    }
    j->held = srv_route_get_mode(j->route) == SRV_ROUTE_HOLD;
    if (q->n > 1 && j->held) {
        srv_reply_error(r, 400, "n > 1 is answered locally only (the route policy holds answers for a decision)");
        job_unref(j);
        return;
    }

    st = srv_models_acquire(s, q->model, q->opt.num_ctx, &j->model, &j->load_ns, msg, sizeof msg);
    if (st) { srv_reply_error(r, st, "%s", msg); job_unref(j); return; }
    if ((st = build(j, msg, sizeof msg))) { srv_reply_error(r, st, "%s", msg); job_unref(j); return; }
    if ((st = srv_route_params(j->route, srv_model_model(j->model), &j->gp, msg, sizeof msg))) {
        srv_reply_error(r, st, "%s", msg);
        job_unref(j);
        return;
    }
    if (q->n > 1) { handle_group(r, j, body, kind); return; }
    if (shape == SRV_SHAPE_MESSAGES && q->stream) {
        /* message_start reports the prompt's tokens: count them now */
        nook_token *toks = NULL;
        int n_tok = 0;
        nook_error te = { 0 };
        if (nook_prompt_tokenize(srv_model_model(j->model), &j->prompt, &toks, &n_tok, NULL, &te) == NOOK_OK)
            j->cx.input_tokens = n_tok;
        nook_free(toks);
    }

    j->refs = 2;   /* the handler's and the worker's */
    if (!q->stream || j->held) {
        /* the handler waits for the end anyway: run the generation here, which spares
         * a thread hand-off at each end (the server's overhead per request) */
        j->inline_req = r;
        worker_main(j);
    } else if (srv_spawn(worker_main, j) != 0) {
        j->refs = 1;
        srv_reply_error(r, 500, "cannot start a worker thread");
        job_unref(j);
        return;
    }

    /* Wait for the first event (or an error before it); then the end, when not streamed.
     * The socket is polled meanwhile: a client that leaves cancels. */
    pthread_mutex_lock(&j->mu);
    for (;;) {
        bool ready = q->stream && !j->held ? (j->started || j->finished) : j->finished;
        if (ready) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT && !atomic_load(&j->cancel) &&
            srv_req_client_gone(r))
            atomic_store(&j->cancel, true);
    }
    if (!j->started) {
        pthread_mutex_unlock(&j->mu);
        st = status_of(j->setup_status);
        if (j->setup_status == NOOK_ERANGE)
            srv_reply_error(r, st, "%s (the prompt is longer than the context length; raise num_ctx)", j->setup_err);
        else
            srv_reply_error(r, st, "%s", j->setup_err);
        job_unref(j);
        return;
    }
    if (j->held) {
        pthread_mutex_unlock(&j->mu);
        route_reply(r, j);
        job_unref(j);
        return;
    }
    if (q->stream) {
        srv_stream *sm = srv_reply_stream(r, is_openai(j) ? "text/event-stream" : "application/x-ndjson");
        if (!sm) {
            atomic_store(&j->cancel, true);
        } else {
            srv_stream_on_cancel(sm, on_stream_cancel, j);
            if (j->pending.n) srv_stream_write(sm, j->pending.p, j->pending.n);
            j->pending.n = 0;
            if (j->finished) srv_stream_end(sm);
            else j->stream = sm;   /* the worker writes to it and ends it */
        }
        pthread_mutex_unlock(&j->mu);
        job_unref(j);
        return;
    }
    pthread_mutex_unlock(&j->mu);
    if (j->reason == NOOK_DONE_CANCELLED) {
        srv_reply_error(r, 499, "client closed the request");
    } else if (j->reason == NOOK_DONE_ERROR) {
        srv_reply_error(r, 500, "%s", j->error);
    } else {
        srv_reply_json(r, 200, is_openai(j) ? openai_final(j) : ollama_final(j, true));
    }
    job_unref(j);
}

static void h_generate(srv_req *r) { handle(r, SRV_GENERATE, SRV_SHAPE_CHAT); }
static void h_chat(srv_req *r) { handle(r, SRV_CHAT, SRV_SHAPE_CHAT); }
static void h_oai_chat(srv_req *r) { handle(r, SRV_OAI_CHAT, SRV_SHAPE_CHAT); }
static void h_oai_completion(srv_req *r) { handle(r, SRV_OAI_COMPLETION, SRV_SHAPE_CHAT); }
static void h_responses(srv_req *r) { handle(r, SRV_OAI_CHAT, SRV_SHAPE_RESPONSES); }
static void h_messages(srv_req *r) { handle(r, SRV_OAI_CHAT, SRV_SHAPE_MESSAGES); }

static const srv_route k_routes[] = {
    { "POST", "/api/generate",         SRV_API_OLLAMA, 0, h_generate },
    { "POST", "/api/chat",             SRV_API_OLLAMA, 0, h_chat },
    { "POST", "/v1/chat/completions",  SRV_API_OPENAI, 0, h_oai_chat },
    { "POST", "/v1/completions",       SRV_API_OPENAI, 0, h_oai_completion },
    { "POST", "/v1/responses",         SRV_API_OPENAI, 0, h_responses },
    { "POST", "/v1/messages",          SRV_API_ANTHROPIC, 0, h_messages },
};
const srv_route_table srv_routes_gen = { k_routes, NK_ARRAY_LEN(k_routes) };

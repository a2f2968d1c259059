/*
 * compat.c: /v1/responses and /v1/messages translated to and from the OpenAI chat flow
 * (see compat.h). Event sequences follow the APIs' documentation:
 *
 * Responses (stream): response.created, response.in_progress, then per output item
 * (a reasoning item when the model thinks, then the assistant message)
 * response.output_item.added, response.content_part.added, *.delta...,
 * *.done, response.content_part.done, response.output_item.done; last
 * response.completed (or response.incomplete when max_output_tokens cut it). Every
 * event carries "type" and "sequence_number" and is sent with an "event:" line.
 *
 * Messages (stream): message_start, ping, per content block (thinking, then text)
 * content_block_start, content_block_delta (thinking_delta / text_delta),
 * content_block_stop; then message_delta (stop_reason, usage) and message_stop.
 */
#include "server/compat.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ---------------------------------------------------------------------------- */

static json_t *fail(char *msg, size_t cap, json_t *out, const char *fmt, const char *what) {
    snprintf(msg, cap, fmt, what);
    json_decref(out);
    return NULL;
}

/* Text of a content value: a string, or a list of text blocks / parts. Part types
 * allowed: text (both APIs), input_text and output_text (Responses). Other parts
 * (images, files, tool blocks) are refused; Anthropic thinking blocks are dropped (as
 * Ollama, the model's earlier reasoning is not sent back). NULL with msg on error. */
static char *content_text(const json_t *c, const char *field, char *msg, size_t cap) {
    if (json_is_string(c)) return nk_strdup(json_string_value(c));
    if (!json_is_array(c)) {
        snprintf(msg, cap, "field '%s' must be a string or a list of content blocks", field);
        return NULL;
    }
    size_t total = 1, i;
    const json_t *b;
    json_array_foreach(c, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!json_is_object(b) || !type) {
            snprintf(msg, cap, "field '%s' holds a block without a type", field);
            return NULL;
        }
        if (!strcmp(type, "thinking") || !strcmp(type, "redacted_thinking")) continue;
        if (strcmp(type, "text") && strcmp(type, "input_text") && strcmp(type, "output_text")) {
            bool image = !strcmp(type, "image") || !strcmp(type, "input_image");
            snprintf(msg, cap, image ? "images are not supported: nook runs text-only models"
                                     : "content blocks of type '%.40s' are not supported (text only)", type);
            return NULL;
        }
        const json_t *t = json_object_get(b, "text");
        if (!json_is_string(t)) {
            snprintf(msg, cap, "a text block in '%s' has no string 'text'", field);
            return NULL;
        }
        total += json_string_length(t) + 1;
    }
    char *out = nk_malloc(total), *p = out;
    if (!out) { snprintf(msg, cap, "out of memory"); return NULL; }
    bool first = true;
    json_array_foreach(c, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!strcmp(type, "thinking") || !strcmp(type, "redacted_thinking")) continue;
        const json_t *t = json_object_get(b, "text");
        if (!first) *p++ = '\n';
        memcpy(p, json_string_value(t), json_string_length(t));
        p += json_string_length(t);
        first = false;
    }
    *p = 0;
    return out;
}

static bool add_message(json_t *msgs, const char *role, const json_t *content, const char *field, char *msg,
                        size_t cap) {
    char *text = content_text(content, field, msg, cap);
    if (!text) return false;
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", role, "content", text));
    nk_free(text);
    return true;
}

/* Copies body[from] to out[to] when present. */
static void pass(json_t *out, const json_t *body, const char *from, const char *to) {
    json_t *v = json_object_get(body, from);
    if (v && !json_is_null(v)) json_object_set(out, to, v);
}

/* Text of a tool result's content: a string, or text blocks. */
static char *result_text(const json_t *c, char *msg, size_t cap) {
    if (!c || json_is_null(c)) return nk_strdup("");
    return content_text(c, "tool_result.content", msg, cap);
}

/* One Anthropic message into chat messages: text blocks as the content, an assistant's
 * tool_use blocks as its tool_calls (arguments as the input object), a user's
 * tool_result blocks as tool messages (before the user's own text). */
static bool anthropic_message(json_t *msgs, const char *role, const json_t *content, char *msg, size_t cap) {
    if (!json_is_array(content)) return add_message(msgs, role, content, "messages[].content", msg, cap);
    json_t *text_blocks = json_array(), *calls = json_array();
    size_t i;
    const json_t *b;
    bool ok = true;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (type && !strcmp(type, "tool_use") && !strcmp(role, "assistant")) {
            const char *id = json_string_value(json_object_get(b, "id"));
            const char *name = json_string_value(json_object_get(b, "name"));
            const json_t *input = json_object_get(b, "input");
            if (!id || !name || !json_is_object(input)) {
                snprintf(msg, cap, "a tool_use block needs an id, a name and an input object");
                ok = false;
                break;
            }
            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:O}}", "id", id, "type", "function", "function",
                                                   "name", name, "arguments", input));
        } else if (type && !strcmp(type, "tool_result") && !strcmp(role, "user")) {
            const char *id = json_string_value(json_object_get(b, "tool_use_id"));
            char *t = id ? result_text(json_object_get(b, "content"), msg, cap) : NULL;
            if (!id) snprintf(msg, cap, "a tool_result block needs a tool_use_id");
            if (!t) { ok = false; break; }
            json_array_append_new(msgs, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content", t));
            nk_free(t);
        } else {
            json_array_append(text_blocks, (json_t *)b);
        }
    }
    if (ok && (json_array_size(text_blocks) || json_array_size(calls))) {
        char *text = content_text(text_blocks, "messages[].content", msg, cap);
        if (!text) ok = false;
        else {
            json_t *m = json_pack("{s:s,s:s}", "role", role, "content", text);
            if (m && json_array_size(calls)) json_object_set(m, "tool_calls", calls);
            json_array_append_new(msgs, m);
            nk_free(text);
        }
    }
    json_decref(text_blocks);
    json_decref(calls);
    return ok;
}

/* Tools as OpenAI function tools: Anthropic's {name, description, input_schema} (custom
 * tools only), the Responses API's {type: "function", name, description, parameters}. */
static bool tools_to_chat(json_t *out, const json_t *tools, bool anthropic, char *msg, size_t cap) {
    if (!tools || json_is_null(tools)) return true;
    if (!json_is_array(tools)) { snprintf(msg, cap, "field 'tools' must be a list"); return false; }
    json_t *ot = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *name = json_string_value(json_object_get(t, "name"));
        const json_t *params = json_object_get(t, anthropic ? "input_schema" : "parameters");
        bool custom = anthropic ? (!type || !strcmp(type, "custom")) : (type && !strcmp(type, "function"));
        if (!custom) {
            snprintf(msg, cap, "tools of type '%.40s' are not supported (%s tools only)", type ? type : "(none)",
                     anthropic ? "custom" : "function");
            json_decref(ot);
            return false;
        }
        if (!name || (params && !json_is_object(params))) {
            snprintf(msg, cap, "each tool needs a name and an object schema ('%s')", anthropic ? "input_schema" : "parameters");
            json_decref(ot);
            return false;
        }
        json_t *fn = json_pack("{s:s}", "name", name);
        const json_t *d = json_object_get(t, "description");
        if (json_is_string(d)) json_object_set(fn, "description", (json_t *)d);
        json_object_set_new(fn, "parameters", params ? json_incref((json_t *)params) : json_object());
        json_array_append_new(ot, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    json_object_set_new(out, "tools", ot);
    return true;
}

static json_t *responses_to_chat(const json_t *body, char *msg, size_t cap) {
    json_t *out = json_object(), *msgs = json_array();
    json_object_set_new(out, "messages", msgs);
    static const char *const k_state[] = { "previous_response_id", "conversation" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_state); i++) {
        const json_t *v = json_object_get(body, k_state[i]);
        if (v && !json_is_null(v))
            return fail(msg, cap, out, "field '%s' is not supported: nook's /v1/responses is stateless (send the whole conversation in 'input')", k_state[i]);
    }
    if (!tools_to_chat(out, json_object_get(body, "tools"), false, msg, cap)) { json_decref(out); return NULL; }
    const json_t *tc = json_object_get(body, "tool_choice");
    if (json_is_string(tc)) json_object_set(out, "tool_choice", (json_t *)tc);
    else if (json_is_object(tc)) {   /* {"type": "function", "name"} */
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (!name) return fail(msg, cap, out, "field '%s' names no function", "tool_choice");
        json_object_set_new(out, "tool_choice", json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name));
    }
    const json_t *ins = json_object_get(body, "instructions");
    if (ins && !json_is_null(ins)) {
        if (!json_is_string(ins)) return fail(msg, cap, out, "field '%s' must be a string", "instructions");
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", ins));
    }
    const json_t *in = json_object_get(body, "input");
    if (json_is_string(in)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", in));
    } else if (json_is_array(in)) {
        size_t i;
        const json_t *it;
        json_array_foreach(in, i, it) {
            const char *type = json_string_value(json_object_get(it, "type"));
            const char *role = json_string_value(json_object_get(it, "role"));
            if (type && !strcmp(type, "function_call")) {   /* an earlier call: the assistant's tool_calls */
                const char *id = json_string_value(json_object_get(it, "call_id"));
                const char *name = json_string_value(json_object_get(it, "name"));
                const char *args = json_string_value(json_object_get(it, "arguments"));
                json_t *a = args ? json_loads(args, 0, NULL) : NULL;
                if (!id || !name || !json_is_object(a)) {
                    json_decref(a);
                    return fail(msg, cap, out, "a function_call item needs call_id, name and JSON object arguments%s", "");
                }
                json_t *call = json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", id, "type", "function", "function", "name", name,
                                         "arguments", a);
                json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
                const char *lr = json_string_value(json_object_get(last, "role"));
                if (last && lr && !strcmp(lr, "assistant") && json_is_array(json_object_get(last, "tool_calls")))
                    json_array_append_new(json_object_get(last, "tool_calls"), call);
                else
                    json_array_append_new(msgs, json_pack("{s:s,s:s,s:[o]}", "role", "assistant", "content", "", "tool_calls", call));
                continue;
            }
            if (type && !strcmp(type, "function_call_output")) {   /* a tool's result */
                const char *id = json_string_value(json_object_get(it, "call_id"));
                const json_t *o = json_object_get(it, "output");
                char *t = id ? result_text(o, msg, cap) : NULL;
                if (!t) return fail(msg, cap, out, "a function_call_output item needs a call_id and a string output%s", "");
                json_array_append_new(msgs, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content", t));
                nk_free(t);
                continue;
            }
            if (!json_is_object(it) || (type && strcmp(type, "message")) || !role) {
                if (type && strcmp(type, "message"))
                    return fail(msg, cap, out, "input items of type '%.40s' are not supported (messages only)", type);
                return fail(msg, cap, out, "field '%s' holds an item that is not a message with a role", "input");
            }
            if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") && strcmp(role, "developer"))
                return fail(msg, cap, out, "input message role '%.40s' is not supported", role);
            if (!add_message(msgs, !strcmp(role, "developer") ? "system" : role, json_object_get(it, "content"),
                             "input[].content", msg, cap)) {
                json_decref(out);
                return NULL;
            }
        }
    } else {
        return fail(msg, cap, out, "field '%s' is required (a string or a list of messages)", "input");
    }
    if (!json_array_size(msgs)) return fail(msg, cap, out, "field '%s' must not be empty", "input");
    pass(out, body, "max_output_tokens", "max_tokens");
    pass(out, body, "reasoning", "reasoning");
    /* text.format: structured output, as response_format */
    const json_t *fmt = json_object_get(json_object_get(body, "text"), "format");
    if (json_is_object(fmt)) {
        const char *t = json_string_value(json_object_get(fmt, "type"));
        if (t && !strcmp(t, "json_schema"))
            json_object_set_new(out, "response_format",
                                json_pack("{s:s,s:{s:O*}}", "type", "json_schema", "json_schema", "schema",
                                          json_object_get(fmt, "schema")));
        else if (t && !strcmp(t, "json_object"))
            json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "json_object"));
        else if (!t || strcmp(t, "text"))
            return fail(msg, cap, out, "text.format type '%.40s' is not supported", t ? t : "(none)");
    }
    return out;
}

static json_t *messages_to_chat(const json_t *body, char *msg, size_t cap) {
    json_t *out = json_object(), *msgs = json_array();
    json_object_set_new(out, "messages", msgs);
    if (!tools_to_chat(out, json_object_get(body, "tools"), true, msg, cap)) { json_decref(out); return NULL; }
    const json_t *tc = json_object_get(body, "tool_choice");
    if (json_is_object(tc)) {
        const char *t = json_string_value(json_object_get(tc, "type"));
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (t && !strcmp(t, "auto")) json_object_set_new(out, "tool_choice", json_string("auto"));
        else if (t && !strcmp(t, "any")) json_object_set_new(out, "tool_choice", json_string("required"));
        else if (t && !strcmp(t, "none")) json_object_set_new(out, "tool_choice", json_string("none"));
        else if (t && !strcmp(t, "tool") && name)
            json_object_set_new(out, "tool_choice", json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name));
        else return fail(msg, cap, out, "field '%s' must be {\"type\": auto, any, none, or tool with a name}", "tool_choice");
    } else if (tc && !json_is_null(tc)) return fail(msg, cap, out, "field '%s' must be an object", "tool_choice");
    const json_t *sys = json_object_get(body, "system");
    if (sys && !json_is_null(sys) && !add_message(msgs, "system", sys, "system", msg, cap)) {
        json_decref(out);
        return NULL;
    }
    const json_t *in = json_object_get(body, "messages");
    if (!json_is_array(in) || !json_array_size(in))
        return fail(msg, cap, out, "field '%s' is required (a non-empty list)", "messages");
    size_t i;
    const json_t *m;
    json_array_foreach(in, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role || (strcmp(role, "user") && strcmp(role, "assistant")))
            return fail(msg, cap, out, "each of '%s' needs role \"user\" or \"assistant\"", "messages");
        if (!anthropic_message(msgs, role, json_object_get(m, "content"), msg, cap)) {
            json_decref(out);
            return NULL;
        }
    }
    pass(out, body, "max_tokens", "max_tokens");
    pass(out, body, "stop_sequences", "stop");
    pass(out, body, "top_k", "top_k");
    const json_t *th = json_object_get(body, "thinking");
    if (json_is_object(th)) {   /* budget_tokens read, not enforced (as Ollama) */
        const char *t = json_string_value(json_object_get(th, "type"));
        json_object_set_new(out, "reasoning_effort", json_string(t && !strcmp(t, "disabled") ? "none" : "medium"));
    }
    return out;
}

json_t *srv_compat_to_chat(srv_shape shape, const json_t *body, char *msg, size_t cap) {
    json_t *out = shape == SRV_SHAPE_RESPONSES ? responses_to_chat(body, msg, cap) : messages_to_chat(body, msg, cap);
    if (!out) return NULL;
    /* the fields both read as the chat request does (types checked there) */
    static const char *const k_same[] = { "model", "stream", "temperature", "top_p", "seed", "num_ctx", "options",
                                          "keep_alive", "route" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_same); i++) pass(out, body, k_same[i], k_same[i]);
    return out;
}

/* ---- answers ---------------------------------------------------------------------------- */

void srv_compat_init(srv_compat *c, srv_shape shape, const char *model, int64_t created, const json_t *request) {
    static atomic_ulong counter;
    unsigned long k = atomic_fetch_add(&counter, 1) + 1;
    memset(c, 0, sizeof *c);
    c->shape = shape;
    c->model = model;
    c->created = created;
    snprintf(c->id, sizeof c->id, "%s_%lx%08lx", shape == SRV_SHAPE_RESPONSES ? "resp" : "msg", (unsigned long)created, k);
    snprintf(c->msg_id, sizeof c->msg_id, "msg_%lx%08lx", (unsigned long)created, k);
    snprintf(c->rs_id, sizeof c->rs_id, "rs_%lx%08lx", (unsigned long)created, k);
    if (shape == SRV_SHAPE_RESPONSES) {
        c->items = json_array();
        /* what the response object echoes of its request */
        c->echo = json_object();
        static const char *const k_echo[] = { "instructions", "max_output_tokens", "temperature", "top_p", "metadata" };
        for (size_t i = 0; i < NK_ARRAY_LEN(k_echo); i++) {
            json_t *v = json_object_get(request, k_echo[i]);
            json_object_set(c->echo, k_echo[i], v ? v : json_null());
        }
    }
}

void srv_compat_set_stop(srv_compat *c, const char *stop) {
    nk_free(c->stop_seq);
    c->stop_seq = stop ? nk_strdup(stop) : NULL;   /* out of memory: reported as end_turn */
}

/* Anthropic's stop_reason, and its stop_sequence (a string or null) */
static const char *stop_reason(const srv_compat *c, bool called, bool length) {
    return called ? "tool_use" : length ? "max_tokens" : c->stop_seq ? "stop_sequence" : "end_turn";
}
static json_t *stop_sequence(const srv_compat *c, bool called, bool length) {
    return !called && !length && c->stop_seq ? json_string(c->stop_seq) : json_null();
}

void srv_compat_clear(srv_compat *c) {
    nk_free(c->stop_seq);
    nk_free(c->text);
    nk_free(c->think);
    json_decref(c->items);
    json_decref(c->echo);
    memset(c, 0, sizeof *c);
}

static bool append(char **p, size_t *n, const char *s, size_t len) {
    char *np = nk_realloc(*p, *n + len + 1);
    if (!np) return false;
    memcpy(np + *n, s, len);
    *n += len;
    np[*n] = 0;
    *p = np;
    return true;
}

/* "event: NAME\ndata: {...}\n\n"; steals data (adds Responses' type and sequence_number). */
static bool emit(srv_compat *c, const char *name, json_t *data, srv_sink_fn sink, void *ud) {
    if (!data) return false;
    json_t *ev = json_pack("{s:s}", "type", name);   /* "type" first, as the APIs print it */
    if (!ev) { json_decref(data); return false; }
    json_object_update(ev, data);
    json_decref(data);
    if (c->shape == SRV_SHAPE_RESPONSES) json_object_set_new(ev, "sequence_number", json_integer(c->seq++));
    char *txt = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (!txt) return false;
    char head[96];
    int hn = snprintf(head, sizeof head, "event: %s\ndata: ", name);
    bool ok = sink(ud, head, (size_t)hn) && sink(ud, txt, strlen(txt)) && sink(ud, "\n\n", 2);
    free(txt);
    return ok;
}

static json_t *usage_json(const srv_compat *c, int in, int out) {
    if (c->shape == SRV_SHAPE_MESSAGES) return json_pack("{s:i,s:i}", "input_tokens", in, "output_tokens", out);
    return json_pack("{s:i,s:{s:i},s:i,s:{s:i},s:i}", "input_tokens", in, "input_tokens_details", "cached_tokens", 0,
                     "output_tokens", out, "output_tokens_details", "reasoning_tokens", 0, "total_tokens", in + out);
}

/* The Responses object (status: in_progress, completed, incomplete). */
static json_t *response_obj(const srv_compat *c, const char *status, json_t *output, json_t *usage, bool length) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:n,s:o,s:s,s:o}", "id", c->id, "object", "response", "created_at",
                          (json_int_t)c->created, "status", status, "error", "incomplete_details",
                          length ? json_pack("{s:s}", "reason", "max_output_tokens") : json_null(), "model", c->model,
                          "output", output);
    if (!o) return NULL;
    json_object_update(o, c->echo);
    json_object_set_new(o, "parallel_tool_calls", json_true());
    json_object_set_new(o, "tool_choice", json_string("auto"));
    json_object_set_new(o, "tools", json_array());
    json_object_set_new(o, "store", json_false());
    json_object_set_new(o, "text", json_pack("{s:{s:s}}", "format", "type", "text"));
    json_object_set_new(o, "usage", usage ? usage : json_null());
    return o;
}

static json_t *message_item(const srv_compat *c, const char *text, const char *status) {
    json_t *content = json_array();
    if (text) json_array_append_new(content, json_pack("{s:s,s:s,s:[]}", "type", "output_text", "text", text, "annotations"));
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", c->msg_id, "type", "message", "status", status, "role", "assistant",
                     "content", content);
}

static json_t *reasoning_item(const srv_compat *c, const char *text) {
    json_t *content = json_array();
    if (text) json_array_append_new(content, json_pack("{s:s,s:s}", "type", "reasoning_text", "text", text));
    return json_pack("{s:s,s:s,s:[],s:o}", "id", c->rs_id, "type", "reasoning", "summary", "content", content);
}

static bool open_stream(srv_compat *c, srv_sink_fn sink, void *ud) {
    if (c->opened) return true;
    c->opened = true;
    if (c->shape == SRV_SHAPE_MESSAGES) {
        json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}", "id", c->id, "type", "message", "role", "assistant",
                              "model", c->model, "content", "stop_reason", "stop_sequence", "usage",
                              usage_json(c, c->input_tokens, 0));
        return emit(c, "message_start", json_pack("{s:o}", "message", m), sink, ud) &&
               emit(c, "ping", json_object(), sink, ud);
    }
    return emit(c, "response.created", json_pack("{s:o}", "response", response_obj(c, "in_progress", json_array(), NULL, false)),
                sink, ud) &&
           emit(c, "response.in_progress",
                json_pack("{s:o}", "response", response_obj(c, "in_progress", json_array(), NULL, false)), sink, ud);
}

/* Ends the open block / item. */
static bool close_block(srv_compat *c, srv_sink_fn sink, void *ud) {
    if (!c->open) return true;
    int idx = c->n_blocks - 1;
    bool think = c->open == 1;
    c->open = 0;
    if (c->shape == SRV_SHAPE_MESSAGES)
        return emit(c, "content_block_stop", json_pack("{s:i}", "index", idx), sink, ud);
    const char *text = think ? (c->think ? c->think : "") : (c->text ? c->text : "");
    const char *item_id = think ? c->rs_id : c->msg_id;
    json_t *item;
    bool ok;
    if (think) {
        ok = emit(c, "response.reasoning_text.done",
                  json_pack("{s:s,s:i,s:i,s:s}", "item_id", item_id, "output_index", idx, "content_index", 0, "text", text),
                  sink, ud);
        item = reasoning_item(c, text);
    } else {
        json_t *part = json_pack("{s:s,s:s,s:[]}", "type", "output_text", "text", text, "annotations");
        ok = emit(c, "response.output_text.done",
                  json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", item_id, "output_index", idx, "content_index", 0,
                            "text", text, "logprobs"), sink, ud) &&
             emit(c, "response.content_part.done",
                  json_pack("{s:s,s:i,s:i,s:o}", "item_id", item_id, "output_index", idx, "content_index", 0, "part", part),
                  sink, ud);
        item = message_item(c, text, "completed");
    }
    json_array_append(c->items, item);
    ok = ok && emit(c, "response.output_item.done", json_pack("{s:i,s:o}", "output_index", idx, "item", item), sink, ud);
    return ok;
}

static bool open_block(srv_compat *c, int kind, srv_sink_fn sink, void *ud) {
    if (c->open == kind) return true;
    if (!close_block(c, sink, ud)) return false;
    c->open = kind;
    int idx = c->n_blocks++;
    if (kind == 2) c->had_text = true;
    if (c->shape == SRV_SHAPE_MESSAGES) {
        json_t *b = kind == 1 ? json_pack("{s:s,s:s}", "type", "thinking", "thinking", "")
                              : json_pack("{s:s,s:s}", "type", "text", "text", "");
        return emit(c, "content_block_start", json_pack("{s:i,s:o}", "index", idx, "content_block", b), sink, ud);
    }
    if (kind == 1) {
        c->think_n = 0;
        return emit(c, "response.output_item.added",
                    json_pack("{s:i,s:o}", "output_index", idx, "item", reasoning_item(c, NULL)), sink, ud);
    }
    c->text_n = 0;
    json_t *part = json_pack("{s:s,s:s,s:[]}", "type", "output_text", "text", "", "annotations");
    return emit(c, "response.output_item.added",
                json_pack("{s:i,s:o}", "output_index", idx, "item", message_item(c, NULL, "in_progress")), sink, ud) &&
           emit(c, "response.content_part.added",
                json_pack("{s:s,s:i,s:i,s:o}", "item_id", c->msg_id, "output_index", idx, "content_index", 0, "part", part),
                sink, ud);
}

bool srv_compat_delta(srv_compat *c, const char *content, size_t cn, const char *thinking, size_t tn,
                      srv_sink_fn sink, void *ud) {
    if (!open_stream(c, sink, ud)) return false;
    int idx;
    if (tn) {
        if (!open_block(c, 1, sink, ud) || !append(&c->think, &c->think_n, thinking, tn)) return false;
        idx = c->n_blocks - 1;
        bool ok = c->shape == SRV_SHAPE_MESSAGES
            ? emit(c, "content_block_delta",
                   json_pack("{s:i,s:{s:s,s:s%}}", "index", idx, "delta", "type", "thinking_delta", "thinking", thinking, tn),
                   sink, ud)
            : emit(c, "response.reasoning_text.delta",
                   json_pack("{s:s,s:i,s:i,s:s%}", "item_id", c->rs_id, "output_index", idx, "content_index", 0, "delta",
                             thinking, tn), sink, ud);
        if (!ok) return false;
    }
    if (cn) {
        if (!open_block(c, 2, sink, ud) || !append(&c->text, &c->text_n, content, cn)) return false;
        idx = c->n_blocks - 1;
        return c->shape == SRV_SHAPE_MESSAGES
            ? emit(c, "content_block_delta",
                   json_pack("{s:i,s:{s:s,s:s%}}", "index", idx, "delta", "type", "text_delta", "text", content, cn), sink, ud)
            : emit(c, "response.output_text.delta",
                   json_pack("{s:s,s:i,s:i,s:s%,s:[]}", "item_id", c->msg_id, "output_index", idx, "content_index", 0,
                             "delta", content, cn, "logprobs"), sink, ud);
    }
    return true;
}

/* A call's parts (nook_tool_parse's shape): id, name, arguments as JSON text (new). */
static bool call_parts(const json_t *call, const char **id, const char **name, char **args) {
    const json_t *fn = json_object_get(call, "function");
    *id = json_string_value(json_object_get(call, "id"));
    *name = json_string_value(json_object_get(fn, "name"));
    const json_t *a = json_object_get(fn, "arguments");
    *args = json_is_string(a) ? strdup(json_string_value(a)) : a ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    return *id && *name && *args;
}

/* Responses: a call as a function_call output item. */
static json_t *call_item(const char *id, const char *name, const char *args, const char *status) {
    char fc[80];
    snprintf(fc, sizeof fc, "fc_%.60s", id);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", fc, "type", "function_call", "status", status, "call_id", id,
                     "name", name, "arguments", args);
}

/* The calls as their own blocks / items: Anthropic tool_use blocks (the input as one
 * input_json_delta), Responses function_call items (the arguments as one delta). */
static bool stream_calls(srv_compat *c, const json_t *calls, srv_sink_fn sink, void *ud) {
    size_t i;
    const json_t *call;
    json_array_foreach(calls, i, call) {
        const char *id, *name;
        char *args;
        if (!call_parts(call, &id, &name, &args)) { free(args); continue; }
        int idx = c->n_blocks++;
        bool ok;
        if (c->shape == SRV_SHAPE_MESSAGES) {
            ok = emit(c, "content_block_start",
                      json_pack("{s:i,s:{s:s,s:s,s:s,s:{}}}", "index", idx, "content_block", "type", "tool_use", "id", id,
                                "name", name, "input"), sink, ud) &&
                 emit(c, "content_block_delta",
                      json_pack("{s:i,s:{s:s,s:s}}", "index", idx, "delta", "type", "input_json_delta", "partial_json", args),
                      sink, ud) &&
                 emit(c, "content_block_stop", json_pack("{s:i}", "index", idx), sink, ud);
        } else {
            json_t *done = call_item(id, name, args, "completed");
            const char *item_id = json_string_value(json_object_get(done, "id"));
            ok = emit(c, "response.output_item.added",
                      json_pack("{s:i,s:o}", "output_index", idx, "item", call_item(id, name, "", "in_progress")), sink, ud) &&
                 emit(c, "response.function_call_arguments.delta",
                      json_pack("{s:s,s:i,s:s}", "item_id", item_id, "output_index", idx, "delta", args), sink, ud) &&
                 emit(c, "response.function_call_arguments.done",
                      json_pack("{s:s,s:i,s:s}", "item_id", item_id, "output_index", idx, "arguments", args), sink, ud);
            json_array_append(c->items, done);
            ok = ok && emit(c, "response.output_item.done", json_pack("{s:i,s:o}", "output_index", idx, "item", done), sink, ud);
        }
        free(args);
        if (!ok) return false;
    }
    return true;
}

bool srv_compat_finish(srv_compat *c, bool length, const json_t *calls, int input_tokens, int output_tokens,
                       srv_sink_fn sink, void *ud) {
    if (!open_stream(c, sink, ud)) return false;
    bool called = json_array_size(calls) > 0;
    /* an answer with no text still has its (empty) text block / message item, unless it
     * is only calls */
    if (!c->had_text && !called && !open_block(c, 2, sink, ud)) return false;
    if (!close_block(c, sink, ud)) return false;
    if (called && !stream_calls(c, calls, sink, ud)) return false;
    if (c->shape == SRV_SHAPE_MESSAGES) {
        json_t *d = json_pack("{s:{s:s,s:o},s:o}", "delta", "stop_reason", stop_reason(c, called, length),
                              "stop_sequence", stop_sequence(c, called, length), "usage",
                              usage_json(c, input_tokens, output_tokens));
        return emit(c, "message_delta", d, sink, ud) && emit(c, "message_stop", json_object(), sink, ud);
    }
    json_t *r = response_obj(c, length ? "incomplete" : "completed", json_incref(c->items),
                             usage_json(c, input_tokens, output_tokens), length);
    return emit(c, length ? "response.incomplete" : "response.completed", json_pack("{s:o}", "response", r), sink, ud);
}

bool srv_compat_error(srv_compat *c, const char *message, srv_sink_fn sink, void *ud) {
    if (c->shape == SRV_SHAPE_MESSAGES)
        return emit(c, "error", json_pack("{s:{s:s,s:s}}", "error", "type", "api_error", "message", message), sink, ud);
    return emit(c, "error", json_pack("{s:n,s:s,s:n}", "code", "message", message, "param"), sink, ud);
}

json_t *srv_compat_whole(srv_compat *c, const char *content, const char *thinking, const json_t *calls, bool length,
                         int input_tokens, int output_tokens) {
    bool called = json_array_size(calls) > 0, text = content && content[0];
    size_t i;
    const json_t *call;
    if (c->shape == SRV_SHAPE_MESSAGES) {
        json_t *blocks = json_array();
        if (thinking && thinking[0])
            json_array_append_new(blocks, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", thinking, "signature", ""));
        if (text || !called) json_array_append_new(blocks, json_pack("{s:s,s:s}", "type", "text", "text", content ? content : ""));
        json_array_foreach(calls, i, call) {
            const json_t *fn = json_object_get(call, "function");
            const json_t *args = json_object_get(fn, "arguments");
            const char *id = json_string_value(json_object_get(call, "id")), *name = json_string_value(json_object_get(fn, "name"));
            if (id && name && json_is_object(args))
                json_array_append_new(blocks, json_pack("{s:s,s:s,s:s,s:O}", "type", "tool_use", "id", id, "name", name,
                                                        "input", args));
        }
        return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:o}", "id", c->id, "type", "message", "role", "assistant", "model",
                         c->model, "content", blocks, "stop_reason", stop_reason(c, called, length),
                         "stop_sequence", stop_sequence(c, called, length), "usage",
                         usage_json(c, input_tokens, output_tokens));
    }
    json_t *out = json_array();
    if (thinking && thinking[0]) json_array_append_new(out, reasoning_item(c, thinking));
    if (text || !called) json_array_append_new(out, message_item(c, content ? content : "", "completed"));
    json_array_foreach(calls, i, call) {
        const char *id, *name;
        char *args;
        if (call_parts(call, &id, &name, &args)) json_array_append_new(out, call_item(id, name, args, "completed"));
        free(args);
    }
    return response_obj(c, length ? "incomplete" : "completed", out, usage_json(c, input_tokens, output_tokens), length);
}

/*
 * req_grammar.c: the request fields of structured output (request.c's extension slot
 * SRV_EXT_GRAMMAR), read and checked when the request is parsed, so a bad schema is
 * a 400 naming the problem before any model loads:
 *   Ollama  (api/generate, api/chat)  format: "json" | a JSON schema object
 *   OpenAI  (v1/chat/completions, v1/completions)  response_format:
 *           {"type":"text"} | {"type":"json_object"} (format {"type":"object"}) |
 *           {"type":"json_schema","json_schema":{"schema":{...}, ...}}
 *           tool_choice "required" | {"type":"function","function":{"name":..}}
 *           with tools (chat): the call is forced with the grammar engine
 *           (nook_tool_grammar); "auto"/"none" (and Ollama, which has no
 *           tool_choice) need nothing here.
 * srv_grammar_apply turns the slot into nook_gen_params.format / .grammar once the
 * model (and so its chat template's tool-call format) is known.
 */
#include "server/request.h"
#include "grammar/grammar.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *msg, size_t cap, const char *fmt, const char *a) {
    if (cap) snprintf(msg, cap, fmt, a);
    return 400;
}

/* Out of memory is the server's failure, not the request's: 500. */
static int oom(char *msg, size_t cap, const char *field) {
    if (cap) snprintf(msg, cap, "%s: out of memory", field);
    return 500;
}

/* A schema given as a JSON value: kept as text after the converter accepted it. */
static int take_schema(const json_t *schema, const char *field, char **out, char *msg, size_t cap) {
    char *txt = json_dumps(schema, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!txt) return oom(msg, cap, field);
    char *g = NULL;
    nook_error e = { 0 };
    if (nk_schema_to_gbnf(txt, strlen(txt), &g, &e) != NOOK_OK) {
        free(txt);
        if (e.code == NOOK_ENOMEM) return oom(msg, cap, field);
        if (cap) snprintf(msg, cap, "field '%s': %s", field, e.msg);
        return 400;
    }
    nk_free(g);
    *out = nk_strdup(txt);
    free(txt);
    return *out ? 0 : oom(msg, cap, field);
}

int srv_grammar_parse(const json_t *body, srv_kind kind, void **slot, char *msg, size_t cap) {
    srv_grammar_req r = { 0 };
    int st = 0;
    if (kind == SRV_GENERATE || kind == SRV_CHAT) {
        const json_t *f = json_object_get(body, "format");
        if (json_is_string(f)) {
            const char *s = json_string_value(f);
            if (strcmp(s, "json") == 0) {
                if (!(r.format = nk_strdup("json"))) return oom(msg, cap, "format");
            }
            else if (s[0]) return bad(msg, cap, "field 'format': '%.40s' (want \"json\" or a JSON schema)", s);
        } else if (json_is_object(f) || json_is_true(f)) {
            st = take_schema(f, "format", &r.format, msg, cap);
        } else if (f && !json_is_null(f)) return bad(msg, cap, "field 'format' must be \"json\" or a JSON schema%s", "");
    } else if (kind == SRV_OAI_CHAT || kind == SRV_OAI_COMPLETION) {
        const json_t *rf = json_object_get(body, "response_format");
        if (rf && !json_is_null(rf)) {
            const char *t = json_string_value(json_object_get(rf, "type"));
            if (!json_is_object(rf) || !t) return bad(msg, cap, "field 'response_format' must be an object with a 'type'%s", "");
            /* json_object: a JSON object (OpenAI's promise), not any JSON value */
            if (strcmp(t, "json_object") == 0) {
                if (!(r.format = nk_strdup("{\"type\":\"object\"}"))) return oom(msg, cap, "response_format");
            }
            else if (strcmp(t, "json_schema") == 0) {
                const json_t *js = json_object_get(json_object_get(rf, "json_schema"), "schema");
                if (!js) return bad(msg, cap, "field 'response_format.json_schema.schema' is required%s", "");
                st = take_schema(js, "response_format.json_schema.schema", &r.format, msg, cap);
            } else if (strcmp(t, "text") != 0)
                return bad(msg, cap, "field 'response_format': unknown type '%.40s'", t);
        }
        const json_t *tc = json_object_get(body, "tool_choice"), *tools = json_object_get(body, "tools");
        const char *choice = NULL;
        if (json_is_string(tc)) {
            choice = json_string_value(tc);
            if (strcmp(choice, "auto") && strcmp(choice, "none") && strcmp(choice, "required"))
                return bad(msg, cap, "field 'tool_choice': '%.40s' (auto, none, required or a function)", choice);
        } else if (json_is_object(tc)) {
            choice = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
            if (!choice) return bad(msg, cap, "field 'tool_choice' names no function%s", "");
        } else if (tc && !json_is_null(tc)) return bad(msg, cap, "field 'tool_choice' must be a string or an object%s", "");
        if (!st && choice && (strcmp(choice, "required") == 0 || json_is_object(tc))) {
            if (!json_is_array(tools) || json_array_size(tools) == 0)
                return bad(msg, cap, "field 'tool_choice' forces a call but 'tools' is empty%s", "");
            if (r.format) { nk_free(r.format); return bad(msg, cap, "tool_choice %s and response_format together", choice); }
            char *tj = json_dumps(tools, JSON_COMPACT | JSON_PRESERVE_ORDER);
            char *g = NULL;
            nook_error e = { 0 };
            /* checked now with the generic format; the model's own is applied later */
            if (!tj || nook_tool_grammar(NULL, tj, choice, &g, &e) != NOOK_OK) {
                free(tj);
                if (!tj || e.code == NOOK_ENOMEM) return oom(msg, cap, "tools");
                if (cap) snprintf(msg, cap, "field 'tools': %s", e.msg);
                return 400;
            }
            nk_free(g);
            r.tools_json = nk_strdup(tj);
            r.tool_choice = nk_strdup(choice);
            free(tj);
            if (!r.tools_json || !r.tool_choice) {
                nk_free(r.tools_json);
                nk_free(r.tool_choice);
                return oom(msg, cap, "tools");
            }
        }
    }
    if (st) { nk_free(r.format); return st; }
    if (!r.format && !r.tools_json) return 0;
    srv_grammar_req *p = nk_malloc(sizeof *p);
    if (!p) { nk_free(r.format); nk_free(r.tools_json); nk_free(r.tool_choice); return oom(msg, cap, "format"); }
    *p = r;
    *slot = p;
    return 0;
}

void srv_grammar_free(void *slot) {
    srv_grammar_req *r = slot;
    if (!r) return;
    nk_free(r->format); nk_free(r->tools_json); nk_free(r->tool_choice); nk_free(r->grammar);
    nk_free(r);
}

nook_status srv_grammar_apply(void *slot, const char *chat_template, nook_gen_params *gp, nook_error *err) {
    srv_grammar_req *r = slot;
    if (!r) return NOOK_OK;
    if (r->format) { gp->format = r->format; return NOOK_OK; }
    if (!r->grammar) {
        nook_status st = nook_tool_grammar(chat_template, r->tools_json, r->tool_choice, &r->grammar, err);
        if (st != NOOK_OK) return st;
    }
    gp->grammar = r->grammar;
    return NOOK_OK;
}

/* ---- tool calls in the reply ------------------------------------------------------------------ */

const json_t *srv_tools_offered(const srv_gen_request *q) {
    if (q->kind != SRV_CHAT && q->kind != SRV_OAI_CHAT) return NULL;
    const json_t *tools = json_object_get(q->body, "tools");
    if (!json_is_array(tools) || json_array_size(tools) == 0) return NULL;
    const json_t *tc = json_object_get(q->body, "tool_choice");
    if (json_is_string(tc) && strcmp(json_string_value(tc), "none") == 0) return NULL;
    return tools;
}

json_t *srv_tool_calls_for(srv_kind kind, const json_t *calls, bool stream) {
    json_t *out = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c) {
        const json_t *fn = json_object_get(c, "function");
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *args = json_object_get(fn, "arguments");
        if (!out || !id || !name || !args) continue;   /* nook_tool_parse always sets them */
        json_t *o;
        if (kind == SRV_OAI_CHAT) {
            /* OpenAI: arguments as JSON text */
            char *txt = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
            o = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name", name,
                          "arguments", txt ? txt : "{}");
            free(txt);
            if (o && stream) json_object_set_new(o, "index", json_integer((json_int_t)i));
        } else {
            /* Ollama: arguments as an object, the call's position as function.index */
            o = json_pack("{s:s,s:{s:I,s:s,s:O}}", "id", id, "function", "index", (json_int_t)i, "name", name,
                          "arguments", args);
        }
        if (o) json_array_append_new(out, o);
    }
    return out;
}

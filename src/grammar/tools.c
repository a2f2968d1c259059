/*
 * tools.c: tool calls, the model-family parts: which format a chat template asks
 * the model to call tools in, the parser that turns the model's text back into
 * structured calls, and the grammar that forces a call (OpenAI tool_choice
 * "required" or a named function).
 *
 * Families (detected from the template text, as llama.cpp's chat-parser does):
 *   hermes   Qwen2.5/Qwen3 and other Hermes-style templates: each call is
 *            <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
 *   llama3   Llama 3.1/3.2: a JSON object {"name": ..., "parameters": {...}}, maybe
 *            after <|python_tag|>, several separated by ';' or newlines
 *   mistral  [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]; [TOOL_CALLS] is a
 *            control token that text output may not show, so a bare array of calls
 *            at the start is taken as well
 *   generic  anything else. The fallback (also tried for the others when their own
 *            markers are absent): the whole answer (or a ```json fence in it) is one
 *            JSON object with "name" and "arguments"/"parameters", or an array of
 *            them.
 * Parsed calls come back as a JSON array in OpenAI's shape with arguments as an
 * object: [{"id": "call_...", "type": "function", "function": {"name": ..,
 * "arguments": {..}}}]; ids are derived from the call (name, arguments, position),
 * so the same text gives the same ids. Text outside the calls is the content.
 */
#include "grammar/gtext.h"
#include "nook.h"

#include <jansson.h>
#include <stdlib.h>

typedef enum { FAM_GENERIC, FAM_HERMES, FAM_LLAMA3, FAM_MISTRAL } family;

static family family_of(const char *tmpl) {
    if (!tmpl) return FAM_GENERIC;
    if (strstr(tmpl, "<tool_call>")) return FAM_HERMES;
    if (strstr(tmpl, "[TOOL_CALLS]")) return FAM_MISTRAL;
    if (strstr(tmpl, "<|python_tag|>") || strstr(tmpl, "dictionary of argument name") || strstr(tmpl, "<|eom_id|>"))
        return FAM_LLAMA3;
    return FAM_GENERIC;
}

const char *nook_tool_family(const char *chat_template) {
    static const char *names[] = { "generic", "hermes", "llama3", "mistral" };
    return names[family_of(chat_template)];
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

/* A call object -> {"id","type","function":{"name","arguments"}}; NULL if it is not one. */
static json_t *to_call(json_t *o, size_t index) {
    if (!json_is_object(o)) return NULL;
    json_t *fn = json_object_get(o, "function");
    if (json_is_object(fn)) o = fn;                /* already OpenAI-shaped */
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *args = json_object_get(o, "arguments");
    if (!args) args = json_object_get(o, "parameters");
    if (!name || !name[0]) return NULL;
    json_t *a;
    if (!args) a = json_object();
    else if (json_is_string(args)) {                /* arguments given as a JSON string */
        a = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
        if (!json_is_object(a)) { json_decref(a); return NULL; }
    } else if (json_is_object(args)) a = json_incref(args);
    else return NULL;
    char *txt = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = 1469598103934665603ull ^ index;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = txt ? txt : ""; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    free(txt);
    char id[32];
    snprintf(id, sizeof id, "call_%08llx", (unsigned long long)(h & 0xFFFFFFFFull));
    return json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", id, "type", "function", "function", "name", name, "arguments", a);
}

/* Appends the call(s) in v (an object or an array of them) to calls; false if v holds
 * anything that is not a call. */
static bool add_calls(json_t *calls, json_t *v) {
    if (json_is_array(v)) {
        if (json_array_size(v) == 0) return false;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {   /* all or nothing: check every element first */
            json_t *t = to_call(x, 0);
            if (!t) return false;
            json_decref(t);
        }
        json_array_foreach(v, i, x) json_array_append_new(calls, to_call(x, json_array_size(calls)));
        return true;
    }
    json_t *c = to_call(v, json_array_size(calls));
    if (!c) return false;
    json_array_append_new(calls, c);
    return true;
}

/* Parses one JSON value at s (after blanks); *end receives where it stopped. */
static json_t *json_at(const char *s, size_t len, size_t *end) {
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) i++;
    if (i == len || (s[i] != '{' && s[i] != '[')) return NULL;
    json_error_t je;
    json_t *v = json_loadb(s + i, len - i, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (!v) return NULL;
    *end = i + (size_t)je.position;
    return v;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* Hermes: every <tool_call> ... </tool_call> block; the text outside is content. */
static bool parse_hermes(const char *s, size_t len, json_t *calls, sbuf *content) {
    static const char open[] = "<tool_call>", close[] = "</tool_call>";
    size_t pos = 0;
    bool any = false;
    while (pos < len) {
        const char *o = memmem(s + pos, len - pos, open, sizeof open - 1);
        if (!o) break;
        size_t ob = (size_t)(o - s), body = ob + sizeof open - 1;
        const char *c = memmem(s + body, len - body, close, sizeof close - 1);
        size_t body_end = c ? (size_t)(c - s) : len;
        size_t jend;
        json_t *v = json_at(s + body, body_end - body, &jend);
        bool ok = v && blank(s + body + jend, body_end - body - jend) && add_calls(calls, v);
        json_decref(v);
        if (!ok) break;                      /* a malformed block stays content */
        sb_put(content, s + pos, ob - pos);
        any = true;
        pos = c ? body_end + sizeof close - 1 : len;
    }
    sb_put(content, s + pos, len - pos);
    return any;
}

/* A run of JSON calls at the start (after an optional marker), separated by ';',
 * ',' or blanks; the rest is content. */
static bool parse_leading(const char *s, size_t len, const char *marker, json_t *calls, sbuf *content) {
    size_t pos = 0;
    while (pos < len && (s[pos] == ' ' || s[pos] == '\n')) pos++;
    if (marker && len - pos >= strlen(marker) && memcmp(s + pos, marker, strlen(marker)) == 0) pos += strlen(marker);
    bool any = false;
    for (;;) {
        size_t end;
        json_t *v = json_at(s + pos, len - pos, &end);
        if (!v) break;
        bool ok = add_calls(calls, v);
        json_decref(v);
        if (!ok) break;
        any = true;
        pos += end;
        while (pos < len && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == ';' || s[pos] == ',')) pos++;
    }
    if (!any) return false;
    sb_put(content, s + pos, len - pos);
    return true;
}

/* Fallback: the whole text, or a ```json fence, is a call or an array of calls. */
static bool parse_fallback(const char *s, size_t len, json_t *calls, sbuf *content) {
    const char *f = memmem(s, len, "```json", 7);
    if (f) {
        size_t b = (size_t)(f - s) + 7;
        const char *e = memmem(s + b, len - b, "```", 3);
        if (e) {
            size_t end;
            json_t *v = json_at(s + b, (size_t)(e - s) - b, &end);
            bool ok = v && blank(s + b + end, (size_t)(e - s) - b - end) && add_calls(calls, v);
            json_decref(v);
            if (ok) {
                sb_put(content, s, (size_t)(f - s));
                sb_put(content, e + 3, len - (size_t)(e + 3 - s));
                return true;
            }
        }
    }
    size_t end;
    json_t *v = json_at(s, len, &end);
    bool ok = v && blank(s + end, len - end) && add_calls(calls, v);
    json_decref(v);
    return ok;
}

nook_status nook_tool_parse(const char *chat_template, const char *text, size_t len, char **content,
                            char **calls_json, nook_error *err) {
    if (!text || !content || !calls_json) return nk_fail(err, NOOK_EINVAL, "tool_parse: bad arguments");
    *content = *calls_json = NULL;
    json_t *calls = json_array();
    sbuf c = { 0 };
    if (!calls) return nk_fail(err, NOOK_ENOMEM, "tool_parse: out of memory");
    bool found = false;
    switch (family_of(chat_template)) {
    case FAM_HERMES:  found = parse_hermes(text, len, calls, &c); break;
    case FAM_LLAMA3:  found = parse_leading(text, len, "<|python_tag|>", calls, &c); break;
    case FAM_MISTRAL: found = parse_leading(text, len, "[TOOL_CALLS]", calls, &c); break;
    default: break;
    }
    if (!found) {
        json_array_clear(calls);
        sb_free(&c);
        found = parse_fallback(text, len, calls, &c);
    }
    if (!found) { sb_free(&c); sb_put(&c, text, len); }
    if (!c.p) sb_put(&c, "", 0);
    /* content around calls: trimmed of the blank lines the formats put around them */
    size_t a = 0, b = c.n;
    if (found) {
        while (a < b && (c.p[a] == ' ' || c.p[a] == '\n')) a++;
        while (b > a && (c.p[b - 1] == ' ' || c.p[b - 1] == '\n')) b--;
    }
    *content = c.oom ? NULL : nk_strndup(c.p + a, b - a);
    sb_free(&c);
    if (found) {
        char *t = json_dumps(calls, JSON_COMPACT | JSON_PRESERVE_ORDER);
        *calls_json = t ? nk_strdup(t) : NULL;
        free(t);
    }
    json_decref(calls);
    if (!*content || (found && !*calls_json)) {
        nk_free(*content); nk_free(*calls_json);
        *content = *calls_json = NULL;
        return nk_fail(err, NOOK_ENOMEM, "tool_parse: out of memory");
    }
    return NOOK_OK;
}

/* ---- forcing a call ---------------------------------------------------------------------------------------- */

nook_status nook_tool_grammar(const char *chat_template, const char *tools_json, const char *tool_choice,
                              char **gbnf, nook_error *err) {
    if (!tools_json || !gbnf) return nk_fail(err, NOOK_EINVAL, "tool_grammar: bad arguments");
    *gbnf = NULL;
    json_error_t je;
    json_t *tools = json_loads(tools_json, 0, &je);
    if (!json_is_array(tools)) {
        json_decref(tools);
        return nk_fail(err, NOOK_EINVAL, "tools: not a JSON array (%s)", je.text);
    }
    family fam = family_of(chat_template);
    const char *args_key = fam == FAM_LLAMA3 ? "parameters" : "arguments";
    bool named = tool_choice && strcmp(tool_choice, "required") != 0 && strcmp(tool_choice, "auto") != 0;
    json_t *alts = json_array();
    size_t i;
    json_t *t;
    nook_status st = NOOK_OK;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        if (!json_is_object(fn)) fn = t;
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name) { st = nk_fail(err, NOOK_EINVAL, "tools[%zu]: no function name", i); break; }
        if (named && strcmp(name, tool_choice) != 0) continue;
        json_t *params = json_object_get(fn, "parameters");
        json_t *call = json_pack("{s:s, s:{s:{s:s}, s:O}, s:[s,s]}", "type", "object", "properties",
                                 "name", "const", name, args_key,
                                 params ? params : json_pack("{s:s}", "type", "object"),
                                 "required", "name", args_key);
        if (!params) json_decref(json_object_get(json_object_get(call, "properties"), args_key));
        if (!call) { st = nk_fail(err, NOOK_ENOMEM, "tools: out of memory"); break; }
        json_array_append_new(alts, call);
    }
    if (st == NOOK_OK && json_array_size(alts) == 0)
        st = nk_fail(err, named ? NOOK_ENOTFOUND : NOOK_EINVAL, named ? "tool_choice names '%s', which is not among the tools"
                                                                      : "tool_choice requires a call but no tools were given%s", named ? tool_choice : "");
    char *schema = NULL, *g = NULL;
    if (st == NOOK_OK) {
        json_t *root = json_array_size(alts) == 1 ? json_incref(json_array_get(alts, 0)) : json_pack("{s:O}", "anyOf", alts);
        if (fam == FAM_MISTRAL) {
            json_t *arr = json_pack("{s:s, s:o, s:i, s:i}", "type", "array", "items", root, "minItems", 1, "maxItems", 1);
            root = arr;
        }
        schema = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!schema) st = nk_fail(err, NOOK_ENOMEM, "tools: out of memory");
    }
    if (st == NOOK_OK) {
        st = nk_schema_to_gbnf(schema, strlen(schema), &g, err);
        if (st != NOOK_OK) nk_prefix(err, "tool parameters: ");
    }
    if (st == NOOK_OK) {
        /* the converter's start rule becomes "call"; the family's wrapper is the root */
        sbuf b = { 0 };
        if (fam == FAM_HERMES) sb_puts(&b, "root ::= \"<tool_call>\\n\" call \"\\n</tool_call>\"\n");
        else sb_puts(&b, "root ::= call\n");
        sb_puts(&b, "call");
        sb_puts(&b, g + 4);                 /* g starts with "root ::= " */
        nk_free(g);
        if (b.oom) { sb_free(&b); st = nk_fail(err, NOOK_ENOMEM, "tools: out of memory"); }
        else *gbnf = b.p;
    }
    free(schema);
    json_decref(alts);
    json_decref(tools);
    return st;
}

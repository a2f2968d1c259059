/*
 * request.c: JSON request bodies -> srv_gen_request (see request.h for the rules).
 * Every branch here reads bytes from the network: no assert, no trust in types or
 * sizes; the fuzz target tests/fuzz/fuzz_request.c drives this file.
 */
#include "server/request.h"
#include "router/router.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct perr {
    char *msg;
    size_t cap;
} perr;

static int fail(perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(perr *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->cap, fmt, ap);
    va_end(ap);
    return 400;
}
static int oom(perr *e) {
    snprintf(e->msg, e->cap, "out of memory");
    return 500;
}

/* ---- extension fields (other modules; see request.h) ----------------------------------- */

typedef struct srv_field_ext {
    const char *name;
    /* Reads this module's fields from body into *slot. 0, or 400 with msg. */
    int (*parse)(const json_t *body, srv_kind kind, void **slot, char *msg, size_t cap);
    void (*free)(void *slot);
} srv_field_ext;

/* router: "route": {"policy", "task", "local_only"} -> ext[SRV_EXT_ROUTE] (nk_route_req) */
static int route_parse(const json_t *body, srv_kind kind, void **slot, char *msg, size_t cap) {
    return nk_route_field_parse(body, (int)kind, slot, msg, cap);
}

static const srv_field_ext k_exts[SRV_EXT_COUNT] = {
    [SRV_EXT_GRAMMAR] = { "grammar", srv_grammar_parse, srv_grammar_free },
    [SRV_EXT_ROUTE] = { "route", route_parse, nk_route_field_free },
    /* free slots: 2, 3 */
};

/* ---- typed getters: absent or null leaves *dst as it is -------------------------------- */

static bool absent(const json_t *v) { return !v || json_is_null(v); }

static int get_str(const json_t *o, const char *key, char **dst, perr *e) {
    const json_t *v = json_object_get(o, key);
    if (absent(v)) return 0;
    if (!json_is_string(v)) return fail(e, "field '%s' must be a string", key);
    char *s = nk_strndup(json_string_value(v), json_string_length(v));
    if (!s) return oom(e);
    nk_free(*dst);
    *dst = s;
    return 0;
}

static int get_bool(const json_t *o, const char *key, bool *dst, perr *e) {
    const json_t *v = json_object_get(o, key);
    if (absent(v)) return 0;
    if (!json_is_boolean(v)) return fail(e, "field '%s' must be true or false", key);
    *dst = json_is_true(v);
    return 0;
}

/* A number as an integer in [lo, hi]. strict: must be integral (typed Go struct fields);
 * otherwise a real is truncated (Ollama's options map). */
static int num_to_int(const json_t *v, const char *what, const char *key, bool strict, long long lo, long long hi,
                      long long *out, perr *e) {
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        if (x < lo || x > hi) return fail(e, "%s '%s' must be between %lld and %lld", what, key, lo, hi);
        *out = x;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || (strict && d != floor(d)))
            return fail(e, "%s '%s' must be an integer", what, key);
        if (d < (double)lo || d > (double)hi)
            return fail(e, "%s '%s' must be between %lld and %lld", what, key, lo, hi);
        *out = (long long)d;
        return 0;
    }
    return fail(e, "%s '%s' must be a number", what, key);
}

static int get_int(const json_t *o, const char *key, long long lo, long long hi, int *dst, bool *given, perr *e) {
    const json_t *v = json_object_get(o, key);
    if (absent(v)) return 0;
    long long x;
    int st = num_to_int(v, "field", key, true, lo, hi, &x, e);
    if (st) return st;
    *dst = (int)x;
    if (given) *given = true;
    return 0;
}

/* A string or an array of strings into a fresh NULL-free list. */
static int get_str_list(const json_t *v, const char *key, char ***out, int *n_out, int max, perr *e) {
    size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_string(v) && !json_is_array(v)) return fail(e, "field '%s' must be a string or a list of strings", key);
    if (n > (size_t)max) return fail(e, "field '%s' has %zu entries (at most %d)", key, n, max);
    char **list = n ? nk_calloc(n, sizeof *list) : NULL;
    if (n && !list) return oom(e);
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(it)) {
            for (size_t j = 0; j < i; j++) nk_free(list[j]);
            nk_free(list);
            return fail(e, "field '%s' must be a string or a list of strings", key);
        }
        list[i] = nk_strndup(json_string_value(it), json_string_length(it));
        if (!list[i]) {
            for (size_t j = 0; j < i; j++) nk_free(list[j]);
            nk_free(list);
            return oom(e);
        }
    }
    *out = list;
    *n_out = (int)n;
    return 0;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) nk_free(l[i]);
    nk_free(l);
}

/* ---- options ------------------------------------------------------------------------------- */

static int opt_float(const json_t *v, const char *key, float *dst, unsigned bit, srv_options *o, perr *e) {
    if (!json_is_number(v)) return fail(e, "option '%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || fabs(d) > 1e30) return fail(e, "option '%s' is out of range", key);
    *dst = (float)d;
    o->set |= bit;
    return 0;
}

static int opt_int(const json_t *v, const char *key, long long lo, long long hi, int *dst, unsigned bit,
                   srv_options *o, perr *e) {
    long long x;
    int st = num_to_int(v, "option", key, false, lo, hi, &x, e);
    if (st) return st;
    *dst = (int)x;
    o->set |= bit;
    return 0;
}

/* One option by name; unknown names are ignored as Ollama does (it logs them). */
static int set_option(srv_options *o, const char *key, const json_t *v, perr *e) {
    if (json_is_null(v)) return 0;
    if (!strcmp(key, "num_ctx")) {
        long long x;
        int st = num_to_int(v, "option", key, false, 0, 1 << 24, &x, e);
        if (st) return st;
        if (x > 0) { o->num_ctx = (int)x; o->set |= SRV_OPT_NUM_CTX; }
        return 0;
    }
    if (!strcmp(key, "num_predict")) return opt_int(v, key, -2, INT_MAX, &o->num_predict, SRV_OPT_NUM_PREDICT, o, e);
    if (!strcmp(key, "temperature")) return opt_float(v, key, &o->temperature, SRV_OPT_TEMPERATURE, o, e);
    if (!strcmp(key, "top_k")) return opt_int(v, key, INT_MIN, INT_MAX, &o->top_k, SRV_OPT_TOP_K, o, e);
    if (!strcmp(key, "top_p")) return opt_float(v, key, &o->top_p, SRV_OPT_TOP_P, o, e);
    if (!strcmp(key, "min_p")) return opt_float(v, key, &o->min_p, SRV_OPT_MIN_P, o, e);
    if (!strcmp(key, "repeat_penalty")) return opt_float(v, key, &o->repeat_penalty, SRV_OPT_REPEAT_PENALTY, o, e);
    if (!strcmp(key, "repeat_last_n")) return opt_int(v, key, -1, INT_MAX, &o->repeat_last_n, SRV_OPT_REPEAT_LAST_N, o, e);
    if (!strcmp(key, "presence_penalty")) return opt_float(v, key, &o->presence_penalty, SRV_OPT_PRESENCE_PENALTY, o, e);
    if (!strcmp(key, "frequency_penalty")) return opt_float(v, key, &o->frequency_penalty, SRV_OPT_FREQUENCY_PENALTY, o, e);
    if (!strcmp(key, "num_thread")) return opt_int(v, key, 0, 1024, &o->num_thread, SRV_OPT_NUM_THREAD, o, e);
    if (!strcmp(key, "num_keep")) return opt_int(v, key, -1, INT_MAX, &o->num_keep, SRV_OPT_NUM_KEEP, o, e);
    if (!strcmp(key, "num_batch")) return opt_int(v, key, 1, 1 << 20, &o->num_batch, SRV_OPT_NUM_BATCH, o, e);
    if (!strcmp(key, "seed")) {
        long long x;
        int st = num_to_int(v, "option", key, false, LLONG_MIN, LLONG_MAX, &x, e);
        if (st) return st;
        o->seed = x;
        o->set |= SRV_OPT_SEED;
        return 0;
    }
    if (!strcmp(key, "stop")) {
        char **l = NULL;
        int n = 0;
        int st = get_str_list(v, "stop", &l, &n, 64, e);
        if (st) return st;
        free_list(o->stop, o->n_stop);
        o->stop = l;
        o->n_stop = n;
        o->set |= SRV_OPT_STOP;
        return 0;
    }
    /* Known load-time or sampling options nook does not use: type-checked, then ignored. */
    static const char *const k_num_ignored[] = { "typical_p", "num_gpu", "main_gpu", "mirostat", "mirostat_tau",
                                                  "mirostat_eta", "tfs_z", "draft_num_predict" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_num_ignored); i++)
        if (!strcmp(key, k_num_ignored[i]) && !json_is_number(v))
            return fail(e, "option '%s' must be a number", key);
    static const char *const k_bool_ignored[] = { "use_mmap", "use_mlock", "numa", "low_vram", "f16_kv",
                                                   "penalize_newline", "vocab_only", "logits_all" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_bool_ignored); i++)
        if (!strcmp(key, k_bool_ignored[i]) && !json_is_boolean(v))
            return fail(e, "option '%s' must be true or false", key);
    return 0;
}

static int parse_options(const json_t *body, srv_options *o, perr *e) {
    const json_t *opts = json_object_get(body, "options");
    if (absent(opts)) return 0;
    if (!json_is_object(opts)) return fail(e, "field 'options' must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)opts, k, v) {
        int st = set_option(o, k, v, e);
        if (st) return st;
    }
    return 0;
}

int srv_options_layer(srv_options *o, const json_t *params, char *msg, size_t cap) {
    if (!json_is_object(params)) return 0;
    perr e = { msg, cap };
    srv_options d = { 0 };
    const char *k;
    const json_t *v;
    int st = 0;
    json_object_foreach((json_t *)params, k, v) {
        if ((st = set_option(&d, k, v, &e))) break;
    }
    if (!st) {
        unsigned take = d.set & ~o->set;
#define TAKE(bit, field) if (take & (bit)) o->field = d.field
        TAKE(SRV_OPT_NUM_CTX, num_ctx); TAKE(SRV_OPT_NUM_PREDICT, num_predict); TAKE(SRV_OPT_TEMPERATURE, temperature);
        TAKE(SRV_OPT_TOP_K, top_k); TAKE(SRV_OPT_TOP_P, top_p); TAKE(SRV_OPT_MIN_P, min_p);
        TAKE(SRV_OPT_REPEAT_PENALTY, repeat_penalty); TAKE(SRV_OPT_REPEAT_LAST_N, repeat_last_n);
        TAKE(SRV_OPT_PRESENCE_PENALTY, presence_penalty); TAKE(SRV_OPT_FREQUENCY_PENALTY, frequency_penalty);
        TAKE(SRV_OPT_SEED, seed); TAKE(SRV_OPT_NUM_THREAD, num_thread); TAKE(SRV_OPT_NUM_KEEP, num_keep);
        TAKE(SRV_OPT_NUM_BATCH, num_batch);
#undef TAKE
        if (take & SRV_OPT_STOP) {   /* moved over */
            o->stop = d.stop;
            o->n_stop = d.n_stop;
            d.stop = NULL;
            d.n_stop = 0;
        }
        o->set |= take;
    }
    free_list(d.stop, d.n_stop);
    return st;
}

/* ---- shared fields ---------------------------------------------------------------------------- */

static int parse_keep_alive(const json_t *body, srv_gen_request *r, perr *e) {
    const json_t *v = json_object_get(body, "keep_alive");
    if (absent(v)) return 0;
    if (json_is_number(v)) {
        double d = json_number_value(v) * 1e9;
        r->keep_alive_ns = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? -INT64_MAX : (int64_t)d;
    } else if (json_is_string(v)) {
        nook_error err;
        if (srv_parse_duration(json_string_value(v), &r->keep_alive_ns, &err))
            return fail(e, "field 'keep_alive': %s", err.msg);
    } else {
        return fail(e, "field 'keep_alive' must be a duration (\"5m\") or a number of seconds");
    }
    r->has_keep_alive = true;
    return 0;
}

static int set_think_level(srv_gen_request *r, const char *s, const char *field, perr *e) {
    if (!strcmp(s, "none") || !strcmp(s, "false")) { r->think = SRV_THINK_OFF; return 0; }
    if (!strcmp(s, "true")) { r->think = SRV_THINK_ON; return 0; }
    if (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high") || !strcmp(s, "max") ||
        !strcmp(s, "minimal")) {
        r->think = SRV_THINK_ON;
        snprintf(r->think_level, sizeof r->think_level, "%s", !strcmp(s, "minimal") ? "low" : s);
        return 0;
    }
    return fail(e, "field '%s': '%.32s' is not one of low, medium, high, max (or true/false)", field, s);
}

static int parse_think(const json_t *body, srv_gen_request *r, perr *e) {
    const json_t *v = json_object_get(body, "think");
    if (absent(v)) return 0;
    if (json_is_boolean(v)) {
        r->think = json_is_true(v) ? SRV_THINK_ON : SRV_THINK_OFF;
        return 0;
    }
    if (json_is_string(v)) return set_think_level(r, json_string_value(v), "think", e);
    return fail(e, "field 'think' must be true, false or a level (\"low\", \"medium\", \"high\")");
}

static int refuse_images(const json_t *v, const char *where, perr *e) {
    if (absent(v)) return 0;
    if (!json_is_array(v)) return fail(e, "field '%s' must be a list", where);
    if (json_array_size(v) > 0)
        return fail(e, "images are not supported: nook runs text-only models ('%s')", where);
    return 0;
}

static int parse_logprobs(const json_t *body, srv_gen_request *r, perr *e) {
    int st;
    const json_t *lp = json_object_get(body, "logprobs");
    if (r->kind == SRV_OAI_COMPLETION && json_is_number(lp)) {
        /* OpenAI's legacy completions: logprobs is the number of alternatives (0..5). */
        long long x;
        if ((st = num_to_int(lp, "field", "logprobs", true, 0, 20, &x, e))) return st;
        r->logprobs = true;
        r->top_logprobs = (int)x;
        return 0;
    }
    if (!absent(lp) && !json_is_boolean(lp)) {
        return fail(e, "field 'logprobs' must be true or false");
    }
    r->logprobs = json_is_true(lp);
    if ((st = get_int(body, "top_logprobs", 0, 20, &r->top_logprobs, NULL, e))) {
        if (json_is_number(json_object_get(body, "top_logprobs")))
            return fail(e, "top_logprobs must be between 0 and 20");
        return st;
    }
    return 0;
}

/* ---- messages ---------------------------------------------------------------------------------- */

/* Message content: a string, null, or (OpenAI) a list of parts whose text parts are
 * joined with "\n"; image and audio parts are refused. */
static int content_text(const json_t *v, char **out, perr *e) {
    if (absent(v)) {
        *out = nk_strdup("");
        return *out ? 0 : oom(e);
    }
    if (json_is_string(v)) {
        *out = nk_strndup(json_string_value(v), json_string_length(v));
        return *out ? 0 : oom(e);
    }
    if (!json_is_array(v)) return fail(e, "message content must be a string or a list of parts");
    size_t total = 1;
    size_t i;
    const json_t *part;
    json_array_foreach(v, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (json_is_string(part)) { total += json_string_length(part) + 1; continue; }
        if (!json_is_object(part) || !type) return fail(e, "a content part must be an object with a 'type'");
        if (!strcmp(type, "image_url") || !strcmp(type, "image") || !strcmp(type, "input_image"))
            return fail(e, "images are not supported: nook runs text-only models");
        if (strcmp(type, "text") && strcmp(type, "input_text"))
            return fail(e, "content parts of type '%.32s' are not supported (only text)", type);
        const json_t *t = json_object_get(part, "text");
        if (!json_is_string(t)) return fail(e, "a text part needs a string 'text'");
        total += json_string_length(t) + 1;
    }
    char *buf = nk_malloc(total);
    if (!buf) return oom(e);
    size_t n = 0;
    json_array_foreach(v, i, part) {
        const json_t *t = json_is_string(part) ? part : json_object_get(part, "text");
        if (n) buf[n++] = '\n';
        memcpy(buf + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

static int parse_messages(const json_t *body, srv_gen_request *r, int max_messages, perr *e) {
    const json_t *ms = json_object_get(body, "messages");
    if (absent(ms)) return 0;
    if (!json_is_array(ms)) return fail(e, "field 'messages' must be a list");
    size_t n = json_array_size(ms);
    if (n > (size_t)max_messages) return fail(e, "too many messages: %zu (the limit is %d)", n, max_messages);
    if (!n) return 0;
    r->messages = nk_calloc(n, sizeof *r->messages);
    if (!r->messages) return oom(e);
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(ms, i);
        srv_message *dm = &r->messages[i];
        r->n_messages = (int)i + 1;
        if (!json_is_object(m)) return fail(e, "messages[%zu] must be an object", i);
        int st;
        if ((st = get_str(m, "role", &dm->role, e))) return st;
        if (!dm->role) return fail(e, "messages[%zu] has no role", i);
        if (strcmp(dm->role, "system") && strcmp(dm->role, "user") && strcmp(dm->role, "assistant") &&
            strcmp(dm->role, "tool") && strcmp(dm->role, "developer") && strcmp(dm->role, "function"))
            return fail(e, "messages[%zu]: unknown role '%.32s'", i, dm->role);
        if (!strcmp(dm->role, "developer")) {   /* OpenAI's newer name for system */
            nk_free(dm->role);
            if (!(dm->role = nk_strdup("system"))) return oom(e);
        }
        if ((st = content_text(json_object_get(m, "content"), &dm->content, e))) {
            size_t l = strlen(e->msg);
            snprintf(e->msg + l, e->cap > l ? e->cap - l : 0, " (messages[%zu])", i);
            return st;
        }
        if ((st = refuse_images(json_object_get(m, "images"), "images", e))) return st;
        if ((st = get_str(m, "thinking", &dm->thinking, e))) return st;
        if (!dm->thinking && (st = get_str(m, "reasoning_content", &dm->thinking, e))) return st;
        if ((st = get_str(m, "tool_name", &dm->tool_name, e))) return st;
        if (!dm->tool_name && (st = get_str(m, "name", &dm->tool_name, e))) return st;
        if ((st = get_str(m, "tool_call_id", &dm->tool_call_id, e))) return st;
        const json_t *tc = json_object_get(m, "tool_calls");
        if (!absent(tc)) {
            if (!json_is_array(tc)) return fail(e, "messages[%zu].tool_calls must be a list", i);
            dm->tool_calls = json_incref((json_t *)tc);
        }
    }
    return 0;
}

/* ---- per endpoint ---------------------------------------------------------------------------- */

static int parse_model(const json_t *body, srv_gen_request *r, perr *e) {
    int st = get_str(body, "model", &r->model, e);
    if (st) return st;
    if (!r->model || !r->model[0]) {
        if ((st = get_str(body, "name", &r->model, e))) return st;
    }
    if (!r->model || !r->model[0]) return fail(e, "model is required");
    return 0;
}

static int parse_ollama_gen(const json_t *body, srv_gen_request *r, int max_messages, perr *e) {
    int st;
    r->stream = true;
    if ((st = get_bool(body, "stream", &r->stream, e)) || (st = parse_keep_alive(body, r, e)) ||
        (st = parse_think(body, r, e)) || (st = parse_logprobs(body, r, e)) || (st = parse_options(body, &r->opt, e)) ||
        (st = get_bool(body, "raw", &r->raw, e)) || (st = get_str(body, "system", &r->system, e)) ||
        (st = get_str(body, "template", &r->template_text, e)) || (st = get_str(body, "suffix", &r->suffix, e)) ||
        (st = get_str(body, "prompt", &r->prompt, e)))
        return st;
    if ((st = refuse_images(json_object_get(body, "images"), "images", e))) return st;
    if (r->kind == SRV_CHAT) return parse_messages(body, r, max_messages, e);
    const json_t *ctx = json_object_get(body, "context");
    if (!absent(ctx)) {
        if (!json_is_array(ctx)) return fail(e, "field 'context' must be a list of token ids");
        size_t n = json_array_size(ctx);
        if (n > (1u << 24)) return fail(e, "field 'context' is too long");
        if (n) {
            r->context = nk_alloc_array(n, sizeof *r->context);
            if (!r->context) return oom(e);
            for (size_t i = 0; i < n; i++) {
                const json_t *t = json_array_get(ctx, i);
                if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
                    return fail(e, "field 'context' must hold token ids (non-negative integers)");
                r->context[i] = (int32_t)json_integer_value(t);
            }
            r->n_context = (int)n;
        }
    }
    if (r->raw && (r->template_text || r->system || r->n_context))
        return fail(e, "raw mode does not support template, system, or context");
    return 0;
}

static int parse_openai_gen(const json_t *body, srv_gen_request *r, int max_messages, perr *e) {
    int st;
    r->stream = false;
    r->n = 1;
    /* Ollama's OpenAI layer: temperature and top_p default to 1.0 when absent. */
    r->opt.temperature = 1.0f;
    r->opt.top_p = 1.0f;
    r->opt.set |= SRV_OPT_TEMPERATURE | SRV_OPT_TOP_P;
    if ((st = get_bool(body, "stream", &r->stream, e)) || (st = parse_keep_alive(body, r, e)) ||
        (st = parse_logprobs(body, r, e)) || (st = get_int(body, "n", 1, 128, &r->n, NULL, e)))
        return st;
    const json_t *so = json_object_get(body, "stream_options");
    if (!absent(so)) {
        if (!json_is_object(so)) return fail(e, "field 'stream_options' must be an object");
        if ((st = get_bool(so, "include_usage", &r->include_usage, e))) return st;
    }
    static const char *const k_floats[] = { "temperature", "top_p", "frequency_penalty", "presence_penalty",
                                            "min_p", "repeat_penalty" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_floats); i++) {
        const json_t *v = json_object_get(body, k_floats[i]);
        if (absent(v)) continue;
        if (!json_is_number(v)) return fail(e, "field '%s' must be a number", k_floats[i]);
        if ((st = set_option(&r->opt, k_floats[i], v, e))) return st;
    }
    static const char *const k_ints[] = { "seed", "top_k", "num_ctx" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_ints); i++) {
        const json_t *v = json_object_get(body, k_ints[i]);
        if (absent(v)) continue;
        if (!json_is_integer(v)) return fail(e, "field '%s' must be an integer", k_ints[i]);
        if ((st = set_option(&r->opt, k_ints[i], v, e))) return st;
    }
    const json_t *mt = json_object_get(body, "max_completion_tokens");
    if (absent(mt)) mt = json_object_get(body, "max_tokens");
    if (!absent(mt)) {
        long long x;
        if ((st = num_to_int(mt, "field", "max_tokens", true, 0, INT_MAX, &x, e))) return st;
        r->opt.num_predict = (int)x;
        r->opt.set |= SRV_OPT_NUM_PREDICT;
    }
    const json_t *stop = json_object_get(body, "stop");
    if (!absent(stop) && (st = set_option(&r->opt, "stop", stop, e))) return st;
    /* nook extension: Ollama's options object (num_ctx above all) also on /v1. */
    if ((st = parse_options(body, &r->opt, e))) return st;
    const json_t *re = json_object_get(body, "reasoning_effort");
    const json_t *rs = json_object_get(body, "reasoning");
    if (absent(re) && json_is_object(rs)) re = json_object_get(rs, "effort");
    if (!absent(re)) {
        if (!json_is_string(re)) return fail(e, "field 'reasoning_effort' must be a string");
        if ((st = set_think_level(r, json_string_value(re), "reasoning_effort", e))) return st;
    }
    if (r->kind == SRV_OAI_CHAT) {
        if ((st = parse_messages(body, r, max_messages, e))) return st;
        if (absent(json_object_get(body, "messages"))) return fail(e, "field 'messages' is required");
        return 0;
    }
    /* completions: prompt is a string (or a list holding one string) */
    const json_t *p = json_object_get(body, "prompt");
    if (json_is_array(p)) {
        if (json_array_size(p) != 1 || !json_is_string(json_array_get(p, 0)))
            return fail(e, "field 'prompt' must be a string (lists of prompts and token ids are not supported)");
        p = json_array_get(p, 0);
    }
    if (!absent(p)) {
        if (!json_is_string(p)) return fail(e, "field 'prompt' must be a string");
        if (!(r->prompt = nk_strndup(json_string_value(p), json_string_length(p)))) return oom(e);
    }
    if ((st = get_str(body, "suffix", &r->suffix, e))) return st;
    return 0;
}

static int parse_embed(const json_t *body, srv_gen_request *r, perr *e) {
    int st;
    r->truncate = true;
    if ((st = parse_keep_alive(body, r, e)) || (st = parse_options(body, &r->opt, e)) ||
        (st = get_bool(body, "truncate", &r->truncate, e)) ||
        (st = get_int(body, "dimensions", 0, 1 << 20, &r->dimensions, NULL, e)))
        return st;
    const char *key = r->kind == SRV_EMBEDDINGS ? "prompt" : "input";
    const json_t *in = json_object_get(body, key);
    if (r->kind == SRV_EMBEDDINGS && !absent(in) && !json_is_string(in))
        return fail(e, "field 'prompt' must be a string");
    if (!absent(in)) {
        if (json_is_array(in)) {
            r->input_is_array = true;
            const json_t *first = json_array_get(in, 0);
            if (first && (json_is_integer(first) || json_is_array(first)))
                return fail(e, "field '%s': token-id input is not supported (give text)", key);
        }
        if ((st = get_str_list(in, key, &r->inputs, &r->n_inputs, 4096, e))) return st;
    }
    if (r->kind == SRV_OAI_EMBED) {
        const json_t *f = json_object_get(body, "encoding_format");
        if (!absent(f)) {
            if (!json_is_string(f) || (strcmp(json_string_value(f), "float") && strcmp(json_string_value(f), "base64")))
                return fail(e, "field 'encoding_format' must be \"float\" or \"base64\"");
            r->base64 = !strcmp(json_string_value(f), "base64");
        }
        if (!r->n_inputs && absent(in)) return fail(e, "field 'input' is required");
    }
    return 0;
}

int srv_gen_request_parse(const json_t *body, srv_kind kind, int max_messages, srv_gen_request *out, char *msg,
                          size_t cap) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->opt.seed = -1;
    perr e = { msg, cap };
    if (cap) msg[0] = 0;
    if (!json_is_object(body)) return fail(&e, "the request body must be a JSON object");
    if ((unsigned)kind >= SRV_KIND_COUNT) return fail(&e, "unknown request kind");
    out->body = json_incref((json_t *)body);
    int st = parse_model(body, out, &e);
    if (!st) {
        switch (kind) {
        case SRV_GENERATE:
        case SRV_CHAT: st = parse_ollama_gen(body, out, max_messages, &e); break;
        case SRV_OAI_CHAT:
        case SRV_OAI_COMPLETION: st = parse_openai_gen(body, out, max_messages, &e); break;
        default: st = parse_embed(body, out, &e); break;
        }
    }
    for (int i = 0; !st && i < SRV_EXT_COUNT; i++)
        if (k_exts[i].parse) st = k_exts[i].parse(body, kind, &out->ext[i], msg, cap);
    return st;
}

void srv_gen_request_free(srv_gen_request *r) {
    if (!r) return;
    nk_free(r->model);
    nk_free(r->prompt);
    nk_free(r->suffix);
    nk_free(r->system);
    nk_free(r->template_text);
    nk_free(r->context);
    for (int i = 0; i < r->n_messages; i++) {
        srv_message *m = &r->messages[i];
        nk_free(m->role);
        nk_free(m->content);
        nk_free(m->thinking);
        nk_free(m->tool_name);
        nk_free(m->tool_call_id);
        json_decref(m->tool_calls);
    }
    nk_free(r->messages);
    free_list(r->opt.stop, r->opt.n_stop);
    free_list(r->inputs, r->n_inputs);
    for (int i = 0; i < SRV_EXT_COUNT; i++)
        if (r->ext[i] && k_exts[i].free) k_exts[i].free(r->ext[i]);
    json_decref(r->body);
    memset(r, 0, sizeof *r);
}

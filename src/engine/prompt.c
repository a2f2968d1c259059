/*
 * prompt.c: a nook_prompt (chat messages or prompt text) to text and tokens, the way
 * Ollama builds a request's prompt: messages through the chat template with
 * add_generation_prompt; /api/generate's text as [system?, user text] through it, or
 * as written when raw; the tokens of an earlier answer's `context` in front.
 */
#include "engine/engine.h"
#include "chat/chat.h"

#include <jansson.h>
#include <string.h>

nook_prompt nook_prompt_default(void) {
    return (nook_prompt){ .think = -1 };
}

void nook_free(void *p) { nk_free(p); }

bool nk_template_thinks(const char *tmpl) {
    return tmpl && (strstr(tmpl, "<think>") || strstr(tmpl, "enable_thinking"));
}

static const char *template_of(const nook_model *m, const nook_prompt *p) {
    if (p->template_src && p->template_src[0]) return p->template_src;
    return nook_model_chat_template(m);
}

/* The text of a special token (the template's bos_token / eos_token), or "". */
static json_t *token_text(const nook_model *m, nook_token t) {
    char buf[256];
    int n = t >= 0 ? nook_token_to_piece(m, t, true, buf, sizeof buf) : 0;
    if (n < 0 || (size_t)n >= sizeof buf) n = 0;
    json_t *s = json_stringn(buf, (size_t)n);
    return s ? s : json_string("");
}

static json_t *message(const char *role, const char *content, const char *thinking) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_t *r = json_string(role ? role : ""), *c = json_string(content ? content : "");
    if (!r || !c) {
        json_decref(r);
        json_decref(c);
        json_decref(o);
        return NULL;   /* not valid UTF-8 */
    }
    json_object_set_new(o, "role", r);
    json_object_set_new(o, "content", c);
    if (thinking && thinking[0]) {
        json_t *t = json_string(thinking);
        if (!t) { json_decref(o); return NULL; }
        json_object_set_new(o, "thinking", t);
        json_object_set(o, "reasoning_content", t);   /* the name Qwen3's template reads */
    }
    return o;
}

/* The messages array the template sees, or NULL with err set. */
static json_t *build_messages(const nook_prompt *p, nook_error *err) {
    json_t *msgs = NULL;
    if (p->n_messages > 0) {
        if (!p->messages) { nk_fail(err, NOOK_EINVAL, "prompt: messages is NULL"); return NULL; }
        msgs = json_array();
        for (int i = 0; msgs && i < p->n_messages; i++) {
            json_t *o = message(p->messages[i].role, p->messages[i].content, p->messages[i].thinking);
            if (!o) {
                json_decref(msgs);
                nk_fail(err, NOOK_EINVAL, "prompt: message %d is not valid UTF-8", i);
                return NULL;
            }
            json_array_append_new(msgs, o);
        }
    } else if (p->messages_json) {
        json_error_t je;
        msgs = json_loads(p->messages_json, JSON_REJECT_DUPLICATES, &je);
        if (!msgs || !json_is_array(msgs)) {
            json_decref(msgs);
            nk_fail(err, NOOK_EINVAL, "prompt: messages_json is not a JSON array (%s)", msgs ? "other type" : je.text);
            return NULL;
        }
        return msgs;
    } else {
        msgs = json_array();
        if (msgs && p->system && p->system[0]) {
            json_t *o = message("system", p->system, NULL);
            if (!o) {
                json_decref(msgs);
                nk_fail(err, NOOK_EINVAL, "prompt: the system text is not valid UTF-8");
                return NULL;
            }
            json_array_append_new(msgs, o);
        }
        json_t *o = msgs ? message("user", p->text, NULL) : NULL;
        if (msgs && !o) {
            json_decref(msgs);
            nk_fail(err, NOOK_EINVAL, "prompt: the text is not valid UTF-8");
            return NULL;
        }
        if (msgs) json_array_append_new(msgs, o);
    }
    if (!msgs) nk_fail(err, NOOK_ENOMEM, "out of memory");
    return msgs;
}

/* Whether the text goes to the tokenizer as written (raw, or a model without template
 * given plain text), and whether control tokens in it are parsed. */
static bool is_plain(const nook_model *m, const nook_prompt *p) {
    if (p->n_messages > 0 || p->messages_json) return false;
    const char *t = template_of(m, p);
    return p->raw || !t || !t[0];
}

nook_status nook_prompt_render(const nook_model *m, const nook_prompt *p, char **out,
                               size_t *out_len, nook_error *err) {
    if (!m || !p || !out) return nk_fail(err, NOOK_EINVAL, "nook_prompt_render: bad arguments");
    *out = NULL;
    if (p->n_messages <= 0 && !p->messages_json && !p->text)
        return nk_fail(err, NOOK_EINVAL, "prompt: no messages and no text");
    if (is_plain(m, p)) {
        if (!p->raw) nk_log(NK_LOG_INFO, "the model has no chat template: plain completion");
        size_t n = strlen(p->text);
        char *s = nk_malloc(n + 1);
        if (!s) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        memcpy(s, p->text, n + 1);
        *out = s;
        if (out_len) *out_len = n;
        return NOOK_OK;
    }
    json_t *msgs = build_messages(p, err);
    if (!msgs) return err && err->code ? err->code : NOOK_EINVAL;
    json_t *tools = NULL;
    if (p->tools_json) {
        json_error_t je;
        tools = json_loads(p->tools_json, JSON_REJECT_DUPLICATES, &je);
        if (!tools || !json_is_array(tools)) {
            json_decref(tools);
            json_decref(msgs);
            return nk_fail(err, NOOK_EINVAL, "prompt: tools_json is not a JSON array");
        }
    }
    json_t *kw = json_pack("{s:b}", "add_generation_prompt", 1);
    if (!kw) {
        json_decref(msgs);
        json_decref(tools);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    json_object_set_new(kw, "bos_token", token_text(m, nook_token_bos(m)));
    json_object_set_new(kw, "eos_token", token_text(m, nook_token_eos(m)));
    if (p->think >= 0) json_object_set_new(kw, "enable_thinking", json_boolean(p->think));
    char warning[256] = "";
    nook_error e2 = { 0 };
    char *text = NULL;
    nook_status st = nk_chat_render_or_fallback(template_of(m, p), NULL, msgs, tools, kw, NULL, &text,
                                                warning, sizeof warning, &e2);
    json_decref(msgs);
    json_decref(tools);
    json_decref(kw);
    if (st != NOOK_OK) return nk_fail(err, st, "chat template: %s", e2.msg);
    if (warning[0]) nk_log(NK_LOG_WARN, "chat template: %s", warning);
    *out = text;
    if (out_len) *out_len = strlen(text);
    return NOOK_OK;
}

/* Tokenize len bytes into a fresh array (retrying once with the size the text needs). */
static nook_status tokenize_all(const nook_model *m, const char *text, size_t len, bool parse_special,
                                nook_token **out, size_t *n, nook_error *err) {
    size_t cap = len + 8, need = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        nook_token *t = nk_alloc_array(cap, sizeof *t);
        if (!t) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        nook_status st = nook_tokenize(m, text, len, false, parse_special, t, cap, &need, err);
        if (st == NOOK_OK) {
            *out = t;
            *n = need;
            return NOOK_OK;
        }
        nk_free(t);
        if (st != NOOK_ERANGE || need <= cap) return st;
        cap = need;
    }
    return nk_fail(err, NOOK_EINTERNAL, "tokenizer: the token count changed between calls");
}

nook_status nook_prompt_tokenize(const nook_model *m, const nook_prompt *p, nook_token **out,
                                 int *n_out, bool *split_thinking, nook_error *err) {
    if (!m || !p || !out || !n_out) return nk_fail(err, NOOK_EINVAL, "nook_prompt_tokenize: bad arguments");
    *out = NULL;
    *n_out = 0;
    if (p->n_context < 0 || (p->n_context > 0 && !p->context))
        return nk_fail(err, NOOK_EINVAL, "prompt: bad context tokens");
    const int n_vocab = nook_model_n_vocab(m);
    for (int i = 0; i < p->n_context; i++)
        if (p->context[i] < 0 || p->context[i] >= n_vocab)
            return nk_fail(err, NOOK_EINVAL, "prompt: context token %d is %d, outside the vocabulary (%d)", i,
                           p->context[i], n_vocab);
    if (p->n_messages <= 0 && !p->messages_json && !p->text) {
        /* tokens only: the caller's context is the whole prompt */
        if (p->n_context == 0) return nk_fail(err, NOOK_EINVAL, "prompt: no messages, no text and no tokens");
        nook_token *all = nk_alloc_array((size_t)p->n_context, sizeof *all);
        if (!all) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        memcpy(all, p->context, (size_t)p->n_context * sizeof *all);
        *out = all;
        *n_out = p->n_context;
        if (split_thinking) *split_thinking = nk_template_thinks(template_of(m, p)) && p->think != 0;
        return NOOK_OK;
    }
    char *text = NULL;
    size_t len = 0;
    nook_status st = nook_prompt_render(m, p, &text, &len, err);
    if (st != NOOK_OK) return st;
    /* a rendered template and a raw prompt carry control tokens as text; plain text of a
     * model without template does not */
    bool parse_special = p->raw || !is_plain(m, p);
    nook_token *toks = NULL;
    size_t nt = 0;
    st = tokenize_all(m, text, len, parse_special, &toks, &nt, err);
    nk_free(text);
    if (st != NOOK_OK) return st;

    /* BOS: added when the vocabulary adds one (ask it with the empty text) and the text
     * does not start with it; never a second one after an earlier context */
    nook_token probe[8];
    size_t np = 0;
    nook_token bos = nook_token_bos(m);
    bool add_bos = p->n_context == 0 &&
                   nook_tokenize(m, "", 0, true, false, probe, NK_ARRAY_LEN(probe), &np, NULL) == NOOK_OK &&
                   np > 0 && bos >= 0 && probe[0] == bos && !(nt > 0 && toks[0] == bos);
    size_t total = (size_t)p->n_context + (add_bos ? 1 : 0) + nt;
    if (total > (size_t)INT32_MAX) {
        nk_free(toks);
        return nk_fail(err, NOOK_ERANGE, "prompt: %zu tokens", total);
    }
    nook_token *all = nk_alloc_array(total ? total : 1, sizeof *all);
    if (!all) {
        nk_free(toks);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    size_t k = 0;
    if (p->n_context) memcpy(all, p->context, (size_t)p->n_context * sizeof *all);
    k = (size_t)p->n_context;
    if (add_bos) all[k++] = bos;
    if (nt) memcpy(all + k, toks, nt * sizeof *toks);
    nk_free(toks);
    *out = all;
    *n_out = (int)total;
    if (split_thinking) *split_thinking = nk_template_thinks(template_of(m, p)) && p->think != 0;
    return NOOK_OK;
}

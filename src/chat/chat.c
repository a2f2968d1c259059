/*
 * chat.c: the chat-template API: compile, render (with HF's variables), built-in formats by
 * family, detection from the template text, and render-or-fall-back.
 */
#include "chat/jinja.h"

#include <string.h>

struct nk_chat_template {
    nk_jarena arena;
    nk_jnode **body;
    size_t n_body;
};

static nk_chat_limits limits_of(const nk_chat_options *o) {
    nk_chat_limits l = o ? o->limits : (nk_chat_limits){0};
    if (!l.max_output) l.max_output = NK_CHAT_DEFAULT_MAX_OUTPUT;
    if (!l.max_memory) l.max_memory = NK_CHAT_DEFAULT_MAX_MEMORY;
    if (!l.max_steps) l.max_steps = NK_CHAT_DEFAULT_MAX_STEPS;
    if (l.max_depth <= 0) l.max_depth = NK_CHAT_DEFAULT_MAX_DEPTH;
    if (l.max_macro_depth <= 0) l.max_macro_depth = NK_CHAT_DEFAULT_MAX_MACRO;
    return l;
}

nook_status nk_chat_compile(const char *src, size_t len, const nk_chat_options *opts,
                            nk_chat_template **out, nook_error *err) {
    nk_err_clear(err);
    *out = NULL;
    if (!src) return nk_fail(err, NOOK_EINVAL, "chat template: NULL source");
    nk_jctx c = { .err = err, .lim = limits_of(opts) };
    c.arena.limit = c.lim.max_memory;
    nook_error local;
    if (!err) c.err = &local;
    nk_err_clear(c.err);
    nk_jtok *toks;
    size_t nt;
    nk_jnode **body;
    size_t nb;
    if (nk_jlex(&c, src, len, &toks, &nt) || nk_jparse(&c, toks, nt, &body, &nb)) {
        nk_ja_free(&c.arena);
        nk_prefix(c.err, "chat template: ");
        return c.err->code ? c.err->code : NOOK_EINTERNAL;
    }
    nk_chat_template *t = nk_calloc(1, sizeof *t);
    if (!t) {
        nk_ja_free(&c.arena);
        return nk_fail(err, NOOK_ENOMEM, "chat template: out of memory");
    }
    t->arena = c.arena;
    t->body = body;
    t->n_body = nb;
    *out = t;
    return NOOK_OK;
}

void nk_chat_template_free(nk_chat_template *t) {
    if (!t) return;
    nk_ja_free(&t->arena);
    nk_free(t);
}

static int set_json(nk_jctx *c, nk_jscope *s, const char *name, const json_t *j) {
    nk_jv v;
    if (nk_jv_from_json(c, j, &v, 0)) return -1;
    return nk_jscope_set(c, s, name, v);
}

nook_status nk_chat_render_compiled(const nk_chat_template *t, const json_t *messages,
                                    const json_t *tools, const json_t *kwargs,
                                    const nk_chat_options *opts, char **out, size_t *out_len,
                                    nook_error *err) {
    nk_err_clear(err);
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!t) return nk_fail(err, NOOK_EINVAL, "chat template: NULL template");
    if (!messages || !json_is_array(messages))
        return nk_fail(err, NOOK_EINVAL, "chat template: messages must be a JSON array");
    if (kwargs && !json_is_object(kwargs))
        return nk_fail(err, NOOK_EINVAL, "chat template: kwargs must be a JSON object");
    nook_error local;
    nk_jctx c = { .err = err ? err : &local, .lim = limits_of(opts) };
    nk_err_clear(c.err);
    c.arena.limit = c.lim.max_memory;
    if (opts) c.now = opts->now;
    nook_status rc = NOOK_OK;

    /* What HF's render() passes: messages, tools, documents, add_generation_prompt, **kwargs */
    nk_jscope *globals = nk_jalloc(&c, sizeof *globals);
    if (!globals) goto fail;
    c.globals = globals;
    if (nk_jscope_set(&c, globals, "documents", jv_none()) ||
        nk_jscope_set(&c, globals, "add_generation_prompt", jv_bool(false))) goto fail;
    if (kwargs) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)kwargs, k, v) {
            char *name = nk_jalloc(&c, strlen(k) + 1);
            if (!name) goto fail;
            memcpy(name, k, strlen(k) + 1);
            if (set_json(&c, globals, name, v)) goto fail;
        }
    }
    if (tools || !kwargs || !json_object_get(kwargs, "tools")) {
        if (set_json(&c, globals, "tools", tools)) goto fail;
    }
    if (set_json(&c, globals, "messages", messages)) goto fail;

    nk_jscope *root = nk_jalloc(&c, sizeof *root);
    if (!root) goto fail;
    root->parent = globals;
    if (nk_jexec_body(&c, root, t->body, t->n_body) < 0) goto fail;

    char *s = nk_malloc(c.out.len + 1);
    if (!s) { rc = nk_fail(err, NOOK_ENOMEM, "chat template: out of memory"); goto done; }
    if (c.out.len) memcpy(s, c.out.p, c.out.len);
    s[c.out.len] = 0;
    *out = s;
    if (out_len) *out_len = c.out.len;
    goto done;
fail:
    rc = c.err->code ? c.err->code : NOOK_EINTERNAL;
    nk_prefix(c.err, "chat template: ");
done:
    nk_ja_free(&c.arena);
    return rc;
}

nook_status nk_chat_render(const char *template_src, const json_t *messages, const json_t *tools,
                           const json_t *kwargs, char **out, nook_error *err) {
    *out = NULL;
    if (!template_src) return nk_fail(err, NOOK_EINVAL, "chat template: NULL source");
    nk_chat_template *t;
    nook_status rc = nk_chat_compile(template_src, strlen(template_src), NULL, &t, err);
    if (rc) return rc;
    rc = nk_chat_render_compiled(t, messages, tools, kwargs, NULL, out, NULL, err);
    nk_chat_template_free(t);
    return rc;
}

/* ---- built-in formats (llamacpp-notes §6) ---------------------------------------------------- */
static const struct { const char *name; const char *src; } builtins[] = {
    { "chatml",
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}" },
    { "llama3",
      "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
      " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}" },
    { "gemma",
      "{% set ns = namespace(sys='') %}{% for message in messages %}{% if message['role'] == 'system' %}"
      "{% set ns.sys = ns.sys + message['content'] | trim + '\n\n' %}{% else %}"
      "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n'"
      " + ns.sys + message['content'] | trim + '<end_of_turn>\n' }}{% set ns.sys = '' %}{% endif %}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}" },
    { "phi3",
      "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}" },
    { "mistral",
      "{% set ns = namespace(sys='') %}{% for message in messages %}{% if message['role'] == 'system' %}"
      "{% set ns.sys = message['content'] %}{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
      "{% if ns.sys %}{{ ns.sys + '\n\n' }}{% set ns.sys = '' %}{% endif %}{{ message['content'] + '[/INST]' }}"
      "{% else %}{{ ' ' + message['content'] | trim + '</s>' }}{% endif %}{% endfor %}" },
    { "llama2",
      "{% set ns = namespace(open=false) %}{% for message in messages %}{% if message['role'] == 'system' %}"
      "{% if not ns.open %}{{ '[INST] ' }}{% set ns.open = true %}{% endif %}"
      "{{ '<<SYS>>\n' + message['content'] + '\n<</SYS>>\n\n' }}{% elif message['role'] == 'user' %}"
      "{% if not ns.open %}{{ '[INST] ' }}{% endif %}{{ message['content'] + ' [/INST]' }}{% set ns.open = false %}"
      "{% else %}{{ message['content'] + '</s>' }}{% endif %}{% endfor %}" },
};

const char *nk_chat_builtin(const char *family) {
    if (!family) return NULL;
    if (!strcmp(family, "qwen") || !strcmp(family, "qwen2") || !strcmp(family, "qwen3")) family = "chatml";
    if (!strcmp(family, "gemma2") || !strcmp(family, "gemma3")) family = "gemma";
    if (!strcmp(family, "mistral-v3") || !strcmp(family, "mistral-v7")) family = "mistral";
    for (size_t i = 0; i < NK_ARRAY_LEN(builtins); i++)
        if (!strcmp(builtins[i].name, family)) return builtins[i].src;
    return NULL;
}

/* llama.cpp's llm_chat_detect_template order, reduced to the families built in here. */
const char *nk_chat_detect_family(const char *s) {
    if (!s) return NULL;
    if (strstr(s, "<|im_start|>")) return strstr(s, "<|im_sep|>") ? NULL : "chatml";
    if (!strncmp(s, "mistral", 7) || strstr(s, "[INST]")) {
        if (strstr(s, "[SYSTEM_PROMPT]") || strstr(s, "[AVAILABLE_TOOLS]")) return "mistral";
        return "llama2";
    }
    if (strstr(s, "<|assistant|>") && strstr(s, "<|end|>")) return "phi3";
    if (strstr(s, "<start_of_turn>")) return "gemma";
    if (strstr(s, "<|start_header_id|>") && strstr(s, "<|end_header_id|>")) return "llama3";
    return NULL;
}

static void warn(char *w, size_t cap, const char *fmt, const char *a, const char *b) {
    if (w && cap) snprintf(w, cap, fmt, a, b);
}

nook_status nk_chat_render_or_fallback(const char *template_src, const char *family,
                                       const json_t *messages, const json_t *tools,
                                       const json_t *kwargs, const nk_chat_options *opts,
                                       char **out, char *warning, size_t cap, nook_error *err) {
    *out = NULL;
    if (warning && cap) warning[0] = 0;
    nook_error e1;
    nk_err_clear(&e1);
    const char *fam = family ? family : template_src ? nk_chat_detect_family(template_src) : NULL;
    if (!fam) fam = "chatml";
    if (template_src && template_src[0]) {
        nk_chat_template *t = NULL;
        nook_status rc = nk_chat_compile(template_src, strlen(template_src), opts, &t, &e1);
        if (rc == NOOK_OK) {
            rc = nk_chat_render_compiled(t, messages, tools, kwargs, opts, out, NULL, &e1);
            nk_chat_template_free(t);
            if (rc == NOOK_OK) return NOOK_OK;
            if (rc != NOOK_EUNSUPPORTED) { if (err) *err = e1; return rc; }
        } else if (rc != NOOK_EUNSUPPORTED && rc != NOOK_EFORMAT) {
            if (err) *err = e1;
            return rc;
        }
        warn(warning, cap, "%s; using the built-in '%s' format", e1.msg, fam);
    } else {
        warn(warning, cap, "%sno chat template; using the built-in '%s' format", "", fam);
    }
    const char *src = nk_chat_builtin(fam);
    if (!src) return nk_fail(err, NOOK_ENOTFOUND, "chat template: no built-in format '%s'", fam);
    nk_chat_template *t = NULL;
    nook_status rc = nk_chat_compile(src, strlen(src), opts, &t, err);
    if (rc) return rc;
    rc = nk_chat_render_compiled(t, messages, tools, kwargs, opts, out, NULL, err);
    nk_chat_template_free(t);
    return rc;
}

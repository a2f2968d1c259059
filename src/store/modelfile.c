/*
 * modelfile.c: Ollama's Modelfile syntax (parser/parser.go): one instruction per line,
 * case-insensitive (FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE,
 * REQUIRES), '#' comments, values quoted with "..." or spanning lines with """...""".
 * The input is untrusted (it reaches the server through /api/create as fields, and
 * files come from anywhere): every error names the line.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { P_INT, P_FLOAT, P_BOOL, P_STRS, P_ROUTE } ptype;
static const struct { const char *name; ptype t; } k_params[] = {
    { "num_ctx", P_INT }, { "num_predict", P_INT }, { "num_keep", P_INT }, { "seed", P_INT },
    { "top_k", P_INT }, { "repeat_last_n", P_INT }, { "num_batch", P_INT }, { "num_gpu", P_INT },
    { "main_gpu", P_INT }, { "num_thread", P_INT }, { "draft_num_predict", P_INT },
    { "temperature", P_FLOAT }, { "top_p", P_FLOAT }, { "min_p", P_FLOAT }, { "typical_p", P_FLOAT },
    { "repeat_penalty", P_FLOAT }, { "presence_penalty", P_FLOAT }, { "frequency_penalty", P_FLOAT },
    { "use_mmap", P_BOOL }, { "stop", P_STRS },
    { "route", P_ROUTE },   /* the router's per-model policy (docs/privacy.md) */
};

/* Sets params[name] from text (typed as Ollama's options); "stop" accumulates. */
static nook_status set_param(json_t *params, const char *name, const char *val, int line, nook_error *err) {
    for (size_t i = 0; i < NK_ARRAY_LEN(k_params); i++) {
        if (strcasecmp(name, k_params[i].name) != 0) continue;
        const char *key = k_params[i].name;
        char *end = NULL;
        errno = 0;
        switch (k_params[i].t) {
        case P_INT: {
            long long v = strtoll(val, &end, 10);
            if (!*val || *end || errno) break;
            json_object_set_new(params, key, json_integer(v));
            return NOOK_OK;
        }
        case P_FLOAT: {
            double v = strtod(val, &end);
            if (!*val || *end || errno || !isfinite(v)) break;
            json_object_set_new(params, key, json_real(v));
            return NOOK_OK;
        }
        case P_BOOL:
            if (strcasecmp(val, "true") == 0) { json_object_set_new(params, key, json_true()); return NOOK_OK; }
            if (strcasecmp(val, "false") == 0) { json_object_set_new(params, key, json_false()); return NOOK_OK; }
            break;
        case P_ROUTE:
            if (strcmp(val, "local") && strcmp(val, "auto") && strcmp(val, "remote") && strcmp(val, "ask")) break;
            json_object_set_new(params, key, json_string(val));
            return NOOK_OK;
        case P_STRS: {
            json_t *a = json_object_get(params, key);
            if (!a) { a = json_array(); json_object_set_new(params, key, a); }
            json_t *s = json_string(val);
            if (!s) return nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: PARAMETER stop is not valid UTF-8", line);
            json_array_append_new(a, s);
            return NOOK_OK;
        }
        }
        return nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: PARAMETER %s: invalid value '%.60s'", line, key, val);
    }
    return nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: unknown parameter '%.60s'", line, name);
}

/* Reads a value at *pp (after the instruction and its spacing): """multi-line""",
 * "quoted" (with \" and \\ escapes) or the rest of the line, trimmed. */
static char *read_value(const char **pp, const char *end, int *line, nook_error *err) {
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (end - p >= 3 && memcmp(p, "\"\"\"", 3) == 0) {
        const char *s = p + 3;
        const char *q = s;
        while (q + 3 <= end && memcmp(q, "\"\"\"", 3) != 0) { if (*q == '\n') (*line)++; q++; }
        if (q + 3 > end) { nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: unterminated \"\"\"", *line); return NULL; }
        *pp = q + 3;
        return nk_strndup(s, (size_t)(q - s));
    }
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if (p < eol && *p == '"') {
        char *v = nk_malloc((size_t)(eol - p) + 1);
        if (!v) return NULL;
        size_t n = 0;
        const char *q = p + 1;
        for (; q < eol && *q != '"'; q++) {
            if (*q == '\\' && q + 1 < eol && (q[1] == '"' || q[1] == '\\')) q++;
            v[n++] = *q;
        }
        v[n] = 0;
        if (q >= eol) { nk_free(v); nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: unterminated quote", *line); return NULL; }
        *pp = eol;
        return v;
    }
    const char *e = eol;
    while (e > p && isspace((unsigned char)e[-1])) e--;
    *pp = eol;
    return nk_strndup(p, (size_t)(e - p));
}

static void set_str(char **dst, char *v) { nk_free(*dst); *dst = v; }

nook_status nk_modelfile_parse(const char *text, size_t len, nk_modelfile *mf, nook_error *err_in) {
    nook_error lerr = { 0 }, *err = err_in ? err_in : &lerr;
    nk_err_clear(err);
    memset(mf, 0, sizeof *mf);
    mf->params = json_object();
    mf->messages = json_array();
    if (!mf->params || !mf->messages) { nk_modelfile_free(mf); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    if (memchr(text, 0, len)) { nk_modelfile_free(mf); return nk_fail(err, NOOK_EFORMAT, "Modelfile contains a NUL byte"); }
    if (nk_utf8_invalid_at(text, len) >= 0) { nk_modelfile_free(mf); return nk_fail(err, NOOK_EFORMAT, "Modelfile is not valid UTF-8"); }
    const char *p = text, *end = text + len;
    int line = 1;
    nook_status st = NOOK_OK;
    while (p < end && !st) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        if (p >= end) break;
        if (*p == '\n') { p++; line++; continue; }
        if (*p == '#') {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            p = eol ? eol : end;
            continue;
        }
        const char *w = p;
        while (p < end && isalpha((unsigned char)*p)) p++;
        size_t wl = (size_t)(p - w);
        char ins[16] = "";
        if (wl == 0 || wl >= sizeof ins || (p < end && *p != ' ' && *p != '\t')) {
            st = nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: expected an instruction (FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE, REQUIRES, ADAPTER)", line);
            break;
        }
        for (size_t i = 0; i < wl; i++) ins[i] = (char)toupper((unsigned char)w[i]);
        int start_line = line;
        if (strcmp(ins, "PARAMETER") == 0 || strcmp(ins, "MESSAGE") == 0) {
            while (p < end && (*p == ' ' || *p == '\t')) p++;
            const char *k = p;
            while (p < end && !isspace((unsigned char)*p)) p++;
            char key[64];
            size_t kl = (size_t)(p - k);
            if (kl == 0 || kl >= sizeof key) { st = nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: %s needs a name and a value", line, ins); break; }
            memcpy(key, k, kl);
            key[kl] = 0;
            char *v = read_value(&p, end, &line, err);
            if (!v) { st = err->code ? err->code : NOOK_ENOMEM; break; }
            if (strcmp(ins, "PARAMETER") == 0) st = set_param(mf->params, key, v, start_line, err);
            else {
                for (char *c = key; *c; c++) *c = (char)tolower((unsigned char)*c);
                if (strcmp(key, "system") && strcmp(key, "user") && strcmp(key, "assistant") && strcmp(key, "tool"))
                    st = nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: MESSAGE role must be system, user, assistant or tool, not '%.40s'", start_line, key);
                else json_array_append_new(mf->messages, json_pack("{s:s, s:s}", "role", key, "content", v));
            }
            nk_free(v);
            continue;
        }
        char *v = read_value(&p, end, &line, err);
        if (!v) { st = err->code ? err->code : NOOK_ENOMEM; break; }
        if (strcmp(ins, "FROM") == 0) set_str(&mf->from, v);
        else if (strcmp(ins, "TEMPLATE") == 0) set_str(&mf->tmpl, v);
        else if (strcmp(ins, "SYSTEM") == 0) set_str(&mf->system, v);
        else if (strcmp(ins, "ADAPTER") == 0) set_str(&mf->adapter, v);
        else if (strcmp(ins, "REQUIRES") == 0) set_str(&mf->requires, v);
        else if (strcmp(ins, "LICENSE") == 0) {
            if (!mf->license) mf->license = v;
            else {
                size_t a = strlen(mf->license), b = strlen(v);
                char *n = nk_realloc(mf->license, a + b + 3);
                if (n) { memcpy(n + a, "\n\n", 2); memcpy(n + a + 2, v, b + 1); mf->license = n; }
                nk_free(v);
            }
        } else {
            nk_free(v);
            st = nk_fail(err, NOOK_EFORMAT, "Modelfile line %d: unknown instruction '%s'", start_line, ins);
        }
    }
    if (!st && (!mf->from || !mf->from[0])) st = nk_fail(err, NOOK_EFORMAT, "Modelfile: no FROM line");
    if (st) nk_modelfile_free(mf);
    return st;
}

void nk_modelfile_free(nk_modelfile *mf) {
    nk_free(mf->from);
    nk_free(mf->tmpl);
    nk_free(mf->system);
    nk_free(mf->license);
    nk_free(mf->requires);
    nk_free(mf->adapter);
    json_decref(mf->params);
    json_decref(mf->messages);
    memset(mf, 0, sizeof *mf);
}

/*
 * resolve.c: from what a user typed (a path or a name) to the GGUF to load and the
 * Modelfile settings stored beside it; and the Modelfile `show --modelfile` prints.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Reads a text layer (size-capped, digest-checked by name only: blobs are verified when
 * they enter the store). */
static nook_status read_layer(const nk_store *s, const nk_layer *l, char **out, nook_error *err) {
    char p[4400];
    nk_store_blob_path(s, l->digest, p, sizeof p);
    struct stat st;
    if (stat(p, &st) != 0) return nk_fail(err, NOOK_ENOTFOUND, "blob %s is missing from the store", l->digest);
    if ((uint64_t)st.st_size > NK_TEXT_LAYER_MAX)
        return nk_fail(err, NOOK_ERANGE, "layer %s: %lld bytes, over the cap", l->digest, (long long)st.st_size);
    size_t len;
    return nk_read_file(p, out, &len, err);
}

static void append(char **dst, const char *text) {
    if (!*dst) { *dst = nk_strdup(text); return; }
    size_t a = strlen(*dst), b = strlen(text);
    char *n = nk_realloc(*dst, a + b + 3);
    if (!n) return;
    memcpy(n + a, "\n\n", 2);
    memcpy(n + a + 2, text, b + 1);
    *dst = n;
}

nook_status nk_model_resolve(const nk_store *s, const char *what, nk_model_ref *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (what && stat(what, &st) == 0 && S_ISREG(st.st_mode)) {
        nk_pfmt(out->path, sizeof out->path, "%s", what);
        nk_pfmt(out->name, sizeof out->name, "%s", what);
        return NOOK_OK;
    }
    nk_name n;
    nook_status rc = nk_name_parse(what, &n, err);
    if (rc) {
        if (what && (strchr(what, '/') || strstr(what, ".gguf")))
            return nk_fail(err, NOOK_ENOTFOUND, "'%.200s' is neither an existing file nor a model name", what);
        return rc;
    }
    nk_name_display(&n, out->name, sizeof out->name);
    nk_manifest m;
    if ((rc = nk_store_read_manifest(s, &n, &m, NULL, 0, err))) return rc;
    const nk_layer *ml = NULL;
    for (int i = 0; i < m.n_layers && !rc; i++) {
        const nk_layer *l = &m.layers[i];
        const char *mt = l->media_type;
        char *text = NULL;
        if (strcmp(mt, NK_MT_MODEL) == 0) {
            if (!ml) ml = l;
        } else if (strcmp(mt, NK_MT_ADAPTER) == 0) {
            rc = nk_fail(err, NOOK_EUNSUPPORTED, "model '%s' has an ADAPTER (LoRA) layer; nook does not run adapters yet", out->name);
        } else if (strcmp(mt, NK_MT_PROJECTOR) == 0) {
            nk_log(NK_LOG_WARN, "model '%s': its vision projector is ignored (nook runs text only)", out->name);
        } else if (strcmp(mt, NK_MT_TEMPLATE) == 0 || strcmp(mt, NK_MT_SYSTEM) == 0 ||
                   strcmp(mt, NK_MT_LICENSE) == 0 || strcmp(mt, NK_MT_PARAMS) == 0 ||
                   strcmp(mt, NK_MT_MESSAGES) == 0) {
            if ((rc = read_layer(s, l, &text, err))) break;
            if (strcmp(mt, NK_MT_TEMPLATE) == 0) { nk_free(out->template_go); out->template_go = text; text = NULL; }
            else if (strcmp(mt, NK_MT_SYSTEM) == 0) { nk_free(out->system); out->system = text; text = NULL; }
            else if (strcmp(mt, NK_MT_LICENSE) == 0) append(&out->license, text);
            else {
                json_error_t je;
                json_t *j = json_loads(text, 0, &je);
                bool ok = strcmp(mt, NK_MT_PARAMS) == 0 ? json_is_object(j) : json_is_array(j);
                if (!ok) {
                    json_decref(j);
                    rc = nk_fail(err, NOOK_EFORMAT, "model '%s': its %s layer is not valid JSON", out->name, mt);
                } else if (strcmp(mt, NK_MT_PARAMS) == 0) { json_decref(out->params); out->params = j; }
                else { json_decref(out->messages); out->messages = j; }
            }
            nk_free(text);
        }
    }
    if (!rc && !ml && nk_manifest_find(&m, NK_MT_SPECIALIST))
        rc = nk_fail(err, NOOK_EUNSUPPORTED, "'%s' is a specialist (a classifier), not a generative model: use 'nook classify %s'",
                     out->name, out->name);
    if (!rc && !ml) rc = nk_fail(err, NOOK_EFORMAT, "model '%s' has no model layer", out->name);
    if (!rc) {
        nk_store_blob_path(s, ml->digest, out->path, sizeof out->path);
        if (stat(out->path, &st) != 0)
            rc = nk_fail(err, NOOK_ENOTFOUND, "model '%s': its weights (%s) are missing from the store; pull it again", out->name, ml->digest);
    }
    if (!rc && out->template_go) {
        nook_error terr = { 0 };
        if (nk_gotmpl_to_jinja(out->template_go, &out->template_jinja, &terr) != NOOK_OK) {
            out->template_note = nk_strdup(terr.msg);
        }
    }
    nk_manifest_free(&m);
    if (rc) { nk_model_ref_free(out); return rc; }
    out->from_store = true;
    /* the manifest's digest: recompute from the file for the ID */
    return NOOK_OK;
}

void nk_model_ref_free(nk_model_ref *r) {
    nk_free(r->system);
    nk_free(r->template_go);
    nk_free(r->template_jinja);
    nk_free(r->license);
    nk_free(r->template_note);
    json_decref(r->params);
    json_decref(r->messages);
    r->system = r->template_go = r->template_jinja = r->license = r->template_note = NULL;
    r->params = r->messages = NULL;
}

/* ---- show --modelfile ---- */

typedef struct sbuf { char *p; size_t n, cap; } sbuf;
static void put(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        while (nc < b->n + l + 1) nc *= 2;
        char *q = nk_realloc(b->p, nc);
        if (!q) return;
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}
static void put_quoted(sbuf *b, const char *s) {
    put(b, "\"\"\"");
    put(b, s);
    put(b, "\"\"\"");
}

char *nk_modelfile_render(const nk_model_ref *r) {
    sbuf b = { 0 };
    char line[9000];
    put(&b, "# Modelfile generated by \"nook show\"\n# To build a new Modelfile based on this, replace FROM with:\n");
    nk_pfmt(line, sizeof line, "# FROM %s\n\nFROM %s\n", r->name, r->path);
    put(&b, line);
    if (r->template_go) { put(&b, "TEMPLATE "); put_quoted(&b, r->template_go); put(&b, "\n"); }
    if (r->system) { put(&b, "SYSTEM "); put_quoted(&b, r->system); put(&b, "\n"); }
    const char *k;
    json_t *v;
    if (r->params) json_object_foreach(r->params, k, v) {
        json_t *items = json_is_array(v) ? v : NULL;
        size_t cnt = items ? json_array_size(items) : 1;
        for (size_t i = 0; i < cnt; i++) {
            json_t *x = items ? json_array_get(items, i) : v;
            char val[512];
            if (json_is_string(x)) nk_pfmt(val, sizeof val, "\"%s\"", json_string_value(x));
            else if (json_is_integer(x)) nk_pfmt(val, sizeof val, "%lld", (long long)json_integer_value(x));
            else if (json_is_real(x)) nk_pfmt(val, sizeof val, "%g", json_real_value(x));
            else if (json_is_boolean(x)) nk_pfmt(val, sizeof val, "%s", json_is_true(x) ? "true" : "false");
            else continue;
            nk_pfmt(line, sizeof line, "PARAMETER %s %s\n", k, val);
            put(&b, line);
        }
    }
    size_t i;
    json_t *msg;
    if (r->messages) json_array_foreach(r->messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        const char *content = json_string_value(json_object_get(msg, "content"));
        if (!role || !content) continue;
        nk_pfmt(line, sizeof line, "MESSAGE %s ", role);
        put(&b, line);
        put_quoted(&b, content);
        put(&b, "\n");
    }
    if (r->license) { put(&b, "LICENSE "); put_quoted(&b, r->license); put(&b, "\n"); }
    return b.p;
}

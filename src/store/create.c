/*
 * create.c: `nook create NAME -f Modelfile` and /api/create: a new manifest from a base
 * (a store name, a GGUF file, or a folder holding one), an optional quantization
 * through the existing quantizer (src/convert), and the Modelfile's settings as
 * Ollama's layers. The GGUF is validated before the manifest is written.
 */
#include "store/store_internal.h"
#include "convert/convert.h"
#include "gguf/gguf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

nook_status nk_store_add_config(nk_store *s, const char *gguf_path, const char *requires, nk_layer *out,
                                nook_error *err) {
    nk_map m;
    nook_status st = nk_map_file(gguf_path, false, &m, err);
    if (st) return st;
    gguf_file *g = NULL;
    if ((st = gguf_parse(m.data, m.size, &g, err))) { nk_unmap(&m); return st; }
    char arch[64] = "", ftype[32] = "", ptype[32] = "";
    gguf_str a;
    if (gguf_get_str(g, "general.architecture", &a, NULL) == NOOK_OK)
        snprintf(arch, sizeof arch, "%.*s", (int)NK_MIN(a.len, 63), a.ptr);
    uint32_t ft;
    if (gguf_get_u32(g, "general.file_type", &ft, NULL) == NOOK_OK && nk_ftype_name((int)ft))
        snprintf(ftype, sizeof ftype, "%s", nk_ftype_name((int)ft));
    double params = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        double n = 1;
        for (uint32_t d = 0; d < g->tensors[i].n_dims; d++) n *= (double)g->tensors[i].ne[d];
        params += n;
    }
    if (params >= 1e9) snprintf(ptype, sizeof ptype, "%.1fB", params / 1e9);
    else if (params >= 1e6) snprintf(ptype, sizeof ptype, "%.0fM", params / 1e6);
    else snprintf(ptype, sizeof ptype, "%.0fK", params / 1e3);
    gguf_free(g);
    nk_unmap(&m);
    json_t *c = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s, s:s}", "model_format", "gguf", "model_family", arch,
                          "model_families", arch, "model_type", ptype, "file_type", ftype,
                          "architecture", "amd64", "os", "linux");
    if (c && requires) json_object_set_new(c, "requires", json_string(requires));
    char *txt = c ? json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(c);
    if (!txt) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    st = nk_store_add_blob_buf(s, txt, strlen(txt), out->digest, err);
    out->size = strlen(txt);
    snprintf(out->media_type, sizeof out->media_type, "%s", NK_MT_CONFIG);
    free(txt);
    return st;
}

static bool step(const nk_create_opts *o, const char *status) {
    if (!o || !o->progress) return true;
    nk_pull_progress p = { status, NULL, 0, 0 };
    return o->progress(&p, o->ud);
}

/* Byte progress of one step (quantizing, copying) as the caller's nk_pull_progress. */
typedef struct step_bytes { const nk_create_opts *o; const char *status; } step_bytes;
static bool on_bytes(uint64_t done, uint64_t total, void *ud) {
    const step_bytes *b = ud;
    nk_pull_progress p = { b->status, NULL, total, done };
    return b->o->progress(&p, b->o->ud);
}

/* FROM as a path: relative to base_dir, "~/" expanded; a directory must hold one GGUF. */
static bool from_path(const char *from, const char *base_dir, char *out, size_t cap, nook_error *err, bool *is_path) {
    char p[4096];
    *is_path = false;
    if (strncmp(from, "~/", 2) == 0 && getenv("HOME")) nk_pfmt(p, sizeof p, "%s/%s", getenv("HOME"), from + 2);
    else if (from[0] != '/' && base_dir) nk_pfmt(p, sizeof p, "%s/%s", base_dir, from);
    else nk_pfmt(p, sizeof p, "%s", from);
    struct stat st;
    if (stat(p, &st) != 0) return true;
    *is_path = true;
    if (S_ISREG(st.st_mode)) { nk_pfmt(out, cap, "%s", p); return true; }
    if (!S_ISDIR(st.st_mode)) { nk_fail(err, NOOK_EINVAL, "FROM %s: not a file or folder", from); return false; }
    DIR *d = opendir(p);
    int found = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcasecmp(e->d_name + l - 5, ".gguf") == 0 && !strcasestr(e->d_name, "mmproj")) {
            if (found++ == 0) nk_pfmt(out, cap, "%s/%s", p, e->d_name);
        }
    }
    if (d) closedir(d);
    if (found == 1) return true;
    nk_fail(err, found ? NOOK_EINVAL : NOOK_ENOTFOUND, found ? "FROM %s: the folder holds %d GGUF files; name one" :
            "FROM %s: the folder holds no .gguf file (safetensors folders are not imported yet; convert to GGUF first)",
            from, found);
    return false;
}

static nook_status add_text(nk_store *s, nk_manifest *m, const char *mt, const char *text, nook_error *err) {
    int idx = -1;
    for (int i = 0; i < m->n_layers; i++) if (strcmp(m->layers[i].media_type, mt) == 0) idx = i;
    if (idx < 0) {
        nk_layer *nl = nk_realloc(m->layers, (size_t)(m->n_layers + 1) * sizeof *nl);
        if (!nl) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        m->layers = nl;
        idx = m->n_layers++;
    }
    nk_layer *l = &m->layers[idx];
    memset(l, 0, sizeof *l);
    snprintf(l->media_type, sizeof l->media_type, "%s", mt);
    l->size = strlen(text);
    if (l->size > NK_TEXT_LAYER_MAX) return nk_fail(err, NOOK_ERANGE, "%s: over the %u-byte cap", mt, NK_TEXT_LAYER_MAX);
    return nk_store_add_blob_buf(s, text, strlen(text), l->digest, err);
}

static nook_status add_json(nk_store *s, nk_manifest *m, const char *mt, json_t *j, nook_error *err) {
    char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!t) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status st = add_text(s, m, mt, t, err);
    free(t);
    return st;
}

nook_status nk_create(nk_store *s, const char *name, const nk_modelfile *mf, const nk_create_opts *o, nook_error *err) {
    nk_name n;
    nook_status st = nk_name_parse(name, &n, err);
    if (st) return st;
    if (mf->adapter) return nk_fail(err, NOOK_EUNSUPPORTED, "ADAPTER (LoRA) is not supported by nook yet; remove the ADAPTER line");
    char *jinja = NULL;
    if (mf->tmpl) {
        if ((st = nk_gotmpl_to_jinja(mf->tmpl, &jinja, err))) return st;
        nk_free(jinja);
    }
    int lock = nk_store_lock_shared(s);
    nk_manifest m = { 0 };
    char src[4096] = "";
    bool is_path = false, own_model = false;
    if (!step(o, "parsing modelfile")) { st = nk_fail(err, NOOK_EABORTED, "cancelled"); goto out; }
    if (!from_path(mf->from, o ? o->base_dir : NULL, src, sizeof src, err, &is_path)) { st = err ? err->code : NOOK_EINVAL; goto out; }
    if (is_path) {
        if (!step(o, "checking the model file")) { st = nk_fail(err, NOOK_EABORTED, "cancelled"); goto out; }
        if ((st = nk_store_validate_gguf(src, err))) { nk_prefix(err, "FROM %s: ", mf->from); goto out; }
        m.layers = nk_calloc(1, sizeof *m.layers);
        if (!m.layers) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
        m.n_layers = 1;
        snprintf(m.layers[0].media_type, sizeof m.layers[0].media_type, "%s", NK_MT_MODEL);
        own_model = true;
    } else {
        nk_name base;
        if ((st = nk_name_parse(mf->from, &base, err))) goto out;
        if ((st = nk_store_read_manifest(s, &base, &m, NULL, 0, err))) {
            if (st == NOOK_ENOTFOUND) nk_prefix(err, "FROM: ");
            goto out;
        }
        const nk_layer *ml = nk_manifest_find(&m, NK_MT_MODEL);
        if (!ml) { st = nk_fail(err, NOOK_EFORMAT, "FROM %s: no model layer", mf->from); goto out; }
        if (nk_manifest_find(&m, NK_MT_ADAPTER)) { st = nk_fail(err, NOOK_EUNSUPPORTED, "FROM %s has an ADAPTER layer; nook does not support adapters yet", mf->from); goto out; }
        nk_store_blob_path(s, ml->digest, src, sizeof src);
    }
    if (o && o->quantize) {
        char msg[96], tmp[4400];
        snprintf(msg, sizeof msg, "quantizing to %s", o->quantize);
        if (nk_ftype_from_name(o->quantize) < 0) { st = nk_fail(err, NOOK_EINVAL, "--quantize: unknown type '%.40s'", o->quantize); goto out; }
        if (!step(o, msg)) { st = nk_fail(err, NOOK_EABORTED, "cancelled"); goto out; }
        nk_pfmt(tmp, sizeof tmp, "%s/blobs/.tmp-quant-%d.gguf", nk_store_root(s), (int)getpid());
        step_bytes sb = { o, msg };
        nk_quantize_opts qo = { .allow_requantize = true, .progress = o->progress ? on_bytes : NULL, .ud = &sb };
        st = nk_quantize_file_ex(src, tmp, o->quantize, o->n_threads, &qo, err);
        if (!st) st = nk_store_validate_gguf(tmp, err);
        nk_layer *ml = NULL;
        for (int i = 0; i < m.n_layers; i++) if (strcmp(m.layers[i].media_type, NK_MT_MODEL) == 0) ml = &m.layers[i];
        step_bytes sc = { o, "copying the quantized model into the store" };
        if (!st) st = nk_store_add_blob_file_ex(s, tmp, NULL, ml->digest, &ml->size, o->progress ? on_bytes : NULL, &sc, err);
        unlink(tmp);
        if (st) goto out;
        nk_store_blob_path(s, ml->digest, src, sizeof src);
    } else if (own_model) {
        if (!step(o, "copying the model file into the store")) { st = nk_fail(err, NOOK_EABORTED, "cancelled"); goto out; }
        step_bytes sc = { o, "copying the model file into the store" };
        if ((st = nk_store_add_blob_file_ex(s, src, NULL, m.layers[0].digest, &m.layers[0].size,
                                            o && o->progress ? on_bytes : NULL, &sc, err))) goto out;
        nk_store_blob_path(s, m.layers[0].digest, src, sizeof src);
    }
    if (mf->tmpl && (st = add_text(s, &m, NK_MT_TEMPLATE, mf->tmpl, err))) goto out;
    if (mf->system && (st = add_text(s, &m, NK_MT_SYSTEM, mf->system, err))) goto out;
    if (mf->license && (st = add_text(s, &m, NK_MT_LICENSE, mf->license, err))) goto out;
    if (mf->params && json_object_size(mf->params)) {
        /* Ollama merges the base's parameters with the new ones */
        json_t *merged = json_object();
        const nk_layer *pl = nk_manifest_find(&m, NK_MT_PARAMS);
        if (pl && !is_path) {
            char pp[4400];
            nk_store_blob_path(s, pl->digest, pp, sizeof pp);
            json_t *old = json_load_file(pp, 0, NULL);
            if (json_is_object(old)) json_object_update(merged, old);
            json_decref(old);
        }
        json_object_update(merged, mf->params);
        st = add_json(s, &m, NK_MT_PARAMS, merged, err);
        json_decref(merged);
        if (st) goto out;
    }
    if (mf->messages && json_array_size(mf->messages) && (st = add_json(s, &m, NK_MT_MESSAGES, mf->messages, err))) goto out;
    if ((st = nk_store_add_config(s, src, mf->requires, &m.config, err))) goto out;
    if (!step(o, "writing manifest")) { st = nk_fail(err, NOOK_EABORTED, "cancelled"); goto out; }
    st = nk_store_write_manifest(s, &n, &m, err);
    if (!st) step(o, "success");
out:
    nk_manifest_free(&m);
    nk_store_unlock(lock);
    return st;
}

/*
 * spec_store.c: specialists in the model store. A stored specialist is a manifest
 * (Ollama's layout, like any model) whose one layer has the media type
 * NK_MT_SPECIALIST and holds the specialist's GGUF file as a blob; its config blob says
 * model_family "nook-specialist" and lists the labels, so `nook list`, `nook rm`,
 * `nook cp` and /api/tags work on it unchanged. Names are looked up only through the
 * store (nk_name_parse's strict patterns), so a name can never become a path.
 */
#include "specialist/specialist.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The config blob: what `nook show` and /api/show say about it without loading it. */
static nook_status put_config(nk_store *st, const nk_spec *s, nk_layer *out, nook_error *err) {
    json_t *labels = json_array();
    for (int c = 0; labels && c < s->k; c++) json_array_append_new(labels, json_string(s->labels[c]));
    json_t *c = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:o, s:s, s:s, s:s}", "model_format", "gguf", "model_family",
                          "nook-specialist", "model_families", "nook-specialist", "model_type", "specialist",
                          "file_type", "", "labels", labels, "base_model", s->base_model ? s->base_model : "",
                          "architecture", "amd64", "os", "linux");
    char *txt = c ? json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(c);
    if (!txt) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status rc = nk_store_add_blob_buf(st, txt, strlen(txt), out->digest, err);
    out->size = strlen(txt);
    snprintf(out->media_type, sizeof out->media_type, "%s", NK_MT_CONFIG);
    free(txt);
    return rc;
}

nook_status nk_spec_store_put(nk_store *st, const char *name, const nk_spec *s, nook_error *err) {
    nk_name n;
    nook_status rc = nk_name_parse(name, &n, err);
    if (rc) return rc;
    uint8_t *buf = NULL;
    uint64_t len = 0;
    if ((rc = nk_spec_save_mem(s, &buf, &len, err))) return rc;
    /* Shared lock from the first blob to the manifest: rm's garbage collection (which
     * takes it exclusive) cannot delete the new blobs before the manifest names them. */
    int lock = nk_store_lock_shared(st);
    nk_layer layer = { .size = len };
    snprintf(layer.media_type, sizeof layer.media_type, "%s", NK_MT_SPECIALIST);
    nk_manifest m = { .layers = &layer, .n_layers = 1 };
    rc = nk_store_add_blob_buf(st, buf, (size_t)len, layer.digest, err);
    if (!rc) rc = put_config(st, s, &m.config, err);
    if (!rc) rc = nk_store_write_manifest(st, &n, &m, err);
    nk_store_unlock(lock);
    nk_free(buf);
    return rc;
}

nook_status nk_spec_store_find(const nk_store *st, const char *name, char *path, size_t cap, nook_error *err) {
    nk_name n;
    nook_status rc = nk_name_parse(name, &n, err);
    if (rc) return rc;
    nk_manifest m;
    if ((rc = nk_store_read_manifest(st, &n, &m, NULL, 0, err))) return rc;
    const nk_layer *l = nk_manifest_find(&m, NK_MT_SPECIALIST);
    if (!l) {
        rc = nk_fail(err, NOOK_EINVAL, "'%s' is a model, not a specialist", name);
    } else {
        nk_store_blob_path(st, l->digest, path, cap);
        struct stat sb;
        if (stat(path, &sb) != 0 || (uint64_t)sb.st_size != l->size)
            rc = nk_fail(err, NOOK_ENOTFOUND, "specialist '%s': its blob %s is missing from the store", name, l->digest);
    }
    nk_manifest_free(&m);
    return rc;
}

nook_status nk_spec_store_open(const nk_store *st, const char *name, nk_spec **out, nook_error *err) {
    *out = NULL;
    char path[4400];
    nook_status rc = nk_spec_store_find(st, name, path, sizeof path, err);
    if (rc) return rc;
    if ((rc = nk_spec_load(path, out, err))) return rc;
    nk_free((*out)->name);   /* the name it is stored under, not the one it was trained as */
    (*out)->name = nk_strdup(name);
    if (!(*out)->name) { nk_spec_free(*out); *out = NULL; return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    return NOOK_OK;
}

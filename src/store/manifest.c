/*
 * manifest.c: Docker distribution v2 manifests as Ollama writes them, parsed strictly
 * (they come from registries: untrusted) and serialized canonically.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool text_layer(const char *mt) {
    return strcmp(mt, NK_MT_TEMPLATE) == 0 || strcmp(mt, NK_MT_SYSTEM) == 0 ||
           strcmp(mt, NK_MT_PARAMS) == 0 || strcmp(mt, NK_MT_MESSAGES) == 0 ||
           strcmp(mt, NK_MT_LICENSE) == 0 || strcmp(mt, NK_MT_CONFIG) == 0;
}

static nook_status layer_from(json_t *o, nk_layer *l, const char *where, nook_error *err) {
    if (!json_is_object(o)) return nk_fail(err, NOOK_EFORMAT, "manifest: %s is not an object", where);
    json_t *mt = json_object_get(o, "mediaType"), *dg = json_object_get(o, "digest"),
           *sz = json_object_get(o, "size");
    if (!json_is_string(mt) || json_string_length(mt) == 0 || json_string_length(mt) >= sizeof l->media_type)
        return nk_fail(err, NOOK_EFORMAT, "manifest: %s has no valid mediaType", where);
    if (!json_is_string(dg) || !nk_digest_valid(json_string_value(dg)))
        return nk_fail(err, NOOK_EFORMAT, "manifest: %s has an invalid digest '%.80s' (want sha256:<64 hex>)",
                       where, json_is_string(dg) ? json_string_value(dg) : "");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return nk_fail(err, NOOK_EFORMAT, "manifest: %s has an invalid size", where);
    snprintf(l->media_type, sizeof l->media_type, "%s", json_string_value(mt));
    snprintf(l->digest, sizeof l->digest, "%s", json_string_value(dg));
    l->size = (uint64_t)json_integer_value(sz);
    if (text_layer(l->media_type) && l->size > NK_TEXT_LAYER_MAX)
        return nk_fail(err, NOOK_ERANGE, "manifest: %s (%s) declares %llu bytes, over the %u-byte cap",
                       where, l->media_type, (unsigned long long)l->size, NK_TEXT_LAYER_MAX);
    return NOOK_OK;
}

nook_status nk_manifest_parse(const char *text, size_t len, nk_manifest *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    if (len > NK_MANIFEST_MAX)
        return nk_fail(err, NOOK_ERANGE, "manifest: %zu bytes, over the %u-byte cap", len, NK_MANIFEST_MAX);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return nk_fail(err, NOOK_EFORMAT, "manifest: invalid JSON (line %d: %s)", je.line, je.text);
    nook_status st = NOOK_OK;
    json_t *sv = json_object_get(root, "schemaVersion");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root) || !json_is_integer(sv) || json_integer_value(sv) != 2) {
        st = nk_fail(err, NOOK_EFORMAT, "manifest: schemaVersion must be 2");
        goto done;
    }
    if ((st = layer_from(json_object_get(root, "config"), &out->config, "config", err))) goto done;
    if (!json_is_array(layers)) { st = nk_fail(err, NOOK_EFORMAT, "manifest: no layers array"); goto done; }
    size_t n = json_array_size(layers);
    if (n > NK_MAX_LAYERS) { st = nk_fail(err, NOOK_ERANGE, "manifest: %zu layers, over the cap of %d", n, NK_MAX_LAYERS); goto done; }
    out->layers = nk_calloc(n ? n : 1, sizeof *out->layers);
    if (!out->layers) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < n; i++) {
        char where[32];
        snprintf(where, sizeof where, "layer %zu", i);
        if ((st = layer_from(json_array_get(layers, i), &out->layers[i], where, err))) goto done;
        out->n_layers++;
    }
done:
    json_decref(root);
    if (st) nk_manifest_free(out);
    return st;
}

void nk_manifest_free(nk_manifest *m) {
    nk_free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
}

static json_t *layer_json(const nk_layer *l) {
    return json_pack("{s:s, s:s, s:I}", "mediaType", l->media_type, "digest", l->digest, "size", (json_int_t)l->size);
}

char *nk_manifest_json(const nk_manifest *m) {
    json_t *layers = json_array();
    for (int i = 0; layers && i < m->n_layers; i++) json_array_append_new(layers, layer_json(&m->layers[i]));
    json_t *root = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", NK_MT_MANIFEST,
                             "config", layer_json(&m->config), "layers", layers);
    if (!root) return NULL;
    char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(root);
    if (!s) return NULL;
    char *r = nk_strdup(s);
    free(s);
    return r;
}

const nk_layer *nk_manifest_find(const nk_manifest *m, const char *media_type) {
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].media_type, media_type) == 0) return &m->layers[i];
    return NULL;
}

/*
 * spec_file.c: a specialist as a small GGUF file (general.architecture
 * "nook-specialist"), and loading one back with every field validated.
 *
 * Why GGUF: the project already has a bounds-checked reader and a writer for it, the
 * model store keeps GGUF blobs, and `nook show`-style tools can read the metadata.
 * Everything lives in metadata arrays (no tensors): the file is a few MB at most.
 * Layout (all keys under "specialist."): version, labels, features.{hash_bits,
 * word_max, char_min, char_max, idf}, ids (u32, sorted: the vocabulary), idf (f32),
 * columns (u32: vocabulary + embedding dims), weight (f32, columns x labels,
 * row-major), bias (f32), temperature, threshold, base_model, embed_dim, and the
 * training report (cv.macro_f1, cv.c, cv.ece_raw, cv.ece_cal, n_train).
 */
#include "specialist/specialist.h"
#include "store/store.h"
#include "gguf/gguf.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define ARCH "nook-specialist"
#define VERSION 1u
#define MAX_EMBED_DIM 65536u
#define MAX_BASE_MODEL 1024u

static nook_status build(const nk_spec *s, gguf_writer **out, nook_error *err) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status st = NOOK_OK;
    uint32_t cols = (uint32_t)s->d;
#define TRY(x) do { if (!st) st = (x); } while (0)
    TRY(gguf_set_str(w, "general.architecture", ARCH));
    TRY(gguf_set_str(w, "general.name", s->name ? s->name : "specialist"));
    TRY(gguf_set_u32(w, "specialist.version", VERSION));
    TRY(gguf_set_arr_str(w, "specialist.labels", (const char *const *)s->labels, NULL, (uint64_t)s->k));
    TRY(gguf_set_u32(w, "specialist.features.hash_bits", s->feat.hash_bits));
    TRY(gguf_set_u32(w, "specialist.features.word_max", s->feat.word_max));
    TRY(gguf_set_u32(w, "specialist.features.char_min", s->feat.char_min));
    TRY(gguf_set_u32(w, "specialist.features.char_max", s->feat.char_max));
    TRY(gguf_set_bool(w, "specialist.features.idf", s->feat.idf));
    TRY(gguf_set_arr(w, "specialist.ids", GGUF_TYPE_UINT32, s->ids, s->d_text));
    TRY(gguf_set_arr(w, "specialist.idf", GGUF_TYPE_FLOAT32, s->idf, s->d_text));
    TRY(gguf_set_u32(w, "specialist.columns", cols));
    TRY(gguf_set_arr(w, "specialist.weight", GGUF_TYPE_FLOAT32, s->W, s->d * (uint64_t)s->k));
    TRY(gguf_set_arr(w, "specialist.bias", GGUF_TYPE_FLOAT32, s->b, (uint64_t)s->k));
    TRY(gguf_set_f32(w, "specialist.temperature", (float)s->temperature));
    TRY(gguf_set_f32(w, "specialist.threshold", (float)s->threshold));
    TRY(gguf_set_str(w, "specialist.base_model", s->base_model ? s->base_model : ""));
    TRY(gguf_set_u32(w, "specialist.embed_dim", s->embed_dim));
    TRY(gguf_set_f32(w, "specialist.cv.macro_f1", (float)s->cv_macro_f1));
    TRY(gguf_set_f32(w, "specialist.cv.c", (float)s->cv_C));
    TRY(gguf_set_f32(w, "specialist.cv.ece_raw", (float)s->cv_ece_raw));
    TRY(gguf_set_f32(w, "specialist.cv.ece_cal", (float)s->cv_ece_cal));
    TRY(gguf_set_u32(w, "specialist.n_train", s->n_train));
#undef TRY
    if (st) {
        nk_fail(err, st, "writing specialist: %s", gguf_writer_error(w));
        gguf_writer_free(w);
        return st;
    }
    *out = w;
    return NOOK_OK;
}

nook_status nk_spec_save(const nk_spec *s, const char *path, nook_error *err) {
    gguf_writer *w;
    nook_status st = build(s, &w, err);
    if (st) return st;
    st = gguf_write_file(w, path, err);
    gguf_writer_free(w);
    return st;
}

nook_status nk_spec_save_mem(const nk_spec *s, uint8_t **buf, uint64_t *len, nook_error *err) {
    gguf_writer *w;
    nook_status st = build(s, &w, err);
    if (st) return st;
    st = gguf_write_mem(w, buf, len, err);
    gguf_writer_free(w);
    return st;
}

bool nk_spec_is_specialist_mem(const void *buf, size_t len) {
    gguf_file *f = NULL;
    if (gguf_parse(buf, len, &f, NULL)) return false;
    gguf_str a;
    bool yes = gguf_get_str(f, "general.architecture", &a, NULL) == NOOK_OK && gguf_str_eq(a, ARCH);
    gguf_free(f);
    return yes;
}

static nook_status get_u32(const gguf_file *f, const char *key, uint32_t *v, nook_error *err) {
    nook_status st = gguf_get_u32(f, key, v, err);
    if (st == NOOK_ENOTFOUND) return nk_fail(err, NOOK_EFORMAT, "missing %s", key);
    return st;
}

static nook_status get_f32(const gguf_file *f, const char *key, float *v, nook_error *err) {
    nook_status st = gguf_get_f32(f, key, v, err);
    if (st == NOOK_ENOTFOUND) return nk_fail(err, NOOK_EFORMAT, "missing %s", key);
    if (!st && !isfinite(*v)) return nk_fail(err, NOOK_EFORMAT, "%s is not finite", key);
    return st;
}

/* A numeric array of exactly count elements of type t, copied to dst. */
static nook_status get_arr(const gguf_file *f, const char *key, gguf_type t, uint64_t count, void *dst,
                           nook_error *err) {
    gguf_type et;
    uint64_t n;
    const uint8_t *data;
    nook_status st = gguf_get_arr(f, key, &et, &n, &data, err);
    if (st == NOOK_ENOTFOUND) return nk_fail(err, NOOK_EFORMAT, "missing %s", key);
    if (st) return st;
    if (et != t || n != count)
        return nk_fail(err, NOOK_EFORMAT, "%s: expected %llu elements of %s, found %llu of %s", key,
                       (unsigned long long)count, gguf_type_name(t), (unsigned long long)n, gguf_type_name(et));
    if (count) memcpy(dst, data, count * gguf_type_size(t));
    return NOOK_OK;
}

static char *dup_str(gguf_str s) { return nk_strndup(s.ptr, (size_t)s.len); }

static nook_status load(const gguf_file *f, nk_spec *s, nook_error *err) {
    gguf_str a;
    nook_status st = gguf_get_str(f, "general.architecture", &a, err);
    if (st == NOOK_ENOTFOUND || (!st && !gguf_str_eq(a, ARCH)))
        return nk_fail(err, NOOK_EFORMAT, "not a specialist (general.architecture is not '" ARCH "')");
    if (st) return st;
    uint32_t ver, hb, wm, cmin, cmax, cols, edim, ntr = 0;
    bool idf = true;
    if ((st = get_u32(f, "specialist.version", &ver, err))) return st;
    if (ver != VERSION)
        return nk_fail(err, NOOK_EUNSUPPORTED, "specialist file version %u (this nook reads %u)", ver, VERSION);
    gguf_str nm;
    s->name = gguf_get_str(f, "general.name", &nm, NULL) == NOOK_OK ? dup_str(nm) : nk_strdup("specialist");
    if (!s->name) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    const gguf_kv *lk = gguf_find(f, "specialist.labels");
    if (!lk || lk->val.type != GGUF_TYPE_ARRAY || lk->val.v.arr.type != GGUF_TYPE_STRING)
        return nk_fail(err, NOOK_EFORMAT, "specialist.labels: missing or not a string array");
    uint64_t k = lk->val.v.arr.count;
    if (k < 2 || k > NK_SPEC_MAX_LABELS)
        return nk_fail(err, NOOK_EFORMAT, "specialist.labels: %llu labels (2..%u)", (unsigned long long)k,
                       NK_SPEC_MAX_LABELS);
    s->labels = nk_calloc((size_t)k, sizeof *s->labels);
    if (!s->labels) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    s->k = (int)k;
    const uint8_t *p = lk->val.v.arr.data;
    for (uint64_t i = 0; i < k; i++) {
        gguf_str ls;
        p = gguf_arr_str_next(p, &ls);
        if (ls.len == 0 || ls.len > NK_SPEC_MAX_LABEL || memchr(ls.ptr, 0, (size_t)ls.len) ||
            nk_utf8_invalid_at(ls.ptr, (size_t)ls.len) >= 0)
            return nk_fail(err, NOOK_EFORMAT, "specialist.labels[%llu]: empty, longer than %u bytes, or not UTF-8",
                           (unsigned long long)i, NK_SPEC_MAX_LABEL);
        if (!(s->labels[i] = dup_str(ls))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(s->labels[j], s->labels[i]) == 0)
                return nk_fail(err, NOOK_EFORMAT, "specialist.labels: '%s' appears twice", s->labels[i]);
    }
    if ((st = get_u32(f, "specialist.features.hash_bits", &hb, err)) ||
        (st = get_u32(f, "specialist.features.word_max", &wm, err)) ||
        (st = get_u32(f, "specialist.features.char_min", &cmin, err)) ||
        (st = get_u32(f, "specialist.features.char_max", &cmax, err)) ||
        (st = get_u32(f, "specialist.columns", &cols, err)) ||
        (st = get_u32(f, "specialist.embed_dim", &edim, err)))
        return st;
    if (gguf_get_bool(f, "specialist.features.idf", &idf, NULL) != NOOK_OK) idf = true;
    (void)gguf_get_u32(f, "specialist.n_train", &ntr, NULL);
    s->n_train = ntr;
    s->feat = (nk_feat_cfg){ .hash_bits = hb, .word_max = wm, .char_min = cmin, .char_max = cmax, .idf = idf };
    if (wm || cmax) {
        if ((st = nk_feat_cfg_check(&s->feat, err))) return nk_fail(err, NOOK_EFORMAT, "specialist.features: %s", err ? err->msg : "");
    } else if (hb < 8 || hb > 24) {
        return nk_fail(err, NOOK_EFORMAT, "specialist.features.hash_bits %u outside 8..24", hb);
    }
    if (edim > MAX_EMBED_DIM) return nk_fail(err, NOOK_EFORMAT, "specialist.embed_dim %u over %u", edim, MAX_EMBED_DIM);
    if (cols > NK_SPEC_MAX_FEATURES || cols < edim || cols == 0)
        return nk_fail(err, NOOK_EFORMAT, "specialist.columns %u: not within %u..%u", cols, edim, NK_SPEC_MAX_FEATURES);
    s->d = cols;
    s->d_text = cols - edim;
    s->embed_dim = edim;
    if (s->d_text && !(wm || cmax))
        return nk_fail(err, NOOK_EFORMAT, "specialist: %zu text columns but no text features", s->d_text);
    s->ids = nk_alloc_array(s->d_text + 1, sizeof *s->ids);
    s->idf = nk_alloc_array(s->d_text + 1, sizeof *s->idf);
    s->W = nk_alloc_array(s->d * (size_t)k, sizeof *s->W);
    s->b = nk_alloc_array((size_t)k, sizeof *s->b);
    if (!s->ids || !s->idf || !s->W || !s->b) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if ((st = get_arr(f, "specialist.ids", GGUF_TYPE_UINT32, s->d_text, s->ids, err)) ||
        (st = get_arr(f, "specialist.idf", GGUF_TYPE_FLOAT32, s->d_text, s->idf, err)) ||
        (st = get_arr(f, "specialist.weight", GGUF_TYPE_FLOAT32, s->d * k, s->W, err)) ||
        (st = get_arr(f, "specialist.bias", GGUF_TYPE_FLOAT32, k, s->b, err)))
        return st;
    const uint32_t idmask = (1u << hb) - 1;
    for (size_t j = 0; j < s->d_text; j++) {
        if ((j && s->ids[j] <= s->ids[j - 1]) || (s->ids[j] & 0x7fffffffu & ~idmask))
            return nk_fail(err, NOOK_EFORMAT, "specialist.ids[%zu]: not increasing or outside the hashed space", j);
        if (!isfinite(s->idf[j]) || s->idf[j] < 0)
            return nk_fail(err, NOOK_EFORMAT, "specialist.idf[%zu] is not a finite non-negative number", j);
    }
    for (size_t j = 0; j < s->d * (size_t)k; j++)
        if (!isfinite(s->W[j])) return nk_fail(err, NOOK_EFORMAT, "specialist.weight[%zu] is not finite", j);
    for (uint64_t c = 0; c < k; c++)
        if (!isfinite(s->b[c])) return nk_fail(err, NOOK_EFORMAT, "specialist.bias[%llu] is not finite", (unsigned long long)c);
    float T, thr, v;
    if ((st = get_f32(f, "specialist.temperature", &T, err)) || (st = get_f32(f, "specialist.threshold", &thr, err)))
        return st;
    if (!(T > 0)) return nk_fail(err, NOOK_EFORMAT, "specialist.temperature %g is not positive", (double)T);
    if (!(thr >= 0 && thr <= 1)) return nk_fail(err, NOOK_EFORMAT, "specialist.threshold %g outside [0, 1]", (double)thr);
    s->temperature = T;
    s->threshold = thr;
    gguf_str bm = { "", 0 };
    if (gguf_get_str(f, "specialist.base_model", &bm, NULL) == NOOK_OK &&
        (bm.len > MAX_BASE_MODEL || memchr(bm.ptr, 0, (size_t)bm.len)))
        return nk_fail(err, NOOK_EFORMAT, "specialist.base_model: longer than %u bytes or contains NUL", MAX_BASE_MODEL);
    if (!(s->base_model = dup_str(bm))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (edim && !bm.len) return nk_fail(err, NOOK_EFORMAT, "specialist: embedding features without a base_model");
    if (gguf_get_f32(f, "specialist.cv.macro_f1", &v, NULL) == NOOK_OK) s->cv_macro_f1 = v;
    if (gguf_get_f32(f, "specialist.cv.c", &v, NULL) == NOOK_OK) s->cv_C = v;
    if (gguf_get_f32(f, "specialist.cv.ece_raw", &v, NULL) == NOOK_OK) s->cv_ece_raw = v;
    if (gguf_get_f32(f, "specialist.cv.ece_cal", &v, NULL) == NOOK_OK) s->cv_ece_cal = v;
    return NOOK_OK;
}

nook_status nk_spec_load_mem(const void *buf, size_t len, nk_spec **out, nook_error *err) {
    *out = NULL;
    gguf_file *f = NULL;
    nook_status st = gguf_parse(buf, len, &f, err);
    if (st) return st;
    nk_spec *s = nk_calloc(1, sizeof *s);
    if (!s) { gguf_free(f); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    st = load(f, s, err);
    gguf_free(f);
    if (st) { nk_spec_free(s); return st; }
    *out = s;
    return NOOK_OK;
}

nook_status nk_spec_load(const char *path, nk_spec **out, nook_error *err) {
    nk_map m;
    nook_status st = nk_map_file(path, false, &m, err);
    if (st) return st;
    st = nk_spec_load_mem(m.data, m.size, out, err);
    nk_unmap(&m);
    if (st) nk_prefix(err, "%s: ", path);
    return st;
}

nook_status nk_spec_open(const char *ref, nk_spec **out, nook_error *err) {
    *out = NULL;
    struct stat sb;
    if (stat(ref, &sb) == 0 && S_ISREG(sb.st_mode)) return nk_spec_load(ref, out, err);
    nk_store *st = NULL;
    nook_error e2 = { 0 };
    nook_status rc = nk_store_open(NULL, &st, &e2);
    if (!rc) rc = nk_spec_store_open(st, ref, out, &e2);
    nk_store_free(st);
    if (rc == NOOK_ENOTFOUND || (rc == NOOK_EINVAL && (strchr(ref, '/') || strstr(ref, ".gguf"))))
        return nk_fail(err, NOOK_ENOTFOUND, "specialist '%s' not found (neither a file nor a stored specialist)", ref);
    if (rc) *err = e2;
    return rc;
}

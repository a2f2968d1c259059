/*
 * model.c: nook_model_load and the model accessors; the architecture registry;
 * tensor binding and metadata helpers shared by the architecture files.
 */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

/* ---- registry ------------------------------------------------------------------- */

static const nk_arch *const k_archs[] = {
    &nk_arch_llama,
    &nk_arch_qwen2,
    &nk_arch_qwen3,
    &nk_arch_gemma3,
    &nk_arch_phi3,
};

const nk_arch *nk_arch_find(const char *name) {
    for (size_t i = 0; i < NK_ARRAY_LEN(k_archs); i++)
        if (strcmp(k_archs[i]->name, name) == 0) return k_archs[i];
    return NULL;
}

/* ---- metadata helpers --------------------------------------------------------------- */

static void arch_key(const nook_model *m, const char *key, char *buf, size_t cap) {
    snprintf(buf, cap, "%s.%s", m->arch_name, key);
}

nook_status nk_hp_u32(const nook_model *m, const char *key, bool required, int *out, nook_error *err) {
    char k[256];
    arch_key(m, key, k, sizeof k);
    const gguf_kv *kv = gguf_find(m->gguf, k);
    if (!kv) {
        if (required) return nk_fail(err, NOOK_EFORMAT, "missing metadata key %s", k);
        return NOOK_OK;
    }
    int64_t v;
    if (kv->val.type == GGUF_TYPE_ARRAY) {
        /* per-layer arrays: nook runs only the constant case */
        gguf_type et = kv->val.v.arr.type;
        if (et == GGUF_TYPE_STRING || et == GGUF_TYPE_FLOAT32 || et == GGUF_TYPE_FLOAT64 || et == GGUF_TYPE_BOOL)
            return nk_fail(err, NOOK_EFORMAT, "metadata key %s: expected integers, got an array of %s",
                           k, gguf_type_name(et));
        if (kv->val.v.arr.count == 0) return nk_fail(err, NOOK_EFORMAT, "metadata key %s: empty array", k);
        v = gguf_arr_i64(&kv->val, 0);
        for (uint64_t i = 1; i < kv->val.v.arr.count; i++)
            if (gguf_arr_i64(&kv->val, i) != v)
                return nk_fail(err, NOOK_EUNSUPPORTED,
                               "metadata key %s varies per layer (%lld at layer 0, %lld at layer %llu), which nook does not support",
                               k, (long long)v, (long long)gguf_arr_i64(&kv->val, i), (unsigned long long)i);
    } else {
        nook_status st = gguf_get_i64(m->gguf, k, &v, err);
        if (st) return st;
    }
    if (v < 0 || v > INT32_MAX)
        return nk_fail(err, NOOK_EFORMAT, "metadata key %s: value %lld out of range", k, (long long)v);
    *out = (int)v;
    return NOOK_OK;
}

nook_status nk_hp_f32(const nook_model *m, const char *key, bool required, float *out, nook_error *err) {
    char k[256];
    arch_key(m, key, k, sizeof k);
    nook_status st = gguf_get_f32(m->gguf, k, out, err);
    if (st == NOOK_ENOTFOUND) {
        nk_err_clear(err);
        if (required) return nk_fail(err, NOOK_EFORMAT, "missing metadata key %s", k);
        return NOOK_OK;
    }
    return st;
}

void nk_hp_str(const nook_model *m, const char *key, char *buf, size_t cap) {
    char k[256];
    arch_key(m, key, k, sizeof k);
    gguf_str s;
    buf[0] = 0;
    if (gguf_get_str(m->gguf, k, &s, NULL) == NOOK_OK && cap > 0) {
        size_t n = NK_MIN((size_t)s.len, cap - 1);
        memcpy(buf, s.ptr, n);
        buf[n] = 0;
    }
}

/* ---- tensor binding ----------------------------------------------------------------- */

static const char *type_label(uint32_t type, char *buf, size_t cap) {
    const char *n = nk_type_name(type);
    if (n) return n;
    snprintf(buf, cap, "unknown (id %u)", type);
    return buf;
}

/* Copy a tensor name into the model's name storage (sized at load for every tensor
 * in the file), so nk_tensor.name is NUL-terminated and lives with the model. */
static const char *keep_name(nook_model *m, const char *name) {
    size_t n = strlen(name) + 1;
    if (m->names_len + n > m->names_cap) return "";
    char *p = m->names + m->names_len;
    memcpy(p, name, n);
    m->names_len += n;
    return p;
}

nook_status nk_bind(nook_model *m, nk_tensor *out, nk_use use, bool required,
                    int64_t ne0, int64_t ne1, nook_error *err, const char *fmt, ...) {
    char name[GGUF_MAX_NAME + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    memset(out, 0, sizeof *out);

    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (required) return nk_fail(err, NOOK_EFORMAT, "missing tensor %s", name);
        return NOOK_OK;
    }
    const uint64_t want[4] = { (uint64_t)ne0, ne1 > 0 ? (uint64_t)ne1 : 1, 1, 1 };
    if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != 1 || t->ne[3] != 1) {
        if (ne1 > 0)
            return nk_fail(err, NOOK_EFORMAT, "tensor %s has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]",
                           name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                           (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (long long)ne0, (long long)ne1);
        return nk_fail(err, NOOK_EFORMAT, "tensor %s has shape [%llu, %llu, %llu, %llu], expected [%lld]",
                       name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                       (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (long long)ne0);
    }
    char tb[32];
    const nk_type_traits *tr = nk_type_get(t->type);
    bool ok;
    switch (use) {
    case NK_USE_MATMUL: ok = nk_matmul_supported(t->type, ne0); break;
    case NK_USE_ROWS:   ok = tr && tr->to_float && nk_row_size(t->type, ne0) != 0; break;
    default:            ok = t->type == NK_TYPE_F32; break;
    }
    if (!ok) {
        if (use == NK_USE_F32 && tr && tr->name)
            return nk_fail(err, NOOK_EUNSUPPORTED, "tensor %s has type %s; nook reads it only as F32",
                           name, tr->name);
        if (tr && tr->name && nk_row_size(t->type, ne0) == 0)
            return nk_fail(err, NOOK_EFORMAT, "tensor %s: row of %lld elements is not a whole number of %s blocks",
                           name, (long long)ne0, tr->name);
        return nk_fail(err, NOOK_EUNSUPPORTED, "tensor %s has type %s, which nook does not support",
                       name, type_label(t->type, tb, sizeof tb));
    }
    const size_t nb1 = nk_row_size(t->type, ne0);
    uint64_t need;
    if (!nk_mul_ok(nb1, want[1], &need) || need > t->nbytes)
        return nk_fail(err, NOOK_EFORMAT, "tensor %s: %llu bytes of data, its shape needs more",
                       name, (unsigned long long)t->nbytes);
    out->name = keep_name(m, name);
    out->type = t->type;
    for (int i = 0; i < 4; i++) out->ne[i] = (int64_t)want[i];
    out->nb1 = nb1;
    out->data = t->data;
    return NOOK_OK;
}

/* ---- load ----------------------------------------------------------------------------- */

static char *dup_gguf_str(gguf_str s) { return nk_strndup(s.ptr, (size_t)s.len); }

nook_model_params nook_model_default_params(void) {
    return (nook_model_params){ .n_threads = 0, .no_mmap = false };
}

void nook_model_wait_ready(const nook_model *m) {
    if (m) nk_model_repack_wait(m);
}

void nook_model_free(nook_model *m) {
    if (!m) return;
    nk_vocab_free(m->vocab);
    gguf_free(m->gguf);
    nk_model_repack_free(m);
    nk_unmap(&m->map);
    nk_free(m->arch_name);
    nk_free(m->name);
    nk_free(m->chat_template);
    nk_free(m->layers);
    nk_free(m->names);
    nk_free(m->path);
    nk_free(m);
}

static nook_status load(nook_model *m, const char *path, const nook_model_params *p, nook_error *err) {
    /* vocab-only loads read a few MB of metadata: a plain map touches only those */
    nook_status st;
    if (!(m->path = nk_strdup(path))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (p && p->vocab_only) st = nk_map_file(path, false, &m->map, err);
    else if (p && p->no_mmap) st = nk_load_file(path, p->n_threads, &m->map, err);
    else st = nk_map_file_huge(path, &m->map, err);
    if (st) return st;
    st = gguf_parse(m->map.data, m->map.size, &m->gguf, err);
    if (st) return st;

    gguf_str s;
    st = gguf_get_str(m->gguf, "general.architecture", &s, err);
    if (st == NOOK_ENOTFOUND) {
        nk_err_clear(err);
        return nk_fail(err, NOOK_EFORMAT, "missing metadata key general.architecture");
    }
    if (st) return st;
    if (!(m->arch_name = dup_gguf_str(s))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    bool vocab_only = p && p->vocab_only;
    m->arch = nk_arch_find(m->arch_name);
    if (!m->arch && !vocab_only)
        return nk_fail(err, NOOK_EUNSUPPORTED, "architecture \"%.64s\" is not supported by nook", m->arch_name);

    if (gguf_get_str(m->gguf, "general.name", &s, NULL) == NOOK_OK) m->name = dup_gguf_str(s);
    else m->name = nk_strdup("");
    if (!m->name) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (gguf_get_str(m->gguf, "tokenizer.chat_template", &s, NULL) == NOOK_OK &&
        !(m->chat_template = dup_gguf_str(s)))
        return nk_fail(err, NOOK_ENOMEM, "out of memory");

    st = nk_vocab_load(m->gguf, &m->vocab, err);
    if (st) return st;
    m->hp.n_vocab = nk_vocab_n_tokens(m->vocab);
    if (vocab_only) {
        m->arch = NULL;   /* nook_session_new refuses such a model */
        return NOOK_OK;
    }

    st = m->arch->load_hparams(m, err);
    if (st) return st;

    uint64_t cap;
    if (!nk_mul_ok(m->gguf->n_tensors + 1, GGUF_MAX_NAME + 32, &cap) || cap > SIZE_MAX)
        return nk_fail(err, NOOK_EFORMAT, "too many tensors");
    m->names_cap = (size_t)cap;
    if (!(m->names = nk_malloc(m->names_cap))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (!(m->layers = nk_calloc((size_t)m->hp.n_layer, sizeof *m->layers)))
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    st = m->arch->bind(m, err);
    if (st) return st;
    st = nk_model_repack(m, err);
    if (st) return st;

    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const gguf_tensor *t = &m->gguf->tensors[i];
        m->n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    return NOOK_OK;
}

nook_status nook_model_load(const char *path, const nook_model_params *params,
                            nook_model **out, nook_error *err) {
    if (!out) return nk_fail(err, NOOK_EINVAL, "nook_model_load: out is NULL");
    *out = NULL;
    if (!path) return nk_fail(err, NOOK_EINVAL, "nook_model_load: path is NULL");
    nk_err_clear(err);
    nk_tensor_init();
    nook_model *m = nk_calloc(1, sizeof *m);
    if (!m) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status st = load(m, path, params, err);
    if (st) {
        /* the mapper names the file itself; later errors get the path prepended */
        if (m->map.data) nk_prefix(err, "%s: ", path);
        nook_model_free(m);
        return st;
    }
    *out = m;
    return NOOK_OK;
}

/* ---- accessors ------------------------------------------------------------------------ */

nook_status nook_model_check(const nook_model *m, nook_error *err) {
    if (!m) return nk_fail(err, NOOK_EINVAL, "nook_model_check: model is NULL");
    return nk_map_check(&m->map, m->path, err);
}

const char *nook_model_arch(const nook_model *m) { return m->arch_name; }
const char *nook_model_name(const nook_model *m) { return m->name; }
const char *nook_model_chat_template(const nook_model *m) { return m->chat_template; }
int nook_model_n_vocab(const nook_model *m) { return m->hp.n_vocab; }
int nook_model_n_ctx_train(const nook_model *m) { return m->hp.n_ctx_train; }
int nook_model_n_embd(const nook_model *m) { return m->hp.n_embd; }
int nook_model_n_layer(const nook_model *m) { return m->hp.n_layer; }
uint64_t nook_model_n_params(const nook_model *m) { return m->n_params; }

/*
 * info.c: what a caller may ask a model besides running it: metadata lookup (as
 * llama.cpp's llama_model_meta_*), memory figures for a scheduler, and the public log
 * sink over base's nk_set_log.
 */
#include "model/arch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int nook_model_meta_count(const nook_model *m) {
    return m && m->gguf ? (int)m->gguf->n_kv : 0;
}

/* the text of s into buf (truncated, NUL-terminated); returns its full length */
static int put(char *buf, size_t cap, const char *s, size_t n) {
    if (cap) {
        const size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, s, k);
        buf[k] = 0;
    }
    return (int)n;
}

int nook_model_meta_key_by_index(const nook_model *m, int i, char *buf, size_t cap) {
    if (!m || !m->gguf || i < 0 || (uint64_t)i >= m->gguf->n_kv) return -1;
    const gguf_str k = m->gguf->kv[i].key;
    return put(buf, cap, k.ptr, (size_t)k.len);
}

int nook_model_meta_val_str(const nook_model *m, const char *key, char *buf, size_t cap) {
    if (!m || !m->gguf || !key) return -1;
    const gguf_kv *kv = gguf_find(m->gguf, key);
    if (!kv) return -1;
    const gguf_value *v = &kv->val;
    char tmp[96];
    int n;
    switch (v->type) {
    case GGUF_TYPE_STRING: return put(buf, cap, v->v.str.ptr, (size_t)v->v.str.len);
    case GGUF_TYPE_BOOL: n = snprintf(tmp, sizeof tmp, "%s", v->v.u64 ? "true" : "false"); break;
    case GGUF_TYPE_FLOAT32:
    case GGUF_TYPE_FLOAT64: n = snprintf(tmp, sizeof tmp, "%g", v->v.f64); break;
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_INT16:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_INT64: n = snprintf(tmp, sizeof tmp, "%" PRId64, v->v.i64); break;
    case GGUF_TYPE_ARRAY:
        n = snprintf(tmp, sizeof tmp, "[%s x %" PRIu64 "]", gguf_type_name(v->v.arr.type), v->v.arr.count);
        break;
    default: n = snprintf(tmp, sizeof tmp, "%" PRIu64, v->v.u64); break;
    }
    return put(buf, cap, tmp, (size_t)(n < 0 ? 0 : n));
}

uint64_t nook_model_weight_bytes(const nook_model *m) {
    if (!m || !m->gguf) return 0;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) sum += m->gguf->tensors[i].nbytes;
    return sum;
}

uint64_t nook_model_kv_bytes_per_token(const nook_model *m, int kv_type) {
    if (!m || !m->layers) return 0;
    const uint32_t t = kv_type == NOOK_KV_Q8_0   ? NK_TYPE_Q8_0
                       : kv_type == NOOK_KV_Q4_0 ? NK_TYPE_Q4_0
                       : kv_type == NOOK_KV_F32  ? NK_TYPE_F32
                                                 : NK_TYPE_F16;
    const nk_hparams *hp = &m->hp;
    return (uint64_t)hp->n_layer * (nk_row_size(t, (int64_t)hp->n_head_kv * hp->head_dim_k) +
                                    nk_row_size(t, (int64_t)hp->n_head_kv * hp->head_dim_v));
}

/* the embedder's sink behind base's (whose level enum has the same order) */
static void (*g_log_fn)(nook_log_level, const char *, void *);

static void log_tramp(nk_log_level level, const char *msg, void *ud) {
    if (g_log_fn) g_log_fn((nook_log_level)level, msg, ud);
}

void nook_log_set(void (*fn)(nook_log_level level, const char *msg, void *ud), void *ud) {
    g_log_fn = fn;
    nk_set_log(fn ? log_tramp : NULL, ud);
}

/*
 * gguf_get.c: typed getters and array helpers over a parsed (validated) file.
 *
 * Everything here trusts the index gguf_parse built: strings and arrays were bounds-
 * checked there, so walking them needs no checks beyond the caller's i < count.
 */
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"

#include <math.h>
#include <string.h>

const char *gguf_type_name(gguf_type t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
        "string", "array", "uint64", "int64", "float64",
    };
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

static bool is_unsigned(gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64;
}
static bool is_signed(gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

/* Find key or say why not: NOOK_ENOTFOUND is quiet (no message) since absence is
 * usually an expected case the caller handles with a default. */
static nook_status find(const gguf_file *f, const char *key, const gguf_kv **kv) {
    *kv = gguf_find(f, key);
    return *kv ? NOOK_OK : NOOK_ENOTFOUND;
}

static nook_status wrong_type(nook_error *err, const char *key, gguf_type have, const char *want) {
    return nk_fail(err, NOOK_EFORMAT, "gguf: key '%s' is a %s, expected %s", key, gguf_type_name(have), want);
}

nook_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, nook_error *err) {
    const gguf_kv *kv;
    nook_status st = find(f, key, &kv);
    if (st) return st;
    const gguf_value *v = &kv->val;
    if (is_unsigned(v->type)) {
        if (v->v.u64 > UINT32_MAX)
            return nk_fail(err, NOOK_EFORMAT, "gguf: key '%s' = %llu does not fit in uint32", key,
                           (unsigned long long)v->v.u64);
        *out = (uint32_t)v->v.u64;
        return NOOK_OK;
    }
    if (is_signed(v->type)) {
        if (v->v.i64 < 0 || v->v.i64 > (int64_t)UINT32_MAX)
            return nk_fail(err, NOOK_EFORMAT, "gguf: key '%s' = %lld does not fit in uint32", key,
                           (long long)v->v.i64);
        *out = (uint32_t)v->v.i64;
        return NOOK_OK;
    }
    return wrong_type(err, key, v->type, "an integer");
}

nook_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, nook_error *err) {
    const gguf_kv *kv;
    nook_status st = find(f, key, &kv);
    if (st) return st;
    const gguf_value *v = &kv->val;
    if (is_signed(v->type)) {
        *out = v->v.i64;
        return NOOK_OK;
    }
    if (is_unsigned(v->type)) {
        if (v->v.u64 > (uint64_t)INT64_MAX)
            return nk_fail(err, NOOK_EFORMAT, "gguf: key '%s' = %llu does not fit in int64", key,
                           (unsigned long long)v->v.u64);
        *out = (int64_t)v->v.u64;
        return NOOK_OK;
    }
    return wrong_type(err, key, v->type, "an integer");
}

nook_status gguf_get_f32(const gguf_file *f, const char *key, float *out, nook_error *err) {
    const gguf_kv *kv;
    nook_status st = find(f, key, &kv);
    if (st) return st;
    const gguf_value *v = &kv->val;
    if (v->type == GGUF_TYPE_FLOAT32 || v->type == GGUF_TYPE_FLOAT64) *out = (float)v->v.f64;
    else if (is_signed(v->type)) *out = (float)v->v.i64;
    else if (is_unsigned(v->type)) *out = (float)v->v.u64;
    else return wrong_type(err, key, v->type, "a number");
    return NOOK_OK;
}

nook_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, nook_error *err) {
    const gguf_kv *kv;
    nook_status st = find(f, key, &kv);
    if (st) return st;
    if (kv->val.type != GGUF_TYPE_BOOL) return wrong_type(err, key, kv->val.type, "a bool");
    *out = kv->val.v.u64 != 0;
    return NOOK_OK;
}

nook_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, nook_error *err) {
    const gguf_kv *kv;
    nook_status st = find(f, key, &kv);
    if (st) return st;
    if (kv->val.type != GGUF_TYPE_STRING) return wrong_type(err, key, kv->val.type, "a string");
    *out = kv->val.v.str;
    return NOOK_OK;
}

nook_status gguf_get_arr(const gguf_file *f, const char *key, gguf_type *type, uint64_t *count,
                         const uint8_t **data, nook_error *err) {
    const gguf_kv *kv;
    nook_status st = find(f, key, &kv);
    if (st) return st;
    if (kv->val.type != GGUF_TYPE_ARRAY) return wrong_type(err, key, kv->val.type, "an array");
    if (type) *type = kv->val.v.arr.type;
    if (count) *count = kv->val.v.arr.count;
    if (data) *data = kv->val.v.arr.data;
    return NOOK_OK;
}

const uint8_t *gguf_arr_str_next(const uint8_t *p, gguf_str *out) {
    uint64_t n = 0;
    for (unsigned i = 8; i-- > 0;) n = (n << 8) | p[i];
    out->ptr = (const char *)(p + 8);
    out->len = n;
    return p + 8 + n;
}

nook_status gguf_arr_strings(const gguf_value *v, gguf_str **out, nook_error *err) {
    *out = NULL;
    if (v->type != GGUF_TYPE_ARRAY || v->v.arr.type != GGUF_TYPE_STRING)
        return nk_fail(err, NOOK_EFORMAT, "gguf: expected an array of strings, got %s%s%s",
                       gguf_type_name(v->type), v->type == GGUF_TYPE_ARRAY ? " of " : "",
                       v->type == GGUF_TYPE_ARRAY ? gguf_type_name(v->v.arr.type) : "");
    uint64_t n = v->v.arr.count;
    gguf_str *s = nk_alloc_array(n ? n : 1, sizeof *s);
    if (!s) return nk_fail(err, NOOK_ENOMEM, "gguf: cannot allocate %llu strings", (unsigned long long)n);
    const uint8_t *p = v->v.arr.data;
    for (uint64_t i = 0; i < n; i++) p = gguf_arr_str_next(p, &s[i]);
    *out = s;
    return NOOK_OK;
}

/* Element i as a decoded scalar (the caller checked i < count and that it is numeric). */
static gguf_value arr_elem(const gguf_value *v, uint64_t i) {
    gguf_value e = { 0 };
    gguf_type t = v->v.arr.type;
    size_t es = gguf_type_size(t);
    if (v->type != GGUF_TYPE_ARRAY || es == 0 || i >= v->v.arr.count) {
        e.type = GGUF_TYPE_COUNT;   /* not numeric: callers turn this into 0 */
        return e;
    }
    nk_gguf_decode_scalar(t, v->v.arr.data + i * es, &e);
    return e;
}

double gguf_arr_f64(const gguf_value *v, uint64_t i) {
    gguf_value e = arr_elem(v, i);
    if (e.type == GGUF_TYPE_FLOAT32 || e.type == GGUF_TYPE_FLOAT64) return e.v.f64;
    if (is_signed(e.type)) return (double)e.v.i64;
    if (is_unsigned(e.type) || e.type == GGUF_TYPE_BOOL) return (double)e.v.u64;
    return 0.0;
}

int64_t gguf_arr_i64(const gguf_value *v, uint64_t i) {
    gguf_value e = arr_elem(v, i);
    if (is_signed(e.type)) return e.v.i64;
    if (is_unsigned(e.type) || e.type == GGUF_TYPE_BOOL) return (int64_t)e.v.u64;
    if (e.type == GGUF_TYPE_FLOAT32 || e.type == GGUF_TYPE_FLOAT64) {
        double d = e.v.f64;   /* truncate toward zero, saturating: never UB on odd floats */
        if (isnan(d)) return 0;
        if (d >= 9223372036854775807.0) return INT64_MAX;
        if (d <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)d;
    }
    return 0;
}

/*
 * gguf_write.c: build a GGUF v3 file the way llama.cpp lays one out.
 *
 * Layout: header, metadata in insertion order, tensor infos in insertion order, zero
 * padding to the alignment, then each tensor's bytes followed by zero padding to the
 * alignment. Offsets are therefore the running sum of the padded sizes, which is the
 * strict "no gaps" layout current ggml readers insist on.
 *
 * Each kv is kept pre-encoded (the bytes after its type id), so serializing is copying
 * and replacing a key swaps its payload in place, keeping its position.
 */
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    size_t key_len;
    gguf_type type;
    uint8_t *payload;      /* the encoded value, without the type id */
    size_t payload_len;
} wkv;

typedef struct wtensor {
    char *name;
    size_t name_len;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint8_t *data;
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    nook_error last;       /* why the last set/add call failed */
};

gguf_writer *gguf_writer_new(void) { return nk_calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        nk_free(w->kv[i].key);
        nk_free(w->kv[i].payload);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        nk_free(w->t[i].name);
        nk_free(w->t[i].data);
    }
    nk_free(w->kv);
    nk_free(w->t);
    nk_free(w);
}

const char *gguf_writer_error(const gguf_writer *w) { return w ? w->last.msg : "no writer"; }

/* ---- little-endian byte buffer ---------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return; }
            cap *= 2;
        }
        uint8_t *p = nk_realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void store_le(uint8_t *p, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void buf_le(buf *b, uint64_t v, unsigned n) {
    uint8_t t[8];
    store_le(t, v, n);
    buf_put(b, t, n);
}

static void buf_str(buf *b, const char *s, uint64_t n) {
    buf_le(b, n, 8);
    buf_put(b, s, (size_t)n);
}

/* ---- kv ---------------------------------------------------------------------------------- */

static nook_status wfail(gguf_writer *w, nook_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nook_status wfail(gguf_writer *w, nook_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    nk_vfail(&w->last, code, fmt, ap);
    va_end(ap);
    return code;
}

/* Insert or replace key with an encoded payload; takes ownership of b's bytes. */
static nook_status put_kv(gguf_writer *w, const char *key, gguf_type type, buf *b) {
    if (!w) { nk_free(b->p); return NOOK_EINVAL; }
    if (b->oom) { nk_free(b->p); return wfail(w, NOOK_ENOMEM, "gguf writer: out of memory encoding '%s'", key ? key : ""); }
    if (!key || !*key) { nk_free(b->p); return wfail(w, NOOK_EINVAL, "gguf writer: empty key"); }
    size_t kl = strlen(key);
    for (size_t i = 0; i < w->n_kv; i++) {
        if (w->kv[i].key_len == kl && memcmp(w->kv[i].key, key, kl) == 0) {
            nk_free(w->kv[i].payload);   /* replace in place: position is kept */
            w->kv[i].type = type;
            w->kv[i].payload = b->p;
            w->kv[i].payload_len = b->len;
            return NOOK_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *n = nk_realloc(w->kv, cap * sizeof *n);
        if (!n) { nk_free(b->p); return wfail(w, NOOK_ENOMEM, "gguf writer: out of memory adding '%s'", key); }
        w->kv = n;
        w->cap_kv = cap;
    }
    char *k = nk_strndup(key, kl);
    if (!k) { nk_free(b->p); return wfail(w, NOOK_ENOMEM, "gguf writer: out of memory adding '%s'", key); }
    w->kv[w->n_kv++] = (wkv){ k, kl, type, b->p, b->len };
    return NOOK_OK;
}

static nook_status set_scalar(gguf_writer *w, const char *key, gguf_type t, uint64_t raw) {
    buf b = { 0 };
    buf_le(&b, raw, (unsigned)gguf_type_size(t));
    return put_kv(w, key, t, &b);
}

nook_status gguf_set_u32(gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_TYPE_UINT32, v); }
nook_status gguf_set_i32(gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_TYPE_INT32, (uint32_t)v); }
nook_status gguf_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_TYPE_UINT64, v); }
nook_status gguf_set_bool(gguf_writer *w, const char *key, bool v) { return set_scalar(w, key, GGUF_TYPE_BOOL, v ? 1 : 0); }

nook_status gguf_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, GGUF_TYPE_FLOAT32, bits);
}

nook_status gguf_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!w) return NOOK_EINVAL;
    if (!v) return wfail(w, NOOK_EINVAL, "gguf writer: NULL string for '%s'", key ? key : "");
    buf b = { 0 };
    buf_str(&b, v, strlen(v));
    return put_kv(w, key, GGUF_TYPE_STRING, &b);
}

nook_status gguf_set_arr(gguf_writer *w, const char *key, gguf_type t, const void *data, uint64_t count) {
    if (!w) return NOOK_EINVAL;
    size_t es = gguf_type_size(t);
    uint64_t n;
    if (es == 0)
        return wfail(w, NOOK_EINVAL, "gguf writer: '%s': gguf_set_arr needs a scalar element type, not %s",
                     key ? key : "", gguf_type_name(t));
    if (!nk_mul_ok(count, es, &n) || n > SIZE_MAX - 12)
        return wfail(w, NOOK_EINVAL, "gguf writer: '%s': array of %llu elements is too large", key ? key : "",
                     (unsigned long long)count);
    if (n && !data) return wfail(w, NOOK_EINVAL, "gguf writer: '%s': NULL array data", key ? key : "");
    buf b = { 0 };
    buf_le(&b, (uint64_t)t, 4);
    buf_le(&b, count, 8);
    /* the caller's elements are host-order; GGUF is little-endian */
    const uint8_t *p = data;
    for (uint64_t i = 0; i < count && !b.oom; i++) {
        uint64_t v = 0;
        memcpy(&v, p + i * es, es);   /* correct on little-endian hosts, which nook targets */
        buf_le(&b, v, (unsigned)es);
    }
    return put_kv(w, key, GGUF_TYPE_ARRAY, &b);
}

nook_status gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                             uint64_t count) {
    if (!w) return NOOK_EINVAL;
    if (count && !strs) return wfail(w, NOOK_EINVAL, "gguf writer: '%s': NULL string array", key ? key : "");
    buf b = { 0 };
    buf_le(&b, GGUF_TYPE_STRING, 4);
    buf_le(&b, count, 8);
    for (uint64_t i = 0; i < count && !b.oom; i++) {
        if (!strs[i]) {
            nk_free(b.p);
            return wfail(w, NOOK_EINVAL, "gguf writer: '%s': string %llu is NULL", key ? key : "",
                         (unsigned long long)i);
        }
        buf_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
    }
    return put_kv(w, key, GGUF_TYPE_ARRAY, &b);
}

nook_status gguf_set_kv_from(gguf_writer *w, const gguf_kv *kv) {
    if (!w) return NOOK_EINVAL;
    if (!kv || kv->key.len == 0)
        return wfail(w, NOOK_EINVAL, "gguf writer: gguf_set_kv_from needs a kv with a key");
    char *key = nk_strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key) return wfail(w, NOOK_ENOMEM, "gguf writer: out of memory copying a key");
    if (strlen(key) != kv->key.len) {
        nk_free(key);
        return wfail(w, NOOK_EINVAL, "gguf writer: key with an embedded NUL cannot be copied");
    }
    const gguf_value *v = &kv->val;
    buf b = { 0 };
    switch (v->type) {
    case GGUF_TYPE_STRING:
        buf_str(&b, v->v.str.ptr, v->v.str.len);
        break;
    case GGUF_TYPE_ARRAY:
        /* the parser validated the packed elements: copy them verbatim */
        buf_le(&b, (uint64_t)v->v.arr.type, 4);
        buf_le(&b, v->v.arr.count, 8);
        buf_put(&b, v->v.arr.data, (size_t)v->v.arr.nbytes);
        break;
    case GGUF_TYPE_FLOAT32: {
        float f = (float)v->v.f64;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        buf_le(&b, bits, 4);
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &v->v.f64, 8);
        buf_le(&b, bits, 8);
        break;
    }
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        buf_le(&b, (uint64_t)v->v.i64, (unsigned)gguf_type_size(v->type));
        break;
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
    case GGUF_TYPE_BOOL:
        buf_le(&b, v->v.u64, (unsigned)gguf_type_size(v->type));
        break;
    default:
        nk_free(key);
        return wfail(w, NOOK_EINVAL, "gguf writer: kv has unknown type %d", (int)v->type);
    }
    nook_status st = put_kv(w, key, v->type, &b);
    nk_free(key);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------- */

nook_status gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                            const void *data, uint64_t nbytes) {
    if (!w) return NOOK_EINVAL;
    if (!name || !*name) return wfail(w, NOOK_EINVAL, "gguf writer: tensor needs a name");
    size_t nl = strlen(name);
    if (nl >= GGUF_MAX_NAME)
        return wfail(w, NOOK_EINVAL, "gguf writer: tensor name '%s' is %zu bytes, the limit is %d", name, nl,
                     GGUF_MAX_NAME - 1);
    if (n_dims > GGUF_MAX_DIMS || (n_dims && !ne))
        return wfail(w, NOOK_EINVAL, "gguf writer: tensor '%s': bad n_dims %u", name, n_dims);
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].name_len == nl && memcmp(w->t[i].name, name, nl) == 0)
            return wfail(w, NOOK_EINVAL, "gguf writer: duplicate tensor name '%s'", name);
    uint64_t want;
    nook_error e;
    nook_status st = nk_gguf_tensor_nbytes(type, n_dims, ne, &want, &e);
    if (st) return wfail(w, NOOK_EINVAL, "gguf writer: tensor '%s': %s", name, e.msg);
    if (want != nbytes)
        return wfail(w, NOOK_EINVAL, "gguf writer: tensor '%s': %llu bytes given, type and dims need %llu", name,
                     (unsigned long long)nbytes, (unsigned long long)want);
    if (!data) return wfail(w, NOOK_EINVAL, "gguf writer: tensor '%s': NULL data", name);
    if (nbytes > SIZE_MAX) return wfail(w, NOOK_EINVAL, "gguf writer: tensor '%s' is too large", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *n = nk_realloc(w->t, cap * sizeof *n);
        if (!n) return wfail(w, NOOK_ENOMEM, "gguf writer: out of memory adding tensor '%s'", name);
        w->t = n;
        w->cap_t = cap;
    }
    wtensor t = { .name = nk_strndup(name, nl), .name_len = nl, .n_dims = n_dims, .type = type,
                  .data = nk_malloc((size_t)nbytes), .nbytes = nbytes };
    if (!t.name || !t.data) {
        nk_free(t.name);
        nk_free(t.data);
        return wfail(w, NOOK_ENOMEM, "gguf writer: out of memory copying tensor '%s'", name);
    }
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    memcpy(t.data, data, (size_t)nbytes);
    w->t[w->n_t++] = t;
    return NOOK_OK;
}

/* ---- serialize ------------------------------------------------------------------------------ */

typedef nook_status (*sink_fn)(void *ctx, const void *p, size_t n, nook_error *err);

static const uint8_t k_zeros[256];

static nook_status write_pad(sink_fn sink, void *ctx, uint64_t n, nook_error *err) {
    while (n) {
        size_t k = (size_t)NK_MIN(n, sizeof k_zeros);
        nook_status st = sink(ctx, k_zeros, k, err);
        if (st) return st;
        n -= k;
    }
    return NOOK_OK;
}

static nook_status writer_alignment(const gguf_writer *w, uint32_t *align, nook_error *err) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        if (w->kv[i].type != GGUF_TYPE_UINT32)
            return nk_fail(err, NOOK_EINVAL, "gguf writer: general.alignment must be a uint32, not %s",
                           gguf_type_name(w->kv[i].type));
        uint32_t a = (uint32_t)(w->kv[i].payload[0] | w->kv[i].payload[1] << 8 |
                                (uint32_t)w->kv[i].payload[2] << 16 | (uint32_t)w->kv[i].payload[3] << 24);
        if (a == 0 || (a & (a - 1)))
            return nk_fail(err, NOOK_EINVAL, "gguf writer: general.alignment %u is not a nonzero power of two", a);
        *align = a;
    }
    return NOOK_OK;
}

static uint64_t pad_to(uint64_t x, uint32_t a) { return (a - x % a) % a; }

/* Emit the file through sink; *total gets its size (computed before anything is written). */
static nook_status serialize(const gguf_writer *w, sink_fn sink, void *ctx, uint64_t *total, nook_error *err) {
    uint32_t align;
    nook_status st = writer_alignment(w, &align, err);
    if (st) return st;
    buf b = { 0 };   /* header, kvs and tensor infos: small, built in memory */
    buf_le(&b, GGUF_MAGIC, 4);
    buf_le(&b, 3, 4);
    buf_le(&b, w->n_t, 8);
    buf_le(&b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        buf_str(&b, w->kv[i].key, w->kv[i].key_len);
        buf_le(&b, (uint64_t)w->kv[i].type, 4);
        buf_put(&b, w->kv[i].payload, w->kv[i].payload_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        buf_str(&b, t->name, t->name_len);
        buf_le(&b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_le(&b, t->ne[d], 8);
        buf_le(&b, t->type, 4);
        buf_le(&b, off, 8);
        if (!nk_add_ok(off, t->nbytes + pad_to(t->nbytes, align), &off)) {
            nk_free(b.p);
            return nk_fail(err, NOOK_ERANGE, "gguf writer: total tensor size overflows");
        }
    }
    if (b.oom) {
        nk_free(b.p);
        return nk_fail(err, NOOK_ENOMEM, "gguf writer: out of memory building the header");
    }
    /* with no tensors there is no data section to align (llama.cpp's vocab-only files
     * end right after the metadata, and a huge alignment must not cost a huge pad) */
    uint64_t head_pad = w->n_t ? pad_to(b.len, align) : 0;
    if (!nk_add_ok(b.len + head_pad, off, total)) {
        nk_free(b.p);
        return nk_fail(err, NOOK_ERANGE, "gguf writer: file size overflows");
    }
    st = sink(ctx, NULL, 0, err);   /* announce: lets the memory sink allocate *total */
    if (!st) st = sink(ctx, b.p, b.len, err);
    nk_free(b.p);
    if (!st) st = write_pad(sink, ctx, head_pad, err);
    for (size_t i = 0; i < w->n_t && !st; i++) {
        st = sink(ctx, w->t[i].data, (size_t)w->t[i].nbytes, err);
        if (!st) st = write_pad(sink, ctx, pad_to(w->t[i].nbytes, align), err);
    }
    return st;
}

typedef struct mem_sink {
    uint8_t *p;
    uint64_t len, cap;
    const uint64_t *total;
} mem_sink;

static nook_status mem_put(void *ctx, const void *p, size_t n, nook_error *err) {
    mem_sink *m = ctx;
    if (!m->p) {
        if (*m->total > SIZE_MAX) return nk_fail(err, NOOK_ENOMEM, "gguf writer: file too large for memory");
        m->cap = *m->total;
        m->p = nk_malloc((size_t)m->cap);
        if (!m->p) return nk_fail(err, NOOK_ENOMEM, "gguf writer: cannot allocate %llu bytes", (unsigned long long)m->cap);
    }
    if (n > m->cap - m->len) return nk_fail(err, NOOK_EINTERNAL, "gguf writer: size mismatch while serializing");
    if (n) memcpy(m->p + m->len, p, n);
    m->len += n;
    return NOOK_OK;
}

nook_status gguf_write_mem(const gguf_writer *w, uint8_t **out, uint64_t *len, nook_error *err) {
    *out = NULL;
    *len = 0;
    if (!w) return nk_fail(err, NOOK_EINVAL, "gguf writer: NULL writer");
    uint64_t total = 0;
    mem_sink m = { .total = &total };
    nook_status st = serialize(w, mem_put, &m, &total, err);
    if (!st && m.len != total) st = nk_fail(err, NOOK_EINTERNAL, "gguf writer: wrote %llu of %llu bytes",
                                            (unsigned long long)m.len, (unsigned long long)total);
    if (st) {
        nk_free(m.p);
        return st;
    }
    *out = m.p;
    *len = m.len;
    return NOOK_OK;
}

typedef struct file_sink {
    FILE *fp;
    const char *path;
    uint64_t written;
} file_sink;

static nook_status file_put(void *ctx, const void *p, size_t n, nook_error *err) {
    file_sink *s = ctx;
    if (n && fwrite(p, 1, n, s->fp) != n)
        return nk_fail(err, NOOK_EIO, "%s: write failed: %s", s->path, strerror(errno));
    s->written += n;
    return NOOK_OK;
}

/* Streams to path.tmp (no second copy of the tensors in memory), fsyncs, renames. */
nook_status gguf_write_file(const gguf_writer *w, const char *path, nook_error *err) {
    if (!w || !path) return nk_fail(err, NOOK_EINVAL, "gguf writer: NULL writer or path");
    size_t pl = strlen(path);
    char *tmp = nk_malloc(pl + 5);
    if (!tmp) return nk_fail(err, NOOK_ENOMEM, "gguf writer: out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    file_sink s = { .fp = fopen(tmp, "wb"), .path = tmp };
    if (!s.fp) {
        nook_status st = nk_fail(err, NOOK_EIO, "%s: %s", tmp, strerror(errno));
        nk_free(tmp);
        return st;
    }
    uint64_t total = 0;
    nook_status st = serialize(w, file_put, &s, &total, err);
    if (!st && fflush(s.fp) != 0) st = nk_fail(err, NOOK_EIO, "%s: flush failed: %s", tmp, strerror(errno));
    if (!st && fsync(fileno(s.fp)) != 0) st = nk_fail(err, NOOK_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (fclose(s.fp) != 0 && !st) st = nk_fail(err, NOOK_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0) st = nk_fail(err, NOOK_EIO, "%s: rename failed: %s", path, strerror(errno));
    if (st) remove(tmp);
    nk_free(tmp);
    return st;
}

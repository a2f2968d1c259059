/*
 * stream.c: a GGUF writer that streams tensor data (see convert.h), and the threaded
 * row encoder both converters use.
 *
 * gguf_writer copies every tensor at add time, which for an 8B model means holding
 * the whole file in memory. Here the metadata still comes from a gguf_writer (so the
 * tokenizer importer and gguf_set_* fill it as usual), but the header is serialized by
 * re-encoding the keys of the writer's own output, and tensor bytes go straight to the
 * file in declaration order.
 */
#include "convert/convert.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
} stream_tensor;

struct nk_stream {
    FILE *fp;
    char *path, *tmp;
    uint32_t alignment;
    stream_tensor *t;
    size_t n_t;
    size_t cur;           /* tensor being filled */
    uint64_t cur_done;    /* bytes of it written so far */
};

/* ---- a small growable byte buffer for the header --------------------------------- */
typedef struct { uint8_t *p; size_t len, cap; bool oom; } buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = nk_realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }   /* little-endian hosts only */
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s, uint64_t n) { put_u64(b, n); put(b, s, n); }

/* Re-encode one parsed key/value exactly as GGUF stores it. */
static void put_kv(buf *b, const gguf_kv *kv) {
    put_str(b, kv->key.ptr, kv->key.len);
    const gguf_value *v = &kv->val;
    put_u32(b, (uint32_t)v->type);
    switch (v->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: { uint8_t x = (uint8_t)v->v.u64; put(b, &x, 1); } break;
    case GGUF_TYPE_INT8:   { int8_t x = (int8_t)v->v.i64; put(b, &x, 1); } break;
    case GGUF_TYPE_UINT16: { uint16_t x = (uint16_t)v->v.u64; put(b, &x, 2); } break;
    case GGUF_TYPE_INT16:  { int16_t x = (int16_t)v->v.i64; put(b, &x, 2); } break;
    case GGUF_TYPE_UINT32: put_u32(b, (uint32_t)v->v.u64); break;
    case GGUF_TYPE_INT32:  { int32_t x = (int32_t)v->v.i64; put(b, &x, 4); } break;
    case GGUF_TYPE_UINT64: put_u64(b, v->v.u64); break;
    case GGUF_TYPE_INT64:  { int64_t x = v->v.i64; put(b, &x, 8); } break;
    case GGUF_TYPE_FLOAT32: { float x = (float)v->v.f64; put(b, &x, 4); } break;
    case GGUF_TYPE_FLOAT64: { double x = v->v.f64; put(b, &x, 8); } break;
    case GGUF_TYPE_STRING: put_str(b, v->v.str.ptr, v->v.str.len); break;
    case GGUF_TYPE_ARRAY:
        put_u32(b, (uint32_t)v->v.arr.type);
        put_u64(b, v->v.arr.count);
        put(b, v->v.arr.data, v->v.arr.nbytes);
        break;
    default: b->oom = true; break;   /* the reader never hands out other types */
    }
}

static void pad_to(buf *b, uint32_t align) {
    static const uint8_t zeros[64];
    while (b->len % align) put(b, zeros, NK_MIN(sizeof zeros, align - b->len % align));
}

static void stream_free(nk_stream *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_t; i++) nk_free(s->t[i].name);
    nk_free(s->t);
    nk_free(s->path);
    nk_free(s->tmp);
    nk_free(s);
}

void nk_stream_abort(nk_stream *s) {
    if (!s) return;
    if (s->fp) fclose(s->fp);
    if (s->tmp) unlink(s->tmp);
    stream_free(s);
}

nook_status nk_stream_open(const char *path, const gguf_writer *meta,
                           const nk_stream_tensor *tensors, size_t n_tensors,
                           nk_stream **out, nook_error *err) {
    *out = NULL;
    /* the writer's own serialization is the source of truth for the keys */
    uint8_t *mem = NULL;
    uint64_t mem_len = 0;
    nook_status st = gguf_write_mem(meta, &mem, &mem_len, err);
    if (st) return st;
    gguf_file *gf = NULL;
    st = gguf_parse(mem, mem_len, &gf, err);
    if (st) { nk_free(mem); return st; }

    nk_stream *s = nk_calloc(1, sizeof *s);
    buf b = { 0 };
    if (!s) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto fail; }
    s->alignment = GGUF_DEFAULT_ALIGNMENT;
    uint32_t al;
    if (gguf_get_u32(gf, "general.alignment", &al, NULL) == NOOK_OK) {
        if (al == 0 || (al & (al - 1)) != 0) {
            st = nk_fail(err, NOOK_EINVAL, "general.alignment %u is not a power of two", al);
            goto fail;
        }
        s->alignment = al;
    }
    s->t = nk_calloc(n_tensors ? n_tensors : 1, sizeof *s->t);
    if (!s->t) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto fail; }
    for (size_t i = 0; i < n_tensors; i++) {
        const nk_stream_tensor *in = &tensors[i];
        stream_tensor *t = &s->t[i];
        size_t nl = in->name ? strlen(in->name) : 0;
        if (nl == 0 || nl >= GGUF_MAX_NAME) {
            st = nk_fail(err, NOOK_EINVAL, "tensor %zu: name empty or longer than %d bytes", i,
                         GGUF_MAX_NAME - 1);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->t[j].name, in->name) == 0) {
                st = nk_fail(err, NOOK_EINVAL, "tensor '%s' declared twice", in->name);
                goto fail;
            }
        if (in->n_dims < 1 || in->n_dims > GGUF_MAX_DIMS) {
            st = nk_fail(err, NOOK_EINVAL, "tensor '%s': %u dims", in->name, in->n_dims);
            goto fail;
        }
        uint64_t rows = 1;
        for (uint32_t d = 1; d < in->n_dims; d++)
            if (!nk_mul_ok(rows, in->ne[d], &rows)) {
                st = nk_fail(err, NOOK_EINVAL, "tensor '%s': shape overflows", in->name);
                goto fail;
            }
        size_t row = in->ne[0] > (uint64_t)INT64_MAX ? 0 : nk_row_size(in->type, (int64_t)in->ne[0]);
        if (row == 0 || !nk_mul_ok(row, rows, &t->nbytes)) {
            st = nk_fail(err, NOOK_EINVAL, "tensor '%s': type %u cannot hold rows of %llu", in->name,
                         in->type, (unsigned long long)in->ne[0]);
            goto fail;
        }
        t->name = nk_strdup(in->name);
        if (!t->name) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto fail; }
        s->n_t = i + 1;
        t->type = in->type;
        t->n_dims = in->n_dims;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < in->n_dims ? in->ne[d] : 1;
    }

    /* header: magic, version, counts, keys, tensor infos, padding */
    put_u32(&b, GGUF_MAGIC);
    put_u32(&b, 3);
    put_u64(&b, n_tensors);
    put_u64(&b, gf->n_kv);
    for (uint64_t i = 0; i < gf->n_kv; i++) put_kv(&b, &gf->kv[i]);
    uint64_t off = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const stream_tensor *t = &s->t[i];
        put_str(&b, t->name, strlen(t->name));
        put_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(&b, t->ne[d]);
        put_u32(&b, t->type);
        put_u64(&b, off);
        uint64_t padded = t->nbytes + (s->alignment - t->nbytes % s->alignment) % s->alignment;
        if (!nk_add_ok(off, padded, &off)) {
            st = nk_fail(err, NOOK_EINVAL, "model size overflows");
            goto fail;
        }
    }
    pad_to(&b, s->alignment);
    if (b.oom) { st = nk_fail(err, NOOK_ENOMEM, "out of memory building the GGUF header"); goto fail; }

    s->path = nk_strdup(path);
    size_t pl = strlen(path);
    s->tmp = nk_malloc(pl + 5);
    if (!s->path || !s->tmp) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto fail; }
    memcpy(s->tmp, path, pl);
    memcpy(s->tmp + pl, ".tmp", 5);
    s->fp = fopen(s->tmp, "wb");
    if (!s->fp) { st = nk_fail(err, NOOK_EIO, "%s: %s", s->tmp, strerror(errno)); goto fail; }
    if (fwrite(b.p, 1, b.len, s->fp) != b.len) {
        st = nk_fail(err, NOOK_EIO, "%s: write failed: %s", s->tmp, strerror(errno));
        goto fail;
    }
    nk_free(b.p);
    gguf_free(gf);
    nk_free(mem);
    *out = s;
    return NOOK_OK;
fail:
    nk_free(b.p);
    gguf_free(gf);
    nk_free(mem);
    nk_stream_abort(s);
    return st;
}

static nook_status write_pad(nk_stream *s, uint64_t nbytes, nook_error *err) {
    static const uint8_t zeros[64];
    uint64_t n = (s->alignment - nbytes % s->alignment) % s->alignment;
    while (n) {
        size_t k = (size_t)NK_MIN(n, sizeof zeros);
        if (fwrite(zeros, 1, k, s->fp) != k)
            return nk_fail(err, NOOK_EIO, "%s: write failed: %s", s->tmp, strerror(errno));
        n -= k;
    }
    return NOOK_OK;
}

nook_status nk_stream_write(nk_stream *s, const void *data, size_t len, nook_error *err) {
    const uint8_t *p = data;
    while (len) {
        if (s->cur >= s->n_t)
            return nk_fail(err, NOOK_EINVAL, "%s: more tensor bytes than the tensors declared", s->path);
        stream_tensor *t = &s->t[s->cur];
        uint64_t room = t->nbytes - s->cur_done;
        size_t k = (size_t)NK_MIN((uint64_t)len, room);
        if (k && fwrite(p, 1, k, s->fp) != k)
            return nk_fail(err, NOOK_EIO, "%s: write failed: %s", s->tmp, strerror(errno));
        p += k; len -= k; s->cur_done += k;
        if (s->cur_done == t->nbytes) {
            nook_status st = write_pad(s, t->nbytes, err);
            if (st) return st;
            s->cur++;
            s->cur_done = 0;
        }
    }
    return NOOK_OK;
}

nook_status nk_stream_finish(nk_stream *s, nook_error *err) {
    nook_status st = NOOK_OK;
    /* a zero-byte tensor never triggers the advance in nk_stream_write */
    while (s->cur < s->n_t && s->t[s->cur].nbytes == 0) s->cur++;
    if (s->cur != s->n_t) {
        st = nk_fail(err, NOOK_EINVAL, "%s: tensor '%s' is missing data", s->path, s->t[s->cur].name);
        nk_stream_abort(s);
        return st;
    }
    /* No fsync: like llama-quantize, a converter's output is re-creatable, and syncing
     * gigabytes (or the many small files of a test run) costs far more than it saves. */
    if (fflush(s->fp) != 0) {
        st = nk_fail(err, NOOK_EIO, "%s: %s", s->tmp, strerror(errno));
        nk_stream_abort(s);
        return st;
    }
    int rc = fclose(s->fp);
    s->fp = NULL;
    if (rc != 0 || rename(s->tmp, s->path) != 0) {
        st = nk_fail(err, NOOK_EIO, "%s: %s", s->path, strerror(errno));
        nk_stream_abort(s);
        return st;
    }
    stream_free(s);
    return NOOK_OK;
}

/* ---- threaded row encoding ---------------------------------------------------------- */

typedef struct {
    const nk_type_traits *tr;
    uint32_t type;
    int64_t ne0;
    size_t row_bytes;
    nk_row_fill_fn fill;
    void *ctx;
    int64_t r0, r1;       /* batch rows */
    int64_t per;          /* rows per thread in a batch */
    float *src;           /* per thread: per*ne0 floats */
    uint8_t *dst;         /* whole batch of encoded rows */
    int ith;
} row_job;

/* Encode n floats to type. F32 has no quantizer: it is a copy. */
static void encode(const nk_type_traits *tr, uint32_t type, const float *src, void *dst, int64_t n) {
    if (type == NK_TYPE_F32) { memcpy(dst, src, (size_t)n * sizeof(float)); return; }
    nk_from_float_fn fn = tr->from_float_ref ? tr->from_float_ref : tr->from_float;
    fn(src, dst, n);
}

static void *row_worker(void *arg) {
    row_job *j = arg;
    int64_t a = j->r0 + (int64_t)j->ith * j->per;
    int64_t b = NK_MIN(a + j->per, j->r1);
    if (a >= b) return NULL;
    for (int64_t r = a; r < b; r++) j->fill(j->ctx, r, j->src + (r - a) * j->ne0);
    encode(j->tr, j->type, j->src, j->dst + (size_t)(a - j->r0) * j->row_bytes, (b - a) * j->ne0);
    return NULL;
}

nook_status nk_stream_rows(nk_stream *s, uint32_t dst_type, int64_t ne0, int64_t n_rows,
                           nk_row_fill_fn fill, void *ctx, int n_threads, nook_error *err) {
    const nk_type_traits *tr = nk_type_get(dst_type);
    size_t row_bytes = ne0 > 0 ? nk_row_size(dst_type, ne0) : 0;
    if (!tr || row_bytes == 0)
        return nk_fail(err, NOOK_EINVAL, "cannot encode rows of %lld as type %u", (long long)ne0, dst_type);
    if (dst_type != NK_TYPE_F32 && !tr->from_float_ref && !tr->from_float)
        return nk_fail(err, NOOK_EUNSUPPORTED, "nook cannot write type %s", tr->name);
    if (n_threads <= 0) n_threads = nk_n_cores();
    n_threads = NK_MAX(1, NK_MIN(n_threads, 64));
    /* about 1M floats per thread per batch: big enough to amortize thread start-up,
     * small enough that memory stays flat */
    int64_t per = NK_MAX((int64_t)1, ((int64_t)1 << 20) / ne0);
    if (per > n_rows) per = n_rows;
    if (per < 1) per = 1;
    int64_t batch = per * n_threads;

    row_job jobs[64];
    pthread_t tids[64];
    bool spawned[64];
    float *srcs[64] = { 0 };
    uint8_t *dst = nk_alloc_array((size_t)batch, row_bytes);
    nook_status st = dst ? NOOK_OK : nk_fail(err, NOOK_ENOMEM, "out of memory for a row batch");
    for (int i = 0; i < n_threads && !st; i++) {
        srcs[i] = nk_alloc_array((size_t)per * (size_t)ne0, sizeof(float));
        if (!srcs[i]) st = nk_fail(err, NOOK_ENOMEM, "out of memory for a row batch");
    }
    for (int64_t r0 = 0; r0 < n_rows && !st; r0 += batch) {
        int64_t r1 = NK_MIN(r0 + batch, n_rows);
        for (int i = 0; i < n_threads; i++) {
            jobs[i] = (row_job){ tr, dst_type, ne0, row_bytes, fill, ctx, r0, r1, per, srcs[i], dst, i };
            spawned[i] = false;
            if (i == 0 || r0 + (int64_t)i * per >= r1) continue;   /* the caller runs job 0 */
            if (pthread_create(&tids[i], NULL, row_worker, &jobs[i]) == 0) spawned[i] = true;
            else row_worker(&jobs[i]);   /* no thread: do it here, same result */
        }
        row_worker(&jobs[0]);
        for (int i = 1; i < n_threads; i++)
            if (spawned[i]) pthread_join(tids[i], NULL);
        st = nk_stream_write(s, dst, (size_t)(r1 - r0) * row_bytes, err);
    }
    for (int i = 0; i < n_threads; i++) nk_free(srcs[i]);
    nk_free(dst);
    return st;
}

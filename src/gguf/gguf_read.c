/*
 * gguf_read.c: the GGUF parser and its lookup index.
 *
 * The file is untrusted. Every read goes through a cursor that knows how many bytes
 * are left, every count is checked against what is left before anything proportional
 * to it is allocated, and every size product is overflow-checked. When gguf_parse
 * returns NOOK_OK, the whole index has been validated, so callers can walk it without
 * further checks (see gguf.h). The rules and the reasons for them: docs/gguf.md.
 */
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"

#include <stdlib.h>
#include <string.h>

/* The smallest possible encodings, used to reject absurd counts before allocating:
 * a kv is key length (8) + at least one key byte + type id (4) + at least one value
 * byte; a tensor info is name length (8) + n_dims (4) + type (4) + offset (8). */
#define MIN_KV_BYTES 14u
#define MIN_TENSOR_INFO_BYTES 24u

typedef struct rd {
    const uint8_t *p;
    uint64_t len, pos;
    nook_error *err;
    const char *section;   /* "header", "metadata", "tensor info": for messages */
} rd;

static inline uint64_t rd_left(const rd *r) { return r->len - r->pos; }

/* Assemble a little-endian integer of n bytes (endian-independent on the host). */
static inline uint64_t load_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

static nook_status rd_need(rd *r, uint64_t n, const char *what) {
    if (rd_left(r) < n)
        return nk_fail(r->err, NOOK_EFORMAT,
                       "truncated %s: %s at offset %llu needs %llu bytes, %llu left",
                       r->section, what, (unsigned long long)r->pos, (unsigned long long)n,
                       (unsigned long long)rd_left(r));
    return NOOK_OK;
}

static nook_status rd_u32(rd *r, uint32_t *out, const char *what) {
    nook_status st = rd_need(r, 4, what);
    if (st) return st;
    *out = (uint32_t)load_le(r->p + r->pos, 4);
    r->pos += 4;
    return NOOK_OK;
}

static nook_status rd_u64(rd *r, uint64_t *out, const char *what) {
    nook_status st = rd_need(r, 8, what);
    if (st) return st;
    *out = load_le(r->p + r->pos, 8);
    r->pos += 8;
    return NOOK_OK;
}

/* A GGUF string: u64 length, then that many bytes (no NUL). */
static nook_status rd_str(rd *r, gguf_str *s, const char *what) {
    uint64_t at = r->pos, n;
    nook_status st = rd_u64(r, &n, what);
    if (st) return st;
    if (n > rd_left(r))
        return nk_fail(r->err, NOOK_EFORMAT,
                       "truncated %s: %s at offset %llu has length %llu but only %llu bytes are left",
                       r->section, what, (unsigned long long)at, (unsigned long long)n,
                       (unsigned long long)rd_left(r));
    s->ptr = (const char *)(r->p + r->pos);
    s->len = n;
    r->pos += n;
    return NOOK_OK;
}

size_t gguf_type_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* Decode one packed scalar of type t (whose size the caller has checked). */
void nk_gguf_decode_scalar(gguf_type t, const uint8_t *p, gguf_value *v) {
    unsigned n = (unsigned)gguf_type_size(t);
    uint64_t raw = load_le(p, n);
    v->type = t;
    switch (t) {
    case GGUF_TYPE_INT8:  v->v.i64 = (int8_t)(uint8_t)raw; break;
    case GGUF_TYPE_INT16: v->v.i64 = (int16_t)(uint16_t)raw; break;
    case GGUF_TYPE_INT32: v->v.i64 = (int32_t)(uint32_t)raw; break;
    case GGUF_TYPE_INT64: v->v.i64 = (int64_t)raw; break;
    case GGUF_TYPE_BOOL:  v->v.u64 = raw != 0; break;   /* ggml: any nonzero is true */
    case GGUF_TYPE_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        v->v.f64 = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: memcpy(&v->v.f64, &raw, 8); break;
    default: v->v.u64 = raw; break;   /* unsigned integers */
    }
}

static nook_status rd_value(rd *r, uint32_t type, gguf_value *v) {
    if (type >= GGUF_TYPE_COUNT)
        return nk_fail(r->err, NOOK_EFORMAT, "unknown value type id %u at offset %llu", type,
                       (unsigned long long)(r->pos - 4));
    v->type = (gguf_type)type;
    if (type == GGUF_TYPE_STRING) return rd_str(r, &v->v.str, "string value");
    if (type != GGUF_TYPE_ARRAY) {
        size_t n = gguf_type_size((gguf_type)type);
        nook_status st = rd_need(r, n, gguf_type_name((gguf_type)type));
        if (st) return st;
        nk_gguf_decode_scalar((gguf_type)type, r->p + r->pos, v);
        r->pos += n;
        return NOOK_OK;
    }
    uint32_t et;
    uint64_t count, at;
    nook_status st = rd_u32(r, &et, "array element type");
    if (st) return st;
    if (et == GGUF_TYPE_ARRAY)
        return nk_fail(r->err, NOOK_EFORMAT,
                       "nested arrays are not supported (array of arrays at offset %llu)",
                       (unsigned long long)(r->pos - 4));
    if (et >= GGUF_TYPE_COUNT)
        return nk_fail(r->err, NOOK_EFORMAT, "unknown array element type id %u at offset %llu", et,
                       (unsigned long long)(r->pos - 4));
    at = r->pos;
    if ((st = rd_u64(r, &count, "array count"))) return st;
    v->v.arr.type = (gguf_type)et;
    v->v.arr.count = count;
    v->v.arr.data = r->p + r->pos;
    uint64_t start = r->pos;
    if (et == GGUF_TYPE_STRING) {
        /* each string takes at least its 8-byte length: refuse absurd counts up front */
        if (count > rd_left(r) / 8)
            return nk_fail(r->err, NOOK_EFORMAT,
                           "truncated %s: string array at offset %llu claims %llu elements but only %llu bytes are left",
                           r->section, (unsigned long long)at, (unsigned long long)count,
                           (unsigned long long)rd_left(r));
        for (uint64_t i = 0; i < count; i++) {
            gguf_str s;
            if ((st = rd_str(r, &s, "string array element"))) return st;
        }
    } else {
        size_t es = gguf_type_size((gguf_type)et);
        if (count > rd_left(r) / es)
            return nk_fail(r->err, NOOK_EFORMAT,
                           "truncated %s: %s array at offset %llu claims %llu elements (%llu bytes each) but only %llu bytes are left",
                           r->section, gguf_type_name((gguf_type)et), (unsigned long long)at,
                           (unsigned long long)count, (unsigned long long)es,
                           (unsigned long long)rd_left(r));
        r->pos += count * es;
    }
    v->v.arr.nbytes = r->pos - start;
    return NOOK_OK;
}

/* ---- hash index ------------------------------------------------------------------
 * Open addressing over (ptr,len) names, slots hold index+1 (0 = empty), load <= 1/2. */

static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static uint64_t table_cap(uint64_t n) {
    uint64_t cap = 8;
    while (cap < 2 * n) cap <<= 1;
    return cap;
}

/* Slot for name: either the slot holding it or the empty slot where it would go. */
static uint64_t table_probe(const uint32_t *slots, uint64_t cap, const char *name, uint64_t len,
                            const gguf_str *(*name_of)(const void *, uint32_t), const void *items) {
    uint64_t i = hash_bytes(name, len) & (cap - 1);
    for (;;) {
        uint32_t s = slots[i];
        if (s == 0) return i;
        const gguf_str *k = name_of(items, s - 1);
        if (k->len == len && memcmp(k->ptr, name, len) == 0) return i;
        i = (i + 1) & (cap - 1);
    }
}

static const gguf_str *kv_name(const void *items, uint32_t i) { return &((const gguf_kv *)items)[i].key; }
static const gguf_str *tensor_name(const void *items, uint32_t i) { return &((const gguf_tensor *)items)[i].name; }

void gguf_free(gguf_file *f) {
    if (!f) return;
    nk_gguf_file *g = (nk_gguf_file *)f;
    nk_free(g->kv_slots);
    nk_free(g->t_slots);
    nk_free(f->kv);
    nk_free(f->tensors);
    nk_free(g);
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    if (!f || !key) return NULL;
    const nk_gguf_file *g = (const nk_gguf_file *)f;
    uint64_t i = table_probe(g->kv_slots, g->kv_cap, key, strlen(key), kv_name, f->kv);
    return g->kv_slots[i] ? &f->kv[g->kv_slots[i] - 1] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name) return NULL;
    const nk_gguf_file *g = (const nk_gguf_file *)f;
    uint64_t i = table_probe(g->t_slots, g->t_cap, name, strlen(name), tensor_name, f->tensors);
    return g->t_slots[i] ? &f->tensors[g->t_slots[i] - 1] : NULL;
}

/* ---- tensor types -------------------------------------------------------------------- */

/* Sizes come from the tensor layer's traits table, the one source of truth for block
 * formats. A type ggml knows but nook cannot compute with (IQ*, I8, ...) still has a
 * size there, so such files parse; the model loader refuses them by name. */
nook_status nk_gguf_tensor_type(uint32_t type, uint64_t *blck, uint64_t *type_size, const char **name) {
    const nk_type_traits *t = nk_type_get(type);
    if (!t || t->blck <= 0 || t->type_size == 0) return NOOK_EUNSUPPORTED;
    *blck = (uint64_t)t->blck;
    *type_size = t->type_size;
    if (name) *name = t->name;
    return NOOK_OK;
}

nook_status nk_gguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *nbytes,
                                  nook_error *err) {
    uint64_t blck, ts;
    const char *tname = NULL;
    if (n_dims > GGUF_MAX_DIMS)
        return nk_fail(err, NOOK_EFORMAT, "n_dims %u exceeds the maximum of %d", n_dims, GGUF_MAX_DIMS);
    if (nk_gguf_tensor_type(type, &blck, &ts, &tname) != NOOK_OK)
        return nk_fail(err, NOOK_EUNSUPPORTED, "unknown tensor type id %u", type);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0) return nk_fail(err, NOOK_EFORMAT, "dimension %u is zero", d);
        if (ne[d] > (uint64_t)INT64_MAX)
            return nk_fail(err, NOOK_EFORMAT, "dimension %u (%llu) is too large", d, (unsigned long long)ne[d]);
        if (!nk_mul_ok(nel, ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return nk_fail(err, NOOK_EFORMAT, "element count overflows (at dimension %u)", d);
    }
    uint64_t ne0 = n_dims ? ne[0] : 1;
    if (ne0 % blck != 0)
        return nk_fail(err, NOOK_EFORMAT, "ne[0] = %llu is not a multiple of the block size %llu of type %s",
                       (unsigned long long)ne0, (unsigned long long)blck, tname ? tname : "?");
    uint64_t bytes;
    if (!nk_mul_ok(ne0 / blck, ts, &bytes) || !nk_mul_ok(bytes, nel / ne0, &bytes))
        return nk_fail(err, NOOK_EFORMAT, "byte size overflows");
    *nbytes = bytes;
    return NOOK_OK;
}

/* ---- parse ------------------------------------------------------------------------------ */

typedef struct span { uint64_t off, end; uint32_t idx; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off ? 1 : 0;
}

static nook_status parse_kvs(rd *r, nk_gguf_file *g) {
    gguf_file *f = &g->f;
    r->section = "metadata";
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        uint64_t at = r->pos;
        uint32_t type;
        nook_status st = rd_str(r, &kv->key, "key");
        if (!st && kv->key.len == 0)
            st = nk_fail(r->err, NOOK_EFORMAT, "empty key at offset %llu", (unsigned long long)at);
        if (!st) st = rd_u32(r, &type, "value type");
        if (!st) st = rd_value(r, type, &kv->val);
        if (st) {
            if (kv->key.ptr && kv->key.len)
                nk_prefix(r->err, "kv %llu '%.*s': ", (unsigned long long)i,
                          (int)NK_MIN(kv->key.len, 200), kv->key.ptr);
            else
                nk_prefix(r->err, "kv %llu: ", (unsigned long long)i);
            return st;
        }
        uint64_t s = table_probe(g->kv_slots, g->kv_cap, kv->key.ptr, kv->key.len, kv_name, f->kv);
        if (g->kv_slots[s])
            return nk_fail(r->err, NOOK_EFORMAT, "duplicate key '%.*s' at offset %llu",
                           (int)NK_MIN(kv->key.len, 200), kv->key.ptr, (unsigned long long)at);
        g->kv_slots[s] = (uint32_t)i + 1;
    }
    return NOOK_OK;
}

static nook_status parse_alignment(rd *r, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(f, "general.alignment");
    if (!kv) return NOOK_OK;
    if (kv->val.type != GGUF_TYPE_UINT32)
        return nk_fail(r->err, NOOK_EFORMAT, "general.alignment must be a uint32, not %s",
                       gguf_type_name(kv->val.type));
    uint64_t a = kv->val.v.u64;
    if (a == 0 || (a & (a - 1)) != 0)
        return nk_fail(r->err, NOOK_EFORMAT, "general.alignment %llu is not a nonzero power of two",
                       (unsigned long long)a);
    f->alignment = (uint32_t)a;
    return NOOK_OK;
}

static nook_status parse_tensor_infos(rd *r, nk_gguf_file *g) {
    gguf_file *f = &g->f;
    r->section = "tensor info";
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t at = r->pos;
        nook_status st = rd_str(r, &t->name, "tensor name");
        if (st) return (nk_prefix(r->err, "tensor %llu: ", (unsigned long long)i), st);
        int nl = (int)NK_MIN(t->name.len, 200);
        if (t->name.len >= GGUF_MAX_NAME)
            return nk_fail(r->err, NOOK_EFORMAT, "tensor %llu at offset %llu: name '%.*s' is %llu bytes, the limit is %d",
                           (unsigned long long)i, (unsigned long long)at, nl, t->name.ptr,
                           (unsigned long long)t->name.len, GGUF_MAX_NAME - 1);
        if (!(st = rd_u32(r, &t->n_dims, "n_dims")) && t->n_dims > GGUF_MAX_DIMS)
            st = nk_fail(r->err, NOOK_EFORMAT, "n_dims %u exceeds the maximum of %d at offset %llu",
                         t->n_dims, GGUF_MAX_DIMS, (unsigned long long)(r->pos - 4));
        for (uint32_t d = 0; !st && d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d < t->n_dims) st = rd_u64(r, &t->ne[d], "dimension");
        }
        if (!st) st = rd_u32(r, &t->type, "tensor type");
        uint64_t off_at = r->pos;
        if (!st) st = rd_u64(r, &t->offset, "tensor data offset");
        if (!st) st = nk_gguf_tensor_nbytes(t->type, t->n_dims, t->ne, &t->nbytes, r->err);
        if (!st && t->offset % f->alignment != 0)
            st = nk_fail(r->err, NOOK_EFORMAT, "data offset %llu (at offset %llu) is not a multiple of the alignment %u",
                         (unsigned long long)t->offset, (unsigned long long)off_at, f->alignment);
        if (st) return (nk_prefix(r->err, "tensor %llu '%.*s': ", (unsigned long long)i, nl, t->name.ptr), st);
        uint64_t s = table_probe(g->t_slots, g->t_cap, t->name.ptr, t->name.len, tensor_name, f->tensors);
        if (g->t_slots[s])
            return nk_fail(r->err, NOOK_EFORMAT, "duplicate tensor name '%.*s' at offset %llu", nl, t->name.ptr,
                           (unsigned long long)at);
        g->t_slots[s] = (uint32_t)i + 1;
    }
    return NOOK_OK;
}

/* Place the data section and check every tensor's bytes: inside the file, no overlap. */
static nook_status place_tensors(rd *r, gguf_file *f) {
    uint64_t pad = (f->alignment - r->pos % f->alignment) % f->alignment;
    f->data_offset = r->pos + pad;   /* pos <= len < 2^64 - 2^32: no overflow in practice */
    if (f->data_offset < r->pos) return nk_fail(r->err, NOOK_EFORMAT, "data offset overflows");
    if (f->n_tensors == 0) return NOOK_OK;   /* vocab-only files may end right after the infos */
    if (f->data_offset > f->size)
        return nk_fail(r->err, NOOK_EFORMAT, "data section starts at %llu, beyond the end of the file (%llu bytes)",
                       (unsigned long long)f->data_offset, (unsigned long long)f->size);
    uint64_t data_len = f->size - f->data_offset;
    span *sp = nk_alloc_array(f->n_tensors, sizeof *sp);
    if (!sp) return nk_fail(r->err, NOOK_ENOMEM, "cannot allocate %llu tensor spans", (unsigned long long)f->n_tensors);
    nook_status st = NOOK_OK;
    for (uint64_t i = 0; i < f->n_tensors && !st; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t end;
        if (!nk_add_ok(t->offset, t->nbytes, &end) || end > data_len) {
            st = nk_fail(r->err, NOOK_EFORMAT,
                         "tensor '%.*s': data [%llu, +%llu) lies outside the file (the data section at %llu has %llu bytes)",
                         (int)t->name.len, t->name.ptr, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                         (unsigned long long)f->data_offset, (unsigned long long)data_len);
            break;   /* and form no pointer from the bad offset: that alone is UB */
        }
        t->data = f->base + f->data_offset + t->offset;
        sp[i] = (span){ t->offset, end, (uint32_t)i };
    }
    if (!st) {
        qsort(sp, f->n_tensors, sizeof *sp, span_cmp);
        for (uint64_t i = 0; i + 1 < f->n_tensors; i++) {
            if (sp[i].end > sp[i + 1].off) {
                const gguf_tensor *a = &f->tensors[sp[i].idx], *b = &f->tensors[sp[i + 1].idx];
                st = nk_fail(r->err, NOOK_EFORMAT,
                             "tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap",
                             (int)a->name.len, a->name.ptr, (unsigned long long)sp[i].off,
                             (unsigned long long)sp[i].end, (int)b->name.len, b->name.ptr,
                             (unsigned long long)sp[i + 1].off, (unsigned long long)sp[i + 1].end);
                break;
            }
        }
    }
    nk_free(sp);
    return st;
}

static nook_status parse(rd *r, nk_gguf_file *g) {
    gguf_file *f = &g->f;
    uint32_t magic;
    nook_status st;
    r->section = "header";
    if ((st = rd_u32(r, &magic, "magic"))) return st;
    if (magic != GGUF_MAGIC)
        return nk_fail(r->err, NOOK_EFORMAT, "bad magic 0x%08x at offset 0 (not a GGUF file)", magic);
    if ((st = rd_u32(r, &f->version, "version"))) return st;
    if (f->version == 0)
        return nk_fail(r->err, NOOK_EFORMAT, "invalid version 0 at offset 4");
    if ((f->version & 0xFFFFu) == 0)
        return nk_fail(r->err, NOOK_EUNSUPPORTED,
                       "version field 0x%08x at offset 4 looks byte-swapped: big-endian files are not supported",
                       f->version);
    if (f->version == 1)
        return nk_fail(r->err, NOOK_EUNSUPPORTED, "GGUF version 1 is no longer supported (only 2 and 3)");
    if (f->version > 3)
        return nk_fail(r->err, NOOK_EUNSUPPORTED, "GGUF version %u is newer than this reader (2 and 3)", f->version);
    if ((st = rd_u64(r, &f->n_tensors, "tensor count"))) return st;
    if ((st = rd_u64(r, &f->n_kv, "metadata kv count"))) return st;
    /* counts are bounded by what their smallest encodings can fit in the rest of the file */
    uint64_t left = rd_left(r);
    if (f->n_kv > left / MIN_KV_BYTES || f->n_kv >= UINT32_MAX)
        return nk_fail(r->err, NOOK_EFORMAT, "metadata kv count %llu at offset 16 is absurd for the %llu bytes left",
                       (unsigned long long)f->n_kv, (unsigned long long)left);
    if (f->n_tensors > left / MIN_TENSOR_INFO_BYTES || f->n_tensors >= UINT32_MAX ||
        f->n_kv * MIN_KV_BYTES + f->n_tensors * MIN_TENSOR_INFO_BYTES > left)
        return nk_fail(r->err, NOOK_EFORMAT, "tensor count %llu at offset 8 is absurd for the %llu bytes left",
                       (unsigned long long)f->n_tensors, (unsigned long long)left);

    g->kv_cap = table_cap(f->n_kv);
    g->t_cap = table_cap(f->n_tensors);
    f->kv = nk_calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->tensors = nk_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    g->kv_slots = nk_calloc(g->kv_cap, sizeof *g->kv_slots);
    g->t_slots = nk_calloc(g->t_cap, sizeof *g->t_slots);
    if (!f->kv || !f->tensors || !g->kv_slots || !g->t_slots)
        return nk_fail(r->err, NOOK_ENOMEM, "cannot allocate the index for %llu kvs and %llu tensors",
                       (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
    if ((st = parse_kvs(r, g))) return st;
    if ((st = parse_alignment(r, f))) return st;
    if ((st = parse_tensor_infos(r, g))) return st;
    return place_tensors(r, f);
}

nook_status gguf_parse(const void *data, uint64_t len, gguf_file **out, nook_error *err) {
    *out = NULL;
    if (!data && len) return nk_fail(err, NOOK_EINVAL, "gguf: NULL data");
    nk_gguf_file *g = nk_calloc(1, sizeof *g);
    if (!g) return nk_fail(err, NOOK_ENOMEM, "gguf: cannot allocate the file index");
    g->f.base = data;
    g->f.size = len;
    rd r = { .p = data, .len = len, .pos = 0, .err = err, .section = "header" };
    nook_status st = parse(&r, g);
    if (st) {
        nk_prefix(err, "gguf: ");
        gguf_free(&g->f);
        return st;
    }
    *out = &g->f;
    return NOOK_OK;
}

/*
 * gguf.h: read and write GGUF files (versions 2 and 3).
 *
 * The reader parses from a (pointer, length) view, usually a read-only mmap, and
 * never reads outside it. It validates everything before returning: a file that
 * gguf_parse accepts can be walked without further bounds checks (every string,
 * array and tensor it hands out lies inside the view, every tensor's bytes are inside
 * the data section, aligned, and do not overlap another tensor).
 *
 * Strings returned by the reader point into the view and are NOT NUL-terminated:
 * use their len. They live as long as the view.
 */
#ifndef NOOK_GGUF_H
#define NOOK_GGUF_H

#include "base/base.h"

#define GGUF_MAGIC 0x46554747u   /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64         /* tensor names shorter than this, as ggml */

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

typedef struct gguf_str {
    const char *ptr;   /* not NUL-terminated */
    uint64_t len;
} gguf_str;

/* One metadata value. Scalars are decoded; arrays point at their packed elements
 * in the file. For a string array, data points at the first gguf string; walk it
 * with gguf_arr_str_next or collect it with gguf_arr_strings. */
typedef struct gguf_value {
    gguf_type type;
    union {
        uint64_t u64;     /* UINT8/16/32/64, BOOL (0/1) */
        int64_t  i64;     /* INT8/16/32/64 */
        double   f64;     /* FLOAT32/64 */
        gguf_str str;     /* STRING */
        struct {
            gguf_type type;        /* element type (never ARRAY: nested arrays are rejected) */
            uint64_t count;
            const uint8_t *data;   /* packed little-endian elements */
            uint64_t nbytes;
        } arr;
    } v;
} gguf_value;

typedef struct gguf_kv {
    gguf_str key;
    gguf_value val;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];   /* missing dims are 1; ne[0] is the contiguous row */
    uint32_t type;                /* ggml type id (see tensor/types.h) */
    uint64_t offset;              /* relative to the data section */
    uint64_t nbytes;
    const void *data;             /* points into the view */
} gguf_tensor;

typedef struct gguf_file {
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t data_offset;         /* start of the data section in the view */
    const uint8_t *base;          /* the view */
    uint64_t size;
} gguf_file;

/* Parse a GGUF view. On success *out owns the index (free with gguf_free); the view
 * must outlive it. Errors: NOOK_EFORMAT with a message naming the problem and the byte
 * offset; NOOK_EUNSUPPORTED for a well-formed file of an unknown version, a byte-swapped
 * (big-endian) file, or an unknown tensor type (named); NOOK_ENOMEM. Rules: docs/gguf.md.
 * The returned gguf_file carries hidden lookup tables: use it through the pointer, never
 * a by-value copy. A parsed file is read-only, so any number of threads may read and
 * look up in it at once. */
nook_status gguf_parse(const void *data, uint64_t len, gguf_file **out, nook_error *err);
void gguf_free(gguf_file *f);

/* Lookup by key (NUL-terminated). NULL if absent. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters. They return NOOK_ENOTFOUND if the key is absent (out untouched) and
 * NOOK_EFORMAT (with message) if it has an incompatible type. Integer getters accept
 * any integer type whose value fits; float getters accept FLOAT32/64 and integers. */
nook_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, nook_error *err);
nook_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, nook_error *err);
nook_status gguf_get_f32(const gguf_file *f, const char *key, float *out, nook_error *err);
nook_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, nook_error *err);
nook_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, nook_error *err);
/* Array of any element type: element type, count and packed data. */
nook_status gguf_get_arr(const gguf_file *f, const char *key, gguf_type *type,
                         uint64_t *count, const uint8_t **data, nook_error *err);

/* Read the gguf string at p (inside a string array the parser validated) into *out;
 * returns the position of the next one. Walk v.arr.count of them from v.arr.data. */
const uint8_t *gguf_arr_str_next(const uint8_t *p, gguf_str *out);

/* Collect a string array into a freshly allocated gguf_str[count] (free with nk_free). */
nook_status gguf_arr_strings(const gguf_value *v, gguf_str **out, nook_error *err);

/* Element i of a numeric array as double / int64 (caller checks i < count). */
double  gguf_arr_f64(const gguf_value *v, uint64_t i);
int64_t gguf_arr_i64(const gguf_value *v, uint64_t i);

/* Byte size of one element of a scalar type (0 for STRING/ARRAY). */
size_t gguf_type_size(gguf_type t);
const char *gguf_type_name(gguf_type t);

/* Compare a gguf_str to a C string. */
bool gguf_str_eq(gguf_str s, const char *c);

/* ---- Writer ----------------------------------------------------------------------
 * Builds a GGUF v3 file: metadata in insertion order, tensors laid out in the order
 * added, each aligned, exactly as llama.cpp's reader expects (no gaps but padding).
 * Setting an existing key replaces its value. Tensor data is copied at add time.
 */
typedef struct gguf_writer gguf_writer;   /* one thread at a time */

gguf_writer *gguf_writer_new(void);           /* NULL on out-of-memory */
void gguf_writer_free(gguf_writer *w);
/* Why the last gguf_set_* / gguf_add_tensor call on w failed ("" if none has). The
 * string lives in w. */
const char *gguf_writer_error(const gguf_writer *w);

nook_status gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
nook_status gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
nook_status gguf_set_u64(gguf_writer *w, const char *key, uint64_t v);
nook_status gguf_set_f32(gguf_writer *w, const char *key, float v);
nook_status gguf_set_bool(gguf_writer *w, const char *key, bool v);
nook_status gguf_set_str(gguf_writer *w, const char *key, const char *v);
/* Array of scalars: count elements of type t (packed, little-endian) from data. */
nook_status gguf_set_arr(gguf_writer *w, const char *key, gguf_type t, const void *data, uint64_t count);
/* Array of strings (NUL-terminated each); lens may be NULL, else explicit lengths. */
nook_status gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                             const uint64_t *lens, uint64_t count);
/* Copy every key of a parsed file (e.g. to keep a model's metadata when quantizing). */
nook_status gguf_set_kv_from(gguf_writer *w, const gguf_kv *kv);

/* Add a tensor: ggml type id, dims (ne[0] = row length), data of the exact size the
 * type and dims imply (checked; NOOK_EINVAL otherwise, also for a duplicate name, a
 * name of GGUF_MAX_NAME bytes or more, or an unknown type). */
nook_status gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                            uint32_t n_dims, const uint64_t *ne, const void *data, uint64_t nbytes);

/* Serialize to memory (*out allocated with nk_malloc) or to a file (atomically). */
nook_status gguf_write_mem(const gguf_writer *w, uint8_t **out, uint64_t *len, nook_error *err);
nook_status gguf_write_file(const gguf_writer *w, const char *path, nook_error *err);

#endif /* NOOK_GGUF_H */

/*
 * gguf_build.h: emit raw GGUF bytes by hand, so tests can build malformed files that
 * no well-behaved writer would produce. Header-only (each test is its own program).
 */
#ifndef NOOK_TEST_GGUF_BUILD_H
#define NOOK_TEST_GGUF_BUILD_H

#include "gguf/gguf.h"
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *p;
    size_t len, cap;
} gb;

static inline void gb_raw(gb *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();   /* test helper: out of memory is fatal */
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}
static inline void gb_le(gb *b, uint64_t v, unsigned n) {
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    gb_raw(b, t, n);
}
static inline void gb_u8(gb *b, uint8_t v) { gb_le(b, v, 1); }
static inline void gb_u32(gb *b, uint32_t v) { gb_le(b, v, 4); }
static inline void gb_u64(gb *b, uint64_t v) { gb_le(b, v, 8); }
static inline void gb_strn(gb *b, const char *s, uint64_t n) { gb_u64(b, n); gb_raw(b, s, (size_t)n); }
static inline void gb_str(gb *b, const char *s) { gb_strn(b, s, strlen(s)); }
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_u32(b, GGUF_MAGIC);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* key + type id; the caller appends the value */
static inline void gb_key(gb *b, const char *key, uint32_t type) { gb_str(b, key); gb_u32(b, type); }
static inline void gb_kv_u32(gb *b, const char *key, uint32_t v) { gb_key(b, key, GGUF_TYPE_UINT32); gb_u32(b, v); }
static inline void gb_kv_str(gb *b, const char *key, const char *v) { gb_key(b, key, GGUF_TYPE_STRING); gb_str(b, v); }
/* tensor info with n_dims dims */
static inline void gb_tensor(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) gb_u64(b, ne[i]);
    gb_u32(b, type);
    gb_u64(b, offset);
}
static inline void gb_pad(gb *b, size_t align) { while (b->len % align) gb_u8(b, 0); }
static inline void gb_zeros(gb *b, size_t n) { while (n--) gb_u8(b, 0); }
static inline void gb_free(gb *b) { free(b->p); memset(b, 0, sizeof *b); }

#endif

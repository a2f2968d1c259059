/*
 * base.h: the bottom layer every other layer builds on: errors as values, allocation
 * hooks, logging, read-only file mappings, and small helpers. Depends on nothing but libc.
 */
#ifndef NOOK_BASE_H
#define NOOK_BASE_H

#include "nook.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NK_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- errors ---------------------------------------------------------------------
 * nk_fail writes a formatted message into err (if non-NULL) and returns code, so a
 * failing path reads:   return nk_fail(err, NOOK_EFORMAT, "tensor '%s': ...", name);
 * nk_prefix prepends context ("model.gguf: ") to an existing message. */
nook_status nk_fail(nook_error *err, nook_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
nook_status nk_vfail(nook_error *err, nook_status code, const char *fmt, va_list ap);
void nk_prefix(nook_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void nk_err_clear(nook_error *err) { if (err) { err->code = NOOK_OK; err->msg[0] = 0; } }

/* ---- allocation -----------------------------------------------------------------
 * All nook allocations go through these, so an embedder can install its own
 * allocator and tests can inject failures. They return NULL on failure (never abort).
 * nk_calloc and nk_alloc_array check n*size for overflow. */
typedef struct nk_allocator {
    void *(*malloc_fn)(size_t size, void *ud);
    void *(*realloc_fn)(void *p, size_t size, void *ud);
    void  (*free_fn)(void *p, void *ud);
    void *ud;
} nk_allocator;

void  nk_set_allocator(const nk_allocator *a);   /* NULL restores libc's */
void *nk_malloc(size_t size);
void *nk_calloc(size_t n, size_t size);
void *nk_realloc(void *p, size_t size);
void *nk_alloc_array(size_t n, size_t size);    /* malloc with overflow check */
void  nk_free(void *p);
char *nk_strdup(const char *s);
char *nk_strndup(const char *s, size_t n);
/* 64-byte aligned allocation for SIMD buffers; free with nk_aligned_free. */
void *nk_aligned_alloc(size_t size);
void  nk_aligned_free(void *p);

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool nk_mul_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool nk_add_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* ---- logging ----------------------------------------------------------------------
 * The library never prints. It reports through a sink the embedder installs (the CLI
 * installs one that writes to stderr). Default: discard. */
typedef enum { NK_LOG_DEBUG, NK_LOG_INFO, NK_LOG_WARN, NK_LOG_ERROR } nk_log_level;
typedef void (*nk_log_fn)(nk_log_level level, const char *msg, void *ud);
void nk_set_log(nk_log_fn fn, void *ud);
void nk_log(nk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- files ---------------------------------------------------------------------------
 * nk_map is a read-only view of a whole file: mmap'd, read into the heap, or read
 * into 2 MB-page anonymous memory (nk_load_file). The view stays valid until nk_unmap. */
typedef enum nk_map_kind { NK_MAP_NONE, NK_MAP_MMAP, NK_MAP_HEAP, NK_MAP_ANON } nk_map_kind;

typedef struct nk_map {
    const uint8_t *data;
    size_t size;
    nk_map_kind kind;   /* how to release it */
    void  *base;        /* NK_MAP_ANON: the mapping (data lies inside it) */
    size_t base_size;
    /* NK_MAP_MMAP only: the open file and what fstat said at mapping time, so that
     * nk_map_check can tell a file changed under the mapping; guard is the mapping's
     * slot in the SIGBUS guard (mapguard.c), 0 if none. */
    int fd;
    int guard;
    int64_t mtime_ns;
} nk_map;

/* Map the file read-only (no_mmap: read it into the heap instead; also the fallback
 * on file systems that cannot map). Errors: NOOK_EIO, NOOK_ENOMEM. */
nook_status nk_map_file(const char *path, bool no_mmap, nk_map *out, nook_error *err);

/* Map the file for streaming weights: 2 MB-aligned, MADV_HUGEPAGE, populated up
 * front with MADV_POPULATE_READ (one call instead of a page fault per 4 KiB page:
 * 0.1-0.3 s for a warm 5 GB file here, seconds by faults). When the page cache
 * holds the file in 4 KiB pages (as after it was written) and the file system can
 * cache it in 2 MB folios (ext4 since Linux 6.16), the cached pages are dropped and
 * read again once so that they come back as 2 MB folios mapped by single page-table
 * entries; they stay so while the file stays cached, and every later load is fast.
 * Why: on virtual machines each 4 KiB mapping costs nested or shadow page walks;
 * decoding from 2 MB mappings streams up to 2x faster. Errors as nk_map_file. */
nook_status nk_map_file_huge(const char *path, nk_map *out, nook_error *err);

/* Read the whole file into private anonymous memory backed by transparent huge pages
 * where the kernel allows (MADV_HUGEPAGE), with n_threads parallel readers (<= 0:
 * the number of cores). Why not mmap: on virtual machines every 4 KiB page of a
 * mapping costs a nested page walk on first touch and in the TLB afterwards; a 5 GB
 * model reads in ~0.3 s this way against seconds of page faults through a mapping,
 * and decoding streams the weights up to 2x faster from 2 MB pages. The price is a
 * private copy of the file (the page cache keeps its own). Errors as nk_map_file. */
nook_status nk_load_file(const char *path, int n_threads, nk_map *out, nook_error *err);
void nk_unmap(nk_map *m);

/* Whether the bytes of a mapped file are still the ones mapped: NOOK_EIO naming path
 * when the file shrank or was modified since it was mapped, or when a page of it
 * faulted (SIGBUS) because it was truncated during use. Heap and anonymous copies are
 * private and always pass. Cost: one fstat. Thread-safe. */
nook_status nk_map_check(const nk_map *m, const char *path, nook_error *err);

/* The SIGBUS guard (mapguard.c): register [start, start+len) of a file mapping; a
 * fault inside it (the file was truncated) is patched with zero pages and recorded
 * instead of killing the process. Returns a slot (> 0) or 0 when none is free.
 * nk_guard_remove before unmapping; nk_guard_tripped: whether a fault was patched. */
int  nk_guard_add(const void *start, size_t len);
void nk_guard_remove(int slot);
bool nk_guard_tripped(int slot);

/* Read a whole (small) file into a NUL-terminated buffer; *len excludes the NUL. */
nook_status nk_read_file(const char *path, char **out, size_t *len, nook_error *err);
/* Write a file atomically: to path.tmp, fsync, rename. */
nook_status nk_write_file_atomic(const char *path, const void *data, size_t len, nook_error *err);

/* ---- time and CPU ---------------------------------------------------------------- */
double nk_time_ms(void);      /* monotonic milliseconds */
int    nk_n_cores(void);      /* online CPUs, at least 1 */

/* ---- half precision --------------------------------------------------------------- */
float    nk_fp16_to_fp32(uint16_t h);
uint16_t nk_fp32_to_fp16(float f);      /* round to nearest even, as ggml */
static inline float nk_bf16_to_fp32(uint16_t h) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
    return v.f;
}
uint16_t nk_fp32_to_bf16(float f);      /* round to nearest even; NaN stays NaN */

/* ---- UTF-8 ------------------------------------------------------------------------- */
/* Length of the UTF-8 sequence that starts with byte c (1..4), or 0 if c cannot start one. */
int nk_utf8_len(uint8_t c);
/* Offset of the first invalid byte in s[0..len) or -1 if it is all valid UTF-8. */
long nk_utf8_invalid_at(const char *s, size_t len);

#endif /* NOOK_BASE_H */

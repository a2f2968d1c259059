/*
 * base.c: errors, allocation hooks, logging, time, fp16/bf16 conversion, UTF-8 checks.
 */
#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *nook_status_str(nook_status s) {
    switch (s) {
    case NOOK_OK: return "ok";
    case NOOK_EINVAL: return "invalid argument";
    case NOOK_ENOMEM: return "out of memory";
    case NOOK_EIO: return "i/o error";
    case NOOK_EFORMAT: return "malformed input";
    case NOOK_EUNSUPPORTED: return "unsupported";
    case NOOK_ERANGE: return "limit exceeded";
    case NOOK_ENOTFOUND: return "not found";
    case NOOK_EINTERNAL: return "internal error";
    case NOOK_EBUSY: return "busy";
    case NOOK_EABORTED: return "aborted";
    }
    return "unknown status";
}

nook_status nk_vfail(nook_error *err, nook_status code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

nook_status nk_fail(nook_error *err, nook_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    nk_vfail(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void nk_prefix(nook_error *err, const char *fmt, ...) {
    if (!err) return;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(pre), no = strnlen(old, sizeof old - 1);
    if (np > sizeof err->msg - 1) np = sizeof err->msg - 1;
    if (no > sizeof err->msg - 1 - np) no = sizeof err->msg - 1 - np;
    memcpy(err->msg, pre, np);
    memcpy(err->msg + np, old, no);
    err->msg[np + no] = 0;
}

/* ---- allocation ---- */

static void *libc_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void *libc_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }
static void  libc_free(void *p, void *ud) { (void)ud; free(p); }
static nk_allocator g_alloc = { libc_malloc, libc_realloc, libc_free, NULL };

void nk_set_allocator(const nk_allocator *a) {
    if (a) g_alloc = *a;
    else g_alloc = (nk_allocator){ libc_malloc, libc_realloc, libc_free, NULL };
}
void *nk_malloc(size_t size) { return g_alloc.malloc_fn(size ? size : 1, g_alloc.ud); }
void *nk_realloc(void *p, size_t size) { return g_alloc.realloc_fn(p, size ? size : 1, g_alloc.ud); }
void  nk_free(void *p) { if (p) g_alloc.free_fn(p, g_alloc.ud); }

void *nk_alloc_array(size_t n, size_t size) {
    uint64_t total;
    if (!nk_mul_ok(n, size, &total) || total > SIZE_MAX) return NULL;
    return nk_malloc((size_t)total);
}

void *nk_calloc(size_t n, size_t size) {
    void *p = nk_alloc_array(n, size);
    if (p) memset(p, 0, n * size);
    return p;
}

char *nk_strndup(const char *s, size_t n) {
    char *d = nk_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}
char *nk_strdup(const char *s) { return nk_strndup(s, strlen(s)); }

/* Aligned blocks carry the original pointer just before the aligned address, so they
 * go through the same allocator hooks as everything else. */
void *nk_aligned_alloc(size_t size) {
    if (size > SIZE_MAX - 64 - sizeof(void *)) return NULL;
    uint8_t *raw = nk_malloc(size + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t a = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    ((void **)a)[-1] = raw;
    return (void *)a;
}
void nk_aligned_free(void *p) { if (p) nk_free(((void **)p)[-1]); }

/* ---- logging ---- */

static nk_log_fn g_log_fn;
static void *g_log_ud;

void nk_set_log(nk_log_fn fn, void *ud) { g_log_fn = fn; g_log_ud = ud; }

void nk_log(nk_log_level level, const char *fmt, ...) {
    if (!g_log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_ud);
}

/* ---- time / cpu ---- */

double nk_time_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int nk_n_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

/* ---- fp16 / bf16 ----
 * Bit-exact IEEE half conversions (round to nearest even), the same results as the
 * F16C instructions llama.cpp uses. */

float nk_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v = { .u = bits };
    return v.f;
}

uint16_t nk_fp32_to_fp16(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    uint32_t x = v.u;
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t man = x & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0);
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exp: correct */
    return sign | (uint16_t)half;
}

uint16_t nk_fp32_to_bf16(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    if ((v.u & 0x7fffffff) > 0x7f800000) return (uint16_t)((v.u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((v.u + (0x7fff + ((v.u >> 16) & 1))) >> 16);
}

/* ---- UTF-8 ---- */

int nk_utf8_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

long nk_utf8_invalid_at(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        int n = nk_utf8_len(c);
        if (n == 0 || i + (size_t)n > len) return (long)i;
        for (int k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80) return (long)i;
        /* overlong 3/4-byte forms, surrogates, > U+10FFFF */
        if (n == 3 && c == 0xe0 && s[i + 1] < 0xa0) return (long)i;
        if (n == 3 && c == 0xed && s[i + 1] >= 0xa0) return (long)i;
        if (n == 4 && c == 0xf0 && s[i + 1] < 0x90) return (long)i;
        if (n == 4 && c == 0xf4 && s[i + 1] >= 0x90) return (long)i;
        i += (size_t)n;
    }
    return -1;
}

/*
 * store_internal.h: helpers shared by the store's files (not part of its contract).
 */
#ifndef NOOK_STORE_INTERNAL_H
#define NOOK_STORE_INTERNAL_H

#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>

/* snprintf for paths: returns false when the result was truncated (callers treat that
 * as "too long"); a function, so a too-small buffer is a run-time check, not a guess. */
static inline bool __attribute__((format(printf, 3, 4))) nk_pfmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* Writes a manifest's exact bytes (as a registry sent them, so the ID matches Ollama's)
 * after parsing them and checking every blob is present with its size. */
nook_status nk_store_write_manifest_raw(nk_store *s, const nk_name *n, const char *json, size_t len,
                                        nook_error *err);

/* Makes the config blob (Ollama's ConfigV2: model_format, model_family(ies), model_type,
 * file_type, requires) for the GGUF at gguf_path and fills *out (media type, digest, size). */
nook_status nk_store_add_config(nk_store *s, const char *gguf_path, const char *requires, nk_layer *out,
                                nook_error *err);

#endif

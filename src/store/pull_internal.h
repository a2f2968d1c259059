/*
 * pull_internal.h: what pull.c (protocols) and fetch.c (one blob's download) share.
 */
#ifndef NOOK_PULL_INTERNAL_H
#define NOOK_PULL_INTERNAL_H

#include "store/store_internal.h"

/* One blob to download into the store. */
typedef struct nk_fetch {
    const char *url;                 /* GET here (redirects followed by net) */
    const char *const *headers;      /* e.g. Authorization (dropped on a host change) */
    const char *digest;              /* expected "sha256:<hex>" */
    uint64_t size;                   /* expected bytes */
    bool insecure;
    int parts;                       /* parallel parts (1..16) */
    uint64_t min_part;
    long stall_ms;
    int retries;
    const volatile int *cancel;
    bool (*progress)(uint64_t completed, void *ud);   /* from the calling thread */
    void (*verifying)(void *ud);
    void *ud;
} nk_fetch;

/* Downloads f into the store (see fetch.c). Resumes a partial download of the same
 * digest; keeps the partial file on transport errors (resumable), removes it when the
 * bytes are wrong (digest or size). Errors: NOOK_EIO (transport, after retries),
 * NOOK_EFORMAT (wrong bytes), NOOK_ENOTFOUND (4xx), NOOK_ERANGE (disk space). */
nook_status nk_fetch_blob(nk_store *s, const nk_fetch *f, nook_error *err);

#endif

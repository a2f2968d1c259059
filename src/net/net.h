/*
 * net.h: the one module of nook that talks beyond loopback (docs/design.md). Every
 * outbound HTTP request of nook goes through nk_http_do (libcurl); SHA-256 is computed
 * here too (OpenSSL's libcrypto, EVP interface). docs/dependencies.md says why both.
 *
 * Policy enforced here, for every caller:
 *  - Offline mode (nk_net_set_offline(true), or NOOK_OFFLINE=1 in the environment)
 *    refuses any URL whose host is not a loopback literal ("localhost", 127.0.0.0/8,
 *    ::1) before libcurl sees it, so no name is resolved and no socket is opened.
 *    Redirects are followed by this module itself (never by libcurl), so every hop
 *    passes the same check.
 *  - Only http and https. Plain http to a non-loopback host needs req.allow_http
 *    (the store sets it for `--insecure`, as Ollama does).
 *  - Proxies: libcurl honours http_proxy / https_proxy / HTTPS_PROXY / all_proxy /
 *    no_proxy as usual for non-loopback hosts; loopback hosts never go through a proxy.
 *
 * Threads: nk_http_do may be called from any number of threads at once (each call uses
 * its own libcurl handle; the global libcurl init runs once, guarded).
 */
#ifndef NOOK_NET_H
#define NOOK_NET_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- offline policy -------------------------------------------------------------- */

/* Sets the process-wide offline switch (the CLI's --offline). NOOK_OFFLINE=1 (or
 * "true"/"yes") in the environment turns it on as well; it cannot be turned off
 * by nk_net_set_offline(false) when the environment asks for it. */
void nk_net_set_offline(bool offline);
bool nk_net_offline(void);

/* Whether host (as it appears in a URL: "localhost", "127.0.0.1", "[::1]", "::1") is a
 * loopback literal. No name resolution: "foo.example" is not loopback even if it
 * resolves to 127.0.0.1. */
bool nk_net_host_is_loopback(const char *host);

/* Checks url against the policy above without any network access: scheme http/https,
 * a host present, offline mode, plain http. On success and if host_out is non-NULL,
 * *host_out receives the host (nk_malloc'd, caller frees). Errors: NOOK_EINVAL
 * (malformed URL, other scheme), NOOK_EUNSUPPORTED (refused by offline mode or by the
 * http rule; the message says which and how to allow it). */
nook_status nk_net_check_url(const char *url, bool allow_http, char **host_out, nook_error *err);

/* ---- HTTP ------------------------------------------------------------------------- */

/* Receives body bytes of a 2xx response (bodies of redirects and error statuses never
 * reach it). status is the final response's status (200 or 206 for ranges). Return
 * false to abort the transfer: nk_http_do then fails with NOOK_EIO "... aborted by the
 * receiver" (the receiver keeps its own reason in ud). */
typedef bool (*nk_http_data_fn)(const void *data, size_t n, long status, void *ud);

/* Transfer progress of the current hop: bytes received so far and the total the
 * server announced (0 if unknown). Return false to cancel. Called often (libcurl's
 * progress rate); keep it cheap. */
typedef bool (*nk_http_progress_fn)(uint64_t received, uint64_t total, void *ud);

typedef struct nk_http_req {
    const char *method;          /* "GET" (default when NULL), "HEAD", "POST", "PUT", "DELETE" */
    const char *url;
    const char *const *headers;  /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;            /* request body (POST/PUT), body_len bytes */
    size_t body_len;
    bool has_range;              /* send "Range: bytes=range_start-range_end" */
    uint64_t range_start;
    uint64_t range_end;          /* inclusive; UINT64_MAX: to the end ("bytes=a-") */
    long connect_timeout_ms;     /* 0: 15 s */
    long timeout_ms;             /* whole transfer; 0: none (big downloads) */
    long stall_ms;               /* abort when under 1 byte/s for this long; 0: 30 s */
    int max_redirects;           /* hops this module follows; 0: default 8; <0: none */
    bool allow_http;             /* plain http to non-loopback hosts (--insecure) */
    bool keep_auth_on_redirect;  /* default false: Authorization is dropped when a
                                    redirect leaves the original host (blob CDNs) */
    const char *purpose;         /* short tag for the egress ledger ("pull", "escalate") */
    size_t max_body;             /* when on_data is NULL: collect at most this many bytes
                                    of the body into resp->body (0: 1 MiB); more fails */
    nk_http_data_fn on_data;     /* NULL: collect the body into resp->body */
    nk_http_progress_fn on_progress;
    void *ud;                    /* passed to on_data and on_progress */
    const volatile int *cancel;  /* optional: a nonzero value aborts the transfer */
} nk_http_req;

typedef struct nk_http_resp {
    long status;                 /* final HTTP status (after redirects), 0 if none */
    char *body;                  /* collected body (NUL-terminated), or an error body
                                    (first 64 KiB) of a >= 400 status; nk_malloc'd */
    size_t body_len;
    char *final_url;             /* the URL of the final hop (nk_malloc'd) */
    char *headers;               /* the final response's header block, lines "Name: value\n" */
    int64_t content_length;      /* -1 if not announced */
    uint64_t received;           /* body bytes received on the final hop */
} nk_http_resp;

/* Performs the request. Returns NOOK_OK when a response arrived, whatever its status
 * (the caller decides what 404 means); fails with NOOK_EIO for transport errors
 * (connection refused, reset, timeout, stall: the message names the URL's host and
 * what happened), NOOK_EUNSUPPORTED / NOOK_EINVAL as nk_net_check_url for any hop,
 * NOOK_ERANGE when a collected body exceeds max_body or too many redirects.
 * resp must be zeroed or freed before; it is filled even on failure where possible
 * and must be released with nk_http_resp_free. */
nook_status nk_http_do(const nk_http_req *req, nk_http_resp *resp, nook_error *err);
void nk_http_resp_free(nk_http_resp *resp);

/* The value of a header of the final response (case-insensitive name), copied into
 * buf (truncated to cap-1); false if absent. */
bool nk_http_header(const nk_http_resp *resp, const char *name, char *buf, size_t cap);

/* A URL-encoded copy of s (nk_malloc'd), for query parameters. */
char *nk_url_escape(const char *s);

/* ---- SHA-256 (OpenSSL EVP) ---------------------------------------------------------- */

typedef struct nk_sha256 { void *ctx; } nk_sha256;

nook_status nk_sha256_init(nk_sha256 *h, nook_error *err);
void nk_sha256_update(nk_sha256 *h, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL into hex[65] and frees the context. */
void nk_sha256_final(nk_sha256 *h, char hex[65]);
void nk_sha256_free(nk_sha256 *h);    /* releases an unfinished context (idempotent) */
/* One-shot digest of a buffer. */
nook_status nk_sha256_buf(const void *data, size_t n, char hex[65], nook_error *err);
/* Digest of a whole file, streamed (never mapped whole). Errors: NOOK_EIO. */
nook_status nk_sha256_file(const char *path, char hex[65], nook_error *err);

#endif /* NOOK_NET_H */

/*
 * server.h: `nook serve`, the HTTP layer (libmicrohttpd), and the conventions every
 * route file of src/server/ follows. Read this comment before adding an endpoint.
 *
 * Files
 *   server.h      this API: configuration, route tables, requests, replies, streams
 *   config.c      configuration from the environment (NOOK_HOST as OLLAMA_HOST, ...),
 *                 Go-style durations, origin patterns
 *   http.c        libmicrohttpd glue: the daemon, limits, the Host / Origin / API-key
 *                 checks, reading bodies, dispatch through the route tables, replies
 *   stream.c      streamed bodies (NDJSON, SSE) fed from another thread
 *   request.h/.c  tolerant reading of JSON bodies into generation / embedding requests
 *   metrics.c     counters and gauges, /metrics (Prometheus text)
 *   routes.c      the list of route tables, and the core routes (/, /health,
 *                 /metrics, /api/version)
 *
 * Threads: one thread per connection (MHD_USE_THREAD_PER_CONNECTION). A handler runs
 * on its connection's thread, so it may block (wait for a model to load, wait for a
 * non-streamed generation); streamed bodies are written from any thread through a
 * srv_stream. No global lock is held while a handler runs.
 *
 * Adding endpoints from your own file (store, specialist, ...):
 *   1. In src/server/routes_<you>.c:
 *        static void h_pull(srv_req *r) { ... srv_reply_json(r, 200, obj); }
 *        static const srv_route k_routes[] = {
 *            { "POST", "/api/pull", SRV_API_OLLAMA, 0, h_pull },
 *            { "HEAD", "/api/blobs/{digest}", SRV_API_OLLAMA, 0, h_blob_head },
 *        };
 *        const srv_route_table srv_routes_<you> = { k_routes, NK_ARRAY_LEN(k_routes) };
 *   2. Declare it in the "route tables" list below and add one line to k_tables in
 *      routes.c. The first table whose pattern matches wins; patterns are exact paths
 *      whose {name} segments match one non-empty segment and a final {name*} the rest
 *      of the path (srv_req_param(r, 0) is the first one). GET routes answer HEAD too (libmicrohttpd sends no body).
 * Before a handler runs, http.c has checked the Host header (DNS rebinding), the
 * Origin (CORS), the API key (unless the route is SRV_PUBLIC), the body size
 * (SRV_BIG_BODY raises it; 413 otherwise) and, for bodies that look like JSON, the
 * nesting depth. The handler must answer exactly once (srv_reply_*); one that does
 * not gets a 500. Errors are srv_reply_error(r, status, fmt, ...): Ollama's shape
 * {"error": "..."} or OpenAI's {"error": {"message", "type", "param", "code"}}
 * following the route's srv_api.
 *
 * Extra request fields (grammar's format/tools, router's route, ...): see request.h.
 */
#ifndef NOOK_SERVER_H
#define NOOK_SERVER_H

#include "base/base.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

/* ---- configuration --------------------------------------------------------------- */

typedef struct srv_config {
    char     host[256];        /* bind address ("127.0.0.1", "0.0.0.0", "::1")        */
    int      port;             /* 0: any free port (srv_port tells which)             */
    bool     host_is_loopback; /* the Host-header check applies only then (as Ollama) */
    char    *origins;          /* NOOK_ORIGINS: extra allowed CORS origins, comma list
                                  with '*' wildcards (nk_malloc'd, may be NULL)        */
    char    *api_key;          /* NOOK_API_KEY or NULL: then every non-public route
                                  needs "Authorization: Bearer <key>"                  */
    /* limits */
    size_t   max_body;         /* bytes of a request body (default 32 MiB)            */
    size_t   max_header;       /* bytes of the request line + headers (64 KiB)        */
    int      max_json_depth;   /* nesting of a JSON body (128)                        */
    int      max_messages;     /* messages in a chat request (4096)                   */
    int      max_connections;  /* simultaneous connections (NOOK_MAX_CONNECTIONS, 256) */
    int      timeout_s;        /* a client idle this long while sending a request or
                                  between keep-alive requests is dropped
                                  (NOOK_HTTP_TIMEOUT seconds, 30)                     */
    /* model serving (read by the generation routes) */
    int      num_parallel;     /* NOOK_NUM_PARALLEL (0: chosen from memory)           */
    int      max_queue;        /* NOOK_MAX_QUEUE (512)                                */
    int      max_loaded;       /* NOOK_MAX_LOADED_MODELS (0: 3)                       */
    int      context_length;   /* NOOK_CONTEXT_LENGTH (0: model default)              */
    int64_t  keep_alive_ns;    /* NOOK_KEEP_ALIVE (5m; < 0 forever)                   */
    char     kv_cache_type[16];/* NOOK_KV_CACHE_TYPE ("f16", "q8_0", "q4_0", "f32")   */
} srv_config;

/* Defaults, then the environment (NOOK_HOST, NOOK_ORIGINS, NOOK_API_KEY, NOOK_NUM_PARALLEL,
 * NOOK_MAX_QUEUE, NOOK_MAX_LOADED_MODELS, NOOK_CONTEXT_LENGTH, NOOK_KEEP_ALIVE,
 * NOOK_KV_CACHE_TYPE, NOOK_MAX_CONNECTIONS, NOOK_HTTP_TIMEOUT). A malformed value is an error naming the
 * variable (NOOK_EINVAL). Free with srv_config_clear. */
nook_status srv_config_from_env(srv_config *c, nook_error *err);
void srv_config_clear(srv_config *c);

/* NOOK_HOST / OLLAMA_HOST syntax: "host", "host:port", ":port", "[v6]:port" or a URL
 * "http://host[:port][/path]" (default port 11434; 80 for an http:// URL without one,
 * 443 for https://). An empty host binds every interface (0.0.0.0). */
nook_status srv_parse_host(const char *s, char *host, size_t cap, int *port, nook_error *err);

/* Go's time.ParseDuration ("5m", "1h30m", "-1s", "300ms") or a plain number of seconds
 * ("300", "-1"), into nanoseconds. Saturates at +-INT64_MAX. */
nook_status srv_parse_duration(const char *s, int64_t *ns, nook_error *err);

/* Whether a CORS origin is allowed: Ollama's default local origins (http(s)://localhost,
 * 127.0.0.1, 0.0.0.0 with any port, app://, file://, tauri://, vscode-webview://,
 * vscode-file://) and the configured extra list (patterns with '*' wildcards). */
bool srv_origin_allowed(const srv_config *c, const char *origin);

/* Whether a Host header names this machine safely (DNS-rebinding defence, as Ollama's
 * allowedHostsMiddleware): localhost, *.localhost, *.local, *.internal, an IP that is
 * loopback, private or unspecified, this machine's hostname, or the configured host.
 * Only applied when the server is bound to loopback. */
bool srv_host_allowed(const srv_config *c, const char *host_header);

/* Constant-time check of an "Authorization" header against "Bearer <key>". */
bool srv_auth_ok(const char *key, const char *authorization);
/* The same for a bare key (Anthropic's clients send "x-api-key: <key>"). */
bool srv_key_ok(const char *key, const char *given);

/* Returns the depth of the deepest JSON nesting in text (scanning brackets outside of
 * strings), stopping early once it exceeds limit (then returns limit + 1). */
int srv_json_depth(const char *text, size_t len, int limit);

/* ---- the server ------------------------------------------------------------------- */

typedef struct srv_server srv_server;

/* Binds and starts serving (threads run in the background). Errors: NOOK_EIO when the
 * address cannot be bound (in use, not permitted). The config is copied. */
nook_status srv_start(const srv_config *c, srv_server **out, nook_error *err);
/* The port actually bound (useful with port 0). */
int srv_port(const srv_server *s);
const srv_config *srv_get_config(const srv_server *s);
/* Graceful stop: stop accepting, wait up to drain_ms for requests in flight to finish
 * (streams included), then close everything and free the server. */
void srv_stop(srv_server *s, int drain_ms);

/* Runs fn(arg) on a thread of its own, detached, as pthread_create would, but on a
 * parked thread from a process-wide cache when one is idle (spawn.c: creating a thread
 * per request costs about a millisecond under load). Returns 0, or an errno value when
 * no thread could be started (fn is then not run). Any thread. */
int srv_spawn(void *(*fn)(void *), void *arg);

/* Something that lives as long as the server (the model registry of the generation
 * routes): created lazily, freed at srv_stop in reverse order of creation. */
typedef struct srv_component {
    const char *name;
    void *(*create)(srv_server *s);
    void  (*destroy)(void *obj);
} srv_component;
/* The object of a component, created on first use (thread-safe). NULL if create failed. */
void *srv_component_get(srv_server *s, const srv_component *comp);

/* ---- routes --------------------------------------------------------------------------- */

typedef enum srv_api {
    SRV_API_OLLAMA = 0, /* errors {"error": "..."}                                 */
    SRV_API_OPENAI,     /* errors {"error": {"message","type","param","code"}}     */
    SRV_API_TEXT,       /* errors as plain text                                    */
    SRV_API_ANTHROPIC,  /* errors {"type":"error","error":{"type","message"}}      */
} srv_api;

enum {
    SRV_PUBLIC   = 1 << 0, /* no API key needed (/ and /health: liveness probes)      */
    SRV_BIG_BODY = 1 << 1, /* body up to 64x max_body (model uploads)                 */
};

typedef struct srv_req srv_req;

typedef struct srv_route {
    const char *method;    /* "GET", "POST", "DELETE", "HEAD" */
    const char *pattern;   /* "/api/chat", "/v1/models/{id}"   */
    srv_api     api;
    unsigned    flags;     /* SRV_PUBLIC | SRV_BIG_BODY         */
    void      (*handler)(srv_req *r);
} srv_route;

typedef struct srv_route_table {
    const srv_route *routes;
    size_t n;
} srv_route_table;

/* Route tables (one per file; routes.c lists them in order). */
extern const srv_route_table srv_routes_core;     /* routes.c: /, /health, /metrics, /api/version */
extern const srv_route_table srv_routes_store;    /* routes_store.c: tags, show, pull, create, blobs, copy, delete */
extern const srv_route_table srv_routes_gen;      /* routes_gen.c: generate, chat, OpenAI completions */
/* Ollama's "created_at": now in UTC, RFC 3339 with nanoseconds, into buf (48 bytes hold it). */
void srv_created_at(char *buf, size_t cap);
extern const srv_route_table srv_routes_models;   /* routes_models.c: show, ps, tags (shadowed by the store's), /v1/models */
extern const srv_route_table srv_routes_embed;    /* routes_embed.c: embed, embeddings, /v1/embeddings */
extern const srv_route_table srv_routes_specialist; /* routes_specialist.c: /api/classify; show and chat with a specialist */
extern const srv_route_table srv_routes_ui;       /* routes_ui.c: the web page at /ui/, /api/audit */

/* Finds the route for method+path. Returns it and stores captured {params} (up to 4,
 * pointers into path with lengths) or NULL; *path_known tells whether some route has
 * this path with another method (405 rather than 404). */
const srv_route *srv_route_find(const char *method, const char *path, bool *path_known,
                                const char **params, size_t *param_len, int *n_params);

/* ---- requests -------------------------------------------------------------------------- */

const char *srv_req_method(const srv_req *r);
const char *srv_req_path(const srv_req *r);
/* The body (NUL-terminated; "" when none) and its length. */
const char *srv_req_body(const srv_req *r, size_t *len);
/* A request header or query argument (case-insensitive header name), or NULL. */
const char *srv_req_header(const srv_req *r, const char *name);
const char *srv_req_query(const srv_req *r, const char *name);
/* The i-th {param} of the route pattern (NUL-terminated copy), or NULL. */
const char *srv_req_param(const srv_req *r, int i);
srv_server *srv_req_server(const srv_req *r);
srv_api srv_req_api(const srv_req *r);
/* Parses the body as a JSON object (tolerantly: no Content-Type needed, an empty body
 * is {}). On failure answers 400 itself and returns NULL. The value is owned by the
 * request (do not decref). */
json_t *srv_req_json(srv_req *r);
/* Whether the client has closed its connection (a quick poll, no blocking). */
bool srv_req_client_gone(srv_req *r);

/* ---- replies ----------------------------------------------------------------------------
 * Each returns false if a reply was already queued or the connection failed. */
bool srv_reply_json(srv_req *r, int status, json_t *body);          /* steals body */
bool srv_reply_text(srv_req *r, int status, const char *content_type, const char *text, size_t len);
bool srv_reply_error(srv_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool srv_reply_errorv(srv_req *r, int status, const char *fmt, va_list ap);
/* An extra response header for the next reply (e.g. "Allow"). Copied. */
void srv_reply_header(srv_req *r, const char *name, const char *value);
/* The error body in the route's shape (for a final line after streaming began). */
json_t *srv_error_body(srv_api api, int status, const char *msg);

/* ---- streams ----------------------------------------------------------------------------
 * A streamed 200 response (HTTP/1.1 chunked) whose bytes are written from any thread.
 * srv_reply_stream returns the stream with one reference for the caller; the response
 * holds another. Writes never block: they queue bytes that the connection's thread
 * sends. When the client goes away (detected within ~50 ms while the stream is open),
 * the cancel hook runs once on the connection's thread and later writes return false.
 * A client that stops reading while more than 16 MiB are queued is treated as gone. */
typedef struct srv_stream srv_stream;
srv_stream *srv_reply_stream(srv_req *r, const char *content_type);
bool srv_stream_write(srv_stream *s, const void *data, size_t len);
/* One JSON value followed by "\n" (NDJSON); does not steal v. */
bool srv_stream_json_line(srv_stream *s, const json_t *v);
/* "data: <json>\n\n" (SSE); does not steal v. */
bool srv_stream_sse(srv_stream *s, const json_t *v);
/* Sets the cancel hook (fn(arg) on disconnect). If the client is already gone, fn runs
 * now, on the calling thread. */
void srv_stream_on_cancel(srv_stream *s, void (*fn)(void *arg), void *arg);
bool srv_stream_cancelled(srv_stream *s);
/* Ends the body and drops the caller's reference (the stream must not be used after). */
void srv_stream_end(srv_stream *s);

/* ---- metrics (metrics.c) ----------------------------------------------------------------- */

typedef enum srv_counter {
    SRV_M_REQUESTS,          /* HTTP requests answered                    */
    SRV_M_REQUESTS_4XX,
    SRV_M_REQUESTS_5XX,
    SRV_M_PROMPT_TOKENS,     /* prompt tokens evaluated                   */
    SRV_M_GEN_TOKENS,        /* tokens generated                          */
    SRV_M_CANCELLED,         /* generations cancelled by a disconnect     */
    SRV_M_REJECTED_QUEUE,    /* 503s: the queue was full                  */
    SRV_M_COUNTER_COUNT
} srv_counter;
typedef enum srv_gauge {
    SRV_G_CONNECTIONS,       /* open connections                          */
    SRV_G_IN_FLIGHT,         /* requests being handled or streamed        */
    SRV_G_QUEUE,             /* generation requests waiting               */
    SRV_G_ACTIVE_SEQS,       /* sequences being generated                 */
    SRV_G_LOADED_MODELS,
    SRV_G_GAUGE_COUNT
} srv_gauge;
void srv_metric_add(srv_counter c, uint64_t n);
void srv_gauge_add(srv_gauge g, int64_t delta);
void srv_gauge_set(srv_gauge g, int64_t v);
int64_t srv_gauge_get(srv_gauge g);
/* The Prometheus text exposition of every metric (nk_malloc'd). */
char *srv_metrics_text(size_t *len);

#endif /* NOOK_SERVER_H */

/*
 * http.c: the libmicrohttpd side of `nook serve`: the daemon (one thread per
 * connection, keep-alive, chunked streaming), the checks every request passes before
 * its handler runs (Host header, CORS origin, API key, header and body size, JSON
 * depth), dispatch through the route tables, and the reply helpers of server.h.
 *
 * Order of checks (each answers and stops): route lookup (404 / 405), Host header
 * (403, DNS-rebinding defence), Origin (403 unless allowed; CORS preflight answered
 * here), API key (401), declared body size (413, before the body is read), body read
 * with the limit enforced as it arrives (a chunked body that outgrows it closes the
 * connection: libmicrohttpd cannot answer in the middle of an upload), JSON depth (400).
 * Header size is libmicrohttpd's connection memory limit (it answers 431 itself).
 *
 * Timeouts: libmicrohttpd drops a connection idle for timeout_s while a request is
 * being received or between keep-alive requests (slow clients). While a handler
 * works, or a stream is open, the timeout is off (disconnects are detected by polling
 * the socket instead) and it is restored, from zero, when the reply is complete.
 */
#include "server/http_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COMPONENTS 16
#define MAX_EXTRA_HEADERS 8

/* A connection as the header deadline sees it (see on_connection). */
typedef struct hd_conn {
    int fd;
    double since;           /* when it began waiting for a request's headers (ms) */
    bool waiting;           /* between requests or inside one's headers            */
    struct hd_conn *prev, *next;
} hd_conn;

struct srv_server {
    struct MHD_Daemon *d;
    /* header deadline: the connections, and the watchdog thread that cuts those that
     * took longer than timeout_s to send a request's headers */
    pthread_mutex_t hd_mu;
    pthread_cond_t hd_cv;
    hd_conn *hd_list;
    pthread_t hd_thread;
    bool hd_running, hd_stop;
    srv_config cfg;
    int port;
    atomic_int in_flight;
    pthread_mutex_t comp_mu;
    const srv_component *comp[MAX_COMPONENTS];
    void *comp_obj[MAX_COMPONENTS];
    int n_comp;
};

struct srv_req {
    srv_server *srv;
    struct MHD_Connection *conn;
    const srv_route *route;
    srv_api api;
    char method[16];
    char *path;
    char *body;
    size_t body_len, body_cap, body_limit;
    bool overflow;       /* the body outgrew body_limit */
    bool dispatched;
    bool replied;
    int status;
    json_t *json;
    char *params[4];
    int n_params;
    const char *origin;  /* an allowed Origin to echo (borrowed from MHD) */
    char *hdr_name[MAX_EXTRA_HEADERS], *hdr_value[MAX_EXTRA_HEADERS];
    int n_hdr;
};

/* ---- responses ----------------------------------------------------------------------- */

static void add_common_headers(srv_req *r, struct MHD_Response *resp) {
    if (r->origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    for (int i = 0; i < r->n_hdr; i++) MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    /* Tell clients how long an idle keep-alive connection lives here, so that a client
     * pool (undici's, Go's) drops it first instead of sending a request into a socket
     * the server is closing (a POST that then fails with "other side closed"). */
    char ka[32];
    snprintf(ka, sizeof ka, "timeout=%d", r->srv->cfg.timeout_s);
    MHD_add_response_header(resp, "Keep-Alive", ka);
}

static bool queue(srv_req *r, int status, struct MHD_Response *resp) {
    if (!resp) return false;
    add_common_headers(r, resp);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    r->status = status;
    return ok == MHD_YES;
}

bool srv_reply_text(srv_req *r, int status, const char *content_type, const char *text, size_t len) {
    if (r->replied) return false;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return false;
    if (content_type) MHD_add_response_header(resp, "Content-Type", content_type);
    return queue(r, status, resp);
}

bool srv_reply_json(srv_req *r, int status, json_t *body) {
    if (!body) return srv_reply_error(r, 500, "out of memory");
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!txt) return srv_reply_error(r, 500, "out of memory");
    bool ok = srv_reply_text(r, status, "application/json; charset=utf-8", txt, strlen(txt));
    free(txt);
    return ok;
}

json_t *srv_error_body(srv_api api, int status, const char *msg) {
    if (api == SRV_API_ANTHROPIC) {   /* Anthropic's error shape and types */
        const char *type = status == 401 ? "authentication_error"
                         : status == 403 ? "permission_error"
                         : status == 404 ? "not_found_error"
                         : status == 413 ? "request_too_large"
                         : status == 429 ? "rate_limit_error"
                         : status == 503 ? "overloaded_error"
                         : status >= 500 ? "api_error" : "invalid_request_error";
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", msg);
    }
    if (api != SRV_API_OPENAI) return json_pack("{s:s}", "error", msg);
    /* OpenAI's shape; types as Ollama's openai middleware (and OpenAI for 401). */
    const char *type = status == 400 ? "invalid_request_error"
                     : status == 401 ? "invalid_request_error"
                     : status == 404 ? "not_found_error"
                     : status == 403 ? "permission_error"
                     : status == 413 ? "invalid_request_error"
                     : status == 429 || status == 503 ? "server_busy" : "api_error";
    json_t *code = status == 401 ? json_string("invalid_api_key") : json_null();
    return json_pack("{s:{s:s,s:s,s:n,s:o}}", "error", "message", msg, "type", type, "param", "code", code);
}

bool srv_reply_errorv(srv_req *r, int status, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (r->api == SRV_API_TEXT) {
        size_t n = strlen(msg);
        if (n + 1 < sizeof msg) { msg[n] = '\n'; msg[n + 1] = 0; }
        return srv_reply_text(r, status, "text/plain; charset=utf-8", msg, strlen(msg));
    }
    return srv_reply_json(r, status, srv_error_body(r->api, status, msg));
}

bool srv_reply_error(srv_req *r, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bool ok = srv_reply_errorv(r, status, fmt, ap);
    va_end(ap);
    return ok;
}

void srv_reply_header(srv_req *r, const char *name, const char *value) {
    if (r->n_hdr >= MAX_EXTRA_HEADERS) return;
    char *n = nk_strdup(name), *v = nk_strdup(value);
    if (!n || !v) { nk_free(n); nk_free(v); return; }
    r->hdr_name[r->n_hdr] = n;
    r->hdr_value[r->n_hdr++] = v;
}

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

srv_stream *srv_reply_stream(srv_req *r, const char *content_type) {
    if (r->replied) return NULL;
    srv_stream *s = NULL;
    struct MHD_Response *resp = srv_stream_create(r->conn, conn_fd(r->conn), r->srv->cfg.timeout_s, &s);
    if (!resp) return NULL;
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (!queue(r, 200, resp)) {
        /* The response (and its reference) is gone; the caller's is all that is left. */
        srv_stream_end(s);
        return NULL;
    }
    return s;
}

/* ---- request accessors ------------------------------------------------------------------ */

const char *srv_req_method(const srv_req *r) { return r->method; }
const char *srv_req_path(const srv_req *r) { return r->path; }
srv_server *srv_req_server(const srv_req *r) { return r->srv; }
srv_api srv_req_api(const srv_req *r) { return r->api; }
const srv_config *srv_get_config(const srv_server *s) { return &s->cfg; }
int srv_port(const srv_server *s) { return s->port; }

const char *srv_req_body(const srv_req *r, size_t *len) {
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}
const char *srv_req_header(const srv_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *srv_req_query(const srv_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}
const char *srv_req_param(const srv_req *r, int i) {
    return i >= 0 && i < r->n_params ? r->params[i] : NULL;
}
bool srv_req_client_gone(srv_req *r) { return srv_fd_gone(conn_fd(r->conn)); }

json_t *srv_req_json(srv_req *r) {
    if (r->json) return r->json;
    const char *b = r->body ? r->body : "";
    size_t n = r->body_len;
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
    if (i == n) return r->json = json_object();   /* an empty body is {} (Ollama: EOF is fine) */
    json_error_t je;
    json_t *v = json_loadb(b, n, 0, &je);
    if (!v) {
        srv_reply_error(r, 400, "invalid JSON in the request body: %s (line %d, column %d)", je.text, je.line,
                        je.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        srv_reply_error(r, 400, "the request body must be a JSON object");
        return NULL;
    }
    return r->json = v;
}

/* ---- components --------------------------------------------------------------------------- */

void *srv_component_get(srv_server *s, const srv_component *comp) {
    pthread_mutex_lock(&s->comp_mu);
    for (int i = 0; i < s->n_comp; i++)
        if (s->comp[i] == comp) {
            void *o = s->comp_obj[i];
            pthread_mutex_unlock(&s->comp_mu);
            return o;
        }
    void *o = NULL;
    if (s->n_comp < MAX_COMPONENTS && (o = comp->create(s))) {
        s->comp[s->n_comp] = comp;
        s->comp_obj[s->n_comp++] = o;
    }
    pthread_mutex_unlock(&s->comp_mu);
    return o;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const char k_allow_headers[] =
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
    "X-Api-Key, Anthropic-Version, Anthropic-Beta, "
    "X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, X-Stainless-Arch, "
    "X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Async, "
    "X-Stainless-Helper-Method, X-Stainless-Poll-Helper, X-Stainless-Custom-Poll-Interval, "
    "X-Stainless-Timeout, X-Stainless-Raw-Response";

static void req_free(srv_req *r) {
    if (!r) return;
    json_decref(r->json);
    nk_free(r->body);
    nk_free(r->path);
    for (int i = 0; i < r->n_params; i++) nk_free(r->params[i]);
    for (int i = 0; i < r->n_hdr; i++) { nk_free(r->hdr_name[i]); nk_free(r->hdr_value[i]); }
    nk_free(r);
}

/* First call for a request: route it and run every check that does not need the body.
 * Returns false if the request was answered already. */
static bool admit(srv_req *r, const char *upload_len_hdr) {
    const srv_config *c = &r->srv->cfg;
    const char *path = r->path;
    r->api = strncmp(path, "/v1/messages", 12) == 0 ? SRV_API_ANTHROPIC
           : strncmp(path, "/v1/", 4) == 0 ? SRV_API_OPENAI : SRV_API_OLLAMA;

    if (!srv_host_allowed(c, srv_req_header(r, "Host"))) {
        srv_reply_error(r, 403, "the Host header does not name this machine (DNS-rebinding protection); "
                                "bind with NOOK_HOST to serve other names");
        return false;
    }
    const char *origin = srv_req_header(r, "Origin");
    if (origin) {
        if (!srv_origin_allowed(c, origin)) {
            srv_reply_error(r, 403, "origin '%.200s' is not allowed (add it to NOOK_ORIGINS)", origin);
            return false;
        }
        r->origin = origin;
        if (strcmp(r->method, "OPTIONS") == 0) {   /* CORS preflight */
            srv_reply_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
            srv_reply_header(r, "Access-Control-Allow-Headers", k_allow_headers);
            srv_reply_header(r, "Access-Control-Max-Age", "43200");
            srv_reply_text(r, 204, NULL, "", 0);
            return false;
        }
    }
    bool known = false;
    const char *pp[4];
    size_t pl[4];
    int np = 0;
    const srv_route *rt = srv_route_find(r->method, path, &known, pp, pl, &np);
    if (!rt && strcmp(r->method, "HEAD") == 0) rt = srv_route_find("GET", path, &known, pp, pl, &np);
    if (!rt && strcmp(r->method, "OPTIONS") == 0 && known) {
        srv_reply_text(r, 204, NULL, "", 0);
        return false;
    }
    bool auth = srv_auth_ok(c->api_key, srv_req_header(r, "Authorization")) ||
                (c->api_key && srv_req_header(r, "x-api-key") && srv_key_ok(c->api_key, srv_req_header(r, "x-api-key")));
    if (!rt && !auth) {   /* without the key, say nothing about which paths exist */
        srv_reply_header(r, "WWW-Authenticate", "Bearer");
        srv_reply_error(r, 401, "missing or wrong API key (send \"Authorization: Bearer <NOOK_API_KEY>\")");
        return false;
    }
    if (!rt) {
        if (known) {
            srv_reply_error(r, 405, "method %s is not allowed for %.200s", r->method, path);
        } else {
            srv_reply_error(r, 404, "no such endpoint: %s %.200s", r->method, path);
        }
        return false;
    }
    r->route = rt;
    r->api = rt->api;
    for (int i = 0; i < np; i++) {
        r->params[i] = nk_strndup(pp[i], pl[i]);
        if (!r->params[i]) { srv_reply_error(r, 500, "out of memory"); return false; }
        r->n_params = i + 1;
    }
    if (!auth && !(rt->flags & SRV_PUBLIC)) {
        srv_reply_header(r, "WWW-Authenticate", "Bearer");
        srv_reply_error(r, 401, "missing or wrong API key (send \"Authorization: Bearer <NOOK_API_KEY>\")");
        return false;
    }
    r->body_limit = c->max_body * ((rt->flags & SRV_BIG_BODY) ? 64 : 1);
    if (upload_len_hdr) {
        char *end;
        unsigned long long n = strtoull(upload_len_hdr, &end, 10);
        if (n > r->body_limit) {
            srv_reply_error(r, 413, "request body of %llu bytes is over the limit of %zu", n, r->body_limit);
            return false;
        }
    }
    return true;
}

static bool body_append(srv_req *r, const char *data, size_t n) {
    if (r->body_len + n > r->body_limit) {
        r->overflow = true;
        return false;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n + 1) cap *= 2;
        char *nb = nk_realloc(r->body, cap);
        if (!nb) return false;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return true;
}

static void dispatch(srv_req *r) {
    const srv_config *c = &r->srv->cfg;
    size_t i = 0;
    while (i < r->body_len && (r->body[i] == ' ' || r->body[i] == '\n' || r->body[i] == '\r' || r->body[i] == '\t'))
        i++;
    if (i < r->body_len && (r->body[i] == '{' || r->body[i] == '[') &&
        srv_json_depth(r->body, r->body_len, c->max_json_depth) > c->max_json_depth) {
        srv_reply_error(r, 400, "JSON nested deeper than %d levels", c->max_json_depth);
        return;
    }
    /* While the handler works the client is not timed out (see the top comment). */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0);
    r->route->handler(r);
    if (!r->replied) {
        nk_log(NK_LOG_ERROR, "server: handler for %s %s gave no reply", r->method, r->path);
        srv_reply_error(r, 500, "internal error: no reply");
    }
}

/* ---- the header deadline (slow clients) -----------------------------------------------------
 * libmicrohttpd's connection timeout is an idle timeout: a client that sends one byte of
 * its headers every second keeps a connection (and, here, a thread) forever. So each
 * connection also has a deadline for a request's headers: timeout_s from when it opened
 * or finished its previous request. A watchdog thread checks four times a second and
 * shuts the socket of a connection past it down (shutdown(), not close(): the descriptor
 * stays libmicrohttpd's, whose thread then sees the connection end and cleans up). Bodies
 * are not under it (a model upload may take minutes); a stalled body is the idle
 * timeout's. */

static hd_conn *hd_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void header_done(srv_server *s, struct MHD_Connection *conn) {
    pthread_mutex_lock(&s->hd_mu);
    hd_conn *h = hd_of(conn);
    if (h) h->waiting = false;
    pthread_mutex_unlock(&s->hd_mu);
}

static void header_wait(srv_server *s, struct MHD_Connection *conn) {
    pthread_mutex_lock(&s->hd_mu);
    hd_conn *h = hd_of(conn);
    if (h) { h->waiting = true; h->since = nk_time_ms(); }
    pthread_mutex_unlock(&s->hd_mu);
}

static void *header_watchdog(void *arg) {
    srv_server *s = arg;
    pthread_mutex_lock(&s->hd_mu);
    while (!s->hd_stop) {
        double now = nk_time_ms(), limit = 1000.0 * s->cfg.timeout_s;
        for (hd_conn *h = s->hd_list; h; h = h->next) {
            if (!h->waiting || now - h->since <= limit || h->fd < 0) continue;
            nk_log(NK_LOG_INFO, "server: a client took over %d s to send a request's headers; closing it",
                   s->cfg.timeout_s);
            shutdown(h->fd, SHUT_RDWR);
            h->waiting = false;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->hd_cv, &s->hd_mu, &ts);
    }
    pthread_mutex_unlock(&s->hd_mu);
    return NULL;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
    (void)version;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = nk_calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->srv = s;
        r->conn = conn;
        header_done(s, conn);
        atomic_fetch_add(&s->in_flight, 1);
        srv_gauge_add(SRV_G_IN_FLIGHT, 1);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = nk_strdup(url ? url : "/");
        if (!r->path) return MHD_NO;
        if (!admit(r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)))
            r->dispatched = true;   /* answered already; any body is discarded */
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->dispatched && !body_append(r, upload_data, *upload_data_size)) {
            if (r->overflow) {
                /* Too late to answer (libmicrohttpd only replies before or after a body). */
                nk_log(NK_LOG_WARN, "server: %s %s: chunked body over %zu bytes; closing", r->method, r->path,
                       r->body_limit);
            }
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->dispatched) {
        r->dispatched = true;
        dispatch(r);
    } else if (!r->replied) {
        return MHD_NO;
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    header_wait(s, conn);   /* a keep-alive connection now waits for the next request */
    if (!r) return;
    srv_metric_add(SRV_M_REQUESTS, 1);
    if (r->status >= 400 && r->status < 500) srv_metric_add(SRV_M_REQUESTS_4XX, 1);
    if (r->status >= 500) srv_metric_add(SRV_M_REQUESTS_5XX, 1);
    req_free(r);
    *con_cls = NULL;
    srv_gauge_add(SRV_G_IN_FLIGHT, -1);
    atomic_fetch_sub(&s->in_flight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    srv_server *s = cls;
    srv_gauge_add(SRV_G_CONNECTIONS, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    pthread_mutex_lock(&s->hd_mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        hd_conn *h = nk_calloc(1, sizeof *h);
        if (h) {   /* out of memory: this connection has only the idle timeout */
            h->fd = conn_fd(conn);
            h->since = nk_time_ms();
            h->waiting = true;
            h->next = s->hd_list;
            if (s->hd_list) s->hd_list->prev = h;
            s->hd_list = h;
        }
        *socket_context = h;
    } else if (*socket_context) {
        /* libmicrohttpd reports the close before it closes the socket, so the watchdog
         * never sees this descriptor number again once it is reused */
        hd_conn *h = *socket_context;
        if (h->prev) h->prev->next = h->next;
        else s->hd_list = h->next;
        if (h->next) h->next->prev = h->prev;
        nk_free(h);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&s->hd_mu);
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

nook_status srv_start(const srv_config *c, srv_server **out, nook_error *err) {
    *out = NULL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    int gai = getaddrinfo(c->host, port, &hints, &ai);
    if (gai != 0 || !ai)
        return nk_fail(err, NOOK_EINVAL, "cannot resolve bind address '%s': %s", c->host, gai_strerror(gai));

    srv_server *s = nk_calloc(1, sizeof *s);
    if (!s) { freeaddrinfo(ai); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    s->cfg = *c;
    s->cfg.origins = c->origins ? nk_strdup(c->origins) : NULL;
    s->cfg.api_key = c->api_key ? nk_strdup(c->api_key) : NULL;
    pthread_mutex_init(&s->comp_mu, NULL);
    pthread_mutex_init(&s->hd_mu, NULL);
    pthread_cond_init(&s->hd_cv, NULL);
    atomic_init(&s->in_flight, 0);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_header,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        srv_config_clear(&s->cfg);
        pthread_mutex_destroy(&s->comp_mu);
        pthread_mutex_destroy(&s->hd_mu);
        pthread_cond_destroy(&s->hd_cv);
        nk_free(s);
        return nk_fail(err, NOOK_EIO, "cannot listen on %s:%d (address in use or not permitted)", c->host, c->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : c->port;
    /* without the watchdog the server still runs, with only the idle timeout */
    s->hd_running = pthread_create(&s->hd_thread, NULL, header_watchdog, s) == 0;
    if (!s->hd_running) nk_log(NK_LOG_WARN, "server: no header-deadline thread; slow clients meet only the idle timeout");
    *out = s;
    return NOOK_OK;
}

void srv_stop(srv_server *s, int drain_ms) {
    if (!s) return;
    MHD_socket lfd = MHD_quiesce_daemon(s->d);   /* stop accepting; connections go on */
    double t0 = nk_time_ms();
    while (atomic_load(&s->in_flight) > 0 && nk_time_ms() - t0 < drain_ms) usleep(10 * 1000);
    if (s->hd_running) {
        pthread_mutex_lock(&s->hd_mu);
        s->hd_stop = true;
        pthread_cond_signal(&s->hd_cv);
        pthread_mutex_unlock(&s->hd_mu);
        pthread_join(s->hd_thread, NULL);
    }
    MHD_stop_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    for (int i = s->n_comp - 1; i >= 0; i--) s->comp[i]->destroy(s->comp_obj[i]);
    srv_config_clear(&s->cfg);
    pthread_mutex_destroy(&s->comp_mu);
    pthread_mutex_destroy(&s->hd_mu);
    pthread_cond_destroy(&s->hd_cv);
    nk_free(s);
}

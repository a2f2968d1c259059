/*
 * http.c: nook's HTTP client over libcurl, with the outbound policy of net.h (offline
 * mode, http/https only, redirects followed here so each hop is checked before any
 * name is resolved).
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERR_BODY_CAP (64u * 1024u)
#define HEADER_CAP   (64u * 1024u)

/* ---- offline policy ---- */

static atomic_int g_offline;

void nk_net_set_offline(bool offline) { atomic_store(&g_offline, offline ? 1 : 0); }

bool nk_net_offline(void) {
    if (atomic_load(&g_offline)) return true;
    const char *e = getenv("NOOK_OFFLINE");
    return e && (strcmp(e, "1") == 0 || strcasecmp(e, "true") == 0 || strcasecmp(e, "yes") == 0);
}

bool nk_net_host_is_loopback(const char *host) {
    if (!host || !*host) return false;
    if (strcasecmp(host, "localhost") == 0) return true;
    char buf[64];
    size_t n = strlen(host);
    if (host[0] == '[') {               /* [v6] as in URLs */
        if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof buf) return false;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = 0;
    } else {
        if (n >= sizeof buf) return false;
        memcpy(buf, host, n + 1);
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return false;
}

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Parses url into a CURLU (kept so libcurl connects to exactly what was checked). */
static nook_status check_parsed(const char *url, bool allow_http, CURLU **out_u, char **host_out,
                                nook_error *err) {
    if (!url || !*url) return nk_fail(err, NOOK_EINVAL, "empty URL");
    CURLU *u = curl_url();
    if (!u) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(u);
        return nk_fail(err, NOOK_EINVAL, "malformed URL '%.200s'", url);
    }
    char *scheme = NULL, *host = NULL;
    nook_status st = NOOK_OK;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        st = nk_fail(err, NOOK_EINVAL, "URL '%.200s' has no host", url);
        goto out;
    }
    bool https = strcasecmp(scheme, "https") == 0, http = strcasecmp(scheme, "http") == 0;
    if (!https && !http) {
        st = nk_fail(err, NOOK_EINVAL, "URL '%.200s': only http and https are supported", url);
        goto out;
    }
    bool loop = nk_net_host_is_loopback(host);
    if (!loop && nk_net_offline()) {
        st = nk_fail(err, NOOK_EUNSUPPORTED,
                     "offline mode: refusing to contact '%.200s' (only loopback is allowed; "
                     "unset NOOK_OFFLINE or drop --offline to go online)", host);
        goto out;
    }
    if (http && !loop && !allow_http) {
        st = nk_fail(err, NOOK_EUNSUPPORTED,
                     "refusing plain http to '%.200s' (use https, or --insecure to allow http)", host);
        goto out;
    }
    if (host_out) {
        *host_out = nk_strdup(host);
        if (!*host_out) st = nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
out:
    curl_free(scheme);
    curl_free(host);
    if (st == NOOK_OK && out_u) *out_u = u;
    else curl_url_cleanup(u);
    return st;
}

nook_status nk_net_check_url(const char *url, bool allow_http, char **host_out, nook_error *err) {
    return check_parsed(url, allow_http, NULL, host_out, err);
}

/* ---- one hop ---- */

typedef struct hop {
    const nk_http_req *req;
    nk_http_resp *resp;
    CURL *h;
    long status;          /* known from the first body byte on */
    bool status_known;
    bool receiver_abort;
    bool too_big;
    char *buf;            /* collected body */
    size_t len, cap;
    size_t body_cap;
    char *hdr;            /* current response's headers */
    size_t hlen, hcap;
    long stall_ms;        /* no new byte for this long: abort */
    double last_ms;       /* when the byte count last changed */
    curl_off_t last_now;
    bool stalled;
} hop;

static bool grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    char *q = nk_realloc(*p, nc);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud) {
    hop *x = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) x->hlen = 0;   /* a new response (100, 3xx, ...) */
    if (x->hlen + n + 1 > HEADER_CAP) return n;                  /* ignore the excess */
    if (!grow(&x->hdr, &x->hcap, x->hlen + n + 1)) return 0;
    memcpy(x->hdr + x->hlen, data, n);
    x->hlen += n;
    x->hdr[x->hlen] = 0;
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud) {
    hop *x = ud;
    size_t n = size * nmemb;
    if (!x->status_known) {
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
        x->status_known = true;
    }
    x->resp->received += n;
    if (x->status >= 300 && x->status < 400) return n;           /* a redirect's body */
    if (x->status >= 200 && x->status < 300 && x->req->on_data) {
        if (!x->req->on_data(data, n, x->status, x->req->ud)) {
            x->receiver_abort = true;
            return 0;
        }
        return n;
    }
    size_t cap = (x->status >= 200 && x->status < 300) ? x->body_cap : ERR_BODY_CAP;
    if (x->len + n > cap) {
        if (x->status >= 200 && x->status < 300) { x->too_big = true; return 0; }
        n = cap - x->len;   /* an error body: keep its head only */
        if (n == 0) return size * nmemb;
    }
    if (!grow(&x->buf, &x->cap, x->len + n + 1)) return 0;
    memcpy(x->buf + x->len, data, n);
    x->len += n;
    x->buf[x->len] = 0;
    return size * nmemb;
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    hop *x = ud;
    if (x->req->cancel && *x->req->cancel) return 1;
    /* Stall detection of our own: libcurl's low-speed limit averages over seconds,
     * so a server that sent a little and went silent would be caught late. */
    double now = nk_time_ms();
    if (dlnow + ulnow != x->last_now || x->last_ms == 0) {
        x->last_now = dlnow + ulnow;
        x->last_ms = now;
    } else if (now - x->last_ms > (double)x->stall_ms) {
        x->stalled = true;
        return 1;
    }
    if (x->req->on_progress && dlnow > 0 &&
        !x->req->on_progress((uint64_t)dlnow, dltotal > 0 ? (uint64_t)dltotal : 0, x->req->ud))
        return 1;
    return 0;
}

static bool same_host(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

nook_status nk_http_do(const nk_http_req *req, nk_http_resp *resp, nook_error *err) {
    pthread_once(&g_curl_once, curl_init_once);
    memset(resp, 0, sizeof *resp);
    resp->content_length = -1;
    const char *method = req->method ? req->method : "GET";
    int max_hops = req->max_redirects < 0 ? 0 : req->max_redirects == 0 ? 8 : req->max_redirects;
    char *url = nk_strdup(req->url ? req->url : "");
    char *first_host = NULL;
    nook_status st = NOOK_OK;
    if (!url) return nk_fail(err, NOOK_ENOMEM, "out of memory");

    for (int hopn = 0;; hopn++) {
        CURLU *u = NULL;
        char *host = NULL;
        st = check_parsed(url, req->allow_http, &u, &host, err);
        if (st) break;
        if (!first_host) first_host = nk_strdup(host);
        bool loop = nk_net_host_is_loopback(host);
        bool drop_auth = !req->keep_auth_on_redirect && !same_host(host, first_host);
        nk_free(host);

        CURL *h = curl_easy_init();
        struct curl_slist *hl = NULL;
        hop x = { .req = req, .resp = resp, .h = h,
                  .body_cap = req->max_body ? req->max_body : (1u << 20) };
        resp->received = 0;
        if (!h) { curl_url_cleanup(u); st = nk_fail(err, NOOK_ENOMEM, "out of memory"); break; }
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_CURLU, u);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "nook/0.1");
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 15000L);
        if (req->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
        x.stall_ms = req->stall_ms > 0 ? req->stall_ms : 30000;
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);   /* a backstop to on_xfer's check */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 2 * x.stall_ms / 1000 + 1);
        if (loop) curl_easy_setopt(h, CURLOPT_PROXY, "");   /* loopback never via a proxy */
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        if (strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(method, "GET") != 0) {
            if (strcmp(method, "POST") == 0) curl_easy_setopt(h, CURLOPT_POST, 1L);
            else curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
            if (req->body || strcmp(method, "POST") == 0) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            }
        }
        char range[64];
        if (req->has_range) {
            if (req->range_end == UINT64_MAX)
                snprintf(range, sizeof range, "%llu-", (unsigned long long)req->range_start);
            else
                snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)req->range_start,
                         (unsigned long long)req->range_end);
            curl_easy_setopt(h, CURLOPT_RANGE, range);
        }
        bool oom = false;
        for (const char *const *p = req->headers; p && *p; p++) {
            if (drop_auth && strncasecmp(*p, "Authorization:", 14) == 0) continue;
            struct curl_slist *n = curl_slist_append(hl, *p);
            if (!n) { oom = true; break; }
            hl = n;
        }
        /* no "Expect: 100-continue" round trip for request bodies */
        struct curl_slist *n2 = oom ? NULL : curl_slist_append(hl, "Expect:");
        if (!n2) oom = true; else hl = n2;
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);

        CURLcode rc = oom ? CURLE_OUT_OF_MEMORY : curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_off_t cl = -1;
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        char *redirect = NULL;
        const char *rurl = NULL;
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &rurl);
        if (rurl && status >= 300 && status < 400) redirect = nk_strdup(rurl);

        resp->status = status;
        resp->content_length = cl;
        nk_free(resp->final_url);
        resp->final_url = nk_strdup(url);
        nk_free(resp->headers);
        resp->headers = x.hdr;
        x.hdr = NULL;
        nk_free(resp->body);
        resp->body = x.buf;
        resp->body_len = x.len;
        x.buf = NULL;

        if (rc != CURLE_OK) {
            const char *why = x.receiver_abort ? "aborted by the receiver"
                            : x.too_big ? "response body too large"
                            : x.stalled ? "connection stalled (no data)"
                            : (req->cancel && *req->cancel) ? "cancelled"
                            : errbuf[0] ? errbuf : curl_easy_strerror(rc);
            char *h2 = NULL;
            check_parsed(url, true, NULL, &h2, NULL);
            st = nk_fail(err, x.too_big ? NOOK_ERANGE : rc == CURLE_OUT_OF_MEMORY ? NOOK_ENOMEM : NOOK_EIO,
                         "%s %s: %s", method, h2 ? h2 : "(url)", why);
            nk_free(h2);
        }
        curl_slist_free_all(hl);
        curl_easy_cleanup(h);
        curl_url_cleanup(u);
        if (st) { nk_free(redirect); break; }
        if (!redirect) break;
        if (hopn + 1 > max_hops) {
            nk_free(redirect);
            if (req->max_redirects < 0) break;   /* the caller wants to see the 3xx */
            st = nk_fail(err, NOOK_ERANGE, "%s %.200s: more than %d redirects", method, req->url, max_hops);
            break;
        }
        nk_free(url);
        url = redirect;
        if (status == 303 || ((status == 301 || status == 302) && strcmp(method, "POST") == 0))
            method = "GET";
    }
    nk_free(url);
    nk_free(first_host);
    return st;
}

void nk_http_resp_free(nk_http_resp *resp) {
    if (!resp) return;
    nk_free(resp->body);
    nk_free(resp->final_url);
    nk_free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

bool nk_http_header(const nk_http_resp *resp, const char *name, char *buf, size_t cap) {
    if (!resp->headers || cap == 0) return false;
    size_t nl = strlen(name);
    for (const char *p = resp->headers; *p;) {
        const char *e = strchr(p, '\n');
        size_t ll = e ? (size_t)(e - p) : strlen(p);
        if (ll > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            const char *end = p + ll;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ')) end--;
            size_t vl = (size_t)(end - v);
            if (vl >= cap) vl = cap - 1;
            memcpy(buf, v, vl);
            buf[vl] = 0;
            return true;
        }
        if (!e) break;
        p = e + 1;
    }
    return false;
}

char *nk_url_escape(const char *s) {
    pthread_once(&g_curl_once, curl_init_once);
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e) return NULL;
    char *r = nk_strdup(e);
    curl_free(e);
    return r;
}

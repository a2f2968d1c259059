/*
 * test_http.c: nk_http_do against an in-process loopback server (a thread serving one
 * canned response per connection): GET, ranges, redirects (followed by net, each hop
 * checked), POST bodies, header lookup, body caps, error bodies, stalls; the offline
 * and plain-http policy (refused before any name resolution: the hosts used do not
 * exist); SHA-256 known answers. Talks only to 127.0.0.1.
 */
#include "net/net.h"
#include "nk_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static int g_port;
static int g_listen;
static char g_last_req[8192];   /* the last request's head and body, for checks */

static void send_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *status, const char *extra, const char *body, size_t blen) {
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, blen, extra ? extra : "");
    send_all(fd, head, (size_t)n);
    send_all(fd, body, blen);
}

static void *serve(void *arg) {
    for (;;) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0) return NULL;
        size_t len = 0;
        ssize_t r;
        char *end = NULL;
        while (len < sizeof g_last_req - 1 && (r = recv(fd, g_last_req + len, sizeof g_last_req - 1 - len, 0)) > 0) {
            len += (size_t)r;
            g_last_req[len] = 0;
            if ((end = strstr(g_last_req, "\r\n\r\n"))) {
                const char *cl = strcasestr(g_last_req, "Content-Length:");
                size_t want = cl && cl < end ? (size_t)atol(cl + 15) : 0;
                if (len >= (size_t)(end + 4 - g_last_req) + want) break;
            }
        }
        char path[256] = "";
        sscanf(g_last_req, "%*s %255s", path);
        if (strcmp(path, "/quit") == 0) { reply(fd, "200 OK", NULL, "", 0); close(fd); return NULL; }
        if (strcmp(path, "/hello") == 0) reply(fd, "200 OK", "X-Thing: some value\r\n", "hello world", 11);
        else if (strcmp(path, "/range") == 0) {
            const char *rg = strcasestr(g_last_req, "Range: bytes=");
            int a = 0, b = 9;
            if (rg) sscanf(rg + 13, "%d-%d", &a, &b);
            char extra[128];
            snprintf(extra, sizeof extra, "Content-Range: bytes %d-%d/10\r\n", a, b);
            reply(fd, rg ? "206 Partial Content" : "200 OK", rg ? extra : NULL, &"0123456789"[a], (size_t)(b - a + 1));
        } else if (strcmp(path, "/redir") == 0) reply(fd, "302 Found", "Location: /hello\r\n", "moved", 5);
        else if (strcmp(path, "/loop") == 0) reply(fd, "302 Found", "Location: /loop\r\n", "", 0);
        else if (strcmp(path, "/away") == 0)
            reply(fd, "307 Temporary Redirect", "Location: http://nook-test.invalid/x\r\n", "", 0);
        else if (strcmp(path, "/away-https") == 0)
            reply(fd, "307 Temporary Redirect", "Location: https://nook-test.invalid/x\r\n", "", 0);
        else if (strcmp(path, "/echo") == 0) {
            char *b = strstr(g_last_req, "\r\n\r\n");
            reply(fd, "200 OK", NULL, b + 4, strlen(b + 4));
        } else if (strcmp(path, "/big") == 0) {
            static char big[3 << 20];
            memset(big, 'x', sizeof big);
            reply(fd, "200 OK", NULL, big, sizeof big);
        } else if (strcmp(path, "/fail") == 0) reply(fd, "500 Internal Server Error", NULL, "{\"error\":\"boom\"}", 16);
        else if (strcmp(path, "/stall") == 0) {
            const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
            send_all(fd, h, strlen(h));
            sleep(3);
        } else reply(fd, "404 Not Found", NULL, "nope", 4);
        close(fd);
    }
}

static char *url(const char *path) {
    static char buf[4][128];
    static int i;
    char *b = buf[i++ & 3];
    snprintf(b, 128, "http://127.0.0.1:%d%s", g_port, path);
    return b;
}

typedef struct sink { char buf[64]; size_t n; long status; int calls; } sink;
static bool on_data(const void *d, size_t n, long status, void *ud) {
    sink *s = ud;
    s->status = status;
    s->calls++;
    if (s->n + n > sizeof s->buf) return false;
    memcpy(s->buf + s->n, d, n);
    s->n += n;
    return true;
}

int main(void) {
    /* ---- SHA-256 known answers (FIPS 180-2) ---- */
    char hex[65];
    CHECK(nk_sha256_buf("abc", 3, hex, NULL) == NOOK_OK);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(nk_sha256_buf("", 0, hex, NULL) == NOOK_OK);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    nk_sha256 h;
    CHECK(nk_sha256_init(&h, NULL) == NOOK_OK);
    nk_sha256_update(&h, "a", 1);
    nk_sha256_update(&h, "bc", 2);
    nk_sha256_final(&h, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    nook_error err = {0};
    CHECK(nk_sha256_file("/nonexistent/nook", hex, &err) == NOOK_EIO);

    /* ---- loopback recognition and URL policy (no network) ---- */
    CHECK(nk_net_host_is_loopback("localhost"));
    CHECK(nk_net_host_is_loopback("127.0.0.1"));
    CHECK(nk_net_host_is_loopback("127.8.9.10"));
    CHECK(nk_net_host_is_loopback("[::1]"));
    CHECK(nk_net_host_is_loopback("::1"));
    CHECK(nk_net_host_is_loopback("[::ffff:127.0.0.1]"));
    CHECK(!nk_net_host_is_loopback("128.0.0.1"));
    CHECK(!nk_net_host_is_loopback("localhost.example.com"));
    CHECK(!nk_net_host_is_loopback("[::2]"));
    CHECK(!nk_net_host_is_loopback(""));
    CHECK(nk_net_check_url("ftp://127.0.0.1/x", false, NULL, &err) == NOOK_EINVAL);
    CHECK(nk_net_check_url("not a url", false, NULL, &err) == NOOK_EINVAL);
    CHECK(nk_net_check_url("http://nook-test.invalid/x", false, NULL, &err) == NOOK_EUNSUPPORTED);
    CHECK(strstr(err.msg, "--insecure") != NULL);
    CHECK(nk_net_check_url("http://nook-test.invalid/x", true, NULL, &err) == NOOK_OK);
    char *host = NULL;
    CHECK(nk_net_check_url("https://Registry.Example:5000/v2/", false, &host, &err) == NOOK_OK);
    CHECK(host && strcasecmp(host, "registry.example") == 0);
    nk_free(host);
    nk_net_set_offline(true);
    CHECK(nk_net_offline());
    CHECK(nk_net_check_url("https://nook-test.invalid/x", false, NULL, &err) == NOOK_EUNSUPPORTED);
    CHECK(strstr(err.msg, "offline") != NULL);
    CHECK(nk_net_check_url("http://127.0.0.1:1/x", false, NULL, &err) == NOOK_OK);
    CHECK(nk_net_check_url("http://[::1]:1/x", false, NULL, &err) == NOOK_OK);
    nk_net_set_offline(false);
    if (!getenv("NOOK_OFFLINE")) CHECK(!nk_net_offline());
    setenv("NOOK_OFFLINE", "1", 1);
    CHECK(nk_net_offline());
    unsetenv("NOOK_OFFLINE");
    char *esc = nk_url_escape("a b&c");
    CHECK_STR(esc, "a%20b%26c");
    nk_free(esc);

    /* ---- the loopback server ---- */
    g_listen = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(g_listen, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_listen, 16) != 0)
        nk_test_skip("cannot listen on loopback");
    socklen_t al = sizeof a;
    getsockname(g_listen, (struct sockaddr *)&a, &al);
    g_port = ntohs(a.sin_port);
    pthread_t th;
    pthread_create(&th, NULL, serve, NULL);

    nk_http_resp r;
    nk_http_req q = { .url = url("/hello") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "hello world");
    CHECK_EQ_INT(r.content_length, 11);
    char v[64];
    CHECK(nk_http_header(&r, "x-thing", v, sizeof v) && strcmp(v, "some value") == 0);
    CHECK(!nk_http_header(&r, "x-none", v, sizeof v));
    nk_http_resp_free(&r);

    /* ranges: into a data sink, with the status the sink sees */
    sink s = {0};
    q = (nk_http_req){ .url = url("/range"), .has_range = true, .range_start = 3, .range_end = 6,
                       .on_data = on_data, .ud = &s };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(r.status, 206);
    CHECK_EQ_INT(s.status, 206);
    CHECK(s.n == 4 && memcmp(s.buf, "3456", 4) == 0);
    CHECK(strstr(g_last_req, "Range: bytes=3-6") != NULL);
    nk_http_resp_free(&r);

    /* redirects are followed by net; the final URL is reported */
    q = (nk_http_req){ .url = url("/redir") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "hello world");
    CHECK(r.final_url && strstr(r.final_url, "/hello"));
    nk_http_resp_free(&r);
    q = (nk_http_req){ .url = url("/redir"), .max_redirects = -1 };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(r.status, 302);
    nk_http_resp_free(&r);
    q = (nk_http_req){ .url = url("/loop"), .max_redirects = 3 };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_ERANGE);
    nk_http_resp_free(&r);
    /* a redirect off loopback: plain http refused; offline refuses https too (no lookup) */
    q = (nk_http_req){ .url = url("/away") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_EUNSUPPORTED);
    nk_http_resp_free(&r);
    nk_net_set_offline(true);
    q = (nk_http_req){ .url = url("/away-https") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_EUNSUPPORTED);
    CHECK(strstr(err.msg, "offline") != NULL);
    nk_http_resp_free(&r);
    nk_net_set_offline(false);

    /* POST with a body and headers */
    const char *hdrs[] = { "Authorization: Bearer t0k", "Content-Type: application/json", NULL };
    q = (nk_http_req){ .method = "POST", .url = url("/echo"), .headers = hdrs, .body = "{\"a\":1}", .body_len = 7 };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_STR(r.body, "{\"a\":1}");
    CHECK(strstr(g_last_req, "POST /echo") && strstr(g_last_req, "Authorization: Bearer t0k"));
    nk_http_resp_free(&r);

    /* HEAD */
    q = (nk_http_req){ .method = "HEAD", .url = url("/hello") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.content_length, 11);
    CHECK_EQ_INT(r.body_len, 0);
    nk_http_resp_free(&r);

    /* caps and errors */
    q = (nk_http_req){ .url = url("/big") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_ERANGE);
    nk_http_resp_free(&r);
    q = (nk_http_req){ .url = url("/fail") };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(r.status, 500);
    CHECK(r.body && strstr(r.body, "boom"));
    nk_http_resp_free(&r);
    s = (sink){0};
    q = (nk_http_req){ .url = url("/fail"), .on_data = on_data, .ud = &s };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_OK);
    CHECK_EQ_INT(s.calls, 0);       /* error bodies never reach the sink */
    nk_http_resp_free(&r);
    double t0 = nk_time_ms();
    q = (nk_http_req){ .url = url("/stall"), .stall_ms = 1000 };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_EIO);
    CHECK(nk_time_ms() - t0 < 2900);
    nk_http_resp_free(&r);
    q = (nk_http_req){ .url = "http://127.0.0.1:1/x" };
    CHECK(nk_http_do(&q, &r, &err) == NOOK_EIO);
    CHECK(strstr(err.msg, "127.0.0.1") != NULL);
    nk_http_resp_free(&r);

    q = (nk_http_req){ .url = url("/quit") };
    nk_http_do(&q, &r, &err);
    nk_http_resp_free(&r);
    pthread_join(th, NULL);
    close(g_listen);
    NK_TEST_DONE();
}

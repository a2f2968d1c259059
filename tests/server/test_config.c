/*
 * test_config.c: the server's small parsers and policies: NOOK_HOST (OLLAMA_HOST's
 * syntax), Go durations, CORS origins, the Host-header check, the API key compare,
 * the JSON depth scan and the route matcher.
 */
#include "server/server.h"
#include "nk_test.h"

static void host(const char *in, const char *want_host, int want_port) {
    char h[256];
    int p = -1;
    nook_error err;
    nook_status st = srv_parse_host(in, h, sizeof h, &p, &err);
    CHECK_MSG(st == NOOK_OK, "%s: %s", in, err.msg);
    if (st) return;
    CHECK_MSG(strcmp(h, want_host) == 0 && p == want_port, "%s -> %s:%d, want %s:%d", in, h, p, want_host, want_port);
}

static void dur(const char *in, int64_t want) {
    int64_t ns = 12345;
    nook_error err;
    nook_status st = srv_parse_duration(in, &ns, &err);
    CHECK_MSG(st == NOOK_OK && ns == want, "%s -> %lld (st %d), want %lld", in, (long long)ns, st, (long long)want);
}

int main(void) {
    /* OLLAMA_HOST forms (envconfig.Host) */
    host(NULL, "127.0.0.1", 11434);
    host("", "127.0.0.1", 11434);
    host("0.0.0.0", "0.0.0.0", 11434);
    host("127.0.0.1:8080", "127.0.0.1", 8080);
    host(":9000", "0.0.0.0", 9000);
    host("http://example.com", "example.com", 80);
    host("https://example.com", "example.com", 443);
    host("http://10.0.0.2:1234/path", "10.0.0.2", 1234);
    host("[::1]:5000", "::1", 5000);
    host("::1", "::1", 11434);
    host("  localhost:7 ", "localhost", 7);
    host("127.0.0.1:99999", "127.0.0.1", 11434);   /* bad port: default, as Ollama */
    host("127.0.0.1:0", "127.0.0.1", 0);
    char h[256];
    int p;
    CHECK(srv_parse_host("ftp://x", h, sizeof h, &p, NULL) != NOOK_OK);

    /* durations (keep_alive) */
    dur("5m", 300000000000LL);
    dur("1h30m", 5400000000000LL);
    dur("-1", -1000000000LL);
    dur("-1s", -1000000000LL);
    dur("0", 0);
    dur("300", 300000000000LL);
    dur("1.5h", 5400000000000LL);
    dur("250ms", 250000000LL);
    int64_t ns;
    CHECK(srv_parse_duration("5 minutes", &ns, NULL) != NOOK_OK);
    CHECK(srv_parse_duration("m", &ns, NULL) != NOOK_OK);
    CHECK(srv_parse_duration("", &ns, NULL) != NOOK_OK);
    CHECK(srv_parse_duration("1e400", &ns, NULL) != NOOK_OK || ns == INT64_MAX);

    /* origins */
    srv_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.host, "127.0.0.1");
    c.host_is_loopback = true;
    CHECK(srv_origin_allowed(&c, "http://localhost"));
    CHECK(srv_origin_allowed(&c, "http://localhost:3000"));
    CHECK(srv_origin_allowed(&c, "https://127.0.0.1:8443"));
    CHECK(srv_origin_allowed(&c, "vscode-webview://abc"));
    CHECK(srv_origin_allowed(&c, "app://obsidian.md"));
    CHECK(!srv_origin_allowed(&c, "http://evil.com"));
    CHECK(!srv_origin_allowed(&c, "http://localhost.evil.com"));
    CHECK(!srv_origin_allowed(&c, "null"));
    c.origins = (char *)"https://*.example.org, chrome-extension://*";
    CHECK(srv_origin_allowed(&c, "https://app.example.org"));
    CHECK(srv_origin_allowed(&c, "chrome-extension://abcdef"));
    CHECK(!srv_origin_allowed(&c, "http://app.example.org"));
    c.origins = NULL;

    /* Host header (DNS rebinding) */
    CHECK(srv_host_allowed(&c, "localhost:11434"));
    CHECK(srv_host_allowed(&c, "127.0.0.1:11434"));
    CHECK(srv_host_allowed(&c, "[::1]:11434"));
    CHECK(srv_host_allowed(&c, "192.168.1.4"));
    CHECK(srv_host_allowed(&c, "my.localhost"));
    CHECK(srv_host_allowed(&c, "box.local:80"));
    CHECK(!srv_host_allowed(&c, "evil.com"));
    CHECK(!srv_host_allowed(&c, "8.8.8.8"));
    CHECK(!srv_host_allowed(&c, "localhost.evil.com"));
    c.host_is_loopback = false;
    CHECK(srv_host_allowed(&c, "evil.com"));   /* bound to a public address: no check */

    /* API key */
    CHECK(srv_auth_ok(NULL, NULL));
    CHECK(srv_auth_ok("s3cret", "Bearer s3cret"));
    CHECK(srv_auth_ok("s3cret", "bearer  s3cret"));
    CHECK(!srv_auth_ok("s3cret", NULL));
    CHECK(!srv_auth_ok("s3cret", "Bearer s3cre"));
    CHECK(!srv_auth_ok("s3cret", "Bearer s3cretX"));
    CHECK(!srv_auth_ok("s3cret", "Basic s3cret"));

    /* JSON depth */
    CHECK_EQ_INT(srv_json_depth("{}", 2, 10), 1);
    CHECK_EQ_INT(srv_json_depth("{\"a\":[[1]]}", 11, 10), 3);
    CHECK_EQ_INT(srv_json_depth("{\"a\":\"[[[[\\\"[[\"}", 16, 10), 1);
    static char deep[20001];
    for (int i = 0; i < 10000; i++) { deep[i] = '['; deep[10000 + i] = ']'; }
    CHECK_EQ_INT(srv_json_depth(deep, 20000, 128), 129);

    /* routes */
    bool known;
    const char *pp[4];
    size_t pl[4];
    int np;
    CHECK(srv_route_find("GET", "/", &known, pp, pl, &np) != NULL);
    CHECK(srv_route_find("POST", "/", &known, pp, pl, &np) == NULL && known);
    CHECK(srv_route_find("GET", "/nope", &known, pp, pl, &np) == NULL && !known);
    CHECK(srv_route_find("GET", "/api/version/", &known, pp, pl, &np) == NULL);
    NK_TEST_DONE();
}

/*
 * test_route_serve.c: the server's routing plan (src/server/route_serve.c) without a
 * model or a network: which mode each request gets (the request's policy, pins of every
 * level, NOOK_ROUTE, nothing configured), the HTTP statuses of refusals (remote with no
 * remote: 400 saying nothing was sent; a malformed config.json: 500 naming it), the
 * route object of a local request; and the time the plan adds to a local request
 * (printed: docs/privacy.md's budget is 1 ms).
 */
#include "nk_test.h"
#include "server/route_serve.h"

#include <stdlib.h>
#include <time.h>

static char g_home[200];

/* Plans body (a chat request unless it has "prompt"); returns the status, *mode set. */
static int plan(const char *body, srv_route_mode *mode, char *msg, json_t **route_json) {
    json_t *j = json_loads(body, 0, NULL);
    srv_gen_request r;
    int st = srv_gen_request_parse(j, json_object_get(j, "prompt") ? SRV_GENERATE : SRV_CHAT, 8, &r, msg, 512);
    json_decref(j);
    if (st) { srv_gen_request_free(&r); return -st; }
    srv_routing *rt = NULL;
    st = srv_route_begin(&r, &rt, msg, 512);
    if (!st) {
        *mode = srv_route_get_mode(rt);
        if (route_json) *route_json = srv_route_json(rt);
    }
    srv_route_free(rt);
    srv_gen_request_free(&r);
    return st;
}

static srv_route_mode mode_of(const char *body) {
    char msg[512];
    srv_route_mode m = (srv_route_mode)-1;
    int st = plan(body, &m, msg, NULL);
    CHECK_MSG(st == 0, "%s: %d %s", body, st, msg);
    return m;
}

#define CHAT(route, content) "{\"model\":\"m.gguf\",\"messages\":[{\"role\":\"user\",\"content\":\"" content "\"}]" route "}"

int main(void) {
    snprintf(g_home, sizeof g_home, "/tmp/nook-test-route-serve-%d", (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", g_home, g_home);
    if (system(cmd) != 0) return 1;
    setenv("NOOK_HOME", g_home, 1);
    /* a model named by a path (a regular file: planning does not load it) */
    if (chdir(g_home) != 0) return 1;
    FILE *mf = fopen("m.gguf", "w");
    if (!mf) return 1;
    fclose(mf);
    unsetenv("NOOK_ESCALATE_URL");
    unsetenv("NOOK_ESCALATE_MODEL");
    unsetenv("NOOK_ESCALATE_KEY_ENV");
    unsetenv("NOOK_ROUTE");
    unsetenv("NOOK_OFFLINE");
    char msg[512];
    srv_route_mode m;

    /* nothing configured: auto and ask local, remote refused, no field: local */
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"auto\"}", "hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"ask\"}", "hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(mode_of(CHAT("", "hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(plan(CHAT(",\"route\":{\"policy\":\"remote\"}", "hi"), &m, msg, NULL), 400);
    CHECK(strstr(msg, "nothing was sent") != NULL);
    json_t *rj = NULL;
    CHECK_EQ_INT(plan("{\"model\":\"m.gguf\",\"prompt\":\"hi\"}", &m, msg, &rj), 0);
    CHECK_STR(json_string_value(json_object_get(rj, "target")), "local");
    CHECK_STR(json_string_value(json_object_get(rj, "reason")), "policy local (default)");
    CHECK(json_is_null(json_object_get(rj, "audit_id")));
    json_decref(rj);

    /* a remote configured (nothing is contacted while planning) */
    setenv("NOOK_ESCALATE_URL", "http://127.0.0.1:9/v1", 1);
    setenv("NOOK_ESCALATE_MODEL", "big", 1);
    CHECK_EQ_INT(mode_of(CHAT("", "hi")), SRV_ROUTE_LOCAL);   /* local stays the default */
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"auto\"}", "hi")), SRV_ROUTE_HOLD);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"ask\"}", "hi")), SRV_ROUTE_HOLD);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"remote\"}", "hi")), SRV_ROUTE_REMOTE);
    CHECK_EQ_INT(mode_of("{\"model\":\"m.gguf\",\"prompt\":\"hi\",\"route\":{\"policy\":\"remote\"}}"), SRV_ROUTE_REMOTE);
    /* pins: the request's, a message's flag, the marker */
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"remote\",\"local_only\":true}", "hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"remote\"}", "#nook:local hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(mode_of("{\"model\":\"m.gguf\",\"route\":{\"policy\":\"auto\"},\"messages\":[{\"role\":\"user\","
                         "\"content\":\"a\",\"local_only\":true},{\"role\":\"assistant\",\"content\":\"b\"},"
                         "{\"role\":\"user\",\"content\":\"c\"}]}"), SRV_ROUTE_LOCAL);
    /* a model that does not exist: remote is not sent on its behalf */
    CHECK_EQ_INT(plan("{\"model\":\"no-such-model-xyz\",\"prompt\":\"hi\",\"route\":{\"policy\":\"remote\"}}", &m, msg, NULL), 404);
    /* the global policy, and a task pin from the file */
    setenv("NOOK_ROUTE", "auto", 1);
    CHECK_EQ_INT(mode_of(CHAT("", "hi")), SRV_ROUTE_HOLD);
    unsetenv("NOOK_ROUTE");
    char path[320];
    snprintf(path, sizeof path, "%s/config.json", g_home);
    FILE *f = fopen(path, "w");
    fputs("{\"route\": {\"tasks\": {\"diary\": {\"local_only\": true}}}}", f);
    fclose(f);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"remote\",\"task\":\"diary\"}", "hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"remote\",\"task\":\"qa\"}", "hi")), SRV_ROUTE_REMOTE);
    /* offline mode refuses a non-loopback remote before any name lookup */
    setenv("NOOK_ESCALATE_URL", "https://api.example.invalid/v1", 1);
    setenv("NOOK_OFFLINE", "1", 1);
    CHECK_EQ_INT(mode_of(CHAT(",\"route\":{\"policy\":\"auto\"}", "hi")), SRV_ROUTE_LOCAL);
    CHECK_EQ_INT(plan(CHAT(",\"route\":{\"policy\":\"remote\"}", "hi"), &m, msg, NULL), 400);
    unsetenv("NOOK_OFFLINE");
    /* a malformed configuration: 500 naming the file */
    f = fopen(path, "w");
    fputs("{\"route\": {\"policy\": 7}}", f);
    fclose(f);
    CHECK_EQ_INT(plan(CHAT("", "hi"), &m, msg, NULL), 500);
    CHECK(strstr(msg, "config.json") != NULL);
    remove(path);

    /* what planning costs a local request (config read, store lookup, pins) */
    json_t *j = json_loads("{\"model\":\"m.gguf\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}", 0, NULL);
    srv_gen_request r;
    CHECK_EQ_INT(srv_gen_request_parse(j, SRV_CHAT, 8, &r, msg, sizeof msg), 0);
    json_decref(j);
    const int n = 2000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        srv_routing *rt = NULL;
        if (srv_route_begin(&r, &rt, msg, sizeof msg) == 0) {
            json_t *o = srv_route_json(rt);
            json_decref(o);
        }
        srv_route_free(rt);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    srv_gen_request_free(&r);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n / 1e3;
    printf("routing plan + route object for a local request: %.1f us (mean of %d)\n", us, n);

    snprintf(cmd, sizeof cmd, "rm -rf %s", g_home);
    if (system(cmd) != 0) return 1;
    NK_TEST_DONE();
}

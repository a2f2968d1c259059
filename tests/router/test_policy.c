/*
 * test_policy.c: the router's configuration and policy resolution without a model:
 * defaults (local; nothing configured means nothing can leave), environment overrides,
 * the order request > model > task > global, the four pins, offline mode, malformed
 * configuration named, the uncalibrated and calibrated decisions, and the route object.
 */
#include "nk_test.h"
#include "router/router.h"
#include "net/net.h"

static char g_home[128];

static void write_cfg(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_home, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static nk_router *open_router(void) {
    nk_router *r = NULL;
    nook_error err;
    if (nk_router_open(g_home, &r, &err) != NOOK_OK) fprintf(stderr, "open: %s\n", err.msg);
    return r;
}

static nk_route_req req(nk_route_policy p) {
    return (nk_route_req){ .policy = p, .model_policy = NK_ROUTE_UNSET, .request_id = "t" };
}

int main(void) {
    snprintf(g_home, sizeof g_home, "/tmp/nook-policy-XXXXXX");
    if (!mkdtemp(g_home)) return 1;
    unsetenv("NOOK_ESCALATE_URL"); unsetenv("NOOK_ESCALATE_MODEL"); unsetenv("NOOK_ESCALATE_KEY_ENV");
    unsetenv("NOOK_ROUTE"); unsetenv("NOOK_OFFLINE");
    nook_error err;
    nk_route r;
    json_t *plain = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);

    /* nothing configured */
    nk_router *rt = open_router();
    CHECK(rt && !nk_router_has_remote(rt));
    nk_route_req q = req(NK_ROUTE_UNSET);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK);
    CHECK(r.policy == NK_ROUTE_LOCAL && r.target == NK_TARGET_LOCAL);
    q = req(NK_ROUTE_AUTO);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK);
    CHECK(r.policy == NK_ROUTE_LOCAL);
    CHECK(strstr(r.reason, "no remote configured") != NULL);
    q = req(NK_ROUTE_REMOTE);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_EINVAL);
    CHECK(strstr(err.msg, "nothing was sent") != NULL);
    nk_router_free(rt);

    /* environment: one remote */
    setenv("NOOK_ESCALATE_URL", "https://api.example.com/v1", 1);
    setenv("NOOK_ESCALATE_MODEL", "big", 1);
    rt = open_router();
    CHECK(nk_router_has_remote(rt));
    q = req(NK_ROUTE_UNSET);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK);
    CHECK(r.policy == NK_ROUTE_LOCAL);   /* configured remote, still local by default */
    q = req(NK_ROUTE_AUTO);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK);
    CHECK(r.policy == NK_ROUTE_AUTO && !r.calibrated);
    CHECK_NEAR(r.threshold, NK_DEFAULT_MIN_MEAN_LOGPROB, 0);
    /* the uncalibrated decision */
    nk_signals s = { .n_tokens = 3, .mean_logprob = -0.2, .label_mass = NAN };
    CHECK(!nk_route_decide(rt, &r, &s));
    s.mean_logprob = -3.0;
    CHECK(nk_route_decide(rt, &r, &s));
    CHECK(r.target == NK_TARGET_REMOTE);
    json_t *j = nk_route_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "target")), "remote");
    CHECK(json_is_object(json_object_get(j, "signals")));
    json_decref(j);
    /* offline mode refuses the non-loopback remote before anything */
    nk_net_set_offline(true);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK);
    CHECK(r.policy == NK_ROUTE_LOCAL && strstr(r.reason, "offline") != NULL);
    q = req(NK_ROUTE_REMOTE);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_EINVAL);
    nk_net_set_offline(false);
    /* pins: request, content (field and marker) */
    q = req(NK_ROUTE_REMOTE);
    q.local_only = true;
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.pinned && r.policy == NK_ROUTE_LOCAL);
    json_t *marked = json_loads("[{\"role\":\"user\",\"content\":\"a\",\"local_only\":true},{\"role\":\"user\",\"content\":\"b\"}]", 0, NULL);
    q = req(NK_ROUTE_REMOTE);
    CHECK(nk_route_plan(rt, &q, marked, &r, &err) == NOOK_OK && r.pinned);
    json_decref(marked);
    marked = json_loads("[{\"role\":\"user\",\"content\":\"x #nook:local y\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"more\"}]", 0, NULL);
    CHECK(nk_route_plan(rt, &q, marked, &r, &err) == NOOK_OK && r.pinned);
    json_decref(marked);
    nk_router_free(rt);

    /* the file: global policy, tasks, global pin; precedence */
    write_cfg("config.json", "{\"route\":{\"policy\":\"auto\",\"tasks\":{\"t1\":{\"policy\":\"remote\"},"
                             "\"secret\":{\"local_only\":true}}}}");
    rt = open_router();
    q = req(NK_ROUTE_UNSET);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.policy == NK_ROUTE_AUTO);
    q.task = "t1";
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.policy == NK_ROUTE_REMOTE);
    q.model_policy = NK_ROUTE_ASK;
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.policy == NK_ROUTE_ASK);
    q.policy = NK_ROUTE_LOCAL;
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.policy == NK_ROUTE_LOCAL && !r.pinned);
    q = req(NK_ROUTE_REMOTE);
    q.task = "secret";
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.pinned);
    nk_router_free(rt);
    write_cfg("config.json", "{\"route\":{\"local_only\":true}}");
    rt = open_router();
    q = req(NK_ROUTE_REMOTE);
    CHECK(nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.pinned && strstr(r.reason, "global"));
    nk_router_free(rt);
    /* NOOK_ROUTE */
    setenv("NOOK_ROUTE", "ask", 1);
    rt = open_router();
    q = req(NK_ROUTE_UNSET);
    CHECK(rt && nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.pinned);   /* the file's pin still wins */
    nk_router_free(rt);
    unsetenv("NOOK_ROUTE");

    /* malformed configuration is named */
    const char *bad[] = { "{\"route\":{\"policy\":\"sometimes\"}}", "{\"route\":{\"remote\":{\"url\":5}}}",
                          "{\"route\":[]}", "{\"route\":{\"deny\":[1]}}", "{\"route\":", "{\"route\":{\"remote\":{\"timeout_s\":-1}}}" };
    for (size_t i = 0; i < NK_ARRAY_LEN(bad); i++) {
        write_cfg("config.json", bad[i]);
        nk_router *x = NULL;
        CHECK_MSG(nk_router_open(g_home, &x, &err) == NOOK_EFORMAT, "config %s accepted", bad[i]);
        CHECK(strstr(err.msg, "config.json") != NULL);
        nk_router_free(x);
    }
    unlink(strcat(strcpy((char[256]){0}, g_home), "/config.json"));

    /* a calibration file: the combiner decides */
    write_cfg("router.json", "{\"tasks\":{\"\":{\"features\":[{\"name\":\"mean_logprob\",\"mean\":-1,\"sd\":0.5,\"weight\":2}],"
                             "\"bias\":0,\"threshold\":0.5}}}");
    rt = open_router();
    q = req(NK_ROUTE_AUTO);
    q.task = "anything";
    CHECK(rt && nk_route_plan(rt, &q, plain, &r, &err) == NOOK_OK && r.calibrated);
    s.mean_logprob = -0.9;   /* z = 0.4 -> p 0.599 */
    CHECK(!nk_route_decide(rt, &r, &s));
    CHECK_NEAR(r.p_ok, 1 / (1 + exp(-0.4)), 1e-12);
    s.mean_logprob = -1.2;
    CHECK(nk_route_decide(rt, &r, &s));
    nk_router_free(rt);

    /* request "route" objects */
    nk_route_req rq;
    json_t *ro = json_loads("{\"policy\":\"auto\",\"task\":\"x\",\"local_only\":true}", 0, NULL);
    CHECK(nk_route_req_from_json(ro, &rq, &err) == NOOK_OK && rq.policy == NK_ROUTE_AUTO && rq.local_only);
    CHECK_STR(rq.task, "x");
    json_decref(ro);
    ro = json_loads("{\"policy\":\"cloud\"}", 0, NULL);
    CHECK(nk_route_req_from_json(ro, &rq, &err) == NOOK_EINVAL);
    json_decref(ro);
    /* closed-label tasks: 2..64 non-empty strings */
    ro = json_loads("{\"policy\":\"auto\",\"labels\":[\"yes\",\"no\"]}", 0, NULL);
    CHECK(nk_route_req_from_json(ro, &rq, &err) == NOOK_OK && json_array_size(rq.labels) == 2);
    json_decref(ro);
    const char *bad_labels[] = { "[\"yes\"]", "\"yes\"", "[\"yes\", 1]", "[\"yes\", \"\"]", "[]" };
    for (size_t i = 0; i < sizeof bad_labels / sizeof *bad_labels; i++) {
        char txt[128];
        snprintf(txt, sizeof txt, "{\"labels\": %s}", bad_labels[i]);
        ro = json_loads(txt, 0, NULL);
        CHECK_MSG(nk_route_req_from_json(ro, &rq, &err) == NOOK_EINVAL && strstr(err.msg, "route.labels"), "%s", txt);
        json_decref(ro);
    }
    json_decref(plain);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_home);
    if (system(cmd) != 0) return 1;
    NK_TEST_DONE();
}

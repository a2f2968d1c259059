/*
 * fuzz_config.c: the router's configuration files ($NOOK_HOME/config.json and
 * router.json, the calibration) on any bytes, through nk_router_open_buf, the parser
 * nk_router_open uses. The input up to its first NUL byte is config.json, the rest
 * router.json (no NUL: no router.json). Every file must load or be refused with a
 * message, never crash or leak; a loaded router is then asked what the server asks.
 */
#include "router/router.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    const char *nul = memchr(d, 0, size);
    size_t len = nul ? (size_t)(nul - d) : size;
    const char *calib = nul ? nul + 1 : NULL;
    size_t calib_len = nul ? size - len - 1 : 0;
    nk_router *r = NULL;
    nook_error err;
    err.msg[0] = 0;
    nook_status st = nk_router_open_buf(d, len, calib, calib_len, &r, &err);
    if (st != NOOK_OK) {
        if (r || !err.msg[0]) __builtin_trap();   /* a refusal always says why */
        return 0;
    }
    (void)nk_router_has_remote(r);
    (void)nk_router_combiner(r, NULL);
    (void)nk_router_combiner(r, "summarize");
    nk_route_req req;
    json_t *route = json_pack("{s:s}", "task", "summarize");
    if (route && nk_route_req_from_json(route, &req, &err) == NOOK_OK) {
        json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "call Project Falcon at 555-0100");
        nk_route rt;
        memset(&rt, 0, sizeof rt);
        if (msgs && nk_route_plan(r, &req, msgs, &rt, &err) == NOOK_OK) {
            json_t *j = nk_route_json(&rt);
            json_decref(j);
        }
        nk_route_clear(&rt);
        json_decref(msgs);
    }
    json_decref(route);
    nk_router_free(r);
    return 0;
}

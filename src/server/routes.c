/*
 * routes.c: the list of route tables (one line per route file, see server.h), the
 * path matcher, and the core routes every tool probes: GET/HEAD / ("nook is running",
 * as Ollama's "Ollama is running"), GET /health (llama-server's), GET /metrics
 * (Prometheus text) and GET /api/version.
 */
#include "server/models.h"
#include "server/server.h"

#include <string.h>

#ifndef NOOK_VERSION
#define NOOK_VERSION "0.1.0-dev"
#endif

/* In order: the first matching route wins. Add your table here (one line). */
static const srv_route_table *const k_tables[] = {
    &srv_routes_core,
    &srv_routes_specialist, /* before routes_store and routes_gen: a specialist's name answers
                               show and chat; other names go on to those */
    &srv_routes_store,    /* before routes_models: the store's /api/tags and /api/show win */
    &srv_routes_gen,
    &srv_routes_models,
    &srv_routes_embed,
    &srv_routes_ui,
};

/* Matches path against pattern segment by segment; {x} takes one non-empty segment,
 * {x*} (last in a pattern) the non-empty rest of the path, slashes included. */
static bool match(const char *pat, const char *path, const char **pp, size_t *pl, int *np) {
    int n = 0;
    while (*pat && *path) {
        if (*pat == '{') {
            const char *pe = strchr(pat, '}');
            if (!pe) return false;
            bool rest = pe > pat && pe[-1] == '*';
            size_t len = rest ? strlen(path) : strcspn(path, "/");
            if (len == 0 || n >= 4) return false;
            pp[n] = path;
            pl[n++] = len;
            path += len;
            pat = pe + 1;
        } else if (*pat == *path) {
            pat++;
            path++;
        } else {
            return false;
        }
    }
    if (*pat || *path) return false;
    *np = n;
    return true;
}

const srv_route *srv_route_find(const char *method, const char *path, bool *path_known,
                                const char **params, size_t *param_len, int *n_params) {
    *path_known = false;
    *n_params = 0;
    for (size_t t = 0; t < NK_ARRAY_LEN(k_tables); t++) {
        const srv_route_table *tb = k_tables[t];
        for (size_t i = 0; i < tb->n; i++) {
            const srv_route *rt = &tb->routes[i];
            int np = 0;
            if (!match(rt->pattern, path, params, param_len, &np)) continue;
            *path_known = true;
            if (strcmp(rt->method, method) == 0) {
                *n_params = np;
                return rt;
            }
        }
    }
    return NULL;
}

/* ---- core routes ------------------------------------------------------------------------- */

static void h_root(srv_req *r) {
    static const char k_text[] = "nook is running";
    srv_reply_text(r, 200, "text/plain; charset=utf-8", k_text, sizeof k_text - 1);
}

static void h_health(srv_req *r) {
    /* llama-server's liveness answer. */
    srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_metrics(srv_req *r) {
    size_t len = 0, mlen = 0;
    char *txt = srv_metrics_text(&len);
    char *mtxt = txt ? srv_models_metrics_text(srv_req_server(r), &mlen) : NULL;
    char *all = mtxt ? nk_realloc(txt, len + mlen + 1) : NULL;
    if (!all) {
        nk_free(txt);
        nk_free(mtxt);
        srv_reply_error(r, 500, "out of memory");
        return;
    }
    memcpy(all + len, mtxt, mlen);
    srv_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", all, len + mlen);
    nk_free(all);
    nk_free(mtxt);
}

static void h_version(srv_req *r) {
    srv_reply_json(r, 200, json_pack("{s:s}", "version", NOOK_VERSION));
}

static const srv_route k_core[] = {
    { "GET", "/",            SRV_API_TEXT,   SRV_PUBLIC, h_root },
    { "GET", "/health",      SRV_API_OLLAMA, SRV_PUBLIC, h_health },
    { "GET", "/metrics",     SRV_API_TEXT,   0,          h_metrics },
    { "GET", "/api/version", SRV_API_OLLAMA, SRV_PUBLIC, h_version },
};
const srv_route_table srv_routes_core = { k_core, NK_ARRAY_LEN(k_core) };

/*
 * routes_ui.c: the local web page (issue 15) and the ledger view it reads.
 *
 *   GET /ui            301 to /ui/
 *   GET /ui/           index.html
 *   GET /ui/{file}     one of the files of src/server/ui/, compiled in (ui_assets.h)
 *   GET /api/audit     the egress ledger, verified: {"ok", "problem", "lines", "egress",
 *                      "complete", "pending", "entries": [the last 500 lines]}; what
 *                      `nook audit show --json` and `nook audit verify` print
 *
 * The page is plain HTML, CSS and JavaScript with no framework, fonts or scripts from
 * elsewhere. Its responses carry a Content-Security-Policy that lets the page reach this
 * server only ('self'), so even a bug in the page cannot send a conversation anywhere
 * else; the browser enforces that. The page's files are public (no API key): they hold
 * nothing but the page, which asks for the key when the API answers 401. /api/audit is
 * an API route like the others (key, Host and Origin checks apply).
 */
#include "server/server.h"
#include "server/ui_assets.h"
#include "net/ledger.h"

#include <string.h>

static const char k_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static const char *content_type(const char *name) {
    static const struct { const char *ext, *type; } k_types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < NK_ARRAY_LEN(k_types); i++)
        if (strcmp(dot, k_types[i].ext) == 0) return k_types[i].type;
    return "application/octet-stream";
}

/* Only names from the compiled-in table are answered: no path ever reaches the file system. */
static void send_asset(srv_req *r, const char *name) {
    for (size_t i = 0; i < srv_ui_n_assets; i++) {
        const srv_asset *a = &srv_ui_assets[i];
        if (strcmp(a->name, name) != 0) continue;
        srv_reply_header(r, "Content-Security-Policy", k_csp);
        srv_reply_header(r, "X-Content-Type-Options", "nosniff");
        srv_reply_header(r, "Referrer-Policy", "no-referrer");
        srv_reply_header(r, "Cache-Control", "no-cache");
        srv_reply_text(r, 200, content_type(name), (const char *)a->data, a->len);
        return;
    }
    srv_reply_error(r, 404, "no file '%s' in the page", name);
}

static void h_ui_redirect(srv_req *r) {
    srv_reply_header(r, "Location", "/ui/");
    srv_reply_text(r, 301, "text/plain; charset=utf-8", "/ui/", 4);
}
static void h_ui_index(srv_req *r) { send_asset(r, "index.html"); }
static void h_ui_file(srv_req *r) { send_asset(r, srv_req_param(r, 0)); }

/* ---- /api/audit ------------------------------------------------------------------------------ */

enum { AUDIT_MAX_ENTRIES = 500 };

/* Keeps the last AUDIT_MAX_ENTRIES lines in a ring (a ledger grows without bound). */
typedef struct audit_ring {
    json_t *items[AUDIT_MAX_ENTRIES];
    size_t n;       /* lines seen */
} audit_ring;

static bool keep_line(json_t *obj, const char *line, size_t len, void *ud) {
    (void)line, (void)len;
    audit_ring *ring = ud;
    size_t at = ring->n++ % AUDIT_MAX_ENTRIES;
    json_decref(ring->items[at]);
    ring->items[at] = json_incref(obj);
    return true;
}

static void h_audit(srv_req *r) {
    audit_ring *ring = nk_calloc(1, sizeof *ring);
    if (!ring) { srv_reply_error(r, 500, "out of memory"); return; }
    nk_ledger_report rep;
    nook_error err = { 0 };
    if (nk_ledger_verify(NULL, keep_line, ring, &rep, &err) != NOOK_OK) {
        srv_reply_error(r, 500, "%s", err.msg);
    } else {
        json_t *entries = json_array();
        size_t n = ring->n < AUDIT_MAX_ENTRIES ? ring->n : AUDIT_MAX_ENTRIES;
        for (size_t k = ring->n - n; k < ring->n; k++)
            json_array_append(entries, ring->items[k % AUDIT_MAX_ENTRIES]);
        json_t *o = json_pack("{s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:o}", "ok", rep.ok, "problem", rep.ok ? "" : rep.problem,
                              "lines", (json_int_t)rep.lines, "egress", (json_int_t)rep.egress, "complete",
                              (json_int_t)rep.complete, "pending", (json_int_t)rep.pending, "pull",
                              (json_int_t)rep.pull, "entries", entries);
        if (o) srv_reply_json(r, 200, o);
        else srv_reply_error(r, 500, "out of memory");
    }
    for (size_t i = 0; i < AUDIT_MAX_ENTRIES; i++) json_decref(ring->items[i]);
    nk_free(ring);
}

static const srv_route k_routes[] = {
    { "GET", "/ui", SRV_API_TEXT, SRV_PUBLIC, h_ui_redirect },
    { "GET", "/ui/", SRV_API_TEXT, SRV_PUBLIC, h_ui_index },
    { "GET", "/ui/{file}", SRV_API_TEXT, SRV_PUBLIC, h_ui_file },
    { "GET", "/api/audit", SRV_API_OLLAMA, 0, h_audit },
};
const srv_route_table srv_routes_ui = { k_routes, NK_ARRAY_LEN(k_routes) };

/*
 * routes_store.c: the model store's Ollama endpoints, thin over src/store/store.h:
 *   GET  /api/tags                 list (models[] with name, model, modified_at, size, digest, details)
 *   POST /api/show                 a model's Modelfile, parameters, template, system, license, details, model_info
 *   POST /api/pull                 NDJSON progress {status, digest, total, completed} ... {status:"success"}
 *   POST /api/push                 the same progress while pushing (off unless NOOK_ALLOW_PUSH=1)
 *   POST /api/create               Ollama's JSON form: model, from, files{name:digest}, template, system,
 *                                  parameters, messages, license, requires, quantize (adapters refused)
 *   HEAD /api/blobs/{digest}       200 when present, 404 otherwise
 *   POST /api/blobs/{digest}       upload: 201 once the bytes hash to the digest, 400 otherwise
 *   POST /api/copy                 {source, destination}
 *   DELETE /api/delete             {model} (or name)
 * Requests name models as Ollama's clients do: "model", or "name" in older clients.
 */
#include "server/server.h"
#include "server/models.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static nk_store *open_store(srv_req *r) {
    nk_store *s = NULL;
    nook_error err = { 0 };
    if (nk_store_open(NULL, &s, &err) != NOOK_OK) srv_reply_error(r, 500, "model store: %s", err.msg);
    return s;
}

static const char *model_field(json_t *j) {
    const char *m = json_string_value(json_object_get(j, "model"));
    if (!m || !*m) m = json_string_value(json_object_get(j, "name"));
    return m && *m ? m : NULL;
}

static int status_of(nook_status st) {
    switch (st) {
    case NOOK_ENOTFOUND: return 404;
    case NOOK_EINVAL: case NOOK_EFORMAT: case NOOK_EUNSUPPORTED: case NOOK_ERANGE: return 400;
    default: return 500;
    }
}

static void rfc3339(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* details{} from the config blob (Ollama's ConfigV2 fields). */
static json_t *details(nk_store *s, const nk_name *n) {
    json_t *d = json_pack("{s:s, s:s, s:s, s:[], s:s, s:s}", "parent_model", "", "format", "gguf", "family", "",
                          "families", "parameter_size", "", "quantization_level", "");
    nk_manifest m;
    if (!d || nk_store_read_manifest(s, n, &m, NULL, 0, NULL) != NOOK_OK) return d;
    char p[4400];
    nk_store_blob_path(s, m.config.digest, p, sizeof p);
    nk_manifest_free(&m);
    struct stat st;
    if (stat(p, &st) != 0 || st.st_size > NK_TEXT_LAYER_MAX) return d;
    json_t *c = json_load_file(p, 0, NULL);
    const char *fam = json_string_value(json_object_get(c, "model_family"));
    if (fam) {
        json_object_set_new(d, "family", json_string(fam));
        json_array_append_new(json_object_get(d, "families"), json_string(fam));
    }
    const char *v;
    if ((v = json_string_value(json_object_get(c, "model_type")))) json_object_set_new(d, "parameter_size", json_string(v));
    if ((v = json_string_value(json_object_get(c, "file_type")))) json_object_set_new(d, "quantization_level", json_string(v));
    if ((v = json_string_value(json_object_get(c, "model_format")))) json_object_set_new(d, "format", json_string(v));
    json_decref(c);
    return d;
}

static void h_tags(srv_req *r) {
    nk_store *s = open_store(r);
    if (!s) return;
    nk_store_entry *v = NULL;
    int n = 0;
    nk_store_list(s, &v, &n, NULL);
    json_t *models = json_array();
    for (int i = 0; i < n; i++) {
        char t[64];
        rfc3339(v[i].modified, t, sizeof t);
        json_array_append_new(models, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", v[i].name, "model", v[i].name,
                                                "modified_at", t, "size", (json_int_t)v[i].size, "digest", v[i].digest + 7,
                                                "details", details(s, &v[i].n)));
    }
    nk_free(v);
    nk_store_free(s);
    srv_reply_json(r, 200, json_pack("{s:o}", "models", models));
}

static void h_show(srv_req *r) {
    json_t *j = srv_req_json(r);
    if (!j) return;
    const char *name = model_field(j);
    if (!name) { srv_reply_error(r, 400, "model is required"); return; }
    nk_store *s = open_store(r);
    if (!s) return;
    nk_model_ref ref;
    nook_error err = { 0 };
    nook_status st = nk_model_resolve(s, name, &ref, &err);
    if (st) {
        nk_store_free(s);
        srv_reply_error(r, status_of(st), "%s", st == NOOK_ENOTFOUND ? err.msg : err.msg);
        return;
    }
    char *mf = nk_modelfile_render(&ref);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:[s]}", "license", ref.license ? ref.license : "",
                          "modelfile", mf ? mf : "", "template", ref.template_go ? ref.template_go : "",
                          "system", ref.system ? ref.system : "", "capabilities", "completion");
    nk_free(mf);
    if (ref.params) {   /* "parameters" as Ollama prints them: one "key value" line each */
        char buf[8192];
        size_t n = 0;
        buf[0] = 0;
        const char *k;
        json_t *v;
        json_object_foreach(ref.params, k, v) {
            size_t cnt = json_is_array(v) ? json_array_size(v) : 1;
            for (size_t i = 0; i < cnt; i++) {
                char *t = json_dumps(json_is_array(v) ? json_array_get(v, i) : v, JSON_ENCODE_ANY);
                if (t && n < sizeof buf) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%-30s %s", n ? "\n" : "", k, t);
                free(t);
            }
        }
        json_object_set_new(o, "parameters", json_string(buf));
    }
    if (ref.messages) json_object_set(o, "messages", ref.messages);
    nk_name nm;
    if (ref.from_store && nk_name_parse(name, &nm, NULL) == NOOK_OK) {
        json_object_set_new(o, "details", details(s, &nm));
        char mp[4400];
        nk_manifest m;
        struct stat sb;
        if (nk_store_read_manifest(s, &nm, &m, mp, sizeof mp, NULL) == NOOK_OK) {
            nk_manifest_free(&m);
            if (stat(mp, &sb) == 0) {
                char t[64];
                rfc3339((int64_t)sb.st_mtime, t, sizeof t);
                json_object_set_new(o, "modified_at", json_string(t));
            }
        }
    }
    /* what the GGUF itself says: model_info, capabilities, and details the store's
     * config does not give (all of them for a path) */
    char msg[600];
    json_t *g = srv_model_show(ref.path, ref.template_jinja, msg, sizeof msg);
    if (g) {
        json_object_set(o, "model_info", json_object_get(g, "model_info"));
        json_object_set(o, "capabilities", json_object_get(g, "capabilities"));
        json_t *d = json_object_get(o, "details"), *gd = json_object_get(g, "details");
        if (!d) json_object_set(o, "details", gd);
        else {
            const char *k;
            json_t *v;
            json_object_foreach(gd, k, v) {
                json_t *mine = json_object_get(d, k);
                if (!mine || (json_is_string(mine) && !json_string_length(mine)) ||
                    (json_is_array(mine) && !json_array_size(mine)))
                    json_object_set(d, k, v);
            }
        }
        if (!ref.template_go) json_object_set(o, "template", json_object_get(g, "template"));
        json_decref(g);
    } else {
        json_object_set_new(o, "model_info", json_object());
    }
    nk_model_ref_free(&ref);
    nk_store_free(s);
    srv_reply_json(r, 200, o);
}

typedef struct pull_ctx {
    srv_stream *st;      /* NULL: not streaming */
    volatile int cancel;
    bool gone;
} pull_ctx;

static void on_cancel(void *arg) { ((pull_ctx *)arg)->cancel = 1; }

static bool pull_progress(const nk_pull_progress *p, void *ud) {
    pull_ctx *c = ud;
    if (!c->st) return true;
    json_t *o = json_pack("{s:s}", "status", p->status);
    if (o && p->digest) json_object_set_new(o, "digest", json_string(p->digest));
    if (o && p->total) {
        json_object_set_new(o, "total", json_integer((json_int_t)p->total));
        json_object_set_new(o, "completed", json_integer((json_int_t)p->completed));
    }
    bool ok = o && srv_stream_json_line(c->st, o);
    json_decref(o);
    if (!ok) c->gone = true;
    return ok && !c->cancel;
}

/* stream defaults to true, as Ollama */
static bool want_stream(json_t *j) {
    json_t *s = json_object_get(j, "stream");
    return !json_is_false(s);
}

static void finish(srv_req *r, pull_ctx *c, nook_status st, const nook_error *err) {
    if (c->st) {
        if (st && !c->gone) {
            json_t *e = json_pack("{s:s}", "error", err->msg);
            srv_stream_json_line(c->st, e);
            json_decref(e);
        }
        srv_stream_end(c->st);
    } else if (st) {
        srv_reply_error(r, status_of(st), "%s", err->msg);
    } else {
        srv_reply_json(r, 200, json_pack("{s:s}", "status", "success"));
    }
}

/* POST /api/pull and /api/push {model|name, insecure, stream}: one transfer through
 * nk_pull or nk_push, progress streamed as NDJSON lines (or one object at the end), a
 * client that goes away cancels it. Push is off unless NOOK_ALLOW_PUSH=1 in the server's
 * environment (nk_push checks it: the one place). */
typedef nook_status (*transfer_fn)(nk_store *s, const char *name, const nk_pull_opts *o, nook_error *err);

static void transfer(srv_req *r, transfer_fn fn) {
    json_t *j = srv_req_json(r);
    if (!j) return;
    const char *name = model_field(j);
    if (!name) { srv_reply_error(r, 400, "model is required"); return; }
    nk_store *s = open_store(r);
    if (!s) return;
    pull_ctx c = { 0 };
    if (want_stream(j)) {
        c.st = srv_reply_stream(r, "application/x-ndjson");
        if (c.st) srv_stream_on_cancel(c.st, on_cancel, &c);
    }
    nk_pull_opts po = { .insecure = json_is_true(json_object_get(j, "insecure")), .progress = pull_progress,
                        .ud = &c, .cancel = &c.cancel };
    nook_error err = { 0 };
    nook_status st = fn(s, name, &po, &err);
    nk_store_free(s);
    finish(r, &c, st, &err);
}

static void h_pull(srv_req *r) { transfer(r, nk_pull); }
static void h_push(srv_req *r) { transfer(r, nk_push); }

static void h_create(srv_req *r) {
    json_t *j = srv_req_json(r);
    if (!j) return;
    const char *name = model_field(j);
    if (!name) { srv_reply_error(r, 400, "model is required"); return; }
    if (json_object_get(j, "adapters") && json_object_size(json_object_get(j, "adapters"))) {
        srv_reply_error(r, 400, "adapters (LoRA) are not supported by nook yet");
        return;
    }
    nk_store *s = open_store(r);
    if (!s) return;
    nk_modelfile mf = { 0 };
    char from[4400] = "";
    const char *fname = json_string_value(json_object_get(j, "from"));
    json_t *files = json_object_get(j, "files");
    const char *k;
    json_t *v;
    nook_status st = NOOK_OK;
    nook_error err = { 0 };
    json_object_foreach(files, k, v) {   /* the GGUF uploaded by digest (POST /api/blobs) */
        const char *d = json_string_value(v);
        if (!d || !nk_digest_valid(d)) { st = nk_fail(&err, NOOK_EINVAL, "files: '%s' has an invalid digest", k); break; }
        if (!nk_store_has_blob(s, d, NULL)) { st = nk_fail(&err, NOOK_EINVAL, "files: blob %s not found (upload it with POST /api/blobs/%s)", d, d); break; }
        size_t kl = strlen(k);
        if (kl > 5 && strcmp(k + kl - 5, ".gguf") == 0 && !from[0]) nk_store_blob_path(s, d, from, sizeof from);
    }
    if (!st && !from[0] && fname) {
        /* a name in the store; a path on the server is not read on a client's behalf */
        nk_name bn;
        if (nk_name_parse(fname, &bn, &err) != NOOK_OK) st = NOOK_EINVAL;
        else snprintf(from, sizeof from, "%s", fname);
    }
    if (!st && !from[0]) st = nk_fail(&err, NOOK_EINVAL, "neither 'from' nor a .gguf in 'files' was given");
    if (!st) {
        mf.from = from;
        mf.tmpl = (char *)json_string_value(json_object_get(j, "template"));
        mf.system = (char *)json_string_value(json_object_get(j, "system"));
        mf.requires = (char *)json_string_value(json_object_get(j, "requires"));
        json_t *lic = json_object_get(j, "license");
        char licbuf[65536] = "";
        if (json_is_string(lic)) snprintf(licbuf, sizeof licbuf, "%s", json_string_value(lic));
        else if (json_is_array(lic)) {
            size_t i, n = 0;
            json_t *x;
            json_array_foreach(lic, i, x) if (json_is_string(x) && n < sizeof licbuf)
                n += (size_t)snprintf(licbuf + n, sizeof licbuf - n, "%s%s", n ? "\n\n" : "", json_string_value(x));
        }
        mf.license = licbuf[0] ? licbuf : NULL;
        mf.params = json_is_object(json_object_get(j, "parameters")) ? json_object_get(j, "parameters") : NULL;
        mf.messages = json_is_array(json_object_get(j, "messages")) ? json_object_get(j, "messages") : NULL;
        pull_ctx c = { 0 };
        if (want_stream(j)) {
            c.st = srv_reply_stream(r, "application/x-ndjson");
            if (c.st) srv_stream_on_cancel(c.st, on_cancel, &c);
        }
        nk_create_opts co = { .quantize = json_string_value(json_object_get(j, "quantize")), .progress = pull_progress, .ud = &c };
        st = nk_create(s, name, &mf, &co, &err);
        nk_store_free(s);
        finish(r, &c, st, &err);
        return;
    }
    nk_store_free(s);
    srv_reply_error(r, status_of(st), "%s", err.msg);
}

static void h_blob_head(srv_req *r) {
    const char *d = srv_req_param(r, 0);
    nk_store *s = open_store(r);
    if (!s) return;
    bool have = d && nk_digest_valid(d) && nk_store_has_blob(s, d, NULL);
    nk_store_free(s);
    if (have) srv_reply_text(r, 200, "text/plain", "", 0);
    else srv_reply_error(r, 404, "blob not found");
}

typedef struct body_rd { const char *p; size_t left; } body_rd;
static long body_read(void *ud, void *buf, size_t cap) {
    body_rd *b = ud;
    size_t n = NK_MIN(cap, b->left);
    memcpy(buf, b->p, n);
    b->p += n;
    b->left -= n;
    return (long)n;
}

static void h_blob_post(srv_req *r) {
    const char *d = srv_req_param(r, 0);
    if (!d || !nk_digest_valid(d)) { srv_reply_error(r, 400, "invalid digest (want sha256:<64 lowercase hex>)"); return; }
    nk_store *s = open_store(r);
    if (!s) return;
    if (nk_store_has_blob(s, d, NULL)) { nk_store_free(s); srv_reply_text(r, 201, "text/plain", "", 0); return; }
    size_t len = 0;
    const char *body = srv_req_body(r, &len);
    body_rd b = { body, len };
    nook_error err = { 0 };
    nook_status st = nk_store_add_blob_stream(s, body_read, &b, d, 0, &err);
    nk_store_free(s);
    if (st) srv_reply_error(r, st == NOOK_EFORMAT ? 400 : status_of(st), "%s", err.msg);
    else srv_reply_text(r, 201, "text/plain", "", 0);
}

static void h_copy(srv_req *r) {
    json_t *j = srv_req_json(r);
    if (!j) return;
    const char *a = json_string_value(json_object_get(j, "source")), *b = json_string_value(json_object_get(j, "destination"));
    if (!a || !b) { srv_reply_error(r, 400, "source and destination are required"); return; }
    nk_store *s = open_store(r);
    if (!s) return;
    nk_name na, nb;
    nook_error err = { 0 };
    nook_status st = nk_name_parse(a, &na, &err);
    if (!st) st = nk_name_parse(b, &nb, &err);
    if (!st) st = nk_store_copy(s, &na, &nb, &err);
    nk_store_free(s);
    if (st) srv_reply_error(r, status_of(st), "%s", err.msg);
    else srv_reply_text(r, 200, "application/json", "", 0);
}

static void h_delete(srv_req *r) {
    json_t *j = srv_req_json(r);
    if (!j) return;
    const char *name = model_field(j);
    if (!name) { srv_reply_error(r, 400, "model is required"); return; }
    nk_store *s = open_store(r);
    if (!s) return;
    nk_name n;
    nook_error err = { 0 };
    nook_status st = nk_name_parse(name, &n, &err);
    if (!st) st = nk_store_remove(s, &n, &err);
    nk_store_free(s);
    if (st) srv_reply_error(r, status_of(st), "%s", err.msg);
    else srv_reply_text(r, 200, "application/json", "", 0);
}

static const srv_route k_routes[] = {
    { "GET",    "/api/tags",            SRV_API_OLLAMA, 0, h_tags },
    { "POST",   "/api/show",            SRV_API_OLLAMA, 0, h_show },
    { "POST",   "/api/pull",            SRV_API_OLLAMA, 0, h_pull },
    { "POST",   "/api/push",            SRV_API_OLLAMA, 0, h_push },
    { "POST",   "/api/create",          SRV_API_OLLAMA, 0, h_create },
    { "HEAD",   "/api/blobs/{digest}",  SRV_API_OLLAMA, 0, h_blob_head },
    { "POST",   "/api/blobs/{digest}",  SRV_API_OLLAMA, SRV_BIG_BODY, h_blob_post },
    { "POST",   "/api/copy",            SRV_API_OLLAMA, 0, h_copy },
    { "DELETE", "/api/delete",          SRV_API_OLLAMA, 0, h_delete },
};
const srv_route_table srv_routes_store = { k_routes, NK_ARRAY_LEN(k_routes) };

/*
 * pull.c: the two pull protocols. Ollama registries (Docker distribution v2: manifest by
 * tag, blobs by digest, the Bearer token handshake of WWW-Authenticate, redirects to
 * blob storage) and Hugging Face repositories (hf.co/<user>/<repo>:<QUANT>: the file
 * list with LFS SHA-256s from /api/models, the GGUF for the quant from /resolve/main).
 * Blobs go through fetch.c; a model is validated before its manifest is written.
 * Push (off unless enabled) is the same protocol the other way: blob HEAD, a monolithic
 * upload (POST .../blobs/uploads/, then PUT <Location>?digest=...), the manifest PUT.
 */
#include "store/pull_internal.h"
#include "net/ledger.h"
#include "net/net.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct puller {
    nk_store *s;
    const nk_pull_opts *o;
    nk_name n;
    char disp[512];
    char base[1024];
    char auth[4200];          /* "Authorization: Bearer ..." or "" */
    const char *hdrs[3];
    const char *cur_digest;
    char status[64];
    uint64_t cur_total;
    bool cancelled;
    const char *purpose;      /* "pull" or "push" (the request's tag) */
} puller;

static bool report(puller *p, const char *status, const char *digest, uint64_t total, uint64_t completed) {
    if (!p->o->progress) return true;
    nk_pull_progress pr = { status, digest, total, completed };
    if (!p->o->progress(&pr, p->o->ud)) { p->cancelled = true; return false; }
    return true;
}

static const char *envs(const char *name) {
    const char *e = getenv(name);
    return e && *e ? e : NULL;
}

static void set_auth_headers(puller *p, const char *accept) {
    int i = 0;
    if (accept) p->hdrs[i++] = accept;
    if (p->auth[0]) p->hdrs[i++] = p->auth;
    p->hdrs[i] = NULL;
}

/* Parses a WWW-Authenticate Bearer challenge's key="value" into buf (cap). */
static bool challenge_get(const char *h, const char *key, char *buf, size_t cap) {
    size_t kl = strlen(key);
    for (const char *q = h; (q = strcasestr(q, key)); q += kl) {
        if ((q != h && isalnum((unsigned char)q[-1])) || q[kl] != '=') continue;
        const char *v = q + kl + 1;
        bool quoted = *v == '"';
        if (quoted) v++;
        size_t n = 0;
        while (v[n] && (quoted ? v[n] != '"' : v[n] != ',')) n++;
        if (n >= cap) return false;
        memcpy(buf, v, n);
        buf[n] = 0;
        return true;
    }
    return false;
}

static nook_status token_handshake(puller *p, const nk_http_resp *r401, const char *req_host, nook_error *err) {
    char ch[2048], realm[1024] = "", service[256] = "", scope[512] = "";
    if (!nk_http_header(r401, "WWW-Authenticate", ch, sizeof ch) || strncasecmp(ch, "Bearer ", 7) != 0 ||
        !challenge_get(ch, "realm", realm, sizeof realm))
        return nk_fail(err, NOOK_EIO, "%s: the registry asked for authentication without a Bearer challenge", req_host);
    challenge_get(ch, "service", service, sizeof service);
    challenge_get(ch, "scope", scope, sizeof scope);
    char *rhost = NULL;
    nook_status st = nk_net_check_url(realm, p->o->insecure, &rhost, err);
    if (st) return st;
    /* Ollama's rule: the token realm must be on the registry's own host */
    bool same = strcasecmp(rhost, req_host) == 0;
    nk_free(rhost);
    if (!same) return nk_fail(err, NOOK_EFORMAT, "%s: refusing the token realm '%.200s' on another host", req_host, realm);
    char *es = nk_url_escape(service), *esc = nk_url_escape(scope);
    char url[2400], nonce[33];
    unsigned long long r = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
    snprintf(nonce, sizeof nonce, "%016llx", r * 6364136223846793005ull + 1442695040888963407ull);
    bool ok = es && esc && nk_pfmt(url, sizeof url, "%s%sservice=%s&scope=%s&ts=%lld&nonce=%s", realm,
                                   strchr(realm, '?') ? "&" : "?", es, esc, (long long)time(NULL), nonce);
    nk_free(es);
    nk_free(esc);
    if (!ok) return nk_fail(err, NOOK_EINVAL, "token URL too long");
    nk_http_req q = { .url = url, .allow_http = p->o->insecure, .max_body = 64 * 1024, .purpose = p->purpose,
                      .timeout_ms = 60000, .stall_ms = p->o->stall_ms };
    nk_http_resp resp;
    st = nk_http_do(&q, &resp, err);
    if (!st && resp.status != 200) st = nk_fail(err, NOOK_EIO, "%s: token request failed with HTTP %ld", req_host, resp.status);
    if (!st) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok) tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok || strpbrk(tok, "\r\n") || strlen(tok) > 4000)
            st = nk_fail(err, NOOK_EFORMAT, "%s: the token response has no usable token", req_host);
        else snprintf(p->auth, sizeof p->auth, "Authorization: Bearer %s", tok);
        json_decref(j);
    }
    nk_http_resp_free(&resp);
    return st;
}

/* method url (body, body_len) with the current auth and one extra header line (NULL:
 * none); one token handshake on 401. Response body collected (max). timeout_ms 0: none
 * (a blob upload of gigabytes; the stall detector still applies). */
static nook_status registry_do(puller *p, const char *method, const char *url, const char *hdr,
                               const void *body, size_t body_len, size_t max, long timeout_ms,
                               nk_http_resp *resp, nook_error *err) {
    for (int round = 0; round < 2; round++) {
        set_auth_headers(p, hdr);
        nk_http_req q = { .method = method, .url = url, .headers = p->hdrs, .body = body, .body_len = body_len,
                          .allow_http = p->o->insecure, .max_body = max, .max_redirects = body ? -1 : 0,
                          .purpose = p->purpose, .timeout_ms = timeout_ms, .stall_ms = p->o->stall_ms,
                          .cancel = p->o->cancel };
        nook_status st = nk_http_do(&q, resp, err);
        if (st) return st;
        if (resp->status != 401 || round == 1) return NOOK_OK;
        char *host = NULL;
        nk_net_check_url(url, true, &host, NULL);
        st = token_handshake(p, resp, host ? host : "", err);
        nk_free(host);
        nk_http_resp_free(resp);
        if (st) return st;
    }
    return NOOK_OK;
}

/* GET url with the current auth; one token handshake on 401. Body collected (max). */
static nook_status registry_get(puller *p, const char *url, const char *accept, size_t max,
                                nk_http_resp *resp, nook_error *err) {
    return registry_do(p, NULL, url, accept, NULL, 0, max, 120000, resp, err);
}

static bool fetch_progress(uint64_t completed, void *ud) {
    puller *p = ud;
    return report(p, p->status, p->cur_digest, p->cur_total, completed);
}
static void fetch_verifying(void *ud) {
    puller *p = ud;
    report(p, "verifying sha256 digest", p->cur_digest, p->cur_total, p->cur_total);
}

static nook_status get_blob(puller *p, const char *url, const char *digest, uint64_t size, nook_error *err) {
    uint64_t have;
    snprintf(p->status, sizeof p->status, "pulling %.12s", digest + 7);
    if (nk_store_has_blob(p->s, digest, &have) && have == size)
        return report(p, p->status, digest, size, size) ? NOOK_OK : nk_fail(err, NOOK_EIO, "pull cancelled");
    set_auth_headers(p, NULL);
    const char *pe = envs("NOOK_PULL_PARTS");
    nk_fetch f = { .url = url, .headers = p->hdrs, .digest = digest, .size = size, .insecure = p->o->insecure,
                   .parts = p->o->parts ? p->o->parts : pe ? atoi(pe) : 8, .min_part = p->o->min_part,
                   .stall_ms = p->o->stall_ms, .retries = p->o->retries ? p->o->retries : 6,
                   .cancel = p->o->cancel, .progress = fetch_progress, .verifying = fetch_verifying, .ud = p };
    if (!f.min_part && envs("NOOK_PULL_MIN_PART")) f.min_part = strtoull(envs("NOOK_PULL_MIN_PART"), NULL, 10);
    if (!f.stall_ms && envs("NOOK_PULL_STALL_MS")) f.stall_ms = atol(envs("NOOK_PULL_STALL_MS"));
    p->cur_digest = digest;
    p->cur_total = size;
    nook_status st = nk_fetch_blob(p->s, &f, err);
    if (st && p->cancelled) return nk_fail(err, NOOK_EIO, "pull cancelled");
    return st;
}

/* Validates a pulled model before registration; a model blob that fails is removed. */
static nook_status validate(puller *p, const nk_manifest *m, nook_error *err) {
    for (int i = 0; i < m->n_layers; i++) {
        const nk_layer *l = &m->layers[i];
        char path[4400];
        nk_store_blob_path(p->s, l->digest, path, sizeof path);
        if (strcmp(l->media_type, NK_MT_MODEL) == 0) {
            nook_status st = nk_store_validate_gguf(path, err);
            if (st) {
                unlink(path);
                nk_prefix(err, "%s: the model file is not a valid GGUF (removed; nothing was registered): ", p->disp);
                return st;
            }
        } else if (strcmp(l->media_type, NK_MT_PARAMS) == 0 || strcmp(l->media_type, NK_MT_MESSAGES) == 0) {
            json_t *j = json_load_file(path, 0, NULL);
            bool ok = strcmp(l->media_type, NK_MT_PARAMS) == 0 ? json_is_object(j) : json_is_array(j);
            json_decref(j);
            if (!ok) return nk_fail(err, NOOK_EFORMAT, "%s: its %s layer is not valid JSON (nothing was registered)", p->disp, l->media_type);
        }
    }
    if (!nk_manifest_find(m, NK_MT_MODEL)) return nk_fail(err, NOOK_EFORMAT, "%s: the manifest has no model layer", p->disp);
    return NOOK_OK;
}

/* p->base: the registry's base URL for the name (the mirror for the default host). */
static void registry_base(puller *p) {
    const char *mirror = p->o->mirror ? p->o->mirror : envs("NOOK_REGISTRY_MIRROR");
    if (mirror && strcasecmp(p->n.host, NK_DEFAULT_HOST) == 0) {
        snprintf(p->base, sizeof p->base, "%s", mirror);
        size_t l = strlen(p->base);
        while (l && p->base[l - 1] == '/') p->base[--l] = 0;
    } else {
        const char *scheme = p->n.scheme[0] ? p->n.scheme : p->o->insecure ? "http" : "https";
        snprintf(p->base, sizeof p->base, "%s://%s", scheme, p->n.host);
    }
}

static nook_status pull_registry(puller *p, nook_error *err) {
    registry_base(p);
    char url[2400];
    if (!nk_pfmt(url, sizeof url, "%s/v2/%s/%s/manifests/%s", p->base, p->n.ns, p->n.model,
                 p->n.digest[0] ? p->n.digest : p->n.tag))
        return nk_fail(err, NOOK_EINVAL, "URL too long");
    if (!report(p, "pulling manifest", NULL, 0, 0)) return nk_fail(err, NOOK_EIO, "pull cancelled");
    nk_http_resp r;
    nook_status st = registry_get(p, url, "Accept: " NK_MT_MANIFEST, NK_MANIFEST_MAX, &r, err);
    if (st) { nk_http_resp_free(&r); nk_prefix(err, "pulling manifest of %s: ", p->disp); return st; }
    if (r.status == 404 || r.status == 401 || r.status == 403) {
        long sc = r.status;
        nk_http_resp_free(&r);
        return nk_fail(err, NOOK_ENOTFOUND, "model '%s' not found in the registry %s (HTTP %ld): check the name, or give the path of a .gguf file",
                       p->disp, p->base, sc);
    }
    if (r.status != 200) {
        long sc = r.status;
        nk_http_resp_free(&r);
        return nk_fail(err, NOOK_EIO, "pulling manifest of %s from %s: HTTP %ld", p->disp, p->base, sc);
    }
    nk_manifest m;
    st = nk_manifest_parse(r.body ? r.body : "", r.body_len, &m, err);
    if (st) { nk_http_resp_free(&r); nk_prefix(err, "%s: ", p->disp); return st; }
    if (p->n.digest[0]) {   /* name@digest: the manifest must hash to it */
        char hex[65], d[72];
        nk_sha256_buf(r.body, r.body_len, hex, NULL);
        snprintf(d, sizeof d, "sha256:%s", hex);
        if (strcmp(d, p->n.digest) != 0) st = nk_fail(err, NOOK_EFORMAT, "%s: the manifest hashes to %s, not the digest asked for", p->disp, d);
    }
    for (int i = -1; i < m.n_layers && !st; i++) {
        const nk_layer *l = i < 0 ? &m.config : &m.layers[i];
        char burl[2400];
        if (!nk_pfmt(burl, sizeof burl, "%s/v2/%s/%s/blobs/%s", p->base, p->n.ns, p->n.model, l->digest))
            st = nk_fail(err, NOOK_EINVAL, "URL too long");
        else st = get_blob(p, burl, l->digest, l->size, err);
    }
    if (!st) st = validate(p, &m, err);
    if (!st && !report(p, "writing manifest", NULL, 0, 0)) st = nk_fail(err, NOOK_EIO, "pull cancelled");
    if (!st) st = nk_store_write_manifest_raw(p->s, &p->n, r.body, r.body_len, err);
    nk_manifest_free(&m);
    nk_http_resp_free(&r);
    return st;
}

/* Whether a GGUF file name matches a quant tag (case-insensitive, delimited). */
static bool quant_match(const char *file, const char *tag) {
    if (strcasecmp(file, tag) == 0) return true;
    size_t tl = strlen(tag);
    for (const char *q = file; (q = strcasestr(q, tag)); q++) {
        char before = q == file ? '-' : q[-1], after = q[tl];
        if ((before == '-' || before == '.' || before == '_' || before == '/') && (after == '.' || after == '-'))
            return true;
    }
    return false;
}

static nook_status pull_hf(puller *p, nook_error *err) {
    const char *ep = envs("NOOK_HF_ENDPOINT");
    snprintf(p->base, sizeof p->base, "%s", ep ? ep : "https://huggingface.co");
    size_t bl = strlen(p->base);
    while (bl && p->base[bl - 1] == '/') p->base[--bl] = 0;
    char url[2400];
    if (!nk_pfmt(url, sizeof url, "%s/api/models/%s/%s?blobs=true", p->base, p->n.ns, p->n.model))
        return nk_fail(err, NOOK_EINVAL, "URL too long");
    if (!report(p, "pulling manifest", NULL, 0, 0)) return nk_fail(err, NOOK_EIO, "pull cancelled");
    nk_http_resp r;
    nook_status st = registry_get(p, url, "Accept: application/json", 8u << 20, &r, err);
    if (st) { nk_http_resp_free(&r); return st; }
    if (r.status != 200) {
        long sc = r.status;
        nk_http_resp_free(&r);
        return nk_fail(err, sc == 404 || sc == 401 ? NOOK_ENOTFOUND : NOOK_EIO,
                       "Hugging Face repository %s/%s: HTTP %ld from %s (check the name)", p->n.ns, p->n.model, sc, p->base);
    }
    json_t *j = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
    nk_http_resp_free(&r);
    json_t *sib = json_object_get(j, "siblings");
    const char *pick = NULL, *first = NULL, *sha = NULL;
    json_int_t size = -1;
    size_t i;
    json_t *e;
    bool want_default = strcasecmp(p->n.tag, NK_DEFAULT_TAG) == 0;
    json_array_foreach(sib, i, e) {
        const char *fn = json_string_value(json_object_get(e, "rfilename"));
        size_t fl = fn ? strlen(fn) : 0;
        if (fl < 6 || strcasecmp(fn + fl - 5, ".gguf") != 0 || strcasestr(fn, "mmproj")) continue;
        if (!first) first = fn;
        if (quant_match(fn, want_default ? "Q4_K_M" : p->n.tag)) { pick = fn; break; }
    }
    if (!pick && want_default) pick = first;
    if (!pick) {
        json_decref(j);
        return nk_fail(err, NOOK_ENOTFOUND, "Hugging Face repository %s/%s has no GGUF file for '%s'", p->n.ns, p->n.model, p->n.tag);
    }
    json_array_foreach(sib, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "rfilename")) ? json_string_value(json_object_get(e, "rfilename")) : "", pick)) continue;
        json_t *lfs = json_object_get(e, "lfs");
        sha = json_string_value(json_object_get(lfs, "sha256"));
        size = json_integer_value(json_object_get(lfs, "size"));
        break;
    }
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%s", sha ? sha : "");
    if (!sha || !nk_digest_valid(digest) || size <= 0) {
        json_decref(j);
        return nk_fail(err, NOOK_EFORMAT, "Hugging Face repository %s/%s: no valid LFS SHA-256 and size for %s; refusing to trust the file",
                       p->n.ns, p->n.model, pick);
    }
    char *efn = nk_url_escape(pick);
    bool ok = efn && nk_pfmt(url, sizeof url, "%s/%s/%s/resolve/main/%s", p->base, p->n.ns, p->n.model, efn);
    nk_free(efn);
    char pickbuf[512];
    snprintf(pickbuf, sizeof pickbuf, "%s", pick);
    json_decref(j);
    if (!ok) return nk_fail(err, NOOK_EINVAL, "URL too long");
    p->auth[0] = 0;
    if ((st = get_blob(p, url, digest, (uint64_t)size, err))) return st;
    char path[4400];
    nk_store_blob_path(p->s, digest, path, sizeof path);
    nk_manifest m = { 0 };
    nk_layer ml = { .size = (uint64_t)size };
    snprintf(ml.media_type, sizeof ml.media_type, "%s", NK_MT_MODEL);
    nk_pfmt(ml.digest, sizeof ml.digest, "%s", digest);
    m.layers = &ml;
    m.n_layers = 1;
    if ((st = validate(p, &m, err))) return st;
    if ((st = nk_store_add_config(p->s, path, NULL, &m.config, err))) return st;
    nk_log(NK_LOG_INFO, "pull: %s is %s", p->disp, pickbuf);
    if (!report(p, "writing manifest", NULL, 0, 0)) return nk_fail(err, NOOK_EIO, "pull cancelled");
    return nk_store_write_manifest(p->s, &p->n, &m, err);
}

nook_status nk_pull(nk_store *s, const char *name, const nk_pull_opts *o, nook_error *err) {
    static const nk_pull_opts defaults = { 0 };
    puller *p = nk_calloc(1, sizeof *p);
    if (!p) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    p->s = s;
    p->o = o ? o : &defaults;
    p->purpose = "pull";
    nook_status st = nk_name_parse(name, &p->n, err);
    if (st) { nk_free(p); return st; }
    nk_name_display(&p->n, p->disp, sizeof p->disp);
    /* the egress ledger (docs/privacy.md) records the download, as carrying no user
     * content: only the model's name goes to the registry */
    char where[400];
    nk_pfmt(where, sizeof where, "%s://%s/", p->n.scheme[0] ? p->n.scheme : "https", p->n.host);
    if ((st = nk_ledger_log_pull(where, p->disp, err))) { nk_free(p); return st; }
    int lock = nk_store_lock_shared(s);   /* keeps rm's garbage collection off our new blobs */
    st = nk_name_is_hf(&p->n) ? pull_hf(p, err) : pull_registry(p, err);
    if (!st) report(p, "success", NULL, 0, 0);
    nk_store_unlock(lock);
    nk_free(p);
    return st;
}

/* ---- push ---------------------------------------------------------------------------- */

/* The upload URL: the Location of the POST's answer (absolute, or a path on the
 * registry), with digest=<digest> added to its query. */
static bool upload_url(const puller *p, const char *loc, const char *digest, char *buf, size_t cap) {
    char *ed = nk_url_escape(digest);
    bool abs = strncasecmp(loc, "http://", 7) == 0 || strncasecmp(loc, "https://", 8) == 0;
    bool ok = ed && loc[0] && (abs || loc[0] == '/') &&
              nk_pfmt(buf, cap, "%s%s%sdigest=%s", abs ? "" : p->base, loc, strchr(loc, '?') ? "&" : "?", ed);
    nk_free(ed);
    return ok;
}

/* Whether the model's bytes may go to url, an upload URL the registry named: on the
 * registry's own origin (scheme, host and port as in p->base), or on another host over
 * https only (registries hand uploads to blob storage with signed https URLs). What is
 * refused: a registry, or anything between it and us on plain http, moving the upload to
 * a host the user never named ("push to an unexpected registry", issue 16). */
static bool upload_target_ok(const puller *p, const char *url) {
    size_t bl = strlen(p->base);
    if (strncasecmp(url, p->base, bl) == 0 && (url[bl] == '/' || url[bl] == '?' || url[bl] == 0)) return true;
    return strncasecmp(url, "https://", 8) == 0;
}

/* Uploads one blob unless the registry has it. */
static nook_status push_blob(puller *p, const nk_layer *l, nook_error *err) {
    snprintf(p->status, sizeof p->status, "pushing %.12s", l->digest + 7);
    char url[2400], path[4400];
    if (!nk_pfmt(url, sizeof url, "%s/v2/%s/%s/blobs/%s", p->base, p->n.ns, p->n.model, l->digest))
        return nk_fail(err, NOOK_EINVAL, "URL too long");
    nk_http_resp r;
    nook_status st = registry_do(p, "HEAD", url, NULL, NULL, 0, 0, 120000, &r, err);
    long sc = r.status;
    nk_http_resp_free(&r);
    if (st) return st;
    if (sc == 200) return report(p, p->status, l->digest, l->size, l->size) ? NOOK_OK : nk_fail(err, NOOK_EIO, "push cancelled");
    if (!report(p, p->status, l->digest, l->size, 0)) return nk_fail(err, NOOK_EIO, "push cancelled");
    nk_store_blob_path(p->s, l->digest, path, sizeof path);
    nk_map m = { 0 };
    if ((st = nk_map_file(path, false, &m, err))) return st;
    if (m.size != l->size) {
        nk_unmap(&m);
        return nk_fail(err, NOOK_EFORMAT, "blob %s in the store has %zu bytes, its manifest says %llu", l->digest, m.size,
                       (unsigned long long)l->size);
    }
    if (!nk_pfmt(url, sizeof url, "%s/v2/%s/%s/blobs/uploads/", p->base, p->n.ns, p->n.model)) st = nk_fail(err, NOOK_EINVAL, "URL too long");
    if (!st) st = registry_do(p, "POST", url, NULL, "", 0, 0, 120000, &r, err);
    char loc[2048] = "", put[2400];
    if (!st && r.status != 202 && r.status != 201 && r.status != 200)
        st = nk_fail(err, NOOK_EIO, "starting the upload of %s to %s: HTTP %ld", l->digest, p->base, r.status);
    if (!st && (!nk_http_header(&r, "Location", loc, sizeof loc) || !upload_url(p, loc, l->digest, put, sizeof put)))
        st = nk_fail(err, NOOK_EFORMAT, "starting the upload of %s to %s: no usable Location in the answer", l->digest, p->base);
    if (!st && !upload_target_ok(p, put))
        st = nk_fail(err, NOOK_EINVAL, "starting the upload of %s to %s: the registry sent the upload to another host over "
                     "plain http (%.200s); refused: a push goes to the registry named, or to storage it names over https",
                     l->digest, p->base, put);
    nk_http_resp_free(&r);
    if (!st) st = registry_do(p, "PUT", put, "Content-Type: application/octet-stream", m.size ? (const void *)m.data : "",
                              m.size, 0, 0, &r, err);
    if (!st && r.status != 201 && r.status != 200 && r.status != 204)
        st = nk_fail(err, r.status == 400 ? NOOK_EFORMAT : NOOK_EIO, "uploading %s to %s: HTTP %ld%s%.200s", l->digest, p->base,
                     r.status, r.body ? ": " : "", r.body ? r.body : "");
    nk_http_resp_free(&r);
    nk_unmap(&m);
    if (st) return st;
    return report(p, p->status, l->digest, l->size, l->size) ? NOOK_OK : nk_fail(err, NOOK_EIO, "push cancelled");
}

static nook_status push_registry(puller *p, nook_error *err) {
    registry_base(p);
    nk_manifest m;
    char mp[4400];
    nook_status st = nk_store_read_manifest(p->s, &p->n, &m, mp, sizeof mp, err);
    if (st) return st;
    nk_map raw = { 0 };
    st = nk_map_file(mp, true, &raw, err);
    if (!report(p, "retrieving manifest", NULL, 0, 0)) st = nk_fail(err, NOOK_EIO, "push cancelled");
    for (int i = -1; i < m.n_layers && !st; i++) st = push_blob(p, i < 0 ? &m.config : &m.layers[i], err);
    char url[2400];
    if (!st && !report(p, "pushing manifest", NULL, 0, 0)) st = nk_fail(err, NOOK_EIO, "push cancelled");
    if (!st && !nk_pfmt(url, sizeof url, "%s/v2/%s/%s/manifests/%s", p->base, p->n.ns, p->n.model, p->n.tag))
        st = nk_fail(err, NOOK_EINVAL, "URL too long");
    if (!st) {
        nk_http_resp r;
        st = registry_do(p, "PUT", url, "Content-Type: " NK_MT_MANIFEST, raw.size ? (const void *)raw.data : "", raw.size,
                         0, 120000, &r, err);
        if (!st && r.status != 201 && r.status != 200 && r.status != 204)
            st = nk_fail(err, NOOK_EIO, "pushing the manifest of %s to %s: HTTP %ld%s%.200s",
                         p->disp, p->base, r.status, r.body ? ": " : "", r.body ? r.body : "");
        nk_http_resp_free(&r);
    }
    nk_unmap(&raw);
    nk_manifest_free(&m);
    return st;
}

/* The egress ledger (docs/privacy.md) records a push as carrying user content: the
 * model's files (its system prompt, messages, parameters) leave the machine. */
static nook_status ledger_push(const char *url, const char *what, nook_error *err) {
    nk_ledger *l = NULL;
    nook_status st = nk_ledger_open(NULL, &l, err);
    if (st) return st;
    json_t *f = json_pack("{s:s, s:s, s:b}", "url", url, "what", what, "user_content", 1);
    st = f ? nk_ledger_append(l, "push", f, NULL, err) : nk_fail(err, NOOK_ENOMEM, "out of memory");
    json_decref(f);
    nk_ledger_close(l);
    return st;
}

nook_status nk_push(nk_store *s, const char *name, const nk_pull_opts *o, nook_error *err) {
    static const nk_pull_opts defaults = { 0 };
    const char *allow = envs("NOOK_ALLOW_PUSH");
    if (!allow || strcmp(allow, "1") != 0)
        return nk_fail(err, NOOK_EUNSUPPORTED, "push is off: it uploads the model's files to a registry; set NOOK_ALLOW_PUSH=1 to enable it");
    puller *p = nk_calloc(1, sizeof *p);
    if (!p) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    p->s = s;
    p->o = o ? o : &defaults;
    p->purpose = "push";
    nook_status st = nk_name_parse(name, &p->n, err);
    if (!st && (nk_name_is_hf(&p->n) || p->n.digest[0]))
        st = nk_fail(err, NOOK_EINVAL, "push %s: give a registry name (host/namespace/model:tag), not a Hugging Face name or a digest", name);
    if (st) { nk_free(p); return st; }
    nk_name_display(&p->n, p->disp, sizeof p->disp);
    char where[400];
    nk_pfmt(where, sizeof where, "%s://%s/", p->n.scheme[0] ? p->n.scheme : "https", p->n.host);
    if ((st = ledger_push(where, p->disp, err))) { nk_free(p); return st; }
    int lock = nk_store_lock_shared(s);   /* rm's gc stays off the blobs being read */
    st = push_registry(p, err);
    if (st) nk_prefix(err, "push %s: ", p->disp);
    else report(p, "success", NULL, 0, 0);
    nk_store_unlock(lock);
    nk_free(p);
    return st;
}

/*
 * name.c: model names as Ollama parses them ([scheme://][host/][namespace/]model[:tag]
 * [@digest]) and the strict patterns that keep every part a single safe path component.
 */
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool alnum_(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* first char [A-Za-z0-9_], the rest from alnum_ or extra; 1..max bytes */
static bool part_ok(const char *s, size_t len, size_t max, const char *extra) {
    if (len == 0 || len > max || !alnum_(s[0])) return false;
    for (size_t i = 1; i < len; i++)
        if (!alnum_(s[i]) && !strchr(extra, s[i])) return false;
    return true;
}

bool nk_digest_valid(const char *d) {
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71) return false;
    for (int i = 7; i < 71; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f'))) return false;
    return true;
}

static nook_status put(char *dst, size_t cap, const char *s, size_t len, size_t max, const char *extra,
                       const char *what, const char *full, nook_error *err) {
    if (!part_ok(s, len, max, extra) || len >= cap)
        return nk_fail(err, NOOK_EINVAL,
                       "invalid model name '%.200s': the %s '%.*s' must be 1-%zu characters of "
                       "letters, digits, '_'%s%s, starting with a letter, digit or '_'",
                       full, what, (int)NK_MIN(len, 100), s, max, extra[0] ? " and " : "", extra);
    memcpy(dst, s, len);
    dst[len] = 0;
    return NOOK_OK;
}

nook_status nk_name_parse(const char *s, nk_name *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    if (!s || !*s) return nk_fail(err, NOOK_EINVAL, "empty model name");
    size_t len = strnlen(s, 1024);
    if (len >= 1024) return nk_fail(err, NOOK_EINVAL, "model name too long");
    char buf[1024];
    memcpy(buf, s, len + 1);
    nook_status st;

    char *at = strrchr(buf, '@');
    if (at) {
        *at = 0;
        if (!nk_digest_valid(at + 1))
            return nk_fail(err, NOOK_EINVAL, "invalid model name '%.200s': the digest after '@' must be sha256:<64 lowercase hex>", s);
        snprintf(out->digest, sizeof out->digest, "%s", at + 1);
    }
    char *p = buf;
    char *sch = strstr(p, "://");
    if (sch) {
        size_t sl = (size_t)(sch - p);
        if (!((sl == 4 && strncasecmp(p, "http", 4) == 0) || (sl == 5 && strncasecmp(p, "https", 5) == 0)))
            return nk_fail(err, NOOK_EINVAL, "invalid model name '%.200s': scheme must be http or https", s);
        for (size_t i = 0; i < sl; i++) out->scheme[i] = (char)(p[i] | 0x20);
        p = sch + 3;
    }
    /* the tag: after the last ':' that follows the last '/' (a host may carry a port) */
    char *slash = strrchr(p, '/');
    char *colon = strrchr(slash ? slash : p, ':');
    const char *tag = NK_DEFAULT_TAG;
    if (colon) { *colon = 0; tag = colon + 1; }
    /* split the rest from the right: model, namespace, host */
    char *parts[4];
    int np = 0;
    char *q = p;
    for (;;) {
        if (np == 4) return nk_fail(err, NOOK_EINVAL, "invalid model name '%.200s': too many '/' parts", s);
        parts[np++] = q;
        char *sl = strchr(q, '/');
        if (!sl) break;
        *sl = 0;
        q = sl + 1;
    }
    if (np > 3) return nk_fail(err, NOOK_EINVAL, "invalid model name '%.200s': expected [host/][namespace/]model[:tag]", s);
    const char *host = NK_DEFAULT_HOST, *ns = NK_DEFAULT_NS, *model = parts[np - 1];
    if (np >= 2) ns = parts[np - 2];
    if (np == 3) host = parts[0];
    if (sch && np < 3) return nk_fail(err, NOOK_EINVAL, "invalid model name '%.200s': a scheme needs a host", s);
    if ((st = put(out->host, sizeof out->host, host, strlen(host), 350, "-_.:", "host", s, err))) return st;
    if ((st = put(out->ns, sizeof out->ns, ns, strlen(ns), 80, "-_", "namespace", s, err))) return st;
    if ((st = put(out->model, sizeof out->model, model, strlen(model), 80, "-_.", "model", s, err))) return st;
    if ((st = put(out->tag, sizeof out->tag, tag, strlen(tag), 80, "-_.", "tag", s, err))) return st;
    return NOOK_OK;
}

bool nk_name_is_hf(const nk_name *n) {
    return strcasecmp(n->host, "hf.co") == 0 || strcasecmp(n->host, "huggingface.co") == 0;
}

void nk_name_display(const nk_name *n, char *buf, size_t cap) {
    if (strcasecmp(n->host, NK_DEFAULT_HOST) == 0 && strcasecmp(n->ns, NK_DEFAULT_NS) == 0)
        snprintf(buf, cap, "%s:%s", n->model, n->tag);
    else if (strcasecmp(n->host, NK_DEFAULT_HOST) == 0)
        snprintf(buf, cap, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

/*
 * config.c: the server's configuration from the environment, and the small parsers
 * and policies it needs: NOOK_HOST (Ollama's OLLAMA_HOST syntax), Go-style durations
 * (keep_alive, NOOK_KEEP_ALIVE), CORS origins, the Host-header check and the API key.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- NOOK_HOST --------------------------------------------------------------------- */

nook_status srv_parse_host(const char *s, char *host, size_t cap, int *port, nook_error *err) {
    /* Ollama's envconfig.Host: scheme://host:port/path, each part optional. */
    char buf[512];
    if (!s) s = "";
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= sizeof buf) return nk_fail(err, NOOK_EINVAL, "NOOK_HOST is too long");
    memcpy(buf, s, n);
    buf[n] = 0;
    int defport = 11434;
    char *hp = buf;
    char *sep = strstr(buf, "://");
    if (sep) {
        *sep = 0;
        if (strcasecmp(buf, "http") == 0) defport = 80;
        else if (strcasecmp(buf, "https") == 0) defport = 443;
        else return nk_fail(err, NOOK_EINVAL, "NOOK_HOST: unsupported scheme '%s' (http or https)", buf);
        hp = sep + 3;
    }
    char *slash = strchr(hp, '/');
    if (slash) *slash = 0;
    const char *h = "127.0.0.1";
    int p = defport;
    /* host:port split as Go's net.SplitHostPort: [v6]:port, or exactly one colon. */
    char *colon = NULL;
    if (hp[0] == '[') {
        char *close = strchr(hp, ']');
        if (close && close[1] == ':') { *close = 0; colon = close + 1; h = hp + 1; }
        else if (close && close[1] == 0) { *close = 0; h = hp + 1; }
        else return nk_fail(err, NOOK_EINVAL, "NOOK_HOST: malformed address '%s'", s);
    } else {
        char *c1 = strchr(hp, ':');
        if (c1 && !strchr(c1 + 1, ':')) { colon = c1; *colon = 0; h = hp; }
        else if (hp[0]) h = hp;   /* a bare host or a bare IPv6 address */
    }
    if (colon) {
        const char *ps = colon + 1;
        char *end;
        errno = 0;
        long v = strtol(ps, &end, 10);
        if (ps[0] && *end == 0 && errno == 0 && v >= 0 && v <= 65535) p = (int)v;
        /* else: Ollama falls back to the default port */
    }
    if (h[0] == 0) h = "0.0.0.0";    /* ":8080" listens on every interface */
    if (strlen(h) >= cap) return nk_fail(err, NOOK_EINVAL, "NOOK_HOST: host name too long");
    strcpy(host, h);
    *port = p;
    return NOOK_OK;
}

/* ---- durations -------------------------------------------------------------------------- */

nook_status srv_parse_duration(const char *s, int64_t *ns, nook_error *err) {
    if (!s || !*s) return nk_fail(err, NOOK_EINVAL, "empty duration");
    /* A plain number is seconds (Ollama accepts "300" and 300). */
    char *end;
    errno = 0;
    double secs = strtod(s, &end);
    if (end != s && *end == 0 && isfinite(secs)) {
        double v = secs * 1e9;
        *ns = v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? -INT64_MAX : (int64_t)v;
        return NOOK_OK;
    }
    const char *p = s;
    int sign = 1;
    if (*p == '-' || *p == '+') { sign = *p == '-' ? -1 : 1; p++; }
    if (strcmp(p, "0") == 0) { *ns = 0; return NOOK_OK; }
    double total = 0;
    if (!*p) goto bad;
    while (*p) {
        if (!(isdigit((unsigned char)*p) || *p == '.')) goto bad;
        double v = strtod(p, &end);
        if (end == p) goto bad;
        p = end;
        static const struct { const char *u; double mul; } k_units[] = {
            { "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "\xce\xbcs", 1e3 },
            { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
        };
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < NK_ARRAY_LEN(k_units); i++) {
            size_t l = strlen(k_units[i].u);
            if (strncmp(p, k_units[i].u, l) == 0 && l > best_len) { best = i; best_len = l; }
        }
        if (!best_len) goto bad;
        total += v * k_units[best].mul;
        p += best_len;
    }
    total *= sign;
    *ns = total >= 9.2e18 ? INT64_MAX : total <= -9.2e18 ? -INT64_MAX : (int64_t)total;
    return NOOK_OK;
bad:
    return nk_fail(err, NOOK_EINVAL, "invalid duration '%.64s' (e.g. \"5m\", \"1h30m\", \"-1\", 300)", s);
}

/* ---- origins ---------------------------------------------------------------------------- */

/* Glob with '*' only (gin-contrib/cors's wildcard), case-insensitive. */
static bool wild_match(const char *pat, size_t plen, const char *s) {
    size_t slen = strlen(s);
    size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') { star_p = pi++; star_s = si; }
        else if (pi < plen && tolower((unsigned char)pat[pi]) == tolower((unsigned char)s[si])) { pi++; si++; }
        else if (star_p != (size_t)-1) { pi = star_p + 1; si = ++star_s; }
        else return false;
    }
    while (pi < plen && pat[pi] == '*') pi++;
    return pi == plen;
}

static bool list_match(const char *list, const char *origin) {
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l && isspace((unsigned char)*p)) { p++; l--; }
        while (l && isspace((unsigned char)p[l - 1])) l--;
        if (l && wild_match(p, l, origin)) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

bool srv_origin_allowed(const srv_config *c, const char *origin) {
    /* Ollama's envconfig.AllowedOrigins defaults. */
    static const char *k_default =
        "http://localhost,https://localhost,http://localhost:*,https://localhost:*,"
        "http://127.0.0.1,https://127.0.0.1,http://127.0.0.1:*,https://127.0.0.1:*,"
        "http://0.0.0.0,https://0.0.0.0,http://0.0.0.0:*,https://0.0.0.0:*,"
        "app://*,file://*,tauri://*,vscode-webview://*,vscode-file://*";
    if (!origin) return true;
    if (c->origins && list_match(c->origins, origin)) return true;
    return list_match(k_default, origin);
}

/* ---- Host header ------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

bool srv_host_allowed(const srv_config *c, const char *host_header) {
    if (!c->host_is_loopback) return true;   /* Ollama: the check guards loopback binds only */
    if (!host_header || !*host_header) return true;   /* HTTP/1.0 without Host: not a browser */
    char h[300];
    size_t n = strlen(host_header);
    if (n >= sizeof h) return false;
    memcpy(h, host_header, n + 1);
    /* strip the port: "[::1]:11434", "localhost:11434" */
    if (h[0] == '[') {
        char *close = strchr(h, ']');
        if (!close) return false;
        *close = 0;
        memmove(h, h + 1, strlen(h + 1) + 1);
    } else {
        char *colon = strchr(h, ':');
        if (colon && !strchr(colon + 1, ':')) *colon = 0;
    }
    if (strcasecmp(h, "localhost") == 0) return true;
    if (ends_with(h, ".localhost") || ends_with(h, ".local") || ends_with(h, ".internal")) return true;
    if (strcasecmp(h, c->host) == 0) return true;
    char hn[256];
    if (gethostname(hn, sizeof hn) == 0) {
        hn[sizeof hn - 1] = 0;
        if (strcasecmp(h, hn) == 0) return true;
    }
    unsigned char a[16];
    if (inet_pton(AF_INET, h, a) == 1) {
        return a[0] == 127 || a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
               (a[0] == 192 && a[1] == 168) || (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) ||
               (a[0] == 169 && a[1] == 254);
    }
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char zero[16];
        bool lo = memcmp(a, zero, 15) == 0 && (a[15] == 1 || a[15] == 0);  /* ::1, :: */
        bool ula = (a[0] & 0xfe) == 0xfc;                                  /* fc00::/7 */
        bool ll = a[0] == 0xfe && (a[1] & 0xc0) == 0x80;                   /* fe80::/10 */
        return lo || ula || ll;
    }
    return false;
}

/* ---- API key ------------------------------------------------------------------------------ */

bool srv_auth_ok(const char *key, const char *authorization) {
    if (!key) return true;
    if (!authorization) return false;
    const char *p = authorization;
    if (strncasecmp(p, "Bearer", 6) != 0) return false;
    p += 6;
    while (*p == ' ') p++;
    return srv_key_ok(key, p);
}

bool srv_key_ok(const char *key, const char *p) {
    if (!key) return true;
    if (!p) return false;
    /* Compare digests so neither the key's length nor a matching prefix shows in timing. */
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), a);
    SHA256((const unsigned char *)p, strlen(p), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

/* ---- JSON depth --------------------------------------------------------------------------- */

int srv_json_depth(const char *text, size_t len, int limit) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_str) {
            if (ch == '\\') i++;
            else if (ch == '"') in_str = false;
            continue;
        }
        if (ch == '"') in_str = true;
        else if (ch == '[' || ch == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) return limit + 1;
            }
        } else if ((ch == ']' || ch == '}') && depth > 0) depth--;
    }
    return max;
}

/* ---- environment ---------------------------------------------------------------------------- */

static nook_status env_int(const char *name, int *dst, long lo, long hi, nook_error *err) {
    const char *v = getenv(name);
    if (!v || !*v) return NOOK_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end || errno || x < lo || x > hi)
        return nk_fail(err, NOOK_EINVAL, "%s: '%.64s' is not an integer in [%ld, %ld]", name, v, lo, hi);
    *dst = (int)x;
    return NOOK_OK;
}

/* NOOK_X, else OLLAMA_X (so an existing Ollama setup carries over). */
static const char *env2(const char *nook, const char *ollama) {
    const char *v = getenv(nook);
    if (v && *v) return v;
    v = getenv(ollama);
    return v && *v ? v : NULL;
}

static bool is_loopback_bind(const char *h) {
    unsigned char a[16];
    if (strcasecmp(h, "localhost") == 0) return true;
    if (inet_pton(AF_INET, h, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char lo[16] = { [15] = 1 };
        return memcmp(a, lo, 16) == 0;
    }
    return false;
}

nook_status srv_config_from_env(srv_config *c, nook_error *err) {
    memset(c, 0, sizeof *c);
    c->max_body = 32u << 20;
    c->max_header = 64u << 10;
    c->max_json_depth = 128;
    c->max_messages = 4096;
    c->max_connections = 256;
    c->timeout_s = 30;
    c->max_queue = 512;
    c->keep_alive_ns = 5LL * 60 * 1000000000LL;
    strcpy(c->kv_cache_type, "f16");

    nook_status st = srv_parse_host(env2("NOOK_HOST", "OLLAMA_HOST"), c->host, sizeof c->host, &c->port, err);
    if (st) return st;
    c->host_is_loopback = is_loopback_bind(c->host);
    const char *o = env2("NOOK_ORIGINS", "OLLAMA_ORIGINS");
    if (o && !(c->origins = nk_strdup(o))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    const char *k = getenv("NOOK_API_KEY");
    if (k && *k && !(c->api_key = nk_strdup(k))) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if ((st = env_int("NOOK_NUM_PARALLEL", &c->num_parallel, 0, 256, err)) ||
        (st = env_int("NOOK_MAX_QUEUE", &c->max_queue, 0, 1 << 20, err)) ||
        (st = env_int("NOOK_MAX_LOADED_MODELS", &c->max_loaded, 0, 1024, err)) ||
        (st = env_int("NOOK_CONTEXT_LENGTH", &c->context_length, 0, 1 << 24, err)) ||
        (st = env_int("NOOK_MAX_CONNECTIONS", &c->max_connections, 1, 100000, err)) ||
        (st = env_int("NOOK_HTTP_TIMEOUT", &c->timeout_s, 1, 86400, err)))
        return st;
    const char *ka = getenv("NOOK_KEEP_ALIVE");
    if (ka && *ka) {
        if ((st = srv_parse_duration(ka, &c->keep_alive_ns, err))) {
            nk_prefix(err, "NOOK_KEEP_ALIVE: ");
            return st;
        }
    }
    const char *kv = getenv("NOOK_KV_CACHE_TYPE");
    if (kv && *kv) {
        if (strcmp(kv, "f16") && strcmp(kv, "q8_0") && strcmp(kv, "q4_0") && strcmp(kv, "f32"))
            return nk_fail(err, NOOK_EINVAL, "NOOK_KV_CACHE_TYPE: '%.32s' is not one of f16, q8_0, q4_0, f32", kv);
        strcpy(c->kv_cache_type, kv);
    }
    return NOOK_OK;
}

void srv_config_clear(srv_config *c) {
    nk_free(c->origins);
    nk_free(c->api_key);
    c->origins = c->api_key = NULL;
}

/*
 * redact.c: the detectors, the placeholder map and restoration (contract in redact.h).
 *
 * Each detector is a PCRE2 pattern that finds candidates, plus (for numbers and
 * addresses) a validator in C that checks what a pattern cannot: Luhn for cards,
 * ISO 13616 mod-97 for IBANs, octet ranges for IPv4, inet_pton for IPv6, the digit
 * count and shape for phone numbers. A candidate that fails its validator is left as
 * it is (a 16-digit number failing Luhn is not a card). The patterns are compiled once
 * per process (JIT where available) and never change.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "router/redact.h"

#include <arpa/inet.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_type_names[NK_RED_NTYPES] = {
    "EMAIL", "PHONE", "IBAN", "CARD", "IP", "URL", "PATH", "KEY", "PRIVATE",
};

const char *nk_redact_type_name(nk_redact_type t) {
    return (unsigned)t < NK_RED_NTYPES ? k_type_names[t] : "?";
}

/* ---- patterns ------------------------------------------------------------------------ */

enum { V_NONE, V_PHONE, V_IBAN, V_CARD, V_IPV4, V_IPV6, V_URL, V_PATH };

#define SEG "[^\\s/'\"<>|*?`]+"
#define WSEG "[^\\s\\\\/:*?\"<>|`]+"
static const struct det {
    nk_redact_type type;
    int validator;
    const char *pattern;
} k_dets[] = {
    { NK_RED_EMAIL, V_NONE,
      "(?<![A-Za-z0-9._%+\\x80-\\xff-])[A-Za-z0-9\\x80-\\xff][A-Za-z0-9._%+\\x80-\\xff-]*@"
      "[A-Za-z0-9\\x80-\\xff](?:[A-Za-z0-9\\x80-\\xff-]*[A-Za-z0-9\\x80-\\xff])?"
      "(?:\\.[A-Za-z0-9\\x80-\\xff](?:[A-Za-z0-9\\x80-\\xff-]*[A-Za-z0-9\\x80-\\xff])?)*"
      "\\.[A-Za-z]{2,63}(?![A-Za-z0-9-])" },
    /* international (+CC ...), a parenthesised area code, or plain digit groups */
    { NK_RED_PHONE, V_PHONE,
      "(?<![\\w+])\\+[1-9]\\d{0,2}(?:[ .-]?(?:\\(\\d{1,4}\\)|\\d{1,5})){1,6}(?!\\w)"
      "|(?<![\\w+(])\\(\\d{2,5}\\)[ .-]?\\d{2,4}(?:[ .-]?\\d{2,5}){1,3}(?!\\w)"
      "|(?<![\\w+.\\-/])(?<!\\d[ .-])\\d{2,5}(?:[ .-]\\d{2,8}){1,4}(?![\\w/]|[.-]\\d)" },
    { NK_RED_IBAN, V_IBAN, "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])" },
    { NK_RED_CARD, V_CARD, "(?<![\\d.,-])\\d(?:[ -]?\\d){12,18}(?!\\d)" },
    { NK_RED_IP, V_IPV4, "(?<![\\w.])(?:\\d{1,3}\\.){3}\\d{1,3}(?!\\.?\\w)" },
    { NK_RED_IP, V_IPV6, "(?<![\\w:.])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?:\\d{1,3}(?:\\.\\d{1,3}){3})?(?![\\w.])" },
    { NK_RED_URL, V_URL,
      "(?<![\\w])[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\\s/?#@\\[\\]<>\"']+@[^\\s<>\"'`]+" },
    /* home paths, absolute paths of 2+ components, Windows drive paths; a component may
     * hold up to three single spaces when another component follows it */
    { NK_RED_PATH, V_PATH,
      "(?<![\\w.:/~\\\\-])(?:~[A-Za-z0-9._-]*/(?:" SEG "(?: (?!~)" SEG "){0,3}/)*(?:" SEG ")?"
      "|/(?:" SEG "(?: (?!~)" SEG "){0,3}/)+(?:" SEG ")?"
      "|[A-Za-z]:\\\\(?:" WSEG "(?: " WSEG "){0,3}\\\\)*(?:" WSEG ")?)" },
    { NK_RED_KEY, V_NONE,
      "(?<![A-Za-z0-9_-])(?:sk-(?:proj-|ant-(?:api\\d\\d-)?)?[A-Za-z0-9_-]{20,}"
      "|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
      "|AIza[0-9A-Za-z_-]{35}|xox[abposr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,}"
      "|hf_[A-Za-z0-9]{30,}|[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"
      "|eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,})(?![A-Za-z0-9_-])"
      "|-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[\\s\\S]{1,16384}?-----END [A-Z ]{0,20}PRIVATE KEY-----"
      "|(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{16,}"
      "|(?i:(?<![a-z0-9])(?:api[_-]?key|access[_-]?token|auth[_-]?token|token|secret|client[_-]?secret"
      "|password|passwd|pwd)[\"']?\\s{0,3}[:=]\\s{0,3}[\"']?)\\K[^\\s\"'&,;<>]{6,}" },
};
#undef SEG
#undef WSEG
#define N_DETS NK_ARRAY_LEN(k_dets)

static pcre2_code *g_code[N_DETS];
static pcre2_code *g_ph;   /* placeholder shape */
static bool g_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static pcre2_code *compile(const char *pat) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (c) (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);   /* JIT is optional */
    return c;
}

static void compile_all(void) {
    g_ok = true;
    for (size_t i = 0; i < N_DETS; i++)
        if (!(g_code[i] = compile(k_dets[i].pattern))) g_ok = false;
    if (!(g_ph = compile("\\[([A-Z]{2,10})_([1-9][0-9]{0,8})\\]"))) g_ok = false;
}

/* ---- validators ---------------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool nk_luhn_ok(const char *s, size_t len) {
    int sum = 0, n = 0;
    for (size_t i = len; i-- > 0;) {
        if (!is_digit(s[i])) continue;
        int d = s[i] - '0';
        if (n++ & 1) { d *= 2; if (d > 9) d -= 9; }
        sum += d;
    }
    return n > 0 && sum % 10 == 0;
}

bool nk_iban_ok(const char *s, size_t len) {
    char buf[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (n == sizeof buf) return false;
        buf[n++] = s[i];
    }
    if (n < 15 || n > 34) return false;
    /* move the first four characters to the end, letters as 10..35, remainder mod 97 */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = buf[(k + 4) % n];
        if (is_digit(c)) rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else if (c >= 'A' && c <= 'Z') rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
        else return false;
    }
    return rem == 1;
}

static size_t count_digits(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += is_digit(s[i]);
    return n;
}

/* The separators between digit groups are all the same character (or absent). */
static bool uniform_separators(const char *s, size_t len) {
    char sep = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_digit(s[i])) continue;
        if (sep && s[i] != sep) return false;
        sep = s[i];
    }
    return true;
}

static bool phone_ok(const char *s, size_t len) {
    size_t nd = count_digits(s, len);
    if (s[0] == '+' || s[0] == '(') return nd >= 7 && nd <= 15;
    /* plain groups: a national number with a leading 0 (030 1234567, 06-12345678) or the
     * North American 3-3-4 shape; dates, amounts and versions have other shapes */
    if (nd < 9 || nd > 12 || !uniform_separators(s, len)) return false;
    if (s[0] == '0') return true;
    int glen[8], ng = 0, cur = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && is_digit(s[i])) { cur++; continue; }
        if (ng == 8) return false;
        glen[ng++] = cur;
        cur = 0;
    }
    return ng == 3 && glen[0] == 3 && glen[1] == 3 && glen[2] == 4;
}

static bool ipv4_ok(const char *s, size_t len) {
    int v = 0, nd = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (nd == 0 || v > 255) return false;
            v = 0; nd = 0;
        } else {
            v = v * 10 + (s[i] - '0');
            nd++;
        }
    }
    return true;
}

static bool ipv6_ok(const char *s, size_t len) {
    char buf[64];
    if (len < 3 || len >= sizeof buf) return false;
    size_t colons = 0, hex = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':') colons++;
        else hex++;
    }
    if (colons < 2 || hex == 0) return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    unsigned char addr[16];
    return inet_pton(AF_INET6, buf, addr) == 1;
}

/* Sentence punctuation after a URL or path is not part of it. */
static size_t trim_trailing(const char *s, size_t b, size_t e) {
    while (e > b && strchr(".,;:!?)]}'\"", s[e - 1])) e--;
    return e;
}

/* Adjusts [*b, *e) for the validator; false rejects the candidate. */
static bool validate(int v, const char *s, size_t len, size_t *b, size_t *e) {
    const char *p = s + *b;
    size_t n = *e - *b;
    switch (v) {
    case V_NONE: return n > 0;
    case V_PHONE: return phone_ok(p, n);
    case V_IPV4: return ipv4_ok(p, n);
    case V_IPV6:
        if (n >= 2 && p[n - 1] == ':' && p[n - 2] != ':') { n--; *e -= 1; }
        return ipv6_ok(p, n);
    case V_URL: *e = trim_trailing(s, *b, *e); return *e > *b;
    case V_PATH: {
        /* a quoted path may hold spaces anywhere: take it to the closing quote */
        if (*b > 0 && (s[*b - 1] == '"' || s[*b - 1] == '\'')) {
            char q = s[*b - 1];
            for (size_t i = *b; i < len && i < *b + 4096 && s[i] != '\n'; i++)
                if (s[i] == q) { *e = i; return *e > *b + 1; }
        }
        *e = trim_trailing(s, *b, *e);
        /* a bare "/" or "~/" is no path */
        return *e > *b + 2 || (*e == *b + 2 && s[*b] == '~');
    }
    case V_CARD:
    case V_IBAN: {
        /* the pattern is greedy: try the whole candidate, then shorter ones ending
         * before a separator, so "DE89 3704 ... 00 AND" or a trailing year still works */
        for (size_t end = *e; end > *b; end--) {
            if (end < *e && s[end] != ' ' && s[end] != '-') continue;
            size_t m = end - *b;
            bool ok = v == V_CARD
                ? (count_digits(p, m) >= 13 && count_digits(p, m) <= 19 && uniform_separators(p, m) &&
                   nk_luhn_ok(p, m))
                : nk_iban_ok(p, m);
            if (ok) { *e = end; return true; }
        }
        return false;
    }
    }
    return false;
}

/* ---- the redactor ------------------------------------------------------------------- */

typedef struct entry {
    nk_redact_type type;
    unsigned n;
    char *orig;
    size_t len;
} entry;

typedef struct reserved { nk_redact_type type; unsigned n; } reserved;

struct nk_redactor {
    char **deny;
    size_t *deny_len;
    size_t n_deny;
    entry *ents;
    size_t n_ents, cap_ents;
    reserved *res;
    size_t n_res, cap_res;
    unsigned next[NK_RED_NTYPES];
    size_t count[NK_RED_NTYPES];
};

nook_status nk_redactor_new(const char *const *deny, size_t n_deny, nk_redactor **out,
                            nook_error *err) {
    *out = NULL;
    pthread_once(&g_once, compile_all);
    if (!g_ok) return nk_fail(err, NOOK_EINTERNAL, "redaction: a detector pattern does not compile");
    nk_redactor *r = nk_calloc(1, sizeof *r);
    if (!r) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (n_deny) {
        r->deny = nk_calloc(n_deny, sizeof *r->deny);
        r->deny_len = nk_calloc(n_deny, sizeof *r->deny_len);
        if (!r->deny || !r->deny_len) goto oom;
        for (size_t i = 0; i < n_deny; i++) {
            if (!deny[i] || !deny[i][0]) continue;
            if (!(r->deny[r->n_deny] = nk_strdup(deny[i]))) goto oom;
            r->deny_len[r->n_deny++] = strlen(deny[i]);
        }
    }
    for (int t = 0; t < NK_RED_NTYPES; t++) r->next[t] = 1;
    *out = r;
    return NOOK_OK;
oom:
    nk_redactor_free(r);
    return nk_fail(err, NOOK_ENOMEM, "out of memory");
}

void nk_redactor_free(nk_redactor *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_deny; i++) nk_free(r->deny[i]);
    nk_free(r->deny);
    nk_free(r->deny_len);
    for (size_t i = 0; i < r->n_ents; i++) nk_free(r->ents[i].orig);
    nk_free(r->ents);
    nk_free(r->res);
    nk_free(r);
}

size_t nk_redactor_count(const nk_redactor *r, nk_redact_type t) {
    return r && (unsigned)t < NK_RED_NTYPES ? r->count[t] : 0;
}

size_t nk_redactor_total(const nk_redactor *r) {
    size_t n = 0;
    for (int t = 0; r && t < NK_RED_NTYPES; t++) n += r->count[t];
    return n;
}

static int type_by_name(const char *s, size_t n) {
    for (int t = 0; t < NK_RED_NTYPES; t++)
        if (strlen(k_type_names[t]) == n && memcmp(k_type_names[t], s, n) == 0) return t;
    return -1;
}

static bool is_reserved(const nk_redactor *r, nk_redact_type t, unsigned n) {
    for (size_t i = 0; i < r->n_res; i++)
        if (r->res[i].type == t && r->res[i].n == n) return true;
    return false;
}

/* Calls fn for every placeholder-shaped "[TYPE_N]" in text with a known TYPE. */
typedef bool (*ph_fn)(void *ctx, size_t b, size_t e, nk_redact_type t, unsigned n);
static nook_status scan_placeholders(const char *text, size_t len, ph_fn fn, void *ctx,
                                     nook_error *err) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(g_ph, NULL);
    if (!md) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status st = NOOK_OK;
    for (size_t off = 0; off < len;) {
        int rc = pcre2_match(g_ph, (PCRE2_SPTR)text, len, off, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int t = type_by_name(text + ov[2], ov[3] - ov[2]);
        if (t >= 0) {
            unsigned n = (unsigned)strtoul(text + ov[4], NULL, 10);
            if (!fn(ctx, ov[0], ov[1], (nk_redact_type)t, n)) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); break; }
        }
        off = ov[1];
    }
    pcre2_match_data_free(md);
    return st;
}

static bool add_reserved(void *ctx, size_t b, size_t e, nk_redact_type t, unsigned n) {
    nk_redactor *r = ctx;
    (void)b; (void)e;
    if (is_reserved(r, t, n)) return true;
    if (r->n_res == r->cap_res) {
        size_t cap = r->cap_res ? r->cap_res * 2 : 8;
        reserved *p = nk_realloc(r->res, cap * sizeof *p);
        if (!p) return false;
        r->res = p;
        r->cap_res = cap;
    }
    r->res[r->n_res++] = (reserved){ t, n };
    return true;
}

nook_status nk_redact_reserve(nk_redactor *r, const char *text, size_t len, nook_error *err) {
    return scan_placeholders(text, len, add_reserved, r, err);
}

/* The entry for this original, made (with the next free number) if new; NULL: OOM. */
static const entry *intern(nk_redactor *r, nk_redact_type t, const char *s, size_t len) {
    for (size_t i = 0; i < r->n_ents; i++)
        if (r->ents[i].type == t && r->ents[i].len == len && memcmp(r->ents[i].orig, s, len) == 0)
            return &r->ents[i];
    if (r->n_ents == r->cap_ents) {
        size_t cap = r->cap_ents ? r->cap_ents * 2 : 16;
        entry *p = nk_realloc(r->ents, cap * sizeof *p);
        if (!p) return NULL;
        r->ents = p;
        r->cap_ents = cap;
    }
    char *copy = nk_strndup(s, len);
    if (!copy) return NULL;
    while (is_reserved(r, t, r->next[t])) r->next[t]++;
    r->ents[r->n_ents] = (entry){ t, r->next[t]++, copy, len };
    r->count[t]++;
    return &r->ents[r->n_ents++];
}

typedef struct hit { size_t b, e; nk_redact_type type; } hit;
typedef struct hits { hit *v; size_t n, cap; } hits;

static bool push_hit(hits *h, size_t b, size_t e, nk_redact_type t) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        hit *p = nk_realloc(h->v, cap * sizeof *p);
        if (!p) return false;
        h->v = p;
        h->cap = cap;
    }
    h->v[h->n++] = (hit){ b, e, t };
    return true;
}

static int hit_cmp(const void *a, const void *b) {
    const hit *x = a, *y = b;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    size_t lx = x->e - x->b, ly = y->e - y->b;
    if (lx != ly) return lx > ly ? -1 : 1;
    return (int)x->type - (int)y->type;
}

static nook_status find_hits(const nk_redactor *r, const char *text, size_t len, hits *h,
                             nook_error *err) {
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    if (!md) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    for (size_t d = 0; d < N_DETS; d++) {
        for (size_t off = 0; off < len;) {
            int rc = pcre2_match(g_code[d], (PCRE2_SPTR)text, len, off, 0, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {   /* a match limit on hostile input: stop this detector, say so */
                pcre2_match_data_free(md);
                return nk_fail(err, NOOK_ERANGE, "redaction: the %s detector hit its match limit",
                               k_type_names[k_dets[d].type]);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t b = ov[0], e = ov[1];
            if (e <= b) { off = b + 1; continue; }   /* \K can make an empty match */
            if (validate(k_dets[d].validator, text, len, &b, &e)) {
                if (!push_hit(h, b, e, k_dets[d].type)) goto oom;
                off = ov[1] > off ? ov[1] : off + 1;
            } else {
                off = ov[0] + 1;   /* a shorter candidate may start inside this one */
            }
        }
    }
    pcre2_match_data_free(md);
    for (size_t i = 0; i < r->n_deny; i++) {
        const char *p = text, *end = text + len;
        while ((p = memmem(p, (size_t)(end - p), r->deny[i], r->deny_len[i]))) {
            if (!push_hit(h, (size_t)(p - text), (size_t)(p - text) + r->deny_len[i], NK_RED_PRIVATE))
                return nk_fail(err, NOOK_ENOMEM, "out of memory");
            p += r->deny_len[i];
        }
    }
    return NOOK_OK;
oom:
    pcre2_match_data_free(md);
    return nk_fail(err, NOOK_ENOMEM, "out of memory");
}

/* A growable output buffer. */
typedef struct obuf { char *p; size_t n, cap; bool oom; } obuf;
static void ob_put(obuf *o, const char *s, size_t n) {
    if (o->oom) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 64;
        while (cap < o->n + n + 1) cap *= 2;
        char *p = nk_realloc(o->p, cap);
        if (!p) { o->oom = true; return; }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = 0;
}

static nook_status ob_finish(obuf *o, char **out, size_t *out_len, nook_error *err) {
    ob_put(o, "", 0);
    if (o->oom) {
        nk_free(o->p);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    *out = o->p;
    if (out_len) *out_len = o->n;
    return NOOK_OK;
}

nook_status nk_redact(nk_redactor *r, const char *text, size_t len, char **out,
                      size_t *out_len, size_t *n_hits, nook_error *err) {
    *out = NULL;
    if (n_hits) *n_hits = 0;
    long bad = nk_utf8_invalid_at(text, len);
    if (bad >= 0) return nk_fail(err, NOOK_EINVAL, "redaction: invalid UTF-8 at byte %ld", bad);
    nook_status st = nk_redact_reserve(r, text, len, err);
    if (st) return st;
    hits h = { 0 };
    if ((st = find_hits(r, text, len, &h, err))) { nk_free(h.v); return st; }
    if (h.n) qsort(h.v, h.n, sizeof *h.v, hit_cmp);   /* h.v is NULL when nothing was found */
    obuf o = { 0 };
    size_t pos = 0, used = 0;
    for (size_t i = 0; i < h.n; i++) {
        if (h.v[i].b < pos) continue;   /* overlaps a span already taken */
        const entry *en = intern(r, h.v[i].type, text + h.v[i].b, h.v[i].e - h.v[i].b);
        if (!en) { o.oom = true; break; }
        char ph[32];
        int pn = snprintf(ph, sizeof ph, "[%s_%u]", k_type_names[en->type], en->n);
        ob_put(&o, text + pos, h.v[i].b - pos);
        ob_put(&o, ph, (size_t)pn);
        pos = h.v[i].e;
        used++;
    }
    ob_put(&o, text + pos, len - pos);
    nk_free(h.v);
    if ((st = ob_finish(&o, out, out_len, err))) return st;
    if (n_hits) *n_hits = used;
    return NOOK_OK;
}

typedef struct unred_ctx { const nk_redactor *r; const char *text; obuf o; size_t pos; } unred_ctx;

static bool put_original(void *ctx, size_t b, size_t e, nk_redact_type t, unsigned n) {
    unred_ctx *c = ctx;
    for (size_t i = 0; i < c->r->n_ents; i++) {
        const entry *en = &c->r->ents[i];
        if (en->type != t || en->n != n) continue;
        ob_put(&c->o, c->text + c->pos, b - c->pos);
        ob_put(&c->o, en->orig, en->len);
        c->pos = e;
        break;
    }
    return !c->o.oom;
}

nook_status nk_unredact(const nk_redactor *r, const char *text, size_t len, char **out,
                        size_t *out_len, nook_error *err) {
    *out = NULL;
    unred_ctx c = { .r = r, .text = text };
    nook_status st = scan_placeholders(text, len, put_original, &c, err);
    if (st) { nk_free(c.o.p); return st; }
    ob_put(&c.o, text + c.pos, len - c.pos);
    return ob_finish(&c.o, out, out_len, err);
}

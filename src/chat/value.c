/*
 * value.c: the value model of the template interpreter: an arena, strings, lists, dicts,
 * and Python's semantics for them (truthiness, ==, <, str(), repr(), json.dumps), since
 * jinja2 renders Python objects and a template's output depends on how Python prints.
 */
#include "chat/jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---------------------------------------------------------------------------- */
struct nk_jchunk {
    nk_jchunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define JA_CHUNK (64u << 10)

/* Allocation is bump-pointer in 64 KiB chunks; a request larger than a chunk gets its own.
 * The budget counts every byte requested from the system, so total memory is bounded. */
void *nk_ja_alloc(nk_jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    nk_jchunk *h = a->head;
    if (h && h->cap - h->used >= n) {
        void *p = h->data + h->used;
        h->used += n;
        memset(p, 0, n);
        return p;
    }
    size_t cap = n > JA_CHUNK / 2 ? n : JA_CHUNK;
    size_t want = sizeof(nk_jchunk) + cap;
    a->oom = false;
    if (want < cap || a->total + want > a->limit) return NULL;
    nk_jchunk *c = nk_malloc(want);
    if (!c) {
        a->oom = true;
        return NULL;
    }
    a->total += want;
    c->cap = cap;
    c->used = n;
    if (h && cap != JA_CHUNK) {      /* keep the current chunk's free tail in front */
        c->next = h->next;
        h->next = c;
    } else {
        c->next = h;
        a->head = c;
    }
    memset(c->data, 0, n);
    return c->data;
}

void nk_ja_free(nk_jarena *a) {
    nk_jchunk *c = a->head;
    while (c) { nk_jchunk *n = c->next; nk_free(c); c = n; }
    a->head = NULL;
    a->total = 0;
}

nook_status nk_jfail(nk_jctx *c, nook_status code, int line, const char *fmt, ...) {
    if (c->err && c->err->code != NOOK_OK) return c->err->code;   /* keep the first error */
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) nk_fail(c->err, code, "%s at line %d", msg, line);
    else nk_fail(c->err, code, "%s", msg);
    return code;
}

void *nk_jalloc(nk_jctx *c, size_t n) {
    void *p = nk_ja_alloc(&c->arena, n);
    if (!p && c->arena.oom) nk_jfail(c, NOOK_ENOMEM, 0, "out of memory");
    else if (!p) nk_jfail(c, NOOK_ERANGE, 0, "template memory limit (%zu bytes) exceeded", c->arena.limit);
    return p;
}

nk_jstr *nk_jstr_new(nk_jctx *c, const char *s, size_t len) {
    if (len > SIZE_MAX / 2) { nk_jfail(c, NOOK_ERANGE, 0, "string too long"); return NULL; }
    nk_jstr *r = nk_jalloc(c, sizeof(nk_jstr) + len + 1);
    if (!r) return NULL;
    r->len = len;
    if (len) memcpy(r->s, s, len);
    r->s[len] = 0;
    return r;
}

nk_jstr *nk_jstr_cat(nk_jctx *c, const char *a, size_t na, const char *b, size_t nb) {
    if (na > SIZE_MAX / 4 || nb > SIZE_MAX / 4) { nk_jfail(c, NOOK_ERANGE, 0, "string too long"); return NULL; }
    nk_jstr *r = nk_jalloc(c, sizeof(nk_jstr) + na + nb + 1);
    if (!r) return NULL;
    r->len = na + nb;
    if (na) memcpy(r->s, a, na);
    if (nb) memcpy(r->s + na, b, nb);
    r->s[na + nb] = 0;
    return r;
}

nk_jlist *nk_jlist_new(nk_jctx *c, size_t cap) {
    nk_jlist *l = nk_jalloc(c, sizeof *l);
    if (!l) return NULL;
    if (cap) {
        if (cap > SIZE_MAX / sizeof(nk_jv) / 2) { nk_jfail(c, NOOK_ERANGE, 0, "list too long"); return NULL; }
        l->v = nk_jalloc(c, cap * sizeof(nk_jv));
        if (!l->v) return NULL;
        l->cap = cap;
    }
    return l;
}

int nk_jlist_push(nk_jctx *c, nk_jlist *l, nk_jv v) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        if (nc > SIZE_MAX / sizeof(nk_jv) / 2) return nk_jfail(c, NOOK_ERANGE, 0, "list too long"), -1;
        nk_jv *nv = nk_jalloc(c, nc * sizeof(nk_jv));
        if (!nv) return -1;
        if (l->n) memcpy(nv, l->v, l->n * sizeof(nk_jv));
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
    return 0;
}

nk_jdict *nk_jdict_new(nk_jctx *c, size_t cap) {
    nk_jdict *d = nk_jalloc(c, sizeof *d);
    if (!d) return NULL;
    if (cap) {
        if (cap > SIZE_MAX / sizeof(nk_jv) / 2) { nk_jfail(c, NOOK_ERANGE, 0, "dict too large"); return NULL; }
        d->k = nk_jalloc(c, cap * sizeof(*d->k));
        d->v = nk_jalloc(c, cap * sizeof(nk_jv));
        if (!d->k || !d->v) return NULL;
        d->cap = cap;
    }
    return d;
}

const nk_jv *nk_jdict_get(const nk_jdict *d, const char *k, size_t klen) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->len == klen && memcmp(d->k[i]->s, k, klen) == 0) return &d->v[i];
    return NULL;
}

/* Insert or replace; a new key goes last (Python dicts keep insertion order). */
int nk_jdict_set(nk_jctx *c, nk_jdict *d, const nk_jstr *k, nk_jv v) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->len == k->len && memcmp(d->k[i]->s, k->s, k->len) == 0) { d->v[i] = v; return 0; }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        if (nc > SIZE_MAX / sizeof(nk_jv) / 2) return nk_jfail(c, NOOK_ERANGE, 0, "dict too large"), -1;
        const nk_jstr **nk = nk_jalloc(c, nc * sizeof(*nk));
        nk_jv *nv = nk_jalloc(c, nc * sizeof(nk_jv));
        if (!nk || !nv) return -1;
        if (d->n) { memcpy(nk, d->k, d->n * sizeof(*nk)); memcpy(nv, d->v, d->n * sizeof(nk_jv)); }
        d->k = nk; d->v = nv; d->cap = nc;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
    return 0;
}

/* ---- string builder ---------------------------------------------------------------------- */
int nk_jbuf_put(nk_jctx *c, nk_jbuf *b, const char *s, size_t n) {
    if (n == 0) return 0;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1) {
            if (nc > SIZE_MAX / 4) return nk_jfail(c, NOOK_ERANGE, 0, "string too long"), -1;
            nc *= 2;
        }
        char *np = nk_jalloc(c, nc);
        if (!np) return -1;
        if (b->len) memcpy(np, b->p, b->len);
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

nk_jstr *nk_jbuf_str(nk_jctx *c, nk_jbuf *b) { return nk_jstr_new(c, b->p ? b->p : "", b->len); }

/* ---- UTF-8 ------------------------------------------------------------------------------- */
/* Decode one code point at s[i]; invalid bytes decode as themselves (U+FFFD-free, 1 byte)
 * so that byte strings round-trip. Returns the number of bytes consumed (>= 1). */
size_t nk_ju_decode(const char *s, size_t len, size_t i, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char b = u[i];
    int n = nk_utf8_len(b);
    if (n <= 1 || i + (size_t)n > len) { *cp = b; return 1; }
    uint32_t v = b & (0xFF >> (n + 1));
    for (int k = 1; k < n; k++) {
        if ((u[i + k] & 0xC0) != 0x80) { *cp = b; return 1; }
        v = (v << 6) | (u[i + k] & 0x3F);
    }
    *cp = v;
    return (size_t)n;
}

size_t nk_ju_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t nk_ju_count(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; n++) { uint32_t cp; i += nk_ju_decode(s, len, i, &cp); }
    return n;
}

/* Python's str.isspace (also what `\s` matches in jinja2's lexer regexes). */
bool nk_ju_isspace(uint32_t cp) {
    if (cp <= 0x20) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Python's str.isprintable, approximately: controls, separators other than space, format
 * characters, surrogates and private use are not printable. (Unassigned code points, which
 * Python also escapes, would need the Unicode tables.) */
static bool ju_printable(uint32_t cp) {
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
    if (cp < 0x300) return true;
    if (cp == 0x61C || cp == 0x1680 || cp == 0x180E) return false;
    if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
    if ((cp >= 0x205F && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F)) return false;
    if (cp == 0x3000 || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || cp >= 0xFFFE) {
        if (cp < 0x10000 || cp >= 0xF0000) return false;
    }
    if (cp >= 0xD800 && cp <= 0xF8FF) return false;
    if (cp >= 0x1D173 && cp <= 0x1D17A) return false;
    if (cp == 0xE0001 || (cp >= 0xE0020 && cp <= 0xE007F)) return false;
    return true;
}

/* ---- Python semantics --------------------------------------------------------------------- */
bool nk_jv_truthy(nk_jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len != 0;
    case JV_LIST: case JV_TUPLE: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static double jv_num(nk_jv v) {
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b;
}

/* Python's ==. Containers nested deeper than 400 levels (only a hostile template builds
 * them; Python raises RecursionError) compare unequal instead of overflowing the stack. */
static bool eq_depth(nk_jv a, nk_jv b, int depth);
bool nk_jv_eq(nk_jv a, nk_jv b) { return eq_depth(a, b, 0); }

static bool eq_depth(nk_jv a, nk_jv b, int depth) {
    if (depth > 400) return false;
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;
            return x == y;
        }
        return jv_num(a) == jv_num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.u.s->len == b.u.s->len && memcmp(a.u.s->s, b.u.s->s, a.u.s->len) == 0;
    case JV_LIST: case JV_TUPLE:
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!eq_depth(a.u.l->v[i], b.u.l->v[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            const nk_jv *o = nk_jdict_get(b.u.d, a.u.d->k[i]->s, a.u.d->k[i]->len);
            if (!o || !eq_depth(a.u.d->v[i], *o, depth + 1)) return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

const char *nk_jv_type_name(nk_jv v) {
    static const char *names[] = { "Undefined", "NoneType", "bool", "int", "float", "str", "list",
                                   "tuple", "dict", "Namespace", "Macro", "function", "LoopContext" };
    return v.t < NK_ARRAY_LEN(names) ? names[v.t] : "?";
}

/* Python's ordering: numbers with numbers, strings by code point (= UTF-8 byte order),
 * sequences of the same kind lexicographically; anything else is a TypeError. */
int nk_jv_cmp(nk_jctx *c, nk_jv a, nk_jv b, int line, int *out) {
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;
            *out = (x > y) - (x < y);
        } else {
            double x = jv_num(a), y = jv_num(b);
            *out = (x > y) - (x < y);   /* NaN compares equal here; Python says False for both */
        }
        return 0;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = NK_MIN(a.u.s->len, b.u.s->len);
        int r = memcmp(a.u.s->s, b.u.s->s, n);
        *out = r ? (r > 0 ? 1 : -1) : (a.u.s->len > b.u.s->len) - (a.u.s->len < b.u.s->len);
        return 0;
    }
    if (a.t == b.t && jv_is_seq(a)) {
        size_t n = NK_MIN(a.u.l->n, b.u.l->n);
        for (size_t i = 0; i < n; i++) {
            if (nk_jv_eq(a.u.l->v[i], b.u.l->v[i])) continue;
            if (++c->depth > c->lim.max_depth) {
                c->depth--;
                return nk_jfail(c, NOOK_ERANGE, line, "comparison nested deeper than %d", c->lim.max_depth), -1;
            }
            int rc = nk_jv_cmp(c, a.u.l->v[i], b.u.l->v[i], line, out);
            c->depth--;
            return rc;
        }
        *out = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return 0;
    }
    return nk_jfail(c, NOOK_EINVAL, line, "'<' not supported between instances of '%s' and '%s'",
                    nk_jv_type_name(a), nk_jv_type_name(b)), -1;
}

/* repr(float) in Python: the shortest digits that round-trip, in fixed notation when the
 * decimal exponent is in [-4, 16), else d.ddde+XX; a whole number keeps ".0". */
void nk_jfmt_float(double f, char out[40]) {
    if (isnan(f)) { strcpy(out, "nan"); return; }
    if (isinf(f)) { strcpy(out, f < 0 ? "-inf" : "inf"); return; }
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX (the decimal point may be locale-specific: skip non-digits) */
    char digits[24]; int nd = 0; bool neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++) if (*p >= '0' && *p <= '9' && nd < 20) digits[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char *o = out;
    if (neg) *o++ = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) *o++ = digits[i];
            else *o++ = '0';
        } else {
            *o++ = '0'; *o++ = '.';
            for (int i = 0; i < -exp - 1; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = digits[i];
        }
        *o = 0;
    } else {
        *o++ = digits[0];
        if (nd > 1) { *o++ = '.'; for (int i = 1; i < nd; i++) *o++ = digits[i]; }
        int ae = exp < 0 ? -exp : exp;   /* |exp| <= 324: at most 3 digits */
        *o++ = 'e';
        *o++ = exp < 0 ? '-' : '+';
        if (ae >= 100) *o++ = (char)('0' + ae / 100);
        *o++ = (char)('0' + (ae / 10) % 10);
        *o++ = (char)('0' + ae % 10);
        *o = 0;
    }
}

static int repr_str(nk_jctx *c, nk_jbuf *b, const char *s, size_t len) {
    bool has_sq = memchr(s, '\'', len) != NULL, has_dq = memchr(s, '"', len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    if (nk_jbuf_put(c, b, &q, 1)) return -1;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = nk_ju_decode(s, len, i, &cp);
        char esc[16]; const char *e = NULL; size_t en = 0;
        if (cp == (uint32_t)q || cp == '\\') { esc[0] = '\\'; esc[1] = (char)cp; e = esc; en = 2; }
        else if (cp == '\n') { e = "\\n"; en = 2; }
        else if (cp == '\r') { e = "\\r"; en = 2; }
        else if (cp == '\t') { e = "\\t"; en = 2; }
        else if (!ju_printable(cp) || (k == 1 && cp >= 0x80)) {
            if (cp < 0x100) en = (size_t)snprintf(esc, sizeof esc, "\\x%02x", cp);
            else if (cp < 0x10000) en = (size_t)snprintf(esc, sizeof esc, "\\u%04x", cp);
            else en = (size_t)snprintf(esc, sizeof esc, "\\U%08x", cp);
            e = esc;
        }
        if (e ? nk_jbuf_put(c, b, e, en) : nk_jbuf_put(c, b, s + i, k)) return -1;
        i += k;
    }
    return nk_jbuf_put(c, b, &q, 1);
}

static int str_or_repr_inner(nk_jctx *c, nk_jbuf *b, nk_jv v, bool repr);

static int str_or_repr(nk_jctx *c, nk_jbuf *b, nk_jv v, bool repr) {
    if (nk_jstep(c, 0)) return -1;
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        return nk_jfail(c, NOOK_ERANGE, 0, "value nested deeper than %d to print", c->lim.max_depth), -1;
    }
    int rc = str_or_repr_inner(c, b, v, repr);
    c->depth--;
    return rc;
}

static int str_or_repr_inner(nk_jctx *c, nk_jbuf *b, nk_jv v, bool repr) {
    char tmp[48];
    switch (v.t) {
    case JV_UNDEF: return repr ? nk_jbuf_puts(c, b, "Undefined") : 0;
    case JV_NONE: return nk_jbuf_puts(c, b, "None");
    case JV_BOOL: return nk_jbuf_puts(c, b, v.u.b ? "True" : "False");
    case JV_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i); return nk_jbuf_puts(c, b, tmp);
    case JV_FLOAT: nk_jfmt_float(v.u.f, tmp); return nk_jbuf_puts(c, b, tmp);
    case JV_STR: return repr ? repr_str(c, b, v.u.s->s, v.u.s->len) : nk_jbuf_put(c, b, v.u.s->s, v.u.s->len);
    case JV_LIST: case JV_TUPLE: {
        bool tup = v.t == JV_TUPLE;
        if (nk_jbuf_puts(c, b, tup ? "(" : "[")) return -1;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && nk_jbuf_puts(c, b, ", ")) return -1;
            if (str_or_repr(c, b, v.u.l->v[i], true)) return -1;
        }
        if (tup && v.u.l->n == 1 && nk_jbuf_puts(c, b, ",")) return -1;
        return nk_jbuf_puts(c, b, tup ? ")" : "]");
    }
    case JV_DICT: case JV_NS: {
        if (v.t == JV_NS && nk_jbuf_puts(c, b, "<Namespace ")) return -1;
        if (nk_jbuf_puts(c, b, "{")) return -1;
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i && nk_jbuf_puts(c, b, ", ")) return -1;
            if (repr_str(c, b, v.u.d->k[i]->s, v.u.d->k[i]->len) || nk_jbuf_puts(c, b, ": ") ||
                str_or_repr(c, b, v.u.d->v[i], true)) return -1;
        }
        return nk_jbuf_puts(c, b, v.t == JV_NS ? "}>" : "}");
    }
    case JV_MACRO:
        snprintf(tmp, sizeof tmp, "<Macro '%.30s'>", v.u.m->name ? v.u.m->name : "caller");
        return nk_jbuf_puts(c, b, tmp);
    case JV_FUNC:
        snprintf(tmp, sizeof tmp, "<function %.30s>", nk_jglobal_fn_name(v.u.fn));
        return nk_jbuf_puts(c, b, tmp);
    case JV_LOOP:
        snprintf(tmp, sizeof tmp, "<LoopContext %lld/%lld>", (long long)(v.u.loop->index0 + 1),
                 (long long)v.u.loop->length);
        return nk_jbuf_puts(c, b, tmp);
    default: return nk_jfail(c, NOOK_EINTERNAL, 0, "bad value type %d", v.t), -1;
    }
}

int nk_jv_str(nk_jctx *c, nk_jbuf *b, nk_jv v) { return str_or_repr(c, b, v, false); }
int nk_jv_repr(nk_jctx *c, nk_jbuf *b, nk_jv v) { return str_or_repr(c, b, v, true); }

nk_jstr *nk_jv_to_str(nk_jctx *c, nk_jv v) {
    if (v.t == JV_STR) return (nk_jstr *)v.u.s;
    nk_jbuf b = {0};
    if (nk_jv_str(c, &b, v)) return NULL;
    return nk_jbuf_str(c, &b);
}

/* ---- json.dumps ------------------------------------------------------------------------------- */
static int json_str(nk_jctx *c, nk_jbuf *b, const char *s, size_t len, bool ascii) {
    if (nk_jbuf_put(c, b, "\"", 1)) return -1;
    size_t run = 0;   /* start of the pending unescaped run */
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)s[i];
        char esc[16]; size_t en = 0;
        size_t k = 1;
        if (ch == '"') { esc[0] = '\\'; esc[1] = '"'; en = 2; }
        else if (ch == '\\') { esc[0] = '\\'; esc[1] = '\\'; en = 2; }
        else if (ch == '\n') { esc[0] = '\\'; esc[1] = 'n'; en = 2; }
        else if (ch == '\r') { esc[0] = '\\'; esc[1] = 'r'; en = 2; }
        else if (ch == '\t') { esc[0] = '\\'; esc[1] = 't'; en = 2; }
        else if (ch == '\b') { esc[0] = '\\'; esc[1] = 'b'; en = 2; }
        else if (ch == '\f') { esc[0] = '\\'; esc[1] = 'f'; en = 2; }
        else if (ch < 0x20 || (ascii && ch == 0x7F)) en = (size_t)snprintf(esc, sizeof esc, "\\u%04x", ch);
        else if (ascii && ch >= 0x80) {
            uint32_t cp;
            k = nk_ju_decode(s, len, i, &cp);
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                en = (size_t)snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
            } else en = (size_t)snprintf(esc, sizeof esc, "\\u%04x", cp);
        }
        if (en) {
            if (nk_jbuf_put(c, b, s + run, i - run) || nk_jbuf_put(c, b, esc, en)) return -1;
            run = i + k;
        }
        i += k;
    }
    if (nk_jbuf_put(c, b, s + run, len - run)) return -1;
    return nk_jbuf_put(c, b, "\"", 1);
}

static int json_nl(nk_jctx *c, nk_jbuf *b, const nk_jjson_opts *o, int level) {
    if (nk_jbuf_put(c, b, "\n", 1)) return -1;
    for (int i = 0; i < level; i++)
        if (nk_jbuf_put(c, b, o->indent, o->indent_len)) return -1;
    return 0;
}

static int key_cmp(const void *a, const void *b) {
    const nk_jstr *x = *(const nk_jstr *const *)a, *y = *(const nk_jstr *const *)b;
    size_t n = NK_MIN(x->len, y->len);
    int r = memcmp(x->s, y->s, n);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as Python writes it. */
int nk_jv_tojson(nk_jctx *c, nk_jbuf *b, nk_jv v, const nk_jjson_opts *o, int level, int line) {
    char tmp[48];
    if (level > c->lim.max_depth) return nk_jfail(c, NOOK_ERANGE, line, "tojson: nesting too deep"), -1;
    if (nk_jstep(c, line)) return -1;
    switch (v.t) {
    case JV_NONE: return nk_jbuf_puts(c, b, "null");
    case JV_BOOL: return nk_jbuf_puts(c, b, v.u.b ? "true" : "false");
    case JV_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i); return nk_jbuf_puts(c, b, tmp);
    case JV_FLOAT:
        if (isnan(v.u.f)) return nk_jbuf_puts(c, b, "NaN");
        if (isinf(v.u.f)) return nk_jbuf_puts(c, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        nk_jfmt_float(v.u.f, tmp);
        return nk_jbuf_puts(c, b, tmp);
    case JV_STR: return json_str(c, b, v.u.s->s, v.u.s->len, o->ensure_ascii);
    case JV_LIST: case JV_TUPLE: {
        if (v.u.l->n == 0) return nk_jbuf_puts(c, b, "[]");
        if (nk_jbuf_puts(c, b, "[")) return -1;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && nk_jbuf_puts(c, b, o->item_sep)) return -1;
            if (o->has_indent && json_nl(c, b, o, level + 1)) return -1;
            if (nk_jv_tojson(c, b, v.u.l->v[i], o, level + 1, line)) return -1;
        }
        if (o->has_indent && json_nl(c, b, o, level)) return -1;
        return nk_jbuf_puts(c, b, "]");
    }
    case JV_DICT: {
        const nk_jdict *d = v.u.d;
        if (d->n == 0) return nk_jbuf_puts(c, b, "{}");
        size_t *order = nk_jalloc(c, d->n * sizeof(size_t));
        if (!order) return -1;
        for (size_t i = 0; i < d->n; i++) order[i] = i;
        if (o->sort_keys) {
            /* sort indices by key: sort a copy of the key pointers, then map back */
            const nk_jstr **keys = nk_jalloc(c, d->n * sizeof(*keys));
            if (!keys) return -1;
            memcpy(keys, d->k, d->n * sizeof(*keys));
            qsort(keys, d->n, sizeof(*keys), key_cmp);
            for (size_t i = 0; i < d->n; i++)
                for (size_t j = 0; j < d->n; j++)
                    if (d->k[j] == keys[i]) { order[i] = j; break; }
        }
        if (nk_jbuf_puts(c, b, "{")) return -1;
        for (size_t i = 0; i < d->n; i++) {
            size_t k = order[i];
            if (i && nk_jbuf_puts(c, b, o->item_sep)) return -1;
            if (o->has_indent && json_nl(c, b, o, level + 1)) return -1;
            if (json_str(c, b, d->k[k]->s, d->k[k]->len, o->ensure_ascii) || nk_jbuf_puts(c, b, o->key_sep) ||
                nk_jv_tojson(c, b, d->v[k], o, level + 1, line)) return -1;
        }
        if (o->has_indent && json_nl(c, b, o, level)) return -1;
        return nk_jbuf_puts(c, b, "}");
    }
    default:
        return nk_jfail(c, NOOK_EINVAL, line, "Object of type %s is not JSON serializable", nk_jv_type_name(v)), -1;
    }
}

/* ---- jansson -> value -------------------------------------------------------------------------- */
int nk_jv_from_json(nk_jctx *c, const json_t *j, nk_jv *out, int depth) {
    if (depth > 200) return nk_jfail(c, NOOK_EINVAL, 0, "JSON input nested too deeply"), -1;
    if (!j) { *out = jv_none(); return 0; }
    switch (json_typeof(j)) {
    case JSON_NULL: *out = jv_none(); return 0;
    case JSON_TRUE: *out = jv_bool(true); return 0;
    case JSON_FALSE: *out = jv_bool(false); return 0;
    case JSON_INTEGER: *out = jv_int((int64_t)json_integer_value(j)); return 0;
    case JSON_REAL: *out = jv_float(json_real_value(j)); return 0;
    case JSON_STRING: {
        nk_jstr *s = nk_jstr_new(c, json_string_value(j), json_string_length(j));
        if (!s) return -1;
        *out = jv_str(s);
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        nk_jlist *l = nk_jlist_new(c, n);
        if (!l) return -1;
        for (size_t i = 0; i < n; i++) {
            if (nk_jv_from_json(c, json_array_get(j, i), &l->v[i], depth + 1)) return -1;
        }
        l->n = n;
        *out = (nk_jv){ .t = JV_LIST, .u.l = l };
        return 0;
    }
    case JSON_OBJECT: {
        nk_jdict *d = nk_jdict_new(c, json_object_size(j));
        if (!d) return -1;
        const char *k; json_t *val;
        void *it = json_object_iter((json_t *)j);
        for (; it; it = json_object_iter_next((json_t *)j, it)) {
            k = json_object_iter_key(it);
            val = json_object_iter_value(it);
            nk_jstr *ks = nk_jstr_new(c, k, strlen(k));
            nk_jv v;
            if (!ks || nk_jv_from_json(c, val, &v, depth + 1) || nk_jdict_set(c, d, ks, v)) return -1;
        }
        *out = (nk_jv){ .t = JV_DICT, .u.d = d };
        return 0;
    }
    }
    *out = jv_none();
    return 0;
}

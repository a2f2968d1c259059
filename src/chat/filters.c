/*
 * filters.c: jinja2's filters and tests, the Python str/dict/list methods templates call,
 * and the global functions (range, namespace, dict, plus HF's raise_exception and
 * strftime_now). Each follows the Python behaviour the templates were written against,
 * e.g. `tojson` is HF's override: json.dumps(x, ensure_ascii=False, ...) without key sorting.
 * Mutating methods (list.append, dict.update, ...) are refused as HF's
 * ImmutableSandboxedEnvironment refuses them.
 */
#include "chat/jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- argument helpers --------------------------------------------------------------------- */
typedef struct fargs {
    const nk_jv *args; size_t n;
    const char **kwn; const nk_jv *kwv; size_t nkw;
} fargs;

/* The argument at position pos or named name; NULL when absent. */
static const nk_jv *arg(const fargs *a, size_t pos, const char *name) {
    if (pos < a->n) return &a->args[pos];
    for (size_t i = 0; i < a->nkw; i++) if (name && !strcmp(a->kwn[i], name)) return &a->kwv[i];
    return NULL;
}

static int bad_arg(nk_jctx *c, const char *what, const char *name, int line) {
    return nk_jfail(c, NOOK_EINVAL, line, "%s: bad or missing argument '%s'", what, name), -1;
}

static int need_str(nk_jctx *c, const nk_jv *v, const char *what, const char *name, int line) {
    if (!v || v->t != JV_STR) return bad_arg(c, what, name, line);
    return 0;
}

static int ret_str(nk_jctx *c, const char *s, size_t n, nk_jv *out) {
    nk_jstr *r = nk_jstr_new(c, s, n);
    if (!r) return -1;
    *out = jv_str(r);
    return 0;
}

static int ret_buf(nk_jctx *c, nk_jbuf *b, nk_jv *out) {
    nk_jstr *r = nk_jbuf_str(c, b);
    if (!r) return -1;
    *out = jv_str(r);
    return 0;
}

/* str(v) with Undefined -> "" (jinja2's soft_str) */
static const nk_jstr *soft_str(nk_jctx *c, nk_jv v) { return nk_jv_to_str(c, v); }

/* ---- case mapping ------------------------------------------------------------------------------
 * Python's str.upper/lower over ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (the
 * full Unicode tables are not linked into this layer). ß upper-cases to "SS" as in Python. */
static uint32_t cp_lower(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x137 && c != 0x130) return c | 1;
    if (c >= 0x139 && c <= 0x148) return (c & 1) ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return c | 1;
    if (c == 0x178) return 0xFF;
    if (c >= 0x179 && c <= 0x17E) return (c & 1) ? c + 1 : c;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}
static uint32_t cp_upper(uint32_t c) {
    if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c >= 0x100 && c <= 0x137 && c != 0x131) return c & ~1u;
    if (c >= 0x139 && c <= 0x148) return (c & 1) ? c : c - 1;
    if (c >= 0x14A && c <= 0x177) return c & ~1u;
    if (c >= 0x179 && c <= 0x17E) return (c & 1) ? c : c - 1;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3CB) return c - 32;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

/* mode: 'u' upper, 'l' lower, 'c' capitalize, 't' title (jinja2's do_title) */
int nk_jcase_map(nk_jctx *c, const char *s, size_t len, char mode, nk_jv *out) {
    nk_jbuf b = {0};
    bool word_start = true, first = true;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = nk_ju_decode(s, len, i, &cp);
        bool up;
        if (mode == 'u') up = true;
        else if (mode == 'l') up = false;
        else if (mode == 'c') up = first;
        else {
            bool sep = nk_ju_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
            up = word_start;
            word_start = sep;
        }
        first = false;
        char enc[4];
        if (k == 1 && cp >= 0x80) { if (nk_jbuf_put(c, &b, s + i, 1)) return -1; }
        else if (up && cp == 0xDF) { if (nk_jbuf_puts(c, &b, "SS")) return -1; }
        else {
            uint32_t m = up ? cp_upper(cp) : cp_lower(cp);
            if (nk_jbuf_put(c, &b, enc, nk_ju_encode(m, enc))) return -1;
        }
        i += k;
    }
    return ret_buf(c, &b, out);
}

/* ---- strip / split / replace ------------------------------------------------------------------- */
static bool in_chars(uint32_t cp, const nk_jstr *chars) {
    if (!chars) return nk_ju_isspace(cp);
    for (size_t i = 0; i < chars->len;) {
        uint32_t x;
        i += nk_ju_decode(chars->s, chars->len, i, &x);
        if (x == cp) return true;
    }
    return false;
}

/* which: 1 left, 2 right, 3 both. chars NULL = whitespace. */
int nk_jstrip(nk_jctx *c, const char *s, size_t len, const nk_jstr *chars, int which, nk_jv *out) {
    size_t lo = 0, hi = len;
    if (which & 1) {
        while (lo < hi) {
            uint32_t cp;
            size_t k = nk_ju_decode(s, len, lo, &cp);
            if (!in_chars(cp, chars)) break;
            lo += k;
        }
    }
    if (which & 2) {
        /* walk forward remembering the end of the last kept code point */
        size_t i = lo, keep = lo;
        while (i < hi) {
            uint32_t cp;
            size_t k = nk_ju_decode(s, len, i, &cp);
            i += k;
            if (!in_chars(cp, chars)) keep = i;
        }
        hi = keep;
    }
    return ret_str(c, s + lo, hi - lo, out);
}

static int push_str(nk_jctx *c, nk_jlist *l, const char *s, size_t n) {
    nk_jstr *r = nk_jstr_new(c, s, n);
    return r ? nk_jlist_push(c, l, jv_str(r)) : -1;
}

/* str.split / str.rsplit (sep NULL = runs of whitespace) */
int nk_jsplit(nk_jctx *c, const char *s, size_t len, const nk_jstr *sep, int64_t maxsplit, bool right,
                    int line, nk_jv *out) {
    nk_jlist *l = nk_jlist_new(c, 0);
    if (!l) return -1;
    if (sep && sep->len == 0) return nk_jfail(c, NOOK_EINVAL, line, "empty separator"), -1;
    if (sep) {
        if (!right) {
            size_t start = 0;
            int64_t n = 0;
            for (;;) {
                const char *p = (maxsplit < 0 || n < maxsplit) ?
                    memmem(s + start, len - start, sep->s, sep->len) : NULL;
                if (!p) break;
                if (push_str(c, l, s + start, (size_t)(p - s) - start)) return -1;
                start = (size_t)(p - s) + sep->len;
                n++;
            }
            if (push_str(c, l, s + start, len - start)) return -1;
        } else {
            /* collect from the right, then reverse */
            size_t end = len;
            int64_t n = 0;
            nk_jlist *tmp = nk_jlist_new(c, 0);
            if (!tmp) return -1;
            while (maxsplit < 0 || n < maxsplit) {
                size_t found = SIZE_MAX;
                if (end >= sep->len)
                    for (size_t i = end - sep->len + 1; i-- > 0;)
                        if (memcmp(s + i, sep->s, sep->len) == 0) { found = i; break; }
                if (found == SIZE_MAX) break;
                if (push_str(c, tmp, s + found + sep->len, end - found - sep->len)) return -1;
                end = found;
                n++;
            }
            if (push_str(c, tmp, s, end)) return -1;
            for (size_t i = tmp->n; i-- > 0;) if (nk_jlist_push(c, l, tmp->v[i])) return -1;
        }
    } else {
        /* whitespace split: words; maxsplit counts splits (left-to-right only for rsplit too,
         * an approximation that differs only when rsplit(None, n) is used with n >= 0) */
        size_t i = 0;
        int64_t n = 0;
        while (i < len) {
            uint32_t cp;
            size_t k;
            while (i < len && (k = nk_ju_decode(s, len, i, &cp)) && nk_ju_isspace(cp)) i += k;
            if (i >= len) break;
            if (maxsplit >= 0 && n >= maxsplit) {   /* the rest, trailing whitespace kept */
                if (push_str(c, l, s + i, len - i)) return -1;
                break;
            }
            size_t w = i;
            while (w < len && (k = nk_ju_decode(s, len, w, &cp)) && !nk_ju_isspace(cp)) w += k;
            if (push_str(c, l, s + i, w - i)) return -1;
            n++;
            i = w;
        }
    }
    *out = (nk_jv){ .t = JV_LIST, .u.l = l };
    return 0;
}

int nk_jreplace(nk_jctx *c, const nk_jstr *s, const nk_jstr *old, const nk_jstr *new_, int64_t count, nk_jv *out) {
    nk_jbuf b = {0};
    int64_t n = 0;
    if (old->len == 0) {
        /* Python inserts `new` before every code point and at the end */
        for (size_t i = 0; i <= s->len;) {
            if (count < 0 || n < count) { if (nk_jbuf_put(c, &b, new_->s, new_->len)) return -1; n++; }
            if (i == s->len) break;
            uint32_t cp;
            size_t k = nk_ju_decode(s->s, s->len, i, &cp);
            if (nk_jbuf_put(c, &b, s->s + i, k)) return -1;
            i += k;
        }
        return ret_buf(c, &b, out);
    }
    size_t i = 0;
    while (i < s->len) {
        const char *p = (count < 0 || n < count) ? memmem(s->s + i, s->len - i, old->s, old->len) : NULL;
        if (!p) break;
        size_t at = (size_t)(p - s->s);
        if (nk_jbuf_put(c, &b, s->s + i, at - i) || nk_jbuf_put(c, &b, new_->s, new_->len)) return -1;
        i = at + old->len;
        n++;
    }
    if (nk_jbuf_put(c, &b, s->s + i, s->len - i)) return -1;
    return ret_buf(c, &b, out);
}

/* ---- helpers on collections ---------------------------------------------------------------------- */
static int to_list(nk_jctx *c, nk_jv v, int line, nk_jlist **out) {
    nk_jlist *src;
    if (nk_jiter(c, v, line, &src)) return -1;
    nk_jlist *l = nk_jlist_new(c, src->n);
    if (!l) return -1;
    if (src->n) memcpy(l->v, src->v, src->n * sizeof(nk_jv));
    l->n = src->n;
    *out = l;
    return 0;
}

static nk_jv list_v(nk_jlist *l) { return (nk_jv){ .t = JV_LIST, .u.l = l }; }

/* attribute path "a.b.0" as jinja2's make_attrgetter resolves it (getitem per part) */
static int get_path(nk_jctx *c, nk_jv v, const nk_jstr *path, int line, nk_jv *out) {
    size_t i = 0;
    while (i <= path->len) {
        const char *dot = memchr(path->s + i, '.', path->len - i);
        size_t end = dot ? (size_t)(dot - path->s) : path->len;
        nk_jv key;
        bool digits = end > i;
        for (size_t k = i; k < end; k++) if (path->s[k] < '0' || path->s[k] > '9') digits = false;
        if (digits) {
            int64_t x = 0;
            for (size_t k = i; k < end && x < (INT64_MAX / 10 - 10); k++) x = x * 10 + (path->s[k] - '0');
            key = jv_int(x);
        } else {
            nk_jstr *ks = nk_jstr_new(c, path->s + i, end - i);
            if (!ks) return -1;
            key = jv_str(ks);
        }
        if (nk_jgetitem(c, v, key, line, &v)) return -1;
        if (!dot) break;
        i = end + 1;
    }
    *out = v;
    return 0;
}

static int lower_key(nk_jctx *c, nk_jv v, bool case_sensitive, nk_jv *out) {
    if (!case_sensitive && v.t == JV_STR) return nk_jcase_map(c, v.u.s->s, v.u.s->len, 'l', out);
    *out = v;
    return 0;
}

typedef struct sort_item { nk_jv key, val; } sort_item;

/* Stable merge sort with Python comparison (errors propagate through ctx). */
static int sort_items(nk_jctx *c, sort_item *a, size_t n, bool reverse, int line) {
    if (n < 2) return 0;
    sort_item *tmp = nk_jalloc(c, n * sizeof(sort_item));
    if (!tmp) return -1;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = NK_MIN(lo + w, n), hi = NK_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int r;
                if (nk_jv_cmp(c, a[j].key, a[i].key, line, &r)) return -1;
                bool take_right = reverse ? r > 0 : r < 0;
                tmp[k++] = take_right ? a[j++] : a[i++];
            }
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, n * sizeof(sort_item));
        if (nk_jstep(c, line)) return -1;
    }
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */
static const char *const test_names[] = {
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
    "string", "mapping", "iterable", "sequence", "callable", "sameas", "escaped", "in", "odd",
    "even", "divisibleby", "lower", "upper", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan",
    "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
};

bool nk_jtest_known(const char *name) {
    for (size_t i = 0; i < NK_ARRAY_LEN(test_names); i++) if (!strcmp(test_names[i], name)) return true;
    return false;
}

int nk_jtest(nk_jctx *c, const char *name, nk_jv v, const nk_jv *args, size_t n, int line, bool *out) {
    const nk_jv *a0 = n > 0 ? &args[0] : NULL;
    int64_t x, y;
    if (!strcmp(name, "defined")) { *out = v.t != JV_UNDEF; return 0; }
    if (!strcmp(name, "undefined")) { *out = v.t == JV_UNDEF; return 0; }
    if (!strcmp(name, "none")) { *out = v.t == JV_NONE; return 0; }
    if (!strcmp(name, "boolean")) { *out = v.t == JV_BOOL; return 0; }
    if (!strcmp(name, "false")) { *out = v.t == JV_BOOL && !v.u.b; return 0; }
    if (!strcmp(name, "true")) { *out = v.t == JV_BOOL && v.u.b; return 0; }
    if (!strcmp(name, "integer")) { *out = v.t == JV_INT; return 0; }
    if (!strcmp(name, "float")) { *out = v.t == JV_FLOAT; return 0; }
    if (!strcmp(name, "number")) { *out = jv_is_num(v); return 0; }
    if (!strcmp(name, "string")) { *out = v.t == JV_STR; return 0; }
    if (!strcmp(name, "mapping")) { *out = v.t == JV_DICT; return 0; }
    if (!strcmp(name, "iterable")) {
        *out = v.t == JV_STR || jv_is_seq(v) || v.t == JV_DICT || v.t == JV_UNDEF || v.t == JV_LOOP;
        return 0;
    }
    if (!strcmp(name, "sequence")) { *out = v.t == JV_STR || jv_is_seq(v) || v.t == JV_DICT || v.t == JV_UNDEF; return 0; }
    if (!strcmp(name, "callable")) { *out = v.t == JV_MACRO || v.t == JV_FUNC; return 0; }
    if (!strcmp(name, "escaped")) { *out = false; return 0; }
    if (!strcmp(name, "sameas")) {
        if (!a0) return bad_arg(c, "sameas", "other", line);
        if (v.t != a0->t) *out = false;
        else if (v.t == JV_NONE || v.t == JV_UNDEF) *out = true;
        else if (v.t == JV_BOOL) *out = v.u.b == a0->u.b;
        else if (v.t == JV_INT) *out = v.u.i == a0->u.i && v.u.i >= -5 && v.u.i <= 256;   /* CPython's small ints */
        else if (v.t == JV_STR) *out = v.u.s == a0->u.s;
        else *out = v.u.l == a0->u.l;
        return 0;
    }
    if (!strcmp(name, "in")) {
        if (!a0) return bad_arg(c, "in", "seq", line);
        if (a0->t == JV_STR) {
            if (v.t != JV_STR) return nk_jfail(c, NOOK_EINVAL, line, "'in <string>' requires string as left operand"), -1;
            *out = v.u.s->len == 0 || memmem(a0->u.s->s, a0->u.s->len, v.u.s->s, v.u.s->len);
        } else if (jv_is_seq(*a0)) {
            *out = false;
            for (size_t i = 0; i < a0->u.l->n; i++) if (nk_jv_eq(v, a0->u.l->v[i])) { *out = true; break; }
        } else if (a0->t == JV_DICT) {
            *out = v.t == JV_STR && nk_jdict_get(a0->u.d, v.u.s->s, v.u.s->len);
        } else if (a0->t == JV_UNDEF) *out = false;
        else return nk_jfail(c, NOOK_EINVAL, line, "argument of type '%s' is not iterable", nk_jv_type_name(*a0)), -1;
        return 0;
    }
    if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        if (v.t == JV_INT) x = v.u.i; else if (v.t == JV_BOOL) x = v.u.b;
        else return nk_jfail(c, NOOK_EINVAL, line, "test '%s' needs an integer, got %s", name, nk_jv_type_name(v)), -1;
        if (!strcmp(name, "divisibleby")) {
            if (!a0 || (a0->t != JV_INT && a0->t != JV_BOOL)) return bad_arg(c, "divisibleby", "num", line);
            y = a0->t == JV_INT ? a0->u.i : a0->u.b;
            if (y == 0) return nk_jfail(c, NOOK_EINVAL, line, "integer division or modulo by zero"), -1;
            *out = y == -1 || x % y == 0;
        } else {
            bool odd = (x % 2) != 0;
            *out = !strcmp(name, "odd") ? odd : !odd;
        }
        return 0;
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        const nk_jstr *s = soft_str(c, v);
        if (!s) return -1;
        bool up = !strcmp(name, "upper"), cased = false, ok = true;
        for (size_t i = 0; i < s->len;) {
            uint32_t cp;
            i += nk_ju_decode(s->s, s->len, i, &cp);
            uint32_t l = cp_lower(cp), u = cp_upper(cp);
            if (l == u) continue;
            cased = true;
            if (up ? cp != u : cp != l) ok = false;
        }
        *out = cased && ok;
        return 0;
    }
    /* comparisons */
    if (!a0) return bad_arg(c, name, "other", line);
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) { *out = nk_jv_eq(v, *a0); return 0; }
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) { *out = !nk_jv_eq(v, *a0); return 0; }
    if (v.t == JV_UNDEF || a0->t == JV_UNDEF) return nk_jfail(c, NOOK_EINVAL, line, "comparison with an undefined value"), -1;
    int r;
    if (nk_jv_cmp(c, v, *a0, line, &r)) return -1;
    if (!strcmp(name, "lt") || !strcmp(name, "lessthan") || !strcmp(name, "<")) *out = r < 0;
    else if (!strcmp(name, "le") || !strcmp(name, "<=")) *out = r <= 0;
    else if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") || !strcmp(name, ">")) *out = r > 0;
    else *out = r >= 0;
    return 0;
}

/* ---- filters ---------------------------------------------------------------------------------- */
static const char *const filter_names[] = {
    "trim", "length", "count", "tojson", "string", "lower", "upper", "first", "last", "join",
    "default", "d", "items", "map", "select", "reject", "selectattr", "rejectattr", "replace",
    "capitalize", "title", "safe", "list", "int", "float", "round", "abs", "reverse", "sort",
    "unique", "dictsort", "indent", "escape", "e", "sum", "min", "max", "attr", "wordcount",
};

bool nk_jfilter_known(const char *name) {
    for (size_t i = 0; i < NK_ARRAY_LEN(filter_names); i++) if (!strcmp(filter_names[i], name)) return true;
    return false;
}

/* Python int(str) then float(str) fallback, as jinja2's do_int. */
static bool parse_int_str(const nk_jstr *s, int64_t base, int64_t *out) {
    size_t i = 0, n = s->len;
    while (i < n && (s->s[i] == ' ' || (s->s[i] >= 9 && s->s[i] <= 13))) i++;
    while (n > i && (s->s[n-1] == ' ' || (s->s[n-1] >= 9 && s->s[n-1] <= 13))) n--;
    bool neg = false;
    if (i < n && (s->s[i] == '+' || s->s[i] == '-')) { neg = s->s[i] == '-'; i++; }
    if (i >= n) return false;
    int64_t v = 0;
    bool prev_us = true;
    for (; i < n; i++) {
        char ch = s->s[i];
        if (ch == '_' && !prev_us) { prev_us = true; continue; }
        int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 32) >= 'a' && (ch | 32) <= 'z' ? (ch | 32) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (INT64_MAX - d) / base) return false;
        v = v * base + d;
        prev_us = false;
    }
    if (prev_us) return false;
    *out = neg ? -v : v;
    return true;
}

static bool parse_float_str(const nk_jstr *s, double *out) {
    char buf[64];
    if (s->len == 0 || s->len >= sizeof buf) return false;
    memcpy(buf, s->s, s->len);
    buf[s->len] = 0;
    char *end;
    double v = strtod(buf, &end);
    while (*end == ' ' || (*end >= 9 && *end <= 13)) end++;
    if (end == buf || *end) return false;
    *out = v;
    return true;
}

static int f_tojson(nk_jctx *c, nk_jv v, const fargs *a, int line, nk_jv *out) {
    nk_jjson_opts o = { .item_sep = ", ", .key_sep = ": " };
    const nk_jv *ea = arg(a, 0, "ensure_ascii"), *ind = arg(a, 1, "indent"),
                *sep = arg(a, 2, "separators"), *sk = arg(a, 3, "sort_keys");
    o.ensure_ascii = ea && nk_jv_truthy(*ea);
    o.sort_keys = sk && nk_jv_truthy(*sk);
    char spaces[65];
    if (ind && ind->t != JV_NONE) {
        o.has_indent = true;
        o.item_sep = ",";
        if (ind->t == JV_STR) { o.indent = ind->u.s->s; o.indent_len = ind->u.s->len; }
        else if (ind->t == JV_INT || ind->t == JV_BOOL) {
            int64_t k = ind->t == JV_INT ? ind->u.i : ind->u.b;
            if (k > 64) return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'tojson indent > 64'"), -1;
            if (k < 0) k = 0;
            memset(spaces, ' ', (size_t)k);
            spaces[k] = 0;
            o.indent = spaces; o.indent_len = (size_t)k;
        } else return bad_arg(c, "tojson", "indent", line);
    }
    if (sep && sep->t != JV_NONE) {
        if (!jv_is_seq(*sep) || sep->u.l->n != 2 || sep->u.l->v[0].t != JV_STR || sep->u.l->v[1].t != JV_STR)
            return bad_arg(c, "tojson", "separators", line);
        o.item_sep = sep->u.l->v[0].u.s->s;
        o.key_sep = sep->u.l->v[1].u.s->s;
    }
    nk_jbuf b = {0};
    if (nk_jv_tojson(c, &b, v, &o, 0, line)) return -1;
    return ret_buf(c, &b, out);
}

/* select/reject/selectattr/rejectattr */
static int f_select(nk_jctx *c, nk_jv v, const fargs *a, bool by_attr, bool keep_if, int line, nk_jv *out) {
    nk_jlist *items, *res = nk_jlist_new(c, 0);
    if (!res || nk_jiter(c, v, line, &items)) return -1;
    size_t first_test_arg = by_attr ? 1 : 0;
    const nk_jv *attr = by_attr ? arg(a, 0, NULL) : NULL;
    if (by_attr && (!attr || attr->t != JV_STR)) return bad_arg(c, "selectattr", "attribute", line);
    const nk_jv *test = arg(a, first_test_arg, NULL);
    if (test && test->t != JV_STR) return bad_arg(c, "select", "test", line);
    if (test && !nk_jtest_known(test->u.s->s))
        return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'test %s'", test->u.s->s), -1;
    const nk_jv *targs = a->n > first_test_arg + 1 ? a->args + first_test_arg + 1 : NULL;
    size_t ntargs = a->n > first_test_arg + 1 ? a->n - first_test_arg - 1 : 0;
    for (size_t i = 0; i < items->n; i++) {
        nk_jv x = items->v[i];
        if (by_attr && get_path(c, x, attr->u.s, line, &x)) return -1;
        bool r;
        if (test) { if (nk_jtest(c, test->u.s->s, x, targs, ntargs, line, &r)) return -1; }
        else r = nk_jv_truthy(x);
        if (r == keep_if && nk_jlist_push(c, res, items->v[i])) return -1;
    }
    *out = list_v(res);
    return 0;
}

static int f_map(nk_jctx *c, nk_jv v, const fargs *a, int line, nk_jv *out) {
    nk_jlist *items, *res = nk_jlist_new(c, 0);
    if (!res || nk_jiter(c, v, line, &items)) return -1;
    const nk_jv *attr = arg(a, SIZE_MAX, "attribute");
    if (attr) {
        if (attr->t != JV_STR) return bad_arg(c, "map", "attribute", line);
        const nk_jv *def = arg(a, SIZE_MAX, "default");
        for (size_t i = 0; i < items->n; i++) {
            nk_jv x;
            if (get_path(c, items->v[i], attr->u.s, line, &x)) return -1;
            if (x.t == JV_UNDEF && def) x = *def;
            if (nk_jlist_push(c, res, x)) return -1;
        }
    } else {
        const nk_jv *fname = arg(a, 0, NULL);
        if (!fname || fname->t != JV_STR) return bad_arg(c, "map", "filter", line);
        if (!nk_jfilter_known(fname->u.s->s))
            return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'filter %s'", fname->u.s->s), -1;
        for (size_t i = 0; i < items->n; i++) {
            nk_jv x;
            if (nk_jfilter(c, fname->u.s->s, items->v[i], a->args + 1, a->n - 1, a->kwn, a->kwv, a->nkw, line, &x) ||
                nk_jlist_push(c, res, x)) return -1;
        }
    }
    *out = list_v(res);
    return 0;
}

static int f_indent(nk_jctx *c, nk_jv v, const fargs *a, int line, nk_jv *out) {
    const nk_jv *w = arg(a, 0, "width"), *first = arg(a, 1, "first"), *blank = arg(a, 2, "blank");
    char spaces[65];
    const char *ind = spaces; size_t nind = 4;
    memset(spaces, ' ', 4);
    if (w && w->t == JV_STR) { ind = w->u.s->s; nind = w->u.s->len; }
    else if (w && (w->t == JV_INT || w->t == JV_BOOL)) {
        int64_t k = w->t == JV_INT ? w->u.i : w->u.b;
        if (k < 0) k = 0;
        if (k > 64) return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'indent width > 64'"), -1;
        memset(spaces, ' ', (size_t)k);
        nind = (size_t)k;
    } else if (w) return bad_arg(c, "indent", "width", line);
    const nk_jstr *s = soft_str(c, v);
    if (!s) return -1;
    /* lines as str.splitlines() on s + "\n" (\n, \r\n, \r only) */
    nk_jbuf b = {0};
    if (first && nk_jv_truthy(*first) && nk_jbuf_put(c, &b, ind, nind)) return -1;
    bool bl = blank && nk_jv_truthy(*blank);
    size_t i = 0, lineno = 0;
    while (i < s->len) {
        size_t e = i;
        while (e < s->len && s->s[e] != '\n' && s->s[e] != '\r') e++;
        if (lineno > 0) {
            if (nk_jbuf_put(c, &b, "\n", 1)) return -1;
            if ((bl || e > i) && nk_jbuf_put(c, &b, ind, nind)) return -1;
        }
        if (nk_jbuf_put(c, &b, s->s + i, e - i)) return -1;
        lineno++;
        if (e < s->len && s->s[e] == '\r' && e + 1 < s->len && s->s[e + 1] == '\n') e++;
        i = e + 1;
    }
    return ret_buf(c, &b, out);
}

static int f_round(nk_jctx *c, nk_jv v, const fargs *a, int line, nk_jv *out) {
    const nk_jv *p = arg(a, 0, "precision"), *m = arg(a, 1, "method");
    int64_t prec = 0;
    if (p) { if (p->t != JV_INT) return bad_arg(c, "round", "precision", line); prec = p->u.i; }
    const char *method = m && m->t == JV_STR ? m->u.s->s : "common";
    if (!jv_is_num(v)) return nk_jfail(c, NOOK_EINVAL, line, "round: not a number (%s)", nk_jv_type_name(v)), -1;
    if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor"))
        return nk_jfail(c, NOOK_EINVAL, line, "method must be common, ceil or floor"), -1;
    if (v.t != JV_FLOAT && !strcmp(method, "common") && prec >= 0) {   /* round(int, n) stays an int */
        *out = v.t == JV_BOOL ? jv_int(v.u.b) : v;
        return 0;
    }
    double x = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
    if (prec < -20 || prec > 20) return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'round precision %lld'", (long long)prec), -1;
    double r;
    if (!strcmp(method, "common")) {
        if (prec >= 0) {
            /* correctly rounded, half-even on the exact binary value, as Python's round() */
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            r = strtod(buf, NULL);
        } else {
            double s = pow(10.0, (double)-prec);
            r = nearbyint(x / s) * s;
        }
    } else {
        double s = pow(10.0, (double)prec);
        r = (!strcmp(method, "ceil") ? ceil(x * s) : floor(x * s)) / s;
    }
    *out = jv_float(r);
    return 0;
}

static int f_sort(nk_jctx *c, nk_jv v, const fargs *a, bool unique, int line, nk_jv *out) {
    const nk_jv *rev = unique ? NULL : arg(a, 0, "reverse");
    const nk_jv *cs = arg(a, unique ? 0 : 1, "case_sensitive"), *attr = arg(a, unique ? 1 : 2, "attribute");
    nk_jlist *items;
    if (nk_jiter(c, v, line, &items)) return -1;
    sort_item *it = nk_jalloc(c, (items->n + 1) * sizeof(sort_item));
    if (!it) return -1;
    for (size_t i = 0; i < items->n; i++) {
        nk_jv k = items->v[i];
        if (attr) {
            if (attr->t != JV_STR) return bad_arg(c, "sort", "attribute", line);
            if (get_path(c, k, attr->u.s, line, &k)) return -1;
        }
        if (lower_key(c, k, cs && nk_jv_truthy(*cs), &it[i].key)) return -1;
        it[i].val = items->v[i];
    }
    nk_jlist *res = nk_jlist_new(c, items->n);
    if (!res) return -1;
    if (unique) {
        for (size_t i = 0; i < items->n; i++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++) seen = nk_jv_eq(it[j].key, it[i].key);
            if (!seen) res->v[res->n++] = it[i].val;
            c->steps += i / 64;   /* quadratic: charge the comparisons, not just the items */
            if (nk_jstep(c, line)) return -1;
        }
    } else {
        if (sort_items(c, it, items->n, rev && nk_jv_truthy(*rev), line)) return -1;
        for (size_t i = 0; i < items->n; i++) res->v[res->n++] = it[i].val;
    }
    *out = list_v(res);
    return 0;
}

int nk_jdict_items(nk_jctx *c, const nk_jdict *d, nk_jlist **out) {
    nk_jlist *l = nk_jlist_new(c, d->n);
    if (!l) return -1;
    for (size_t i = 0; i < d->n; i++) {
        nk_jlist *pair = nk_jlist_new(c, 2);
        if (!pair) return -1;
        pair->v[0] = jv_str(d->k[i]);
        pair->v[1] = d->v[i];
        pair->n = 2;
        l->v[l->n++] = (nk_jv){ .t = JV_TUPLE, .u.l = pair };
    }
    *out = l;
    return 0;
}

int nk_jfilter(nk_jctx *c, const char *name, nk_jv v, const nk_jv *args, size_t n,
               const char **kwn, const nk_jv *kwv, size_t nkw, int line, nk_jv *out) {
    fargs a = { args, n, kwn, kwv, nkw };
    if (nk_jstep(c, line)) return -1;
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        const nk_jv *def = arg(&a, 0, "default_value"), *boolean = arg(&a, 1, "boolean");
        bool use = v.t == JV_UNDEF || (boolean && nk_jv_truthy(*boolean) && !nk_jv_truthy(v));
        if (use) {
            if (def) *out = *def;
            else return ret_str(c, "", 0, out);
        } else *out = v;
        return 0;
    }
    if (!strcmp(name, "tojson")) return f_tojson(c, v, &a, line, out);
    if (!strcmp(name, "safe") || !strcmp(name, "string")) {
        if (v.t == JV_STR) { *out = v; return 0; }
        const nk_jstr *s = soft_str(c, v);
        if (!s) return -1;
        *out = jv_str(s);
        return 0;
    }
    if (!strcmp(name, "trim")) {
        const nk_jv *chars = arg(&a, 0, "chars");
        const nk_jstr *s = soft_str(c, v);
        if (!s) return -1;
        if (chars && chars->t != JV_STR && chars->t != JV_NONE) return bad_arg(c, "trim", "chars", line);
        return nk_jstrip(c, s->s, s->len, chars && chars->t == JV_STR ? chars->u.s : NULL, 3, out);
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper") || !strcmp(name, "capitalize") || !strcmp(name, "title")) {
        const nk_jstr *s = soft_str(c, v);
        if (!s) return -1;
        return nk_jcase_map(c, s->s, s->len, name[0] == 'l' ? 'l' : name[0] == 'u' ? 'u' : name[0] == 'c' ? 'c' : 't', out);
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        switch (v.t) {
        case JV_STR: *out = jv_int((int64_t)nk_ju_count(v.u.s->s, v.u.s->len)); return 0;
        case JV_LIST: case JV_TUPLE: *out = jv_int((int64_t)v.u.l->n); return 0;
        case JV_DICT: case JV_NS: *out = jv_int((int64_t)v.u.d->n); return 0;
        case JV_UNDEF: *out = jv_int(0); return 0;
        case JV_LOOP: *out = jv_int(v.u.loop->length); return 0;
        default: return nk_jfail(c, NOOK_EINVAL, line, "object of type '%s' has no len()", nk_jv_type_name(v)), -1;
        }
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        nk_jlist *items;
        if (nk_jiter(c, v, line, &items)) return -1;
        if (!items->n) { *out = jv_undef(NULL); return 0; }
        *out = name[0] == 'f' ? items->v[0] : items->v[items->n - 1];
        return 0;
    }
    if (!strcmp(name, "join")) {
        const nk_jv *sep = arg(&a, 0, "d"), *attr = arg(&a, 1, "attribute");
        if (sep && sep->t != JV_STR) return bad_arg(c, "join", "d", line);
        nk_jlist *items;
        if (nk_jiter(c, v, line, &items)) return -1;
        nk_jbuf b = {0};
        for (size_t i = 0; i < items->n; i++) {
            nk_jv x = items->v[i];
            if (attr) {
                if (attr->t != JV_STR) return bad_arg(c, "join", "attribute", line);
                if (get_path(c, x, attr->u.s, line, &x)) return -1;
            }
            if (i && sep && nk_jbuf_put(c, &b, sep->u.s->s, sep->u.s->len)) return -1;
            if (nk_jv_str(c, &b, x)) return -1;
        }
        return ret_buf(c, &b, out);
    }
    if (!strcmp(name, "items")) {
        if (v.t == JV_UNDEF) { nk_jlist *l = nk_jlist_new(c, 0); if (!l) return -1; *out = list_v(l); return 0; }
        if (v.t != JV_DICT) return nk_jfail(c, NOOK_EINVAL, line, "can only get item pairs from a mapping"), -1;
        nk_jlist *l;
        if (nk_jdict_items(c, v.u.d, &l)) return -1;
        *out = list_v(l);
        return 0;
    }
    if (!strcmp(name, "dictsort")) {
        if (v.t != JV_DICT) return nk_jfail(c, NOOK_EINVAL, line, "dictsort: not a mapping"), -1;
        const nk_jv *cs = arg(&a, 0, "case_sensitive"), *by = arg(&a, 1, "by"), *rev = arg(&a, 2, "reverse");
        bool by_value = by && by->t == JV_STR && !strcmp(by->u.s->s, "value");
        nk_jlist *pairs;
        if (nk_jdict_items(c, v.u.d, &pairs)) return -1;
        sort_item *it = nk_jalloc(c, (pairs->n + 1) * sizeof(sort_item));
        if (!it) return -1;
        for (size_t i = 0; i < pairs->n; i++) {
            if (lower_key(c, pairs->v[i].u.l->v[by_value ? 1 : 0], cs && nk_jv_truthy(*cs), &it[i].key)) return -1;
            it[i].val = pairs->v[i];
        }
        if (sort_items(c, it, pairs->n, rev && nk_jv_truthy(*rev), line)) return -1;
        for (size_t i = 0; i < pairs->n; i++) pairs->v[i] = it[i].val;
        *out = list_v(pairs);
        return 0;
    }
    if (!strcmp(name, "map")) return f_map(c, v, &a, line, out);
    if (!strcmp(name, "select")) return f_select(c, v, &a, false, true, line, out);
    if (!strcmp(name, "reject")) return f_select(c, v, &a, false, false, line, out);
    if (!strcmp(name, "selectattr")) return f_select(c, v, &a, true, true, line, out);
    if (!strcmp(name, "rejectattr")) return f_select(c, v, &a, true, false, line, out);
    if (!strcmp(name, "replace")) {
        const nk_jv *o = arg(&a, 0, "old"), *nw = arg(&a, 1, "new"), *cnt = arg(&a, 2, "count");
        const nk_jstr *s = soft_str(c, v);
        if (!s || need_str(c, o, "replace", "old", line) || need_str(c, nw, "replace", "new", line)) return -1;
        int64_t count = -1;
        if (cnt && cnt->t != JV_NONE) { if (cnt->t != JV_INT) return bad_arg(c, "replace", "count", line); count = cnt->u.i; }
        return nk_jreplace(c, s, o->u.s, nw->u.s, count, out);
    }
    if (!strcmp(name, "list")) {
        nk_jlist *l;
        if (to_list(c, v, line, &l)) return -1;
        *out = list_v(l);
        return 0;
    }
    if (!strcmp(name, "int")) {
        const nk_jv *def = arg(&a, 0, "default"), *base = arg(&a, 1, "base");
        int64_t b = base && base->t == JV_INT ? base->u.i : 10;
        if (b < 2 || b > 36) return bad_arg(c, "int", "base", line);
        if (v.t == JV_INT) { *out = v; return 0; }
        if (v.t == JV_BOOL) { *out = jv_int(v.u.b); return 0; }
        if (v.t == JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) { *out = jv_int((int64_t)v.u.f); return 0; }
        int64_t x; double f;
        if (v.t == JV_STR && parse_int_str(v.u.s, b, &x)) { *out = jv_int(x); return 0; }
        if (v.t == JV_STR && parse_float_str(v.u.s, &f) && isfinite(f) && fabs(f) < 9.2e18) { *out = jv_int((int64_t)f); return 0; }
        *out = def ? *def : jv_int(0);
        return 0;
    }
    if (!strcmp(name, "float")) {
        const nk_jv *def = arg(&a, 0, "default");
        double f;
        if (v.t == JV_FLOAT) { *out = v; return 0; }
        if (v.t == JV_INT || v.t == JV_BOOL) { *out = jv_float(v.t == JV_INT ? (double)v.u.i : v.u.b); return 0; }
        if (v.t == JV_STR && parse_float_str(v.u.s, &f)) { *out = jv_float(f); return 0; }
        *out = def ? *def : jv_float(0.0);
        return 0;
    }
    if (!strcmp(name, "round")) return f_round(c, v, &a, line, out);
    if (!strcmp(name, "abs")) {
        if (v.t == JV_INT) {
            if (v.u.i == INT64_MIN) return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
            *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        } else if (v.t == JV_FLOAT) *out = jv_float(fabs(v.u.f));
        else if (v.t == JV_BOOL) *out = jv_int(v.u.b);
        else return nk_jfail(c, NOOK_EINVAL, line, "bad operand type for abs(): '%s'", nk_jv_type_name(v)), -1;
        return 0;
    }
    if (!strcmp(name, "reverse")) {
        if (v.t == JV_STR) {
            nk_jbuf b = {0};
            const char *s = v.u.s->s;
            size_t len = v.u.s->len, e = len;
            while (e > 0) {
                size_t st = e - 1;
                while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80 && e - st < 4) st--;
                uint32_t cp;
                size_t k = nk_ju_decode(s, len, st, &cp);
                if (st + k != e) { st = e - 1; k = 1; }   /* invalid byte: reverse it alone */
                if (nk_jbuf_put(c, &b, s + st, k)) return -1;
                e = st;
            }
            return ret_buf(c, &b, out);
        }
        nk_jlist *l;
        if (to_list(c, v, line, &l)) return -1;
        for (size_t i = 0; i < l->n / 2; i++) { nk_jv t = l->v[i]; l->v[i] = l->v[l->n - 1 - i]; l->v[l->n - 1 - i] = t; }
        *out = list_v(l);
        return 0;
    }
    if (!strcmp(name, "sort")) return f_sort(c, v, &a, false, line, out);
    if (!strcmp(name, "unique")) return f_sort(c, v, &a, true, line, out);
    if (!strcmp(name, "indent")) return f_indent(c, v, &a, line, out);
    if (!strcmp(name, "escape") || !strcmp(name, "e")) {
        const nk_jstr *s = soft_str(c, v);
        if (!s) return -1;
        nk_jbuf b = {0};
        for (size_t i = 0; i < s->len; i++) {
            const char *r = NULL;
            switch (s->s[i]) {
            case '&': r = "&amp;"; break;
            case '<': r = "&lt;"; break;
            case '>': r = "&gt;"; break;
            case '"': r = "&#34;"; break;
            case '\'': r = "&#39;"; break;
            }
            if (r ? nk_jbuf_puts(c, &b, r) : nk_jbuf_put(c, &b, s->s + i, 1)) return -1;
        }
        return ret_buf(c, &b, out);
    }
    if (!strcmp(name, "sum") || !strcmp(name, "min") || !strcmp(name, "max")) {
        nk_jlist *items;
        if (nk_jiter(c, v, line, &items)) return -1;
        if (name[1] == 'u') {
            const nk_jv *attr = arg(&a, 0, "attribute"), *start = arg(&a, 1, "start");
            nk_jv acc = start ? *start : jv_int(0);
            for (size_t i = 0; i < items->n; i++) {
                nk_jv x = items->v[i];
                if (attr && attr->t == JV_STR && get_path(c, x, attr->u.s, line, &x)) return -1;
                if (!jv_is_num(x) || !jv_is_num(acc))
                    return nk_jfail(c, NOOK_EINVAL, line, "sum: unsupported operand type '%s'", nk_jv_type_name(x)), -1;
                if (acc.t != JV_FLOAT && x.t != JV_FLOAT) {
                    int64_t r, p = acc.t == JV_INT ? acc.u.i : acc.u.b, q = x.t == JV_INT ? x.u.i : x.u.b;
                    if (__builtin_add_overflow(p, q, &r)) return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
                    acc = jv_int(r);
                } else {
                    double p = acc.t == JV_FLOAT ? acc.u.f : acc.t == JV_INT ? (double)acc.u.i : acc.u.b;
                    double q = x.t == JV_FLOAT ? x.u.f : x.t == JV_INT ? (double)x.u.i : x.u.b;
                    acc = jv_float(p + q);
                }
            }
            *out = acc;
            return 0;
        }
        const nk_jv *cs = arg(&a, 0, "case_sensitive"), *attr = arg(&a, 1, "attribute");
        if (!items->n) { *out = jv_undef(NULL); return 0; }
        nk_jv best = items->v[0], bk;
        if (attr && attr->t == JV_STR && get_path(c, best, attr->u.s, line, &bk)) return -1;
        if (!attr) bk = best;
        if (lower_key(c, bk, cs && nk_jv_truthy(*cs), &bk)) return -1;
        for (size_t i = 1; i < items->n; i++) {
            nk_jv k = items->v[i];
            if (attr && attr->t == JV_STR && get_path(c, k, attr->u.s, line, &k)) return -1;
            if (lower_key(c, k, cs && nk_jv_truthy(*cs), &k)) return -1;
            int r;
            if (nk_jv_cmp(c, k, bk, line, &r)) return -1;
            if (name[1] == 'i' ? r < 0 : r > 0) { best = items->v[i]; bk = k; }
        }
        *out = best;
        return 0;
    }
    if (!strcmp(name, "attr")) {
        const nk_jv *nm = arg(&a, 0, "name");
        if (need_str(c, nm, "attr", "name", line)) return -1;
        /* attr() is getattr only: a dict's keys are not attributes */
        if (v.t == JV_DICT) { *out = jv_undef(nm->u.s->s); return 0; }
        return nk_jgetattr(c, v, nm->u.s->s, nm->u.s->len, line, out);
    }
    if (!strcmp(name, "wordcount")) {
        const nk_jstr *s = soft_str(c, v);
        if (!s) return -1;
        int64_t words = 0; bool in_word = false;
        for (size_t i = 0; i < s->len;) {
            uint32_t cp;
            i += nk_ju_decode(s->s, s->len, i, &cp);
            bool w = (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_' || cp >= 0x80;
            if (w && !in_word) words++;
            in_word = w;
        }
        *out = jv_int(words);
        return 0;
    }
    return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'filter %s'", name), -1;
}

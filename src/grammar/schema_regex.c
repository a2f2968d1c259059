/*
 * schema_regex.c: a JSON schema "pattern" (a regular expression subset) -> a GBNF
 * expression over the characters of a JSON string.
 *
 * The subset (docs/grammar.md): the pattern must be anchored (^ at the start, $ at
 * the end, as llama.cpp's converter requires); literals, `.`, [classes] with ranges
 * and negation, \d \w \s \D \W \S, escapes \t \n \r \f \v \0 \xHH \uHHHH and escaped
 * punctuation, groups ( ) and (?: ), alternation |, quantifiers * + ? {m} {m,} {m,n}
 * (a lazy ? after them is accepted: it does not change the language). Refused:
 * lookaround, backreferences, \b \B, anchors in the middle, possessive quantifiers.
 *
 * The string's characters are written as JSON encodes them: `"` as \", `\` as \\,
 * control characters as their escapes; everything else as itself. \d \w \s mean
 * their ASCII sets (the sets every regex engine agrees on); their negations, and
 * `.`, avoid characters on which engines disagree, so the output matches under both
 * ECMA-262 and Python's re (what validators use).
 */
#include "grammar/gtext.h"
#include "grammar/grammar_internal.h"

#include <stdlib.h>

typedef struct rx {
    const char *s; size_t n, pos;
    nook_error *err; nook_status st;
    int depth;
} rx;

typedef struct cset { grange r[64]; int n; bool overflow; } cset;

__attribute__((format(printf, 2, 3)))
static bool rx_fail(rx *x, const char *fmt, ...) {
    if (x->st != NOOK_OK) return false;
    char m[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    x->st = nk_fail(x->err, NOOK_EUNSUPPORTED, "pattern: %s at offset %zu", m, x->pos);
    return false;
}

static void cs_add(cset *c, uint32_t lo, uint32_t hi) {
    if (c->n == 64) { c->overflow = true; return; }
    c->r[c->n++] = (grange){ lo, hi };
}

static int cmp_r(const void *a, const void *b) {
    const grange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void cs_norm(cset *c) {
    qsort(c->r, (size_t)c->n, sizeof(grange), cmp_r);
    int m = 0;
    for (int i = 0; i < c->n; i++) {
        if (m && c->r[i].lo <= c->r[m - 1].hi + 1) { if (c->r[i].hi > c->r[m - 1].hi) c->r[m - 1].hi = c->r[i].hi; }
        else c->r[m++] = c->r[i];
    }
    c->n = m;
}

static void cs_negate(cset *c) {
    cs_norm(c);
    cset o = { .n = 0 };
    uint32_t next = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->r[i].lo > next) cs_add(&o, next, c->r[i].lo - 1);
        next = c->r[i].hi + 1;
    }
    if (next <= 0x10FFFF) cs_add(&o, next, 0x10FFFF);
    o.overflow |= c->overflow;
    *c = o;
}

/* Removes [lo, hi] from a normalized set. */
static void cs_remove(cset *c, uint32_t lo, uint32_t hi) {
    cset o = { .n = 0 };
    for (int i = 0; i < c->n; i++) {
        grange r = c->r[i];
        if (r.hi < lo || r.lo > hi) { cs_add(&o, r.lo, r.hi); continue; }
        if (r.lo < lo) cs_add(&o, r.lo, lo - 1);
        if (r.hi > hi) cs_add(&o, hi + 1, r.hi);
    }
    o.overflow |= c->overflow;
    *c = o;
}

static bool cs_has(const cset *c, uint32_t cp) {
    for (int i = 0; i < c->n; i++) if (cp >= c->r[i].lo && cp <= c->r[i].hi) return true;
    return false;
}

/* Characters whose class differs between regex engines (Unicode spaces, digits and
 * letters): negated classes keep only ASCII there. */
static void shorthand(cset *c, char k) {
    switch (k) {
    case 'd': cs_add(c, '0', '9'); break;
    case 'w': cs_add(c, '0', '9'); cs_add(c, 'a', 'z'); cs_add(c, 'A', 'Z'); cs_add(c, '_', '_'); break;
    case 's': cs_add(c, '\t', '\r'); cs_add(c, ' ', ' '); break;
    default: {   /* D W S: the ASCII characters outside the class */
        cset t = { .n = 0 };
        shorthand(&t, (char)(k + 32));
        cs_negate(&t);
        cs_norm(&t);
        cs_remove(&t, 0x80, 0x10FFFF);
        if (k == 'S') cs_remove(&t, 0x1C, 0x1F);   /* Python's \s has these */
        for (int i = 0; i < t.n; i++) cs_add(c, t.r[i].lo, t.r[i].hi);
    }
    }
}

/* Writes a set of characters as a GBNF expression over their JSON encodings. */
static bool emit_set(rx *x, cset *c, sbuf *o) {
    cs_norm(c);
    if (c->overflow) return rx_fail(x, "character class too complex");
    cset plain = *c;
    cs_remove(&plain, 0, 0x1F);
    cs_remove(&plain, '"', '"');
    cs_remove(&plain, '\\', '\\');
    cs_remove(&plain, 0x7F, 0x7F);           /* as llama.cpp's char rule */
    int alts = 0;
    sb_puts(o, "(");
    if (plain.n) {
        sb_puts(o, "[");
        for (int i = 0; i < plain.n; i++) {
            sb_class_cp(o, plain.r[i].lo);
            if (plain.r[i].hi != plain.r[i].lo) { sb_puts(o, "-"); sb_class_cp(o, plain.r[i].hi); }
        }
        sb_puts(o, "]");
        alts++;
    }
    if (cs_has(c, '"')) { sb_puts(o, alts++ ? " | " : ""); sb_puts(o, "\"\\\\\\\"\""); }
    if (cs_has(c, '\\')) { sb_puts(o, alts++ ? " | " : ""); sb_puts(o, "\"\\\\\\\\\""); }
    if (cs_has(c, 0x7F)) { sb_puts(o, alts++ ? " | " : ""); sb_puts(o, "\"\\\\u007f\""); }
    for (uint32_t cc = 0; cc < 0x20; cc++) {
        if (!cs_has(c, cc)) continue;
        sb_puts(o, alts++ ? " | " : "");
        const char *e = cc == '\n' ? "n" : cc == '\t' ? "t" : cc == '\r' ? "r" : cc == '\b' ? "b" : cc == '\f' ? "f" : NULL;
        if (e) sb_printf(o, "\"\\\\%s\"", e);
        else sb_printf(o, "\"\\\\u%04x\"", cc);
    }
    sb_puts(o, ")");
    if (!alts) return rx_fail(x, "a character class that matches nothing");
    return true;
}

static int hexv(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int rpeek(const rx *x) { return x->pos < x->n ? (unsigned char)x->s[x->pos] : -1; }

/* One literal character (UTF-8 decoded). */
static bool rx_utf8(rx *x, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)x->s + x->pos;
    size_t left = x->n - x->pos;
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || (size_t)n > left) return rx_fail(x, "invalid UTF-8");
    uint32_t v = n == 1 ? c : c & (0x7Fu >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return rx_fail(x, "invalid UTF-8");
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    x->pos += (size_t)n;
    *cp = v;
    return true;
}

/* An escape after '\': either a class (into c, *is_set) or one character. */
static bool rx_escape(rx *x, cset *c, bool in_class) {
    x->pos++;                          /* the backslash */
    int e = rpeek(x);
    if (e < 0) return rx_fail(x, "pattern ends with a backslash");
    x->pos++;
    switch (e) {
    case 'd': case 'w': case 's': case 'D': case 'W': case 'S': shorthand(c, (char)e); return true;
    case 't': cs_add(c, '\t', '\t'); return true;
    case 'n': cs_add(c, '\n', '\n'); return true;
    case 'r': cs_add(c, '\r', '\r'); return true;
    case 'f': cs_add(c, '\f', '\f'); return true;
    case 'v': cs_add(c, '\v', '\v'); return true;
    case '0': cs_add(c, 0, 0); return true;
    case 'x': case 'u': {
        int nd = e == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int i = 0; i < nd; i++) {
            int h = hexv(rpeek(x));
            if (h < 0) return rx_fail(x, "expecting %d hex digits after \\%c", nd, e);
            v = v * 16 + (uint32_t)h;
            x->pos++;
        }
        cs_add(c, v, v);
        return true;
    }
    case 'b': if (in_class) { cs_add(c, '\b', '\b'); return true; } return rx_fail(x, "\\b (word boundary) is not supported");
    case 'B': return rx_fail(x, "\\B is not supported");
    default:
        if (e >= '1' && e <= '9') return rx_fail(x, "backreferences are not supported");
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) return rx_fail(x, "unknown escape \\%c", e);
        if (e >= 0x80) { x->pos--; uint32_t cp; if (!rx_utf8(x, &cp)) return false; cs_add(c, cp, cp); return true; }
        cs_add(c, (uint32_t)e, (uint32_t)e);
        return true;
    }
}

static bool rx_class(rx *x, cset *c) {
    x->pos++;                           /* [ */
    bool neg = rpeek(x) == '^';
    if (neg) x->pos++;
    bool first = true;
    while (rpeek(x) >= 0 && (rpeek(x) != ']' || first)) {
        first = false;
        uint32_t lo;
        if (rpeek(x) == '\\') {
            cset one = { .n = 0 };
            if (!rx_escape(x, &one, true)) return false;
            if (one.n != 1 || one.r[0].lo != one.r[0].hi) {   /* a shorthand class */
                for (int i = 0; i < one.n; i++) cs_add(c, one.r[i].lo, one.r[i].hi);
                continue;
            }
            lo = one.r[0].lo;
        } else if (!rx_utf8(x, &lo)) return false;
        uint32_t hi = lo;
        if (rpeek(x) == '-' && x->pos + 1 < x->n && x->s[x->pos + 1] != ']') {
            x->pos++;
            if (rpeek(x) == '\\') {
                cset one = { .n = 0 };
                if (!rx_escape(x, &one, true)) return false;
                if (one.n != 1 || one.r[0].lo != one.r[0].hi) return rx_fail(x, "a class shorthand as a range end");
                hi = one.r[0].lo;
            } else if (!rx_utf8(x, &hi)) return false;
            if (hi < lo) return rx_fail(x, "range end below its start");
        }
        cs_add(c, lo, hi);
    }
    if (rpeek(x) != ']') return rx_fail(x, "unterminated character class");
    x->pos++;
    if (neg) cs_negate(c);
    return true;
}

static bool rx_alt(rx *x, sbuf *o);

static bool rx_seq(rx *x, sbuf *o) {
    sb_puts(o, "(");
    bool any = false;
    for (;;) {
        int c = rpeek(x);
        if (c < 0 || c == '|' || c == ')') break;
        if (any) sb_puts(o, " ");
        any = true;
        if (c == '(') {
            if (++x->depth > 100) return rx_fail(x, "groups nested deeper than 100");
            x->pos++;
            if (rpeek(x) == '?') {
                if (x->pos + 1 < x->n && x->s[x->pos + 1] == ':') x->pos += 2;
                else return rx_fail(x, "lookaround and named groups are not supported");
            }
            if (!rx_alt(x, o)) return false;
            if (rpeek(x) != ')') return rx_fail(x, "expecting ')'");
            x->pos++;
            x->depth--;
        } else if (c == '[') {
            cset s = { .n = 0 };
            if (!rx_class(x, &s) || !emit_set(x, &s, o)) return false;
        } else if (c == '.') {
            x->pos++;
            cset s = { .n = 0 };
            cs_add(&s, 0, '\n' - 1);
            cs_add(&s, '\n' + 1, '\r' - 1);      /* not \n \r (ECMA), nor U+2028/9 */
            cs_add(&s, '\r' + 1, 0x2027);
            cs_add(&s, 0x202A, 0x10FFFF);
            if (!emit_set(x, &s, o)) return false;
        } else if (c == '\\') {
            cset s = { .n = 0 };
            if (!rx_escape(x, &s, false) || !emit_set(x, &s, o)) return false;
        } else if (c == '^' || c == '$') {
            return rx_fail(x, "'%c' is only supported at the start/end of the pattern", c);
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            return rx_fail(x, "'%c' without an item before it", c);
        } else {
            uint32_t cp;
            if (!rx_utf8(x, &cp)) return false;
            cset s = { .n = 0 };
            cs_add(&s, cp, cp);
            if (!emit_set(x, &s, o)) return false;
        }
        /* quantifier */
        c = rpeek(x);
        if (c == '*' || c == '+' || c == '?') { char q = (char)c; sb_put(o, &q, 1); x->pos++; }
        else if (c == '{') {
            size_t save = x->pos;
            x->pos++;
            long m = -1, M = -1;
            char num[16]; int k = 0;
            while (rpeek(x) >= '0' && rpeek(x) <= '9' && k < 8) num[k++] = (char)x->s[x->pos++];
            num[k] = 0;
            if (k) m = atol(num);
            bool comma = rpeek(x) == ',';
            if (comma) {
                x->pos++;
                k = 0;
                while (rpeek(x) >= '0' && rpeek(x) <= '9' && k < 8) num[k++] = (char)x->s[x->pos++];
                num[k] = 0;
                if (k) M = atol(num);
            } else M = m;
            if (rpeek(x) != '}' || m < 0) { x->pos = save; return rx_fail(x, "malformed {m,n} quantifier"); }
            x->pos++;
            if (M >= 0 && M < m) return rx_fail(x, "{%ld,%ld}: maximum below minimum", m, M);
            if (M >= 0) sb_printf(o, "{%ld,%ld}", m, M);
            else sb_printf(o, "{%ld,}", m);
        } else continue;
        if (rpeek(x) == '?') x->pos++;           /* lazy: same language */
        else if (rpeek(x) == '+') return rx_fail(x, "possessive quantifiers are not supported");
        c = rpeek(x);
        if (c == '*' || c == '+' || c == '{') return rx_fail(x, "a quantifier after a quantifier");
    }
    sb_puts(o, ")");
    return true;
}

static bool rx_alt(rx *x, sbuf *o) {
    sb_puts(o, "(");
    if (!rx_seq(x, o)) return false;
    while (rpeek(x) == '|') {
        x->pos++;
        sb_puts(o, " | ");
        if (!rx_seq(x, o)) return false;
    }
    sb_puts(o, ")");
    return true;
}

nook_status nk_regex_to_gbnf(const char *re, size_t len, sbuf *out, nook_error *err) {
    rx x = { .s = re, .n = len, .err = err };
    if (len < 2 || re[0] != '^' || re[len - 1] != '$' || (len >= 3 && re[len - 2] == '\\' &&
                                                           (len < 4 || re[len - 3] != '\\')))
        return nk_fail(err, NOOK_EUNSUPPORTED,
                       "pattern: only anchored patterns (^...$) are supported (as in llama.cpp)");
    x.pos = 1;
    x.n = len - 1;
    if (!rx_alt(&x, out)) return x.st;
    if (x.pos != x.n) { rx_fail(&x, "unbalanced ')'"); return x.st; }
    if (out->oom) return nk_fail(err, NOOK_ENOMEM, "pattern: out of memory");
    return NOOK_OK;
}

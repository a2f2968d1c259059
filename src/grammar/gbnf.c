/*
 * gbnf.c: the GBNF parser (llama.cpp's grammar dialect) and compiler into the flat
 * form of grammar_internal.h.
 *
 * Parsing follows llama.cpp's structure so the same texts mean the same thing: a
 * rule ends at a newline unless inside parentheses; a repetition applies to the
 * item just before it (a whole "literal", a [class], a rule name or a group).
 * Repetitions become generated rules:
 *   x*      R ::= x R |            (the tail call keeps the matcher's stacks flat)
 *   x+      x R  with R as for x*
 *   x?      R ::= x |
 *   x{m,n}  m copies of x, then n-m nested optionals R_k ::= x R_{k-1} |
 * After parsing: every referenced rule must exist, root must exist, and no rule may
 * reach itself without consuming a character (left recursion), because the matcher
 * expands rules top-down.
 */
#include "grammar/grammar_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct svec { gsym *v; int32_t n, cap; } svec;

typedef struct prule {
    char *name;
    int32_t next_gen;     /* suffix for the next rule generated from this one */
    svec *alts; int32_t n_alts, cap_alts;
    bool defined;
    size_t first_ref;     /* offset of the first reference (for "undefined" errors) */
} prule;

typedef struct cls_tmp { grange *v; int32_t n, cap; } cls_tmp;

typedef struct parser {
    const char *s; size_t len, pos;
    prule *rules; int32_t n_rules, cap_rules;
    int32_t *ix; size_t ix_cap;           /* open addressing: rule names -> ids (-1 empty) */
    grange *rng; int32_t n_rng, cap_rng;
    gclass *cls; int32_t n_cls, cap_cls;
    size_t n_syms;        /* total symbols, for the size limit */
    int depth;
    nook_error *err;
    nook_status status;
} parser;

static void where(const parser *p, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < p->len; i++) {
        if (p->s[i] == '\n') { l++; c = 1; }
        else if (((unsigned char)p->s[i] & 0xC0) != 0x80) c++;
    }
    *line = l; *col = c;
}

__attribute__((format(printf, 4, 5)))
static bool fail_at(parser *p, nook_status code, size_t off, const char *fmt, ...) {
    if (p->status != NOOK_OK) return false;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    where(p, off, &line, &col);
    p->status = nk_fail(p->err, code, "grammar: line %d, column %d: %s", line, col, msg);
    return false;
}

static bool oom(parser *p) {
    if (p->status == NOOK_OK) p->status = nk_fail(p->err, NOOK_ENOMEM, "grammar: out of memory");
    return false;
}

static bool grow(parser *p, void **v, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > (1 << 29)) return oom(p);
        nc *= 2;
    }
    void *nv = nk_realloc(*v, (size_t)nc * elem);
    if (!nv) return oom(p);
    *v = nv; *cap = nc;
    return true;
}

static bool push_sym(parser *p, svec *sv, int32_t type, int32_t arg) {
    if (++p->n_syms > NK_GRAMMAR_MAX_ELEMS)
        return fail_at(p, NOOK_ERANGE, p->pos, "grammar expands to more than %u symbols",
                       NK_GRAMMAR_MAX_ELEMS);
    if (!grow(p, (void **)&sv->v, &sv->cap, sv->n + 1, sizeof(gsym))) return false;
    sv->v[sv->n++] = (gsym){ type, arg };
    return true;
}

/* ---- rules ------------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Slot of name in the index (the empty slot where it would go if absent). */
static size_t name_slot(const parser *p, const char *name, size_t n) {
    size_t i = (size_t)name_hash(name, n) & (p->ix_cap - 1);
    for (;; i = (i + 1) & (p->ix_cap - 1)) {
        int32_t r = p->ix[i];
        if (r < 0) return i;
        const char *rn = p->rules[r].name;
        if (strncmp(rn, name, n) == 0 && rn[n] == 0) return i;
    }
}

static int32_t find_rule(parser *p, const char *name, size_t n) {
    if (!p->ix_cap) return -1;
    return p->ix[name_slot(p, name, n)];
}

static bool index_rule(parser *p, int32_t r) {
    if ((size_t)(p->n_rules + 1) * 2 > p->ix_cap) {
        size_t nc = p->ix_cap ? p->ix_cap * 2 : 64;
        int32_t *ni = nk_alloc_array(nc, sizeof(int32_t));
        if (!ni) return oom(p);
        for (size_t i = 0; i < nc; i++) ni[i] = -1;
        nk_free(p->ix);
        p->ix = ni; p->ix_cap = nc;
        for (int32_t k = 0; k < p->n_rules; k++) if (k != r) p->ix[name_slot(p, p->rules[k].name, strlen(p->rules[k].name))] = k;
    }
    p->ix[name_slot(p, p->rules[r].name, strlen(p->rules[r].name))] = r;
    return true;
}

static int32_t add_rule(parser *p, const char *name, size_t n) {
    if (!grow(p, (void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof(prule))) return -1;
    char *nm = nk_strndup(name, n);
    if (!nm) { oom(p); return -1; }
    p->rules[p->n_rules] = (prule){ .name = nm, .first_ref = p->pos };
    int32_t r = p->n_rules++;
    if (!index_rule(p, r)) return -1;
    return r;
}

static int32_t rule_id(parser *p, const char *name, size_t n) {
    int32_t r = find_rule(p, name, n);
    return r >= 0 ? r : add_rule(p, name, n);
}

/* A fresh rule named after its parent (parent_1, parent_2, ...). The '_' cannot appear in
 * a name the grammar's author writes (names are [a-zA-Z0-9-]), so a generated rule never
 * takes a name the grammar defines later (as llama.cpp's generate_symbol_id: with '-',
 * "x ::= (a)?" followed by "x-1 ::= ..." was "defined twice"; a fuzz_schema finding). */
static int32_t gen_rule(parser *p, int32_t parent) {
    char nm[300];
    for (;;) {
        int k = ++p->rules[parent].next_gen;
        snprintf(nm, sizeof nm, "%.200s_%d", p->rules[parent].name, k);
        if (find_rule(p, nm, strlen(nm)) < 0) break;
    }
    int32_t r = add_rule(p, nm, strlen(nm));
    if (r >= 0) p->rules[r].defined = true;
    return r;
}

static svec *new_alt(parser *p, int32_t r) {
    prule *ru = &p->rules[r];
    if (!grow(p, (void **)&ru->alts, &ru->cap_alts, ru->n_alts + 1, sizeof(svec))) return NULL;
    ru->alts[ru->n_alts] = (svec){ 0 };
    return &ru->alts[ru->n_alts++];
}

/* ---- classes ------------------------------------------------------------------------------- */

static int cmp_range(const void *a, const void *b) {
    const grange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* Stores a class (ranges in tmp, maybe negated) normalized: sorted, merged, positive. */
static int32_t add_class(parser *p, cls_tmp *t, bool negate) {
    if (t->n) qsort(t->v, (size_t)t->n, sizeof(grange), cmp_range);
    int32_t m = 0;
    for (int32_t i = 0; i < t->n; i++) {
        if (m && t->v[i].lo <= t->v[m - 1].hi + 1) {
            if (t->v[i].hi > t->v[m - 1].hi) t->v[m - 1].hi = t->v[i].hi;
        } else t->v[m++] = t->v[i];
    }
    if (!grow(p, (void **)&p->cls, &p->cap_cls, p->n_cls + 1, sizeof(gclass))) return -1;
    if (!grow(p, (void **)&p->rng, &p->cap_rng, p->n_rng + m + 1, sizeof(grange))) return -1;
    int32_t first = p->n_rng;
    if (!negate) {
        for (int32_t i = 0; i < m; i++) p->rng[p->n_rng++] = t->v[i];
    } else {
        uint32_t next = 0;
        for (int32_t i = 0; i < m; i++) {
            if (t->v[i].lo > next) p->rng[p->n_rng++] = (grange){ next, t->v[i].lo - 1 };
            next = t->v[i].hi + 1;
        }
        if (next <= 0x10FFFF) p->rng[p->n_rng++] = (grange){ next, 0x10FFFF };
    }
    p->cls[p->n_cls] = (gclass){ first, p->n_rng - first };
    return p->n_cls++;
}

static int32_t single_class(parser *p, uint32_t cp) {
    grange r = { cp, cp };
    cls_tmp t = { &r, 1, 1 };
    return add_class(p, &t, false);
}

/* ---- lexing -------------------------------------------------------------------------------- */

static int peek(const parser *p, size_t k) {
    return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : -1;
}

static bool is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void skip_space(parser *p, bool newline_ok) {
    for (;;) {
        int c = peek(p, 0);
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) p->pos++;
        else if (c == '#') { while (p->pos < p->len && p->s[p->pos] != '\n' && p->s[p->pos] != '\r') p->pos++; }
        else return;
    }
}

/* One UTF-8 code point at pos; false (with the error) for malformed bytes. */
static bool decode_utf8(parser *p, uint32_t *cp) {
    size_t at = p->pos;
    const unsigned char *s = (const unsigned char *)p->s;
    unsigned c = s[at];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || at + (size_t)n > p->len) return fail_at(p, NOOK_EFORMAT, at, "invalid UTF-8");
    uint32_t v = n == 1 ? c : c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[at + i] & 0xC0) != 0x80) return fail_at(p, NOOK_EFORMAT, at, "invalid UTF-8");
        v = (v << 6) | (s[at + i] & 0x3F);
    }
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < min_cp[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return fail_at(p, NOOK_EFORMAT, at, "invalid UTF-8");
    p->pos += (size_t)n;
    *cp = v;
    return true;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A character inside a literal or a class, escapes included. */
static bool parse_char(parser *p, uint32_t *cp) {
    if (p->pos >= p->len) return fail_at(p, NOOK_EFORMAT, p->pos, "unexpected end of input");
    if (p->s[p->pos] != '\\') return decode_utf8(p, cp);
    size_t at = p->pos;
    int e = peek(p, 1);
    int ndig = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (ndig) {
        uint32_t v = 0;
        for (int i = 0; i < ndig; i++) {
            int h = hexval(peek(p, 2 + (size_t)i));
            if (h < 0) return fail_at(p, NOOK_EFORMAT, at, "expecting %d hex digits after \\%c", ndig, e);
            v = (v << 4) | (uint32_t)h;
        }
        if (v > 0x10FFFF) return fail_at(p, NOOK_EFORMAT, at, "code point U+%X out of range", v);
        p->pos += 2 + (size_t)ndig;
        *cp = v;
        return true;
    }
    switch (e) {
    case 't': *cp = '\t'; break;
    case 'n': *cp = '\n'; break;
    case 'r': *cp = '\r'; break;
    case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '.': *cp = (uint32_t)e; break;
    default:
        if (e < 0) return fail_at(p, NOOK_EFORMAT, at, "unexpected end of input after \\");
        return fail_at(p, NOOK_EFORMAT, at, "unknown escape \\%c", e);
    }
    p->pos += 2;
    return true;
}

static bool parse_uint(parser *p, long *out) {
    size_t at = p->pos;
    long v = 0;
    if (peek(p, 0) < '0' || peek(p, 0) > '9') return fail_at(p, NOOK_EFORMAT, at, "expecting a number");
    while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
        v = v * 10 + (peek(p, 0) - '0');
        if (v > 1000000) return fail_at(p, NOOK_ERANGE, at, "repetition count too large");
        p->pos++;
    }
    *out = v;
    return true;
}

/* ---- grammar ------------------------------------------------------------------------------- */

static bool parse_alternates(parser *p, int32_t r, bool nested);

/* Replaces out[start..n) (the last item) by its repetition min..max (max < 0: no bound). */
static bool repeat_last(parser *p, int32_t r, svec *out, int32_t start, long min, long max) {
    int32_t ulen = out->n - start;
    if (ulen == 0) return true;                /* ""{2} or (){3,}: nothing repeated is nothing */
    gsym *unit = nk_alloc_array((size_t)ulen, sizeof(gsym));
    if (!unit) return oom(p);
    memcpy(unit, out->v + start, (size_t)ulen * sizeof(gsym));
    out->n = start;
    p->n_syms -= (size_t)ulen;
    bool ok = true;
    for (long i = 0; ok && i < min; i++)
        for (int32_t j = 0; ok && j < ulen; j++) ok = push_sym(p, out, unit[j].type, unit[j].arg);
    if (ok && max < 0) {                       /* R ::= unit R | */
        int32_t R = gen_rule(p, r);
        svec *a = R >= 0 ? new_alt(p, R) : NULL;
        ok = a != NULL;
        for (int32_t j = 0; ok && j < ulen; j++) ok = push_sym(p, a, unit[j].type, unit[j].arg);
        ok = ok && push_sym(p, a, GS_REF, R) && new_alt(p, R) && push_sym(p, out, GS_REF, R);
    } else if (ok && max > min) {              /* nested optionals */
        int32_t prev = -1;
        for (long k = 0; ok && k < max - min; k++) {
            int32_t R = gen_rule(p, r);
            svec *a = R >= 0 ? new_alt(p, R) : NULL;
            ok = a != NULL;
            for (int32_t j = 0; ok && j < ulen; j++) ok = push_sym(p, a, unit[j].type, unit[j].arg);
            if (ok && prev >= 0) ok = push_sym(p, a, GS_REF, prev);
            ok = ok && new_alt(p, R);
            prev = R;
        }
        ok = ok && push_sym(p, out, GS_REF, prev);
    }
    nk_free(unit);
    return ok;
}

static bool parse_sequence(parser *p, int32_t r, svec *out, bool nested) {
    int32_t last = -1;
    while (p->status == NOOK_OK && p->pos < p->len) {
        int c = peek(p, 0);
        size_t at = p->pos;
        if (c == '"') {
            p->pos++;
            last = out->n;
            while (p->pos < p->len && p->s[p->pos] != '"') {
                uint32_t cp;
                if (!parse_char(p, &cp)) return false;
                int32_t k = single_class(p, cp);
                if (k < 0 || !push_sym(p, out, GS_CHAR, k)) return false;
            }
            if (p->pos >= p->len) return fail_at(p, NOOK_EFORMAT, at, "unterminated literal");
            p->pos++;
        } else if (c == '[') {
            p->pos++;
            bool neg = peek(p, 0) == '^';
            if (neg) p->pos++;
            cls_tmp t = { 0 };
            while (p->pos < p->len && p->s[p->pos] != ']') {
                uint32_t lo, hi;
                if (!parse_char(p, &lo)) { nk_free(t.v); return false; }
                hi = lo;
                if (peek(p, 0) == '-' && peek(p, 1) != ']' && peek(p, 1) >= 0) {
                    p->pos++;
                    size_t rat = p->pos;
                    if (!parse_char(p, &hi)) { nk_free(t.v); return false; }
                    if (hi < lo) { nk_free(t.v); return fail_at(p, NOOK_EFORMAT, rat, "range end below its start"); }
                }
                if (!grow(p, (void **)&t.v, &t.cap, t.n + 1, sizeof(grange))) { nk_free(t.v); return false; }
                t.v[t.n++] = (grange){ lo, hi };
            }
            if (p->pos >= p->len) { nk_free(t.v); return fail_at(p, NOOK_EFORMAT, at, "unterminated character class"); }
            p->pos++;
            int32_t k = add_class(p, &t, neg);
            nk_free(t.v);
            last = out->n;
            if (k < 0 || !push_sym(p, out, GS_CHAR, k)) return false;
        } else if (c == '.') {
            p->pos++;
            cls_tmp t = { 0 };
            int32_t k = add_class(p, &t, true);
            last = out->n;
            if (k < 0 || !push_sym(p, out, GS_CHAR, k)) return false;
        } else if (is_word(c)) {
            size_t b = p->pos;
            while (is_word(peek(p, 0))) p->pos++;
            int32_t ref = rule_id(p, p->s + b, p->pos - b);
            last = out->n;
            if (ref < 0 || !push_sym(p, out, GS_REF, ref)) return false;
            if (!p->rules[ref].defined && p->rules[ref].first_ref > b) p->rules[ref].first_ref = b;
        } else if (c == '(') {
            if (++p->depth > NK_GRAMMAR_MAX_NESTING)
                return fail_at(p, NOOK_ERANGE, at, "parentheses nested deeper than %d", NK_GRAMMAR_MAX_NESTING);
            p->pos++;
            skip_space(p, true);
            int32_t sub = gen_rule(p, r);
            if (sub < 0 || !parse_alternates(p, sub, true)) return false;
            if (peek(p, 0) != ')') return fail_at(p, NOOK_EFORMAT, p->pos, "expecting ')' to close the '(' at offset %zu", at);
            p->pos++;
            p->depth--;
            last = out->n;
            if (!push_sym(p, out, GS_REF, sub)) return false;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last < 0) return fail_at(p, NOOK_EFORMAT, at, "'%c' without an item before it", c);
            long mn = 0, mx = -1;
            p->pos++;
            if (c == '+') mn = 1;
            else if (c == '?') mx = 1;
            else if (c == '{') {
                skip_space(p, nested);
                if (!parse_uint(p, &mn)) return false;
                skip_space(p, nested);
                if (peek(p, 0) == ',') {
                    p->pos++;
                    skip_space(p, nested);
                    if (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
                        if (!parse_uint(p, &mx)) return false;
                        if (mx < mn) return fail_at(p, NOOK_EFORMAT, at, "{%ld,%ld}: maximum below minimum", mn, mx);
                    }
                } else mx = mn;
                skip_space(p, nested);
                if (peek(p, 0) != '}') return fail_at(p, NOOK_EFORMAT, p->pos, "expecting '}'");
                p->pos++;
            }
            if (!repeat_last(p, r, out, last, mn, mx)) return false;
            last = -1;
        } else break;
        skip_space(p, nested);
    }
    return p->status == NOOK_OK;
}

static bool parse_alternates(parser *p, int32_t r, bool nested) {
    svec *a = new_alt(p, r);
    if (!a) return false;
    svec tmp = { 0 };
    if (!parse_sequence(p, r, &tmp, nested)) { nk_free(tmp.v); return false; }
    a = &p->rules[r].alts[p->rules[r].n_alts - 1];   /* rules may have moved */
    *a = tmp;
    while (peek(p, 0) == '|') {
        p->pos++;
        skip_space(p, true);
        svec t2 = { 0 };
        if (!parse_sequence(p, r, &t2, nested)) { nk_free(t2.v); return false; }
        a = new_alt(p, r);
        if (!a) { nk_free(t2.v); return false; }
        *a = t2;
    }
    return true;
}

static bool parse_rule(parser *p) {
    size_t at = p->pos;
    while (is_word(peek(p, 0))) p->pos++;
    if (p->pos == at) {
        int c = peek(p, 0);
        if (c >= 0x20 && c < 0x7F) return fail_at(p, NOOK_EFORMAT, at, "expecting a rule name, found '%c'", c);
        return fail_at(p, NOOK_EFORMAT, at, "expecting a rule name");
    }
    int32_t r = rule_id(p, p->s + at, p->pos - at);
    if (r < 0) return false;
    if (p->rules[r].defined)
        return fail_at(p, NOOK_EFORMAT, at, "rule '%s' defined twice", p->rules[r].name);
    p->rules[r].defined = true;
    skip_space(p, false);
    if (!(peek(p, 0) == ':' && peek(p, 1) == ':' && peek(p, 2) == '='))
        return fail_at(p, NOOK_EFORMAT, p->pos, "expecting '::=' after rule name '%s'", p->rules[r].name);
    p->pos += 3;
    skip_space(p, true);
    if (!parse_alternates(p, r, false)) return false;
    int c = peek(p, 0);
    if (c == '\r') p->pos += peek(p, 1) == '\n' ? 2 : 1;
    else if (c == '\n') p->pos++;
    else if (c >= 0) {
        if (c == ')') return fail_at(p, NOOK_EFORMAT, p->pos, "unbalanced ')'");
        return fail_at(p, NOOK_EFORMAT, p->pos, "expecting newline or end of input, found '%c'", c);
    }
    skip_space(p, true);
    return true;
}

/* ---- checks and flattening ------------------------------------------------------------------ */

/* Left recursion: rule A reaches itself through leftmost symbols that can all be
 * empty. Nullable rules first (fixed point), then a depth-first search over the
 * "may start with" edges. Iterative, so hostile chains of rules cannot overflow the
 * C stack. */
static bool check_left_recursion(parser *p, nk_grammar *g) {
    int32_t nr = g->n_rules;
    bool *nullable = nk_calloc((size_t)nr, 1);
    uint8_t *color = nk_calloc((size_t)nr, 1);
    int32_t *stk = nk_alloc_array((size_t)nr * 3 + 3, sizeof(int32_t));
    if (!nullable || !color || !stk) { nk_free(nullable); nk_free(color); nk_free(stk); return oom(p); }
    /* nullable, in time linear in the grammar: each alternative made only of rule
     * references counts the references not yet known nullable; a rule found
     * nullable decrements the alternatives that mention it (through an index of
     * occurrences), and one reaching zero makes its rule nullable. */
    int32_t na = g->n_alt;
    int32_t *pending = nk_alloc_array((size_t)na + 1, sizeof(int32_t));
    int32_t *alt_rule = nk_alloc_array((size_t)na + 1, sizeof(int32_t));
    int32_t *occ_first = nk_calloc((size_t)nr + 1, sizeof(int32_t));
    int32_t *occ = nk_alloc_array((size_t)g->n_sym + 1, sizeof(int32_t));
    int32_t *queue = nk_alloc_array((size_t)nr + 1, sizeof(int32_t));
    bool ok2 = pending && alt_rule && occ_first && occ && queue;
    int32_t qn = 0;
    for (int32_t r = 0; ok2 && r < nr; r++)
        for (int32_t a = 0; a < g->rules[r].n_alts; a++) {
            int32_t ai = g->rules[r].first_alt + a, cnt = 0;
            alt_rule[ai] = r;
            const gsym *s = &g->sym[g->alt_start[ai]];
            for (; s->type == GS_REF; s++) { cnt++; occ_first[s->arg]++; }
            pending[ai] = s->type == GS_END ? cnt : -1;       /* -1: has a character */
            if (pending[ai] == 0 && !nullable[r]) { nullable[r] = true; queue[qn++] = r; }
        }
    if (ok2) {   /* prefix sums: occurrences of rule r at occ[occ_first[r] .. occ_first[r+1]) */
        int32_t sum = 0;
        for (int32_t r = 0; r <= nr; r++) { int32_t c = r < nr ? occ_first[r] : 0; occ_first[r] = sum; sum += c; }
        int32_t *fill = nk_alloc_array((size_t)nr + 1, sizeof(int32_t));
        if (!fill) ok2 = false;
        else {
            memcpy(fill, occ_first, (size_t)(nr + 1) * sizeof(int32_t));
            for (int32_t ai = 0; ai < na; ai++)
                for (const gsym *s = &g->sym[g->alt_start[ai]]; s->type == GS_REF; s++) occ[fill[s->arg]++] = ai;
            nk_free(fill);
        }
    }
    for (int32_t qi = 0; ok2 && qi < qn; qi++) {
        int32_t r = queue[qi];
        for (int32_t k = occ_first[r]; k < occ_first[r + 1]; k++) {
            int32_t ai = occ[k];
            if (pending[ai] > 0 && --pending[ai] == 0 && !nullable[alt_rule[ai]]) {
                nullable[alt_rule[ai]] = true;
                queue[qn++] = alt_rule[ai];
            }
        }
    }
    nk_free(pending); nk_free(alt_rule); nk_free(occ_first); nk_free(occ); nk_free(queue);
    if (!ok2) { nk_free(nullable); nk_free(color); nk_free(stk); return oom(p); }
    /* Depth-first search over "r may start with rule x" edges; the stack holds
     * (rule, alternative, symbol offset) cursors so each edge is looked at once. */
    bool ok = true;
    for (int32_t root = 0; root < nr && ok; root++) {
        if (color[root]) continue;
        int32_t sp = 0;
        stk[sp++] = root; stk[sp++] = 0; stk[sp++] = 0;
        color[root] = 1;
        while (sp && ok) {
            int32_t r = stk[sp - 3], a = stk[sp - 2], k = stk[sp - 1];
            int32_t found = -1;
            while (a < g->rules[r].n_alts) {
                const gsym *s = &g->sym[g->alt_start[g->rules[r].first_alt + a] + k];
                if (s->type == GS_REF) {
                    found = s->arg;
                    if (nullable[s->arg]) k++; else { a++; k = 0; }
                    break;
                }
                a++; k = 0;
            }
            stk[sp - 2] = a; stk[sp - 1] = k;
            if (found < 0) { color[r] = 2; sp -= 3; continue; }
            if (color[found] == 1) {
                p->status = nk_fail(p->err, NOOK_EFORMAT,
                                    "grammar: left recursion: rule '%s' can reach itself without consuming input",
                                    g->rules[found].name);
                ok = false;
            } else if (color[found] == 0) {
                color[found] = 1;
                stk[sp++] = found; stk[sp++] = 0; stk[sp++] = 0;
            }
        }
    }
    nk_free(nullable); nk_free(color); nk_free(stk);
    return ok;
}

static void free_parser(parser *p) {
    for (int32_t i = 0; i < p->n_rules; i++) {
        nk_free(p->rules[i].name);
        for (int32_t a = 0; a < p->rules[i].n_alts; a++) nk_free(p->rules[i].alts[a].v);
        nk_free(p->rules[i].alts);
    }
    nk_free(p->rules);
    nk_free(p->ix);
    nk_free(p->rng);
    nk_free(p->cls);
}

void nk_grammar_free(nk_grammar *g) {
    if (!g) return;
    nk_gm_release(g);
    for (int32_t i = 0; i < g->n_rules; i++) nk_free(g->rules[i].name);
    nk_free(g->rules); nk_free(g->sym); nk_free(g->rng); nk_free(g->cls); nk_free(g->alt_start);
    nk_free(g);
}

int nk_grammar_n_rules(const nk_grammar *g) { return g ? g->n_rules : 0; }

nook_status nk_grammar_compile(const char *src, size_t len, const char *root,
                               nk_grammar **out, nook_error *err) {
    if (!out) return nk_fail(err, NOOK_EINVAL, "grammar: out is NULL");
    *out = NULL;
    if (!src) return nk_fail(err, NOOK_EINVAL, "grammar: no text");
    if (len > NK_GRAMMAR_MAX_SOURCE)
        return nk_fail(err, NOOK_ERANGE, "grammar: %zu bytes is more than the limit of %u", len,
                       NK_GRAMMAR_MAX_SOURCE);
    if (!root) root = "root";
    parser p = { .s = src, .len = len, .err = err };
    skip_space(&p, true);
    while (p.status == NOOK_OK && p.pos < p.len) parse_rule(&p);
    if (p.status == NOOK_OK && p.n_rules == 0) p.status = nk_fail(err, NOOK_EFORMAT, "grammar: no rules");
    for (int32_t i = 0; p.status == NOOK_OK && i < p.n_rules; i++)
        if (!p.rules[i].defined)
            fail_at(&p, NOOK_EFORMAT, p.rules[i].first_ref, "undefined rule '%s'", p.rules[i].name);
    int32_t rroot = p.status == NOOK_OK ? find_rule(&p, root, strlen(root)) : -1;
    if (p.status == NOOK_OK && rroot < 0)
        p.status = nk_fail(err, NOOK_EFORMAT, "grammar: no rule named '%s' (the start rule)", root);
    if (p.status != NOOK_OK) { free_parser(&p); return p.status; }

    nk_grammar *g = nk_calloc(1, sizeof *g);
    if (!g) { free_parser(&p); return nk_fail(err, NOOK_ENOMEM, "grammar: out of memory"); }
    g->n_rules = p.n_rules;
    g->root = rroot;
    int32_t n_alt = 0;
    size_t n_sym = 0;
    for (int32_t i = 0; i < p.n_rules; i++) {
        n_alt += p.rules[i].n_alts;
        for (int32_t a = 0; a < p.rules[i].n_alts; a++) n_sym += (size_t)p.rules[i].alts[a].n + 1;
    }
    g->rules = nk_calloc((size_t)p.n_rules, sizeof(grule));
    g->alt_start = nk_alloc_array((size_t)n_alt + 1, sizeof(int32_t));
    g->sym = nk_alloc_array(n_sym + 1, sizeof(gsym));
    if (!g->rules || !g->alt_start || !g->sym) {
        free_parser(&p); nk_grammar_free(g);
        return nk_fail(err, NOOK_ENOMEM, "grammar: out of memory");
    }
    int32_t ai = 0, si = 0;
    for (int32_t i = 0; i < p.n_rules; i++) {
        g->rules[i].name = p.rules[i].name;
        p.rules[i].name = NULL;
        g->rules[i].first_alt = ai;
        g->rules[i].n_alts = p.rules[i].n_alts;
        for (int32_t a = 0; a < p.rules[i].n_alts; a++) {
            g->alt_start[ai++] = si;
            if (p.rules[i].alts[a].n) memcpy(g->sym + si, p.rules[i].alts[a].v, (size_t)p.rules[i].alts[a].n * sizeof(gsym));
            si += p.rules[i].alts[a].n;
            g->sym[si++] = (gsym){ GS_END, 0 };
        }
    }
    g->n_sym = si; g->n_alt = ai;
    g->rng = p.rng; g->n_rng = p.n_rng; p.rng = NULL;
    g->cls = p.cls; g->n_cls = p.n_cls; p.cls = NULL;
    bool ok = check_left_recursion(&p, g);
    nook_status st = p.status;
    free_parser(&p);
    if (!ok) { nk_grammar_free(g); return st; }
    st = nk_gm_init(g, err);
    if (st != NOOK_OK) { nk_grammar_free(g); return st; }
    *out = g;
    return NOOK_OK;
}

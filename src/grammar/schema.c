/*
 * schema.c: JSON schema -> GBNF, in the manner of llama.cpp's
 * json-schema-to-grammar: one rule per schema node, the same whitespace rule
 * (`space ::= | " " | "\n"{1,2} [ \t]{0,20}` after every token), properties in
 * schema order with the required ones mandatory, no additional properties unless
 * the schema asks for them. docs/grammar.md lists what is supported; a keyword
 * outside that list that would constrain the value is refused by name, never
 * ignored. Where a validator and llama.cpp's rules could disagree, the grammar
 * makes the narrower choice so every output validates (dates exist, \u escapes
 * are not surrogates, additional keys never repeat a declared property).
 */
#include "grammar/gtext.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#define MAX_DEPTH 64
#define INF_COUNT -1

typedef struct crule { char *name; char *body; } crule;
typedef struct cref { char *ref; char *name; } cref;

typedef struct conv {
    json_t *doc;
    crule *rules; int n_rules, cap_rules;
    cref *refs; int n_refs, cap_refs;
    size_t total;
    int depth;
    nook_error *err;
    nook_status st;
} conv;

__attribute__((format(printf, 3, 4)))
static const char *cfail(conv *c, nook_status code, const char *fmt, ...) {
    if (c->st != NOOK_OK) return NULL;
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    c->st = nk_fail(c->err, code, "schema: %s", m);
    return NULL;
}

/* ---- rules -------------------------------------------------------------------------------------- */

static const char *find(conv *c, const char *name) {
    for (int i = 0; i < c->n_rules; i++) if (strcmp(c->rules[i].name, name) == 0) return c->rules[i].name;
    return NULL;
}

/* Adds name ::= body (taking body); a name in use with another body gets a numeric
 * suffix; an identical rule is reused. Returns the rule's name (owned by c). */
static const char *add_rule(conv *c, const char *hint, char *body) {
    if (!body) return cfail(c, NOOK_ENOMEM, "out of memory");
    char name[128];
    size_t k = 0;
    for (const char *p = hint; *p && k < 60; p++)
        name[k++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '-';
    if (!k) name[k++] = 'r';
    name[k] = 0;
    char cand[140];
    snprintf(cand, sizeof cand, "%s", name);
    for (int i = 1;; i++) {
        int found = -1;
        for (int j = 0; j < c->n_rules; j++) if (strcmp(c->rules[j].name, cand) == 0) { found = j; break; }
        if (found < 0) break;
        if (c->rules[found].body && strcmp(c->rules[found].body, body) == 0) { nk_free(body); return c->rules[found].name; }
        snprintf(cand, sizeof cand, "%s%d", name, i);
    }
    c->total += strlen(cand) + strlen(body) + 6;
    if (c->total > NK_SCHEMA_MAX_GBNF) {
        nk_free(body);
        return cfail(c, NOOK_ERANGE, "the grammar would exceed %u bytes (a schema too large)", NK_SCHEMA_MAX_GBNF);
    }
    if (c->n_rules == c->cap_rules) {
        int nc = c->cap_rules ? c->cap_rules * 2 : 32;
        crule *nr = nk_realloc(c->rules, (size_t)nc * sizeof(crule));
        if (!nr) { nk_free(body); return cfail(c, NOOK_ENOMEM, "out of memory"); }
        c->rules = nr; c->cap_rules = nc;
    }
    char *nm = nk_strdup(cand);
    if (!nm) { nk_free(body); return cfail(c, NOOK_ENOMEM, "out of memory"); }
    c->rules[c->n_rules++] = (crule){ nm, body };
    return nm;
}

static char *take(sbuf *b) {
    if (b->oom) { sb_free(b); return NULL; }
    if (!b->p) return nk_strdup("");
    char *p = b->p;
    b->p = NULL;
    return p;
}

static const char *k_space = "| \" \" | \"\\n\"{1,2} [ \\t]{0,20}";

/* The primitive rules (as llama.cpp's), added on first use. */
static const char *prim(conv *c, const char *name) {
    const char *have = find(c, name);
    if (have) return have;
    static const struct { const char *name, *body, *deps; } P[] = {
        { "space", NULL, "" },
        { "boolean", "(\"true\" | \"false\") space", "space" },
        { "null", "\"null\" space", "space" },
        { "decimal-part", "[0-9]{1,16}", "" },
        { "integral-part", "[0] | [1-9] [0-9]{0,15}", "" },
        { "number", "(\"-\"? integral-part) (\".\" decimal-part)? ([eE] [-+]? integral-part)? space",
          "integral-part decimal-part space" },
        { "integer", "(\"-\"? integral-part) space", "integral-part space" },
        /* \u escapes exclude surrogates: a validator decodes a pair as one character */
        { "char", "[^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))", "" },
        { "string", "\"\\\"\" char* \"\\\"\" space", "char space" },
        { "value", "object | array | string | number | boolean | null", "object array string number boolean null" },
        { "object", "\"{\" space ( string \":\" space value (\",\" space string \":\" space value)* )? \"}\" space", "string value space" },
        { "array", "\"[\" space ( value (\",\" space value)* )? \"]\" space", "value space" },
        { "uuid", "\"\\\"\" [0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12} \"\\\"\" space", "space" },
        /* dates that exist in every year (February to the 28th), years 1000-9999 */
        { "date", "[1-9] [0-9]{3} \"-\" ( (\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01]) | (\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\") | \"02\" \"-\" (\"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8]) )", "" },
        { "time", "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{3})? (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])", "" },
        { "date-time", "date \"T\" time", "date time" },
        { "date-string", "\"\\\"\" date \"\\\"\" space", "date space" },
        { "time-string", "\"\\\"\" time \"\\\"\" space", "time space" },
        { "date-time-string", "\"\\\"\" date-time \"\\\"\" space", "date-time space" },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(P); i++) {
        if (strcmp(P[i].name, name) != 0) continue;
        /* reserve the name first (value/object/array refer to each other) */
        const char *nm = add_rule(c, name, nk_strdup(P[i].body ? P[i].body : k_space));
        char deps[128], *save = NULL;
        snprintf(deps, sizeof deps, "%s", P[i].deps);
        for (char *tok = strtok_r(deps, " ", &save); tok && c->st == NOOK_OK; tok = strtok_r(NULL, " ", &save))
            if (!find(c, tok)) prim(c, tok);
        return nm;
    }
    return cfail(c, NOOK_EINTERNAL, "no primitive '%s'", name);
}

/* ---- literals ------------------------------------------------------------------------------------ */

/* A JSON value written compactly, as a GBNF literal, followed by space. */
static bool lit_value(conv *c, sbuf *b, const json_t *v) {
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!txt) { cfail(c, NOOK_ENOMEM, "out of memory"); return false; }
    sb_gbnf_lit(b, txt, strlen(txt));
    free(txt);
    return true;
}

/* ---- integer and number ranges ------------------------------------------------------------------- */

/* Digit strings x..y of the same length L (from position i), as GBNF. */
static void digits_range(sbuf *b, const char *x, const char *y, int i, int L) {
    if (i == L) return;
    if (x[i] == y[i]) {
        sb_printf(b, "\"%c\"", x[i]);
        if (i + 1 < L) { sb_puts(b, " "); digits_range(b, x, y, i + 1, L); }
        return;
    }
    bool x0 = true, y9 = true;
    for (int k = i + 1; k < L; k++) { x0 &= x[k] == '0'; y9 &= y[k] == '9'; }
    if (x0 && y9) {
        sb_printf(b, "[%c-%c]", x[i], y[i]);
        if (i + 1 < L) sb_printf(b, " [0-9]{%d}", L - i - 1);
        return;
    }
    char nines[24], zeros[24];
    memcpy(nines, x, (size_t)L); memcpy(zeros, y, (size_t)L);
    for (int k = i + 1; k < L; k++) { nines[k] = '9'; zeros[k] = '0'; }
    nines[L] = zeros[L] = 0;
    sb_puts(b, "(");
    sb_printf(b, "\"%c\" ", x[i]);
    digits_range(b, x, nines, i + 1, L);
    if (x[i] + 1 <= y[i] - 1) {
        sb_printf(b, " | [%c-%c]", x[i] + 1, y[i] - 1);
        sb_printf(b, " [0-9]{%d}", L - i - 1);
    }
    sb_printf(b, " | \"%c\" ", y[i]);
    digits_range(b, zeros, y, i + 1, L);
    sb_puts(b, ")");
}

static int ndigits(int64_t v) { int n = 1; while (v >= 10) { v /= 10; n++; } return n; }
static int64_t pow10i(int n) { int64_t p = 1; while (n-- > 0) p *= 10; return p; }

/* Non-negative integers lo..hi (hi < 0: unbounded; at most 16 digits, as llama.cpp). */
static void uint_range(sbuf *b, int64_t lo, int64_t hi) {
    int Llo = ndigits(lo), Lhi = hi < 0 ? Llo : ndigits(hi);
    sb_puts(b, "(");
    bool first = true;
    for (int L = Llo; L <= Lhi; L++) {
        int64_t a = L == 1 ? 0 : pow10i(L - 1), z = pow10i(L) - 1;
        if (lo > a) a = lo;
        if (hi >= 0 && hi < z) z = hi;
        if (a > z) continue;
        char xs[40], ys[40];   /* L <= 16: bounds are within 10^15 */
        snprintf(xs, sizeof xs, "%0*lld", L & 31, (long long)a);
        snprintf(ys, sizeof ys, "%0*lld", L & 31, (long long)z);
        if (!first) sb_puts(b, " | ");
        first = false;
        digits_range(b, xs, ys, 0, L);
    }
    if (hi < 0 && Llo < 16) {
        if (!first) sb_puts(b, " | ");
        sb_printf(b, "[1-9] [0-9]{%d,15}", Llo);
    }
    sb_puts(b, ")");
}

/* Integers in [lo, hi] (either bound optional). */
static void int_range(sbuf *b, bool has_lo, int64_t lo, bool has_hi, int64_t hi) {
    bool neg = !has_lo || lo < 0, pos = !has_hi || hi >= 0;
    sb_puts(b, "(");
    if (neg) {
        int64_t a = (has_hi && hi < 0) ? -hi : 1, z = has_lo ? -lo : -1;
        sb_puts(b, "\"-\" ");
        uint_range(b, a, z);
    }
    if (pos) {
        if (neg) sb_puts(b, " | ");
        uint_range(b, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
    }
    sb_puts(b, ")");
}

/* Numbers x with a <= x <= z (z < 0: unbounded), a and z non-negative integers: an
 * integer part and optional fraction, no exponent. */
static void nonneg_number(sbuf *b, int64_t a, int64_t z) {
    sb_puts(b, "(");
    if (z < 0) { uint_range(b, a, -1); sb_puts(b, " (\".\" [0-9]{1,16})?"); }
    else if (a == z) sb_printf(b, "\"%lld\" (\".\" \"0\"{1,16})?", (long long)a);
    else {
        uint_range(b, a, z - 1);
        sb_printf(b, " (\".\" [0-9]{1,16})? | \"%lld\" (\".\" \"0\"{1,16})?", (long long)z);
    }
    sb_puts(b, ")");
}

static void number_range(sbuf *b, bool has_lo, int64_t lo, bool has_hi, int64_t hi) {
    bool neg = !has_lo || lo < 0, pos = !has_hi || hi >= 0;
    sb_puts(b, "(");
    if (neg) {
        sb_puts(b, "\"-\" ");
        nonneg_number(b, (has_hi && hi < 0) ? -hi : 0, has_lo ? -lo : -1);
    }
    if (pos) {
        if (neg) sb_puts(b, " | ");
        nonneg_number(b, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
    }
    sb_puts(b, ")");
}

/* A bound as an integer within +-10^15; refuses other values naming the keyword. */
static bool int_bound(conv *c, const json_t *s, const char *kw, bool integer_type, bool *has, int64_t *v) {
    json_t *j = json_object_get(s, kw);
    if (!j) return true;
    if (!json_is_number(j)) { cfail(c, NOOK_EINVAL, "'%s' must be a number", kw); return false; }
    double d = json_number_value(j);
    bool excl = strncmp(kw, "exclusive", 9) == 0, is_min = strstr(kw, "inimum") != NULL;
    if (fabs(d) > 1e15) { cfail(c, NOOK_EUNSUPPORTED, "'%s' %g: bounds beyond 10^15 are not supported", kw, d); return false; }
    double r;
    if (integer_type) {
        r = is_min ? (excl ? floor(d) + 1 : ceil(d)) : (excl ? ceil(d) - 1 : floor(d));
    } else {
        if (excl) { cfail(c, NOOK_EUNSUPPORTED, "'%s' on a number (only on integers) is not supported", kw); return false; }
        if (d != floor(d)) { cfail(c, NOOK_EUNSUPPORTED, "'%s' %g: number bounds must be integers", kw, d); return false; }
        r = d;
    }
    int64_t iv = (int64_t)r;
    if (*has) *v = is_min ? (iv > *v ? iv : *v) : (iv < *v ? iv : *v);
    else *v = iv;
    *has = true;
    return true;
}

/* ---- the converter --------------------------------------------------------------------------------- */

static const char *visit(conv *c, json_t *s, const char *name);

static const char *k_known[] = {
    "type", "properties", "required", "additionalProperties", "enum", "const", "anyOf", "oneOf", "allOf",
    "$ref", "$defs", "definitions", "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength",
    "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format",
};
static const char *k_annotations[] = {
    "title", "description", "examples", "$schema", "$id", "$comment", "default", "deprecated", "readOnly",
    "writeOnly", "$anchor", "contentMediaType", "contentEncoding",
};

static bool in_list(const char *k, const char **l, size_t n) {
    for (size_t i = 0; i < n; i++) if (strcmp(k, l[i]) == 0) return true;
    return false;
}

static bool check_keywords(conv *c, json_t *s) {
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (in_list(k, k_known, NK_ARRAY_LEN(k_known)) || in_list(k, k_annotations, NK_ARRAY_LEN(k_annotations))) continue;
        if (strcmp(k, "uniqueItems") == 0 && json_is_false(v)) continue;
        cfail(c, NOOK_EUNSUPPORTED, "keyword '%s' is not supported", k);
        return false;
    }
    return true;
}

/* "#/a/b~1c" within the document. */
static json_t *resolve(conv *c, const char *ref) {
    if (ref[0] != '#') return (json_t *)cfail(c, NOOK_EUNSUPPORTED, "$ref '%s': only references within the document (#/...) are supported", ref);
    json_t *cur = c->doc;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char seg[256];
        size_t k = 0;
        while (*p && *p != '/' && k < sizeof seg - 1) {
            if (p[0] == '~' && p[1] == '1') { seg[k++] = '/'; p += 2; }
            else if (p[0] == '~' && p[1] == '0') { seg[k++] = '~'; p += 2; }
            else seg[k++] = *p++;
        }
        seg[k] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, seg);
        else if (json_is_array(cur)) cur = json_array_get(cur, (size_t)strtoul(seg, NULL, 10));
        else cur = NULL;
        if (!cur) return (json_t *)cfail(c, NOOK_ENOTFOUND, "$ref '%s' points to nothing", ref);
    }
    if (*p) return (json_t *)cfail(c, NOOK_EUNSUPPORTED, "$ref '%s' is not a JSON pointer", ref);
    return cur;
}

static const char *visit_ref(conv *c, const char *ref) {
    for (int i = 0; i < c->n_refs; i++) if (strcmp(c->refs[i].ref, ref) == 0) return c->refs[i].name;
    json_t *target = resolve(c, ref);
    if (!target) return NULL;
    const char *last = strrchr(ref, '/');
    char hint[80];
    snprintf(hint, sizeof hint, "ref-%s", last ? last + 1 : "root");
    /* reserve the name with a placeholder body so recursion refers to it */
    char placeholder[64];
    snprintf(placeholder, sizeof placeholder, "<pending %d>", c->n_refs);
    const char *name = add_rule(c, hint, nk_strdup(placeholder));
    if (!name) return NULL;
    if (c->n_refs == c->cap_refs) {
        int nc = c->cap_refs ? c->cap_refs * 2 : 16;
        cref *nr = nk_realloc(c->refs, (size_t)nc * sizeof(cref));
        if (!nr) return cfail(c, NOOK_ENOMEM, "out of memory");
        c->refs = nr; c->cap_refs = nc;
    }
    c->refs[c->n_refs].ref = nk_strdup(ref);
    c->refs[c->n_refs].name = (char *)name;
    if (!c->refs[c->n_refs].ref) return cfail(c, NOOK_ENOMEM, "out of memory");
    c->n_refs++;
    char sub[90];
    snprintf(sub, sizeof sub, "%s-body", name);
    const char *body = visit(c, target, sub);
    if (!body) return NULL;
    for (int i = 0; i < c->n_rules; i++)
        if (c->rules[i].name == name) { nk_free(c->rules[i].body); c->rules[i].body = nk_strdup(body); break; }
    return name;
}

/* Keys that are not any of names: a trie over the names, one rule per node. */
static const char *not_keys(conv *c, const char *base, const char **names, int n, size_t depth) {
    /* children: distinct next bytes among names sharing the prefix (names are already
     * filtered to those with this prefix); at depth, a name ending here is terminal */
    bool terminal = false;
    sbuf b = { 0 };
    sb_puts(&b, "(");
    char seen[256] = { 0 };
    int alts = 0;
    for (int i = 0; i < n; i++) {
        size_t L = strlen(names[i]);
        if (L == depth) { terminal = true; continue; }
        unsigned char ch = (unsigned char)names[i][depth];
        if (seen[ch]) continue;
        seen[ch] = 1;
        const char *sub[256];
        int m = 0;
        for (int j = 0; j < n && m < 256; j++)
            if (strlen(names[j]) > depth && (unsigned char)names[j][depth] == ch) sub[m++] = names[j];
        char hint[80];
        snprintf(hint, sizeof hint, "%s-k", base);
        const char *r = not_keys(c, hint, sub, m, depth + 1);
        if (!r) { sb_free(&b); return NULL; }
        char one[2] = { (char)ch, 0 };
        if (alts++) sb_puts(&b, " | ");
        sb_gbnf_lit(&b, one, 1);
        sb_printf(&b, " %s", r);
    }
    /* any other byte: the rest is free (plain characters, no escapes, so a key
     * never spells a declared name through \u escapes) */
    if (alts++) sb_puts(&b, " | ");
    sb_puts(&b, "[^\"\\\\\\x7F\\x00-\\x1F");
    for (int ch = 0x20; ch < 256; ch++) if (seen[ch]) { uint32_t cp = (uint32_t)ch; sb_class_cp(&b, cp); }
    sb_puts(&b, "] [^\"\\\\\\x7F\\x00-\\x1F]*");
    if (!terminal) sb_puts(&b, " | ");    /* ending here is fine unless a name ends here */
    sb_puts(&b, ")");
    return add_rule(c, base, take(&b));
}

static const char *visit_object(conv *c, json_t *s, const char *name) {
    json_t *props = json_object_get(s, "properties");
    json_t *req = json_object_get(s, "required");
    json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return cfail(c, NOOK_EINVAL, "'properties' must be an object");
    if (req && !json_is_array(req)) return cfail(c, NOOK_EINVAL, "'required' must be an array");
    size_t np = props ? json_object_size(props) : 0;
    if (np > 1000) return cfail(c, NOOK_ERANGE, "more than 1000 properties");
    const char **keys = nk_calloc(np + 1, sizeof(char *));
    const char **kv = nk_calloc(np + 1, sizeof(char *));
    bool *isreq = nk_calloc(np + 1, sizeof(bool));
    if (!keys || !kv || !isreq) { nk_free(keys); nk_free(kv); nk_free(isreq); return cfail(c, NOOK_ENOMEM, "out of memory"); }
    size_t i = 0;
    const char *k;
    json_t *v;
    const char *result = NULL;
    json_object_foreach(props, k, v) {
        keys[i] = k;
        char hint[100];
        snprintf(hint, sizeof hint, "%s-%s", name, k);
        const char *vr = visit(c, v, hint);
        if (!vr) goto done;
        sbuf b = { 0 };
        json_t *ks = json_string(k);
        char *kt = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!kt) { cfail(c, NOOK_ENOMEM, "out of memory"); goto done; }
        sb_gbnf_lit(&b, kt, strlen(kt));
        free(kt);
        sb_printf(&b, " space \":\" space %s", vr);
        snprintf(hint, sizeof hint, "%s-%s-kv", name, k);
        kv[i] = add_rule(c, hint, take(&b));
        if (!kv[i]) goto done;
        prim(c, "space");
        i++;
    }
    size_t nreq = 0;
    for (size_t r = 0; req && r < json_array_size(req); r++) {
        const char *rn = json_string_value(json_array_get(req, r));
        if (!rn) { cfail(c, NOOK_EINVAL, "'required' must list strings"); goto done; }
        bool found = false;
        for (size_t j = 0; j < np; j++) if (strcmp(keys[j], rn) == 0) { if (!isreq[j]) nreq++; isreq[j] = true; found = true; }
        if (!found) { cfail(c, NOOK_EUNSUPPORTED, "'required' names '%s', which 'properties' does not define", rn); goto done; }
    }
    /* additional properties */
    const char *addkv = NULL;
    if (addl && !json_is_false(addl)) {
        const char *vr = json_is_true(addl) ? prim(c, "value") : visit(c, addl, "additional-value");
        if (!vr) goto done;
        const char *keyr;
        for (size_t j = 0; j < np; j++) {
            bool ascii = strlen(keys[j]) <= 64;
            for (const char *q = keys[j]; *q && ascii; q++) ascii = (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7F;
            if (!ascii) { cfail(c, NOOK_EUNSUPPORTED, "additionalProperties beside a property name that is not printable ASCII of at most 64 bytes ('%.40s')", keys[j]); goto done; }
        }
        if (np) {
            char hint[100];
            snprintf(hint, sizeof hint, "%s-other-key", name);
            const char *inner = not_keys(c, hint, keys, (int)np, 0);
            if (!inner) goto done;
            sbuf kb = { 0 };
            sb_printf(&kb, "\"\\\"\" %s \"\\\"\" space", inner);
            keyr = add_rule(c, hint, take(&kb));
        } else keyr = prim(c, "string");
        if (!keyr) goto done;
        sbuf b = { 0 };
        sb_printf(&b, "%s \":\" space %s", keyr, vr);
        char hint[100];
        snprintf(hint, sizeof hint, "%s-additional-kv", name);
        addkv = add_rule(c, hint, take(&b));
        if (!addkv) goto done;
    }
    prim(c, "space");
    sbuf b = { 0 };
    sb_puts(&b, "\"{\" space ");
    if (nreq) {
        bool first = true;
        for (size_t j = 0; j < np; j++) if (isreq[j]) { sb_printf(&b, first ? "%s" : " \",\" space %s", kv[j]); first = false; }
        for (size_t j = 0; j < np; j++) if (!isreq[j]) sb_printf(&b, " (\",\" space %s)?", kv[j]);
        if (addkv) sb_printf(&b, " (\",\" space %s)*", addkv);
    } else if (np || addkv) {
        /* no required key: the first one present has no comma before it */
        sb_puts(&b, "(");
        int alts = 0;
        for (size_t j = 0; j < np; j++) {
            sb_printf(&b, "%s%s", alts++ ? " | " : "", kv[j]);
            for (size_t t = j + 1; t < np; t++) sb_printf(&b, " (\",\" space %s)?", kv[t]);
            if (addkv) sb_printf(&b, " (\",\" space %s)*", addkv);
        }
        if (addkv) sb_printf(&b, "%s%s (\",\" space %s)*", alts++ ? " | " : "", addkv, addkv);
        sb_puts(&b, ")?");
    }
    sb_puts(&b, " \"}\" space");
    result = add_rule(c, name, take(&b));
done:
    nk_free(keys); nk_free(kv); nk_free(isreq);
    return result;
}

static bool count_kw(conv *c, json_t *s, const char *kw, long *out) {
    json_t *j = json_object_get(s, kw);
    if (!j) return true;
    if (!json_is_integer(j) || json_integer_value(j) < 0) { cfail(c, NOOK_EINVAL, "'%s' must be a non-negative integer", kw); return false; }
    if (json_integer_value(j) > 100000) { cfail(c, NOOK_ERANGE, "'%s' %lld is above the limit of 100000", kw, (long long)json_integer_value(j)); return false; }
    *out = (long)json_integer_value(j);
    return true;
}

/* "(" item ("," space item){lo-1,hi-1} ")" with lo/hi item counts (hi INF_COUNT: no bound). */
static void list_of(sbuf *b, const char *item, long lo, long hi) {
    if (hi == 0) return;
    if (lo == 0) sb_puts(b, "(");
    sb_printf(b, "%s", item);
    long l1 = lo > 0 ? lo - 1 : 0;
    if (hi < 0) sb_printf(b, " (\",\" space %s){%ld,}", item, l1);
    else if (hi - 1 > 0) sb_printf(b, " (\",\" space %s){%ld,%ld}", item, l1, hi - 1);
    if (lo == 0) sb_puts(b, ")?");
}

static const char *visit_array(conv *c, json_t *s, const char *name) {
    json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    long lo = 0, hi = INF_COUNT;
    if (!count_kw(c, s, "minItems", &lo) || !count_kw(c, s, "maxItems", &hi)) return NULL;
    if (hi >= 0 && hi < lo) return cfail(c, NOOK_EINVAL, "maxItems %ld is below minItems %ld", hi, lo);
    prim(c, "space");
    sbuf b = { 0 };
    sb_puts(&b, "\"[\" space ");
    if (prefix) {
        if (!json_is_array(prefix)) { sb_free(&b); return cfail(c, NOOK_EINVAL, "'prefixItems' must be an array"); }
        long n = (long)json_array_size(prefix);
        if (hi >= 0 && hi < n) { sb_free(&b); return cfail(c, NOOK_EUNSUPPORTED, "maxItems below the number of prefixItems"); }
        for (long i = 0; i < n; i++) {
            char hint[100];
            snprintf(hint, sizeof hint, "%s-%ld", name, i);
            const char *r = visit(c, json_array_get(prefix, (size_t)i), hint);
            if (!r) { sb_free(&b); return NULL; }
            sb_printf(&b, i ? " \",\" space %s" : "%s", r);
        }
        long extra_lo = lo > n ? lo - n : 0;
        if (items && json_is_false(items)) {
            if (extra_lo) { sb_free(&b); return cfail(c, NOOK_EINVAL, "minItems needs more items than prefixItems allows"); }
        } else if (extra_lo || (items && !json_is_false(items))) {
            const char *r = items ? visit(c, items, "item") : prim(c, "value");
            if (!r) { sb_free(&b); return NULL; }
            long extra_hi = items ? (hi < 0 ? INF_COUNT : hi - n) : extra_lo;
            if (n == 0) list_of(&b, r, extra_lo, extra_hi);
            else if (extra_hi < 0) sb_printf(&b, " (\",\" space %s){%ld,}", r, extra_lo);
            else if (extra_hi > 0) sb_printf(&b, " (\",\" space %s){%ld,%ld}", r, extra_lo, extra_hi);
        }
    } else {
        const char *r;
        char hint[100];
        snprintf(hint, sizeof hint, "%s-item", name);
        if (items && json_is_false(items)) { if (lo) { sb_free(&b); return cfail(c, NOOK_EINVAL, "minItems with items false"); } hi = 0; r = NULL; }
        else r = items ? visit(c, items, hint) : prim(c, "value");
        if (hi != 0 && !r) { sb_free(&b); return NULL; }
        if (r) list_of(&b, r, lo, hi);
    }
    sb_puts(&b, " \"]\" space");
    return add_rule(c, name, take(&b));
}

static const char *visit_string(conv *c, json_t *s, const char *name) {
    json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    long lo = 0, hi = INF_COUNT;
    if (!count_kw(c, s, "minLength", &lo) || !count_kw(c, s, "maxLength", &hi)) return NULL;
    if (hi >= 0 && hi < lo) return cfail(c, NOOK_EINVAL, "maxLength %ld is below minLength %ld", hi, lo);
    bool lengths = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if (fmt) {
        const char *f = json_string_value(fmt);
        if (!f) return cfail(c, NOOK_EINVAL, "'format' must be a string");
        if (pat || lengths) return cfail(c, NOOK_EUNSUPPORTED, "'format' together with 'pattern' or lengths is not supported");
        if (strcmp(f, "date") == 0) return prim(c, "date-string");
        if (strcmp(f, "time") == 0) return prim(c, "time-string");
        if (strcmp(f, "date-time") == 0) return prim(c, "date-time-string");
        if (strcmp(f, "uuid") == 0) return prim(c, "uuid");
        return cfail(c, NOOK_EUNSUPPORTED, "format '%s' is not supported (date, time, date-time, uuid are)", f);
    }
    prim(c, "space");
    sbuf b = { 0 };
    if (pat) {
        const char *p = json_string_value(pat);
        if (!p) return cfail(c, NOOK_EINVAL, "'pattern' must be a string");
        if (lengths) return cfail(c, NOOK_EUNSUPPORTED, "'pattern' together with minLength/maxLength is not supported");
        sb_puts(&b, "\"\\\"\" ");
        nook_status st = nk_regex_to_gbnf(p, strlen(p), &b, c->err);
        if (st != NOOK_OK) { sb_free(&b); c->st = st; nk_prefix(c->err, "schema: "); return NULL; }
        sb_puts(&b, " \"\\\"\" space");
        return add_rule(c, name, take(&b));
    }
    if (!lengths) return prim(c, "string");
    prim(c, "char");
    if (hi < 0) sb_printf(&b, "\"\\\"\" char{%ld,} \"\\\"\" space", lo);
    else sb_printf(&b, "\"\\\"\" char{%ld,%ld} \"\\\"\" space", lo, hi);
    return add_rule(c, name, take(&b));
}

static const char *visit_type(conv *c, json_t *s, const char *t, const char *name) {
    if (strcmp(t, "object") == 0) return visit_object(c, s, name);
    if (strcmp(t, "array") == 0) return visit_array(c, s, name);
    if (strcmp(t, "string") == 0) return visit_string(c, s, name);
    if (strcmp(t, "boolean") == 0) return prim(c, "boolean");
    if (strcmp(t, "null") == 0) return prim(c, "null");
    if (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0) {
        bool integer = t[0] == 'i';
        bool hl = false, hh = false;
        int64_t lo = 0, hi = 0;
        if (!int_bound(c, s, "minimum", integer, &hl, &lo) || !int_bound(c, s, "exclusiveMinimum", integer, &hl, &lo) ||
            !int_bound(c, s, "maximum", integer, &hh, &hi) || !int_bound(c, s, "exclusiveMaximum", integer, &hh, &hi))
            return NULL;
        if (!hl && !hh) return prim(c, integer ? "integer" : "number");
        if (hl && hh && hi < lo) return cfail(c, NOOK_EINVAL, "the range [%lld, %lld] is empty", (long long)lo, (long long)hi);
        prim(c, "space");
        sbuf b = { 0 };
        if (integer) int_range(&b, hl, lo, hh, hi);
        else number_range(&b, hl, lo, hh, hi);
        sb_puts(&b, " space");
        return add_rule(c, name, take(&b));
    }
    return cfail(c, NOOK_EUNSUPPORTED, "type '%s' is not a JSON schema type", t);
}

/* Keywords beside anyOf/oneOf/allOf/$ref/enum/const that would constrain further. */
static const char *constraining_sibling(json_t *s, const char *self) {
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (strcmp(k, self) == 0 || strcmp(k, "$defs") == 0 || strcmp(k, "definitions") == 0) continue;
        if (in_list(k, k_annotations, NK_ARRAY_LEN(k_annotations))) continue;
        if (strcmp(k, "type") == 0 && (strcmp(self, "enum") == 0 || strcmp(self, "const") == 0)) continue;
        return k;
    }
    return NULL;
}

/* allOf: object schemas merged (properties, required; the rest must agree). */
static const char *visit_allof(conv *c, json_t *s, json_t *all, const char *name) {
    if (!json_is_array(all) || json_array_size(all) == 0) return cfail(c, NOOK_EINVAL, "'allOf' must be a non-empty array");
    if (json_array_size(all) == 1 && !constraining_sibling(s, "allOf")) return visit(c, json_array_get(all, 0), name);
    json_t *merged = json_pack("{s:s, s:o, s:o}", "type", "object", "properties", json_object(), "required", json_array());
    if (!merged) return cfail(c, NOOK_ENOMEM, "out of memory");
    json_t *parts = json_array();
    json_array_append(parts, s);
    for (size_t i = 0; i < json_array_size(all); i++) json_array_append(parts, json_array_get(all, i));
    const char *result = NULL;
    for (size_t i = 0; i < json_array_size(parts); i++) {
        json_t *p = json_array_get(parts, i);
        for (int hops = 0; json_is_object(p) && json_object_get(p, "$ref") && hops < 32; hops++) {
            const char *r = json_string_value(json_object_get(p, "$ref"));
            if (!r || !(p = resolve(c, r))) goto out;
        }
        if (!json_is_object(p)) { cfail(c, NOOK_EUNSUPPORTED, "'allOf' of a non-object schema"); goto out; }
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v) {
            if (i == 0 && (strcmp(k, "allOf") == 0 || strcmp(k, "$defs") == 0 || strcmp(k, "definitions") == 0)) continue;
            if (in_list(k, k_annotations, NK_ARRAY_LEN(k_annotations))) continue;
            if (strcmp(k, "properties") == 0 && json_is_object(v)) json_object_update(json_object_get(merged, "properties"), v);
            else if (strcmp(k, "required") == 0 && json_is_array(v)) json_array_extend(json_object_get(merged, "required"), v);
            else if (strcmp(k, "type") == 0 && json_is_string(v) && strcmp(json_string_value(v), "object") == 0) continue;
            else if (strcmp(k, "additionalProperties") == 0) json_object_set(merged, k, v);
            else { cfail(c, NOOK_EUNSUPPORTED, "'allOf' is supported for object schemas only (found '%s')", k); goto out; }
        }
    }
    result = visit_object(c, merged, name);
out:
    json_decref(parts);
    json_decref(merged);
    return result;
}

static const char *visit(conv *c, json_t *s, const char *name) {
    if (c->st != NOOK_OK) return NULL;
    if (json_is_true(s)) return prim(c, "value");
    if (json_is_false(s)) return cfail(c, NOOK_EUNSUPPORTED, "schema 'false' accepts nothing");
    if (!json_is_object(s)) return cfail(c, NOOK_EINVAL, "a schema must be an object or a boolean");
    if (++c->depth > MAX_DEPTH) return cfail(c, NOOK_ERANGE, "schemas nested deeper than %d", MAX_DEPTH);
    const char *r = NULL;
    json_t *v;
    if (!check_keywords(c, s)) goto out;
    if ((v = json_object_get(s, "$ref"))) {
        const char *sib = constraining_sibling(s, "$ref");
        if (sib) { r = cfail(c, NOOK_EUNSUPPORTED, "'%s' beside '$ref' is not supported", sib); goto out; }
        if (!json_is_string(v)) { r = cfail(c, NOOK_EINVAL, "'$ref' must be a string"); goto out; }
        r = visit_ref(c, json_string_value(v));
    } else if ((v = json_object_get(s, "const")) || (v = json_object_get(s, "enum"))) {
        bool is_enum = json_object_get(s, "const") == NULL;
        const char *sib = constraining_sibling(s, is_enum ? "enum" : "const");
        if (sib) { r = cfail(c, NOOK_EUNSUPPORTED, "'%s' beside '%s' is not supported", sib, is_enum ? "enum" : "const"); goto out; }
        if (is_enum && (!json_is_array(v) || json_array_size(v) == 0)) { r = cfail(c, NOOK_EINVAL, "'enum' must be a non-empty array"); goto out; }
        prim(c, "space");
        sbuf b = { 0 };
        sb_puts(&b, "(");
        size_t n = is_enum ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            if (i) sb_puts(&b, " | ");
            if (!lit_value(c, &b, is_enum ? json_array_get(v, i) : v)) { sb_free(&b); goto out; }
        }
        sb_puts(&b, ") space");
        r = add_rule(c, name, take(&b));
    } else if ((v = json_object_get(s, "anyOf")) || (v = json_object_get(s, "oneOf"))) {
        const char *kw = json_object_get(s, "anyOf") ? "anyOf" : "oneOf";
        if (json_object_get(s, "anyOf") && json_object_get(s, "oneOf")) { r = cfail(c, NOOK_EUNSUPPORTED, "'anyOf' and 'oneOf' together"); goto out; }
        const char *sib = constraining_sibling(s, kw);
        if (sib) { r = cfail(c, NOOK_EUNSUPPORTED, "'%s' beside '%s' is not supported", sib, kw); goto out; }
        if (!json_is_array(v) || json_array_size(v) == 0) { r = cfail(c, NOOK_EINVAL, "'%s' must be a non-empty array", kw); goto out; }
        sbuf b = { 0 };
        for (size_t i = 0; i < json_array_size(v); i++) {
            char hint[100];
            snprintf(hint, sizeof hint, "%s-%zu", name, i);
            const char *a = visit(c, json_array_get(v, i), hint);
            if (!a) { sb_free(&b); goto out; }
            sb_printf(&b, i ? " | %s" : "%s", a);
        }
        r = add_rule(c, name, take(&b));
    } else if ((v = json_object_get(s, "allOf"))) {
        r = visit_allof(c, s, v, name);
    } else {
        json_t *t = json_object_get(s, "type");
        if (json_is_string(t)) r = visit_type(c, s, json_string_value(t), name);
        else if (json_is_array(t)) {
            if (json_array_size(t) == 0) { r = cfail(c, NOOK_EINVAL, "'type' is an empty array"); goto out; }
            sbuf b = { 0 };
            for (size_t i = 0; i < json_array_size(t); i++) {
                const char *tn = json_string_value(json_array_get(t, i));
                if (!tn) { sb_free(&b); r = cfail(c, NOOK_EINVAL, "'type' must list strings"); goto out; }
                char hint[100];
                snprintf(hint, sizeof hint, "%s-%s", name, tn);
                const char *a = visit_type(c, s, tn, hint);
                if (!a) { sb_free(&b); goto out; }
                sb_printf(&b, i ? " | %s" : "%s", a);
            }
            r = add_rule(c, name, take(&b));
        } else if (t) r = cfail(c, NOOK_EINVAL, "'type' must be a string or an array");
        else if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties") || json_object_get(s, "required"))
            r = visit_type(c, s, "object", name);
        else if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems") || json_object_get(s, "maxItems"))
            r = visit_type(c, s, "array", name);
        else if (json_object_get(s, "pattern") || json_object_get(s, "format") || json_object_get(s, "minLength") || json_object_get(s, "maxLength"))
            r = visit_type(c, s, "string", name);
        else if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum"))
            r = visit_type(c, s, "number", name);
        else r = prim(c, "value");
    }
out:
    c->depth--;
    return c->st == NOOK_OK ? r : NULL;
}

static void conv_free(conv *c) {
    for (int i = 0; i < c->n_rules; i++) { nk_free(c->rules[i].name); nk_free(c->rules[i].body); }
    nk_free(c->rules);
    for (int i = 0; i < c->n_refs; i++) nk_free(c->refs[i].ref);
    nk_free(c->refs);
    json_decref(c->doc);
}

nook_status nk_schema_to_gbnf(const char *schema, size_t len, char **out, nook_error *err) {
    if (!out || !schema) return nk_fail(err, NOOK_EINVAL, "schema: bad arguments");
    *out = NULL;
    json_error_t je;
    conv c = { .err = err };
    c.doc = json_loadb(schema, len, JSON_DECODE_ANY, &je);
    if (!c.doc) return nk_fail(err, NOOK_EFORMAT, "schema: not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    /* the root is rule "root": reserve it so nothing else takes the name */
    const char *r = visit(&c, c.doc, "root-value");
    if (r) {
        sbuf b = { 0 };
        sb_printf(&b, "root ::= %s\n", r);
        for (int i = 0; i < c.n_rules; i++) sb_printf(&b, "%s ::= ", c.rules[i].name), sb_puts(&b, c.rules[i].body), sb_puts(&b, "\n");
        if (b.oom) { sb_free(&b); c.st = nk_fail(err, NOOK_ENOMEM, "schema: out of memory"); }
        else *out = b.p;
    }
    nook_status st = c.st;
    conv_free(&c);
    return st;
}

const char *nk_json_gbnf(void) {
    return "root   ::= value\n"
           "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
           "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
           "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
           "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})) )* \"\\\"\" ws\n"
           "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? ws\n"
           "ws     ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";
}

nook_status nk_grammar_from_schema(const char *schema, size_t len, nk_grammar **out, nook_error *err) {
    char *gbnf = NULL;
    nook_status st = nk_schema_to_gbnf(schema, len, &gbnf, err);
    if (st != NOOK_OK) return st;
    nook_error e2 = { 0 };
    st = nk_grammar_compile(gbnf, strlen(gbnf), NULL, out, &e2);
    if (st != NOOK_OK) {
        if (strstr(e2.msg, "left recursion"))
            st = nk_fail(err, NOOK_EUNSUPPORTED, "schema: a $ref loop that never consumes input (%.300s)", e2.msg);
        else st = nk_fail(err, st, "schema: %.400s", e2.msg);
    }
    nk_free(gbnf);
    return st;
}

/*
 * gotmpl.c: Ollama's Go-template TEMPLATEs, translated to the Jinja dialect nook's chat
 * renderer runs (HF's trim_blocks + lstrip_blocks), for the common cases; anything else
 * is refused by name, and the GGUF's own Jinja template applies instead.
 *
 * Literal text is emitted as {{ '...' }} expressions, so Jinja's block trimming never
 * touches it; Go's {{- and -}} trim the neighbouring text here, at translation time.
 * .System is the last system message and .Prompt the last user message (Ollama's legacy
 * one-turn form); .Messages with .Role and .Content maps onto the messages list.
 */
#include "store/store.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

typedef struct sb { char *p; size_t n, cap; bool oom; } sb;

static void sb_add(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *q = nk_realloc(b->p, nc);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void emit_literal(sb *b, const char *s, size_t n) {
    if (n == 0) return;
    sb_str(b, "{{ '");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') sb_str(b, "\\\\");
        else if (c == '\'') sb_str(b, "\\'");
        else if (c == '\n') sb_str(b, "\\n");
        else if (c == '\r') sb_str(b, "\\r");
        else if (c == '\t') sb_str(b, "\\t");
        else sb_add(b, &c, 1);
    }
    sb_str(b, "' }}");
}

/* A field reference (.System, $.Prompt, .Role ...) as a Jinja expression, or NULL. */
static const char *field(const char *w, int in_range) {
    if (w[0] == '$') w++;
    if (strcmp(w, ".System") == 0) return "ns.system";
    if (strcmp(w, ".Prompt") == 0) return "ns.prompt";
    if (strcmp(w, ".Response") == 0) return "''";
    if (in_range && strcmp(w, ".Role") == 0) return "m.role";
    if (in_range && strcmp(w, ".Content") == 0) return "m.content";
    return NULL;
}

/* Splits an action into at most 8 words (quoted strings stay whole). */
static int words(char *s, char **w, int max) {
    int n = 0;
    while (*s) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) break;
        if (n == max) return -1;
        w[n++] = s;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') { if (*s == '\\' && s[1]) s++; s++; }
            if (*s) s++;
        } else while (*s && !isspace((unsigned char)*s)) s++;
        if (*s) *s++ = 0;
    }
    return n;
}

static bool cond(sb *b, char **w, int n, int in_range) {
    const char *f;
    if (n == 1 && (f = field(w[0], in_range))) { sb_str(b, f); return true; }
    if (n == 2 && strcmp(w[0], "not") == 0 && (f = field(w[1], in_range))) {
        sb_str(b, "not ");
        sb_str(b, f);
        return true;
    }
    if (n == 3 && (strcmp(w[0], "eq") == 0 || strcmp(w[0], "ne") == 0) && (f = field(w[1], in_range)) &&
        w[2][0] == '"' && strchr(w[2], '\\') == NULL && strchr(w[2], '\'') == NULL) {
        sb_str(b, f);
        sb_str(b, w[0][0] == 'e' ? " == '" : " != '");
        size_t l = strlen(w[2]);
        if (l < 2 || w[2][l - 1] != '"') return false;
        sb_add(b, w[2] + 1, l - 2);
        sb_str(b, "'");
        return true;
    }
    return false;
}

nook_status nk_gotmpl_to_jinja(const char *go, char **out, nook_error *err) {
    sb b = { 0 };
    sb_str(&b, "{%- set ns = namespace(system='', prompt='') -%}{%- for m in messages -%}"
               "{%- if m.role == 'system' -%}{%- set ns.system = m.content -%}"
               "{%- elif m.role == 'user' -%}{%- set ns.prompt = m.content -%}{%- endif -%}{%- endfor -%}");
    char stack[32];   /* 'i' if, 'r' range */
    int depth = 0, in_range = 0;
    const char *p = go;
    bool trim_next = false;
    nook_status st = NOOK_OK;
    while (*p) {
        const char *open = strstr(p, "{{");
        const char *tend = open ? open : p + strlen(p);
        bool trim_prev = open && open[2] == '-' && (open[3] == ' ' || open[3] == '\t' || open[3] == '\n');
        const char *ts = p;
        if (trim_next) while (ts < tend && isspace((unsigned char)*ts)) ts++;
        const char *te = tend;
        if (trim_prev) while (te > ts && isspace((unsigned char)te[-1])) te--;
        emit_literal(&b, ts, (size_t)(te - ts));
        if (!open) break;
        const char *a = open + 2 + (trim_prev ? 1 : 0);
        const char *close = strstr(a, "}}");
        if (!close) { st = nk_fail(err, NOOK_EFORMAT, "TEMPLATE: unclosed '{{'"); break; }
        const char *ae = close;
        trim_next = ae - a >= 2 && ae[-1] == '-' && isspace((unsigned char)ae[-2]);
        if (trim_next) ae--;
        char act[512];
        size_t al = (size_t)(ae - a);
        if (al >= sizeof act) { st = nk_fail(err, NOOK_EUNSUPPORTED, "TEMPLATE: an action is too long to translate"); break; }
        memcpy(act, a, al);
        act[al] = 0;
        p = close + 2;
        char *t = act;
        while (isspace((unsigned char)*t)) t++;
        if (strncmp(t, "/*", 2) == 0) continue;   /* a comment */
        char *w[8];
        int n = words(t, w, 8);
        const char *f;
        if (n == 1 && (f = field(w[0], in_range))) {
            sb_str(&b, "{{ ");
            sb_str(&b, f);
            sb_str(&b, " }}");
        } else if (n >= 2 && strcmp(w[0], "if") == 0 && depth < 32) {
            sb_str(&b, "{% if ");
            if (!cond(&b, w + 1, n - 1, in_range)) goto unsupported;
            sb_str(&b, " %}");
            stack[depth++] = 'i';
        } else if (n >= 3 && strcmp(w[0], "else") == 0 && strcmp(w[1], "if") == 0 && depth && stack[depth - 1] == 'i') {
            sb_str(&b, "{% elif ");
            if (!cond(&b, w + 2, n - 2, in_range)) goto unsupported;
            sb_str(&b, " %}");
        } else if (n == 1 && strcmp(w[0], "else") == 0 && depth && stack[depth - 1] == 'i') {
            sb_str(&b, "{% else %}");
        } else if (n == 2 && strcmp(w[0], "range") == 0 && !in_range && depth < 32 &&
                   (strcmp(w[1], ".Messages") == 0 || strcmp(w[1], "$.Messages") == 0)) {
            sb_str(&b, "{% for m in messages %}");
            stack[depth++] = 'r';
            in_range = 1;
        } else if (n == 1 && strcmp(w[0], "end") == 0 && depth) {
            char k = stack[--depth];
            if (k == 'r') in_range = 0;
            sb_str(&b, k == 'r' ? "{% endfor %}" : "{% endif %}");
        } else {
            goto unsupported;
        }
        continue;
    unsupported:
        st = nk_fail(err, NOOK_EUNSUPPORTED,
                     "TEMPLATE: the Go-template construct '{{%.*s}}' cannot be translated (nook supports "
                     ".System, .Prompt, .Response, range .Messages with .Role/.Content, if/else/end with eq/ne/not); "
                     "leave TEMPLATE out to use the model's own chat template", (int)NK_MIN(close - a, 100), a);
        break;
    }
    if (!st && depth) st = nk_fail(err, NOOK_EFORMAT, "TEMPLATE: %d block(s) without {{ end }}", depth);
    if (!st && b.oom) st = nk_fail(err, NOOK_ENOMEM, "out of memory");
    if (st) { nk_free(b.p); return st; }
    *out = b.p;
    return NOOK_OK;
}

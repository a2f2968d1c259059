/*
 * gtext.h: what the GBNF writers (schema.c, schema_regex.c, tools.c) share: a
 * growing text buffer and GBNF literal escaping.
 */
#ifndef NOOK_GRAMMAR_GTEXT_H
#define NOOK_GRAMMAR_GTEXT_H

#include "grammar/grammar.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct sbuf { char *p; size_t n, cap; bool oom; } sbuf;

static inline void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = nk_realloc(b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np; b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static inline void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
__attribute__((format(printf, 2, 3)))
static inline void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static inline void sb_free(sbuf *b) { nk_free(b->p); b->p = NULL; b->n = b->cap = 0; }

/* Appends bytes s[0..n) as a GBNF "literal" (quotes included): " \ and control
 * bytes escaped, everything else (UTF-8 included) as is. */
static inline void sb_gbnf_lit(sbuf *b, const char *s, size_t n) {
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char e[2] = { '\\', (char)c }; sb_put(b, e, 2); }
        else if (c < 0x20 || c == 0x7F) sb_printf(b, "\\x%02X", c);
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

/* One code point inside a GBNF [class], escaped unless alphanumeric. */
static inline void sb_class_cp(sbuf *b, uint32_t cp) {
    if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) {
        char c = (char)cp;
        sb_put(b, &c, 1);
    } else if (cp <= 0xFF) sb_printf(b, "\\x%02X", cp);
    else if (cp <= 0xFFFF) sb_printf(b, "\\u%04X", cp);
    else sb_printf(b, "\\U%08X", cp);
}

/* regex subset -> GBNF expression for the characters of a JSON string (schema_regex.c) */
nook_status nk_regex_to_gbnf(const char *re, size_t len, sbuf *out, nook_error *err);

#endif /* NOOK_GRAMMAR_GTEXT_H */

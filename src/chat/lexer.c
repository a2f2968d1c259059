/*
 * lexer.c: template text -> tokens, with jinja2's whitespace rules as Hugging Face sets them.
 *
 *  - Line endings are normalized to "\n" and one trailing newline is dropped
 *    (keep_trailing_newline=False).
 *  - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}", "-#}" all after.
 *  - trim_blocks: a block or comment end ("%}", "#}") eats one "\n" right after it.
 *  - lstrip_blocks: spaces/tabs from the start of a line up to "{%" or "{#" are removed
 *    ("{%+" opts out). "Start of a line" includes the position right after a tag whose
 *    match ended in "\n" (jinja2's line_starting).
 *  - Inside a tag, "}}" / "%}" only end it when brackets are balanced.
 * "Whitespace" is Python's \s: Unicode whitespace, as the regexes in jinja2's lexer use it.
 */
#include "chat/jinja.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

typedef struct lex {
    nk_jctx *c;
    const char *s;
    size_t n, pos;
    int line;
    nk_jtok *toks;
    size_t nt, cap;
    char bal[256];
    int nbal;
} lex;

static int emit(lex *L, nk_jtok t) {
    if (L->nt == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 256;
        nk_jtok *nt = nk_jalloc(L->c, nc * sizeof(nk_jtok));
        if (!nt) return -1;
        if (L->nt) memcpy(nt, L->toks, L->nt * sizeof(nk_jtok));
        L->toks = nt;
        L->cap = nc;
    }
    L->toks[L->nt++] = t;
    return 0;
}

static void count_lines(lex *L, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) if (L->s[i] == '\n') L->line++;
}

/* Length of the Python-whitespace code point at s[i], or 0 if none. */
static size_t ws_at(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    uint32_t cp;
    size_t k = nk_ju_decode(s, n, i, &cp);
    return nk_ju_isspace(cp) ? k : 0;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    size_t k;
    while ((k = ws_at(s, n, i)) > 0) i += k;
    return i;
}

/* End of s[0..n) with trailing whitespace removed (Python rstrip). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t i = 0, last_non_ws = 0;
    while (i < n) {
        size_t k = ws_at(s, n, i);
        if (k) { i += k; continue; }
        uint32_t cp;
        i += nk_ju_decode(s, n, i, &cp);
        last_non_ws = i;
    }
    return last_non_ws;
}

static bool all_ws(const char *s, size_t n) {
    if (n == 0) return false;   /* \s+ needs at least one */
    for (size_t i = 0; i < n;) {
        size_t k = ws_at(s, n, i);
        if (!k) return false;
        i += k;
    }
    return true;
}

static int fail(lex *L, nook_status code, const char *msg) {
    return nk_jfail(L->c, code, L->line, "%s", msg), -1;
}

/* Decode a Python string literal body (unicode-escape rules) into the arena. */
static int decode_string(lex *L, const char *s, size_t n, nk_jtok *t) {
    char *o = nk_jalloc(L->c, n + 1);
    if (!o) return -1;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) { o[w++] = s[i]; continue; }
        char e = s[++i];
        uint32_t cp = 0; int nhex = 0;
        switch (e) {
        case '\n': continue;                      /* line continuation */
        case '\\': o[w++] = '\\'; continue;
        case '\'': o[w++] = '\''; continue;
        case '"': o[w++] = '"'; continue;
        case 'a': o[w++] = 7; continue;
        case 'b': o[w++] = 8; continue;
        case 'f': o[w++] = 12; continue;
        case 'n': o[w++] = '\n'; continue;
        case 'r': o[w++] = '\r'; continue;
        case 't': o[w++] = '\t'; continue;
        case 'v': o[w++] = 11; continue;
        case 'x': nhex = 2; break;
        case 'u': nhex = 4; break;
        case 'U': nhex = 8; break;
        case 'N': return fail(L, NOOK_EUNSUPPORTED, "unsupported construct '\\N{...}' in a string literal");
        default:
            if (e >= '0' && e <= '7') {
                int k = 0;
                while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') { cp = cp * 8 + (uint32_t)(s[i] - '0'); i++; k++; }
                i--;
                w += nk_ju_encode(cp, o + w);   /* octal escapes are at most 3 digits: < 0x200 */
                continue;
            }
            o[w++] = '\\'; o[w++] = e;          /* unknown escapes stay as written */
            continue;
        }
        for (int k = 0; k < nhex; k++) {
            if (i + 1 >= n) return fail(L, NOOK_EFORMAT, "truncated \\x/\\u escape in a string literal");
            char h = s[++i];
            int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 :
                    h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (v < 0) return fail(L, NOOK_EFORMAT, "bad \\x/\\u escape in a string literal");
            cp = cp * 16 + (uint32_t)v;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail(L, NOOK_EUNSUPPORTED, "unsupported construct 'surrogate or out-of-range escape'");
        /* the escape is at least 4 bytes long (\xNN), its encoding at most 4 */
        w += nk_ju_encode(cp, o + w);
    }
    o[w] = 0;
    t->s = o;
    t->len = w;
    return 0;
}

/* Scan one number at L->pos. */
static int lex_number(lex *L) {
    const char *s = L->s;
    size_t i = L->pos, n = L->n;
    nk_jtok t = { .type = JT_INT, .line = L->line };
    char buf[96]; size_t b = 0;
    bool is_float = false;
#define DIGITS() do { \
        while (i < n && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '_' && i + 1 < n && s[i+1] >= '0' && s[i+1] <= '9'))) { \
            if (s[i] != '_') { if (b + 1 >= sizeof buf) return fail(L, NOOK_ERANGE, "number literal too long"); buf[b++] = s[i]; } \
            i++; } } while (0)
    if (s[i] == '0' && i + 1 < n && (s[i+1] == 'x' || s[i+1] == 'X' || s[i+1] == 'o' || s[i+1] == 'O' ||
                                       s[i+1] == 'b' || s[i+1] == 'B')) {
        int base = (s[i+1] | 32) == 'x' ? 16 : (s[i+1] | 32) == 'o' ? 8 : 2;
        i += 2;
        uint64_t v = 0; int nd = 0;
        for (; i < n; i++) {
            char h = s[i];
            if (h == '_') continue;
            int d = h >= '0' && h <= '9' ? h - '0' : (h | 32) >= 'a' && (h | 32) <= 'f' ? (h | 32) - 'a' + 10 : 99;
            if (d >= base) break;
            if (v > (uint64_t)INT64_MAX / (uint64_t)base) return fail(L, NOOK_ERANGE, "integer literal too large");
            v = v * (uint64_t)base + (uint64_t)d;
            nd++;
        }
        if (!nd || v > (uint64_t)INT64_MAX) return fail(L, NOOK_EFORMAT, "bad integer literal");
        t.i = (int64_t)v;
        L->pos = i;
        return emit(L, t);
    }
    DIGITS();
    if (i + 1 < n && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9') {
        is_float = true;
        buf[b++] = '.';
        i++;
        DIGITS();
    }
    if (i < n && (s[i] | 32) == 'e') {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        if (j < n && s[j] >= '0' && s[j] <= '9') {
            is_float = true;
            if (b + 2 >= sizeof buf) return fail(L, NOOK_ERANGE, "number literal too long");
            buf[b++] = 'e';
            if (s[i+1] == '-' || s[i+1] == '+') buf[b++] = s[i+1];
            i = j;
            DIGITS();
        }
    }
#undef DIGITS
    buf[b] = 0;
    if (is_float) {
        t.type = JT_FLOAT;
        /* Exact for what templates write (<= 15 digits, |exp| <= 22: one rounding, as strtod);
         * otherwise strtod with the locale's decimal point swapped in. */
        uint64_t m = 0; int nd = 0, fd = 0, e = 0; bool frac = false, neg_e = false; size_t k = 0;
        for (; k < b && buf[k] != 'e'; k++) {
            if (buf[k] == '.') { frac = true; continue; }
            if (nd < 19) { m = m * 10 + (uint64_t)(buf[k] - '0'); nd++; if (frac) fd++; }
            else if (!frac) e++;
        }
        if (k < b) {
            k++;
            if (buf[k] == '-' || buf[k] == '+') { neg_e = buf[k] == '-'; k++; }
            int x = 0;
            for (; k < b; k++) if (x < 100000) x = x * 10 + (buf[k] - '0');
            e += neg_e ? -x : x;
        }
        e -= fd;
        static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
        if (nd <= 15 && e >= -22 && e <= 22) {
            t.f = e >= 0 ? (double)m * p10[e] : (double)m / p10[-e];
        } else {
            const char *dp = localeconv()->decimal_point;
            for (size_t q = 0; q < b; q++) if (buf[q] == '.') buf[q] = dp && dp[0] ? dp[0] : '.';
            t.f = strtod(buf, NULL);
        }
    } else {
        uint64_t v = 0;
        for (size_t k = 0; k < b; k++) {
            if (v > ((uint64_t)INT64_MAX - 9) / 10) return fail(L, NOOK_ERANGE, "integer literal too large");
            v = v * 10 + (uint64_t)(buf[k] - '0');
        }
        t.i = (int64_t)v;
    }
    L->pos = i;
    return emit(L, t);
}

/* Tokens inside {{ }} or {% %} up to the end tag. kind: 'v' or 'b'. Returns 0 and sets
 * *line_starting from the end tag's match. */
static int lex_tag(lex *L, char kind, bool *line_starting) {
    const char *s = L->s;
    size_t n = L->n;
    for (;;) {
        size_t i = L->pos;
        if (i >= n) return fail(L, NOOK_EFORMAT, kind == 'v' ? "unexpected end of template, expected '}}'" :
                                                              "unexpected end of template, expected '%}'");
        if (L->nbal == 0) {
            /* end tag: (-)%} or (-)}} (and +%} for blocks) */
            char e = kind == 'v' ? '}' : '%';
            size_t j = i;
            char sign = 0;
            if ((s[j] == '-' || (s[j] == '+' && kind == 'b')) && j + 2 < n + 0 && s[j+1] == e && s[j+2] == '}') {
                sign = s[j]; j++;
            }
            if (j + 1 < n && s[j] == e && s[j+1] == '}') {
                size_t end = j + 2;
                if (sign == '-') end = skip_ws(s, n, end);
                else if (sign == 0 && kind == 'b' && end < n && s[end] == '\n') end++;
                if (emit(L, (nk_jtok){ .type = kind == 'v' ? JT_VAR_END : JT_BLOCK_END, .line = L->line })) return -1;
                count_lines(L, i, end);
                *line_starting = end > i && s[end - 1] == '\n';
                L->pos = end;
                return 0;
            }
        }
        size_t k = ws_at(s, n, i);
        if (k) {
            while ((k = ws_at(s, n, i)) > 0) i += k;
            count_lines(L, L->pos, i);
            L->pos = i;
            continue;
        }
        char ch = s[i];
        if (ch >= '0' && ch <= '9') { if (lex_number(L)) return -1; continue; }
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_') {
            size_t j = i + 1;
            while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
                             (s[j] >= '0' && s[j] <= '9') || s[j] == '_')) j++;
            if (emit(L, (nk_jtok){ .type = JT_NAME, .line = L->line, .s = s + i, .len = j - i })) return -1;
            L->pos = j;
            continue;
        }
        if (ch == '\'' || ch == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != ch) { if (s[j] == '\\' && j + 1 < n) j++; j++; }
            if (j >= n) return fail(L, NOOK_EFORMAT, "unterminated string literal");
            nk_jtok t = { .type = JT_STRING, .line = L->line };
            if (decode_string(L, s + i + 1, j - i - 1, &t) || emit(L, t)) return -1;
            count_lines(L, i, j + 1);
            L->pos = j + 1;
            continue;
        }
        static const char *const two[] = { "//", "**", "==", "!=", ">=", "<=" };
        size_t olen = 0;
        for (size_t q = 0; q < NK_ARRAY_LEN(two); q++)
            if (i + 1 < n && s[i] == two[q][0] && s[i+1] == two[q][1]) { olen = 2; break; }
        if (!olen && strchr("+-/*%~[](){}><=.:|,;", ch) && ch) olen = 1;
        if (!olen) {
            char msg[64];
            snprintf(msg, sizeof msg, "unexpected char '%c' (0x%02x)", ch >= 32 && ch < 127 ? ch : '?', (unsigned char)ch);
            return fail(L, NOOK_EFORMAT, msg);
        }
        if (olen == 1) {
            if (ch == '(' || ch == '[' || ch == '{') {
                if (L->nbal >= (int)sizeof L->bal) return fail(L, NOOK_ERANGE, "brackets nested too deeply");
                L->bal[L->nbal++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
            } else if (ch == ')' || ch == ']' || ch == '}') {
                if (L->nbal == 0) return fail(L, NOOK_EFORMAT, "unexpected closing bracket");
                if (L->bal[--L->nbal] != ch) return fail(L, NOOK_EFORMAT, "mismatched brackets");
            }
        }
        if (emit(L, (nk_jtok){ .type = JT_OP, .line = L->line, .s = s + i, .len = olen })) return -1;
        L->pos = i + olen;
    }
}

static int emit_data(lex *L, const char *s, size_t n, int line) {
    if (n == 0) return 0;
    return emit(L, (nk_jtok){ .type = JT_DATA, .line = line, .s = s, .len = n });
}

int nk_jlex(nk_jctx *c, const char *src, size_t len, nk_jtok **toks, size_t *ntoks) {
    /* normalize newlines, drop one trailing newline */
    char *s = nk_jalloc(c, len + 1);
    if (!s) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') { s[n++] = '\n'; if (i + 1 < len && src[i+1] == '\n') i++; }
        else s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;

    lex L = { .c = c, .s = s, .n = n, .line = 1 };
    bool line_starting = true;
    while (L.pos < n) {
        /* next tag start */
        size_t t = L.pos;
        const char *p = NULL;
        while (t + 1 < n) {
            p = memchr(s + t, '{', n - t - 1);
            if (!p) break;
            t = (size_t)(p - s);
            if (s[t+1] == '{' || s[t+1] == '%' || s[t+1] == '#') break;
            t++;
            p = NULL;
        }
        if (!p) {
            if (emit_data(&L, s + L.pos, n - L.pos, L.line)) return -1;
            break;
        }
        char kind = s[t+1];
        char sign = t + 2 < n && (s[t+2] == '-' || s[t+2] == '+') ? s[t+2] : 0;
        size_t text_len = t - L.pos;
        const char *text = s + L.pos;
        int text_line = L.line;
        size_t keep = text_len;
        if (sign == '-') keep = rstrip_len(text, text_len);
        else if (sign != '+' && kind != '{') {
            size_t l_pos = text_len;
            while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
            if ((l_pos > 0 || line_starting) && all_ws(text + l_pos, text_len - l_pos)) keep = l_pos;
        }
        if (emit_data(&L, text, keep, text_line)) return -1;
        count_lines(&L, L.pos, t);
        size_t after = t + 2 + (sign ? 1 : 0);

        if (kind == '#') {
            size_t q = after;
            const char *e = NULL;
            while (q + 1 < n) {
                e = memchr(s + q, '#', n - q - 1);
                if (!e) break;
                q = (size_t)(e - s);
                if (s[q+1] == '}') break;
                q++;
                e = NULL;
            }
            if (!e) return fail(&L, NOOK_EFORMAT, "missing end of comment tag");
            size_t end = q + 2;
            char esign = q > after && (s[q-1] == '-' || s[q-1] == '+') ? s[q-1] : 0;
            if (esign == '-') end = skip_ws(s, n, end);
            else if (!esign && end < n && s[end] == '\n') end++;
            count_lines(&L, t, end);
            line_starting = s[end - 1] == '\n';
            L.pos = end;
            continue;
        }
        if (kind == '%') {
            /* {% raw %} ... {% endraw %}: verbatim text */
            size_t q = skip_ws(s, n, after);
            if (q + 3 <= n && memcmp(s + q, "raw", 3) == 0) {
                size_t r = skip_ws(s, n, q + 3);
                bool ok = false; size_t end = r;
                if (r + 2 < n && s[r] == '-' && s[r+1] == '%' && s[r+2] == '}') { ok = true; end = skip_ws(s, n, r + 3); }
                else if (r + 1 < n && s[r] == '%' && s[r+1] == '}') { ok = true; end = r + 2; }
                if (ok) {
                    /* find {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?) */
                    size_t z = end;
                    for (;;) {
                        const char *b = z < n ? memchr(s + z, '{', n - z) : NULL;
                        if (!b) return fail(&L, NOOK_EFORMAT, "missing end of raw directive");
                        size_t zb = (size_t)(b - s);
                        if (zb + 1 >= n || s[zb+1] != '%') { z = zb + 1; continue; }
                        size_t y = zb + 2;
                        char rsign = y < n && (s[y] == '-' || s[y] == '+') ? s[y] : 0;
                        if (rsign) y++;
                        y = skip_ws(s, n, y);
                        if (y + 6 > n || memcmp(s + y, "endraw", 6) != 0) { z = zb + 1; continue; }
                        y = skip_ws(s, n, y + 6);
                        char esign = y < n && (s[y] == '-' || s[y] == '+') ? s[y] : 0;
                        size_t yy = y + (esign ? 1 : 0);
                        if (yy + 1 >= n || s[yy] != '%' || s[yy+1] != '}') { z = zb + 1; continue; }
                        size_t body_len = zb - end;
                        const char *body = s + end;
                        if (rsign == '-') body_len = rstrip_len(body, body_len);
                        else if (rsign != '+') {
                            size_t l_pos = body_len;
                            while (l_pos > 0 && body[l_pos - 1] != '\n') l_pos--;
                            if (l_pos > 0 && all_ws(body + l_pos, body_len - l_pos)) body_len = l_pos;
                        }
                        if (emit_data(&L, body, body_len, L.line)) return -1;
                        size_t fin = yy + 2;
                        if (esign == '-') fin = skip_ws(s, n, fin);
                        else if (!esign && fin < n && s[fin] == '\n') fin++;
                        count_lines(&L, t, fin);
                        line_starting = s[fin - 1] == '\n';
                        L.pos = fin;
                        break;
                    }
                    continue;
                }
            }
        }
        if (emit(&L, (nk_jtok){ .type = kind == '{' ? JT_VAR_BEGIN : JT_BLOCK_BEGIN, .line = L.line })) return -1;
        L.pos = after;
        L.nbal = 0;
        if (lex_tag(&L, kind == '{' ? 'v' : 'b', &line_starting)) return -1;
    }
    if (emit(&L, (nk_jtok){ .type = JT_EOF, .line = L.line })) return -1;
    *toks = L.toks;
    *ntoks = L.nt;
    return 0;
}

/*
 * pretok.c: BPE pre-tokenizers, i.e. splitting text into words before merging.
 *
 * To give the same words as llama.cpp, this follows how llama.cpp splits, not only the
 * regex text (docs/tokenizers.md has the reasoning):
 *  - A chain of regexes; each one re-splits every segment the previous one produced,
 *    and both the matches and the text between them become segments.
 *  - The GPT-2 and Llama-3 regexes run as hand-written scanners over code-point flags
 *    (llama.cpp does the same; the scanners equal the regex on these flags). Qwen2's
 *    regex is Llama-3's with single digits, so it runs on the same scanner.
 *  - Other regexes that use \p{..} run on a "collapsed" copy of the text, one byte per
 *    code point: ASCII stays, other code points become one byte naming their class
 *    (0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0x0B space,
 *    0xD0 other), and \p{X} in the pattern becomes a class of that byte plus the ASCII
 *    members. This is llama.cpp's own scheme, so its edge cases are reproduced.
 *  - Regexes with literal non-ASCII classes (DeepSeek) run in UTF mode on the code
 *    points, with non-ASCII whitespace folded to U+000B first (again as llama.cpp).
 * PCRE2 compiles each pattern once (JIT when available); compiled code is immutable and
 * shared, match data is per call.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

#define RX_GPT2   "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* ---- pattern rewriting for the collapsed text ---------------------------------------- */

static const struct { const char *name; uint8_t byte; const char *ascii; } k_ucat[] = {
    { "\\p{N}",  0xD1, "0-9" },
    { "\\p{L}",  0xD2, "A-Za-z" },
    { "\\p{P}",  0xD3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}" },
    { "\\p{M}",  0xD4, "" },
    { "\\p{S}",  0xD5, "\\$\\+<->^`\\|" },
    { "\\p{Lu}", 0xD2, "A-Za-z" }, { "\\p{Ll}", 0xD2, "A-Za-z" }, { "\\p{Lt}", 0xD2, "A-Za-z" },
    { "\\p{Lm}", 0xD2, "A-Za-z" }, { "\\p{Lo}", 0xD2, "A-Za-z" },
};

static bool uses_categories(const char *e) {
    for (size_t i = 0; i < NK_ARRAY_LEN(k_ucat); i++)
        if (strstr(e, k_ucat[i].name)) return true;
    return false;
}

/* Rewrite \p{X} to the collapsed class. Returns a nk_malloc'd string or NULL. */
static char *collapse_pattern(const char *e) {
    size_t n = strlen(e);
    char *out = nk_malloc(n * 24 + 1), *o = out;
    if (!out) return NULL;
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (e[i] == '[' && (i == 0 || e[i - 1] != '\\')) { *o++ = '['; inside = true; continue; }
        if (inside && e[i] == ']' && e[i - 1] != '\\') { *o++ = ']'; inside = false; continue; }
        if (e[i] == '\\' && i + 3 < n && e[i + 1] == 'p' && e[i + 2] == '{') {
            const char *close = strchr(e + i + 3, '}');
            if (close && (size_t)(close - e) <= i + 10) {
                size_t plen = (size_t)(close - e) - i + 1;
                size_t k;
                for (k = 0; k < NK_ARRAY_LEN(k_ucat); k++)
                    if (strlen(k_ucat[k].name) == plen && memcmp(e + i, k_ucat[k].name, plen) == 0) break;
                if (k < NK_ARRAY_LEN(k_ucat)) {
                    if (!inside) *o++ = '[';
                    *o++ = (char)k_ucat[k].byte;
                    size_t al = strlen(k_ucat[k].ascii);
                    memcpy(o, k_ucat[k].ascii, al); o += al;
                    if (!inside) *o++ = ']';
                    i = (size_t)(close - e);
                    continue;
                }
            }
        }
        *o++ = e[i];
    }
    *o = 0;
    return out;
}

nook_status nk_pretok_init(nk_pretok *p, const char *const *exprs, int n, nook_error *err) {
    memset(p, 0, sizeof *p);
    if (n > NK_PRE_MAX_RX) return nk_fail(err, NOOK_EINTERNAL, "tokenizer: too many pre-tokenizer regexes");
    for (int i = 0; i < n; i++) {
        nk_rx *rx = &p->rx[i];
        const char *e = exprs[i];
        p->n_rx = i + 1;
        if (strcmp(e, RX_GPT2) == 0) { rx->kind = NK_RX_CUSTOM_GPT2; continue; }
        if (strcmp(e, RX_LLAMA3) == 0) { rx->kind = NK_RX_CUSTOM_LLAMA3; rx->max_digits = 3; continue; }
        if (strcmp(e, RX_QWEN2) == 0) { rx->kind = NK_RX_CUSTOM_LLAMA3; rx->max_digits = 1; continue; }
        char *pat = NULL;
        uint32_t opts = PCRE2_DOLLAR_ENDONLY;   /* ECMAScript '$': end of subject only */
        if (uses_categories(e)) {
            rx->kind = NK_RX_COLLAPSED;
            p->need_collapse = true;
            pat = collapse_pattern(e);
            if (!pat) { nk_pretok_free(p); return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory"); }
        } else {
            rx->kind = NK_RX_WIDE;
            p->need_wide = true;
            opts |= PCRE2_UTF;
        }
        int ec; PCRE2_SIZE eo;
        rx->code = pcre2_compile((PCRE2_SPTR)(pat ? pat : e), PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
        nk_free(pat);
        if (!rx->code) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            nk_pretok_free(p);
            return nk_fail(err, NOOK_EINTERNAL, "tokenizer: pre-tokenizer regex %d does not compile at %zu: %s",
                           i, (size_t)eo, (const char *)msg);
        }
        rx->jit = pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE) == 0;
    }
    return NOOK_OK;
}

void nk_pretok_free(nk_pretok *p) {
    for (int i = 0; i < p->n_rx; i++)
        if (p->rx[i].code) pcre2_code_free(p->rx[i].code);
    memset(p, 0, sizeof *p);
}

/* ---- scratch ---------------------------------------------------------------------------- */

static bool reserve(void **p, size_t *cap, size_t n, size_t elem) {
    if (n <= *cap) return true;
    size_t nc = *cap ? *cap : 256;
    while (nc < n) nc *= 2;
    void *q = nk_realloc(*p, nc * elem);   /* callers bound n by the input length */
    if (!q) return false;
    *p = q; *cap = nc;
    return true;
}
#define RESERVE(s, field, n) reserve((void **)&(s)->field, &(s)->field##_cap, (n), sizeof *(s)->field)

static void *pc_malloc(PCRE2_SIZE n, void *ud) { (void)ud; return nk_malloc(n); }
static void pc_free(void *p, void *ud) { (void)ud; nk_free(p); }

void nk_pretok_scratch_free(nk_pretok_scratch *s) {
    nk_free(s->cps); nk_free(s->boff); nk_free(s->flags); nk_free(s->coll);
    nk_free(s->wide); nk_free(s->wbyte); nk_free(s->seg_a); nk_free(s->seg_b);
    if (s->md) pcre2_match_data_free(s->md);
    memset(s, 0, sizeof *s);
}

/* ---- the hand-written scanners ----------------------------------------------------------
 * Both walk one segment [a, b) of code points and append word lengths to out. F(i) is the
 * flags of code point i, or 0 outside the segment (llama.cpp's "out of range"). */
typedef struct seg_out { size_t *v; size_t n; size_t prev; } seg_out;

static inline void emit(seg_out *o, size_t end) {
    if (end > o->prev) o->v[o->n++] = end - o->prev;
    o->prev = end;
}

#define F(i) ((i) >= a && (i) < b ? fl[i] : 0)
#define NOT_WLN(f) (!((f) & (NK_CPT_WHITESPACE | NK_CPT_LETTER | NK_CPT_NUMBER)))

static void scan_gpt2(const uint32_t *cp, const uint16_t *fl, size_t a, size_t b, seg_out *o) {
    o->prev = a;
    size_t pos = a;
    while (pos < b) {
        uint32_t c = cp[pos];
        uint16_t f = fl[pos];
        if (c == '\'' && pos + 1 < b) {                       /* 's 't 're 've 'm 'll 'd */
            uint32_t c1 = cp[pos + 1];
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') { pos += 2; emit(o, pos); continue; }
            if (pos + 2 < b) {
                uint32_t c2 = cp[pos + 2];
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    pos += 3; emit(o, pos); continue;
                }
            }
        }
        uint16_t f2 = c == ' ' ? F(pos + 1) : f;
        if (f2 & NK_CPT_LETTER) {                             /*  ?\p{L}+ */
            pos += c == ' ';
            while (F(pos) & NK_CPT_LETTER) pos++;
            emit(o, pos); continue;
        }
        if (f2 & NK_CPT_NUMBER) {                             /*  ?\p{N}+ */
            pos += c == ' ';
            while (F(pos) & NK_CPT_NUMBER) pos++;
            emit(o, pos); continue;
        }
        if (NOT_WLN(f2) && f2) {                              /*  ?[^\s\p{L}\p{N}]+ */
            pos += c == ' ';
            for (uint16_t g = F(pos); NOT_WLN(g) && g; g = F(pos)) pos++;
            emit(o, pos); continue;
        }
        size_t nws = 0;
        while (F(pos + nws) & NK_CPT_WHITESPACE) nws++;
        if (nws > 1 && pos + nws < b) { pos += nws - 1; emit(o, pos); continue; }   /* \s+(?!\S) */
        if (nws > 0) { pos += nws; emit(o, pos); continue; }                        /* \s+ */
        pos++; emit(o, pos);
    }
}

static inline uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static void scan_llama3(const uint32_t *cp, const uint16_t *fl, size_t a, size_t b, int max_digits, seg_out *o) {
    o->prev = a;
    size_t pos = a;
    while (pos < b) {
        uint32_t c = cp[pos];
        uint16_t f = fl[pos];
        if (c == '\'' && pos + 1 < b) {                       /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
            uint32_t c1 = ascii_lower(cp[pos + 1]);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') { pos += 2; emit(o, pos); continue; }
            if (pos + 2 < b) {
                uint32_t c2 = ascii_lower(cp[pos + 2]);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    pos += 3; emit(o, pos); continue;
                }
            }
        }
        if (!(c == '\r' || c == '\n' || (f & NK_CPT_NUMBER))) {   /* [^\r\n\p{L}\p{N}]?\p{L}+ */
            if ((f & NK_CPT_LETTER) || (F(pos + 1) & NK_CPT_LETTER)) {
                pos++;
                while (F(pos) & NK_CPT_LETTER) pos++;
                emit(o, pos); continue;
            }
        }
        if (f & NK_CPT_NUMBER) {                              /* \p{N}{1,max_digits} */
            size_t ini = pos;
            while (F(pos) & NK_CPT_NUMBER) {
                if (++pos - ini >= (size_t)max_digits) { emit(o, pos); ini = pos; }
            }
            emit(o, pos); continue;
        }
        uint16_t f2 = c == ' ' ? F(pos + 1) : f;              /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
        if (NOT_WLN(f2) && f) {
            pos += c == ' ';
            for (uint16_t g = F(pos); NOT_WLN(g) && g; g = F(pos)) pos++;
            while (pos < b && (cp[pos] == '\r' || cp[pos] == '\n')) pos++;
            emit(o, pos); continue;
        }
        size_t nws = 0, last_rn = 0;
        while (F(pos + nws) & NK_CPT_WHITESPACE) {
            uint32_t c2 = cp[pos + nws];
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { pos = last_rn; emit(o, pos); continue; }                 /* \s*[\r\n]+ */
        if (nws > 1 && pos + nws < b) { pos += nws - 1; emit(o, pos); continue; }   /* \s+(?!\S) */
        if (nws > 0) { pos += nws; emit(o, pos); continue; }                        /* \s+ */
        pos++; emit(o, pos);
    }
}
#undef F

/* ---- regex segments ------------------------------------------------------------------------
 * Split one segment with PCRE2 as std::regex_iterator would: every match is a word and
 * so is every gap between matches. subj/len is the segment in the engine's units (bytes
 * of the collapsed or wide text) and a its first code point; to_cp maps an engine
 * offset to an absolute code-point index (NULL: one byte per code point, a + offset). */
static nook_status rx_segment(const nk_rx *rx, const char *subj, size_t len, const uint32_t *to_cp,
                              pcre2_match_data *md, seg_out *o, size_t a, nook_error *err) {
    o->prev = a;
    size_t off = 0;
    uint32_t mopts = rx->kind == NK_RX_WIDE ? PCRE2_NO_UTF_CHECK : 0;
    while (off < len) {
        int rc = pcre2_match(rx->code, (PCRE2_SPTR)subj, len, off, mopts, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(rx->code, (PCRE2_SPTR)subj, len, off, mopts | PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return nk_fail(err, NOOK_EINTERNAL, "tokenizer: pre-tokenizer regex failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {       /* empty match: llama.cpp's patterns never produce one; step over */
            off = s + 1;
            if (rx->kind == NK_RX_WIDE) while (off < len && ((uint8_t)subj[off] & 0xC0) == 0x80) off++;
            continue;
        }
        emit(o, to_cp ? to_cp[s] : a + s);   /* the gap before the match, if any */
        emit(o, to_cp ? to_cp[e] : a + e);
        off = e;
    }
    emit(o, to_cp ? to_cp[len] : a + len);
    return NOOK_OK;
}

/* ---- the driver -------------------------------------------------------------------------- */

nook_status nk_pretok_split(const nk_pretok *p, const char *text, size_t len,
                            nk_pretok_scratch *s, size_t **words, size_t *n_words, nook_error *err) {
    const uint8_t *t = (const uint8_t *)text;
    /* decode: one code point per entry, plus its byte offset (valid UTF-8 assumed) */
    if (!RESERVE(s, cps, len + 1) || !RESERVE(s, boff, len + 1) || !RESERVE(s, flags, len + 1) ||
        !RESERVE(s, seg_a, 2 * len + 2) || !RESERVE(s, seg_b, 2 * len + 2))
        return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory for %zu bytes of text", len);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int k;
        s->boff[n] = (uint32_t)i;
        s->cps[n] = nk_utf8_decode(t + i, &k);
        s->flags[n] = nk_cpt_flags(s->cps[n]);
        n++;
        i += (size_t)k;
    }
    s->boff[n] = (uint32_t)len;

    if (p->need_collapse) {
        if (!RESERVE(s, coll, n + 1)) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < n; i++) {
            uint32_t c = s->cps[i];
            uint8_t b;
            if (c < 128) b = (uint8_t)c;
            else if (s->flags[i] & NK_CPT_WHITESPACE) b = 0x0B;
            else switch (s->flags[i] & NK_CPT_MASK_CATEGORIES) {
                case NK_CPT_NUMBER: b = 0xD1; break;
                case NK_CPT_LETTER: b = 0xD2; break;
                case NK_CPT_PUNCTUATION: b = 0xD3; break;
                case NK_CPT_ACCENT_MARK: b = 0xD4; break;
                case NK_CPT_SYMBOL: b = 0xD5; break;
                default: b = 0xD0; break;
            }
            s->coll[i] = (char)b;
        }
    }
        /* wide: UTF-8 again with non-ASCII whitespace folded to U+000B. wbyte[0..w] maps a
     * byte offset to its code point; woff (wbyte's second half) maps a code point to its
     * byte offset. */
    uint32_t *woff = NULL;
    if (p->need_wide) {
        if (!RESERVE(s, wide, len + 1) || !RESERVE(s, wbyte, 2 * len + 2))
            return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
        woff = s->wbyte + len + 1;    /* second half: cp -> wide byte offset */
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t c = s->cps[i];
            if (c > 0x7F && (s->flags[i] & NK_CPT_WHITESPACE)) c = 0x0B;
            char buf[4];
            int k = nk_utf8_encode(c, buf);
            woff[i] = (uint32_t)w;
            for (int j = 0; j < k; j++) { s->wbyte[w] = (uint32_t)i; s->wide[w++] = buf[j]; }
        }
        woff[n] = (uint32_t)w;
        s->wbyte[w] = (uint32_t)n;
    }
    if ((p->need_collapse || p->need_wide) && !s->md) {
        pcre2_general_context *gc = pcre2_general_context_create(pc_malloc, pc_free, NULL);
        if (!gc) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
        s->md = pcre2_match_data_create(16, gc);
        pcre2_general_context_free(gc);
        if (!s->md) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
    }

    size_t *cur = s->seg_a, *nxt = s->seg_b, n_cur = 0;
    if (n) cur[n_cur++] = n;
    for (int r = 0; r < p->n_rx; r++) {
        const nk_rx *rx = &p->rx[r];
        seg_out o = { nxt, 0, 0 };
        size_t start = 0;
        for (size_t k = 0; k < n_cur; k++) {
            size_t a = start, b = start + cur[k];
            start = b;
            nook_status st = NOOK_OK;
            switch (rx->kind) {
                case NK_RX_CUSTOM_GPT2: scan_gpt2(s->cps, s->flags, a, b, &o); break;
                case NK_RX_CUSTOM_LLAMA3: scan_llama3(s->cps, s->flags, a, b, rx->max_digits, &o); break;
                case NK_RX_COLLAPSED:
                    st = rx_segment(rx, s->coll + a, b - a, NULL, s->md, &o, a, err);
                    break;
                case NK_RX_WIDE: {
                    size_t wa = woff[a], wb = woff[b];
                    st = rx_segment(rx, s->wide + wa, wb - wa, s->wbyte + wa, s->md, &o, a, err);
                    break;
                }
            }
            if (st) return st;
        }
        size_t *tmp = cur; cur = nxt; nxt = tmp;
        n_cur = o.n;
    }
    /* segment lengths (code points) -> byte ranges, written into the other buffer */
    size_t *w = nxt, start = 0;
    for (size_t k = 0; k < n_cur; k++) {
        w[2 * k] = s->boff[start];
        start += cur[k];
        w[2 * k + 1] = s->boff[start];
    }
    *words = w;
    *n_words = n_cur;
    return NOOK_OK;
}

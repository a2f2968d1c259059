/*
 * tok_util.c: the tokenizer's small building blocks: a byte-string hash, the interned
 * string table, code-point classes and the GPT-2 byte alphabet.
 */
#include "tokenizer/tok_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* ---- load tables ----------------------------------------------------------------------
 * A vocabulary's tables (string arena, hash slots, merge table, per-token arrays) are a
 * few MB each and are written all over during load. First touches of fresh 4 KiB pages
 * are what load time was made of: on the virtual machines nook runs on, each costs tens
 * of microseconds (40 us measured on the dev VM, i.e. ~200 ms for a 262k vocabulary's
 * 18 MB), against ~0.2 ms per 2 MB page. So a table of 64 KiB or more gets whole 2 MB
 * pages: the block is over-allocated to a 2 MB boundary and marked MADV_HUGEPAGE. The
 * price is at most one partly used 2 MB page per table. The owning pointer sits in the
 * 8 bytes before the returned one. */
#define BIG_PAGE ((size_t)2 << 20)
#define BIG_MIN  ((size_t)64 << 10)

void *nk_tok_alloc(size_t size) {
    if (size > SIZE_MAX / 2 - 2 * BIG_PAGE) return NULL;
    bool big = size >= BIG_MIN;
    /* big: the header, padding up to the boundary, and whole 2 MB pages */
    size_t total = big ? ((size + BIG_PAGE - 1) & ~(BIG_PAGE - 1)) + BIG_PAGE + 16 : size + 16;
    char *raw = nk_malloc(total);
    if (!raw) return NULL;
    char *p = raw + 16;
    if (big) {
        p = (char *)(((uintptr_t)p + BIG_PAGE - 1) & ~(uintptr_t)(BIG_PAGE - 1));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        /* a hint on pages this block owns (rounded inward); failure only costs speed */
        size_t len = (size_t)(raw + total - p) & ~(BIG_PAGE - 1);
        (void)madvise(p, len, MADV_HUGEPAGE);
#endif
    }
    memcpy(p - sizeof raw, &raw, sizeof raw);
    return p;
}

void *nk_tok_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = nk_tok_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void nk_tok_free(void *p) {
    if (!p) return;
    char *raw;
    memcpy(&raw, (char *)p - sizeof raw, sizeof raw);
    nk_free(raw);
}

/* ---- string table ---------------------------------------------------------------------- */

static inline uint32_t rd32(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int32_t nk_strtab_find(const nk_strtab *t, const char *s, size_t n) {
    return nk_strtab_find_h(t, s, n, nk_hash_bytes(s, n));
}

/* Probe for s: its record's id, or -1 with *empty (if not NULL) = the free slot that
 * ends the probe. */
static inline int32_t probe(const nk_strtab *t, const char *s, size_t n, uint64_t h64, uint32_t *empty) {
    uint32_t h = (uint32_t)h64, i = (uint32_t)(h64 >> 32) & t->mask;
    for (;;) {
        uint64_t e = t->slots[i];
        if (!e) { if (empty) *empty = i; return -1; }
        if ((uint32_t)(e >> 32) == h) {
            const char *rec = t->arena + ((size_t)(uint32_t)e - 1) * 4;
            if (rd32(rec + 4) == n && memcmp(rec + 8, s, n) == 0) return (int32_t)rd32(rec);
        }
        i = (i + 1) & t->mask;
    }
}

int32_t nk_strtab_find_h(const nk_strtab *t, const char *s, size_t n, uint64_t h64) {
    return t->slots ? probe(t, s, n, h64, NULL) : -1;
}

static void slot_put(uint64_t *slots, uint32_t mask, uint64_t h64, size_t rec_off) {
    uint32_t i = (uint32_t)(h64 >> 32) & mask;
    while (slots[i]) i = (i + 1) & mask;
    slots[i] = ((uint64_t)(uint32_t)h64 << 32) | (uint64_t)(rec_off / 4 + 1);
}

/* Rehash into a table of at least want slots; ids and arena stay. */
static bool strtab_resize(nk_strtab *t, uint64_t want) {
    uint64_t ncap = 1024;
    while (ncap < want) ncap *= 2;
    if (ncap > (1ull << 31)) return false;
    uint64_t *slots = nk_tok_calloc((size_t)ncap, sizeof *slots);
    if (!slots) return false;
    uint32_t mask = (uint32_t)(ncap - 1);
    for (uint32_t id = 0; id < t->n; id++)
        slot_put(slots, mask, nk_hash_bytes(t->arena + t->off[id], t->len[id]), t->off[id] - 8);
    nk_tok_free(t->slots);
    t->slots = slots; t->mask = mask;
    return true;
}

/* nk_realloc for nk_tok_alloc blocks: old_n of the bytes are kept. */
static void *tok_realloc(void *p, size_t old_n, size_t n) {
    void *q = nk_tok_alloc(n);
    if (!q) return NULL;
    if (old_n) memcpy(q, p, old_n);
    nk_tok_free(p);
    return q;
}

static bool grow_ids(nk_strtab *t, size_t want) {
    if (want <= t->cap_ids) return true;
    if (want > (size_t)INT32_MAX) return false;
    uint32_t *o = tok_realloc(t->off, (size_t)t->n * sizeof *o, want * sizeof *o);
    if (!o) return false;
    t->off = o;
    uint32_t *l = tok_realloc(t->len, (size_t)t->n * sizeof *l, want * sizeof *l);
    if (!l) return false;
    t->len = l;
    t->cap_ids = (uint32_t)want;
    return true;
}

static bool grow_arena(nk_strtab *t, size_t want) {
    if (want <= t->arena_cap) return true;
    size_t nc = t->arena_cap ? t->arena_cap : 4096;
    while (nc < want) nc *= 2;
    if (nc / 4 >= UINT32_MAX) return false;
    char *a = tok_realloc(t->arena, t->arena_len, nc);
    if (!a) return false;
    t->arena = a; t->arena_cap = nc;
    return true;
}

void nk_strtab_free(nk_strtab *t) {
    nk_tok_free(t->arena); nk_tok_free(t->off); nk_tok_free(t->len); nk_tok_free(t->slots);
    memset(t, 0, sizeof *t);
}

bool nk_strtab_reserve(nk_strtab *t, size_t n_ids, size_t arena_bytes) {
    if (!grow_ids(t, n_ids) || !grow_arena(t, arena_bytes)) return false;
    if (!t->slots || (uint64_t)n_ids * 2 > (uint64_t)t->mask + 1) return strtab_resize(t, (uint64_t)n_ids * 2);
    return true;
}

int32_t nk_strtab_intern(nk_strtab *t, const char *s, size_t n, bool *added) {
    return nk_strtab_intern_h(t, s, n, nk_hash_bytes(s, n), added);
}

int32_t nk_strtab_intern_h(nk_strtab *t, const char *s, size_t n, uint64_t h64, bool *added) {
    if (added) *added = false;
    uint32_t slot = 0;
    if (t->slots) {
        int32_t found = probe(t, s, n, h64, &slot);
        if (found >= 0) return found;
    }
    if (n >= UINT32_MAX / 2 || t->n >= (uint32_t)INT32_MAX - 1) return -1;
    /* keep the load factor under 1/2 */
    bool moved = false;
    if (!t->slots || (uint64_t)(t->n + 1) * 2 > (uint64_t)t->mask + 1) {
        if (!strtab_resize(t, (uint64_t)(t->n + 1) * 4)) return -1;
        moved = true;
    }
    if (t->n == t->cap_ids && !grow_ids(t, t->cap_ids ? (size_t)t->cap_ids * 2 : 1024)) return -1;
    size_t rec = (t->arena_len + 3) & ~(size_t)3;
    if (!grow_arena(t, rec + 8 + n + 1)) return -1;
    uint32_t id = t->n++, len32 = (uint32_t)n;
    memcpy(t->arena + rec, &id, 4);
    memcpy(t->arena + rec + 4, &len32, 4);
    if (n) memcpy(t->arena + rec + 8, s, n);
    t->arena[rec + 8 + n] = 0;
    t->arena_len = rec + 8 + n + 1;
    t->off[id] = (uint32_t)(rec + 8);
    t->len[id] = len32;
    if (moved) slot_put(t->slots, t->mask, h64, rec);   /* the probe's free slot is stale */
    else t->slots[slot] = ((uint64_t)(uint32_t)h64 << 32) | (uint64_t)(rec / 4 + 1);
    if (added) *added = true;
    return (int32_t)id;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

uint32_t nk_utf8_decode(const uint8_t *s, int *n) {
    uint8_t c = s[0];
    if (c < 0x80) { *n = 1; return c; }
    if (c < 0xe0) { *n = 2; return ((uint32_t)(c & 0x1f) << 6) | (s[1] & 0x3f); }
    if (c < 0xf0) {
        *n = 3;
        return ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    }
    *n = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
           ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

int nk_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- code-point flags -------------------------------------------------------------------
 * llama.cpp derives its flags from the general category (Cn undefined, C* control,
 * L* letter, M* accent mark, N* number, P* punctuation, S* symbol, Z* separator) and
 * adds the White_Space property. The BMP is tabulated once (128 KiB) because the
 * pre-tokenizers ask for every code point of the input. */
static uint16_t flags_from_category(uint32_t cp) {
    static const uint16_t by_cat[30] = {
        [UTF8PROC_CATEGORY_CN] = NK_CPT_UNDEFINED,
        [UTF8PROC_CATEGORY_LU] = NK_CPT_LETTER, [UTF8PROC_CATEGORY_LL] = NK_CPT_LETTER,
        [UTF8PROC_CATEGORY_LT] = NK_CPT_LETTER, [UTF8PROC_CATEGORY_LM] = NK_CPT_LETTER,
        [UTF8PROC_CATEGORY_LO] = NK_CPT_LETTER,
        [UTF8PROC_CATEGORY_MN] = NK_CPT_ACCENT_MARK, [UTF8PROC_CATEGORY_MC] = NK_CPT_ACCENT_MARK,
        [UTF8PROC_CATEGORY_ME] = NK_CPT_ACCENT_MARK,
        [UTF8PROC_CATEGORY_ND] = NK_CPT_NUMBER, [UTF8PROC_CATEGORY_NL] = NK_CPT_NUMBER,
        [UTF8PROC_CATEGORY_NO] = NK_CPT_NUMBER,
        [UTF8PROC_CATEGORY_PC] = NK_CPT_PUNCTUATION, [UTF8PROC_CATEGORY_PD] = NK_CPT_PUNCTUATION,
        [UTF8PROC_CATEGORY_PS] = NK_CPT_PUNCTUATION, [UTF8PROC_CATEGORY_PE] = NK_CPT_PUNCTUATION,
        [UTF8PROC_CATEGORY_PI] = NK_CPT_PUNCTUATION, [UTF8PROC_CATEGORY_PF] = NK_CPT_PUNCTUATION,
        [UTF8PROC_CATEGORY_PO] = NK_CPT_PUNCTUATION,
        [UTF8PROC_CATEGORY_SM] = NK_CPT_SYMBOL, [UTF8PROC_CATEGORY_SC] = NK_CPT_SYMBOL,
        [UTF8PROC_CATEGORY_SK] = NK_CPT_SYMBOL, [UTF8PROC_CATEGORY_SO] = NK_CPT_SYMBOL,
        [UTF8PROC_CATEGORY_ZS] = NK_CPT_SEPARATOR, [UTF8PROC_CATEGORY_ZL] = NK_CPT_SEPARATOR,
        [UTF8PROC_CATEGORY_ZP] = NK_CPT_SEPARATOR,
        [UTF8PROC_CATEGORY_CC] = NK_CPT_CONTROL, [UTF8PROC_CATEGORY_CF] = NK_CPT_CONTROL,
        [UTF8PROC_CATEGORY_CS] = NK_CPT_CONTROL, [UTF8PROC_CATEGORY_CO] = NK_CPT_CONTROL,
    };
    if (cp > 0x10FFFF) return 0;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    uint16_t f = (unsigned)c < 30 ? by_cat[c] : NK_CPT_UNDEFINED;
    /* Unicode White_Space */
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F || cp == 0x3000)
        f |= NK_CPT_WHITESPACE;
    return f;
}

/* A static table (BSS, filled once per process): nothing to allocate or free. */
static uint16_t g_bmp_flags[0x10000];
static pthread_once_t g_bmp_once = PTHREAD_ONCE_INIT;

static void bmp_init(void) {
    for (uint32_t cp = 0; cp < 0x10000; cp++) g_bmp_flags[cp] = flags_from_category(cp);
}

/* Must be called (once) before nk_cpt_flags_fast; nk_vocab_load does. */
void nk_cpt_init(void) { pthread_once(&g_bmp_once, bmp_init); }

uint16_t nk_cpt_flags(uint32_t cp) {
    if (cp < 0x10000) {
        pthread_once(&g_bmp_once, bmp_init);
        return g_bmp_flags[cp];
    }
    return flags_from_category(cp);
}

/* ---- GPT-2 byte alphabet ----------------------------------------------------------------
 * Printable Latin-1 bytes (! .. ~, ¡ .. ¬, ® .. ÿ) map to themselves; the other 68 bytes
 * map, in order, to U+0100, U+0101, ... so every byte has a visible character. */
static nk_byte_map g_byte_map;
static pthread_once_t g_byte_once = PTHREAD_ONCE_INIT;

static void byte_map_init(void) {
    nk_byte_map *m = &g_byte_map;
    for (int i = 0; i < 512; i++) m->dec[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = self ? (uint32_t)b : (uint32_t)(256 + n++);
        m->enc_len[b] = (uint8_t)nk_utf8_encode(cp, m->enc[b]);
        m->dec[cp] = (int16_t)b;
    }
}

const nk_byte_map *nk_byte_map_get(void) {
    pthread_once(&g_byte_once, byte_map_init);
    return &g_byte_map;
}

/*
 * tok_internal.h: the private layout of nk_vocab and the pieces the tokenizer files
 * share (string table, merge table, code-point classes, pre-tokenizer). Not installed,
 * not part of any public contract.
 */
#ifndef NOOK_TOK_INTERNAL_H
#define NOOK_TOK_INTERNAL_H

#include "tokenizer/tokenizer.h"

#include <string.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

/* Token attributes as bit flags (llama.cpp's llama_token_attr): a token can carry more
 * than one, e.g. NORMAL|CONTROL after the EOG auto-detection forces a text to CONTROL. */
enum {
    NK_ATTR_UNKNOWN = 1 << 0, NK_ATTR_UNUSED = 1 << 1, NK_ATTR_NORMAL = 1 << 2,
    NK_ATTR_CONTROL = 1 << 3, NK_ATTR_USER_DEFINED = 1 << 4, NK_ATTR_BYTE = 1 << 5,
    NK_ATTR_NORMALIZED = 1 << 6, NK_ATTR_LSTRIP = 1 << 7, NK_ATTR_RSTRIP = 1 << 8,
};

/* Allocation for the vocabulary's large tables: blocks of 64 KiB and more lie on whole
 * 2 MB pages (see tok_util.c for why). Contents uninitialized (calloc: zeroed); free
 * only with nk_tok_free (NULL is fine). NULL on out-of-memory or overflow. */
void *nk_tok_alloc(size_t size);
void *nk_tok_calloc(size_t n, size_t size);
void  nk_tok_free(void *p);

/* ---- string table: interned byte strings -> dense ids ------------------------------
 * Open addressing over an arena. Ids 0..n_tokens-1 are the vocabulary's tokens (so a
 * lookup result below n_tokens IS the token id); the BPE loader appends merge parts
 * that are not tokens after them. */
typedef struct nk_strtab {
    char     *arena;      /* records, 4-aligned: u32 id, u32 len, bytes, NUL */
    size_t    arena_len, arena_cap;
    uint32_t *off;        /* id -> offset of the string's bytes in arena */
    uint32_t *len;        /* id -> byte length */
    uint32_t  n, cap_ids;
    /* (hash32 << 32) | (record offset / 4 + 1); 0 = empty. A probe touches one slot
     * and one record, i.e. two cache lines, which is what load time is made of. */
    uint64_t *slots;
    uint32_t  mask;       /* slots - 1 (power of two) */
} nk_strtab;

/* Byte-string hash for the open-addressing tables (in-process only, never stored).
 * Token texts are short (mostly < 16 bytes): up to 16 bytes are read as two overlapping
 * words (never a byte outside [p, p+n)), longer ones 16 at a time, then one finalizer (both halves are used: the
 * high one picks the slot, the low one is the tag). Inline: load hashes ~700k strings. */
static inline uint64_t nk_hash_rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint64_t nk_hash_rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t nk_hash_mix(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}
static inline uint64_t nk_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t a, b, h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    if (n > 16) {   /* 16 at a time, then the last 16 (overlapping what was read) */
        const uint8_t *end = s + n;
        for (; end - s > 16; s += 16) {
            h = (h ^ nk_hash_rd64(s)) * 0xff51afd7ed558ccdull;
            h = (h ^ (h >> 29) ^ nk_hash_rd64(s + 8)) * 0xc4ceb9fe1a85ec53ull;
            h ^= h >> 29;
        }
        a = nk_hash_rd64(end - 16);
        b = nk_hash_rd64(end - 8);
    } else if (n >= 8) {
        a = nk_hash_rd64(s);
        b = nk_hash_rd64(s + n - 8);
    } else if (n >= 4) {
        a = nk_hash_rd32(s);
        b = nk_hash_rd32(s + n - 4);
    } else {
        a = n ? ((uint64_t)s[0] << 16 | (uint64_t)s[n / 2] << 8 | s[n - 1]) : 0;
        b = 0;
    }
    h = (h ^ a) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 29) ^ b) * 0xc4ceb9fe1a85ec53ull;
    return nk_hash_mix(h);
}

/* -1 if absent. */
int32_t nk_strtab_find(const nk_strtab *t, const char *s, size_t n);
/* Id of s, adding it if absent; -1 on out-of-memory. *added (may be NULL) says which. */
int32_t nk_strtab_intern(nk_strtab *t, const char *s, size_t n, bool *added);
/* The same with the hash (nk_hash_bytes) already computed, and prefetch hints for
 * batched loading: touch the slot, then the record it points to, before probing. */
int32_t nk_strtab_find_h(const nk_strtab *t, const char *s, size_t n, uint64_t h64);
int32_t nk_strtab_intern_h(nk_strtab *t, const char *s, size_t n, uint64_t h64, bool *added);
static inline void nk_strtab_prefetch(const nk_strtab *t, uint64_t h64) {
    if (t->slots) __builtin_prefetch(&t->slots[(uint32_t)(h64 >> 32) & t->mask]);
}
static inline void nk_strtab_prefetch_rec(const nk_strtab *t, uint64_t h64) {
    if (!t->slots) return;
    uint64_t e = t->slots[(uint32_t)(h64 >> 32) & t->mask];
    if (e) __builtin_prefetch(t->arena + ((size_t)(uint32_t)e - 1) * 4);
}
/* Frees the table's memory and empties it. */
void nk_strtab_free(nk_strtab *t);
/* Pre-size for n_ids strings of about arena_bytes total (avoids rehashing); false on OOM. */
bool nk_strtab_reserve(nk_strtab *t, size_t n_ids, size_t arena_bytes);
static inline const char *nk_strtab_str(const nk_strtab *t, int32_t id) { return t->arena + t->off[id]; }

/* ---- BPE merge table: (left id, right id) -> (rank, merged id) -------------------- */
typedef struct nk_merge_slot {
    uint64_t key;         /* (left << 32 | right) + 1; 0 = empty */
    int32_t  rank;
    int32_t  result;      /* string id of left+right */
} nk_merge_slot;

/* ---- code points --------------------------------------------------------------------
 * Flags exactly as llama.cpp's unicode_cpt_flags (same bit values), computed from
 * utf8proc's general categories plus the Unicode White_Space list. */
enum {
    NK_CPT_UNDEFINED = 0x0001, NK_CPT_NUMBER = 0x0002, NK_CPT_LETTER = 0x0004,
    NK_CPT_SEPARATOR = 0x0008, NK_CPT_ACCENT_MARK = 0x0010, NK_CPT_PUNCTUATION = 0x0020,
    NK_CPT_SYMBOL = 0x0040, NK_CPT_CONTROL = 0x0080, NK_CPT_MASK_CATEGORIES = 0x00FF,
    NK_CPT_WHITESPACE = 0x0100,
};
uint16_t nk_cpt_flags(uint32_t cp);
void nk_cpt_init(void);
/* Decode one code point of valid UTF-8 at s (caller guarantees validity); *n = bytes. */
uint32_t nk_utf8_decode(const uint8_t *s, int *n);
int nk_utf8_encode(uint32_t cp, char out[4]);

/* GPT-2 byte <-> unicode alphabet. */
typedef struct nk_byte_map {
    char     enc[256][3];   /* UTF-8 of the code point byte b maps to */
    uint8_t  enc_len[256];
    int16_t  dec[512];      /* code point (< 512) -> byte, or -1 */
} nk_byte_map;
const nk_byte_map *nk_byte_map_get(void);

/* ---- pre-tokenizer ------------------------------------------------------------------ */
typedef enum {
    NK_RX_CUSTOM_GPT2,     /* llama.cpp's hand-written splitter for the GPT-2 regex      */
    NK_RX_CUSTOM_LLAMA3,   /* ...for the Llama-3 regex (max_digits 3) / Qwen2 (1)        */
    NK_RX_COLLAPSED,       /* \p{..} regex run on the category-collapsed text (1 byte/cp) */
    NK_RX_WIDE,            /* regex with literal non-ASCII classes, run on the code points */
} nk_rx_kind;

typedef struct nk_rx {
    nk_rx_kind  kind;
    int         max_digits;   /* CUSTOM_LLAMA3 */
    pcre2_code *code;         /* COLLAPSED, WIDE; immutable, shared by all threads */
    bool        jit;
} nk_rx;

#define NK_PRE_MAX_RX 8
typedef struct nk_pretok {
    int   n_rx;
    nk_rx rx[NK_PRE_MAX_RX];
    bool  need_collapse, need_wide;
} nk_pretok;

/* Build the regex chain for a pre-tokenizer family (see pretok.c). */
nook_status nk_pretok_init(nk_pretok *p, const char *const *exprs, int n, nook_error *err);
void nk_pretok_free(nk_pretok *p);

/* Split text (valid UTF-8) into words. Fills *words with n_words (start, end) byte
 * offset pairs into text, in order, covering it. Scratch is owned by the caller
 * (nk_pretok_scratch_free). Errors: NOOK_ENOMEM, NOOK_EINTERNAL (regex engine limit). */
typedef struct nk_pretok_scratch {
    uint32_t *cps;   size_t cps_cap;
    uint32_t *boff;  size_t boff_cap;     /* cp index -> byte offset (n+1 entries)  */
    uint16_t *flags; size_t flags_cap;
    char     *coll;  size_t coll_cap;     /* collapsed text                        */
    char     *wide;  size_t wide_cap;     /* whitespace-folded UTF-8 for WIDE      */
    uint32_t *wbyte; size_t wbyte_cap;    /* wide byte offset -> cp index           */
    size_t   *seg_a; size_t seg_a_cap;    /* segment lengths (in cps)              */
    size_t   *seg_b; size_t seg_b_cap;
    pcre2_match_data *md; uint32_t md_pairs;
} nk_pretok_scratch;
nook_status nk_pretok_split(const nk_pretok *p, const char *text, size_t len,
                            nk_pretok_scratch *s, size_t **words, size_t *n_words, nook_error *err);
void nk_pretok_scratch_free(nk_pretok_scratch *s);

/* ---- the vocabulary --------------------------------------------------------------- */
typedef enum { NK_VOCAB_SPM, NK_VOCAB_BPE } nk_vocab_type;

/* Trie over the special tokens' texts for the one-pass prefilter of the partition. */
typedef struct nk_trie_node {
    int32_t child;     /* first child, -1 none */
    int32_t sibling;   /* next sibling, -1 none */
    int32_t token;     /* token ending here, -1 none */
    uint8_t byte;
} nk_trie_node;

struct nk_vocab {
    nk_vocab_type type;
    char  model[32];
    char  pre[64];
    char  name[128];          /* general.name, lower-cased (attribute rules) */
    int32_t n_tokens;

    nk_strtab strs;           /* ids < n_tokens are tokens */
    uint8_t  *tok_block;      /* nk_tok_alloc block holding the per-token arrays below */
    float    *scores;
    uint16_t *attr;           /* NK_ATTR_* bits */
    uint8_t  *ttype;          /* raw GGUF token_type (0..6) */
    int32_t   max_token_len;

    /* specials (-1 = none) */
    nook_token bos, eos, eot, eom, unk, sep, pad, mask, nl;
    nook_token fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_sep, add_space_prefix, remove_extra_ws;
    bool ignore_merges, clean_spaces, escape_whitespaces;
    uint8_t *eog;             /* n_tokens flags (in tok_block) */
    nook_token *eog_list; int n_eog;

    /* special-token partition: eligible ids sorted by text length (desc), id (asc) */
    int32_t *special; int32_t n_special;
    int32_t *special_rank;    /* token id -> index in special[], -1 if not special (in tok_block) */
    nk_trie_node *trie; int32_t n_trie, cap_trie;
    int32_t trie_root[256];

    /* SPM */
    nook_token byte_tok[256]; /* byte fallback token per byte, -1 none */

    /* BPE */
    nk_merge_slot *merges; uint64_t merge_mask; int32_t n_merges;
    int32_t byte_sid[256];    /* string id of the GPT-2 char for each byte, -1 none */
    nook_token byte1_tok[256];/* token whose text is the single raw byte b (fallback) */
    nk_pretok pretok;
};

/* tokenize.c */
nook_status nk_vocab_tokenize_impl(const nk_vocab *v, const char *text, size_t len,
                                   bool add_special, bool parse_special,
                                   nook_token *out, size_t cap, size_t *n_out, nook_error *err);

#endif /* NOOK_TOK_INTERNAL_H */

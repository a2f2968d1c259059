/*
 * vocab.c: loading a vocabulary from GGUF metadata (tokenizer.ggml.*) with llama.cpp's
 * defaults and fix-ups, plus the accessors and detokenization.
 *
 * Load cost is dominated by hashing every token and merge once; everything lives in a
 * few flat arrays (one string arena, open-addressing tables), so a 262k-token vocabulary
 * loads in tens of milliseconds and the vocab is immutable (thread-safe) afterwards.
 */
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ---- pre-tokenizer regex families (the patterns are llama.cpp's, see pretok.c) ---- */
#define RX_GPT2   "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_CJK    "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define RX_CONTR  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
/* DeepSeek LLM's cased-letter class (Unicode LC), written with code point escapes so no
 * look-alike character (Ohm sign, Kelvin sign) can be normalized away in the source. */
#define RX_DS_LETTERS "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}" \
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}" \
    "\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}" \
    "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}" \
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}" \
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}" \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}" \
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}" \
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}" \
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}" \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}" \
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}" \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}" \
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"
#define RX_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+"

static const char *const FAM_LLAMA3[] = { RX_LLAMA3 };
static const char *const FAM_QWEN2[] = { RX_QWEN2 };
static const char *const FAM_GPT2[] = { RX_GPT2 };
static const char *const FAM_STARCODER[] = { "\\p{N}", RX_GPT2 };
static const char *const FAM_FALCON[] = { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RX_GPT2, "[0-9][0-9][0-9]" };
static const char *const FAM_DEFAULT[] = { "[\\p{P}\\$\\+<=>\\^~\\|]+", RX_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" };
static const char *const FAM_DS_CODER[] = { "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RX_CJK, "\\p{N}" };
static const char *const FAM_DS_LLM[] = {
    "[\r\n]", RX_DS_LETTERS,
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    "\\s+$", RX_CJK, "\\p{N}+" };
static const char *const FAM_DS3[] = {
    "\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+" };
static const char *const FAM_BLOOM[] = { RX_BLOOM };
static const char *const FAM_VIKING[] = { RX_BLOOM, "\\p{N}" };
static const char *const FAM_TEKKEN[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" };
static const char *const FAM_GPT4O[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RX_CONTR "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RX_CONTR "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" };
static const char *const FAM_SEED_CODER[] = {
    RX_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" };
static const char *const FAM_QWEN35[] = {
    RX_CONTR "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" };
static const char *const FAM_BAILING[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+" };

#define FAM(a) a, (int)NK_ARRAY_LEN(a)

/* Pre-tokenizer name -> regex family and llama.cpp's per-family flags. Returns false for
 * a name llama.cpp rejects too. */
static bool pre_family(nk_vocab *v, const char *pre, const char *const **ex, int *n) {
#define IS(s) (strcmp(pre, s) == 0)
    v->clean_spaces = true;
    if (!*pre || IS("default")) { *ex = FAM_DEFAULT; *n = NK_ARRAY_LEN(FAM_DEFAULT); return true; }
    if (IS("llama3") || IS("llama-v3") || IS("llama-bpe") || IS("falcon3") || IS("falcon-h1") ||
        IS("pixtral") || IS("midm-2.0") || IS("lfm2") || IS("jina-v5-nano")) {
        v->ignore_merges = true; v->add_bos = true;
        *ex = FAM_LLAMA3; *n = 1; return true;
    }
    if (IS("dbrx") || IS("smaug-bpe")) { *ex = FAM_LLAMA3; *n = 1; return true; }
    if (IS("glm4") || IS("chatglm-bpe")) { v->bos = -1; *ex = FAM_LLAMA3; *n = 1; return true; }
    if (IS("deepseek-llm")) { v->clean_spaces = false; *ex = FAM_DS_LLM; *n = NK_ARRAY_LEN(FAM_DS_LLM); return true; }
    if (IS("deepseek-coder")) { v->clean_spaces = false; *ex = FAM_DS_CODER; *n = NK_ARRAY_LEN(FAM_DS_CODER); return true; }
    if (IS("deepseek-v3") || IS("hunyuan-dense")) { v->clean_spaces = false; *ex = FAM_DS3; *n = NK_ARRAY_LEN(FAM_DS3); return true; }
    if (IS("falcon")) { *ex = FAM_FALCON; *n = NK_ARRAY_LEN(FAM_FALCON); return true; }
    if (IS("gpt-2") || IS("phi-2") || IS("jina-es") || IS("jina-de") || IS("gigachat") || IS("jina-v2-es") ||
        IS("jina-v2-de") || IS("a.x-4.0") || IS("mellum") || IS("modern-bert") || IS("mpt") || IS("olmo") ||
        IS("jais") || IS("exaone4")) {
        *ex = FAM_GPT2; *n = 1; return true;
    }
    if (IS("jina-v1-en") || IS("jina-v2-code") || IS("roberta-bpe")) { v->add_sep = true; *ex = FAM_GPT2; *n = 1; return true; }
    if (IS("trillion") || IS("granite-docling")) { v->clean_spaces = false; *ex = FAM_GPT2; *n = 1; return true; }
    if (IS("starcoder") || IS("refact") || IS("codeshell") || IS("exaone") || IS("minerva-7b") || IS("mellum2")) {
        *ex = FAM_STARCODER; *n = 2; return true;
    }
    if (IS("command-r") || IS("smollm")) { v->clean_spaces = false; *ex = FAM_STARCODER; *n = 2; return true; }
    if (IS("qwen2") || IS("deepseek-r1-qwen") || IS("kormo") || IS("f2llmv2") || IS("hunyuan") ||
        IS("grok-2") || IS("solar-open")) {
        v->clean_spaces = false; *ex = FAM_QWEN2; *n = 1; return true;
    }
    if (IS("stablelm2") || IS("megrez")) { *ex = FAM_QWEN2; *n = 1; return true; }
    if (IS("qwen35")) { v->clean_spaces = false; *ex = FAM_QWEN35; *n = 1; return true; }
    if (IS("poro-chat")) { v->clean_spaces = false; *ex = FAM_BLOOM; *n = 1; return true; }
    if (IS("bloom") || IS("gpt3-finnish")) { *ex = FAM_BLOOM; *n = 1; return true; }
    if (IS("viking")) { v->clean_spaces = false; *ex = FAM_VIKING; *n = 2; return true; }
    if (IS("tekken")) {
        v->clean_spaces = false; v->ignore_merges = true; v->add_bos = true;
        *ex = FAM_TEKKEN; *n = 1; return true;
    }
    if (IS("gpt-4o") || IS("llama4") || IS("kanana2") || IS("minimax-m2")) {
        v->clean_spaces = false; *ex = FAM_GPT4O; *n = 1; return true;
    }
    if (IS("seed-coder")) { v->clean_spaces = false; *ex = FAM_SEED_CODER; *n = 1; return true; }
    if (IS("bailingmoe") || IS("bailingmoe2") || IS("llada-moe")) { v->clean_spaces = false; *ex = FAM_BAILING; *n = 1; return true; }
    return false;
#undef IS
}

/* ---- small helpers -------------------------------------------------------------------- */

static bool key_str(const gguf_file *f, const char *key, char *buf, size_t cap) {
    gguf_str s;
    if (gguf_get_str(f, key, &s, NULL) != NOOK_OK) return false;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return true;
}

static void key_bool(const gguf_file *f, const char *key, bool *out) {
    bool b;
    if (gguf_get_bool(f, key, &b, NULL) == NOOK_OK) *out = b;
}

static int32_t find_tok(const nk_vocab *v, const char *s) {
    int32_t id = nk_strtab_find(&v->strs, s, strlen(s));
    return id >= 0 && id < v->n_tokens ? id : -1;
}

static inline bool valid_tok(const nk_vocab *v, nook_token t) { return t >= 0 && t < v->n_tokens; }

/* merge table */
static int32_t merge_find(const nk_vocab *v, int32_t l, int32_t r, int32_t *result) {
    if (!v->merges) return -1;
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint64_t i = nk_hash_bytes(&key, 8) & v->merge_mask;
    for (;;) {
        const nk_merge_slot *s = &v->merges[i];
        if (!s->key) return -1;
        if (s->key == key) { if (result) *result = s->result; return s->rank; }
        i = (i + 1) & v->merge_mask;
    }
}

/* The tokens, walked in place in the file's string array, in batches: hash a batch and
 * prefetch its slots, then intern each (the table is pre-sized, so slots do not move).
 * Scores and types were checked to be float32/int32 (or int32) arrays of >= n entries. */
#define TB 16
static nook_status load_tokens(nk_vocab *v, const gguf_kv *tk, const gguf_kv *sk, const gguf_kv *tt, nook_error *err) {
    uint64_t nt = (uint64_t)v->n_tokens;
    const uint8_t *p = tk->val.v.arr.data;
    const uint8_t *sc = sk ? sk->val.v.arr.data : NULL, *ty = tt ? tt->val.v.arr.data : NULL;
    bool sc_f32 = sk && sk->val.v.arr.type == GGUF_TYPE_FLOAT32;
    struct { const char *s; size_t len; uint64_t h; } b[TB];
    char empty[TB][32];   /* llama.cpp names an empty token "[EMPTY_<id>]" */
    for (uint64_t i0 = 0; i0 < nt; i0 += TB) {
        int nb = (int)NK_MIN((uint64_t)TB, nt - i0);
        for (int k = 0; k < nb; k++) {
            gguf_str g;
            p = gguf_arr_str_next(p, &g);
            b[k].s = g.ptr; b[k].len = (size_t)g.len;
            if (!b[k].len) {
                b[k].len = (size_t)snprintf(empty[k], sizeof empty[k], "[EMPTY_%llu]", (unsigned long long)(i0 + (uint64_t)k));
                b[k].s = empty[k];
            }
            b[k].h = nk_hash_bytes(b[k].s, b[k].len);
            nk_strtab_prefetch(&v->strs, b[k].h);
        }
        for (int k = 0; k < nb; k++) {
            uint64_t i = i0 + (uint64_t)k;
            bool added;
            int32_t id = nk_strtab_intern_h(&v->strs, b[k].s, b[k].len, b[k].h, &added);
            if (id < 0) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory for token %llu", (unsigned long long)i);
            if (!added)
                return nk_fail(err, NOOK_EFORMAT, "tokenizer: duplicate token in vocabulary: '%.*s' has ids %d and %llu",
                               (int)NK_MIN(b[k].len, 64), b[k].s, id, (unsigned long long)i);
            if ((int32_t)b[k].len > v->max_token_len) v->max_token_len = (int32_t)b[k].len;
        }
    }
    for (uint64_t i = 0; i < nt; i++) {
        float f = 0.0f;
        if (sc) {   /* little-endian in the file */
            const uint8_t *q = sc + 4 * i;
            uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
            if (sc_f32) memcpy(&f, &u, 4);
            else f = (float)(int32_t)u;
        }
        v->scores[i] = f;
        int32_t t = NK_TOKEN_NORMAL;
        if (ty) {
            const uint8_t *q = ty + 4 * i;
            t = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
        }
        v->ttype[i] = (uint8_t)(t >= 0 && t <= 6 ? t : 0);
        switch (t) {
            case NK_TOKEN_UNKNOWN: v->attr[i] = NK_ATTR_UNKNOWN; break;
            case NK_TOKEN_UNUSED: v->attr[i] = NK_ATTR_UNUSED; break;
            case NK_TOKEN_NORMAL: v->attr[i] = NK_ATTR_NORMAL; break;
            case NK_TOKEN_CONTROL: v->attr[i] = NK_ATTR_CONTROL; break;
            case NK_TOKEN_USER_DEFINED: v->attr[i] = NK_ATTR_USER_DEFINED; break;
            case NK_TOKEN_BYTE: v->attr[i] = NK_ATTR_BYTE; break;
            default: v->attr[i] = 0; break;
        }
    }
    return NOOK_OK;
}
#undef TB

/* Merges are loaded in batches, walked in place in the file's string array: hash every
 * string of the batch and prefetch its table slot, then its record, then probe. Load
 * time is almost all cache misses (three string lookups and one table insert per
 * merge), and overlapping them is what makes a 280k-merge vocabulary load quickly. */
#define MB 32
static nook_status load_merges(nk_vocab *v, const gguf_kv *kv, nook_error *err) {
    const gguf_value *val = &kv->val;
    if (val->type != GGUF_TYPE_ARRAY || val->v.arr.type != GGUF_TYPE_STRING)
        return nk_fail(err, NOOK_EFORMAT, "tokenizer.ggml.merges: expected an array of strings, got %s%s%s",
                       gguf_type_name(val->type), val->type == GGUF_TYPE_ARRAY ? " of " : "",
                       val->type == GGUF_TYPE_ARRAY ? gguf_type_name(val->v.arr.type) : "");
    uint64_t n = val->v.arr.count;
    if (n > (uint64_t)INT32_MAX / 4) return nk_fail(err, NOOK_EFORMAT, "tokenizer.ggml.merges: %llu entries is too many", (unsigned long long)n);
    uint64_t cap = 1024;
    while (cap * 3 < n * 4) cap *= 2;   /* load factor <= 3/4 */
    v->merges = nk_tok_calloc(cap, sizeof *v->merges);
    /* the batch's concatenations: a merge string is shorter than the array's bytes */
    size_t cat_cap = 4096;
    char *cat = nk_malloc(cat_cap);
    if (!v->merges || !cat) { nk_free(cat); return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory for %llu merges", (unsigned long long)n); }
    v->merge_mask = cap - 1;
    struct { const char *l, *r; size_t ll, rl, co; uint64_t hl, hr, hc; int32_t il, ir, ic; uint64_t key, kh; } b[MB];
    const uint8_t *p = val->v.arr.data;
    for (uint64_t i0 = 0; i0 < n; i0 += MB) {
        int nb = (int)NK_MIN((uint64_t)MB, n - i0);
        size_t cat_len = 0;
        for (int k = 0; k < nb; k++) {   /* parse, concatenate */
            gguf_str g;
            p = gguf_arr_str_next(p, &g);
            const char *s = g.ptr;
            size_t len = (size_t)g.len;
            /* "left right", split at the first space after index 0 (llama.cpp) */
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp) { b[k].l = NULL; continue; }  /* llama.cpp files it as ("", ""): never hit */
            b[k].l = s; b[k].ll = (size_t)(sp - s);
            b[k].r = sp + 1; b[k].rl = len - b[k].ll - 1;
            if (cat_len + len > cat_cap) {
                size_t nc = cat_cap;
                while (nc < cat_len + len) nc *= 2;   /* len < the file size: no overflow */
                char *c = nk_realloc(cat, nc);
                if (!c) { nk_free(cat); return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory loading merges"); }
                cat = c; cat_cap = nc;
            }
            b[k].co = cat_len;
            memcpy(cat + cat_len, s, b[k].ll);
            memcpy(cat + cat_len + b[k].ll, sp + 1, b[k].rl);
            cat_len += b[k].ll + b[k].rl;
        }
        for (int k = 0; k < nb; k++) {   /* hash, prefetch slots */
            if (!b[k].l) continue;
            b[k].hl = nk_hash_bytes(b[k].l, b[k].ll);
            b[k].hr = nk_hash_bytes(b[k].r, b[k].rl);
            b[k].hc = nk_hash_bytes(cat + b[k].co, b[k].ll + b[k].rl);
            nk_strtab_prefetch(&v->strs, b[k].hl);
            nk_strtab_prefetch(&v->strs, b[k].hr);
            nk_strtab_prefetch(&v->strs, b[k].hc);
        }
        for (int k = 0; k < nb; k++) {
            if (!b[k].l) continue;
            nk_strtab_prefetch_rec(&v->strs, b[k].hl);
            nk_strtab_prefetch_rec(&v->strs, b[k].hr);
            nk_strtab_prefetch_rec(&v->strs, b[k].hc);
        }
        for (int k = 0; k < nb; k++) {   /* resolve (interning the rare non-token part) */
            if (!b[k].l) continue;
            b[k].il = nk_strtab_intern_h(&v->strs, b[k].l, b[k].ll, b[k].hl, NULL);
            b[k].ir = nk_strtab_intern_h(&v->strs, b[k].r, b[k].rl, b[k].hr, NULL);
            b[k].ic = nk_strtab_intern_h(&v->strs, cat + b[k].co, b[k].ll + b[k].rl, b[k].hc, NULL);
            if (b[k].il < 0 || b[k].ir < 0 || b[k].ic < 0) {
                nk_free(cat);
                return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory loading merges");
            }
            b[k].key = (((uint64_t)(uint32_t)b[k].il << 32) | (uint32_t)b[k].ir) + 1;
            b[k].kh = nk_hash_bytes(&b[k].key, 8) & v->merge_mask;
            __builtin_prefetch(&v->merges[b[k].kh]);
        }
        for (int k = 0; k < nb; k++) {   /* insert; the first occurrence keeps its rank */
            if (!b[k].l) continue;
            uint64_t j = b[k].kh;
            while (v->merges[j].key && v->merges[j].key != b[k].key) j = (j + 1) & v->merge_mask;
            if (!v->merges[j].key) {
                v->merges[j].key = b[k].key;
                v->merges[j].rank = (int32_t)(i0 + (uint64_t)k);
                v->merges[j].result = b[k].ic;
                v->n_merges++;
            }
        }
    }
    nk_free(cat);
    return NOOK_OK;
}
#undef MB

/* Special ids: defaults, then the GGUF key if it names a token (llama.cpp ignores an
 * out-of-range value such as 0xFFFFFFFF and keeps the default). */
static void special_key(const nk_vocab *v, const gguf_file *f, const char *key, nook_token *id) {
    if (*id >= v->n_tokens) *id = -1;
    uint32_t u;
    if (gguf_get_u32(f, key, &u, NULL) == NOOK_OK && u < (uint32_t)v->n_tokens) *id = (nook_token)u;
}

static void force_control(nk_vocab *v, int32_t id) { v->attr[id] |= NK_ATTR_CONTROL; }

/* Auto-detection of EOT/EOM/FIM and the EOG set by token text (llama.cpp's load()). */
static nook_status detect_specials(nk_vocab *v, nook_error *err) {
    static const char *const eot_texts[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
        "<end_of_utterance>", NULL };
    static const char *const eom_texts[] = { "<|eom_id|>", NULL };
    static const char *const fim_pre[] = { "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
        "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL };
    static const char *const fim_suf[] = { "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
        "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL };
    static const char *const fim_mid[] = { "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
        "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL };
    static const char *const fim_pad[] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL };
    static const char *const fim_rep[] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL };
    static const char *const fim_sep[] = { "<|file_sep|>", NULL };
    static const char *const eog_texts[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
        "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL };
    struct { nook_token *id; const char *const *texts; } det[] = {
        { &v->eot, eot_texts }, { &v->eom, eom_texts }, { &v->fim_pre, fim_pre }, { &v->fim_suf, fim_suf },
        { &v->fim_mid, fim_mid }, { &v->fim_pad, fim_pad }, { &v->fim_rep, fim_rep }, { &v->fim_sep, fim_sep },
    };
    /* llama.cpp takes the first match in its hash map's (unspecified) order; we take the
     * candidate listed first (so "<|eot_id|>" beats "<|end_of_text|>"). Token texts are
     * unique, so a lookup per candidate finds the one token that can match it. */
    for (size_t k = 0; k < NK_ARRAY_LEN(det); k++) {
        if (*det[k].id >= 0) continue;
        for (const char *const *t = det[k].texts; *t; t++) {
            int32_t id = find_tok(v, *t);
            if (id >= 0) { *det[k].id = id; force_control(v, id); break; }
        }
    }
    /* "unused" control tokens */
    for (int32_t id = 0; id < v->n_tokens; id++)
        if ((v->attr[id] & NK_ATTR_CONTROL) && strstr(nk_strtab_str(&v->strs, id), "unused"))
            v->attr[id] |= NK_ATTR_UNUSED;
    /* the EOG set (v->eog was zeroed with the per-token block) */
    if (valid_tok(v, v->fim_pad)) v->eog[v->fim_pad] = 1;
    if (valid_tok(v, v->fim_rep)) v->eog[v->fim_rep] = 1;
    if (valid_tok(v, v->fim_sep)) v->eog[v->fim_sep] = 1;
    nook_token end_id = -1, s_id = -1;
    bool has_return = false, has_call = false, has_flush = false, has_tool_response = false;
    for (const char *const *t = eog_texts; *t; t++) {
        int32_t id = find_tok(v, *t);
        if (id >= 0) { v->eog[id] = 1; force_control(v, id); }
    }
    /* gpt-oss: these always render */
    static const char *const user_def[] = { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL };
    for (const char *const *u = user_def; *u; u++) {
        int32_t id = find_tok(v, *u);
        if (id >= 0) v->attr[id] = NK_ATTR_USER_DEFINED;
    }
    if (valid_tok(v, v->eos)) v->eog[v->eos] = 1;
    if (valid_tok(v, v->eot)) v->eog[v->eot] = 1;
    if (valid_tok(v, v->eom)) v->eog[v->eom] = 1;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        if (!v->eog[id]) continue;
        const char *t = nk_strtab_str(&v->strs, id);
        if (!strcmp(t, "<|return|>")) has_return = true;
        else if (!strcmp(t, "<|call|>") || !strcmp(t, "<|calls|>")) has_call = true;
        else if (!strcmp(t, "<|flush|>")) has_flush = true;
        else if (!strcmp(t, "<|end|>")) end_id = id;
        else if (!strcmp(t, "<|tool_response>")) has_tool_response = true;
        else if (!strcmp(t, "</s>")) s_id = id;
    }
    /* harmony / solar-open: <|end|> is not an end of generation there */
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
        v->eog[end_id] = 0; v->attr[end_id] = NK_ATTR_USER_DEFINED;
    }
    /* gemma4: </s> is an ordinary token */
    if (has_tool_response && s_id >= 0) { v->eog[s_id] = 0; v->attr[s_id] = NK_ATTR_NORMAL; }
    int n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) n += v->eog[id];
    v->eog_list = nk_alloc_array((size_t)(n ? n : 1), sizeof *v->eog_list);
    if (!v->eog_list) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
    for (int32_t id = 0; id < v->n_tokens; id++) if (v->eog[id]) v->eog_list[v->n_eog++] = id;
    return NOOK_OK;
}

/* Order of the special-token partition: longer text first; equal lengths by id
 * (llama.cpp's std::sort leaves ties unspecified). A bottom-up merge sort, so no
 * comparator context is needed. */
static nook_status build_specials(nk_vocab *v, nook_error *err) {
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->attr[id] & (NK_ATTR_CONTROL | NK_ATTR_USER_DEFINED | NK_ATTR_UNKNOWN)) n++;
    v->special = nk_alloc_array((size_t)(n ? n : 1), sizeof *v->special);
    if (!v->special) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
    for (int32_t id = 0; id < v->n_tokens; id++) {
        v->special_rank[id] = -1;
        if (v->attr[id] & (NK_ATTR_CONTROL | NK_ATTR_USER_DEFINED | NK_ATTR_UNKNOWN)) v->special[v->n_special++] = id;
    }
    for (int32_t w = 1; w < v->n_special; w *= 2) {
        int32_t *tmp = nk_alloc_array((size_t)v->n_special, sizeof *tmp);
        if (!tmp) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
        for (int32_t lo = 0; lo < v->n_special; lo += 2 * w) {
            int32_t mid = NK_MIN(lo + w, v->n_special), hi = NK_MIN(lo + 2 * w, v->n_special);
            int32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int32_t x = v->special[i], y = v->special[j];
                uint32_t lx = v->strs.len[x], ly = v->strs.len[y];
                bool take_y = ly > lx || (ly == lx && y < x);
                tmp[k++] = take_y ? v->special[j++] : v->special[i++];
            }
            while (i < mid) tmp[k++] = v->special[i++];
            while (j < hi) tmp[k++] = v->special[j++];
        }
        memcpy(v->special, tmp, (size_t)v->n_special * sizeof *tmp);
        nk_free(tmp);
    }
    for (int32_t r = 0; r < v->n_special; r++) v->special_rank[v->special[r]] = r;
    /* trie for the prefilter */
    for (int i = 0; i < 256; i++) v->trie_root[i] = -1;
    for (int32_t r = 0; r < v->n_special; r++) {
        int32_t id = v->special[r];
        const uint8_t *s = (const uint8_t *)nk_strtab_str(&v->strs, id);
        uint32_t len = v->strs.len[id];
        int32_t node = -1;   /* parent; -1 = the root table (no pointers kept across realloc) */
        for (uint32_t k = 0; k < len; k++) {
            int32_t c = node < 0 ? v->trie_root[s[0]] : v->trie[node].child;
            while (c >= 0 && v->trie[c].byte != s[k]) c = v->trie[c].sibling;
            if (c < 0) {
                if (v->n_trie == v->cap_trie) {
                    int32_t nc = v->cap_trie ? v->cap_trie * 2 : 256;
                    nk_trie_node *t = nk_realloc(v->trie, (size_t)nc * sizeof *t);
                    if (!t) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
                    v->trie = t; v->cap_trie = nc;
                }
                c = v->n_trie++;
                int32_t *link = node < 0 ? &v->trie_root[s[0]] : &v->trie[node].child;
                v->trie[c] = (nk_trie_node){ .child = -1, .sibling = *link, .token = -1, .byte = s[k] };
                *link = c;
            }
            node = c;
        }
        if (node >= 0 && v->trie[node].token < 0) v->trie[node].token = id;
    }
    return NOOK_OK;
}

/* ---- load ------------------------------------------------------------------------------ */

nook_status nk_vocab_load(const gguf_file *f, nk_vocab **out, nook_error *err) {
    *out = NULL;
    nk_cpt_init();
    nk_vocab *v = nk_calloc(1, sizeof *v);
    if (!v) return nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
    nook_status st = NOOK_OK;
#define FAIL(...) do { st = nk_fail(err, __VA_ARGS__); goto fail; } while (0)

    if (!key_str(f, "tokenizer.ggml.model", v->model, sizeof v->model))
        FAIL(NOOK_EFORMAT, "tokenizer: no tokenizer.ggml.model key");
    key_str(f, "tokenizer.ggml.pre", v->pre, sizeof v->pre);
    key_str(f, "general.name", v->name, sizeof v->name);
    for (char *c = v->name; *c; c++) *c = (char)tolower((unsigned char)*c);

    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask = v->nl = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    const char *const *exprs = NULL;
    int n_exprs = 0;
    if (!strcmp(v->model, "llama")) {
        v->type = NK_VOCAB_SPM;
        v->bos = 1; v->eos = 2; v->unk = 0;
        v->add_space_prefix = true; v->add_bos = true; v->add_eos = false; v->clean_spaces = false;
    } else if (!strcmp(v->model, "gpt2")) {
        v->type = NK_VOCAB_BPE;
        v->bos = 11; v->eos = 11;
        if (!pre_family(v, v->pre, &exprs, &n_exprs))
            FAIL(NOOK_EUNSUPPORTED, "tokenizer: unknown pre-tokenizer type '%s'", v->pre);
        if (!*v->pre) nk_log(NK_LOG_WARN, "tokenizer: missing pre-tokenizer type, using 'default' (quality may degrade)");
    } else {
        FAIL(NOOK_EUNSUPPORTED, "tokenizer: unsupported tokenizer model '%s'", v->model);
    }
    key_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    key_bool(f, "tokenizer.ggml.remove_extra_whitespaces", &v->remove_extra_ws);

    /* tokens, scores, types */
    const gguf_kv *tk = gguf_find(f, "tokenizer.ggml.tokens");
    if (!tk) FAIL(NOOK_EFORMAT, "tokenizer: no tokenizer.ggml.tokens array");
    if (tk->val.type != GGUF_TYPE_ARRAY || tk->val.v.arr.type != GGUF_TYPE_STRING)
        FAIL(NOOK_EFORMAT, "tokenizer: tokenizer.ggml.tokens is not an array of strings");
    uint64_t nt = tk->val.v.arr.count;
    if (nt == 0 || nt > (1u << 24)) FAIL(NOOK_EFORMAT, "tokenizer: %llu tokens is out of range", (unsigned long long)nt);
    v->n_tokens = (int32_t)nt;
    const gguf_kv *sk = gguf_find(f, "tokenizer.ggml.scores");
    if (sk && (sk->val.type != GGUF_TYPE_ARRAY ||
               (sk->val.v.arr.type != GGUF_TYPE_FLOAT32 && sk->val.v.arr.type != GGUF_TYPE_INT32)))
        FAIL(NOOK_EFORMAT, "tokenizer: tokenizer.ggml.scores must be float32[] or int32[]");
    if (sk && sk->val.v.arr.count < nt)
        FAIL(NOOK_EFORMAT, "tokenizer: %llu scores for %llu tokens", (unsigned long long)sk->val.v.arr.count, (unsigned long long)nt);
    const gguf_kv *tt = gguf_find(f, "tokenizer.ggml.token_type");
    if (tt && (tt->val.type != GGUF_TYPE_ARRAY || tt->val.v.arr.type != GGUF_TYPE_INT32))
        FAIL(NOOK_EFORMAT, "tokenizer: tokenizer.ggml.token_type must be int32[]");
    if (tt && tt->val.v.arr.count < nt)
        FAIL(NOOK_EFORMAT, "tokenizer: %llu token types for %llu tokens", (unsigned long long)tt->val.v.arr.count, (unsigned long long)nt);

    /* one block for the per-token arrays: scores, special_rank, attr, ttype, eog */
    v->tok_block = nk_tok_calloc(nt, 12);
    if (!v->tok_block) FAIL(NOOK_ENOMEM, "tokenizer: out of memory for %llu tokens", (unsigned long long)nt);
    v->scores = (float *)v->tok_block;
    v->special_rank = (int32_t *)(v->tok_block + 4 * nt);
    v->attr = (uint16_t *)(v->tok_block + 8 * nt);
    v->ttype = v->tok_block + 10 * nt;
    v->eog = v->tok_block + 11 * nt;
    /* pre-size for the tokens (a record is 8 bytes of header, the text, a NUL and up to
     * 3 of padding; the array's nbytes counts 8 per length); merge parts that are not
     * tokens are few and grow it */
    if (!nk_strtab_reserve(&v->strs, (size_t)(nt + 300), (size_t)(tk->val.v.arr.nbytes + 4 * nt + 4096)))
        FAIL(NOOK_ENOMEM, "tokenizer: out of memory for %llu tokens", (unsigned long long)nt);
    st = load_tokens(v, tk, sk, tt, err);
    if (st) goto fail;

    if (v->type == NK_VOCAB_BPE) {
        const gguf_kv *mk = gguf_find(f, "tokenizer.ggml.merges");
        if (!mk) FAIL(NOOK_EFORMAT, "tokenizer: cannot find tokenizer.ggml.merges in a BPE vocabulary");
        st = load_merges(v, mk, err);
        if (st) goto fail;
        const nk_byte_map *bm = nk_byte_map_get();
        for (int b = 0; b < 256; b++) {
            v->byte_sid[b] = nk_strtab_intern(&v->strs, bm->enc[b], bm->enc_len[b], NULL);
            if (v->byte_sid[b] < 0) FAIL(NOOK_ENOMEM, "tokenizer: out of memory");
            char c = (char)b;
            v->byte1_tok[b] = find_tok(v, (char[2]){ c, 0 });
            if (v->byte1_tok[b] >= 0 && v->strs.len[v->byte1_tok[b]] != 1) v->byte1_tok[b] = -1;
        }
        st = nk_pretok_init(&v->pretok, exprs, n_exprs, err);
        if (st) goto fail;
    } else {
        for (int b = 0; b < 256; b++) {
            char buf[8];
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            v->byte_tok[b] = find_tok(v, buf);
            if (v->byte_tok[b] < 0) {
                int32_t id = nk_strtab_find(&v->strs, (char[1]){ (char)b }, 1);
                v->byte_tok[b] = id >= 0 && id < v->n_tokens ? id : -1;
            }
        }
        v->nl = v->byte_tok['\n'];
    }

    /* special ids from keys */
    special_key(v, f, "tokenizer.ggml.bos_token_id", &v->bos);
    special_key(v, f, "tokenizer.ggml.eos_token_id", &v->eos);
    special_key(v, f, "tokenizer.ggml.eot_token_id", &v->eot);
    special_key(v, f, "tokenizer.ggml.eom_token_id", &v->eom);
    special_key(v, f, "tokenizer.ggml.unknown_token_id", &v->unk);
    special_key(v, f, "tokenizer.ggml.seperator_token_id", &v->sep);
    special_key(v, f, "tokenizer.ggml.padding_token_id", &v->pad);
    special_key(v, f, "tokenizer.ggml.mask_token_id", &v->mask);
    special_key(v, f, "tokenizer.ggml.fim_pre_token_id", &v->fim_pre);
    special_key(v, f, "tokenizer.ggml.fim_suf_token_id", &v->fim_suf);
    special_key(v, f, "tokenizer.ggml.fim_mid_token_id", &v->fim_mid);
    special_key(v, f, "tokenizer.ggml.fim_pad_token_id", &v->fim_pad);
    special_key(v, f, "tokenizer.ggml.fim_rep_token_id", &v->fim_rep);
    special_key(v, f, "tokenizer.ggml.fim_sep_token_id", &v->fim_sep);
    special_key(v, f, "tokenizer.ggml.prefix_token_id", &v->fim_pre);
    special_key(v, f, "tokenizer.ggml.suffix_token_id", &v->fim_suf);
    special_key(v, f, "tokenizer.ggml.middle_token_id", &v->fim_mid);
    key_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos);
    key_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos);
    key_bool(f, "tokenizer.ggml.add_sep_token", &v->add_sep);
    if (v->add_bos && v->bos < 0) FAIL(NOOK_EFORMAT, "tokenizer: add_bos_token is true, but bos_token_id is not set");
    if (v->add_eos && v->eos < 0) FAIL(NOOK_EFORMAT, "tokenizer: add_eos_token is true, but eos_token_id is not set");

    st = detect_specials(v, err);
    if (st) goto fail;
    /* per-model attribute rules: Phi-3 strips whitespace to the right of its specials */
    if (strstr(v->name, "phi-3") || strstr(v->name, "phi3")) {
        for (int32_t id = 0; id < v->n_tokens; id++)
            if (v->attr[id] & (NK_ATTR_CONTROL | NK_ATTR_USER_DEFINED | NK_ATTR_UNKNOWN)) v->attr[id] |= NK_ATTR_RSTRIP;
        int32_t id = find_tok(v, "</s>");
        if (id >= 0) v->attr[id] |= NK_ATTR_RSTRIP;
        static const char *const no_strip[] = { "<unk>", "<s>", "<|endoftext|>" };
        for (size_t k = 0; k < NK_ARRAY_LEN(no_strip); k++)
            if ((id = find_tok(v, no_strip[k])) >= 0) v->attr[id] &= (uint16_t)~NK_ATTR_RSTRIP;
    }
    st = build_specials(v, err);
    if (st) goto fail;

    if (v->type == NK_VOCAB_BPE) {   /* newline token: the tokenization of "\n" */
        nook_token t[4];
        size_t n = 0;
        nook_status ts = nk_vocab_tokenize_impl(v, "\n", 1, false, false, t, 4, &n, NULL);
        if (ts == NOOK_ENOMEM) {   /* not a property of the vocabulary: a wrong newline id would be */
            st = nk_fail(err, NOOK_ENOMEM, "tokenizer: out of memory");
            goto fail;
        }
        if (ts == NOOK_OK && n > 0) v->nl = t[0];
        else v->nl = v->pad;
    }
    *out = v;
    return NOOK_OK;
fail:
    nk_vocab_free(v);
    return st;
#undef FAIL
}

void nk_vocab_free(nk_vocab *v) {
    if (!v) return;
    nk_strtab_free(&v->strs);
    nk_tok_free(v->tok_block);   /* scores, special_rank, attr, ttype, eog */
    nk_free(v->eog_list);
    nk_free(v->special); nk_free(v->trie);
    nk_tok_free(v->merges);
    nk_pretok_free(&v->pretok);
    nk_free(v);
}

/* ---- accessors -------------------------------------------------------------------------- */

int nk_vocab_n_tokens(const nk_vocab *v) { return v->n_tokens; }
const char *nk_vocab_model(const nk_vocab *v) { return v->model; }
const char *nk_vocab_pre(const nk_vocab *v) { return v->pre; }
int nk_vocab_token_type(const nk_vocab *v, nook_token t) { return valid_tok(v, t) ? v->ttype[t] : -1; }
int nk_vocab_token_attr(const nk_vocab *v, nook_token t) { return valid_tok(v, t) ? v->attr[t] : 0; }
float nk_vocab_score(const nk_vocab *v, nook_token t) { return valid_tok(v, t) ? v->scores[t] : 0.0f; }
const char *nk_vocab_text(const nk_vocab *v, nook_token t) { return valid_tok(v, t) ? nk_strtab_str(&v->strs, t) : NULL; }
nook_token nk_vocab_find(const nk_vocab *v, const char *text, size_t len) {
    int32_t id = nk_strtab_find(&v->strs, text, len);
    return id >= 0 && id < v->n_tokens ? id : -1;
}
nook_token nk_vocab_bos(const nk_vocab *v) { return v->bos; }
nook_token nk_vocab_eos(const nk_vocab *v) { return v->eos; }
nook_token nk_vocab_eot(const nk_vocab *v) { return v->eot; }
nook_token nk_vocab_unk(const nk_vocab *v) { return v->unk; }
nook_token nk_vocab_nl(const nk_vocab *v) { return v->nl; }
nook_token nk_vocab_pad(const nk_vocab *v) { return v->pad; }
bool nk_vocab_add_bos(const nk_vocab *v) { return v->add_bos; }
bool nk_vocab_add_eos(const nk_vocab *v) { return v->add_eos; }
bool nk_vocab_add_space_prefix(const nk_vocab *v) { return v->add_space_prefix; }
bool nk_vocab_is_eog(const nk_vocab *v, nook_token t) { return valid_tok(v, t) && v->eog[t]; }
bool nk_vocab_is_control(const nk_vocab *v, nook_token t) { return valid_tok(v, t) && (v->attr[t] & NK_ATTR_CONTROL); }
int nk_vocab_n_merges(const nk_vocab *v) { return v->n_merges; }
int nk_vocab_merge_rank(const nk_vocab *v, const char *left, const char *right) {
    int32_t l = nk_strtab_find(&v->strs, left, strlen(left)), r = nk_strtab_find(&v->strs, right, strlen(right));
    return l < 0 || r < 0 ? -1 : merge_find(v, l, r, NULL);
}

nook_status nk_vocab_tokenize(const nk_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                              nook_token *out, size_t cap, size_t *n_out, nook_error *err) {
    if (n_out) *n_out = 0;
    if (!v || (!text && len) || !n_out || (!out && cap))
        return nk_fail(err, NOOK_EINVAL, "tokenize: invalid arguments");
    long bad = nk_utf8_invalid_at(text, len);
    if (bad >= 0) return nk_fail(err, NOOK_EINVAL, "tokenize: invalid UTF-8 at byte offset %ld", bad);
    return nk_vocab_tokenize_impl(v, text, len, add_special, parse_special, out, cap, n_out, err);
}

/* ---- pieces -------------------------------------------------------------------------------- */

static int copy_out(char *buf, size_t cap, const char *s, size_t n) {
    if (n <= cap) memcpy(buf, s, n);
    else if (cap) memcpy(buf, s, cap);
    return (int)n;
}

int nk_vocab_piece(const nk_vocab *v, nook_token t, bool special, char *buf, size_t cap) {
    if (!valid_tok(v, t)) return -1;
    uint16_t a = v->attr[t];
    if (!special && (a & (NK_ATTR_UNKNOWN | NK_ATTR_CONTROL))) return 0;
    const char *s = nk_strtab_str(&v->strs, t);
    size_t n = v->strs.len[t];
    if (a & (NK_ATTR_UNKNOWN | NK_ATTR_CONTROL | NK_ATTR_USER_DEFINED)) return copy_out(buf, cap, s, n);
    if (a & NK_ATTR_NORMAL) {
        size_t w = 0;
        if (v->type == NK_VOCAB_SPM || v->escape_whitespaces) {
            for (size_t i = 0; i < n;) {   /* "▁" (E2 96 81) -> " " */
                if (i + 2 < n && (uint8_t)s[i] == 0xe2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
                    if (w < cap) buf[w] = ' ';
                    w++; i += 3;
                } else {
                    if (w < cap) buf[w] = s[i];
                    w++; i++;
                }
            }
            return (int)w;
        }
        /* byte-level BPE: each character of the GPT-2 alphabet is one byte */
        const nk_byte_map *bm = nk_byte_map_get();
        for (size_t i = 0; i < n;) {
            int k = nk_utf8_len((uint8_t)s[i]);
            uint32_t cp = 0xFFFD;
            if (k > 0 && i + (size_t)k <= n) cp = nk_utf8_decode((const uint8_t *)s + i, &k);
            else k = 1;
            if (cp < 512 && bm->dec[cp] >= 0) {
                if (w < cap) buf[w] = (char)bm->dec[cp];
                w++;
            } else {
                /* llama.cpp writes "[UNK_BYTE_0x<hex of the char>" + token text + "]" */
                char tmp[32];
                int m = snprintf(tmp, sizeof tmp, "[UNK_BYTE_0x");
                for (int j = 0; j < k; j++) m += snprintf(tmp + m, sizeof tmp - (size_t)m, "%02x", (uint8_t)s[i + j]);
                for (int j = 0; j < m; j++) { if (w < cap) buf[w] = tmp[j]; w++; }
                for (size_t j = 0; j < n; j++) { if (w < cap) buf[w] = s[j]; w++; }
                if (w < cap) buf[w] = ']';
                w++;
            }
            i += (size_t)k;
        }
        return (int)w;
    }
    if (a & NK_ATTR_BYTE) {   /* "<0xXX>" */
        unsigned x = 0;
        if (n == 6 && sscanf(s + 3, "%2x", &x) == 1) {
            char c = (char)x;
            return copy_out(buf, cap, &c, 1);
        }
        return 0;
    }
    return 0;   /* UNUSED / UNDEFINED render as nothing, as in llama.cpp */
}

/* Join the pieces of n tokens as llama.cpp's llama_detokenize does (leading-space removal
 * after BOS for SPM, optional BOS/EOS removal, the clean_spaces pass). Returns the
 * number of bytes the text needs (writes at most cap, no NUL). */
size_t nk_vocab_detokenize(const nk_vocab *v, const nook_token *toks, size_t n, bool remove_special,
                           bool unparse_special, char *buf, size_t cap) {
    bool remove_space = v->add_space_prefix;
    if (remove_special && v->add_bos && n > 0 && toks[0] == v->bos) { remove_space = false; toks++; n--; }
    if (remove_special && v->add_eos && n > 0 && toks[n - 1] == v->eos) n--;
    size_t total = 0;
    char piece[512];
    for (size_t i = 0; i < n; i++) {
        int k = nk_vocab_piece(v, toks[i], unparse_special, piece, sizeof piece);
        if (k <= 0) { if (k == 0) remove_space = false; continue; }
        const char *p = piece;
        char *big = NULL;
        if ((size_t)k > sizeof piece) {   /* very long token: render into a heap buffer */
            big = nk_malloc((size_t)k);
            if (!big) continue;
            nk_vocab_piece(v, toks[i], unparse_special, big, (size_t)k);
            p = big;
        }
        size_t m = (size_t)k;
        if (remove_space && m > 0 && p[0] == ' ') { p++; m--; }
        remove_space = false;
        for (size_t j = 0; j < m; j++) { if (total + j < cap) buf[total + j] = p[j]; }
        total += m;
        nk_free(big);
    }
    if (v->clean_spaces && total <= cap) {
        char *t = buf;
        size_t n1 = total, w = n1 ? 1 : 0;
        for (size_t i = 1; i < n1; i++) {          /* " ?", " !", " .", " ," */
            char x = t[i];
            if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
            t[w++] = x;
        }
        size_t n2 = w; w = n2 ? 1 : 0;
        for (size_t i = 1; i < n2; i++) {          /* " ' " -> "'" */
            char x = t[i];
            if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') { w--; t[++i] = 0; }
            t[w++] = x;
        }
        size_t n3 = w; w = n3 ? 1 : 0;
        for (size_t i = 1; i < n3; i++) {          /* " 's", " 'm", " 're", " 've" */
            char x = t[i];
            if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
                char x1 = t[i + 1];
                if (x1 == 's' || x1 == 'm') w--;
                else if (i + 2 < n3 && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))) w--;
            }
            t[w++] = x;
        }
        total = w;
    }
    return total;
}

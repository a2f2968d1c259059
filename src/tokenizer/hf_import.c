/*
 * hf_import.c: Hugging Face tokenizer.json -> GGUF tokenizer.* keys, mirroring
 * llama.cpp's convert_hf_to_gguf.py (get_vocab_base, _create_vocab_sentencepiece) and
 * gguf-py's SpecialVocab. docs/hf-import.md says which choices come from where and
 * where we deviate (we have no tokenizer.model and no transformers).
 *
 * Memory: the parsed JSON trees own most token strings; the token table points into
 * them and only the strings we rewrite ("[PAD7]", "▁"->" ") are allocated. Gemma 3
 * (33 MB of JSON) peaks near 190 MB, almost all of it jansson's tree.
 */
#include "tokenizer/hf_import.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HF_MAX_VOCAB (1u << 24)   /* far above any real vocab; bounds hostile ids */

/* token types, as tokenizer.h / gguf-py TokenType */
enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER_DEFINED = 4, T_UNUSED = 5, T_BYTE = 6 };

/* The special-token kinds SpecialVocab knows, in its order; eot/eom are appended by
 * the TemplateProcessing rule. Keys are the GGUF names (NULL: the converter has no
 * writer for it, so nothing is written). */
enum { SP_BOS, SP_EOS, SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, SP_EOT, SP_EOM, SP_N };
static const char *const sp_name[SP_N] = { "bos", "eos", "unk", "sep", "pad", "cls", "mask", "eot", "eom" };
static const char *const sp_id_key[SP_N] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id", NULL,
    "tokenizer.ggml.mask_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
};
static const char *const sp_add_key[SP_N] = {
    "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", NULL,
    "tokenizer.ggml.add_sep_token", NULL, NULL, NULL, NULL, NULL,
};

typedef struct hf {
    const char *dir;
    const char *arch;     /* may be NULL */
    json_t *tok;          /* tokenizer.json */
    json_t *cfg;          /* tokenizer_config.json or NULL */
    json_t *conf;         /* config.json or NULL */
    json_t *added;        /* tokenizer.json added_tokens (array, may be empty) */

    uint32_t n;           /* token count written */
    const char **text;    /* [n]; NULL until set (then "[PAD<i>]") */
    uint64_t *len;
    int32_t *type;
    float *score;         /* SPM only */
    char **owned;         /* strings we allocated */
    size_t n_owned, cap_owned;

    /* SpecialVocab state: ids and add flags in the order they were first set */
    int types[SP_N];      /* kinds to look up, in order */
    int n_types;
    int64_t sp_id[SP_N];  /* -1 = unset */
    int sp_order[SP_N], n_sp_order;
    int add_flag[SP_N];   /* -1 unset, 0/1 */
    int add_order[SP_N], n_add_order;
} hf;

/* ---- small helpers ------------------------------------------------------------------ */

static char *own(hf *h, const char *s, size_t n) {
    if (h->n_owned == h->cap_owned) {
        size_t cap = h->cap_owned ? 2 * h->cap_owned : 64;
        char **o = nk_realloc(h->owned, cap * sizeof *o);
        if (!o) return NULL;
        h->owned = o;
        h->cap_owned = cap;
    }
    char *p = nk_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    h->owned[h->n_owned++] = p;
    return p;
}

static void hf_free(hf *h) {
    for (size_t i = 0; i < h->n_owned; i++) nk_free(h->owned[i]);
    nk_free(h->owned);
    nk_free(h->text);
    nk_free(h->len);
    nk_free(h->type);
    nk_free(h->score);
    json_decref(h->tok);
    json_decref(h->cfg);
    json_decref(h->conf);
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

static nook_status join_path(char *out, size_t cap, const char *dir, const char *name, nook_error *err) {
    int k = snprintf(out, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap) return nk_fail(err, NOOK_EINVAL, "path too long: %s/%s", dir, name);
    return NOOK_OK;
}

/* Parse dir/name into *out (an object). A missing optional file gives *out = NULL. */
static nook_status load_json(const char *dir, const char *name, bool required, json_t **out, nook_error *err) {
    char path[4096];
    *out = NULL;
    nook_status st = join_path(path, sizeof path, dir, name, err);
    if (st) return st;
    if (!required && !file_exists(path)) return NOOK_OK;
    nk_map m;
    st = nk_map_file(path, false, &m, err);
    if (st) return st;
    json_error_t je;
    /* JSON_ALLOW_NUL: "\u0000" is legal JSON; lengths are carried everywhere below */
    /* The config files hold integers past 64 bits (Llama 3's model_max_length is 1e30),
     * which jansson rejects; nothing we read from them needs more than a double. */
    size_t flags = JSON_ALLOW_NUL | (required ? 0 : JSON_DECODE_INT_AS_REAL);
    json_t *j = json_loadb((const char *)m.data, m.size, flags, &je);
    nk_unmap(&m);
    if (!j) return nk_fail(err, NOOK_EFORMAT, "%s: invalid JSON at line %d, column %d: %s", path, je.line,
                           je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return nk_fail(err, NOOK_EFORMAT, "%s: top level is not a JSON object", path);
    }
    *out = j;
    return NOOK_OK;
}

static const char *jstr(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A special-token entry of tokenizer_config.json: "text" or {"content": "text"}. */
static const char *token_entry(const json_t *cfg, const char *key) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

static bool starts(const char *s, size_t n, const char *p) { size_t k = strlen(p); return n >= k && memcmp(s, p, k) == 0; }
static bool ends(const char *s, size_t n, const char *p) { size_t k = strlen(p); return n >= k && memcmp(s + n - k, p, k) == 0; }
static bool eq(const char *s, size_t n, const char *c) { return strlen(c) == n && memcmp(s, c, n) == 0; }

/* convert_hf_to_gguf's does_token_look_special: added tokens that some models forget to
 * flag special but that must be CONTROL in llama.cpp. */
static bool looks_special(const char *s, size_t n) {
    if (eq(s, n, "<pad>") || eq(s, n, "<mask>") || eq(s, n, "<2mass>") || eq(s, n, "[@BOS@]")) return true;
    if (starts(s, n, "<|") && ends(s, n, "|>")) return true;
    if (starts(s, n, "<\xef\xbd\x9c") && ends(s, n, "\xef\xbd\x9c>")) return true;   /* <｜ ... ｜> */
    return starts(s, n, "<unused") && ends(s, n, ">");
}

static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool is_byte_token(const char *s, size_t n) {
    return n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && is_hex(s[3]) && is_hex(s[4]) && s[5] == '>';
}

/* Set token id's text to s with every U+2581 "▁" replaced by a space (the converter
 * pre-normalizes user-defined tokens this way). Points into s when nothing changes. */
static nook_status set_user_text(hf *h, uint32_t id, const char *s, size_t n, nook_error *err) {
    size_t k = 0;
    for (size_t i = 0; i + 3 <= n; i++)
        if ((uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) k++;
    if (!k) { h->text[id] = s; h->len[id] = n; return NOOK_OK; }
    char *tmp = nk_malloc(n + 1);
    if (!tmp) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            tmp[o++] = ' ';
            i += 3;
        } else tmp[o++] = s[i++];
    }
    char *p = own(h, tmp, o);
    nk_free(tmp);
    if (!p) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    h->text[id] = p;
    h->len[id] = o;
    return NOOK_OK;
}

/* An integer id from JSON, checked to be in [0, HF_MAX_VOCAB). */
static bool json_id(const json_t *v, uint32_t *out) {
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v)) d = json_real_value(v);   /* config files are read ints-as-reals */
    else return false;
    if (!(d >= 0 && d < (double)HF_MAX_VOCAB) || d != (double)(uint32_t)d) return false;
    *out = (uint32_t)d;
    return true;
}

/* ---- vocabulary size and table ----------------------------------------------------------- */

/* config.json vocab_size (or text_config.vocab_size), 0 if absent. */
static nook_status config_vocab_size(const hf *h, uint32_t *out, nook_error *err) {
    *out = 0;
    if (!h->conf) return NOOK_OK;
    const json_t *v = json_object_get(h->conf, "vocab_size");
    if (!v) v = json_object_get(json_object_get(h->conf, "text_config"), "vocab_size");
    if (!v || json_is_null(v)) return NOOK_OK;
    uint32_t n;
    if (!json_id(v, &n) || n == 0)
        return nk_fail(err, NOOK_EFORMAT, "%s/config.json: vocab_size is not an integer in [1, %u]", h->dir,
                       HF_MAX_VOCAB - 1);
    *out = n;
    return NOOK_OK;
}

/* Check every id in model.vocab and added_tokens, and size the token table. */
static nook_status size_table(hf *h, const json_t *vocab, bool spm, nook_error *err) {
    uint32_t max_id = 0;
    bool any = false;
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        uint32_t id = 0;
        if (!json_id(json_object_iter_value(it), &id))
            return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: model.vocab['%.60s'] is not an id in [0, %u)",
                           h->dir, json_object_iter_key(it), HF_MAX_VOCAB);
        if (!any || id > max_id) max_id = id;
        any = true;
    }
    size_t na = json_array_size(h->added);
    for (size_t i = 0; i < na; i++) {
        const json_t *a = json_array_get(h->added, i);
        uint32_t id = 0;
        if (!json_is_object(a) || !json_id(json_object_get(a, "id"), &id) || !json_is_string(json_object_get(a, "content")))
            return nk_fail(err, NOOK_EFORMAT,
                           "%s/tokenizer.json: added_tokens[%zu] needs an integer id in [0, %u) and a string content",
                           h->dir, i, HF_MAX_VOCAB);
        if (!any || id > max_id) max_id = id;
        any = true;
    }
    if (!any) return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: model.vocab is empty", h->dir);
    uint32_t n;
    nook_status st = config_vocab_size(h, &n, err);
    if (st) return st;
    if (!n) n = max_id + 1;
    /* the BPE converter asserts every id fits; the SentencePiece one drops those that do not */
    else if (!spm && max_id >= n)
        return nk_fail(err, NOOK_EFORMAT, "%s: token id %u does not fit config.json's vocab_size %u", h->dir, max_id, n);
    h->n = n;
    h->text = nk_calloc(n, sizeof *h->text);
    h->len = nk_calloc(n, sizeof *h->len);
    h->type = nk_calloc(n, sizeof *h->type);
    if (spm) h->score = nk_calloc(n, sizeof *h->score);
    if (!h->text || !h->len || !h->type || (spm && !h->score))
        return nk_fail(err, NOOK_ENOMEM, "out of memory for %u tokens", n);
    for (uint32_t i = 0; i < n; i++) {
        h->type[i] = T_UNUSED;
        if (spm) h->score[i] = -10000.0f;
    }
    return NOOK_OK;
}

/* Unused ids become "[PAD<id>]", as the converter names them. */
static nook_status fill_pads(hf *h, nook_error *err) {
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->text[i]) continue;
        char b[32];
        int k = snprintf(b, sizeof b, "[PAD%u]", i);
        const char *p = own(h, b, (size_t)k);
        if (!p) return nk_fail(err, NOOK_ENOMEM, "out of memory");
        h->text[i] = p;
        h->len[i] = (size_t)k;
        h->type[i] = T_UNUSED;
    }
    return NOOK_OK;
}

/* The base vocabulary: every model.vocab entry at its id. */
static nook_status put_vocab(hf *h, const json_t *vocab, nook_error *err) {
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        uint32_t id = 0;
        json_id(json_object_iter_value(it), &id);   /* checked in size_table */
        if (id >= h->n) continue;                   /* SPM: out of the model's range */
        const char *k = json_object_iter_key(it);
        if (h->text[id])
            return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: id %u is used by two tokens ('%.60s' and '%.60s')",
                           h->dir, id, h->text[id], k);
        h->text[id] = k;
        h->len[id] = json_object_iter_key_len(it);
        h->type[id] = T_NORMAL;
    }
    return NOOK_OK;
}

/* Type an added token as the converter does: special (or looking special) -> CONTROL,
 * else USER_DEFINED with "▁" pre-normalized to spaces. */
static nook_status put_added(hf *h, uint32_t id, const char *s, size_t n, bool special, nook_error *err) {
    if (special || looks_special(s, n)) {
        h->text[id] = s;
        h->len[id] = n;
        h->type[id] = T_CONTROL;
        return NOOK_OK;
    }
    h->type[id] = T_USER_DEFINED;
    return set_user_text(h, id, s, n, err);
}

/* The "special" flag of added token id: tokenizer_config.json's added_tokens_decoder
 * wins (transformers applies it over tokenizer.json), else tokenizer.json's own. */
static bool added_special(const hf *h, uint32_t id, const json_t *a) {
    const json_t *atd = json_object_get(h->cfg, "added_tokens_decoder");
    if (json_is_object(atd)) {
        char key[16];
        snprintf(key, sizeof key, "%u", id);
        const json_t *e = json_object_get(atd, key);
        if (json_is_object(e) && json_is_boolean(json_object_get(e, "special")))
            return json_is_true(json_object_get(e, "special"));
    }
    return json_is_true(json_object_get(a, "special"));
}

/* ---- merges -------------------------------------------------------------------------------- */

/* Merge i as two parts (pointers into the JSON). Both merge formats are accepted:
 * "left right" (split at the first space after index 0, as llama.cpp does) and
 * ["left", "right"] (transformers >= 4.45). */
static nook_status merge_parts(const hf *h, const json_t *m, size_t i, const char **a, size_t *na, const char **b,
                               size_t *nb, nook_error *err) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t n = json_string_length(m);
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        if (!sp || (size_t)(sp - s) + 1 >= n)
            return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: merges[%zu] '%.60s' is not \"left right\"", h->dir,
                           i, s);
        *a = s;
        *na = (size_t)(sp - s);
        *b = sp + 1;
        *nb = n - *na - 1;
        return NOOK_OK;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *na = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *nb = json_string_length(json_array_get(m, 1));
        if (*na && *nb) return NOOK_OK;
    }
    return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: merges[%zu] is neither \"left right\" nor [left, right]",
                   h->dir, i);
}

static size_t space_count(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == ' ';
    return k;
}

/* Append s to o, writing each space as U+0120 "Ġ" (gguf-py does this so the "a b"
 * string form stays splittable). */
static size_t put_part(char *o, const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { o[k++] = (char)0xC4; o[k++] = (char)0xA0; }
        else o[k++] = s[i];
    }
    return k;
}

/* tokenizer.ggml.merges: string merges are written as they are, pair merges joined by
 * one space. */
static nook_status write_merges(hf *h, const json_t *merges, gguf_writer *w, nook_error *err) {
    size_t n = json_array_size(merges);
    const char **strs = nk_alloc_array(n ? n : 1, sizeof *strs);
    uint64_t *lens = nk_alloc_array(n ? n : 1, sizeof *lens);
    char *arena = NULL;
    nook_status st = NOOK_OK;
    if (!strs || !lens) { st = nk_fail(err, NOOK_ENOMEM, "out of memory for %zu merges", n); goto out; }
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t na, nb;
        if ((st = merge_parts(h, m, i, &a, &na, &b, &nb, err))) goto out;
        if (!json_is_string(m)) need += na + nb + 2 * (space_count(a, na) + space_count(b, nb)) + 1;
    }
    arena = nk_malloc(need ? need : 1);
    if (!arena) { st = nk_fail(err, NOOK_ENOMEM, "out of memory for merges"); goto out; }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            strs[i] = json_string_value(m);
            lens[i] = json_string_length(m);
            continue;
        }
        const char *a, *b;
        size_t na, nb;
        merge_parts(h, m, i, &a, &na, &b, &nb, err);
        char *o = arena + off;
        size_t k = put_part(o, a, na);
        o[k++] = ' ';
        k += put_part(o + k, b, nb);
        strs[i] = o;
        lens[i] = k;
        off += k;
    }
    if ((st = gguf_set_arr_str(w, "tokenizer.ggml.merges", strs, lens, n)))
        nk_fail(err, st, "%s", gguf_writer_error(w));
out:
    nk_free(strs);
    nk_free(lens);
    nk_free(arena);
    return st;
}

/* ---- pre-tokenizer -------------------------------------------------------------------------- */

/* The pre-tokenizer regexes llama.cpp has a name for, exactly as tokenizer.json spells
 * them. The converter identifies the pre-tokenizer by hashing HF's output on a test
 * text; without transformers we identify it by its definition instead. */
static const struct { const char *regex, *pre; } k_pre[] = {
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "llama-bpe" },
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen2" },
};

typedef struct pre_info { const char *regex; int n_split; bool byte_level, bl_regex; } pre_info;

static void scan_pre(const json_t *p, pre_info *pi) {
    const char *t = jstr(p, "type");
    if (!t) return;
    if (!strcmp(t, "Sequence")) {
        const json_t *l = json_object_get(p, "pretokenizers");
        for (size_t i = 0; i < json_array_size(l); i++) scan_pre(json_array_get(l, i), pi);
    } else if (!strcmp(t, "Split")) {
        pi->n_split++;
        const char *r = jstr(json_object_get(p, "pattern"), "Regex");
        if (r && !pi->regex) pi->regex = r;
    } else if (!strcmp(t, "ByteLevel")) {
        pi->byte_level = true;
        const json_t *u = json_object_get(p, "use_regex");
        pi->bl_regex = !u || json_is_true(u);   /* tokenizers' default is true */
    }
}

static nook_status detect_pre(const hf *h, const char **pre, nook_error *err) {
    pre_info pi = { 0 };
    scan_pre(json_object_get(h->tok, "pre_tokenizer"), &pi);
    if (!pi.byte_level)
        return nk_fail(err, NOOK_EUNSUPPORTED, "%s/tokenizer.json: a BPE tokenizer without byte fallback needs a "
                       "ByteLevel pre-tokenizer", h->dir);
    if (pi.n_split == 1 && pi.regex && !pi.bl_regex) {
        for (size_t i = 0; i < NK_ARRAY_LEN(k_pre); i++)
            if (!strcmp(pi.regex, k_pre[i].regex)) { *pre = k_pre[i].pre; return NOOK_OK; }
    } else if (pi.n_split == 0 && pi.bl_regex) {
        *pre = "gpt-2";
        return NOOK_OK;
    }
    return nk_fail(err, NOOK_EUNSUPPORTED, "%s/tokenizer.json: pre-tokenizer %s'%.120s' has no llama.cpp name nook "
                   "knows (known: llama-bpe, qwen2, gpt-2)", h->dir, pi.regex ? "regex " : "",
                   pi.regex ? pi.regex : "(no Split)");
}

/* ---- the two vocabulary families ------------------------------------------------------------ */

#define WSET(call) do { nook_status s_ = (call); \
    if (s_) return nk_fail(err, s_, "%s", gguf_writer_error(w)); } while (0)

/* Byte-level BPE: convert_hf_to_gguf's get_vocab_base + _set_vocab_gpt2. */
static nook_status import_gpt2(hf *h, const json_t *model, gguf_writer *w, nook_error *err) {
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: model.merges is missing or not an array", h->dir);
    const char *dec = jstr(json_object_get(h->tok, "decoder"), "type");
    if (!dec || strcmp(dec, "ByteLevel"))
        return nk_fail(err, NOOK_EUNSUPPORTED, "%s/tokenizer.json: BPE without byte fallback needs a ByteLevel "
                       "decoder (found %s)", h->dir, dec ? dec : "none");
    const char *pre;
    nook_status st = detect_pre(h, &pre, err);
    if (st) return st;
    if ((st = size_table(h, vocab, false, err)) || (st = put_vocab(h, vocab, err))) return st;
    for (size_t i = 0; i < json_array_size(h->added); i++) {
        const json_t *a = json_array_get(h->added, i);
        uint32_t id = 0;
        json_id(json_object_get(a, "id"), &id);
        const json_t *c = json_object_get(a, "content");
        if ((st = put_added(h, id, json_string_value(c), json_string_length(c), added_special(h, id, a), err)))
            return st;
    }
    if ((st = fill_pads(h, err))) return st;

    WSET(gguf_set_str(w, "tokenizer.ggml.model", "gpt2"));
    WSET(gguf_set_str(w, "tokenizer.ggml.pre", pre));
    WSET(gguf_set_arr_str(w, "tokenizer.ggml.tokens", h->text, h->len, h->n));
    WSET(gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, h->type, h->n));
    return write_merges(h, merges, w, err);
}

/* Scores for a SentencePiece-derived BPE. tokenizer.json has no scores, but
 * transformers generated its merges from them: every split of each piece, ordered by
 * the piece's score, best first. So the rank of the first merge that yields a piece
 * orders pieces exactly as their scores did, and llama.cpp's score-driven merging
 * (highest score first) then picks the merge HF's rank-driven BPE picks. Pieces no
 * merge yields (single characters, bytes) never win a merge; they score below all. */
static nook_status spm_scores(hf *h, const json_t *vocab, const json_t *merges, nook_error *err) {
    size_t nm = json_array_size(merges);
    float floor = -(float)nm - 1.0f;
    for (uint32_t i = 0; i < h->n; i++)
        if (h->type[i] == T_NORMAL) h->score[i] = floor;
        else if (h->type[i] == T_BYTE || h->type[i] == T_UNKNOWN) h->score[i] = 0.0f;
    char *buf = NULL;
    size_t cap = 0;
    nook_status st = NOOK_OK;
    for (size_t r = 0; r < nm; r++) {
        const char *a, *b;
        size_t na, nb;
        if ((st = merge_parts(h, json_array_get(merges, r), r, &a, &na, &b, &nb, err))) break;
        if (na + nb > cap) {
            cap = 2 * (na + nb);
            nk_free(buf);
            if (!(buf = nk_malloc(cap))) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); break; }
        }
        memcpy(buf, a, na);
        memcpy(buf + na, b, nb);
        uint32_t id = 0;
        if (!json_id(json_object_getn(vocab, buf, na + nb), &id)) {
            st = nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: merges[%zu] yields '%.*s', which is not in model.vocab",
                         h->dir, r, (int)NK_MIN(na + nb, 60), buf);
            break;
        }
        if (id < h->n && h->type[id] == T_NORMAL && h->score[id] == floor) h->score[id] = -(float)r;
    }
    nk_free(buf);
    return st;
}

/* Whether the tokenizer puts "▁" before the text (Llama 2 style) or not (Gemma). */
static bool spm_space_prefix(const hf *h) {
    const json_t *n = json_object_get(h->tok, "normalizer");
    const json_t *list = json_object_get(n, "normalizers");
    size_t cnt = json_is_array(list) ? json_array_size(list) : 1;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_is_array(list) ? json_array_get(list, i) : n;
        const char *t = jstr(e, "type");
        if (t && !strcmp(t, "Prepend")) return true;
    }
    const json_t *p = json_object_get(h->tok, "pre_tokenizer");
    const char *t = jstr(p, "type");
    if (t && !strcmp(t, "Metaspace")) {
        const char *scheme = jstr(p, "prepend_scheme");
        if (scheme) return strcmp(scheme, "never") != 0;
        return json_is_true(json_object_get(p, "add_prefix_space"));
    }
    return false;
}

/* SentencePiece-derived BPE with byte fallback: the converter's
 * _create_vocab_sentencepiece, with tokenizer.json standing in for tokenizer.model. */
static nook_status import_spm(hf *h, const json_t *model, gguf_writer *w, nook_error *err) {
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: model.merges is missing or not an array", h->dir);
    nook_status st;
    if ((st = size_table(h, vocab, true, err)) || (st = put_vocab(h, vocab, err))) return st;
    uint32_t unk = UINT32_MAX;
    const char *unk_s = jstr(model, "unk_token");
    if (unk_s) json_id(json_object_get(vocab, unk_s), &unk);
    for (uint32_t i = 0; i < h->n; i++) {
        if (!h->text[i]) continue;
        if (i == unk) h->type[i] = T_UNKNOWN;
        else if (is_byte_token(h->text[i], h->len[i])) h->type[i] = T_BYTE;
    }
    if ((st = spm_scores(h, vocab, merges, err))) return st;

    /* added tokens: tokenizer_config.json's added_tokens_decoder, as the converter reads
     * them; tokenizer.json's added_tokens when the config has none */
    const json_t *atd = json_object_get(h->cfg, "added_tokens_decoder");
    if (json_is_object(atd)) {
        for (void *it = json_object_iter((json_t *)atd); it; it = json_object_iter_next((json_t *)atd, it)) {
            const char *k = json_object_iter_key(it);
            const json_t *e = json_object_iter_value(it);
            char *end;
            errno = 0;
            unsigned long id = strtoul(k, &end, 10);
            const json_t *c = json_object_get(e, "content");
            if (!*k || *end || errno || id >= HF_MAX_VOCAB || !json_is_string(c))
                return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer_config.json: added_tokens_decoder['%.40s'] needs a "
                               "numeric id and a string content", h->dir, k);
            if (id >= h->n) continue;   /* the converter ignores ids past the vocab size */
            if ((st = put_added(h, (uint32_t)id, json_string_value(c), json_string_length(c),
                                json_is_true(json_object_get(e, "special")), err)))
                return st;
            h->score[id] = -1000.0f;
        }
    } else {
        for (size_t i = 0; i < json_array_size(h->added); i++) {
            const json_t *a = json_array_get(h->added, i);
            uint32_t id = 0;
            json_id(json_object_get(a, "id"), &id);
            if (id >= h->n) continue;
            const json_t *c = json_object_get(a, "content");
            if ((st = put_added(h, id, json_string_value(c), json_string_length(c),
                                json_is_true(json_object_get(a, "special")), err)))
                return st;
            h->score[id] = -1000.0f;
        }
    }
    if ((st = fill_pads(h, err))) return st;

    WSET(gguf_set_str(w, "tokenizer.ggml.model", "llama"));
    WSET(gguf_set_str(w, "tokenizer.ggml.pre", "default"));
    WSET(gguf_set_arr_str(w, "tokenizer.ggml.tokens", h->text, h->len, h->n));
    WSET(gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, h->score, h->n));
    WSET(gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, h->type, h->n));
    return NOOK_OK;
}

/* ---- special tokens and chat templates (gguf-py SpecialVocab) --------------------------------- */

static void set_special(hf *h, int kind, int64_t id) {
    if (id < 0 || id >= (int64_t)h->n || h->sp_id[kind] >= 0) return;   /* first one wins */
    h->sp_id[kind] = id;
    h->sp_order[h->n_sp_order++] = kind;
}

static void set_add(hf *h, int kind, bool v) {
    if (h->add_flag[kind] < 0) h->add_order[h->n_add_order++] = kind;
    h->add_flag[kind] = v;
}

static bool has_type(const hf *h, int kind) {
    for (int i = 0; i < h->n_types; i++)
        if (h->types[i] == kind) return true;
    return false;
}

static bool str_eq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* SpecialVocab's reading of post_processor: add_bos/add_eos from a TemplateProcessing
 * "single" template, all three from RobertaProcessing. When the template ends in a
 * token other than the configured EOS, that token becomes EOS and the old one EOT
 * (or EOM). The pair-template rule for add_sep is not implemented (BERT-style models). */
static nook_status post_processor(hf *h, nook_error *err) {
    const json_t *pp = json_object_get(h->tok, "post_processor");
    if (!json_is_object(pp)) return NOOK_OK;
    const json_t *procs = json_object_get(pp, "processors");
    size_t np = json_is_array(procs) ? json_array_size(procs) : 1;
    const char *bos = h->cfg ? jstr(h->cfg, "bos_token") : NULL;
    const char *eos = h->cfg ? jstr(h->cfg, "eos_token") : NULL;
    const char *cls = h->cfg ? jstr(h->cfg, "cls_token") : NULL;
    const char *sep = h->cfg ? jstr(h->cfg, "sep_token") : NULL;
    if (!bos && cls) bos = cls;
    if (!eos && sep) eos = sep;
    for (size_t i = 0; i < np; i++) {
        const json_t *p = json_is_array(procs) ? json_array_get(procs, i) : pp;
        const char *t = jstr(p, "type");
        if (!t) continue;
        if (!strcmp(t, "RobertaProcessing")) {
            set_add(h, SP_BOS, true);
            set_add(h, SP_EOS, true);
            set_add(h, SP_SEP, true);
            continue;
        }
        if (strcmp(t, "TemplateProcessing")) continue;
        const json_t *single = json_object_get(p, "single");
        size_t ns = json_array_size(single);
        if (ns <= 1) continue;
        const char *first = jstr(json_object_get(json_array_get(single, 0), "SpecialToken"), "id");
        if (first && *first) {
            if (!h->cfg) bos = first;
            set_add(h, SP_BOS, str_eq(first, bos) || str_eq(first, cls));
        }
        const char *last = jstr(json_object_get(json_array_get(single, ns - 1), "SpecialToken"), "id");
        if (last && *last) {
            if (!h->cfg) eos = last;
            else if (!str_eq(last, eos)) {
                /* the configured EOS moves to EOT (or EOM); the template's last token is EOS */
                int kind = !has_type(h, SP_EOT) ? SP_EOT : !has_type(h, SP_EOM) ? SP_EOM : -1;
                if (kind >= 0) {
                    h->types[h->n_types++] = kind;
                    json_t *v = json_object_get(h->cfg, "eos_token");
                    if (v && json_object_set(h->cfg, kind == SP_EOT ? "eot_token" : "eom_token", v))
                        return nk_fail(err, NOOK_ENOMEM, "out of memory");
                }
                if (json_object_set_new(h->cfg, "eos_token", json_string(last)))
                    return nk_fail(err, NOOK_ENOMEM, "out of memory");
                eos = jstr(h->cfg, "eos_token");
            }
            set_add(h, SP_EOS, str_eq(last, eos));
        }
    }
    return NOOK_OK;
}

/* A chat template value: a string, or a list of {name, template}. */
static nook_status write_chat_template(hf *h, const json_t *ct, gguf_writer *w, nook_error *err) {
    if (json_is_string(ct)) {
        if (strlen(json_string_value(ct)) != json_string_length(ct))
            return nk_fail(err, NOOK_EFORMAT, "%s: chat_template contains a NUL character", h->dir);
        WSET(gguf_set_str(w, "tokenizer.chat_template", json_string_value(ct)));
        return NOOK_OK;
    }
    if (!json_is_array(ct)) return NOOK_OK;   /* the converter ignores other types */
    const json_t *def = NULL;
    const char **names = nk_alloc_array(json_array_size(ct) + 1, sizeof *names);
    if (!names) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    size_t nn = 0;
    nook_status st = NOOK_OK;
    for (size_t i = 0; i < json_array_size(ct) && !st; i++) {
        const json_t *e = json_array_get(ct, i);
        const char *name = jstr(e, "name");
        const json_t *tpl = json_object_get(e, "template");
        if (!name || !*name || !json_is_string(tpl)) continue;
        if (strlen(json_string_value(tpl)) != json_string_length(tpl)) {
            st = nk_fail(err, NOOK_EFORMAT, "%s: chat_template '%.40s' contains a NUL character", h->dir, name);
            break;
        }
        /* like the converter: anything but [A-Za-z0-9] in a name becomes '_' */
        char clean[128], key[160];
        size_t k = 0;
        for (const char *c = name; *c && k + 1 < sizeof clean; c++)
            clean[k++] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c : '_';
        clean[k] = 0;
        if (!strcmp(clean, "default")) { def = tpl; continue; }
        snprintf(key, sizeof key, "tokenizer.chat_template.%s", clean);
        const char *nm = own(h, clean, k);
        if (!nm) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); break; }
        names[nn++] = nm;
        if ((st = gguf_set_str(w, key, json_string_value(tpl)))) nk_fail(err, st, "%s", gguf_writer_error(w));
    }
    if (!st && nn && (st = gguf_set_arr_str(w, "tokenizer.chat_templates", names, NULL, nn)))
        nk_fail(err, st, "%s", gguf_writer_error(w));
    nk_free(names);
    if (st) return st;
    if (def) WSET(gguf_set_str(w, "tokenizer.chat_template", json_string_value(def)));
    return NOOK_OK;
}

/* chat_template from tokenizer_config.json, else chat_template.jinja, else
 * chat_template.json, as SpecialVocab looks for them. */
static nook_status chat_template(hf *h, gguf_writer *w, nook_error *err) {
    const json_t *ct = json_object_get(h->cfg, "chat_template");
    if (ct) return write_chat_template(h, ct, w, err);
    char path[4096];
    nook_status st = join_path(path, sizeof path, h->dir, "chat_template.jinja", err);
    if (st) return st;
    if (file_exists(path)) {
        char *s;
        size_t n;
        if ((st = nk_read_file(path, &s, &n, err))) return st;
        json_t *j = json_stringn(s, n);   /* NULL for invalid UTF-8 */
        nk_free(s);
        if (!j) return nk_fail(err, NOOK_EFORMAT, "%s: not valid UTF-8", path);
        st = write_chat_template(h, j, w, err);
        json_decref(j);
        return st;
    }
    json_t *cj;
    if ((st = load_json(h->dir, "chat_template.json", false, &cj, err))) return st;
    if (!cj) return NOOK_OK;
    st = write_chat_template(h, json_object_get(cj, "chat_template"), w, err);
    json_decref(cj);
    return st;
}

static nook_status special_vocab(hf *h, gguf_writer *w, nook_error *err) {
    for (int k = 0; k < SP_N; k++) { h->sp_id[k] = -1; h->add_flag[k] = -1; }
    h->n_types = 0;
    for (int k = SP_BOS; k <= SP_MASK; k++) h->types[h->n_types++] = k;
    nook_status st = post_processor(h, err);
    if (st) return st;
    if (h->cfg) {
        if ((st = chat_template(h, w, err))) return st;
        for (int i = 0; i < h->n_types; i++) {
            int k = h->types[i];
            char key[32];
            snprintf(key, sizeof key, "add_%s_token", sp_name[k]);
            const json_t *a = json_object_get(h->cfg, key);
            if (json_is_boolean(a)) set_add(h, k, json_is_true(a));
            snprintf(key, sizeof key, "%s_token", sp_name[k]);
            const char *content = token_entry(h->cfg, key);
            if (!content) continue;
            /* the first added token with that content; the base vocab is not searched */
            for (size_t j = 0; j < json_array_size(h->added); j++) {
                const json_t *at = json_array_get(h->added, j);
                if (str_eq(jstr(at, "content"), content)) {
                    set_special(h, k, json_integer_value(json_object_get(at, "id")));
                    break;
                }
            }
        }
    }
    if (h->conf) {
        const json_t *tc = json_object_get(h->conf, "text_config");
        for (int i = 0; i < h->n_types; i++) {
            int k = h->types[i];
            char key[32];
            snprintf(key, sizeof key, "%s_token_id", sp_name[k]);
            const json_t *v = json_object_get(h->conf, key);
            if (!v) v = json_object_get(tc, key);
            uint32_t id = 0;
            if (json_id(v, &id)) set_special(h, h->types[i], id);
        }
    }
    for (int i = 0; i < h->n_sp_order; i++) {
        int k = h->sp_order[i];
        if (sp_id_key[k]) WSET(gguf_set_u32(w, sp_id_key[k], (uint32_t)h->sp_id[k]));
    }
    for (int i = 0; i < h->n_add_order; i++) {
        int k = h->add_order[i];
        if (sp_add_key[k]) WSET(gguf_set_bool(w, sp_add_key[k], h->add_flag[k] == 1));
    }
    return NOOK_OK;
}

/* ---- entry points ----------------------------------------------------------------------------- */

static nook_status hf_load(hf *h, const char *dir, nook_error *err) {
    memset(h, 0, sizeof *h);
    h->dir = dir;
    if (!dir || !*dir) return nk_fail(err, NOOK_EINVAL, "hf import: no directory given");
    nook_status st;
    if ((st = load_json(dir, "tokenizer.json", true, &h->tok, err)) ||
        (st = load_json(dir, "tokenizer_config.json", false, &h->cfg, err)) ||
        (st = load_json(dir, "config.json", false, &h->conf, err)))
        return st;
    h->added = json_object_get(h->tok, "added_tokens");
    if (h->added && !json_is_array(h->added) && !json_is_null(h->added))
        return nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: added_tokens is not an array", dir);
    return NOOK_OK;
}

nook_status nk_hf_import_tokenizer_arch(const char *dir, const char *arch, gguf_writer *w, nook_error *err) {
    if (!w) return nk_fail(err, NOOK_EINVAL, "hf import: no gguf writer");
    hf h;
    nook_status st = hf_load(&h, dir, err);
    if (st) goto out;
    h.arch = arch && *arch ? arch : NULL;
    const json_t *model = json_object_get(h.tok, "model");
    const char *type = jstr(model, "type");
    if (!json_is_object(model) || !json_is_object(json_object_get(model, "vocab"))) {
        st = nk_fail(err, NOOK_EFORMAT, "%s/tokenizer.json: model.vocab is missing or not an object", dir);
        goto out;
    }
    if (!type || strcmp(type, "BPE")) {
        st = nk_fail(err, NOOK_EUNSUPPORTED, "%s/tokenizer.json: model.type '%s' is not supported (BPE only)", dir,
                     type ? type : "(missing)");
        goto out;
    }
    bool spm = json_is_true(json_object_get(model, "byte_fallback"));
    if ((st = spm ? import_spm(&h, model, w, err) : import_gpt2(&h, model, w, err))) goto out;
    if ((st = special_vocab(&h, w, err))) goto out;

    /* per-architecture keys the converter adds after the vocab */
    const json_t *aps = json_object_get(h.cfg, "add_prefix_space");
    if (h.arch && !strcmp(h.arch, "gemma3") && spm) st = gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    else if (h.arch && !strcmp(h.arch, "llama") && json_is_boolean(aps))
        st = gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", json_is_true(aps));
    else if (spm) st = gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", spm_space_prefix(&h));
    if (st) nk_fail(err, st, "%s", gguf_writer_error(w));
out:
    hf_free(&h);
    return st;
}

nook_status nk_hf_import_tokenizer(const char *dir, gguf_writer *w, nook_error *err) {
    return nk_hf_import_tokenizer_arch(dir, NULL, w, err);
}

nook_status nk_hf_detect_arch(const char *dir, char *out, size_t cap, nook_error *err) {
    hf h;
    nook_status st = hf_load(&h, dir, err);
    const char *arch = NULL;
    if (st) goto out;
    const char *mt = jstr(h.conf, "model_type");
    if (mt) arch = !strcmp(mt, "gemma3_text") ? "gemma3" : mt;
    const char *cls = jstr(h.cfg, "tokenizer_class");
    if (!arch && cls && (!strcmp(cls, "GemmaTokenizer") || !strcmp(cls, "GemmaTokenizerFast"))) arch = "gemma3";
    if (!arch) {
        const json_t *model = json_object_get(h.tok, "model");
        const char *pre = NULL;
        nook_error e2;
        if (!json_is_true(json_object_get(model, "byte_fallback")) && detect_pre(&h, &pre, &e2) == NOOK_OK)
            arch = !strcmp(pre, "llama-bpe") ? "llama" : !strcmp(pre, "qwen2") ? "qwen3" : NULL;
    }
    if (!arch) {
        st = nk_fail(err, NOOK_ENOTFOUND, "%s: cannot tell the model architecture (no config.json model_type); "
                     "name it explicitly", dir);
        goto out;
    }
    if (strlen(arch) + 1 > cap) { st = nk_fail(err, NOOK_EINVAL, "architecture name '%s' too long", arch); goto out; }
    memcpy(out, arch, strlen(arch) + 1);
out:
    hf_free(&h);
    return st;
}

nook_status nk_hf_import_vocab_gguf(const char *dir, const char *arch, const char *out_path, nook_error *err) {
    if (!out_path || !*out_path) return nk_fail(err, NOOK_EINVAL, "hf import: no output path");
    char detected[64];
    if (!arch || !*arch) {
        nook_status st = nk_hf_detect_arch(dir, detected, sizeof detected, err);
        if (st) return st;
        arch = detected;
    }
    gguf_writer *w = gguf_writer_new();
    if (!w) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    nook_status st = gguf_set_str(w, "general.architecture", arch);
    if (st) nk_fail(err, st, "%s", gguf_writer_error(w));
    if (!st) st = nk_hf_import_tokenizer_arch(dir, arch, w, err);
    if (!st) st = gguf_write_file(w, out_path, err);
    gguf_writer_free(w);
    return st;
}

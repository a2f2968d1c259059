/*
 * tt_gpt2_vocab.h: build a vocab-only GGUF (tokenizer.ggml.* keys, no tensors) from a
 * GPT-2-style encoder.json + vocab.bpe pair, as the Llama 3.2 tokenizer in
 * ../shared/models/tokenizers/llama3.2 is shipped. Used by the Llama-3 vector test and
 * by tools/tokbench. Adds Llama 3's 256 special tokens (CONTROL) after the 128000
 * regular ones.
 */
#ifndef NK_TT_GPT2_VOCAB_H
#define NK_TT_GPT2_VOCAB_H

#include "gguf/gguf.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Returns NOOK_OK and a nk_malloc'd GGUF image in *out / *out_len. */
static inline nook_status tt_build_llama3_gguf(const char *encoder_json, const char *vocab_bpe,
                                               uint8_t **out, uint64_t *out_len, nook_error *err) {
    json_error_t je;
    json_t *enc = json_load_file(encoder_json, 0, &je);
    if (!enc || !json_is_object(enc)) {
        if (enc) json_decref(enc);
        return nk_fail(err, NOOK_EFORMAT, "%s: %s (line %d)", encoder_json, je.text, je.line);
    }
    size_t n_reg = json_object_size(enc), n_tok = n_reg + 256;
    const char **toks = nk_calloc(n_tok, sizeof *toks);
    uint64_t *lens = nk_calloc(n_tok, sizeof *lens);
    int32_t *types = nk_calloc(n_tok, sizeof *types);
    char (*spec)[48] = nk_calloc(256, sizeof *spec);
    char *bpe = NULL; size_t bpe_len = 0;
    const char **merges = NULL;
    gguf_writer *w = NULL;
    nook_status st = NOOK_OK;
    if (!toks || !lens || !types || !spec) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    const char *key; json_t *val;
    json_object_foreach(enc, key, val) {
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= n_reg || toks[id]) { st = nk_fail(err, NOOK_EFORMAT, "%s: bad id for '%s'", encoder_json, key); goto done; }
        toks[id] = key; lens[id] = strlen(key); types[id] = NK_TOKEN_NORMAL;
    }
    for (int i = 0; i < 256; i++) {
        size_t id = n_reg + (size_t)i;
        static const char *const named[] = { [0] = "<|begin_of_text|>", [1] = "<|end_of_text|>",
            [6] = "<|start_header_id|>", [7] = "<|end_header_id|>", [9] = "<|eot_id|>" };
        int reserved = i < 6 ? i - 2 : i == 8 ? 4 : i - 5;
        if (i < 10 && named[i]) snprintf(spec[i], sizeof spec[i], "%s", named[i]);
        else snprintf(spec[i], sizeof spec[i], "<|reserved_special_token_%d|>", reserved);
        toks[id] = spec[i]; lens[id] = strlen(spec[i]); types[id] = NK_TOKEN_CONTROL;
    }
    st = nk_read_file(vocab_bpe, &bpe, &bpe_len, err);
    if (st) goto done;
    size_t n_merges = 0;
    for (size_t i = 0; i < bpe_len; i++) n_merges += bpe[i] == '\n';
    merges = nk_calloc(n_merges + 1, sizeof *merges);
    if (!merges) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    n_merges = 0;
    for (char *p = bpe, *end = bpe + bpe_len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        if (nl > p && !(p[0] == '#' && strncmp(p, "#version", 8) == 0)) merges[n_merges++] = p;
        p = nl + 1;
    }
    w = gguf_writer_new();
    if (!w) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto done; }
    if (gguf_set_str(w, "general.architecture", "llama") || gguf_set_str(w, "general.name", "llama3-vocab") ||
        gguf_set_str(w, "tokenizer.ggml.model", "gpt2") || gguf_set_str(w, "tokenizer.ggml.pre", "llama-bpe") ||
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, lens, n_tok) ||
        gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n_tok) ||
        gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, n_merges) ||
        gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)n_reg) ||
        gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)n_reg + 1) ||
        gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true)) {
        st = nk_fail(err, NOOK_ENOMEM, "gguf writer failed");
        goto done;
    }
    st = gguf_write_mem(w, out, out_len, err);
done:
    gguf_writer_free(w);
    nk_free(merges); nk_free(bpe); nk_free(spec); nk_free(types); nk_free(lens); nk_free(toks);
    json_decref(enc);
    return st;
}

#endif

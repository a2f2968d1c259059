/*
 * fuzz_vocab.c: libFuzzer target for the vocabulary and merges of a model (issue 16): what
 * nk_vocab_load builds from a GGUF's tokenizer.ggml.* arrays, and the tokenizer run on it.
 *
 * The input is text, so that the corpus and the dictionary stay readable:
 *   line 1   tokenizer.ggml.model ("gpt2", "llama", anything)
 *   line 2   tokenizer.ggml.pre   ("qwen2", "llama3", "default", ... anything)
 *   then     one token per line, up to a line "=="
 *   then     one merge per line ("left right"), up to a line "=="
 *   the rest the text to tokenize
 * Token types come from the text: "<0xHH>" is a byte token, "<...>" a control token, else
 * normal; scores fall with the index; bos/eos are ids 1 and 2 when they exist. The GGUF is
 * written with nook's own writer and parsed back, so the loader sees exactly what a file
 * would hold. Any outcome is fine except a crash, a sanitizer report, a leak, an error
 * without a message, or a token id outside the vocabulary.
 * Seed corpus: tests/fuzz/corpus/vocab/ (slices of real vocabularies); dictionary:
 * tests/fuzz/vocab.dict.
 */
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 4096

static char *next_line(char **p, char *end) {
    if (*p >= end) return NULL;
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl) { *nl = 0; *p = nl + 1; }
    else { *p = end; }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;   /* lines are C strings: a NUL inside one ends it */
    char *p = buf, *end = buf + size;
    const char *model = next_line(&p, end), *pre = next_line(&p, end);
    const char *toks[MAX_TOKENS], *merges[MAX_TOKENS];
    int32_t types[MAX_TOKENS];
    float scores[MAX_TOKENS];
    int nt = 0, nm = 0;
    char *l;
    while ((l = next_line(&p, end)) && strcmp(l, "==") != 0 && nt < MAX_TOKENS) {
        toks[nt] = l;
        size_t n = strlen(l);
        types[nt] = (n == 6 && !strncmp(l, "<0x", 3) && l[5] == '>') ? 6 : (n > 2 && l[0] == '<' && l[n - 1] == '>') ? 3 : 1;
        scores[nt] = -(float)nt;
        nt++;
    }
    while ((l = next_line(&p, end)) && strcmp(l, "==") != 0 && nm < MAX_TOKENS) merges[nm++] = l;
    const char *text = p < end ? p : "";
    size_t text_len = (size_t)(end - p > 0 ? end - p : 0);

    gguf_writer *w = gguf_writer_new();
    uint8_t *file = NULL;
    uint64_t file_len = 0;
    if (!w) goto out;
    gguf_set_str(w, "general.architecture", "llama");
    if (model) gguf_set_str(w, "tokenizer.ggml.model", model);
    if (pre && *pre) gguf_set_str(w, "tokenizer.ggml.pre", pre);
    if (nt) {
        gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, (uint64_t)nt);
        gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)nt);
        gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)nt);
    }
    if (nm) gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, (uint64_t)nm);
    if (nt > 2) {
        gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    }
    if (gguf_write_mem(w, &file, &file_len, NULL) != NOOK_OK) goto out;

    gguf_file *gf = NULL;
    nk_vocab *v = NULL;
    nook_error err = { 0 };
    if (gguf_parse(file, file_len, &gf, &err) != NOOK_OK) abort();   /* our own writer's output */
    nook_status st = nk_vocab_load(gf, &v, &err);
    if (st != NOOK_OK) {
        if (v || !err.msg[0]) abort();
    } else {
        const int n_tokens = nk_vocab_n_tokens(v);
        const bool valid = nk_utf8_invalid_at(text, text_len) < 0;
        size_t cap = 4 * text_len + 8, n = 0;
        nook_token *t = malloc(cap * sizeof *t);
        char *out = malloc(8 * text_len + 64);
        for (int ps = 0; t && out && ps < 2; ps++) {
            st = nk_vocab_tokenize(v, text, text_len, ps == 1, ps == 1, t, cap, &n, &err);
            if (!valid) { if (st != NOOK_EINVAL) abort(); continue; }
            if (st != NOOK_OK) { if (!err.msg[0]) abort(); continue; }
            for (size_t i = 0; i < n; i++) {
                char piece[512];
                if (t[i] < 0 || t[i] >= n_tokens) abort();
                if (nk_vocab_piece(v, t[i], ps == 1, piece, sizeof piece) < 0) abort();
            }
            nk_vocab_detokenize(v, t, n, ps == 1, ps == 1, out, 8 * text_len + 64);
        }
        free(t);
        free(out);
        nk_vocab_free(v);
    }
    gguf_free(gf);
out:
    nk_free(file);
    gguf_writer_free(w);
    free(buf);
    return 0;
}

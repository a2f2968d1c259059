/*
 * fuzz_tokenizer.c: libFuzzer target for the tokenizer. Loads the Llama-2 SPM vocab and
 * the GPT-2 BPE vocab once (from $NOOK_TEST_MODELS or ../shared/models), then for each
 * input: the first byte picks the vocab, the rest is text, tokenized with parse_special
 * off and on; every resulting token is rendered as a piece (special on and off) and the
 * ids are detokenized. Must never crash, leak or read out of bounds; invalid UTF-8 must
 * be refused with NOOK_EINVAL.
 */
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { nk_map map; gguf_file *gf; nk_vocab *v; } fz_vocab;
static fz_vocab g_v[2];
static int g_n;

static void load_one(const char *rel) {
    const char *dir = getenv("NOOK_TEST_MODELS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "../shared/models", rel);
    fz_vocab *f = &g_v[g_n];
    if (nk_map_file(path, false, &f->map, NULL)) return;
    if (gguf_parse(f->map.data, f->map.size, &f->gf, NULL)) { nk_unmap(&f->map); return; }
    if (nk_vocab_load(f->gf, &f->v, NULL)) { gguf_free(f->gf); nk_unmap(&f->map); return; }
    g_n++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    load_one("vocab/ggml-vocab-llama-spm.gguf");
    load_one("vocab/ggml-vocab-gpt-2.gguf");
    if (!g_n) { fprintf(stderr, "fuzz_tokenizer: no vocab fixture found (set NOOK_TEST_MODELS)\n"); abort(); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 1 << 16) return 0;
    const nk_vocab *v = g_v[data[0] % g_n].v;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    bool valid = nk_utf8_invalid_at(text, len) < 0;
    size_t cap = 4 * len + 8, n = 0;
    nook_token *t = malloc(cap * sizeof *t);
    char *buf = malloc(8 * len + 64);
    if (!t || !buf) { free(t); free(buf); return 0; }
    for (int ps = 0; ps < 2; ps++) {
        nook_error err;
        nook_status st = nk_vocab_tokenize(v, text, len, ps == 1, ps == 1, t, cap, &n, &err);
        if (!valid) { if (st != NOOK_EINVAL) abort(); continue; }
        if (st != NOOK_OK) abort();
        for (size_t i = 0; i < n; i++) {
            char piece[512];
            if (t[i] < 0 || t[i] >= nk_vocab_n_tokens(v)) abort();
            if (nk_vocab_piece(v, t[i], ps == 1, piece, sizeof piece) < 0) abort();
        }
        nk_vocab_detokenize(v, t, n, ps == 1, ps == 1, buf, 8 * len + 64);
    }
    free(t);
    free(buf);
    return 0;
}

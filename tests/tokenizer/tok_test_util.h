/*
 * tok_test_util.h: helpers shared by the tokenizer tests: load a vocabulary from a
 * GGUF file, read the llama.cpp test-vector files (.inp/.out).
 */
#ifndef NK_TOK_TEST_UTIL_H
#define NK_TOK_TEST_UTIL_H

#include "nk_test.h"
#include "tokenizer/tokenizer.h"

/* A loaded vocab and the mapping it came from (the vocab copies what it needs, but
 * keeping both together keeps cleanup in one place). NULL with a message on failure. */
typedef struct tt_vocab { nk_map map; gguf_file *gf; nk_vocab *v; } tt_vocab;

static inline nook_status tt_load(tt_vocab *t, const char *path, nook_error *err) {
    memset(t, 0, sizeof *t);
    nook_status st = nk_map_file(path, false, &t->map, err);
    if (st) return st;
    st = gguf_parse(t->map.data, t->map.size, &t->gf, err);
    if (st) { nk_unmap(&t->map); return st; }
    st = nk_vocab_load(t->gf, &t->v, err);
    if (st) { gguf_free(t->gf); nk_unmap(&t->map); }
    return st;
}

static inline void tt_free(tt_vocab *t) {
    nk_vocab_free(t->v);
    gguf_free(t->gf);
    nk_unmap(&t->map);
}

/* Split a .inp file into its test strings (in place; pointers into buf). */
#define TT_SEP "\n__ggml_vocab_test__\n"
static inline int tt_split_inp(char *buf, size_t len, char **strs, size_t *lens, int max) {
    int n = 0;
    char *p = buf, *end = buf + len;
    size_t sl = strlen(TT_SEP);
    while (p < end && n < max) {
        char *q = memmem(p, (size_t)(end - p), TT_SEP, sl);
        if (!q) break;
        strs[n] = p; lens[n] = (size_t)(q - p); n++;
        p = q + sl;
    }
    return n;
}

/* Parse one line of a .out file (" 1 2 3") into ids; returns the count. */
static inline int tt_parse_ids(const char *line, const char *eol, nook_token *ids, int max) {
    int n = 0;
    const char *p = line;
    while (p < eol && n < max) {
        while (p < eol && *p == ' ') p++;
        if (p >= eol) break;
        ids[n++] = (nook_token)strtol(p, (char **)&p, 10);
    }
    return n;
}

#endif

/*
 * fuzz_gbnf.c: libFuzzer target for the GBNF parser and matcher.
 *
 * The input is grammar text. When it compiles, the matcher is driven over a few
 * strings derived from the input (its own bytes, and a byte walk that follows the
 * first live transition) and a token mask is computed over a small fixed vocabulary,
 * so parser, closure, UTF-8 handling, state interning and the trie walk all run on
 * hostile grammars. Any outcome is fine except a crash, a sanitizer report, a hang or
 * an error without a message. Seed corpus: tests/fuzz/corpus/gbnf/.
 */
#include "grammar/grammar.h"

#include <stdlib.h>
#include <string.h>

static nk_gvocab *g_vocab;
static const char *k_pieces[] = {
    "{", "}", "\"", "a", "ab", " ", "\n", "1", "-", "\xc3", "\xa9", "\xc3\xa9", "\xe2\x82\xac", "true", "x\"", "[", "]", ",",
};

static int piece(void *ud, int32_t t, char *buf, size_t cap) {
    (void)ud;
    if (t >= (int32_t)(sizeof k_pieces / sizeof *k_pieces)) return t % 2 ? -1 : 1;
    size_t n = strlen(k_pieces[t]);
    if (n <= cap) memcpy(buf, k_pieces[t], n);
    if (t >= 18) buf[0] = (char)t;
    return (int)n;
}
static bool eog(void *ud, int32_t t) { (void)ud; return t == 300; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_vocab) {
        nook_error e;
        if (nk_gvocab_new(301, piece, eog, NULL, &g_vocab, &e) != NOOK_OK) abort();
    }
    if (size > 8192) return 0;
    nk_grammar *g = NULL;
    nook_error e = { 0 };
    nook_status st = nk_grammar_compile((const char *)data, size, NULL, &g, &e);
    if (st != NOOK_OK) {
        if (!e.msg[0]) abort();
        return 0;
    }
    bool v, c;
    nk_grammar_test(g, data, size, &v, &c, &e);
    /* walk: at each step take the first token the mask allows */
    for (int step = 0; step < 24; step++) {
        const uint32_t *m;
        int n;
        if (nk_grammar_mask(g, g_vocab, &m, &n, &e) != NOOK_OK || n == 0) break;
        int tok = -1;
        for (int t = (step * 7) % 301, k = 0; k < 301; k++, t = (t + 1) % 301)
            if (m[t >> 5] >> (t & 31) & 1) { tok = t; break; }
        if (tok < 0) abort();   /* the count said otherwise */
        if (nk_grammar_accept_token(g, g_vocab, tok, &e) != NOOK_OK) abort();   /* the mask allowed it */
        if (tok == 300) break;
    }
    nk_grammar_free(g);
    return 0;
}

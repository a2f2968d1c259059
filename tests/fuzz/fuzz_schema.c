/*
 * fuzz_schema.c: libFuzzer target for the JSON schema -> GBNF converter (and the
 * pattern translator inside it). The input is a schema; a converted one must
 * compile (the converter writes only valid GBNF, or refuses), and its grammar is
 * tested on the input bytes. Any outcome is fine except a crash, a sanitizer report,
 * a hang, an error without a message, or converter output the compiler rejects for
 * anything but a size limit or a $ref loop. Seed corpus: tests/fuzz/corpus/schema/.
 */
#include "grammar/grammar.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 16384) return 0;
    char *gbnf = NULL;
    nook_error e = { 0 };
    nook_status st = nk_schema_to_gbnf((const char *)data, size, &gbnf, &e);
    if (st != NOOK_OK) {
        if (!e.msg[0] || gbnf) abort();
        return 0;
    }
    nk_grammar *g = NULL;
    st = nk_grammar_compile(gbnf, strlen(gbnf), NULL, &g, &e);
    if (st != NOOK_OK && st != NOOK_ERANGE && !strstr(e.msg, "left recursion")) abort();
    if (g) {
        bool v, c;
        nk_grammar_test(g, data, size, &v, &c, &e);
        nk_grammar_free(g);
    }
    nk_free(gbnf);
    return 0;
}

/*
 * constrain.c: the generation loop's grammar constraint (nook_gen_params.grammar and
 * .format) on top of src/grammar: the model's vocabulary as a byte trie (built once
 * per nook_gen and kept across requests), one compiled grammar per request, and the
 * mask/accept pair of nook_constraint that the loop calls every step.
 */
#include "engine/engine.h"
#include "grammar/grammar.h"

#include <string.h>

struct nk_constrain {
    nk_grammar *g;
    const nk_gvocab *v;
};

static int piece_fn(void *ud, int32_t t, char *buf, size_t cap) {
    return nook_token_to_piece((const nook_model *)ud, t, false, buf, cap);
}

static bool eog_fn(void *ud, int32_t t) { return nook_token_is_eog((const nook_model *)ud, t); }

nook_status nk_constrain_vocab(const nook_model *m, nk_gvocab **cache, nook_error *err) {
    if (*cache) return NOOK_OK;
    return nk_gvocab_new(nook_model_n_vocab(m), piece_fn, eog_fn, (void *)m, cache, err);
}

nook_status nk_constrain_new(const nk_gvocab *v, const char *grammar, const char *format,
                             nk_constrain **out, nook_error *err) {
    *out = NULL;
    nk_grammar *g = NULL;
    nook_status st;
    if (grammar && grammar[0] && format && format[0])
        return nk_fail(err, NOOK_EINVAL, "grammar and format together (give one)");
    if (grammar && grammar[0]) {
        st = nk_grammar_compile(grammar, strlen(grammar), NULL, &g, err);
    } else {
        size_t n = strlen(format);
        while (n && (format[n - 1] == ' ' || format[n - 1] == '\n')) n--;
        const char *f = format;
        while (*f == ' ' || *f == '\n') f++;
        if (strcmp(format, "json") == 0 || strcmp(format, "\"json\"") == 0)
            st = nk_grammar_compile(nk_json_gbnf(), strlen(nk_json_gbnf()), NULL, &g, err);
        else if (*f == '{' || strncmp(f, "true", 4) == 0)
            st = nk_grammar_from_schema(format, strlen(format), &g, err);
        else
            return nk_fail(err, NOOK_EINVAL, "format must be \"json\" or a JSON schema (got '%.40s')", format);
    }
    if (st != NOOK_OK) return st;
    nk_constrain *c = nk_calloc(1, sizeof *c);
    if (!c) { nk_grammar_free(g); return nk_fail(err, NOOK_ENOMEM, "out of memory"); }
    c->g = g;
    c->v = v;
    *out = c;
    return NOOK_OK;
}

void nk_constrain_free(nk_constrain *c) {
    if (!c) return;
    nk_grammar_free(c->g);
    nk_free(c);
}

nook_status nk_constrain_mask(void *ud, float *logits, int n_vocab, nook_error *err) {
    nk_constrain *c = ud;
    if (n_vocab != nk_gvocab_n_vocab(c->v)) return nk_fail(err, NOOK_EINTERNAL, "constraint: vocabulary size mismatch");
    return nk_grammar_apply(c->g, c->v, logits, err);
}

nook_status nk_constrain_accept(void *ud, nook_token tok, nook_error *err) {
    nk_constrain *c = ud;
    return nk_grammar_accept_token(c->g, c->v, tok, err);
}

void nk_constrain_stats(const nk_constrain *c, nk_grammar_stats *st) { nk_grammar_get_stats(c->g, st); }

/*
 * grammar.h: constrained decoding. A GBNF grammar (llama.cpp's dialect) is compiled
 * once into a pushdown matcher over bytes; a vocabulary trie turns the matcher's
 * state into a token mask; JSON schemas are converted to GBNF first (schema.c).
 * docs/grammar.md explains the design and its limits.
 *
 * Objects
 *   nk_grammar  one compiled grammar AND the state of one generation through it
 *               (current position, caches of states, transitions and masks). Used by
 *               one thread at a time; compile one per concurrent generation.
 *   nk_gvocab   the token bytes of a model's vocabulary as a byte trie. Immutable
 *               after creation: share it between any number of grammars and threads.
 *
 * Errors are values (nook_status + nook_error); nothing here prints or exits.
 */
#ifndef NOOK_GRAMMAR_H
#define NOOK_GRAMMAR_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (each refusal names the one it hit). */
#define NK_GRAMMAR_MAX_SOURCE   (4u << 20)   /* bytes of GBNF text                       */
#define NK_GRAMMAR_MAX_ELEMS    (1u << 20)   /* symbols after expanding {m,n} etc.       */
#define NK_GRAMMAR_MAX_NESTING  200          /* nested parentheses                       */

typedef struct nk_grammar nk_grammar;
typedef struct nk_gvocab nk_gvocab;

/* ---- compiling -------------------------------------------------------------------------- */

/* Compiles len bytes of GBNF text with start rule root (NULL = "root"). The dialect is
 * llama.cpp's: `name ::= alternatives` one rule per line (a rule continues over
 * newlines only inside parentheses), `|`, `( )`, `* + ?`, `{m}` `{m,}` `{m,n}`,
 * "literals" and [classes] with ranges, negation ([^...]) and escapes (\x.. \u....
 * \U........ \t \n \r \\ \" \[ \] \- \^ \/), `.` for any character, `#` comments.
 * Errors (NOOK_EFORMAT) name "line L, column C"; undefined rules, a missing root and
 * left recursion (which a top-down matcher cannot run) are refused; NOOK_ERANGE past
 * the limits above. The caller owns *out (nk_grammar_free). */
nook_status nk_grammar_compile(const char *src, size_t len, const char *root,
                               nk_grammar **out, nook_error *err);
void nk_grammar_free(nk_grammar *g);

/* Number of rules after expansion (for tests and docs). */
int nk_grammar_n_rules(const nk_grammar *g);

/* ---- matching bytes --------------------------------------------------------------------- */

/* Back to the start of the language (nothing consumed). Keeps the caches. */
void nk_grammar_reset(nk_grammar *g);

/* Consumes n bytes. A byte may end in the middle of a UTF-8 character: the matcher
 * keeps the partial character and refuses it at once if no character the grammar
 * allows there starts with those bytes. NOOK_EINVAL when the bytes leave the
 * language (the state is then unchanged: nothing of the n bytes was consumed);
 * NOOK_ERANGE if the grammar's state tables outgrow their limit. */
nook_status nk_grammar_accept_bytes(nk_grammar *g, const void *bytes, size_t n, nook_error *err);

/* Whether the bytes consumed so far form a complete sentence (no partial character). */
bool nk_grammar_can_end(const nk_grammar *g);
/* Whether nothing but the end is possible any more. */
bool nk_grammar_done(const nk_grammar *g);

/* Tests from the start state without changing the current one: *viable is whether
 * s[0..n) is a prefix of some sentence, *complete whether it is a sentence. */
nook_status nk_grammar_test(nk_grammar *g, const void *s, size_t n, bool *viable,
                            bool *complete, nook_error *err);

/* ---- tokens -------------------------------------------------------------------------------- */

/* Fills buf (cap bytes) with token tok's bytes; returns their number (may exceed cap),
 * or a negative value for "this token never appears in constrained output" (control
 * tokens). is_eog says whether tok ends generation. */
typedef int (*nk_gvocab_piece_fn)(void *ud, int32_t tok, char *buf, size_t cap);
typedef bool (*nk_gvocab_eog_fn)(void *ud, int32_t tok);

/* Builds the trie of n_vocab tokens. End-of-generation tokens are kept aside: the
 * mask allows them exactly where the grammar can end. Tokens with empty pieces are
 * never allowed. The caller owns *out (nk_gvocab_free). */
nook_status nk_gvocab_new(int n_vocab, nk_gvocab_piece_fn piece, nk_gvocab_eog_fn eog, void *ud,
                          nk_gvocab **out, nook_error *err);
void nk_gvocab_free(nk_gvocab *v);
int nk_gvocab_n_vocab(const nk_gvocab *v);
/* Bytes of one token (borrowed, valid while v lives); *len receives their count. */
const char *nk_gvocab_piece(const nk_gvocab *v, int32_t tok, size_t *len);

/* The tokens allowed next, as a bitset of n_vocab bits (bit t of word t/32); borrowed,
 * valid until the next call on g. Computed by walking the trie with the grammar's
 * state (a subtree is skipped as soon as its prefix leaves the language) and cached
 * per state, so a state seen before costs one lookup. *n_allowed (may be NULL)
 * receives the number of allowed tokens (0: a dead end, which a grammar whose every
 * prefix can be completed never reaches with a vocabulary holding all single bytes). */
nook_status nk_grammar_mask(nk_grammar *g, const nk_gvocab *v, const uint32_t **mask,
                            int *n_allowed, nook_error *err);

/* Sets the logits of every token the grammar forbids now to -inf (so a sampler's
 * top-k/top-p/min-p only ever sees allowed tokens). NOOK_ERANGE if no token is
 * allowed. */
nook_status nk_grammar_apply(nk_grammar *g, const nk_gvocab *v, float *logits, nook_error *err);

/* Advances over token tok's bytes (an end-of-generation token is accepted only where
 * the grammar can end, and changes nothing). NOOK_EINVAL for a token the mask forbids. */
nook_status nk_grammar_accept_token(nk_grammar *g, const nk_gvocab *v, int32_t tok, nook_error *err);

/* Counters for tests and benchmarks. */
typedef struct nk_grammar_stats {
    long states, nodes, masks_computed, mask_hits, trie_nodes_visited, flushes, transitions;
} nk_grammar_stats;
void nk_grammar_get_stats(const nk_grammar *g, nk_grammar_stats *st);

/* ---- JSON schema -> GBNF (schema.c) ---------------------------------------------------------- */

/* Converts a JSON schema (text) into GBNF text whose root rule accepts exactly the
 * JSON documents the converter supports for that schema, with whitespace as
 * llama.cpp's converter allows it. docs/grammar.md lists the keywords; any other
 * keyword that would constrain the value is refused (NOOK_EUNSUPPORTED naming it),
 * annotations (title, description, examples, $schema, $id, $comment, default) are
 * ignored. A $ref loop that never consumes input and schemas whose grammar exceeds
 * NK_SCHEMA_MAX_GBNF bytes are refused. *out is nk_malloc'd, NUL-terminated. */
#define NK_SCHEMA_MAX_GBNF (1u << 20)
nook_status nk_schema_to_gbnf(const char *schema, size_t len, char **out, nook_error *err);

/* GBNF for any JSON value (Ollama's format:"json"), as llama.cpp's json.gbnf. */
const char *nk_json_gbnf(void);

/* Convenience: schema text -> compiled grammar. */
nook_status nk_grammar_from_schema(const char *schema, size_t len, nk_grammar **out, nook_error *err);

#endif /* NOOK_GRAMMAR_H */

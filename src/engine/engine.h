/*
 * engine.h: internals of the engine layer (generation loop, scheduler). The public API
 * is the "Generation" and "Scheduler" sections of nook.h.
 */
#ifndef NK_ENGINE_H
#define NK_ENGINE_H

#include "base/base.h"

/* Whether a chat template thinks: Qwen3's writes <think> blocks and reads
 * enable_thinking. */
bool nk_template_thinks(const char *tmpl);

/* Restart the request's clock (prompt eval and total durations count from here): the
 * scheduler calls it when a queued request gets its slot. */
void nk_gen_restart_clock(nook_gen *g);

/* The request is over (its DONE event was sent, or it never began): drop what belongs
 * to it alone (grammar, stop strings, the caller's callback and ud) and keep the
 * buffers, so the nook_gen can serve the next request (nook_gen_begin resets it). The
 * scheduler's spare generation states are kept this way. */
void nk_gen_release(nook_gen *g);

/* ---- grammar constraint (constrain.c): nook_gen_params.grammar / .format ---- */
typedef struct nk_constrain nk_constrain;
typedef struct nk_gvocab nk_gvocab;
typedef struct nk_grammar_stats nk_grammar_stats;
/* The model's vocabulary as a byte trie, built into *cache on first use (then kept). */
nook_status nk_constrain_vocab(const nook_model *m, nk_gvocab **cache, nook_error *err);
/* A constraint for one request: GBNF text, or format "json" / a JSON schema. */
nook_status nk_constrain_new(const nk_gvocab *v, const char *grammar, const char *format,
                             nk_constrain **out, nook_error *err);
void nk_constrain_free(nk_constrain *c);
/* nook_constraint's mask and accept, ud = the nk_constrain. */
nook_status nk_constrain_mask(void *ud, float *logits, int n_vocab, nook_error *err);
nook_status nk_constrain_accept(void *ud, nook_token tok, nook_error *err);
void nk_constrain_stats(const nk_constrain *c, nk_grammar_stats *st);

#endif /* NK_ENGINE_H */

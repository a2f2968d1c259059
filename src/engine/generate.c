/*
 * generate.c: nook_generate, the one-sequence driver of the generation loop: a session's
 * cache, one prompt, tokens decoded one at a time, a full context shifted as Ollama does
 * (keep the first tokens, drop half of the rest). `nook run` is its user.
 */
#include "engine/engine.h"

#include <string.h>

nook_status nook_generate(nook_session *s, const nook_prompt *prompt, const nook_gen_params *p,
                          nook_event_fn on_event, void *ud, nook_error *err) {
    if (!s || !prompt || !p || !on_event) return nk_fail(err, NOOK_EINVAL, "nook_generate: bad arguments");
    const nook_model *m = nook_session_model(s);
    const int n_ctx = nook_session_n_ctx(s);
    nook_token *toks = NULL, *hist = NULL;
    nook_gen *g = NULL;
    int n_tok = 0;
    bool split = false;

    /* setup: everything that allocates happens here */
    nook_status st = nook_prompt_tokenize(m, prompt, &toks, &n_tok, &split, err);
    if (st != NOOK_OK) return st;
    if (n_tok == 0) {
        st = nk_fail(err, NOOK_EINVAL, "the prompt is empty");
        goto out;
    }
    /* a prompt that does not fit is an error, never silently cut (Ollama's shift:false) */
    if (n_tok > n_ctx) {
        st = nk_fail(err, NOOK_ERANGE, "the prompt is %d tokens, longer than the context (%d)", n_tok, n_ctx);
        goto out;
    }
    /* the tokens in the cache, plus one sampled and not yet decoded: what a shift keeps */
    hist = nk_alloc_array((size_t)n_ctx + 1, sizeof *hist);
    if (!hist) {
        st = nk_fail(err, NOOK_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(hist, toks, (size_t)n_tok * sizeof *hist);
    int n_hist = n_tok;
    if ((st = nook_gen_new(m, n_ctx, &g, err)) != NOOK_OK) goto out;
    if ((st = nook_gen_begin(g, p, toks, n_tok, split, on_event, ud, err)) != NOOK_OK) goto out;
    const int keep = nook_gen_shift_keep(g, n_ctx);

    /* prefix reuse: keep what sequence 0 already holds of this prompt (the next turn of
     * a conversation), but decode at least the last token, whose logits we need */
    nook_seq best = -1;
    int reuse = nook_session_prefix_match(s, toks, n_tok, &best);
    if (best != 0) reuse = 0;
    if (reuse >= n_tok) reuse = n_tok - 1;
    nook_session_truncate(s, reuse);

    /* from here on every outcome ends with the DONE event */
    nook_error derr = { 0 };
    if ((st = nook_session_decode(s, toks + reuse, n_tok - reuse, NULL, &derr)) != NOOK_OK) {
        nook_gen_finish(g, NOOK_DONE_ERROR, false, st, derr.msg);
        goto out_err;
    }
    nook_gen_prompt_done(g, n_tok - reuse);
    nook_token tok;
    while (nook_gen_step(g, nook_session_logits(s), &tok) == NOOK_GEN_DECODE) {
        if (nook_session_n_past(s) >= n_ctx) {
            if (!nook_gen_may_shift(g)) {
                nook_gen_finish(g, NOOK_DONE_LENGTH, true, NOOK_OK, NULL);
                break;
            }
            /* Ollama / llama.cpp: keep the first tokens, drop half of the rest */
            const int discard = NK_MAX(1, (nook_session_n_past(s) - keep) / 2);
            hist[n_hist++] = tok;
            if ((st = nook_session_shift(s, hist, &n_hist, keep, discard, &derr)) != NOOK_OK) {
                nook_gen_finish(g, NOOK_DONE_ERROR, false, st, derr.msg);
                goto out_err;
            }
            nook_gen_shifted(g, keep, discard);
            continue;
        }
        if ((st = nook_session_decode(s, &tok, 1, NULL, &derr)) != NOOK_OK) {
            nook_gen_finish(g, NOOK_DONE_ERROR, false, st, derr.msg);
            goto out_err;
        }
        hist[n_hist++] = tok;
    }
    st = NOOK_OK;
    goto out;
out_err:
    if (err) *err = derr;
out:
    nook_gen_free(g);
    nk_free(hist);
    nk_free(toks);
    return st;
}

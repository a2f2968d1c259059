/*
 * context.c: context shift for long generations (see nook_session_shift in nook.h).
 *
 * When prompt + generation fill the cache, Ollama (through llama.cpp's --context-shift)
 * keeps the first num_keep tokens, throws away half of the rest and carries on. nook
 * does the same on a token history the caller holds, with only the public session
 * API: truncate the cache to the kept prefix, then decode the surviving tail again at
 * its new positions. Re-decoding costs one batched pass over about half the context
 * per shift (prompt-processing speed, and a shift happens once every n_ctx/2 tokens),
 * and in return the cache is exactly what a fresh decode of the compacted sequence
 * gives; no cached key has to be re-rotated, and sliding-window layers stay correct.
 */
#include "nook.h"
#include "base/base.h"

#include <string.h>

nook_status nook_session_shift(nook_session *s, nook_token *history, int *n_history,
                               int n_keep, int n_discard, nook_error *err) {
    if (!s || !history || !n_history)
        return nk_fail(err, NOOK_EINVAL, "nook_session_shift: session, history and n_history must not be NULL");
    const int n_hist = *n_history, n_past = nook_session_n_past(s);
    if (n_keep < 0 || n_discard < 1)
        return nk_fail(err, NOOK_EINVAL, "nook_session_shift: need n_keep >= 0 and n_discard >= 1 (got %d, %d)",
                       n_keep, n_discard);
    /* something must remain after the discarded run, or there would be no logits */
    if ((int64_t)n_keep + n_discard >= n_hist)
        return nk_fail(err, NOOK_EINVAL,
                       "nook_session_shift: keeping %d and discarding %d leaves nothing of a %d-token history",
                       n_keep, n_discard, n_hist);
    if (n_past < n_keep || n_past > n_hist)
        return nk_fail(err, NOOK_EINVAL,
                       "nook_session_shift: the cache holds %d tokens, not between n_keep (%d) and the history (%d)",
                       n_past, n_keep, n_hist);
    const int n_new = n_hist - n_discard, n_tail = n_new - n_keep;
    if (n_new > nook_session_n_ctx(s))
        return nk_fail(err, NOOK_ERANGE,
                       "nook_session_shift: %d tokens remain after discarding %d, more than the context (%d)",
                       n_new, n_discard, nook_session_n_ctx(s));

    nook_session_truncate(s, n_keep);
    nook_status st = nook_session_decode(s, history + n_keep + n_discard, n_tail, NULL, err);
    if (st != NOOK_OK) return st;
    memmove(history + n_keep, history + n_keep + n_discard, (size_t)n_tail * sizeof *history);
    *n_history = n_new;
    return NOOK_OK;
}

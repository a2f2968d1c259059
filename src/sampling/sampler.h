/*
 * sampler.h: internals of the sampler chain (the public API is nook_sampler_* in
 * nook.h). Exposed so tests can look at the candidate set each stage keeps, not only
 * at the token finally drawn.
 */
#ifndef NOOK_SAMPLING_SAMPLER_H
#define NOOK_SAMPLING_SAMPLER_H

#include "base/base.h"

/* Run the chain up to, but not including, the draw: penalties -> top-k -> top-p ->
 * min-p -> temperature, then softmax over what is left. Afterwards *ids and *probs
 * (borrowed from the sampler, valid until its next call) hold the surviving tokens
 * and their probabilities (summing to 1). Returns the number of survivors; 0 when
 * every logit is NaN or -inf. With temperature <= 0 the single survivor is the
 * argmax (after penalties), with probability 1. Allocates nothing; does not
 * remember any token. */
int nk_sampler_candidates(nook_sampler *smp, const float *logits,
                          const nook_token **ids, const float **probs);

/* The next uniform double in [0, 1) from the sampler's PRNG (xoshiro256**, seeded
 * through splitmix64). For tests of the generator itself. */
double nk_sampler_uniform(nook_sampler *smp);

/* Penalized logit for token tok given the current history, exactly as the chain
 * applies it (repeat, then frequency and presence). For tests. */
float nk_sampler_penalized(const nook_sampler *smp, nook_token tok, float logit);

/* Reconfigures smp for new params as if made by nook_sampler_new(p) with the same
 * vocabulary (history empty, PRNG seeded from p), reusing its buffers: what the
 * generation loop does between requests instead of a new sampler (n_vocab-sized
 * buffers). Invalid params: NOOK_EINVAL and smp is unchanged. NOOK_ENOMEM only when a
 * longer history than any before needs a bigger ring (the history is then empty). */
nook_status nk_sampler_reinit(nook_sampler *smp, const nook_sampler_params *p, nook_error *err);

#endif /* NOOK_SAMPLING_SAMPLER_H */

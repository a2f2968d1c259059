/*
 * pool.h: a persistent thread pool for data-parallel kernels.
 *
 * A pool of n threads runs one function on every thread at once: nk_pool_run(pool, fn,
 * ctx) calls fn(ctx, ith, n) for ith = 0..n-1 and returns when all calls have
 * returned. The calling thread is worker 0, so a pool of 1 thread creates no threads
 * and runs fn inline. Between runs the workers spin briefly (a new run usually follows
 * within microseconds during decoding) and then sleep on a condition variable, so an
 * idle pool costs no CPU.
 *
 * Inside fn, nk_pool_barrier(pool) waits until every thread of the run has reached it
 * (all n threads must call it the same number of times). This lets one run do two
 * phases, e.g. quantize the activations, then the dot products.
 *
 * Threads: one thread at a time may call nk_pool_run on a given pool (a session is used
 * by one thread at a time, and each session owns its pool). nk_pool_run allocates
 * nothing.
 */
#ifndef NOOK_POOL_H
#define NOOK_POOL_H

#include "base/base.h"

typedef struct nk_pool nk_pool;
typedef void (*nk_pool_fn)(void *ctx, int ith, int nth);

/* Create a pool of n_threads threads (including the caller; n_threads >= 1; clamped
 * to 512). Errors: NOOK_ENOMEM, NOOK_EINTERNAL if a thread cannot be started. */
nook_status nk_pool_new(int n_threads, nk_pool **out, nook_error *err);
/* Stop and join the workers. NULL is a no-op. Must not be called during a run. */
void nk_pool_free(nk_pool *pool);

int nk_pool_size(const nk_pool *pool);

/* Run fn(ctx, ith, nth) on every thread; returns when all have finished. pool may be
 * NULL: then fn(ctx, 0, 1) runs inline. */
void nk_pool_run(nk_pool *pool, nk_pool_fn fn, void *ctx);

/* Wait for every thread of the current run (call only from inside fn). */
void nk_pool_barrier(nk_pool *pool);

#endif /* NOOK_POOL_H */

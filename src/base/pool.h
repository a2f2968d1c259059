/*
 * pool.h: the process-wide thread pool for data-parallel kernels.
 *
 * One set of worker threads serves the whole process (every session and model), sized
 * once: nk_n_cores() by default, or nook_set_max_threads() before first use. An
 * nk_pool is a handle ("team") that wants up to n threads. To run, a team leases
 * cores: nk_pool_acquire takes min(n, free cores) of them (the calling thread counts
 * as one, the rest are idle workers bound to the team), waiting first come first
 * served while every core is leased; nk_pool_release gives them back. So teams that
 * run at the same time share the cores and never oversubscribe them. A session leases
 * for the duration of a decode call, so the hundreds of runs of one forward pass pay
 * no leasing cost; a run outside a lease leases for itself.
 *
 * nk_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) for ith = 0..nth-1 (nth = the
 * lease's size) and returns when all calls have returned; the caller is thread 0.
 * Between runs of a lease the workers spin briefly (the next run usually follows
 * within microseconds), then sleep. Inside fn, nk_pool_barrier(pool) waits until
 * every thread of the run has reached it (all nth threads must call it the same number
 * of times).
 *
 * Cancellation: a team may carry an abort callback (nk_pool_set_abort). Long kernels
 * call nk_pool_should_stop(pool, ith) between chunks of work: thread 0 polls the
 * callback (so it runs on the caller's thread; nk_pool_run also polls it while the
 * caller waits for the workers to finish a run) and raises the team's flag, which
 * every thread checks before its next chunk. Once raised, the flag stays up until
 * nk_pool_clear_abort.
 *
 * Threads: one thread at a time may use a given team (a session is used by one thread
 * at a time). nk_pool_run allocates nothing; the worker threads start at the first
 * lease of the process and live until it exits.
 */
#ifndef NOOK_POOL_H
#define NOOK_POOL_H

#include "base/base.h"

typedef struct nk_pool nk_pool;
typedef void (*nk_pool_fn)(void *ctx, int ith, int nth);

/* A team wanting n_threads threads (>= 1; clamped to 512 and to the process pool's
 * size). Errors: NOOK_ENOMEM. */
nook_status nk_pool_new(int n_threads, nk_pool **out, nook_error *err);
/* Free a team (releasing its lease if held). NULL is a no-op. Not during a run. */
void nk_pool_free(nk_pool *pool);

/* Threads a run of this team gets: the lease's size while leased, else the size it
 * wants (clamped to the process pool). NULL: 1. */
int nk_pool_size(const nk_pool *pool);

/* Lease cores for a sequence of runs (nests: only the outermost acquire/release
 * count). Blocks while every core of the process is leased to other teams. */
void nk_pool_acquire(nk_pool *pool);
void nk_pool_release(nk_pool *pool);

/* Run fn(ctx, ith, nth) on every thread of the lease (leasing for this run if none is
 * held); returns when all have finished. pool may be NULL: then fn(ctx, 0, 1) runs
 * inline. */
void nk_pool_run(nk_pool *pool, nk_pool_fn fn, void *ctx);

/* Wait for every thread of the current run (call only from inside fn). */
void nk_pool_barrier(nk_pool *pool);

/* Cancellation (see above). fn NULL removes it. should_stop: true once the callback
 * has returned true (NULL pool: false). */
void nk_pool_set_abort(nk_pool *pool, bool (*fn)(void *ud), void *ud);
bool nk_pool_should_stop(nk_pool *pool, int ith);
bool nk_pool_aborted(const nk_pool *pool);
void nk_pool_clear_abort(nk_pool *pool);

#endif /* NOOK_POOL_H */

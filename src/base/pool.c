/*
 * pool.c: persistent worker threads, a start signal, a done signal and a barrier.
 *
 * Signalling is an atomic generation counter per event. Waiters spin first (with the
 * CPU's pause hint, then sched_yield, so an oversubscribed machine still progresses)
 * and only then sleep on a condition variable. The sleep path uses the usual Dekker
 * pattern: the waiter announces itself (sleepers++) before re-checking the condition
 * under the mutex, and the signaller publishes its change before checking for
 * sleepers, so with sequentially consistent atomics one of them always sees the other
 * and no wake-up is lost, while the common case (nobody asleep) takes no lock at all.
 */
#include "base/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define NK_POOL_MAX 512
#define SPIN_PAUSE 4096     /* pause-spins before yielding                     */
#define SPIN_YIELD 64       /* sched_yield rounds before sleeping (run/done)   */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct worker {
    nk_pool *pool;
    int ith;
} worker;

struct nk_pool {
    int n;
    pthread_t *threads;
    worker *workers;
    int n_started;

    /* the current run; written by the caller before gen is bumped */
    nk_pool_fn fn;
    void *ctx;

    pthread_mutex_t mu;
    pthread_cond_t cv_start;
    pthread_cond_t cv_done;

    _Alignas(64) atomic_uint gen;        /* bumped once per run (and at stop)   */
    _Alignas(64) atomic_int pending;     /* workers still inside this run's fn  */
    _Alignas(64) atomic_int sleepers;    /* workers asleep on cv_start          */
    atomic_int caller_sleeping;          /* caller asleep on cv_done            */
    atomic_bool stop;
    _Alignas(64) atomic_int bar_count;   /* threads arrived at the barrier      */
    _Alignas(64) atomic_uint bar_gen;    /* bumped when a barrier opens         */
};

/* Wait until pool->gen differs from seen; returns the new value. */
static unsigned wait_start(nk_pool *p, unsigned seen) {
    unsigned g;
    for (int i = 0; i < SPIN_PAUSE; i++) {
        if ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) != seen) return g;
        cpu_relax();
    }
    for (int i = 0; i < SPIN_YIELD; i++) {
        if ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) != seen) return g;
        sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->cv_start, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    nk_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_start(p, seen);
        if (atomic_load(&p->stop)) break;
        p->fn(p->ctx, w->ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publish a new generation and wake any sleeping worker. */
static void signal_start(nk_pool *p) {
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
    }
}

nook_status nk_pool_new(int n_threads, nk_pool **out, nook_error *err) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > NK_POOL_MAX) n_threads = NK_POOL_MAX;
    nk_pool *p = nk_calloc(1, sizeof *p);
    if (!p) return nk_fail(err, NOOK_ENOMEM, "thread pool: out of memory");
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->bar_gen, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->threads = nk_calloc((size_t)n_threads, sizeof *p->threads);
        p->workers = nk_calloc((size_t)n_threads, sizeof *p->workers);
        if (!p->threads || !p->workers) {
            nk_pool_free(p);
            return nk_fail(err, NOOK_ENOMEM, "thread pool: out of memory");
        }
        for (int i = 1; i < n_threads; i++) {
            p->workers[i] = (worker){ .pool = p, .ith = i };
            int rc = pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]);
            if (rc != 0) {
                nk_pool_free(p);
                return nk_fail(err, NOOK_EINTERNAL, "thread pool: cannot start thread %d of %d (error %d)",
                               i, n_threads, rc);
            }
            p->n_started = i;
        }
    }
    *out = p;
    return NOOK_OK;
}

void nk_pool_free(nk_pool *p) {
    if (!p) return;
    if (p->n_started > 0) {
        atomic_store(&p->stop, true);
        signal_start(p);
        for (int i = 1; i <= p->n_started; i++) pthread_join(p->threads[i], NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    nk_free(p->threads);
    nk_free(p->workers);
    nk_free(p);
}

int nk_pool_size(const nk_pool *p) { return p ? p->n : 1; }

void nk_pool_run(nk_pool *p, nk_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    signal_start(p);
    fn(ctx, 0, p->n);

    /* wait for the workers: spin, yield, then sleep */
    for (int i = 0; i < SPIN_PAUSE; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    for (int i = 0; i < SPIN_YIELD; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_sleeping, 1);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    atomic_store(&p->caller_sleeping, 0);
    pthread_mutex_unlock(&p->mu);
}

void nk_pool_barrier(nk_pool *p) {
    if (!p || p->n == 1) return;
    unsigned g = atomic_load(&p->bar_gen);
    if (atomic_fetch_add(&p->bar_count, 1) == p->n - 1) {
        atomic_store(&p->bar_count, 0);
        atomic_fetch_add(&p->bar_gen, 1);
        return;
    }
    /* Barriers are short waits inside one run: spin, then yield forever (a thread
     * that is not running yet must get the CPU on an oversubscribed machine). */
    for (int i = 0; atomic_load_explicit(&p->bar_gen, memory_order_acquire) == g; i++) {
        if (i < SPIN_PAUSE) cpu_relax();
        else sched_yield();
    }
}

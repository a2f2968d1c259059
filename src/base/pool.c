/*
 * pool.c: the process-wide workers, leases of cores to teams, and per team a start
 * signal, a done signal and a barrier (see pool.h for the model).
 *
 * Signalling inside a team is an atomic generation counter per event. Waiters spin
 * first (with the CPU's pause hint, then sched_yield, so an oversubscribed machine
 * still progresses) and only then sleep on a condition variable. The sleep path uses
 * the usual Dekker pattern: the waiter announces itself (sleepers++) before
 * re-checking the condition under the mutex, and the signaller publishes its change
 * before checking for sleepers, so with sequentially consistent atomics one of them
 * always sees the other and no wake-up is lost, while the common case (nobody asleep)
 * takes no lock at all.
 *
 * Leases: the global state (free cores, the ticket queue, which workers are idle) is
 * guarded by one mutex, taken twice per lease (acquire, release), never per run. An
 * idle worker waits on its own `team` slot: it spins a while (a session's next decode
 * step usually leases again within a millisecond), then sleeps on its own condition
 * variable; the acquirer writes the slot under the mutex and signals a sleeper. A
 * released team bumps its generation with `released` set; each of its workers marks
 * itself idle (under the mutex) and then leaves, and the releaser waits for all of
 * them before handing the cores back, so a team's state is never touched by a worker
 * of an earlier lease.
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
    pthread_t th;
    _Atomic(nk_pool *) team;   /* set by an acquirer (under g.mu), cleared by the worker */
    int ith;                   /* its index in that team */
    unsigned seen0;            /* the team's generation when it was bound */
    bool idle, sleeping;       /* under g.mu */
    pthread_cond_t cv;
} worker;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* acquirers waiting for cores or their turn */
    int size;                  /* cores the process uses (0: not decided yet) */
    bool started;
    int n_workers;             /* threads actually started (size - 1 unless one failed) */
    int free_cores;
    unsigned next_ticket, serving;
    worker w[NK_POOL_MAX];
} g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

struct nk_pool {
    int n_max;                 /* threads wanted */
    int n;                     /* threads of the current lease (0: none) */
    int depth;                 /* nested acquires */
    worker *ws[NK_POOL_MAX];   /* the lease's workers, ith 1..n-1 */

    /* the current run; written by the caller before gen is bumped */
    nk_pool_fn fn;
    void *ctx;

    bool (*abort_fn)(void *ud);
    void *abort_ud;
    atomic_bool aborted;

    pthread_mutex_t mu;
    pthread_cond_t cv_start;
    pthread_cond_t cv_done;

    _Alignas(64) atomic_uint gen;        /* bumped once per run (and at release) */
    _Alignas(64) atomic_int pending;     /* workers still inside this run's fn  */
    _Alignas(64) atomic_int sleepers;    /* workers asleep on cv_start          */
    atomic_int caller_sleeping;          /* caller asleep on cv_done            */
    atomic_bool released;
    atomic_int attached;                 /* workers still bound to the lease     */
    _Alignas(64) atomic_int bar_count;   /* threads arrived at the barrier      */
    _Alignas(64) atomic_uint bar_gen;    /* bumped when a barrier opens         */
};

/* ---- process-wide size ---- */

nook_status nook_set_max_threads(int n, nook_error *err) {
    if (n < 1 || n > NK_POOL_MAX) return nk_fail(err, NOOK_EINVAL, "thread count %d is not in [1, %d]", n, NK_POOL_MAX);
    pthread_mutex_lock(&g.mu);
    nook_status st = NOOK_OK;
    if (g.started && g.size != n)
        st = nk_fail(err, NOOK_EINVAL, "the thread pool already runs with %d threads", g.size);
    else
        g.size = n;
    pthread_mutex_unlock(&g.mu);
    return st;
}

static int pool_size_locked(void) {
    if (!g.size) g.size = NK_MIN(nk_n_cores(), NK_POOL_MAX);
    return g.size;
}

int nook_max_threads(void) {
    pthread_mutex_lock(&g.mu);
    const int n = pool_size_locked();
    pthread_mutex_unlock(&g.mu);
    return n;
}

/* ---- a team's signals ---- */

/* Wait until p->gen differs from seen; returns the new value. */
static unsigned wait_start(nk_pool *p, unsigned seen) {
    unsigned gv;
    for (int i = 0; i < SPIN_PAUSE; i++) {
        if ((gv = atomic_load_explicit(&p->gen, memory_order_acquire)) != seen) return gv;
        cpu_relax();
    }
    for (int i = 0; i < SPIN_YIELD; i++) {
        if ((gv = atomic_load_explicit(&p->gen, memory_order_acquire)) != seen) return gv;
        sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((gv = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->cv_start, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return gv;
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

/* ---- workers ---- */

static nk_pool *wait_team(worker *w) {
    nk_pool *p;
    for (int i = 0; i < SPIN_PAUSE; i++) {
        if ((p = atomic_load_explicit(&w->team, memory_order_acquire))) return p;
        cpu_relax();
    }
    pthread_mutex_lock(&g.mu);
    while (!(p = atomic_load(&w->team))) {
        w->sleeping = true;
        pthread_cond_wait(&w->cv, &g.mu);
        w->sleeping = false;
    }
    pthread_mutex_unlock(&g.mu);
    return p;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    for (;;) {
        nk_pool *p = wait_team(w);
        const int ith = w->ith;
        unsigned seen = w->seen0;
        for (;;) {
            seen = wait_start(p, seen);
            if (atomic_load(&p->released)) break;
            p->fn(p->ctx, ith, p->n);
            if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
                pthread_mutex_lock(&p->mu);
                pthread_cond_broadcast(&p->cv_done);
                pthread_mutex_unlock(&p->mu);
            }
        }
        pthread_mutex_lock(&g.mu);
        atomic_store(&w->team, NULL);
        w->idle = true;
        pthread_mutex_unlock(&g.mu);
        atomic_fetch_sub(&p->attached, 1);   /* last touch of p */
    }
    return NULL;
}

/* Start the workers once (under g.mu). A thread that cannot start leaves the pool
 * smaller; leases then get fewer threads, never an error. */
static void start_locked(void) {
    if (g.started) return;
    g.started = true;
    const int size = pool_size_locked();
    g.free_cores = size;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 1; i < size; i++) {
        worker *w = &g.w[g.n_workers];
        atomic_init(&w->team, NULL);
        w->idle = true;
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->th, &attr, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            break;
        }
        g.n_workers++;
    }
    pthread_attr_destroy(&attr);
}

/* ---- teams ---- */

nook_status nk_pool_new(int n_threads, nk_pool **out, nook_error *err) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > NK_POOL_MAX) n_threads = NK_POOL_MAX;
    nk_pool *p = nk_calloc(1, sizeof *p);
    if (!p) return nk_fail(err, NOOK_ENOMEM, "thread pool: out of memory");
    p->n_max = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->released, false);
    atomic_init(&p->attached, 0);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->bar_gen, 0);
    atomic_init(&p->aborted, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    *out = p;
    return NOOK_OK;
}

void nk_pool_free(nk_pool *p) {
    if (!p) return;
    if (p->n) {
        p->depth = 1;
        nk_pool_release(p);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    nk_free(p);
}

int nk_pool_size(const nk_pool *p) {
    if (!p) return 1;
    if (p->n) return p->n;
    return NK_MIN(p->n_max, nook_max_threads());
}

void nk_pool_acquire(nk_pool *p) {
    if (!p || p->depth++ > 0) return;
    pthread_mutex_lock(&g.mu);
    start_locked();
    const unsigned my = g.next_ticket++;
    while (my != g.serving || g.free_cores == 0) pthread_cond_wait(&g.cv, &g.mu);
    g.serving++;
    const int want = NK_MIN(p->n_max, g.free_cores);
    const unsigned gen = atomic_load(&p->gen);
    int k = 1;
    for (int i = 0; i < g.n_workers && k < want; i++) {
        worker *w = &g.w[i];
        if (!w->idle) continue;
        w->idle = false;
        w->ith = k;
        w->seen0 = gen;
        p->ws[k++] = w;
        atomic_store(&w->team, p);
        if (w->sleeping) pthread_cond_signal(&w->cv);
    }
    g.free_cores -= k;
    p->n = k;
    atomic_store(&p->attached, k - 1);
    pthread_cond_broadcast(&g.cv);   /* the next ticket may find cores left */
    pthread_mutex_unlock(&g.mu);
}

void nk_pool_release(nk_pool *p) {
    if (!p || p->depth == 0 || --p->depth > 0) return;
    if (p->n > 1) {
        atomic_store(&p->released, true);
        signal_start(p);
        for (int i = 0; atomic_load_explicit(&p->attached, memory_order_acquire) > 0; i++) {
            if (i < SPIN_PAUSE) cpu_relax();
            else sched_yield();
        }
        atomic_store(&p->released, false);
    }
    pthread_mutex_lock(&g.mu);
    g.free_cores += p->n;
    p->n = 0;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

void nk_pool_run(nk_pool *p, nk_pool_fn fn, void *ctx) {
    if (!p) {
        fn(ctx, 0, 1);
        return;
    }
    const bool own = p->depth == 0;
    if (own) nk_pool_acquire(p);
    if (p->n == 1) {
        fn(ctx, 0, 1);
        if (own) nk_pool_release(p);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    signal_start(p);
    fn(ctx, 0, p->n);

    /* wait for the workers: spin, yield, then sleep. While spinning, the caller (the
     * decoding thread) keeps polling the abort callback, so a cancel that arrives
     * while a worker finishes its last chunk reaches the next run's kernels at once
     * rather than after it (every 64 spins: the callback is an atomic load for every
     * user, but a spin is a few nanoseconds). */
    bool done = false;
    const bool poll = p->abort_fn != NULL;
    for (int i = 0; i < SPIN_PAUSE && !done; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) done = true;
        else if (poll && (i & 63) == 63) (void)nk_pool_should_stop(p, 0);
        else cpu_relax();
    }
    for (int i = 0; i < SPIN_YIELD && !done; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) done = true;
        else {
            if (poll) (void)nk_pool_should_stop(p, 0);
            sched_yield();
        }
    }
    if (!done) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mu);
    }
    if (own) nk_pool_release(p);
}

void nk_pool_barrier(nk_pool *p) {
    if (!p || p->n <= 1) return;
    unsigned gv = atomic_load(&p->bar_gen);
    if (atomic_fetch_add(&p->bar_count, 1) == p->n - 1) {
        atomic_store(&p->bar_count, 0);
        atomic_fetch_add(&p->bar_gen, 1);
        return;
    }
    /* Barriers are short waits inside one run: spin, then yield forever (a thread
     * that is not running yet must get the CPU on an oversubscribed machine). */
    for (int i = 0; atomic_load_explicit(&p->bar_gen, memory_order_acquire) == gv; i++) {
        if (i < SPIN_PAUSE) cpu_relax();
        else sched_yield();
    }
}

/* ---- cancellation ---- */

void nk_pool_set_abort(nk_pool *p, bool (*fn)(void *ud), void *ud) {
    if (!p) return;
    p->abort_fn = fn;
    p->abort_ud = ud;
}

bool nk_pool_should_stop(nk_pool *p, int ith) {
    if (!p) return false;
    if (atomic_load_explicit(&p->aborted, memory_order_relaxed)) return true;
    if (ith == 0 && p->abort_fn && p->abort_fn(p->abort_ud)) {
        atomic_store_explicit(&p->aborted, true, memory_order_relaxed);
        return true;
    }
    return false;
}

bool nk_pool_aborted(const nk_pool *p) {
    return p && atomic_load_explicit(&((nk_pool *)p)->aborted, memory_order_relaxed);
}

void nk_pool_clear_abort(nk_pool *p) {
    if (p) atomic_store(&p->aborted, false);
}

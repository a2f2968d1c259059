/* test_pool: the thread pool runs fn on every thread, the barrier separates phases,
 * and many short runs in a row (the decode pattern) neither lose nor repeat work;
 * teams running at once from several threads never use more threads than the
 * process pool has (leases); the abort flag. */
#include "base/pool.h"
#include "nk_test.h"

#include <pthread.h>
#include <stdatomic.h>

#define POOL_SIZE 4

typedef struct job {
    atomic_int calls;
    atomic_int seen_mask;
    int nth_seen;
    int data[64];
    long sums[64];
    nk_pool *pool;
} job;

static void count_fn(void *ctx, int ith, int nth) {
    job *j = ctx;
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_or(&j->seen_mask, 1 << ith);
    j->nth_seen = nth;
}

/* phase 1: thread i writes data[i]; barrier; phase 2: each reads everyone's data */
static void phase_fn(void *ctx, int ith, int nth) {
    job *j = ctx;
    j->data[ith] = ith + 1;
    nk_pool_barrier(j->pool);
    long s = 0;
    for (int i = 0; i < nth; i++) s += j->data[i];
    j->sums[ith] = s;
    nk_pool_barrier(j->pool);
    j->data[ith] = 0;
}

/* concurrency: every thread of every team counts itself in and out */
static atomic_int g_active, g_peak;

static void busy_fn(void *ctx, int ith, int nth) {
    (void)ctx, (void)ith, (void)nth;
    const int a = atomic_fetch_add(&g_active, 1) + 1;
    for (int p = atomic_load(&g_peak); a > p && !atomic_compare_exchange_weak(&g_peak, &p, a);) {}
    for (volatile int i = 0; i < 2000; i++) {}
    atomic_fetch_sub(&g_active, 1);
}

static void *team_main(void *arg) {
    nk_pool *p = arg;
    for (int r = 0; r < 200; r++) {
        nk_pool_acquire(p);
        for (int k = 0; k < 5; k++) nk_pool_run(p, busy_fn, NULL);
        nk_pool_release(p);
    }
    return NULL;
}

static bool stop_after(void *ud) { return atomic_fetch_add((atomic_int *)ud, 1) >= 3; }

int main(void) {
    nook_error e;
    CHECK_EQ_INT(nook_set_max_threads(POOL_SIZE, &e), NOOK_OK);
    for (int n = 1; n <= 4; n++) {
        nk_pool *p = NULL;
        nook_error err;
        CHECK_EQ_INT(nk_pool_new(n, &p, &err), NOOK_OK);
        CHECK_EQ_INT(nk_pool_size(p), n);
        job j = { 0 };
        j.pool = p;
        atomic_init(&j.calls, 0);
        atomic_init(&j.seen_mask, 0);
        const int runs = 300;
        for (int r = 0; r < runs; r++) nk_pool_run(p, count_fn, &j);
        CHECK_EQ_INT(atomic_load(&j.calls), runs * n);
        CHECK_EQ_INT(atomic_load(&j.seen_mask), (1 << n) - 1);
        CHECK_EQ_INT(j.nth_seen, n);
        int bad = 0;
        for (int r = 0; r < 200; r++) {
            nk_pool_run(p, phase_fn, &j);
            for (int i = 0; i < n; i++) bad += j.sums[i] != (long)n * (n + 1) / 2;
        }
        CHECK_EQ_INT(bad, 0);
        /* a pause long enough for the workers to fall asleep, then more runs */
        usleep(50 * 1000);
        atomic_store(&j.calls, 0);
        for (int r = 0; r < 10; r++) nk_pool_run(p, count_fn, &j);
        CHECK_EQ_INT(atomic_load(&j.calls), 10 * n);
        nk_pool_free(p);
    }
    /* already started: another size is refused, the same accepted */
    CHECK_EQ_INT(nook_set_max_threads(POOL_SIZE + 1, &e), NOOK_EINVAL);
    CHECK_EQ_INT(nook_set_max_threads(POOL_SIZE, &e), NOOK_OK);
    CHECK_EQ_INT(nook_max_threads(), POOL_SIZE);

    /* three teams of 3 threads from three threads at once: never more than the pool */
    nk_pool *teams[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(nk_pool_new(3, &teams[i], &e), NOOK_OK);
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, team_main, teams[i]);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    CHECK_MSG(atomic_load(&g_peak) <= POOL_SIZE, "peak %d threads", atomic_load(&g_peak));
    CHECK(atomic_load(&g_peak) >= 2);
    for (int i = 0; i < 3; i++) nk_pool_free(teams[i]);

    /* a lease larger than the pool gets the pool */
    nk_pool *big = NULL;
    CHECK_EQ_INT(nk_pool_new(64, &big, &e), NOOK_OK);
    nk_pool_acquire(big);
    CHECK_EQ_INT(nk_pool_size(big), POOL_SIZE);
    nk_pool_acquire(big);   /* nested: no-op */
    nk_pool_release(big);
    CHECK_EQ_INT(nk_pool_size(big), POOL_SIZE);
    nk_pool_release(big);

    /* abort: thread 0 polls the callback, the flag then stays up until cleared */
    atomic_int polls;
    atomic_init(&polls, 0);
    nk_pool_set_abort(big, stop_after, &polls);
    int stops = 0;
    for (int i = 0; i < 10; i++) stops += nk_pool_should_stop(big, 0);
    CHECK_EQ_INT(stops, 7);
    CHECK(nk_pool_should_stop(big, 1));
    CHECK(nk_pool_aborted(big));
    nk_pool_clear_abort(big);
    nk_pool_set_abort(big, NULL, NULL);
    CHECK(!nk_pool_should_stop(big, 0));
    CHECK(!nk_pool_should_stop(NULL, 0));
    nk_pool_free(big);

    /* NULL pool runs inline */
    job j = { 0 };
    atomic_init(&j.calls, 0);
    nk_pool_run(NULL, count_fn, &j);
    CHECK_EQ_INT(atomic_load(&j.calls), 1);
    nk_pool_free(NULL);
    NK_TEST_DONE();
}

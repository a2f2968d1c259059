/* test_pool: the thread pool runs fn on every thread, the barrier separates phases,
 * and many short runs in a row (the decode pattern) neither lose nor repeat work. */
#include "base/pool.h"
#include "nk_test.h"

#include <stdatomic.h>

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

int main(void) {
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
    /* NULL pool runs inline */
    job j = { 0 };
    atomic_init(&j.calls, 0);
    nk_pool_run(NULL, count_fn, &j);
    CHECK_EQ_INT(atomic_load(&j.calls), 1);
    nk_pool_free(NULL);
    NK_TEST_DONE();
}

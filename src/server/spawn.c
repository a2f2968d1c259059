/*
 * spawn.c: srv_spawn, a cache of parked threads for the per-request workers of the
 * generation routes (server.h).
 *
 * Why: every generation request runs its engine call on a thread of its own (the
 * connection's thread waits for the first event, then returns to libmicrohttpd to
 * stream). Creating that thread per request measured 0.7 ms at the median and 2 ms at
 * p90 on this 2-core VM under load (clone, a fresh stack, and above all waiting for the
 * new thread's first time slice): the larger part of the server's own overhead per
 * request. A parked thread is woken by a condition variable instead (tens of
 * microseconds, as every other hand-off of a request).
 *
 * Each parked thread waits on its own condition variable (no thundering herd); the
 * most recently parked is reused first (its stack is warm). At most SPAWN_MAX_IDLE
 * threads stay parked; one parked for SPAWN_IDLE_S seconds without work exits. The
 * cache is process-wide and needs no teardown: parked threads hold no resources but
 * their stacks, and a thread running a task is exactly the detached thread it
 * replaces.
 */
#include "server/server.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#define SPAWN_MAX_IDLE 64
#define SPAWN_IDLE_S   60

typedef struct parked {
    pthread_cond_t cv;
    void *(*fn)(void *);
    void *arg;
    struct parked *next;
} parked;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static parked *g_idle;     /* a stack: the most recently parked first */
static int g_n_idle;

typedef struct first_task {
    void *(*fn)(void *);
    void *arg;
} first_task;

/* Removes p from the idle stack (g_mu held); false when it is not there (a task was
 * given to it meanwhile). */
static bool unpark(parked *p) {
    for (parked **pp = &g_idle; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            g_n_idle--;
            return true;
        }
    return false;
}

static void *thread_main(void *arg) {
    first_task *ft = arg;
    void *(*fn)(void *) = ft->fn;
    void *fa = ft->arg;
    nk_free(ft);
    parked self;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self.cv, &ca);
    pthread_condattr_destroy(&ca);
    for (;;) {
        fn(fa);
        pthread_mutex_lock(&g_mu);
        if (g_n_idle >= SPAWN_MAX_IDLE) {
            pthread_mutex_unlock(&g_mu);
            break;
        }
        self.fn = NULL;
        self.next = g_idle;
        g_idle = &self;
        g_n_idle++;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += SPAWN_IDLE_S;
        while (!self.fn) {
            if (pthread_cond_timedwait(&self.cv, &g_mu, &ts) == ETIMEDOUT && !self.fn) {
                if (unpark(&self)) break;   /* else a task is being handed over */
            }
        }
        fn = self.fn;
        fa = self.arg;
        pthread_mutex_unlock(&g_mu);
        if (!fn) break;
    }
    pthread_cond_destroy(&self.cv);
    return NULL;
}

int srv_spawn(void *(*fn)(void *), void *arg) {
    pthread_mutex_lock(&g_mu);
    parked *p = g_idle;
    if (p) {
        g_idle = p->next;
        g_n_idle--;
        p->fn = fn;
        p->arg = arg;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    pthread_mutex_unlock(&g_mu);
    first_task *ft = nk_malloc(sizeof *ft);
    if (!ft) return ENOMEM;
    ft->fn = fn;
    ft->arg = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &attr, thread_main, ft);
    pthread_attr_destroy(&attr);
    if (rc != 0) nk_free(ft);
    return rc;
}

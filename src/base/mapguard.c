/*
 * mapguard.c: survive a mapped file that shrinks under us (no SIGBUS death).
 *
 * A model is mapped MAP_SHARED from its file. If someone truncates that file (or
 * rewrites it in place: `cp new.gguf model.gguf` truncates first) while the model is
 * in use, every page of the mapping beyond the new end of file raises SIGBUS on the
 * next touch, and the default action kills the process: a server dies in the middle
 * of someone else's request. (Replacing the file by rename, as the store and every
 * careful writer do, is harmless: the mapping keeps the old inode.)
 *
 * Two defences, both in src/base:
 *  1. nk_map_check (file.c) compares the open file's size and mtime with those seen at
 *     load before each decode and fails the request with a clear message; this catches
 *     every change made between requests, before any page is touched.
 *  2. For a change made during a decode, this guard: a process-wide SIGBUS handler
 *     that knows the registered mappings. A fault inside one replaces the mapping
 *     from the faulting page to its end with anonymous zero pages (mmap MAP_FIXED is a
 *     plain system call, safe in a signal handler), marks the mapping tripped and
 *     returns; the faulting load runs again and reads zeros. The decode finishes with
 *     meaningless numbers and nk_map_check, run after it, fails the request; the model
 *     stays failed (nook_model_check) until it is loaded again. No longjmp: the
 *     interrupted thread (any pool worker) just continues, so no lock or buffer is
 *     left half-updated.
 * A fault outside every registered mapping is not ours: it goes to the handler that
 * was installed before ours, or (none) to the default action, by re-raising.
 * Limits: MAX_GUARDS mappings at once are guarded (more are mapped unguarded); an
 * embedder that installs its own SIGBUS handler after loading a model replaces ours.
 */
#include "base/base.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_GUARDS 256

typedef struct guard {
    atomic_int used;        /* 1 while registered                          */
    atomic_int tripped;     /* 1 once a fault inside it was patched          */
    uintptr_t start, end;   /* page-aligned start, page-rounded end          */
} guard;

static guard g_guards[MAX_GUARDS];
static struct sigaction g_prev;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;   /* registration only */
static size_t g_page = 4096;

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    const uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAX_GUARDS; i++) {
        guard *g = &g_guards[i];
        if (!atomic_load_explicit(&g->used, memory_order_acquire)) continue;
        if (a < g->start || a >= g->end) continue;
        const uintptr_t pg = a & ~(uintptr_t)(g_page - 1);
        void *p = mmap((void *)pg, g->end - pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) break;   /* cannot patch: die as we would have */
        atomic_store(&g->tripped, 1);
        return;
    }
    /* not ours */
    if ((g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_sigaction) {
        g_prev.sa_sigaction(sig, si, uc);
        return;
    }
    if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
        g_prev.sa_handler(sig);
        return;
    }
    /* default action: restore it; returning re-runs the faulting access, which
     * faults again and now terminates the process as it would have without us */
    signal(SIGBUS, SIG_DFL);
}

static void install(void) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg > 0) g_page = (size_t)pg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_prev);
}

int nk_guard_add(const void *start, size_t len) {
    if (!start || len == 0) return 0;
    pthread_once(&g_once, install);
    int slot = 0;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MAX_GUARDS; i++) {
        guard *g = &g_guards[i];
        if (atomic_load(&g->used)) continue;
        g->start = (uintptr_t)start & ~(uintptr_t)(g_page - 1);
        g->end = ((uintptr_t)start + len + g_page - 1) & ~(uintptr_t)(g_page - 1);
        atomic_store(&g->tripped, 0);
        atomic_store_explicit(&g->used, 1, memory_order_release);
        slot = i + 1;
        break;
    }
    pthread_mutex_unlock(&g_lock);
    if (!slot) nk_log(NK_LOG_WARN, "more than %d files mapped: a truncated file may raise SIGBUS", MAX_GUARDS);
    return slot;
}

void nk_guard_remove(int slot) {
    if (slot <= 0 || slot > MAX_GUARDS) return;
    pthread_mutex_lock(&g_lock);
    atomic_store(&g_guards[slot - 1].used, 0);
    pthread_mutex_unlock(&g_lock);
}

bool nk_guard_tripped(int slot) {
    if (slot <= 0 || slot > MAX_GUARDS) return false;
    return atomic_load(&g_guards[slot - 1].tripped) != 0;
}

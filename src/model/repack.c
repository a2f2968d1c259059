/*
 * repack.c: weights re-laid at load for the batch kernels (issue 9: several sequences
 * decoded in one pass).
 *
 * Q4_K and Q6_K matrices (in a Q4_K_M file every matrix: Q6_K the output projection,
 * which qwen3 shares with the token embedding, and the attn_v/ffn_down of half the
 * layers) are copied once into the 16-row interleaved layouts of tensor/ops_gemm.h,
 * whose kernels skip the per-step unpack and transposes that bounded decode steps of
 * 2-16 tokens. The copies live in
 * one anonymous 2 MB-page region of the model; the file's pages they replace are
 * dropped from the model's mapping (MADV_DONTNEED: a file mapping's pages stay in the
 * page cache, reclaimable; an anonymous copy's are freed), so the model's resident
 * memory does not grow. NOOK_NO_REPACK=1 keeps the file's layout.
 *
 * When the model is a mapping of the file (the default), the copies are made on a
 * thread of their own after nook_model_load returns: most of their cost on a virtual
 * machine is the first touch of fresh pages (up to seconds), which a load should not
 * wait for. Each matrix's copy is published when complete through its nk_tensor_pack
 * (one atomic pointer: matmul and get_rows read (layout, data) as one pair); until
 * then matmul runs the rows-in-lanes kernels on the file's rows, which give the
 * copy's bits, so results do not depend on when a copy lands. A file page is dropped
 * only after its copy is published (a reader still in the file's layout re-faults it
 * from the page cache: slower, never wrong). A copy of the file in private memory
 * (--no-mmap) is repacked before the load returns, as its pages are freed when
 * dropped.
 */
#include "model/arch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SLOTS(m) ((size_t)(m)->hp.n_layer * 7 + 2)

/* Every matrix the forward pass multiplies by, and the token embedding (repacked only
 * when tied to the output projection: get_rows reads both layouts). */
static size_t collect(nook_model *m, nk_tensor **v) {
    size_t n = 0;
    for (int i = 0; i < m->hp.n_layer; i++) {
        nk_layer *L = &m->layers[i];
        nk_tensor *ws[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up, &L->ffn_down };
        for (size_t k = 0; k < NK_ARRAY_LEN(ws); k++) v[n++] = ws[k];
    }
    v[n++] = &m->output;
    return n;
}

static size_t tensor_bytes(const nk_tensor *t) { return t->nb1 * (size_t)t->ne[1]; }

#define PACK_THREADS 4

static uint32_t packed_layout(const nk_tensor *t) {
    return t->type == NK_TYPE_Q6_K ? NK_LAYOUT_Q6K_R16 : NK_LAYOUT_Q4K_R16;
}


typedef struct pack_job {
    nk_tensor t;     /* the tensor as bound (file layout) */
    uint8_t *dst;
} pack_job;

typedef struct pack_arg {
    pack_job *jobs;
    size_t n;
    int ith, nth;
    bool drop;       /* drop the file's pages of each part once copied */
    size_t page;
} pack_arg;

/* Thread ith's share of every job: a contiguous run of its 16-row groups (the last
 * share takes the partial group). */
static void *pack_main(void *p) {
    const pack_arg *a = p;
    for (size_t j = 0; j < a->n; j++) {
        nk_tensor t = a->jobs[j].t;
        const int64_t groups = t.ne[1] / 16;
        const int64_t g0 = groups * a->ith / a->nth, g1 = groups * (a->ith + 1) / a->nth;
        const int64_t r0 = 16 * g0, r1 = a->ith == a->nth - 1 ? t.ne[1] : 16 * g1;
        if (r1 <= r0) continue;
        t.data = (const uint8_t *)t.data + (size_t)r0 * t.nb1;
        t.ne[1] = r1 - r0;
        if (!nk_tensor_repack(&t, a->jobs[j].dst + (size_t)r0 * t.nb1)) continue;
        if (a->drop) {   /* now, not after every copy: the peak stays near one copy */
            const uintptr_t lo = ((uintptr_t)a->jobs[j].t.data + (size_t)r0 * t.nb1 + a->page - 1) & ~(uintptr_t)(a->page - 1);
            const uintptr_t hi = ((uintptr_t)a->jobs[j].t.data + (size_t)r1 * t.nb1) & ~(uintptr_t)(a->page - 1);
            if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
    }
    return NULL;
}

/* ---- copies on a thread of their own (file mappings) ---------------------------------- */

/* Bytes per slice of a background copy (whole 16-row groups, at least one): the thread
 * checks for a stop between slices, so nook_model_free waits for at most one (~1 ms of
 * copying, longer when a busy machine leaves this thread little time). */
#define BG_SLICE_BYTES ((size_t)1 << 22)

struct nk_repack_bg {
    pack_job *jobs;
    nk_tensor_pack *recs;   /* one per job: what every view of it reads */
    size_t nj;
    size_t page;
    pthread_t th;
    _Atomic bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;          /* under mu */
};

/* Copy job jb's rows [r0, r1) (r0 at a group boundary; r1 too, or the end). */
static bool copy_rows(const pack_job *jb, int64_t r0, int64_t r1) {
    nk_tensor t = jb->t;
    t.pack = NULL;
    t.data = (const uint8_t *)t.data + (size_t)r0 * t.nb1;
    t.ne[1] = r1 - r0;
    return nk_tensor_repack(&t, jb->dst + (size_t)r0 * t.nb1);
}

static void drop_pages(const void *data, size_t bytes, size_t page) {
    const uintptr_t lo = ((uintptr_t)data + page - 1) & ~(uintptr_t)(page - 1);
    const uintptr_t hi = ((uintptr_t)data + bytes) & ~(uintptr_t)(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void *bg_main(void *p) {
    struct nk_repack_bg *bg = p;
    /* Decoding comes first, but the copies must still finish while it runs: nice 10
     * (~10% of a core that a nice-0 thread also wants). Measured at load 6.6-6.9
     * (qwen3-0.6b, nook bench -p 1 -n 1): an even share made the first tokens after a
     * load ~4x slower (a decode's threads meet at every matmul and one was always off
     * its core); SCHED_IDLE gave the same first-token time as nice 10 (444-622 vs
     * 455-635 ms) but starved the copies on a busy machine (done after 0.6-14 s,
     * nice 10: 0.66-0.74 s), and a server decoding on every core would never see them. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    for (size_t j = 0; j < bg->nj && !atomic_load_explicit(&bg->stop, memory_order_relaxed); j++) {
        const pack_job *jb = &bg->jobs[j];
        const int64_t rows = jb->t.ne[1], groups = rows / 16;
        bool ok = true;
        const int64_t step = NK_MAX((int64_t)1, (int64_t)(BG_SLICE_BYTES / (16 * jb->t.nb1)));
        for (int64_t g0 = 0; g0 < groups && ok; g0 += step) {
            if (atomic_load_explicit(&bg->stop, memory_order_relaxed)) {
                ok = false;
                break;
            }
            const int64_t g1 = g0 + step < groups ? g0 + step : groups;
            ok = copy_rows(jb, 16 * g0, g1 == groups ? rows : 16 * g1);
        }
        if (!ok) continue;   /* stopped (or not wanted after all): the file's layout stays */
        /* the copy's bytes happen-before any reader's acquire load of the pointer */
        atomic_store_explicit(&bg->recs[j].data, (const void *)jb->dst, memory_order_release);
        drop_pages(jb->t.data, (size_t)rows * jb->t.nb1, bg->page);
    }
    pthread_mutex_lock(&bg->mu);
    bg->finished = true;
    pthread_cond_broadcast(&bg->cv);
    pthread_mutex_unlock(&bg->mu);
    return NULL;
}

void nk_model_repack_wait(const nook_model *m) {
    struct nk_repack_bg *bg = m->bg;
    if (!bg) return;
    pthread_mutex_lock(&bg->mu);
    while (!bg->finished) pthread_cond_wait(&bg->cv, &bg->mu);
    pthread_mutex_unlock(&bg->mu);
}

void nk_model_repack_free(nook_model *m) {
    struct nk_repack_bg *bg = m->bg;
    if (bg) {
        atomic_store_explicit(&bg->stop, true, memory_order_relaxed);
        pthread_join(bg->th, NULL);
        pthread_mutex_destroy(&bg->mu);
        pthread_cond_destroy(&bg->cv);
        nk_free(bg->jobs);
        nk_free(bg->recs);
        nk_free(bg);
        m->bg = NULL;
    }
    if (m->pack) munmap(m->pack, m->pack_len);
    m->pack = NULL;
    m->pack_len = 0;
}

/* Start the copies of jobs[0..nj) on a thread: every view of job j (the matrices in v,
 * and the token embedding when tied) gets the record its copy is published through.
 * Takes jobs on success; false (nothing changed) if the thread or its bookkeeping
 * could not be had. */
static bool start_bg(nook_model *m, nk_tensor **v, size_t n, pack_job *jobs, size_t nj, size_t page) {
    struct nk_repack_bg *bg = nk_calloc(1, sizeof *bg);
    nk_tensor_pack *recs = nk_calloc(nj, sizeof *recs);
    if (!bg || !recs) {
        nk_free(bg);
        nk_free(recs);
        return false;
    }
    *bg = (struct nk_repack_bg){ .jobs = jobs, .recs = recs, .nj = nj, .page = page };
    atomic_init(&bg->stop, false);
    if (pthread_mutex_init(&bg->mu, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&bg->cv, NULL) != 0) goto fail_cv;
    /* the views, before the thread exists (pthread_create orders these writes before
     * anything it does; readers come later, on threads the caller starts) */
    for (size_t j = 0; j < nj; j++) {
        atomic_init(&recs[j].data, NULL);
        recs[j].layout = packed_layout(&jobs[j].t);
        for (size_t k = 0; k < n; k++)
            if (v[k]->data == jobs[j].t.data && v[k]->layout == NK_LAYOUT_FILE) v[k]->pack = &recs[j];
        if (m->tok_embd.data == jobs[j].t.data) m->tok_embd.pack = &recs[j];
    }
    m->bg = bg;
    if (pthread_create(&bg->th, NULL, bg_main, bg) == 0) return true;
    m->bg = NULL;
    for (size_t k = 0; k < n; k++) v[k]->pack = NULL;
    m->tok_embd.pack = NULL;
    pthread_cond_destroy(&bg->cv);
fail_cv:
    pthread_mutex_destroy(&bg->mu);
fail_mu:
    nk_free(recs);
    nk_free(bg);
    return false;
}

nook_status nk_model_repack(nook_model *m, nook_error *err) {
    nk_tensor **v = nk_malloc(sizeof *v * MAX_SLOTS(m));
    if (!v) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    const size_t n = collect(m, v);
    /* distinct data only (a tied or shared matrix is repacked once) */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!nk_tensor_repack_wanted(v[i])) continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) seen = v[k]->data == v[i]->data && nk_tensor_repack_wanted(v[k]);
        if (!seen) total += (tensor_bytes(v[i]) + 63) / 64 * 64;
    }
    if (total == 0) {
        nk_free(v);
        return NOOK_OK;
    }
    const size_t huge = (size_t)2 << 20;
    const size_t len = (total + huge - 1) / huge * huge;
    /* 2 MB aligned: over-map by 2 MB and trim */
    uint8_t *res = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        nk_free(v);
        return NOOK_OK;   /* the file's layout still works */
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)res + huge - 1) & ~(uintptr_t)(huge - 1));
    if (base > res) munmap(res, (size_t)(base - res));
    if (res + len + huge > base + len) munmap(base + len, (size_t)(res + len + huge - (base + len)));
#ifdef MADV_HUGEPAGE
    (void)madvise(base, len, MADV_HUGEPAGE);
#endif
    m->pack = base;
    m->pack_len = len;
    /* plan: each distinct tensor's destination */
    pack_job *jobs = nk_calloc(n, sizeof *jobs);
    if (!jobs) {
        nk_free(v);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    size_t nj = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        if (!nk_tensor_repack_wanted(v[i])) continue;
        bool seen = false;
        for (size_t k = 0; k < nj && !seen; k++) seen = jobs[k].t.data == v[i]->data;
        if (seen) continue;
        jobs[nj].t = *v[i];
        jobs[nj++].dst = base + off;
        off += (tensor_bytes(v[i]) + 63) / 64 * 64;
    }
    const long pg0 = sysconf(_SC_PAGESIZE);
    const char *sync = getenv("NOOK_REPACK_SYNC");   /* 1: copy before returning (measurements) */
    if (m->map.kind == NK_MAP_MMAP && !(sync && *sync && strcmp(sync, "0") != 0) &&
        start_bg(m, v, n, jobs, nj, pg0 > 0 ? (size_t)pg0 : 4096)) {
        nk_free(v);
        return NOOK_OK;
    }
    /* here: the copies, in parallel (first touches of fresh pages and reads of the file's) */
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int nth = nc < 1 ? 1 : nc > PACK_THREADS ? PACK_THREADS : (int)nc;
    const long pg = sysconf(_SC_PAGESIZE);
    const size_t page = pg > 0 ? (size_t)pg : 4096;
    /* a file mapping's pages stay in the page cache (reclaimable); an anonymous copy's
     * are freed. A heap copy (NK_MAP_HEAP) is left alone. */
    const bool drop = m->map.kind == NK_MAP_MMAP || m->map.kind == NK_MAP_ANON;
    pack_arg args[PACK_THREADS];
    pthread_t th[PACK_THREADS];
    bool started[PACK_THREADS] = { false };
    for (int i = 0; i < nth; i++)
        args[i] = (pack_arg){ .jobs = jobs, .n = nj, .ith = i, .nth = nth, .drop = drop, .page = page };
    for (int i = 1; i < nth; i++) started[i] = pthread_create(&th[i], NULL, pack_main, &args[i]) == 0;
    for (int i = 1; i < nth; i++)   /* a thread that did not start: its share here */
        if (!started[i]) pack_main(&args[i]);
    pack_main(&args[0]);
    for (int i = 1; i < nth; i++)
        if (started[i]) pthread_join(th[i], NULL);
    /* then every view of each packed tensor follows */
    for (size_t j = 0; j < nj; j++) {
        const nk_tensor *old = &jobs[j].t;
        for (size_t k = 0; k < n; k++)
            if (v[k]->data == old->data && v[k]->layout == NK_LAYOUT_FILE) {
                v[k]->data = jobs[j].dst;
                v[k]->layout = packed_layout(old);
            }
        if (m->tok_embd.data == old->data) {   /* tied: get_rows reads the packed copy */
            m->tok_embd.data = jobs[j].dst;
            m->tok_embd.layout = packed_layout(old);
        }
    }
    nk_free(jobs);
    nk_free(v);
    return NOOK_OK;
}

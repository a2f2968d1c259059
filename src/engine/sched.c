/*
 * sched.c: the batching scheduler (nook_sched in nook.h): one session whose cache holds
 * n_parallel sequences ("slots"), a bounded queue of requests, one worker thread.
 *
 * A step: admit queued requests into free slots (prefix reuse), end cancelled ones,
 * build ONE batch (one token for each generating slot first, then prompt chunks of the
 * new ones in the budget left), decode it, and give each slot whose last pending token
 * asked for logits to its nook_gen, which samples and sends the events.
 *
 * Each slot keeps hist[]: the tokens it wants in the cache, of which [0, n_cached) are
 * there. Everything a slot still has to decode is hist[n_cached, n_hist): a new prompt's
 * rest, the one sampled token of a generating sequence, or the kept tail after a
 * context shift (which cuts the cache to num_keep tokens and decodes the tail again at
 * its new positions, exactly as nook_session_shift does for one sequence).
 *
 * Generation states are reused: a finished request's nook_gen goes back to a list of
 * spares (at most one per slot) and the next submit resets it (nook_gen_begin) instead
 * of making a new one, so a request allocates nothing sized by the vocabulary (the
 * sampler's and the mask's buffers: 3.6 MB for a 152k vocabulary) or the context, and
 * a constrained request reuses the vocabulary trie an earlier one built. A submit still
 * sets its request up in the caller's thread (errors before any event); a request
 * waiting in the queue holds its own state, so more than n_parallel may exist at once.
 *
 * Locking: mu guards the queue, each slot's request pointer, the spares and the stop
 * flag; the session, the batch and hist[] belong to the worker alone. No lock is held during a
 * decode or a callback, so callbacks may submit or cancel.
 */
#include "engine/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct req {
    uint64_t id;
    nook_gen *g;
    nook_token *toks;
    int n_tok;
    atomic_bool cancelled;
    atomic_bool done;         /* its DONE event has been sent (set just before it)   */
    nook_event_fn on_event;   /* the caller's callback, behind req_event             */
    void *ud;
    struct req *next;
} req;

typedef struct slot {
    req *r;              /* NULL: free (its cached tokens stay for reuse)            */
    nook_token *hist;    /* n_ctx + 1 tokens                                         */
    int n_hist, n_cached;
    int n_reused;        /* prompt tokens that came from the cache                    */
    int in_batch;        /* entries of this slot in the batch being decoded           */
    bool prefilling;     /* the prompt's last token has not produced logits yet       */
    uint64_t last_used;  /* step of its last admission, for least-recently-used      */
} slot;

struct nook_sched {
    const nook_model *m;
    nook_session *sess;
    int n_par, n_ctx, n_batch, max_queue;
    slot *slots;
    nook_batch batch;
    int *ent_slot;       /* per batch entry: its slot                                */
    int *busy;           /* slots in the batch being decoded (the abort hook reads)  */
    int n_busy;

    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    req *q_head, *q_tail;
    int n_queued;
    uint64_t next_id;
    bool stopping;
    atomic_bool stop_flag;
    nook_gen **spare;    /* n_spare generation states ready for reuse (<= n_par)      */
    int n_spare;
    nook_sched_stats st;
};

nook_sched_params nook_sched_default_params(void) {
    return (nook_sched_params){ .n_parallel = 4, .n_batch = 512, .max_queue = 64 };
}

/* A generation state for a new request: a spare one, else a new one. Any thread. */
static nook_status gen_take(nook_sched *s, nook_gen **out, nook_error *err) {
    pthread_mutex_lock(&s->mu);
    *out = s->n_spare ? s->spare[--s->n_spare] : NULL;
    pthread_mutex_unlock(&s->mu);
    return *out ? NOOK_OK : nook_gen_new(s->m, s->n_ctx, out, err);
}

/* Back to the spares (its request's grammar and strings dropped), or freed when there
 * are enough. Any thread, mu not held. */
static void gen_give(nook_sched *s, nook_gen *g) {
    if (!g) return;
    nk_gen_release(g);
    pthread_mutex_lock(&s->mu);
    if (s->n_spare < s->n_par) {
        s->spare[s->n_spare++] = g;
        g = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    nook_gen_free(g);
}

static void req_free(nook_sched *s, req *r) {
    if (!r) return;
    gen_give(s, r->g);
    nk_free(r->toks);
    nk_free(r);
}

static int n_free_slots(const nook_sched *s) {
    int n = 0;
    for (int i = 0; i < s->n_par; i++) n += s->slots[i].r == NULL;
    return n;
}

/* The abort hook: stop a decode when every request in it was cancelled (or the
 * scheduler is stopping): nobody waits for its result. Runs on the decoding threads;
 * reads only atomics and pointers the worker does not change during the decode. */
static bool abort_fn(void *ud) {
    nook_sched *s = ud;
    if (atomic_load(&s->stop_flag)) return true;
    for (int i = 0; i < s->n_busy; i++) {
        req *r = s->slots[s->busy[i]].r;
        if (r && !atomic_load(&r->cancelled)) return false;
    }
    return s->n_busy > 0;
}

/* ---- admission ------------------------------------------------------------------------ */

/* Put r into a free slot, reusing the longest cached prefix of its prompt. Called by the
 * worker with mu held (the slot's request pointer changes); touches the session, which
 * only the worker uses. */
static void admit(nook_sched *s, req *r) {
    nook_seq best = -1;
    int len = nook_session_prefix_match(s->sess, r->toks, r->n_tok, &best);
    if (len >= r->n_tok) len = r->n_tok - 1;   /* the last prompt token is decoded for its logits */
    if (len < 0) len = 0;
    int t = -1;
    if (best >= 0 && s->slots[best].r == NULL) t = best;
    else {
        /* a free slot: an empty one, else the least recently used */
        for (int i = 0; i < s->n_par; i++) {
            if (s->slots[i].r) continue;
            if (nook_session_seq_pos_max(s->sess, i) < 0) { t = i; break; }
            if (t < 0 || s->slots[i].last_used < s->slots[t].last_used) t = i;
        }
    }
    slot *sl = &s->slots[t];
    if (len > 0 && best == t) {
        nook_session_seq_rm(s->sess, t, len, -1);
    } else if (len > 0 && best >= 0) {
        /* a busy slot holds the prefix: fork it (a copy of its K/V rows) */
        nook_session_seq_clear(s->sess, t);
        if (!nook_session_seq_cp(s->sess, best, t, 0, len)) {
            nook_session_seq_clear(s->sess, t);
            len = 0;
        }
    } else {
        nook_session_seq_clear(s->sess, t);
        len = 0;
    }
    memcpy(sl->hist, r->toks, (size_t)r->n_tok * sizeof *r->toks);
    sl->n_hist = r->n_tok;
    sl->n_cached = len;
    sl->n_reused = len;
    sl->prefilling = true;
    sl->last_used = s->st.n_steps + 1;
    sl->r = r;
    s->st.n_reused += (uint64_t)len;
    nk_gen_restart_clock(r->g);
}

/* The slot's request is over (its DONE event was sent): free the slot. The cache keeps
 * what the slot decoded, and hist[0, n_cached) says what that is. */
static void release(nook_sched *s, slot *sl) {
    pthread_mutex_lock(&s->mu);
    req *r = sl->r;
    sl->r = NULL;
    pthread_mutex_unlock(&s->mu);
    req_free(s, r);
}

/* ---- the step ------------------------------------------------------------------------- */

/* Full context after sampling tok: shift (keep the first tokens, drop half of the rest,
 * decode the kept tail again next step) or end with "length". */
static void full_context(nook_sched *s, int si, nook_token tok) {
    slot *sl = &s->slots[si];
    nook_gen *g = sl->r->g;
    if (!nook_gen_may_shift(g)) {
        nook_gen_finish(g, NOOK_DONE_LENGTH, true, NOOK_OK, NULL);
        release(s, sl);
        return;
    }
    const int keep = nook_gen_shift_keep(g, s->n_ctx);
    const int discard = NK_MAX(1, (sl->n_cached - keep) / 2);
    sl->hist[sl->n_hist++] = tok;
    memmove(sl->hist + keep, sl->hist + keep + discard,
            (size_t)(sl->n_hist - keep - discard) * sizeof *sl->hist);
    sl->n_hist -= discard;
    nook_session_seq_rm(s->sess, si, keep, -1);
    sl->n_cached = keep;
    nook_gen_shifted(g, keep, discard);
}

static void step(nook_sched *s) {
    nook_batch *b = &s->batch;
    nook_batch_clear(b);
    int budget = s->n_batch;
    s->n_busy = 0;
    /* generating sequences first (one token each), then prompt chunks */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->n_par && budget > 0; i++) {
            slot *sl = &s->slots[i];
            if (!sl->r || sl->in_batch) continue;
            int pending = sl->n_hist - sl->n_cached;
            if (pending <= 0 || (pass == 0) != (pending == 1 && !sl->prefilling)) continue;
            int k = pending < budget ? pending : budget;
            for (int j = 0; j < k; j++) {
                int pos = sl->n_cached + j;
                s->ent_slot[b->n_tokens] = i;
                nook_batch_add(b, sl->hist[pos], pos, i, pos == sl->n_hist - 1);
            }
            sl->in_batch = k;
            s->busy[s->n_busy++] = i;
            budget -= k;
        }
    }
    if (b->n_tokens == 0) return;
    nook_error err = { 0 };
    const int n_seqs = s->n_busy;
    const uint64_t t0 = now_ns();
    nook_status st = nook_session_decode_batch(s->sess, b, &err);
    const uint64_t t1 = now_ns();
    for (int i = 0; i < s->n_busy; i++) {
        slot *sl = &s->slots[s->busy[i]];
        if (st == NOOK_OK) sl->n_cached += sl->in_batch;
        else sl->n_cached = nook_session_seq_pos_max(s->sess, s->busy[i]) + 1;   /* what stayed */
        sl->in_batch = 0;
    }
    s->n_busy = 0;
    if (st != NOOK_OK) {
        /* aborted: every request in it was cancelled, the next loop ends them; an error
         * ends every request of the batch */
        if (st == NOOK_EABORTED) {
            pthread_mutex_lock(&s->mu);
            s->st.n_aborted++;
            s->st.decode_ns += t1 - t0;
            pthread_mutex_unlock(&s->mu);
            return;
        }
        for (int i = 0; i < b->n_tokens; i++) {
            slot *sl = &s->slots[s->ent_slot[i]];
            if (!sl->r) continue;
            nook_gen_finish(sl->r->g, NOOK_DONE_ERROR, false, st, err.msg);
            release(s, sl);
        }
        return;
    }
    pthread_mutex_lock(&s->mu);   /* the counters are read by nook_sched_stats_get */
    s->st.n_steps++;
    s->st.n_decoded += (uint64_t)b->n_tokens;
    s->st.n_shared_steps += n_seqs > 1;
    s->st.decode_ns += t1 - t0;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < b->n_tokens; i++) {
        if (!b->output[i]) continue;
        int si = s->ent_slot[i];
        slot *sl = &s->slots[si];
        if (!sl->r) continue;
        nook_gen *g = sl->r->g;
        if (sl->prefilling) {
            nook_gen_prompt_done(g, sl->r->n_tok - sl->n_reused);
            sl->prefilling = false;
        }
        nook_token tok;
        if (nook_gen_step(g, nook_session_logits_ith(s->sess, i), &tok) == NOOK_GEN_DONE) {
            release(s, sl);
            continue;
        }
        if (sl->n_cached >= s->n_ctx) full_context(s, si, tok);
        else sl->hist[sl->n_hist++] = tok;
    }
    const uint64_t t2 = now_ns();
    pthread_mutex_lock(&s->mu);
    s->st.handoff_ns += t2 - t1;
    pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg) {
    nook_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (!s->stopping && s->q_head == NULL && n_free_slots(s) == s->n_par) {
            const uint64_t t0 = now_ns();
            while (!s->stopping && s->q_head == NULL && n_free_slots(s) == s->n_par)
                pthread_cond_wait(&s->cv, &s->mu);
            s->st.idle_ns += now_ns() - t0;
        }
        const bool stopping = s->stopping;
        /* queued requests that will not run: cancelled ones, or all when stopping */
        req *drop = NULL, **pp = &s->q_head;
        s->q_tail = NULL;
        while (*pp) {
            req *r = *pp;
            if (stopping || atomic_load(&r->cancelled)) {
                *pp = r->next;
                r->next = drop;
                drop = r;
                s->n_queued--;
            } else {
                s->q_tail = r;
                pp = &r->next;
            }
        }
        while (!stopping && s->q_head && n_free_slots(s) > 0) {
            req *r = s->q_head;
            s->q_head = r->next;
            if (!s->q_head) s->q_tail = NULL;
            s->n_queued--;
            r->next = NULL;
            admit(s, r);
        }
        pthread_mutex_unlock(&s->mu);

        for (req *r = drop, *nx; r; r = nx) {
            nx = r->next;
            nook_gen_finish(r->g, NOOK_DONE_CANCELLED, false, NOOK_OK, NULL);
            req_free(s, r);
        }
        int active = 0;
        for (int i = 0; i < s->n_par; i++) {
            slot *sl = &s->slots[i];
            if (!sl->r) continue;
            if (stopping || atomic_load(&sl->r->cancelled)) {
                nook_gen_finish(sl->r->g, NOOK_DONE_CANCELLED, false, NOOK_OK, NULL);
                release(s, sl);
                continue;
            }
            active++;
        }
        if (stopping) break;
        if (active) step(s);
    }
    return NULL;
}

/* ---- API ------------------------------------------------------------------------------ */

nook_status nook_sched_new(const nook_model *m, const nook_sched_params *p, nook_sched **out,
                           nook_error *err) {
    if (!m || !p || !out) return nk_fail(err, NOOK_EINVAL, "nook_sched_new: bad arguments");
    *out = NULL;
    if (p->n_parallel < 1 || p->n_parallel > 256)
        return nk_fail(err, NOOK_EINVAL, "n_parallel %d (1..256)", p->n_parallel);
    if (p->max_queue < 0) return nk_fail(err, NOOK_EINVAL, "max_queue %d (must be >= 0)", p->max_queue);
    int n_batch = p->n_batch > 0 ? p->n_batch : 512;
    if (n_batch < p->n_parallel) n_batch = p->n_parallel;   /* every generating sequence fits */
    nook_sched *s = nk_calloc(1, sizeof *s);
    if (!s) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    s->m = m;
    s->n_par = p->n_parallel;
    s->n_batch = n_batch;
    s->max_queue = p->max_queue;
    atomic_store(&s->stop_flag, false);
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = p->n_ctx;
    sp.n_batch = n_batch;
    sp.n_threads = p->n_threads;
    sp.kv_type = p->kv_type;
    sp.plain_attn = p->plain_attn;
    sp.n_seq_max = p->n_parallel;
    nook_status st = nook_session_new(m, &sp, &s->sess, err);
    if (st != NOOK_OK) {
        nk_free(s);
        return st;
    }
    s->n_ctx = nook_session_n_ctx(s->sess);
    s->slots = nk_calloc((size_t)s->n_par, sizeof *s->slots);
    s->ent_slot = nk_alloc_array((size_t)n_batch, sizeof *s->ent_slot);
    s->busy = nk_alloc_array((size_t)s->n_par, sizeof *s->busy);
    s->spare = nk_calloc((size_t)s->n_par, sizeof *s->spare);
    if (!s->slots || !s->ent_slot || !s->busy || !s->spare) goto oom;
    for (int i = 0; i < s->n_par; i++) {
        s->slots[i].hist = nk_alloc_array((size_t)s->n_ctx + 1, sizeof *s->slots[i].hist);
        if (!s->slots[i].hist) goto oom;
    }
    if ((st = nook_batch_init(&s->batch, n_batch, err)) != NOOK_OK) goto fail;
    nook_session_set_abort(s->sess, abort_fn, s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->th, NULL, worker, s) != 0) {
        st = nk_fail(err, NOOK_EINTERNAL, "scheduler: cannot start its worker thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        goto fail;
    }
    s->started = true;
    *out = s;
    return NOOK_OK;
oom:
    st = nk_fail(err, NOOK_ENOMEM, "out of memory");
fail:
    s->started = false;
    nook_sched_free(s);
    return st;
}

void nook_sched_free(nook_sched *s) {
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        atomic_store(&s->stop_flag, true);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    if (s->slots)
        for (int i = 0; i < s->n_par; i++) nk_free(s->slots[i].hist);
    nk_free(s->slots);
    nk_free(s->ent_slot);
    nk_free(s->busy);
    for (int i = 0; i < s->n_spare; i++) nook_gen_free(s->spare[i]);
    nk_free(s->spare);
    nook_batch_free(&s->batch);
    if (s->sess) nook_session_free(s->sess);
    nk_free(s);
}

/* Every event of a request passes here on the worker thread: the request counts as
 * done from its DONE event on, so nook_sched_cancel answers false as soon as a caller
 * could have seen DONE (the slot is freed only after the callback returns). */
static bool req_event(const nook_event *ev, void *ud) {
    req *r = ud;
    if (ev->kind == NOOK_EVENT_DONE) atomic_store(&r->done, true);
    return r->on_event(ev, r->ud);
}

nook_status nook_sched_submit(nook_sched *s, const nook_prompt *prompt, const nook_gen_params *p,
                              nook_event_fn on_event, void *ud, uint64_t *id, nook_error *err) {
    if (!s || !prompt || !p || !on_event) return nk_fail(err, NOOK_EINVAL, "nook_sched_submit: bad arguments");
    req *r = nk_calloc(1, sizeof *r);
    if (!r) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    atomic_store(&r->cancelled, false);
    atomic_store(&r->done, false);
    r->on_event = on_event;
    r->ud = ud;
    bool split = false;
    nook_status st = nook_prompt_tokenize(s->m, prompt, &r->toks, &r->n_tok, &split, err);
    if (st != NOOK_OK) goto fail;
    if (r->n_tok == 0) {
        st = nk_fail(err, NOOK_EINVAL, "the prompt is empty");
        goto fail;
    }
    if (r->n_tok > s->n_ctx) {
        st = nk_fail(err, NOOK_ERANGE, "the prompt is %d tokens, longer than the context (%d)", r->n_tok, s->n_ctx);
        goto fail;
    }
    if ((st = gen_take(s, &r->g, err)) != NOOK_OK) goto fail;
    if ((st = nook_gen_begin(r->g, p, r->toks, r->n_tok, split, req_event, r, err)) != NOOK_OK) goto fail;

    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        st = nk_fail(err, NOOK_EINVAL, "the scheduler is stopping");
        goto fail;
    }
    if (s->n_queued >= s->max_queue + n_free_slots(s)) {
        int waiting = s->n_queued;   /* read under the lock (the worker changes it) */
        pthread_mutex_unlock(&s->mu);
        st = nk_fail(err, NOOK_EBUSY, "%d requests are waiting (the queue holds %d): try again later",
                     waiting, s->max_queue);
        goto fail;
    }
    r->id = ++s->next_id;
    if (s->q_tail) s->q_tail->next = r;
    else s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
    if (id) *id = r->id;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NOOK_OK;
fail:
    req_free(s, r);
    return st;
}

bool nook_sched_cancel(nook_sched *s, uint64_t id) {
    if (!s) return false;
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (req *r = s->q_head; r && !found; r = r->next)
        if (r->id == id) {
            atomic_store(&r->cancelled, true);
            found = true;
        }
    for (int i = 0; i < s->n_par && !found; i++) {
        req *r = s->slots[i].r;
        if (r && r->id == id && !atomic_load(&r->done)) {
            atomic_store(&r->cancelled, true);
            nook_gen_cancel(r->g);
            found = true;
        }
    }
    if (found) pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return found;
}

void nook_sched_stats_get(nook_sched *s, nook_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->n_queued = s->n_queued;
    out->n_active = s->n_par - n_free_slots(s);
    pthread_mutex_unlock(&s->mu);
}

/*
 * models.c: the loaded models of a server (see models.h): a registry component with
 * one mutex, a reaper thread that unloads idle models whose keep_alive ran out, and
 * per model a small pool of sessions on which nook_generate runs.
 *
 * Locking: g->mu guards the list, every entry's counters and its session pool. Model
 * loads and session creation run outside the lock (they take seconds); an entry being
 * loaded is in the list with loading = true, and requests for it wait on g->cv.
 */
#include "server/models.h"
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct registry;

struct srv_model {
    srv_model *next;
    struct registry *g;    /* the owning registry (its mutex guards this entry) */
    char *path;            /* realpath of the GGUF file         */
    char *name;            /* as first requested                 */
    int   req_ctx;         /* context asked for (0: default)     */
    int   n_ctx;           /* the sessions' context              */
    nook_model *m;
    bool  loading, failed, doomed;
    int   refs;
    int64_t expires_ns;    /* monotonic; INT64_MAX: never        */
    int64_t keep_alive_ns;
    uint64_t size;         /* file bytes                         */
    time_t loaded_at;
    /* generation: the engine's batching scheduler (NOOK_NUM_PARALLEL sequences) */
    nook_sched *sched;
    int   queued;          /* this model's share of the queue gauge */
    /* embeddings: one session, one request at a time */
    pthread_mutex_t emb_mu;
    nook_session *emb;
};

typedef struct registry {
    srv_server *srv;
    const srv_config *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_model *list;
    pthread_t reaper;
    bool stop;
} registry;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void model_free(srv_model *e) {
    if (e->sched) nook_sched_free(e->sched);
    if (e->emb) nook_session_free(e->emb);
    pthread_mutex_destroy(&e->emb_mu);
    if (e->m) nook_model_free(e->m);
    nk_free(e->path);
    nk_free(e->name);
    nk_free(e);
}

static int count_loaded(registry *g) {
    int n = 0;
    for (srv_model *e = g->list; e; e = e->next) n += !e->failed;
    return n;
}

/* Unlinks idle entries that are expired (or all idle ones when force). Returns them as
 * a list to free outside the lock. Called with g->mu held. */
static srv_model *collect_idle(registry *g, bool force, const char *path) {
    srv_model *out = NULL, **pp = &g->list;
    int64_t t = now_ns();
    while (*pp) {
        srv_model *e = *pp;
        bool idle = e->refs == 0 && !e->loading;
        bool go = idle && (e->failed || e->doomed || force || t >= e->expires_ns) && (!path || !strcmp(e->path, path));
        if (go) {
            *pp = e->next;
            e->next = out;
            out = e;
        } else {
            pp = &e->next;
        }
    }
    srv_gauge_set(SRV_G_LOADED_MODELS, count_loaded(g));
    return out;
}

static void free_list(srv_model *l) {
    while (l) {
        srv_model *n = l->next;
        model_free(l);
        l = n;
    }
}

static void *reaper_main(void *arg) {
    registry *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        srv_model *dead = collect_idle(g, false, NULL);
        if (dead) {
            pthread_mutex_unlock(&g->mu);
            free_list(dead);
            pthread_mutex_lock(&g->mu);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void *registry_create(srv_server *s) {
    registry *g = nk_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->srv = s;
    g->cfg = srv_get_config(s);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        nk_free(g);
        return NULL;
    }
    return g;
}

static void registry_destroy(void *obj) {
    registry *g = obj;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    free_list(g->list);   /* the server has stopped: no request holds a model */
    srv_gauge_set(SRV_G_LOADED_MODELS, 0);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    nk_free(g);
}

static const srv_component k_registry = { "models", registry_create, registry_destroy };

static registry *reg(srv_server *s) { return srv_component_get(s, &k_registry); }

/* ---- acquire / release ---------------------------------------------------------------- */

static int resolve(const char *name, char **path, char *msg, size_t cap) {
    struct stat st;
    if (stat(name, &st) == 0 && S_ISREG(st.st_mode)) {
        char *rp = realpath(name, NULL);
        if (!rp) {
            snprintf(msg, cap, "model '%s': %s", name, strerror(errno));
            return 500;
        }
        *path = nk_strdup(rp);
        free(rp);
        if (!*path) { snprintf(msg, cap, "out of memory"); return 500; }
        return 0;
    }
    /* A store name ("qwen3:8b"): the store's manifest gives the GGUF blob. */
    nk_store *store = NULL;
    nook_error err = { 0 };
    if (nk_store_open(NULL, &store, &err) != NOOK_OK) {
        snprintf(msg, cap, "model '%s' not found (no model store: %s)", name, err.msg);
        return 404;
    }
    nk_model_ref ref;
    memset(&ref, 0, sizeof ref);
    nook_status rs = nk_model_resolve(store, name, &ref, &err);
    nk_store_free(store);
    if (rs != NOOK_OK) {
        nk_model_ref_free(&ref);
        if (rs == NOOK_ENOTFOUND || rs == NOOK_EINVAL) {
            snprintf(msg, cap, "model '%s' not found", name);
            return 404;
        }
        snprintf(msg, cap, "model '%s': %s", name, err.msg);
        return rs == NOOK_EUNSUPPORTED || rs == NOOK_EFORMAT ? 400 : 500;
    }
    *path = nk_strdup(ref.path);
    nk_model_ref_free(&ref);
    if (!*path) { snprintf(msg, cap, "out of memory"); return 500; }
    return 0;
}

int srv_models_acquire(srv_server *s, const char *name, int num_ctx, srv_model **out, int64_t *waited_ns, char *msg,
                       size_t cap) {
    registry *g = reg(s);
    *out = NULL;
    *waited_ns = 0;
    if (!g) { snprintf(msg, cap, "out of memory"); return 500; }
    char *path = NULL;
    int st = resolve(name, &path, msg, cap);
    if (st) return st;
    int want_ctx = num_ctx > 0 ? num_ctx : g->cfg->context_length;
    int64_t t0 = now_ns();

    pthread_mutex_lock(&g->mu);
    for (;;) {
        srv_model *e;
        for (e = g->list; e; e = e->next)
            if (!e->failed && !e->doomed && e->req_ctx == want_ctx && !strcmp(e->path, path)) break;
        if (e && e->loading) {   /* one load, shared: wait for it */
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        if (e) {
            e->refs++;
            e->expires_ns = INT64_MAX;
            pthread_mutex_unlock(&g->mu);
            nk_free(path);
            *out = e;
            *waited_ns = now_ns() - t0;
            return 0;
        }
        break;
    }
    /* Not loaded: make room within NOOK_MAX_LOADED_MODELS, idle ones first (soonest to expire). */
    int max_loaded = g->cfg->max_loaded > 0 ? g->cfg->max_loaded : 3;
    srv_model *dead = NULL;
    while (count_loaded(g) >= max_loaded) {
        srv_model *victim = NULL;
        for (srv_model *e = g->list; e; e = e->next)
            if (e->refs == 0 && !e->loading && (!victim || e->expires_ns < victim->expires_ns)) victim = e;
        if (!victim) break;
        victim->doomed = true;
        srv_model *d = collect_idle(g, false, victim->path);
        while (d) { srv_model *n = d->next; d->next = dead; dead = d; d = n; }
    }
    if (count_loaded(g) >= max_loaded) {
        pthread_mutex_unlock(&g->mu);
        free_list(dead);
        nk_free(path);
        snprintf(msg, cap, "server busy: %d models loaded (NOOK_MAX_LOADED_MODELS) and all in use", max_loaded);
        return 503;
    }
    srv_model *e = nk_calloc(1, sizeof *e);
    if (!e || !(e->name = nk_strdup(name))) {
        pthread_mutex_unlock(&g->mu);
        nk_free(e);
        free_list(dead);
        nk_free(path);
        snprintf(msg, cap, "out of memory");
        return 500;
    }
    pthread_mutex_init(&e->emb_mu, NULL);
    e->g = g;
    e->path = path;
    e->req_ctx = want_ctx;
    e->loading = true;
    e->refs = 1;
    e->expires_ns = INT64_MAX;
    e->next = g->list;
    g->list = e;
    pthread_mutex_unlock(&g->mu);
    free_list(dead);

    /* Load outside the lock. */
    nook_error err = { 0 };
    nook_model_params mp = nook_model_default_params();
    nook_model *m = NULL;
    nook_status ls = nook_model_load(path, &mp, &m, &err);
    nook_sched *sched = NULL;
    int n_ctx = 0;
    if (ls == NOOK_OK) {
        nook_sched_params sp = nook_sched_default_params();
        int train = nook_model_n_ctx_train(m);
        /* An explicit context is capped at the trained one (more only wastes memory). */
        sp.n_ctx = want_ctx > 0 ? (train > 0 && want_ctx > train ? train : want_ctx) : 0;
        if (sp.n_ctx == 0) sp.n_ctx = train > 0 && train < 4096 ? train : 4096;
        if (g->cfg->num_parallel > 0) sp.n_parallel = g->cfg->num_parallel;
        sp.max_queue = g->cfg->max_queue;
        sp.kv_type = !strcmp(g->cfg->kv_cache_type, "q8_0")   ? NOOK_KV_Q8_0
                   : !strcmp(g->cfg->kv_cache_type, "q4_0") ? NOOK_KV_Q4_0
                   : !strcmp(g->cfg->kv_cache_type, "f32")  ? NOOK_KV_F32
                                                            : NOOK_KV_F16;
        ls = nook_sched_new(m, &sp, &sched, &err);
        if (ls == NOOK_OK) n_ctx = sp.n_ctx;
    }
    struct stat fst;
    pthread_mutex_lock(&g->mu);
    e->loading = false;
    if (ls != NOOK_OK) {
        e->failed = true;
        e->refs = 0;
        if (m) nook_model_free(m);
        pthread_cond_broadcast(&g->cv);
        srv_model *d = collect_idle(g, false, NULL);
        pthread_mutex_unlock(&g->mu);
        free_list(d);
        snprintf(msg, cap, "model '%s': %s", name, err.msg);
        return ls == NOOK_ENOMEM ? 500 : ls == NOOK_EIO ? 404 : 400;
    }
    e->m = m;
    e->sched = sched;
    e->n_ctx = n_ctx;
    e->size = stat(path, &fst) == 0 ? (uint64_t)fst.st_size : 0;
    e->loaded_at = time(NULL);
    srv_gauge_set(SRV_G_LOADED_MODELS, count_loaded(g));
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    *out = e;
    *waited_ns = now_ns() - t0;
    nk_log(NK_LOG_INFO, "server: loaded %s (context %d)", path, n_ctx);
    return 0;
}

void srv_models_release(srv_server *s, srv_model *e, bool has_keep_alive, int64_t keep_alive_ns) {
    registry *g = reg(s);
    if (!g || !e) return;
    int64_t ka = has_keep_alive ? keep_alive_ns : g->cfg->keep_alive_ns;
    pthread_mutex_lock(&g->mu);
    e->keep_alive_ns = ka;
    /* The timer starts when the last request ends (Ollama); the latest keep_alive wins. */
    if (--e->refs == 0) e->expires_ns = ka < 0 ? INT64_MAX : now_ns() + ka;
    srv_model *dead = ka == 0 ? collect_idle(g, false, NULL) : NULL;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    free_list(dead);
}

bool srv_models_unload(srv_server *s, const char *name) {
    registry *g = reg(s);
    if (!g) return false;
    char *path = NULL;
    char msg[64];
    if (resolve(name, &path, msg, sizeof msg)) return false;
    bool found = false;
    pthread_mutex_lock(&g->mu);
    for (srv_model *e = g->list; e; e = e->next)
        if (!strcmp(e->path, path)) {
            found = true;
            e->doomed = true;   /* busy ones go when their last request ends */
        }
    srv_model *dead = collect_idle(g, false, path);
    pthread_mutex_unlock(&g->mu);
    free_list(dead);
    nk_free(path);
    return found;
}

const nook_model *srv_model_model(const srv_model *m) { return m->m; }
const char *srv_model_path(const srv_model *m) { return m->path; }
int srv_model_n_ctx(const srv_model *m) { return m->n_ctx; }

/* ---- generation --------------------------------------------------------------------------- */

/* Forwards the scheduler's events (on its worker thread) to the request's callback
 * and tells the waiting thread when DONE has passed. */
typedef struct relay {
    nook_event_fn fn;
    void *ud;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    nook_status status;
} relay;

static bool relay_event(const nook_event *ev, void *ud) {
    relay *rl = ud;
    bool go = rl->fn(ev, rl->ud);
    if (ev->kind == NOOK_EVENT_DONE) {
        pthread_mutex_lock(&rl->mu);
        rl->done = true;
        rl->status = ev->done_reason == NOOK_DONE_ERROR ? ev->status : NOOK_OK;
        pthread_cond_signal(&rl->cv);
        pthread_mutex_unlock(&rl->mu);
    }
    return go;
}

/* The queue gauge: requests waiting for a sequence, over every model. */
static void update_queue_gauge(registry *g, srv_model *e) {
    nook_sched_stats stx;
    nook_sched_stats_get(e->sched, &stx);
    pthread_mutex_lock(&g->mu);
    srv_gauge_add(SRV_G_QUEUE, stx.n_queued - e->queued);
    e->queued = stx.n_queued;
    pthread_mutex_unlock(&g->mu);
}

nook_status srv_model_generate(srv_model *e, const nook_prompt *prompt, const nook_gen_params *p, nook_event_fn fn,
                               void *ud, nook_error *err) {
    return srv_model_generate_abortable(e, prompt, p, fn, ud, NULL, NULL, NULL, err);
}

nook_status srv_model_generate_abortable(srv_model *e, const nook_prompt *prompt, const nook_gen_params *p,
                                         nook_event_fn fn, void *ud, const _Atomic bool *abort_flag,
                                         bool (*gone)(void *), void *gone_ud, nook_error *err) {
    registry *g = e->g;
    relay rl = { .fn = fn, .ud = ud };
    pthread_mutex_init(&rl.mu, NULL);
    pthread_cond_init(&rl.cv, NULL);
    uint64_t id = 0;
    nook_status st = nook_sched_submit(e->sched, prompt, p, relay_event, &rl, &id, err);
    if (st != NOOK_OK) {
        if (st == NOOK_EBUSY) {
            srv_metric_add(SRV_M_REJECTED_QUEUE, 1);
            nk_fail(err, NOOK_EBUSY, "server busy, please try again.  maximum pending requests exceeded");
        }
        pthread_mutex_destroy(&rl.mu);
        pthread_cond_destroy(&rl.cv);
        return st;
    }
    srv_gauge_add(SRV_G_ACTIVE_SEQS, 1);
    update_queue_gauge(g, e);
    /* Wait for DONE; the abort flag (a client gone) cancels within 20 ms, even in the
     * middle of a prompt evaluation (the scheduler aborts the decode). */
    bool cancelled = false;
    pthread_mutex_lock(&rl.mu);
    while (!rl.done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&rl.cv, &rl.mu, &ts);
        if (!rl.done && !cancelled && ((abort_flag && atomic_load(abort_flag)) || (gone && gone(gone_ud)))) {
            cancelled = true;
            pthread_mutex_unlock(&rl.mu);
            nook_sched_cancel(e->sched, id);
            pthread_mutex_lock(&rl.mu);
        }
    }
    pthread_mutex_unlock(&rl.mu);
    srv_gauge_add(SRV_G_ACTIVE_SEQS, -1);
    update_queue_gauge(g, e);
    pthread_mutex_destroy(&rl.mu);
    pthread_cond_destroy(&rl.cv);
    return rl.status;
}

/* ---- the schedulers' counters for /metrics --------------------------------------------------- */

/* One Prometheus label value: backslash, quote and newline escaped (a model name is a
 * path or a store name: any bytes). */
static void label_value(char *out, size_t cap, const char *v) {
    size_t n = 0;
    for (; *v && n + 3 < cap; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') {
            out[n++] = '\\';
            out[n++] = *v == '\n' ? 'n' : *v;
        } else out[n++] = *v;
    }
    out[n] = 0;
}

char *srv_models_metrics_text(srv_server *s, size_t *len) {
    static const struct { const char *name, *help; } k[] = {
        { "nook_sched_steps_total", "batches the model's scheduler decoded" },
        { "nook_sched_decoded_tokens_total", "tokens decoded in those batches (prompt and generated)" },
        { "nook_sched_decode_seconds_total", "time the scheduler spent decoding batches" },
        { "nook_sched_handoff_seconds_total",
          "time the scheduler spent handing logits to requests (sampling, detokenizing, streaming callbacks)" },
        { "nook_sched_idle_seconds_total", "time the scheduler waited with no request" },
    };
    registry *g = reg(s);
    size_t cap = 2048, n = 0;
    char *buf = nk_malloc(cap);
    if (!buf) return NULL;
    buf[0] = 0;
    *len = 0;
    if (!g) return buf;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < NK_ARRAY_LEN(k); i++) {
        bool head = false;
        for (srv_model *e = g->list; e; e = e->next) {
            if (e->loading || e->failed || !e->sched) continue;
            nook_sched_stats st;
            nook_sched_stats_get(e->sched, &st);
            char lv[512];
            label_value(lv, sizeof lv, e->name);
            char line[1024];
            int w = 0;
            if (!head)
                w = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s counter\n", k[i].name, k[i].help, k[i].name);
            head = true;
            int w2;
            switch (i) {
            case 0: w2 = snprintf(line + w, sizeof line - (size_t)w, "%s{model=\"%s\",num_ctx=\"%d\"} %llu\n", k[i].name,
                                  lv, e->n_ctx, (unsigned long long)st.n_steps); break;
            case 1: w2 = snprintf(line + w, sizeof line - (size_t)w, "%s{model=\"%s\",num_ctx=\"%d\"} %llu\n", k[i].name,
                                  lv, e->n_ctx, (unsigned long long)st.n_decoded); break;
            default: {
                uint64_t ns = i == 2 ? st.decode_ns : i == 3 ? st.handoff_ns : st.idle_ns;
                w2 = snprintf(line + w, sizeof line - (size_t)w, "%s{model=\"%s\",num_ctx=\"%d\"} %.6f\n", k[i].name,
                              lv, e->n_ctx, (double)ns / 1e9);
            }
            }
            size_t add = w2 > 0 ? (size_t)w + (size_t)w2 : 0;
            if (add >= sizeof line) add = sizeof line - 1;
            if (n + add + 1 > cap) {
                size_t nc = cap;
                while (nc < n + add + 1) nc *= 2;
                char *nb = nk_realloc(buf, nc);
                if (!nb) break;
                buf = nb;
                cap = nc;
            }
            memcpy(buf + n, line, add);
            n += add;
            buf[n] = 0;
        }
    }
    pthread_mutex_unlock(&g->mu);
    *len = n;
    return buf;
}

/* ---- listing -------------------------------------------------------------------------------- */

static void fmt_time(char *buf, size_t cap, time_t t) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *srv_models_list(srv_server *s, bool ps_shape) {
    registry *g = reg(s);
    json_t *arr = json_array();
    if (!g || !arr) return arr;
    pthread_mutex_lock(&g->mu);
    int64_t tn = now_ns();
    time_t wall = time(NULL);
    for (srv_model *e = g->list; e; e = e->next) {
        if (e->loading || e->failed) continue;
        char when[40];
        json_t *details = json_pack("{s:s,s:s,s:s,s:[s]}", "parent_model", "", "format", "gguf", "family",
                                    nook_model_arch(e->m), "families", nook_model_arch(e->m));
        json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:o}", "name", e->name, "model", e->name, "size", (json_int_t)e->size,
                              "digest", "", "details", details);
        if (!o) continue;
        if (ps_shape) {
            if (e->expires_ns == INT64_MAX) {
                /* Ollama shows a far-future time for "forever" (and for models in use) */
                fmt_time(when, sizeof when, e->refs ? wall + (time_t)(e->keep_alive_ns / 1000000000LL)
                                                    : (time_t)253402300799LL);
                if (e->refs && e->keep_alive_ns < 0) fmt_time(when, sizeof when, (time_t)253402300799LL);
            } else {
                fmt_time(when, sizeof when, wall + (time_t)((e->expires_ns - tn) / 1000000000LL));
            }
            json_object_set_new(o, "expires_at", json_string(when));
            json_object_set_new(o, "size_vram", json_integer(0));
            json_object_set_new(o, "context_length", json_integer(e->n_ctx));
        } else {
            fmt_time(when, sizeof when, e->loaded_at);
            json_object_set_new(o, "modified_at", json_string(when));
        }
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&g->mu);
    return arr;
}

/* ---- embeddings ----------------------------------------------------------------------------- */

int srv_model_embed(srv_model *e, char *const *texts, int n, bool truncate, float **out, int *n_embd, int *n_tokens,
                    char *msg, size_t cap) {
    *out = NULL;
    *n_tokens = 0;
    int d = nook_model_n_embd(e->m);
    *n_embd = d;
    if (n == 0) return 0;
    if (d <= 0) { snprintf(msg, cap, "this model gives no embeddings"); return 400; }
    float *res = nk_alloc_array((size_t)n * (size_t)d, sizeof *res);
    if (!res) { snprintf(msg, cap, "out of memory"); return 500; }
    pthread_mutex_lock(&e->emb_mu);
    nook_error err = { 0 };
    int status = 0;
    if (!e->emb) {
        nook_session_params sp = nook_session_default_params();
        sp.n_ctx = e->n_ctx;
        sp.embeddings = true;
        if (nook_session_new(e->m, &sp, &e->emb, &err) != NOOK_OK) {
            e->emb = NULL;
            snprintf(msg, cap, "embeddings: %s", err.msg);
            status = 500;
        }
    }
    int ctx = e->emb ? nook_session_n_ctx(e->emb) : 0;
    nook_token *toks = status ? NULL : nk_alloc_array((size_t)ctx + 8, sizeof *toks);
    nook_batch b = { 0 };
    if (!status && (!toks || nook_batch_init(&b, ctx + 8, &err) != NOOK_OK)) {
        snprintf(msg, cap, "out of memory");
        status = 500;
    }
    for (int i = 0; !status && i < n; i++) {
        size_t nt = 0;
        nook_status st = nook_tokenize(e->m, texts[i], strlen(texts[i]), true, false, toks, (size_t)ctx + 8, &nt, &err);
        if (st == NOOK_ERANGE || nt > (size_t)ctx) {
            if (!truncate) {
                snprintf(msg, cap, "input %d is longer than the context length (%d tokens)", i, ctx);
                status = 400;
                break;
            }
            nt = (size_t)ctx;   /* Ollama's truncate: keep the beginning */
        } else if (st != NOOK_OK) {
            snprintf(msg, cap, "input %d: %s", i, err.msg);
            status = 400;
            break;
        }
        if (nt == 0) { snprintf(msg, cap, "input %d is empty", i); status = 400; break; }
        nook_session_seq_clear(e->emb, -1);
        nook_batch_clear(&b);
        for (size_t k = 0; k < nt; k++) nook_batch_add(&b, toks[k], (int32_t)k, 0, true);
        if (nook_session_decode_batch(e->emb, &b, &err) != NOOK_OK) {
            snprintf(msg, cap, "embeddings: %s", err.msg);
            status = 500;
            break;
        }
        const float *v = nook_session_embeddings_seq(e->emb, 0);
        if (!v) { snprintf(msg, cap, "embeddings: the model pooled nothing"); status = 500; break; }
        memcpy(res + (size_t)i * (size_t)d, v, (size_t)d * sizeof *res);
        *n_tokens += (int)nt;
    }
    if (e->emb) nook_session_seq_clear(e->emb, -1);
    pthread_mutex_unlock(&e->emb_mu);
    nook_batch_free(&b);
    nk_free(toks);
    if (status) { nk_free(res); return status; }
    *out = res;
    return 0;
}

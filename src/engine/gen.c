/*
 * gen.c: the per-sequence generation state machine (nook_gen in nook.h).
 *
 * A step: (constraint mask) -> sample -> end-of-generation? -> detokenize -> log-probs
 * -> stop-string matcher -> thinking splitter -> one TOKEN event -> limits. Who decodes
 * is not our concern: the one-sequence driver (generate.c) and the scheduler (sched.c)
 * both feed logits in and decode the token that comes out.
 *
 * The stop matcher holds the released text back while its tail could still be the
 * beginning of a stop string, so a stop string split across tokens is never shown.
 * Stop strings are matched on the raw text (before the thinking split), as Ollama's
 * runner does. Every buffer is allocated in nook_gen_new / nook_gen_begin; a step
 * allocates nothing (tests/engine/test_gen_alloc.c counts).
 */
#include "engine/engine.h"
#include "chat/chat.h"
#include "grammar/grammar.h"
#include "sampling/sampler.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* Bytes of text one event can carry beyond the held-back stop text: a piece (< 1 KiB),
 * the splitter's held tag, a few runs of held newlines. More goes out as TEXT events. */
#define EV_TEXT_EXTRA 4096

struct nook_gen {
    const nook_model *m;
    int n_vocab, n_ctx;
    float *work;                 /* n_vocab: the logits a constraint masks           */
    nk_gvocab *gvocab;           /* vocabulary trie for grammars (built on first use) */
    nk_constrain *grammar;       /* this request's grammar/format constraint, or NULL */
    nook_sampler *smp;
    nook_top_logprob top[NOOK_MAX_TOP_LOGPROBS];

    /* request */
    nook_gen_params p;
    nook_event_fn cb;
    void *ud;
    int64_t limit;               /* tokens this request may generate                */
    int n_prompt, keep_after_bos;
    bool prompt_has_bos;

    /* stop strings: copies, and the text held back while it may become one */
    char **stop;
    size_t *stop_len;
    int n_stop;
    int stop_hit;                /* the stop string that ended generation, or -1    */
    size_t max_stop;
    char *hold;
    size_t n_hold, cap_hold;
    size_t cap_hold_alloc;       /* hold's allocation; content and thinking have
                                    cap_hold_alloc + EV_TEXT_EXTRA bytes              */

    /* text of the current event */
    char *content, *thinking;
    size_t n_content, n_thinking, cap_text;
    bool overflow_event_pending;

    nook_detok detok;
    bool split;
    nk_think_splitter tsp;       /* splits the released text for the events         */
    nk_think_splitter tflag;     /* follows the raw pieces for in_thinking          */

    /* prompt + generated tokens: the DONE event's context */
    nook_token *ctx;
    int n_ctxt, cap_ctx, cap_ctx_alloc;

    int n_gen;
    bool done, began;
    atomic_bool cancel;
    nook_timings t;
    int64_t t_begin, t_prompt;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *nook_done_reason_str(nook_done_reason r) {
    switch (r) {
    case NOOK_DONE_NONE: return "";
    case NOOK_DONE_STOP: return "stop";
    case NOOK_DONE_LENGTH: return "length";
    case NOOK_DONE_CANCELLED: return "cancelled";
    case NOOK_DONE_ERROR: return "error";
    }
    return "";
}

nook_gen_params nook_gen_default_params(void) {
    return (nook_gen_params){
        .sampler = nook_sampler_default_params(),
        .num_predict = -1,
        .num_keep = 4,
    };
}

nook_status nook_gen_new(const nook_model *m, int n_ctx, nook_gen **out, nook_error *err) {
    if (!m || !out || n_ctx < 1) return nk_fail(err, NOOK_EINVAL, "nook_gen_new: bad arguments");
    *out = NULL;
    nook_gen *g = nk_calloc(1, sizeof *g);
    if (!g) return nk_fail(err, NOOK_ENOMEM, "out of memory");
    g->m = m;
    g->n_vocab = nook_model_n_vocab(m);
    g->n_ctx = n_ctx;
    g->work = nk_alloc_array((size_t)g->n_vocab, sizeof *g->work);
    if (!g->work) {
        nk_free(g);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    g->done = true;
    *out = g;
    return NOOK_OK;
}

/* Drops what belongs to one request only (its grammar, its stop strings, the caller's
 * callback). The buffers sized by the vocabulary or the context (sampler, text, context
 * array) stay for the next request: nook_gen_begin resets them (grow-only). */
static void end_request(nook_gen *g) {
    for (int i = 0; i < g->n_stop; i++) nk_free(g->stop[i]);
    nk_free(g->stop);
    nk_free(g->stop_len);
    nk_constrain_free(g->grammar);
    g->grammar = NULL;
    g->stop = NULL;
    g->stop_len = NULL;
    g->n_stop = 0;
    g->max_stop = 0;
    g->p.constraint = (nook_constraint){ 0 };
    g->cb = NULL;
    g->ud = NULL;
}

void nk_gen_release(nook_gen *g) {
    if (!g) return;
    end_request(g);
    g->done = true;
    g->began = false;
}

void nook_gen_free(nook_gen *g) {
    if (!g) return;
    end_request(g);
    nk_free(g->hold);
    nk_free(g->content);
    nk_free(g->thinking);
    nk_free(g->ctx);
    if (g->smp) nook_sampler_free(g->smp);
    nk_gvocab_free(g->gvocab);
    nk_free(g->work);
    nk_free(g);
}

/* Whether the prompt leaves a <think> block open (Qwen3's template with thinking on, or a
 * raw prompt ending in "<think>\n"): then the model's first words are reasoning. */
static bool prompt_opens_think(const nook_model *m, const nook_token *prompt, int n) {
    char buf[256];
    size_t len = 0;
    for (int i = n > 4 ? n - 4 : 0; i < n; i++) {
        int k = nook_token_to_piece(m, prompt[i], true, buf + len, sizeof buf - len);
        if (k < 0 || (size_t)k >= sizeof buf - len) { len = 0; continue; }
        len += (size_t)k;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\r')) len--;
    static const char tag[] = "<think>";
    return len >= sizeof tag - 1 && memcmp(buf + len - (sizeof tag - 1), tag, sizeof tag - 1) == 0;
}

nook_status nook_gen_begin(nook_gen *g, const nook_gen_params *p, const nook_token *prompt,
                           int n_prompt, bool split_thinking, nook_event_fn on_event, void *ud,
                           nook_error *err) {
    if (!g || !p || !on_event || n_prompt < 0 || (n_prompt > 0 && !prompt))
        return nk_fail(err, NOOK_EINVAL, "nook_gen_begin: bad arguments");
    if (p->num_predict < -2) return nk_fail(err, NOOK_EINVAL, "num_predict %d (must be >= -2)", p->num_predict);
    if (p->top_logprobs < 0 || p->top_logprobs > NOOK_MAX_TOP_LOGPROBS)
        return nk_fail(err, NOOK_EINVAL, "top_logprobs %d (0..%d)", p->top_logprobs, NOOK_MAX_TOP_LOGPROBS);
    if (p->num_keep < -1) return nk_fail(err, NOOK_EINVAL, "num_keep %d (must be >= -1)", p->num_keep);
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop)) return nk_fail(err, NOOK_EINVAL, "bad stop strings");
    bool constrained = (p->grammar && p->grammar[0]) || (p->format && p->format[0]);
    if (constrained && p->constraint.mask)
        return nk_fail(err, NOOK_EINVAL, "grammar/format and a custom constraint together");
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) return nk_fail(err, NOOK_EINVAL, "stop string %d is empty", i);

    /* A nook_gen serves one request after another (the scheduler keeps one per
     * sequence): everything below is reset here, and the buffers sized by the
     * vocabulary or the context are reused, not allocated again. */
    nook_sampler_params sp = p->sampler;
    if (sp.repeat_last_n < 0) sp.repeat_last_n = g->n_ctx;
    nk_constrain *grammar = NULL;
    if (constrained) {   /* compiled before anything else so a bad grammar changes nothing */
        nook_status cst = nk_constrain_vocab(g->m, &g->gvocab, err);
        if (cst == NOOK_OK) cst = nk_constrain_new(g->gvocab, p->grammar, p->format, &grammar, err);
        if (cst != NOOK_OK) return cst;
    }
    /* the sampler: reconfigured in place (validated first: bad params change nothing) */
    nook_status st = g->smp ? nk_sampler_reinit(g->smp, &sp, err) : nook_sampler_new(&sp, g->n_vocab, &g->smp, err);
    if (st != NOOK_OK) {
        nk_constrain_free(grammar);
        return st;
    }
    end_request(g);
    g->grammar = grammar;
    g->done = true;
    g->began = false;
    g->p = *p;
    if (g->grammar)
        g->p.constraint = (nook_constraint){ nk_constrain_mask, nk_constrain_accept, g->grammar };
    g->p.stop = NULL;          /* our copies below; the caller's may go away */
    g->p.grammar = g->p.format = NULL;
    g->cb = on_event;
    g->ud = ud;

    for (int i = 0; i < n_prompt; i++) nook_sampler_accept(g->smp, prompt[i]);

    /* the generation limit; -1 with shifting could run forever: Ollama bounds it at 10
     * contexts (boundedNumPredict) */
    bool may_shift = !p->no_shift && p->num_predict != -2;
    g->limit = p->num_predict >= 0 ? p->num_predict : may_shift ? 10 * (int64_t)g->n_ctx : INT64_MAX;

    /* stop strings */
    if (p->n_stop > 0) {
        g->stop = nk_calloc((size_t)p->n_stop, sizeof *g->stop);
        g->stop_len = nk_calloc((size_t)p->n_stop, sizeof *g->stop_len);
        if (!g->stop || !g->stop_len) goto oom;
        g->n_stop = p->n_stop;
        for (int i = 0; i < p->n_stop; i++) {
            size_t l = strlen(p->stop[i]);
            g->stop[i] = nk_malloc(l + 1);
            if (!g->stop[i]) goto oom;
            memcpy(g->stop[i], p->stop[i], l + 1);
            g->stop_len[i] = l;
            if (l > g->max_stop) g->max_stop = l;
        }
    } else g->max_stop = 0;
    /* text buffers and the context array: grown when this request needs more than the
     * last one had, else reused */
    size_t cap_hold = g->max_stop + 1024 + 16, cap_text = cap_hold + EV_TEXT_EXTRA;
    if (cap_hold > g->cap_hold_alloc) {
        char *h = nk_realloc(g->hold, cap_hold), *c = h ? nk_realloc(g->content, cap_text) : NULL;
        if (h) g->hold = h;
        if (c) g->content = c;
        char *t = c ? nk_realloc(g->thinking, cap_text) : NULL;
        if (!t) goto oom;
        g->thinking = t;
        g->cap_hold_alloc = cap_hold;
    }
    g->cap_hold = cap_hold;
    g->cap_text = cap_text;
    /* the context: prompt + what may be generated (at most 10 contexts' worth kept) */
    int64_t gen_cap = g->limit < 10 * (int64_t)g->n_ctx ? g->limit : 10 * (int64_t)g->n_ctx;
    if (gen_cap > (1 << 26)) gen_cap = 1 << 26;
    g->cap_ctx = (int)(n_prompt + gen_cap + 1);
    if (g->cap_ctx > g->cap_ctx_alloc) {
        nook_token *c = nk_realloc(g->ctx, (size_t)g->cap_ctx * sizeof *g->ctx);
        if (!c) goto oom;
        g->ctx = c;
        g->cap_ctx_alloc = g->cap_ctx;
    }
    if (n_prompt) memcpy(g->ctx, prompt, (size_t)n_prompt * sizeof *prompt);
    g->n_ctxt = n_prompt;
    g->n_prompt = n_prompt;
    g->prompt_has_bos = n_prompt > 0 && prompt[0] == nook_token_bos(g->m);

    g->n_hold = g->n_content = g->n_thinking = 0;
    nook_detok_init(&g->detok, g->m, false);
    g->split = split_thinking;
    bool opens = split_thinking && prompt_opens_think(g->m, prompt, n_prompt);
    nk_think_init(&g->tsp, opens);
    nk_think_init(&g->tflag, opens);
    g->n_gen = 0;
    atomic_store(&g->cancel, false);
    memset(&g->t, 0, sizeof g->t);
    g->t.load_ns = p->load_ns;
    g->t_begin = now_ns();
    g->t_prompt = 0;
    g->done = false;
    g->stop_hit = -1;
    g->began = true;
    return NOOK_OK;
oom:
    end_request(g);
    return nk_fail(err, NOOK_ENOMEM, "out of memory");
}

void nk_gen_restart_clock(nook_gen *g) {
    g->t_begin = now_ns();
}

void nook_gen_prompt_done(nook_gen *g, int n_evaluated) {
    g->t_prompt = now_ns();
    g->t.prompt_eval_count = n_evaluated;
    g->t.prompt_eval_ns = g->t_prompt - g->t_begin;
}

/* ---- events --------------------------------------------------------------------------- */

static bool send(nook_gen *g, nook_event *ev) {
    ev->content = g->content;
    ev->content_len = g->n_content;
    ev->thinking = g->thinking;
    ev->thinking_len = g->n_thinking;
    ev->split_thinking = g->split;
    bool go_on = g->cb(ev, g->ud);
    g->n_content = g->n_thinking = 0;
    return go_on;
}

/* Append to the current event's content or thinking; a full buffer goes out first as a
 * TEXT event (its callback's answer is honoured at the end of the step). */
static void append(nook_gen *g, char *buf, size_t *n, const char *s, size_t len) {
    while (len) {
        if (*n == g->cap_text) {
            nook_event ev = { .kind = NOOK_EVENT_TEXT, .id = -1, .index = g->n_gen };
            if (!send(g, &ev)) atomic_store(&g->cancel, true);
        }
        size_t k = g->cap_text - *n < len ? g->cap_text - *n : len;
        memcpy(buf + *n, s, k);
        *n += k;
        s += k;
        len -= k;
    }
}

static void sink_content(const char *s, size_t len, void *ud) {
    nook_gen *g = ud;
    append(g, g->content, &g->n_content, s, len);
}

static void sink_think(const char *s, size_t len, void *ud) {
    nook_gen *g = ud;
    append(g, g->thinking, &g->n_thinking, s, len);
}

/* Text that got past the stop matcher. */
static void release(nook_gen *g, const char *s, size_t len) {
    if (!len) return;
    if (g->split) nk_think_feed(&g->tsp, s, len, sink_think, sink_content, g);
    else sink_content(s, len, g);
}

/* ---- stop strings --------------------------------------------------------------------- */

/* Add a piece to the held text. Returns true when a stop string is complete: the text
 * before it is released and the rest dropped. Otherwise releases all but the longest
 * tail that is a proper prefix of some stop string. */
static bool stop_feed(nook_gen *g, const char *piece, size_t len) {
    if (g->n_stop == 0) {
        release(g, piece, len);
        return false;
    }
    /* the hold never exceeds max_stop - 1 bytes between calls, a piece is < 1 KiB */
    if (len > g->cap_hold - g->n_hold) len = g->cap_hold - g->n_hold;
    memcpy(g->hold + g->n_hold, piece, len);
    g->n_hold += len;
    size_t first = SIZE_MAX;
    int hit = -1;
    for (int i = 0; i < g->n_stop; i++) {
        size_t l = g->stop_len[i];
        for (size_t at = 0; at + l <= g->n_hold && at < first; at++)
            if (memcmp(g->hold + at, g->stop[i], l) == 0) { first = at; hit = i; break; }
    }
    if (first != SIZE_MAX) {
        g->stop_hit = hit;
        release(g, g->hold, first);
        g->n_hold = 0;
        return true;
    }
    size_t keep = 0;
    for (int i = 0; i < g->n_stop; i++) {
        size_t l = g->stop_len[i];
        for (size_t k = (l - 1 < g->n_hold ? l - 1 : g->n_hold); k > keep; k--)
            if (memcmp(g->hold + g->n_hold - k, g->stop[i], k) == 0) { keep = k; break; }
    }
    release(g, g->hold, g->n_hold - keep);
    memmove(g->hold, g->hold + g->n_hold - keep, keep);
    g->n_hold = keep;
    return false;
}

/* ---- log-probabilities ---------------------------------------------------------------- */

/* log(sum exp(l)) and the entropy of softmax(l), over the finite logits, in double. */
static void lse_entropy(const float *l, int n, double *lse, double *entropy) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) if (l[i] > mx) mx = l[i];
    if (!isfinite(mx)) { *lse = mx; *entropy = NAN; return; }
    double s = 0, w = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(l[i])) continue;   /* NaN and -inf carry no probability */
        double d = (double)l[i] - mx, e = exp(d);
        s += e;
        w += e * d;
    }
    *lse = mx + log(s);
    *entropy = log(s) - w / s;   /* H = -sum p log p, p = e/s, log p = d - log s */
}

/* The k largest logits, best first, ties to the lower id. */
static int top_k(const float *l, int n, nook_top_logprob *top, int k, double lse) {
    int have = 0;
    for (int i = 0; i < n && k > 0; i++) {
        double v = l[i];
        if (isnan(v)) continue;
        if (have == k && !(v > top[k - 1].logprob)) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && v > top[j - 1].logprob) { top[j] = top[j - 1]; j--; }
        top[j] = (nook_top_logprob){ i, v };
    }
    for (int i = 0; i < have; i++) top[i].logprob -= lse;
    return have;
}

/* ---- the step ------------------------------------------------------------------------- */

static void finish(nook_gen *g, nook_done_reason r, bool context_full, nook_status st, const char *msg,
                   bool stopped_by_string) {
    if (g->done) return;
    g->done = true;
    char piece[16];
    size_t pl = nook_detok_flush(&g->detok, piece, sizeof piece);
    if (!stopped_by_string) {
        /* a stop string cut the text: what follows it is dropped; otherwise the held
         * tail could not become a stop string any more, and the partial character is out */
        if (pl) stop_feed(g, piece, pl);
        release(g, g->hold, g->n_hold);
    }
    g->n_hold = 0;
    if (g->split) nk_think_finish(&g->tsp, sink_think, sink_content, g);
    int64_t end = now_ns();
    if (!g->t_prompt) nook_gen_prompt_done(g, 0);
    g->t.eval_count = g->n_gen;
    g->t.eval_ns = end - g->t_prompt;
    g->t.total_ns = end - g->t_begin + g->t.load_ns;
    nook_event ev = {
        .kind = NOOK_EVENT_DONE, .id = -1, .index = g->n_gen,
        .piece = pl ? piece : NULL, .piece_len = pl,
        .done_reason = r, .context_full = context_full, .status = st,
        .error = msg, .timings = &g->t, .context = g->ctx, .n_context = g->n_ctxt,
        .logprob = NAN, .entropy = NAN,
        .stop = stopped_by_string && g->stop_hit >= 0 ? g->stop[g->stop_hit] : NULL,
    };
    send(g, &ev);
}

void nook_gen_finish(nook_gen *g, nook_done_reason r, bool context_full, nook_status st, const char *msg) {
    if (!g || !g->began) return;
    finish(g, r, context_full, st, msg, false);
}

nook_gen_next nook_gen_step(nook_gen *g, const float *logits, nook_token *next) {
    if (g->done) return NOOK_GEN_DONE;
    if (atomic_load(&g->cancel)) {
        finish(g, NOOK_DONE_CANCELLED, false, NOOK_OK, NULL, false);
        return NOOK_GEN_DONE;
    }
    if (g->n_gen >= g->limit) {   /* num_predict 0 */
        finish(g, NOOK_DONE_LENGTH, false, NOOK_OK, NULL, false);
        return NOOK_GEN_DONE;
    }
    nook_error err = { 0 };
    const float *sample_from = logits;
    if (g->p.constraint.mask) {
        memcpy(g->work, logits, (size_t)g->n_vocab * sizeof *logits);
        if (g->p.constraint.mask(g->p.constraint.ud, g->work, g->n_vocab, &err) != NOOK_OK) {
            finish(g, NOOK_DONE_ERROR, false, err.code ? err.code : NOOK_EINVAL, err.msg, false);
            return NOOK_GEN_DONE;
        }
        sample_from = g->work;
    }
    nook_token tok = nook_sampler_sample(g->smp, sample_from);
    if (g->p.constraint.accept &&
        g->p.constraint.accept(g->p.constraint.ud, tok, &err) != NOOK_OK) {
        finish(g, NOOK_DONE_ERROR, false, err.code ? err.code : NOOK_EINVAL, err.msg, false);
        return NOOK_GEN_DONE;
    }
    if (tok < 0 || nook_token_is_eog(g->m, tok)) {
        finish(g, NOOK_DONE_STOP, false, NOOK_OK, NULL, false);
        return NOOK_GEN_DONE;
    }

    char piece[1024];
    size_t pl = nook_detok_push(&g->detok, tok, piece, sizeof piece);
    nook_event ev = { .kind = NOOK_EVENT_TOKEN, .id = tok, .index = g->n_gen,
                      .piece = piece, .piece_len = pl, .logprob = NAN, .entropy = NAN };
    if (g->p.logprobs || g->p.top_logprobs > 0) {
        double lse;
        lse_entropy(logits, g->n_vocab, &lse, &ev.entropy);
        ev.logprob = (double)logits[tok] - lse;
        ev.n_top = top_k(logits, g->n_vocab, g->top, g->p.top_logprobs, lse);
        ev.top = g->top;
    }
    if (g->split) {
        const int before = g->tflag.state;
        nk_think_feed(&g->tflag, piece, pl, NULL, NULL, NULL);
        ev.in_thinking = before == 1 || g->tflag.state == 1;   /* 1: inside <think> (chat.h) */
    }
    bool stopped = stop_feed(g, piece, pl);
    if (g->n_ctxt < g->cap_ctx) g->ctx[g->n_ctxt++] = tok;
    g->n_gen++;
    if (!stopped) {
        if (!send(g, &ev)) atomic_store(&g->cancel, true);
    } else {
        /* the text before the stop string goes out with this token */
        if (!send(g, &ev)) { /* cancelled and stopped at once: the stop wins */ }
        finish(g, NOOK_DONE_STOP, false, NOOK_OK, NULL, true);
        return NOOK_GEN_DONE;
    }
    if (atomic_load(&g->cancel)) {
        finish(g, NOOK_DONE_CANCELLED, false, NOOK_OK, NULL, false);
        return NOOK_GEN_DONE;
    }
    if (g->n_gen >= g->limit) {
        finish(g, NOOK_DONE_LENGTH, false, NOOK_OK, NULL, false);
        return NOOK_GEN_DONE;
    }
    *next = tok;
    return NOOK_GEN_DECODE;
}

void nook_gen_shifted(nook_gen *g, int n_keep, int n_discard) {
    if (!g || g->done) return;
    nook_event ev = { .kind = NOOK_EVENT_SHIFT, .id = -1, .index = g->n_gen,
                      .shift_keep = n_keep, .shift_discard = n_discard,
                      .logprob = NAN, .entropy = NAN };
    if (!send(g, &ev)) atomic_store(&g->cancel, true);
}

void nook_gen_cancel(nook_gen *g) {
    if (g) atomic_store(&g->cancel, true);
}

bool nook_gen_is_done(const nook_gen *g) { return !g || g->done; }
int nook_gen_n_generated(const nook_gen *g) { return g ? g->n_gen : 0; }
bool nook_gen_may_shift(const nook_gen *g) { return g && !g->p.no_shift && g->p.num_predict != -2; }

/* Ollama passes num_keep (default 4) to llama.cpp's --keep, which keeps BOS plus that
 * many; -1 keeps the whole prompt. llama.cpp caps it at n_ctx - 4 so a shift always
 * frees room. */
int nook_gen_shift_keep(const nook_gen *g, int n_ctx) {
    int64_t keep = g->p.num_keep < 0 ? (int64_t)g->n_prompt
                                     : (int64_t)g->p.num_keep + (g->prompt_has_bos ? 1 : 0);
    if (keep > n_ctx - 4) keep = n_ctx - 4;
    return keep < 0 ? 0 : (int)keep;
}

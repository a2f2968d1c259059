/*
 * model_sched.c: the batching scheduler (nook_sched) on stories260K, greedy.
 *  - requests submitted at once (more than the slots, prompts of different lengths,
 *    different num_predict, so sequences start and finish at different steps) give
 *    the tokens each gives alone through nook_generate on its own session;
 *  - a request cancelled mid-generation ends "cancelled" while its neighbour's output
 *    is unchanged; a queued request cancelled before it starts ends without tokens;
 *  - a full queue answers NOOK_EBUSY;
 *  - prefix reuse: the next turn (the previous answer's context + new text) decodes
 *    only what the cache does not hold (prompt_eval_count), with the same output as a
 *    fresh run; a context shift inside the scheduler matches nook_generate's;
 *  - reused generation states leak nothing: after a request with a grammar, stop
 *    strings, log-probabilities and penalties, a plain one gives what it gives alone.
 */
#include "nk_test.h"
#include "base/base.h"

#include <pthread.h>
#include <time.h>

#define MAXT 512

typedef struct job {
    int n_tok, n_done;
    nook_token ids[MAXT];
    nook_done_reason reason;
    nook_timings t;
    nook_token ctx[MAXT * 2];
    int n_ctx;
    int cancel_at_tok;          /* signal the main thread when this many tokens arrived */
    char text[4096];            /* content and thinking of every event, in order    */
    size_t n_text;
    int n_logprob_events;       /* events that carried a log-probability or top list */
} job;

static void add_text(job *j, const char *s, size_t n) {
    if (n > sizeof j->text - 1 - j->n_text) n = sizeof j->text - 1 - j->n_text;
    memcpy(j->text + j->n_text, s, n);
    j->n_text += n;
    j->text[j->n_text] = 0;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static bool on_ev(const nook_event *ev, void *ud) {
    job *j = ud;
    pthread_mutex_lock(&mu);
    if (ev->kind == NOOK_EVENT_TOKEN && j->n_tok < MAXT) j->ids[j->n_tok++] = ev->id;
    add_text(j, ev->thinking ? ev->thinking : "", ev->thinking_len);
    add_text(j, ev->content ? ev->content : "", ev->content_len);
    if (ev->kind == NOOK_EVENT_TOKEN && (ev->n_top > 0 || ev->logprob == ev->logprob)) j->n_logprob_events++;
    if (ev->kind == NOOK_EVENT_DONE) {
        j->reason = ev->done_reason;
        j->t = *ev->timings;
        j->n_ctx = ev->n_context < MAXT * 2 ? ev->n_context : MAXT * 2;
        memcpy(j->ctx, ev->context, (size_t)j->n_ctx * sizeof *j->ctx);
        j->n_done++;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return true;
}

static void wait_done(job *j) {
    pthread_mutex_lock(&mu);
    while (!j->n_done) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void wait_tokens(job *j, int n) {
    pthread_mutex_lock(&mu);
    while (j->n_tok < n && !j->n_done) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static nook_gen_params greedy(int n) {
    nook_gen_params p = nook_gen_default_params();
    p.sampler.temperature = 0;
    p.num_predict = n;
    return p;
}

static nook_prompt text_prompt(const char *t) {
    nook_prompt p = nook_prompt_default();
    p.text = t;
    p.raw = true;
    return p;
}

static nook_prompt token_prompt(const nook_token *t, int n) {
    nook_prompt p = nook_prompt_default();
    p.context = t;
    p.n_context = n;
    return p;
}

/* The same request alone, through nook_generate on a fresh one-sequence session. */
static void alone(const nook_model *m, const nook_prompt *pr, const nook_gen_params *gp, int n_ctx, job *j) {
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = 1;
    sp.n_ctx = n_ctx;
    nook_session *s = NULL;
    nook_error err = { 0 };
    memset(j, 0, sizeof *j);
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    CHECK(nook_generate(s, pr, gp, on_ev, j, &err) == NOOK_OK);
    nook_session_free(s);
}

static bool same(const job *a, const job *b) {
    return a->n_tok == b->n_tok && memcmp(a->ids, b->ids, (size_t)a->n_tok * sizeof *a->ids) == 0 &&
           a->reason == b->reason;
}

/* Exactly the same outcome: tokens, text, done reason, what was reported. */
static bool identical(const job *a, const job *b) {
    return same(a, b) && a->n_text == b->n_text && memcmp(a->text, b->text, a->n_text) == 0 &&
           a->n_logprob_events == b->n_logprob_events && a->n_ctx == b->n_ctx &&
           memcmp(a->ctx, b->ctx, (size_t)a->n_ctx * sizeof *a->ctx) == 0;
}

int main(void) {
    char path[4096];
    nk_test_fixture(path, sizeof path, "stories260K.gguf");
    nook_model *m = NULL;
    nook_error err = { 0 };
    nook_model_params mp = nook_model_default_params();
    mp.n_threads = 1;
    if (nook_model_load(path, &mp, &m, &err) != NOOK_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
    const int N_CTX = 192;
    nook_sched_params sp = nook_sched_default_params();
    sp.n_parallel = 3;
    sp.n_ctx = N_CTX;
    sp.n_batch = 24;       /* small: long prompts take several steps, interleaved with decoding */
    sp.n_threads = 1;
    nook_sched *s = NULL;
    CHECK(nook_sched_new(m, &sp, &s, &err) == NOOK_OK);

    /* 1. five requests at once into three slots: each as alone */
    nook_sched_stats st0, st1;
    const char *prompts[5] = {
        "Once upon a time",
        "The little dog ran to the park and saw a big red ball. He wanted to play with it, so he",
        "Lily",
        "One day, a girl named Sue went to the store with her mom. They bought apples, milk and bread.",
        "Tom and his friend",
    };
    const int npred[5] = { 40, 25, 60, 10, 33 };
    static job got[5], want[5];
    for (int i = 0; i < 5; i++) {
        nook_prompt pr = text_prompt(prompts[i]);
        nook_gen_params gp = greedy(npred[i]);
        CHECK(nook_sched_submit(s, &pr, &gp, on_ev, &got[i], NULL, &err) == NOOK_OK);
    }
    for (int i = 0; i < 5; i++) wait_done(&got[i]);
    nook_sched_stats_get(s, &st0);
    CHECK_MSG(st0.n_shared_steps > 10, "%llu of %llu steps held several sequences",
              (unsigned long long)st0.n_shared_steps, (unsigned long long)st0.n_steps);
    for (int i = 0; i < 5; i++) {
        nook_prompt pr = text_prompt(prompts[i]);
        nook_gen_params gp = greedy(npred[i]);
        alone(m, &pr, &gp, N_CTX, &want[i]);
        CHECK_MSG(same(&got[i], &want[i]), "request %d: %d tokens vs %d alone", i, got[i].n_tok, want[i].n_tok);
        CHECK_EQ_INT(got[i].n_done, 1);
    }

    /* 2. cancel one request mid-generation; its neighbour is unaffected */
    static job a, b, ref;
    uint64_t ida = 0;
    nook_prompt pa = text_prompt(prompts[0]), pb = text_prompt(prompts[4]);
    nook_gen_params ga = greedy(150), gb = greedy(50);
    CHECK(nook_sched_submit(s, &pa, &ga, on_ev, &a, &ida, &err) == NOOK_OK);
    CHECK(nook_sched_submit(s, &pb, &gb, on_ev, &b, NULL, &err) == NOOK_OK);
    wait_tokens(&a, 5);
    CHECK(nook_sched_cancel(s, ida));
    wait_done(&a);
    wait_done(&b);
    CHECK_EQ_INT(a.reason, NOOK_DONE_CANCELLED);
    CHECK(a.n_tok >= 5 && a.n_tok < 150);
    CHECK(!nook_sched_cancel(s, ida));   /* already done */
    alone(m, &pb, &gb, N_CTX, &ref);
    CHECK(same(&b, &ref));

    /* 3. prefix reuse: the next turn decodes only what the cache lacks */
    static job t1, t2, fresh;
    nook_prompt p1 = text_prompt(prompts[3]);
    nook_gen_params g1 = greedy(12);
    CHECK(nook_sched_submit(s, &p1, &g1, on_ev, &t1, NULL, &err) == NOOK_OK);
    wait_done(&t1);
    nook_token next[MAXT];
    int n_next = t1.n_ctx;
    memcpy(next, t1.ctx, (size_t)n_next * sizeof *next);
    nook_token more[32];
    size_t n_more = 0;
    const char *follow = " Then they went home and";
    CHECK(nook_tokenize(m, follow, strlen(follow), false, false, more, 32, &n_more, &err) == NOOK_OK);
    memcpy(next + n_next, more, n_more * sizeof *more);
    n_next += (int)n_more;
    nook_sched_stats_get(s, &st0);
    nook_prompt p2 = token_prompt(next, n_next);
    nook_gen_params g2 = greedy(20);
    CHECK(nook_sched_submit(s, &p2, &g2, on_ev, &t2, NULL, &err) == NOOK_OK);
    wait_done(&t2);
    nook_sched_stats_get(s, &st1);
    /* the cache held the first prompt and all generated tokens but the last (sampled,
     * never decoded): only that one and the follow-up text are decoded */
    CHECK_EQ_INT(t2.t.prompt_eval_count, 1 + (int)n_more);
    CHECK_EQ_INT(st1.n_reused - st0.n_reused, n_next - 1 - (int)n_more);
    alone(m, &p2, &g2, N_CTX, &fresh);
    CHECK(same(&t2, &fresh));
    CHECK_EQ_INT(fresh.t.prompt_eval_count, n_next);

    /* 4. context shift inside the scheduler: as nook_generate's */
    static job sh, sh_ref;
    nook_prompt ps = text_prompt(prompts[1]);
    nook_gen_params gs = greedy(N_CTX + 40);
    CHECK(nook_sched_submit(s, &ps, &gs, on_ev, &sh, NULL, &err) == NOOK_OK);
    wait_done(&sh);
    alone(m, &ps, &gs, N_CTX, &sh_ref);
    CHECK_MSG(same(&sh, &sh_ref), "shifted: %d tokens vs %d", sh.n_tok, sh_ref.n_tok);

    /* 4b. cancel right after submit, while the prompt is queued, being prefilled (the
     * abort hook stops the decode: it is the only work) or just prefilled: whichever
     * moment it hits, the request ends "cancelled" without tokens, and the slot's cache
     * is consistent: the same prompt afterwards gives the output it gives alone */
    {
        static nook_token longp[170];
        for (int i = 0; i < 170; i++) longp[i] = sh_ref.ids[i % (sh_ref.n_tok > 0 ? sh_ref.n_tok : 1)];
        longp[0] = nook_token_bos(m);
        nook_prompt pl = token_prompt(longp, 170);
        nook_gen_params gl = greedy(8);
        for (int rep = 0; rep < 6; rep++) {
            static job c, after, alone_ref;
            memset(&c, 0, sizeof c);
            memset(&after, 0, sizeof after);
            uint64_t idc = 0;
            CHECK(nook_sched_submit(s, &pl, &gl, on_ev, &c, &idc, &err) == NOOK_OK);
            if (rep > 0) {   /* let it get a little further each time */
                struct timespec ts = { 0, rep * 200000L };
                nanosleep(&ts, NULL);
            }
            nook_sched_cancel(s, idc);
            wait_done(&c);
            CHECK(c.reason == NOOK_DONE_CANCELLED || c.reason == NOOK_DONE_LENGTH);
            CHECK(nook_sched_submit(s, &pl, &gl, on_ev, &after, NULL, &err) == NOOK_OK);
            wait_done(&after);
            if (rep == 0) alone(m, &pl, &gl, N_CTX, &alone_ref);
            CHECK_MSG(same(&after, &alone_ref), "rep %d: after a cancel the output differs", rep);
        }
        nook_sched_stats_get(s, &st1);
        printf("decodes stopped inside by the abort hook so far: %llu\n",
               (unsigned long long)st1.n_aborted);
    }

    /* 5. errors before any event */
    nook_gen_params bad = greedy(5);
    bad.top_logprobs = 99;
    nook_prompt p0 = text_prompt("Once");
    job none = { 0 };
    CHECK(nook_sched_submit(s, &p0, &bad, on_ev, &none, NULL, &err) == NOOK_EINVAL);
    static nook_token huge[400];
    for (int i = 0; i < 400; i++) huge[i] = 100 + i % 50;
    nook_prompt ph = token_prompt(huge, 400);
    CHECK(nook_sched_submit(s, &ph, &g1, on_ev, &none, NULL, &err) == NOOK_ERANGE);
    CHECK_EQ_INT(none.n_done, 0);
    nook_sched_free(s);

    /* 6. a full queue: one slot, two waiting, the fourth is refused; cancelling a queued
     * request ends it without tokens; freeing the scheduler cancels the rest */
    sp.n_parallel = 1;
    sp.max_queue = 2;
    CHECK(nook_sched_new(m, &sp, &s, &err) == NOOK_OK);
    static job q[4];
    uint64_t qid[4] = { 0 };
    nook_gen_params glong = greedy(-1);   /* until the end of the story or 10 contexts */
    nook_status qs[4];
    for (int i = 0; i < 4; i++) qs[i] = nook_sched_submit(s, &pa, &glong, on_ev, &q[i], &qid[i], &err);
    CHECK(qs[0] == NOOK_OK && qs[1] == NOOK_OK && qs[2] == NOOK_OK);
    CHECK_EQ_INT(qs[3], NOOK_EBUSY);
    CHECK(strstr(err.msg, "queue") != NULL);
    CHECK(nook_sched_cancel(s, qid[2]));
    wait_done(&q[2]);
    CHECK_EQ_INT(q[2].reason, NOOK_DONE_CANCELLED);
    CHECK_EQ_INT(q[2].n_tok, 0);
    nook_sched_free(s);
    CHECK_EQ_INT(q[0].n_done + q[1].n_done + q[2].n_done + q[3].n_done, 3);
    CHECK(q[0].reason == NOOK_DONE_CANCELLED || q[0].reason == NOOK_DONE_STOP);

    /* 7. generation states are reused (one slot: every request gets the state the one
     * before it used): a request with a grammar, stop strings, log-probabilities,
     * penalties and a seeded sampler, then one cancelled mid-way, then plain ones; each
     * plain one gives exactly what it gives alone on a fresh state, so nothing of an
     * earlier request leaks into a later one */
    {
        sp.n_parallel = 1;
        sp.max_queue = 4;
        CHECK(nook_sched_new(m, &sp, &s, &err) == NOOK_OK);
        nook_prompt pf = text_prompt(prompts[1]);
        nook_gen_params fancy = nook_gen_default_params();
        fancy.num_predict = 30;
        fancy.sampler.temperature = 1.5f;
        fancy.sampler.seed = 7;
        fancy.sampler.repeat_penalty = 1.3f;
        fancy.sampler.repeat_last_n = -1;
        fancy.sampler.presence_penalty = 0.5f;
        const char *stops[] = { "the", "." };
        fancy.stop = stops;
        fancy.n_stop = 2;
        fancy.top_logprobs = 5;
        fancy.grammar = "root ::= [a-z ]+";
        static job jf, jc, plain[2], plain_ref[2];
        CHECK(nook_sched_submit(s, &pf, &fancy, on_ev, &jf, NULL, &err) == NOOK_OK);
        wait_done(&jf);
        CHECK(jf.n_tok > 0 && jf.n_logprob_events > 0);
        uint64_t idc = 0;
        nook_gen_params gc = greedy(150);
        gc.logprobs = true;
        CHECK(nook_sched_submit(s, &pa, &gc, on_ev, &jc, &idc, &err) == NOOK_OK);
        wait_tokens(&jc, 3);
        nook_sched_cancel(s, idc);
        wait_done(&jc);
        /* plain: greedy, and sampled with a seed (the PRNG and the penalty history
         * must start afresh) */
        nook_gen_params gplain[2] = { greedy(40), nook_gen_default_params() };
        gplain[1].num_predict = 40;
        gplain[1].sampler.seed = 11;
        gplain[1].sampler.repeat_penalty = 1.1f;
        const char *pp[2] = { prompts[1], prompts[2] };
        for (int i = 0; i < 2; i++) {
            nook_prompt pr = text_prompt(pp[i]);
            CHECK(nook_sched_submit(s, &pr, &gplain[i], on_ev, &plain[i], NULL, &err) == NOOK_OK);
            wait_done(&plain[i]);
            alone(m, &pr, &gplain[i], N_CTX, &plain_ref[i]);
            CHECK_MSG(identical(&plain[i], &plain_ref[i]), "plain request %d after reuse: %d tokens \"%s\" vs alone %d \"%s\"",
                      i, plain[i].n_tok, plain[i].text, plain_ref[i].n_tok, plain_ref[i].text);
            CHECK_EQ_INT(plain[i].n_logprob_events, 0);
        }
        /* and the fancy one again gives what it gave the first time */
        static job jf2;
        CHECK(nook_sched_submit(s, &pf, &fancy, on_ev, &jf2, NULL, &err) == NOOK_OK);
        wait_done(&jf2);
        CHECK(identical(&jf, &jf2));
        nook_sched_free(s);
    }

    nook_model_free(m);
    NK_TEST_DONE();
}

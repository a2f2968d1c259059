/*
 * model_gen.c: the generation loop (nook_generate / nook_gen) on stories260K.
 *  - greedy tokens equal a plain decode + argmax loop written here; the text is the
 *    detokenized tokens; log-probabilities, entropy and top-K equal a double-precision
 *    computation over the same logits;
 *  - stop strings spanning a token boundary end the text right before them, and text
 *    that only looked like the start of one is released unchanged;
 *  - num_predict, cancel from the callback, a full context without shift, and the
 *    DONE event's context and timings;
 *  - a prompt longer than the context is refused before any event;
 *  - the token loop allocates nothing (a counting allocator over a whole generation
 *    with stop strings and top-5 log-probabilities on).
 */
#include "nk_test.h"
#include "base/base.h"

#include <math.h>

#define MAXT 256

typedef struct rec {
    int n_tok, n_done, n_shift, cancel_at;
    nook_token ids[MAXT];
    double logprob[MAXT], entropy[MAXT], top0[MAXT];
    int n_top[MAXT];
    char text[8192];
    size_t n_text;
    char pieces[8192];
    size_t n_pieces;
    nook_done_reason reason;
    char stop[64];                  /* the DONE event's stop string ("" when NULL) */
    bool context_full, done_last_ok, after_done;
    nook_timings t;
    nook_token ctx[MAXT + 64];
    int n_ctx;
} rec;

static bool counting;
static long n_allocs;
static void *cnt_malloc(size_t n, void *ud) { (void)ud; if (counting) n_allocs++; return malloc(n); }
static void *cnt_realloc(void *q, size_t n, void *ud) { (void)ud; if (counting) n_allocs++; return realloc(q, n); }
static void cnt_free(void *q, void *ud) { (void)ud; free(q); }

static bool on_ev(const nook_event *ev, void *ud) {
    rec *r = ud;
    if (r->n_done) r->after_done = true;
    if (ev->content_len && r->n_text + ev->content_len < sizeof r->text) {
        memcpy(r->text + r->n_text, ev->content, ev->content_len);
        r->n_text += ev->content_len;
    }
    if (ev->kind == NOOK_EVENT_TOKEN) {
        counting = true;   /* setup is over: from the first token on, nothing may allocate */
        if (r->n_tok < MAXT) {
            r->ids[r->n_tok] = ev->id;
            r->logprob[r->n_tok] = ev->logprob;
            r->entropy[r->n_tok] = ev->entropy;
            r->n_top[r->n_tok] = ev->n_top;
            r->top0[r->n_tok] = ev->n_top ? ev->top[0].logprob : NAN;
            for (int i = 1; i < ev->n_top; i++)
                if (ev->top[i].logprob > ev->top[i - 1].logprob) r->n_top[r->n_tok] = -1;   /* unsorted */
        }
        if (r->n_pieces + ev->piece_len < sizeof r->pieces) {
            memcpy(r->pieces + r->n_pieces, ev->piece, ev->piece_len);
            r->n_pieces += ev->piece_len;
        }
        r->n_tok++;
        if (r->cancel_at && r->n_tok == r->cancel_at) return false;
    } else if (ev->kind == NOOK_EVENT_SHIFT) {
        r->n_shift++;
    } else if (ev->kind == NOOK_EVENT_DONE) {
        counting = false;
        r->n_done++;
        r->reason = ev->done_reason;
        snprintf(r->stop, sizeof r->stop, "%s", ev->stop ? ev->stop : "");
        r->context_full = ev->context_full;
        r->t = *ev->timings;
        r->n_ctx = ev->n_context < (int)NK_ARRAY_LEN(r->ctx) ? ev->n_context : (int)NK_ARRAY_LEN(r->ctx);
        memcpy(r->ctx, ev->context, (size_t)r->n_ctx * sizeof *r->ctx);
    }
    return true;
}

static nook_gen_params greedy(int n) {
    nook_gen_params p = nook_gen_default_params();
    p.sampler.temperature = 0;
    p.num_predict = n;
    return p;
}

static nook_status gen(nook_session *s, const char *text, const nook_gen_params *p, rec *r, nook_error *err) {
    memset(r, 0, sizeof *r);
    nook_prompt pr = nook_prompt_default();
    pr.text = text;
    pr.raw = true;
    return nook_generate(s, &pr, p, on_ev, r, err);
}

int main(void) {
    char path[4096];
    nk_test_fixture(path, sizeof path, "stories260K.gguf");
    nook_model *m = NULL;
    nook_error err = { 0 };
    nook_model_params mp = nook_model_default_params();
    mp.n_threads = 1;
    if (nook_model_load(path, &mp, &m, &err) != NOOK_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
    nook_session_params sp = nook_session_default_params();
    sp.n_threads = 1;
    sp.n_ctx = 256;
    nook_session *s = NULL;
    CHECK(nook_session_new(m, &sp, &s, &err) == NOOK_OK);
    const int nv = nook_model_n_vocab(m);
    const char *P = "Once upon a time";

    /* the reference: decode + argmax + log-softmax in double, written out here */
    enum { N = 40 };
    nook_token ref[N];
    double ref_lp[N], ref_h[N];
    nook_token pt[16];
    size_t np = 0;
    CHECK(nook_tokenize(m, P, strlen(P), true, true, pt, 16, &np, &err) == NOOK_OK);
    nook_session_truncate(s, 0);
    CHECK(nook_session_decode(s, pt, (int)np, NULL, &err) == NOOK_OK);
    for (int i = 0; i < N; i++) {
        const float *l = nook_session_logits(s);
        int best = 0;
        double mx = l[0];
        for (int j = 1; j < nv; j++) if (l[j] > l[best]) best = j;
        mx = l[best];
        double z = 0, w = 0;
        for (int j = 0; j < nv; j++) { double e = exp(l[j] - mx); z += e; w += e * (l[j] - mx); }
        ref[i] = best;
        ref_lp[i] = (l[best] - mx) - log(z);
        ref_h[i] = log(z) - w / z;
        CHECK(nook_session_decode(s, &ref[i], 1, NULL, &err) == NOOK_OK);
    }
    char ref_text[4096] = "";
    size_t ref_len = 0;
    nook_detok d;
    nook_detok_init(&d, m, false);
    for (int i = 0; i < N; i++) ref_len += nook_detok_push(&d, ref[i], ref_text + ref_len, sizeof ref_text - ref_len);

    /* greedy run with log-probabilities, under the counting allocator */
    rec *r = calloc(1, sizeof *r);
    nook_gen_params p = greedy(N);
    p.top_logprobs = 5;
    const char *never[] = { "there was a dragon", "zzz" };   /* "there was a " occurs: held, then released */
    p.stop = never;
    p.n_stop = 2;
    nk_set_allocator(&(nk_allocator){ cnt_malloc, cnt_realloc, cnt_free, NULL });
    n_allocs = 0;
    nook_status st = gen(s, P, &p, r, &err);
    nk_set_allocator(NULL);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    CHECK_EQ_INT(n_allocs, 0);
    CHECK_EQ_INT(r->n_tok, N);
    CHECK_EQ_INT(r->n_done, 1);
    CHECK(!r->after_done);
    CHECK_EQ_INT(r->reason, NOOK_DONE_LENGTH);
    CHECK_MSG(r->stop[0] == 0, "stop [%s]", r->stop);   /* held and released, never matched */
    int same = 0;
    for (int i = 0; i < N; i++) same += r->ids[i] == ref[i];
    CHECK_EQ_INT(same, N);
    CHECK_EQ_INT(r->n_text, ref_len);
    CHECK(memcmp(r->text, ref_text, ref_len) == 0);
    CHECK(r->n_pieces == ref_len && memcmp(r->pieces, ref_text, ref_len) == 0);
    double max_lp = 0, max_h = 0;
    int top_ok = 0;
    for (int i = 0; i < N; i++) {
        max_lp = fmax(max_lp, fabs(r->logprob[i] - ref_lp[i]));
        max_h = fmax(max_h, fabs(r->entropy[i] - ref_h[i]));
        top_ok += r->n_top[i] == 5 && r->top0[i] == r->logprob[i];
    }
    CHECK_MSG(max_lp < 1e-9, "logprob differs by %g", max_lp);
    CHECK_MSG(max_h < 1e-9, "entropy differs by %g", max_h);
    CHECK_EQ_INT(top_ok, N);
    CHECK_EQ_INT(r->t.eval_count, N);
    /* the reference loop left the prompt in the cache: only its last token is decoded */
    CHECK_EQ_INT(r->t.prompt_eval_count, 1);
    CHECK(r->t.prompt_eval_ns > 0 && r->t.eval_ns > 0 && r->t.total_ns >= r->t.eval_ns + r->t.prompt_eval_ns);
    CHECK_EQ_INT(r->n_ctx, (int)np + N);
    CHECK(memcmp(r->ctx, pt, np * sizeof *pt) == 0 && memcmp(r->ctx + np, ref, N * sizeof *ref) == 0);

    /* the next turn: the previous context plus new text decodes only the new part */
    {
        nook_token next[MAXT + 64];
        int n_next = r->n_ctx;
        memcpy(next, r->ctx, (size_t)n_next * sizeof *next);
        next[n_next++] = ref[0];
        nook_prompt pr = nook_prompt_default();
        pr.context = next;
        pr.n_context = n_next;
        nook_gen_params p2 = greedy(3);
        rec *r2 = calloc(1, sizeof *r2);
        CHECK(nook_generate(s, &pr, &p2, on_ev, r2, &err) == NOOK_OK);
        /* the cache held the prompt and all generated tokens but the last */
        CHECK_EQ_INT(r2->t.prompt_eval_count, 2);
        nook_session_truncate(s, 0);
        CHECK(nook_generate(s, &pr, &p2, on_ev, r2, &err) == NOOK_OK);
        CHECK_EQ_INT(r2->t.prompt_eval_count, n_next);
        free(r2);
    }

    /* a stop string across a token boundary: the end of one piece + the start of the next */
    size_t off = 0, cut = 0;
    char stop[16] = "";
    for (int i = 0; i + 1 < N && !stop[0]; i++) {
        char a[64], b[64];
        int la = nook_token_to_piece(m, ref[i], false, a, sizeof a);
        int lb = nook_token_to_piece(m, ref[i + 1], false, b, sizeof b);
        if (i > 4 && la >= 2 && lb >= 2) {
            memcpy(stop, a + la - 2, 2);
            memcpy(stop + 2, b, 2);
            cut = off + (size_t)la - 2;
        }
        off += (size_t)la;
    }
    CHECK(stop[0] != 0);
    const char *first = strstr(ref_text, stop);   /* it may occur earlier than where it was made */
    if (first) cut = (size_t)(first - ref_text);
    const char *stops[] = { "never in this story", stop };
    p = greedy(N);
    p.stop = stops;
    p.n_stop = 2;
    CHECK(gen(s, P, &p, r, &err) == NOOK_OK);
    CHECK_EQ_INT(r->reason, NOOK_DONE_STOP);
    CHECK_MSG(r->n_text == cut && memcmp(r->text, ref_text, cut) == 0, "stop '%s': got [%.*s]", stop,
              (int)r->n_text, r->text);
    CHECK_MSG(strcmp(r->stop, stop) == 0, "DONE stop [%s], want [%s]", r->stop, stop);   /* names the string that matched */

    /* cancel from the callback: the DONE event follows, reason cancelled */
    p = greedy(N);
    memset(r, 0, sizeof *r);
    r->cancel_at = 5;
    nook_prompt pr = nook_prompt_default();
    pr.text = P;
    pr.raw = true;
    CHECK(nook_generate(s, &pr, &p, on_ev, r, &err) == NOOK_OK);
    CHECK_EQ_INT(r->n_tok, 5);
    CHECK_EQ_INT(r->n_done, 1);
    CHECK_EQ_INT(r->reason, NOOK_DONE_CANCELLED);

    /* num_predict 0: nothing, reason length */
    p = greedy(0);
    CHECK(gen(s, P, &p, r, &err) == NOOK_OK);
    CHECK_EQ_INT(r->n_tok, 0);
    CHECK_EQ_INT(r->reason, NOOK_DONE_LENGTH);

    /* a full context without shift; -2 (fill the context) the same */
    nook_session *s2 = NULL;
    sp.n_ctx = 24;
    CHECK(nook_session_new(m, &sp, &s2, &err) == NOOK_OK);
    p = greedy(100);
    p.no_shift = true;
    CHECK(gen(s2, P, &p, r, &err) == NOOK_OK);
    CHECK_EQ_INT(r->reason, NOOK_DONE_LENGTH);
    CHECK(r->context_full);
    CHECK_EQ_INT(r->n_tok, 24 - (int)np + 1);   /* the last one sampled, not decoded */
    p = greedy(-2);
    CHECK(gen(s2, P, &p, r, &err) == NOOK_OK);
    CHECK(r->context_full);
    CHECK_EQ_INT(r->n_tok, 24 - (int)np + 1);
    /* with shifting: generation goes on past the context, with SHIFT events */
    p = greedy(60);
    CHECK(gen(s2, P, &p, r, &err) == NOOK_OK);
    CHECK_EQ_INT(r->n_tok, 60);
    CHECK(r->n_shift >= 2);

    /* refused before any event */
    sp.n_ctx = 3;
    nook_session *s3 = NULL;
    CHECK(nook_session_new(m, &sp, &s3, &err) == NOOK_OK);
    p = greedy(5);
    CHECK(gen(s3, P, &p, r, &err) == NOOK_ERANGE);
    CHECK(strstr(err.msg, "longer than the context (3)") != NULL);
    CHECK_EQ_INT(r->n_done + r->n_tok, 0);
    p.top_logprobs = 21;
    CHECK(gen(s, P, &p, r, &err) == NOOK_EINVAL);
    const char *empty[] = { "" };
    p = greedy(5);
    p.stop = empty;
    p.n_stop = 1;
    CHECK(gen(s, P, &p, r, &err) == NOOK_EINVAL);

    nook_session_free(s3);
    nook_session_free(s2);
    nook_session_free(s);
    nook_model_free(m);
    free(r);
    NK_TEST_DONE();
}

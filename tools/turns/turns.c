/*
 * turns: time to first token of a conversation's next turn vs its first turn, through
 * the scheduler (the server's path), to measure prefix reuse.
 *
 *   build/turns MODEL [--tokens N] [--threads T] [--reps R]
 *
 * Builds a chat of about N prompt tokens (system + alternating user/assistant turns of
 * generated English-like text, then a user question), submits it, and times submit ->
 * first token event (turn 1). Then it appends the answer and a new user message and
 * submits again (turn 2): only the new tokens should be decoded. Prints both times,
 * the prompt tokens each decoded, and the ratio. Thinking is off (think = 0) so the
 * answer is plain content.
 */
#include "nook.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct turn {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double t_submit, t_first;
    bool done;
    char answer[4096];
    size_t n_answer;
    nook_timings t;
} turn;

static bool on_ev(const nook_event *ev, void *ud) {
    turn *t = ud;
    pthread_mutex_lock(&t->mu);
    if (ev->kind == NOOK_EVENT_TOKEN && t->t_first == 0) t->t_first = now_ms();
    if (ev->content_len && t->n_answer + ev->content_len < sizeof t->answer) {
        memcpy(t->answer + t->n_answer, ev->content, ev->content_len);
        t->n_answer += ev->content_len;
    }
    if (ev->kind == NOOK_EVENT_DONE) {
        t->t = *ev->timings;
        t->done = true;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return true;
}

static int run_turn(nook_sched *s, const nook_message *msgs, int n, turn *t) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    nook_prompt pr = nook_prompt_default();
    pr.messages = msgs;
    pr.n_messages = n;
    pr.think = 0;
    nook_gen_params gp = nook_gen_default_params();
    gp.sampler.temperature = 0;
    gp.num_predict = 24;
    nook_error err = { 0 };
    t->t_submit = now_ms();
    if (nook_sched_submit(s, &pr, &gp, on_ev, t, NULL, &err) != NOOK_OK) {
        fprintf(stderr, "turns: %s\n", err.msg);
        return 1;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->done) pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* Deterministic English-like filler: sentence number k. */
static void sentence(char *out, size_t cap, unsigned k) {
    static const char *subj[] = { "The river", "A small robot", "Our neighbour", "The old library", "Every student",
                                  "The committee", "A quiet fox", "The engineer" };
    static const char *verb[] = { "remembers", "explains", "builds", "questions", "paints", "measures", "follows",
                                  "describes" };
    static const char *obj[] = { "the history of the valley", "a bridge made of glass", "why the stars move",
                                 "the price of bread in winter", "a map of forgotten roads", "the sound of rain",
                                 "how engines keep time", "a garden full of numbers" };
    snprintf(out, cap, "%s %s %s (%u). ", subj[k % 8], verb[(k / 8) % 8], obj[(k / 64 + k) % 8], k);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: turns MODEL [--tokens N] [--threads T] [--reps R]\n");
        return 2;
    }
    int target = 2000, threads = 0, reps = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens")) target = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    nook_model *m = NULL;
    nook_error err = { 0 };
    nook_model_params mp = nook_model_default_params();
    mp.n_threads = threads;
    if (nook_model_load(argv[1], &mp, &m, &err) != NOOK_OK) {
        fprintf(stderr, "turns: %s\n", err.msg);
        return 1;
    }
    nook_sched_params sp = nook_sched_default_params();
    sp.n_parallel = 2;
    sp.n_ctx = target + 1024;
    sp.n_threads = threads;
    nook_sched *s = NULL;
    if (nook_sched_new(m, &sp, &s, &err) != NOOK_OK) {
        fprintf(stderr, "turns: %s\n", err.msg);
        return 1;
    }
    for (int rep = 0; rep < reps; rep++) {
        /* the conversation: grow turns of ~120 tokens until the prompt reaches the target */
        enum { MAXM = 128 };
        static char text[MAXM][2048];
        nook_message msgs[MAXM + 2];
        int n = 0;
        snprintf(text[n], sizeof text[n], "You are a helpful assistant (conversation %d).", rep);
        msgs[n] = (nook_message){ "system", text[n], NULL };
        n++;
        unsigned k = (unsigned)rep * 100000u;
        int n_tok = 0;
        while (n_tok < target && n < MAXM - 1) {
            text[n][0] = 0;
            for (int j = 0; j < 6; j++) {
                char sb[256];
                sentence(sb, sizeof sb, k++);
                strncat(text[n], sb, sizeof text[n] - strlen(text[n]) - 1);
            }
            msgs[n] = (nook_message){ n % 2 ? "user" : "assistant", text[n], NULL };
            n++;
            if (n % 2 == 0) continue;   /* end on a user message */
            nook_prompt pr = nook_prompt_default();
            pr.messages = msgs;
            pr.n_messages = n;
            pr.think = 0;
            nook_token *toks = NULL;
            if (nook_prompt_tokenize(m, &pr, &toks, &n_tok, NULL, &err) != NOOK_OK) {
                fprintf(stderr, "turns: %s\n", err.msg);
                return 1;
            }
            nook_free(toks);
        }
        turn t1, t2;
        if (run_turn(s, msgs, n, &t1)) return 1;
        static char answer[4096];
        memcpy(answer, t1.answer, t1.n_answer);
        answer[t1.n_answer] = 0;
        msgs[n++] = (nook_message){ "assistant", answer, NULL };
        msgs[n++] = (nook_message){ "user", "Thank you. Can you say that again in fewer words?", NULL };
        if (run_turn(s, msgs, n, &t2)) return 1;
        double a = t1.t_first - t1.t_submit, b = t2.t_first - t2.t_submit;
        printf("{\"rep\":%d,\"prompt_tokens\":%d,\"turn1_ttft_ms\":%.1f,\"turn1_prompt_eval\":%d,"
               "\"turn2_ttft_ms\":%.1f,\"turn2_prompt_eval\":%d,\"ratio\":%.4f}\n",
               rep, n_tok, a, t1.t.prompt_eval_count, b, t2.t.prompt_eval_count, b / a);
        fflush(stdout);
    }
    nook_sched_free(s);
    nook_model_free(m);
    return 0;
}

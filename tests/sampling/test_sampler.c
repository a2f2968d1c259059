/*
 * test_sampler.c: the sampler chain on hand-made distributions: greedy, each filter's
 * keep set, the penalty arithmetic, seeding, the empirical distribution against the
 * softmax, bad logits, bad parameters, and that sampling allocates nothing.
 */
#include "nk_test.h"
#include "sampling/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

static nook_sampler *mk(nook_sampler_params p, int n_vocab) {
    nook_sampler *s = NULL;
    nook_error err;
    nook_status st = nook_sampler_new(&p, n_vocab, &s, &err);
    if (st != NOOK_OK) {
        fprintf(stderr, "nook_sampler_new: %s\n", err.msg);
        exit(1);
    }
    return s;
}

/* A filter-free chain at temperature t: every stage disabled. */
static nook_sampler_params plain(float t, uint64_t seed) {
    nook_sampler_params p = nook_sampler_default_params();
    p.temperature = t; p.top_k = 0; p.top_p = 1.0f; p.min_p = 0.0f; p.seed = seed;
    return p;
}

static uint64_t lcg_state = 12345;
static float frand(void) {   /* deterministic test data, [0, 1) */
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg_state >> 40) * 0x1.0p-24);
}

/* true if the candidate set is exactly want[0..nw) (any order) */
static bool same_set(const nook_token *ids, int n, const int *want, int nw) {
    if (n != nw) return false;
    for (int i = 0; i < nw; i++) {
        bool found = false;
        for (int j = 0; j < n; j++) if (ids[j] == want[i]) found = true;
        if (!found) return false;
    }
    return true;
}

static float prob_of(const nook_token *ids, const float *pr, int n, int tok) {
    for (int i = 0; i < n; i++) if (ids[i] == tok) return pr[i];
    return 0.0f;
}

static void test_defaults(void) {
    nook_sampler_params p = nook_sampler_default_params();
    CHECK_NEAR(p.temperature, 0.8, 1e-7);
    CHECK_EQ_INT(p.top_k, 40);
    CHECK_NEAR(p.top_p, 0.9, 1e-7);
    CHECK_NEAR(p.min_p, 0.0, 0);
    CHECK_NEAR(p.repeat_penalty, 1.0, 0);
    CHECK_EQ_INT(p.repeat_last_n, 64);
    CHECK(p.seed == NOOK_SEED_RANDOM);
}

static void test_greedy(void) {
    float l[6] = { 1.0f, 5.0f, 3.0f, 5.0f, -2.0f, 4.9f };
    nook_sampler *s = mk(plain(0.0f, 1), 6);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(nook_sampler_sample(s, l), 1);  /* tie -> lowest id */
    nook_sampler_free(s);
    nook_sampler_params p = plain(-1.0f, 1);
    s = mk(p, 6);
    CHECK_EQ_INT(nook_sampler_sample(s, l), 1);
    nook_sampler_free(s);
}

/* Greedy on vocabularies of whole 256-logit blocks and a tail (the blocked maximum):
 * the first index of the largest sanitized (NaN -> -inf, +inf -> FLT_MAX), penalized
 * logit, against a scalar scan, with junk and many ties; an all-NaN/-inf vocabulary. */
static void test_greedy_blocked(void) {
    static const int sizes[] = { 255, 256, 257, 1000, 4096, 151936 };
    bool ok = true;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        const int nv = sizes[si];
        float *l = malloc((size_t)nv * sizeof *l), *w = malloc((size_t)nv * sizeof *w);
        for (int pen = 0; pen < 2; pen++) {
            nook_sampler_params p = plain(0.0f, 1);
            p.repeat_penalty = pen ? 1.5f : 1.0f;
            nook_sampler *s = mk(p, nv);
            for (int trial = 0; trial < (nv > 5000 ? 6 : 60); trial++) {
                for (int i = 0; i < nv; i++) {
                    const float x = frand();
                    l[i] = x < 0.02f ? NAN : x < 0.03f ? -INFINITY : (float)(int)(x * 50.0f) - 20.0f;
                }
                if (trial % 3 == 1) l[(int)(frand() * nv)] = INFINITY;   /* ties FLT_MAX below */
                if (trial % 3 == 1) l[(int)(frand() * nv)] = FLT_MAX;
                if (trial % 5 == 2) l[nv - 1] = 1000.0f;                 /* the best in the tail */
                for (int i = 0; i < nv; i++) {
                    const float v = isnan(l[i]) ? -INFINITY : l[i] == INFINITY ? FLT_MAX : l[i];
                    w[i] = nk_sampler_penalized(s, i, v);
                }
                int want = 0;
                for (int i = 1; i < nv; i++) if (w[i] > w[want]) want = i;
                const nook_token got = nook_sampler_sample(s, l);   /* then remembered */
                ok = ok && got == want;
            }
            for (int i = 0; i < nv; i++) l[i] = i % 2 ? NAN : -INFINITY;
            const nook_token *ids;
            const float *pr;
            ok = ok && nk_sampler_candidates(s, l, &ids, &pr) == 0;
            nook_sampler_free(s);
        }
        free(l);
        free(w);
    }
    CHECK(ok);
}

/* top-k = 1 must give the argmax at any temperature and seed */
static void test_topk1_is_greedy(void) {
    enum { NV = 1000 };
    static float l[NV];
    nook_sampler_params p = nook_sampler_default_params();
    p.top_k = 1; p.temperature = 1.5f; p.seed = 7;
    nook_sampler *s = mk(p, NV);
    nook_sampler *g = mk(plain(0.0f, 1), NV);
    int agree = 0;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < NV; i++) l[i] = frand() * 10.0f - 5.0f;
        if (nook_sampler_sample(s, l) == nook_sampler_sample(g, l)) agree++;
    }
    CHECK_EQ_INT(agree, 200);
    nook_sampler_free(s);
    nook_sampler_free(g);
}

static void test_topk_set(void) {
    float l[8] = { 0.1f, 3.0f, -1.0f, 2.0f, 2.5f, 0.0f, -4.0f, 1.0f };
    nook_sampler_params p = plain(1.0f, 3);
    p.top_k = 3;
    nook_sampler *s = mk(p, 8);
    const nook_token *ids; const float *pr;
    int n = nk_sampler_candidates(s, l, &ids, &pr);
    int want[] = { 1, 4, 3 };
    CHECK(same_set(ids, n, want, 3));
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 4 && ids[2] == 3);   /* best first */
    double z = exp(3.0) + exp(2.5) + exp(2.0);
    CHECK_NEAR(prob_of(ids, pr, n, 1), exp(3.0) / z, 1e-6);
    CHECK_NEAR(prob_of(ids, pr, n, 3), exp(2.0) / z, 1e-6);
    nook_sampler_free(s);
    /* top_k larger than the vocabulary keeps everything */
    p.top_k = 100;
    s = mk(p, 8);
    CHECK_EQ_INT(nk_sampler_candidates(s, l, &ids, &pr), 8);
    nook_sampler_free(s);
}

/* top-k against a reference full sort (logit desc, id asc) on a vocabulary with many
 * ties and some -inf/NaN: same ids in the same order */
static const float *cmp_logits;
static int cmp_ref(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    float lx = cmp_logits[x], ly = cmp_logits[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x - y;
}

static void test_topk_reference(void) {
    enum { NV = 5000 };
    static float l[NV], clean[NV];
    static int ref[NV];
    const nook_token *ids; const float *pr;
    for (int trial = 0; trial < 20; trial++) {
        int k = 1 + trial * 37 % 200;
        int nref = 0;
        for (int i = 0; i < NV; i++) {
            float x = frand();
            l[i] = x < 0.1f ? NAN : x < 0.2f ? -INFINITY : (float)(int)(x * 30.0f);  /* ties */
            clean[i] = isnan(l[i]) ? -INFINITY : l[i];
            if (clean[i] > -INFINITY) ref[nref++] = i;
        }
        cmp_logits = clean;
        qsort(ref, (size_t)nref, sizeof ref[0], cmp_ref);
        nook_sampler_params p = plain(1.0f, 1);
        p.top_k = k;
        nook_sampler *s = mk(p, NV);
        int n = nk_sampler_candidates(s, l, &ids, &pr);
        bool same = n == NK_MIN(k, nref);
        for (int i = 0; same && i < n; i++) same = ids[i] == ref[i];
        CHECK_MSG(same, "top_k %d trial %d differs from the sorted reference", k, trial);
        nook_sampler_free(s);
    }
}

/* top-p without top-k (pruned heap path) against the sorted reference: the smallest
 * best-first prefix whose probability reaches top_p */
static void test_topp_reference(void) {
    enum { NV = 3000 };
    static float l[NV];
    static int ref[NV];
    const nook_token *ids; const float *pr;
    for (int trial = 0; trial < 20; trial++) {
        float scale = 0.5f + (float)trial;          /* from flat to peaked */
        float top_p = 0.05f + 0.047f * (float)trial;
        for (int i = 0; i < NV; i++) { l[i] = frand() * scale; ref[i] = i; }
        cmp_logits = l;
        qsort(ref, NV, sizeof ref[0], cmp_ref);
        double z = 0;
        for (int i = 0; i < NV; i++) z += exp((double)l[i] - l[ref[0]]);
        double cum = 0;
        int m = 0;
        while (m < NV) { cum += exp((double)l[ref[m]] - l[ref[0]]) / z; m++; if (cum >= top_p) break; }
        nook_sampler_params p = plain(1.0f, 1);
        p.top_p = top_p;
        nook_sampler *s = mk(p, NV);
        int n = nk_sampler_candidates(s, l, &ids, &pr);
        bool same = n == m;
        for (int i = 0; same && i < n; i++) same = ids[i] == ref[i];
        CHECK_MSG(same, "top_p %g scale %g: kept %d, reference %d", (double)top_p, (double)scale, n, m);
        nook_sampler_free(s);
    }
}

/* probabilities 0.5, 0.3, 0.15, 0.05 at ids 2, 0, 3, 1 (shuffled so order is not id order) */
static void dist4(float *l) {
    l[2] = logf(0.5f); l[0] = logf(0.3f); l[3] = logf(0.15f); l[1] = logf(0.05f);
}

static void test_topp_set(void) {
    float l[4];
    dist4(l);
    const nook_token *ids; const float *pr;
    for (int k = 0; k <= 4; k += 4) {   /* k=0: the heap path; k=4: the sorted path */
        nook_sampler_params p = plain(1.0f, 3);
        p.top_k = k;
        p.top_p = 0.7f;                  /* 0.5 < 0.7 <= 0.8: {2, 0} */
        nook_sampler *s = mk(p, 4);
        int n = nk_sampler_candidates(s, l, &ids, &pr);
        int w1[] = { 2, 0 };
        CHECK_MSG(same_set(ids, n, w1, 2), "top_p 0.7 top_k %d kept %d", k, n);
        CHECK_NEAR(prob_of(ids, pr, n, 2), 0.5 / 0.8, 1e-6);
        CHECK_NEAR(prob_of(ids, pr, n, 0), 0.3 / 0.8, 1e-6);
        nook_sampler_free(s);

        p.top_p = 0.85f;                 /* 0.8 < 0.85 <= 0.95: {2, 0, 3} */
        s = mk(p, 4);
        n = nk_sampler_candidates(s, l, &ids, &pr);
        int w2[] = { 2, 0, 3 };
        CHECK(same_set(ids, n, w2, 3));
        nook_sampler_free(s);

        p.top_p = 0.3f;                  /* the best alone already reaches it */
        s = mk(p, 4);
        n = nk_sampler_candidates(s, l, &ids, &pr);
        CHECK(n == 1 && ids[0] == 2);
        CHECK_NEAR(pr[0], 1.0, 1e-6);
        nook_sampler_free(s);

        p.top_p = 0.0f;                  /* degenerate: keeps one (min_keep 1) */
        s = mk(p, 4);
        n = nk_sampler_candidates(s, l, &ids, &pr);
        CHECK(n == 1 && ids[0] == 2);
        nook_sampler_free(s);
    }
}

static void test_minp_set(void) {
    float l[4];
    dist4(l);
    const nook_token *ids; const float *pr;
    nook_sampler_params p = plain(1.0f, 3);
    p.min_p = 0.2f;                      /* floor 0.1: {2, 0, 3} */
    nook_sampler *s = mk(p, 4);
    int n = nk_sampler_candidates(s, l, &ids, &pr);
    int w1[] = { 2, 0, 3 };
    CHECK(same_set(ids, n, w1, 3));
    CHECK_NEAR(prob_of(ids, pr, n, 3), 0.15 / 0.95, 1e-6);
    nook_sampler_free(s);
    p.min_p = 0.5f;                      /* floor 0.25: {2, 0} */
    s = mk(p, 4);
    n = nk_sampler_candidates(s, l, &ids, &pr);
    int w2[] = { 2, 0 };
    CHECK(same_set(ids, n, w2, 2));
    nook_sampler_free(s);
    /* chain: top_p 0.85 keeps {2,0,3}, then min_p 0.5 leaves {2,0} */
    p.top_p = 0.85f;
    s = mk(p, 4);
    n = nk_sampler_candidates(s, l, &ids, &pr);
    CHECK(same_set(ids, n, w2, 2));
    nook_sampler_free(s);
}

static void test_temperature_probs(void) {
    float l[3] = { 1.0f, 2.0f, 0.0f };
    const nook_token *ids; const float *pr;
    nook_sampler *s = mk(plain(0.5f, 3), 3);
    int n = nk_sampler_candidates(s, l, &ids, &pr);
    double z = exp(2.0) + exp(4.0) + exp(0.0);
    CHECK_EQ_INT(n, 3);
    CHECK_NEAR(prob_of(ids, pr, n, 1), exp(4.0) / z, 1e-6);
    CHECK_NEAR(prob_of(ids, pr, n, 2), 1.0 / z, 1e-6);
    nook_sampler_free(s);
}

static void test_penalties(void) {
    nook_sampler_params p = plain(0.0f, 1);
    p.repeat_penalty = 2.0f; p.repeat_last_n = 3;
    nook_sampler *s = mk(p, 5);
    CHECK_NEAR(nk_sampler_penalized(s, 1, 4.0f), 4.0, 0);      /* nothing seen yet */
    nook_sampler_accept(s, 1);
    nook_sampler_accept(s, 2);
    nook_sampler_accept(s, 1);
    CHECK_NEAR(nk_sampler_penalized(s, 1, 4.0f), 2.0, 1e-7);   /* > 0: divided   */
    CHECK_NEAR(nk_sampler_penalized(s, 2, -2.0f), -4.0, 1e-7); /* <= 0: multiplied */
    CHECK_NEAR(nk_sampler_penalized(s, 2, 0.0f), 0.0, 0);
    CHECK_NEAR(nk_sampler_penalized(s, 3, 4.0f), 4.0, 0);      /* unseen */
    /* the chain applies it: 1 would win raw (4 > 3) but 4/2 = 2 < 3 */
    float l[5] = { 0.0f, 4.0f, 1.0f, 3.0f, -1.0f };
    CHECK_EQ_INT(nook_sampler_sample(s, l), 3);                 /* history: 2 1 3 */
    /* ring of 3: 1 is evicted after two more tokens (history 1 3 4, then 3 4 4) */
    nook_sampler_accept(s, 4);
    CHECK_NEAR(nk_sampler_penalized(s, 1, 4.0f), 2.0, 1e-7);
    nook_sampler_accept(s, 4);
    CHECK_NEAR(nk_sampler_penalized(s, 1, 4.0f), 4.0, 0);
    CHECK_EQ_INT(nook_sampler_sample(s, l), 1);
    /* reset forgets the history */
    nook_sampler_reset(s);
    CHECK_NEAR(nk_sampler_penalized(s, 3, 4.0f), 4.0, 0);
    nook_sampler_free(s);

    /* frequency and presence: logit - c*freq - presence, after the repeat penalty */
    p = plain(0.0f, 1);
    p.repeat_penalty = 1.25f; p.frequency_penalty = 0.5f; p.presence_penalty = 0.25f;
    s = mk(p, 5);
    nook_sampler_accept(s, 1);
    nook_sampler_accept(s, 1);
    nook_sampler_accept(s, 3);
    CHECK_NEAR(nk_sampler_penalized(s, 1, 5.0f), 5.0 / 1.25 - 2 * 0.5 - 0.25, 1e-6);
    CHECK_NEAR(nk_sampler_penalized(s, 3, -1.0f), -1.25 - 0.5 - 0.25, 1e-6);
    /* candidates at temperature 1 see the same numbers */
    nook_sampler_free(s);
    p.temperature = 1.0f; p.top_k = 0; p.top_p = 1.0f;
    s = mk(p, 2);
    nook_sampler_accept(s, 0);
    float l2[2] = { 2.0f, 0.0f };
    const nook_token *ids; const float *pr;
    int n = nk_sampler_candidates(s, l2, &ids, &pr);
    double a = 2.0 / 1.25 - 0.5 - 0.25;
    CHECK_NEAR(prob_of(ids, pr, n, 0), exp(a) / (exp(a) + 1.0), 1e-6);
    nook_sampler_free(s);

    /* repeat_last_n 0 disables the penalties */
    p = plain(0.0f, 1);
    p.repeat_penalty = 10.0f; p.repeat_last_n = 0;
    s = mk(p, 5);
    nook_sampler_accept(s, 1);
    CHECK_EQ_INT(nook_sampler_sample(s, l), 1);
    nook_sampler_free(s);
}

static void test_seed(void) {
    enum { NV = 50, N = 1000 };
    float l[NV];
    for (int i = 0; i < NV; i++) l[i] = frand() * 4.0f;
    nook_sampler_params p = nook_sampler_default_params();
    p.seed = 42;
    nook_sampler *a = mk(p, NV), *b = mk(p, NV);
    p.seed = 43;
    nook_sampler *c = mk(p, NV);
    static nook_token sa[N];
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < N; i++) {
        sa[i] = nook_sampler_sample(a, l);
        nook_token tb = nook_sampler_sample(b, l), tc = nook_sampler_sample(c, l);
        same_ab += sa[i] == tb;
        same_ac += sa[i] == tc;
    }
    CHECK_EQ_INT(same_ab, N);
    CHECK(same_ac < N);
    nook_sampler_reset(a);                      /* reset replays the stream */
    int replay = 0;
    for (int i = 0; i < N; i++) replay += nook_sampler_sample(a, l) == sa[i];
    CHECK_EQ_INT(replay, N);
    nook_sampler_free(a); nook_sampler_free(b); nook_sampler_free(c);

    /* uniform() stays in [0, 1) and has a sane mean */
    nook_sampler *u = mk(plain(1.0f, 9), 2);
    double sum = 0; bool in = true;
    for (int i = 0; i < 100000; i++) {
        double x = nk_sampler_uniform(u);
        in = in && x >= 0.0 && x < 1.0;
        sum += x;
    }
    CHECK(in);
    CHECK_NEAR(sum / 100000, 0.5, 0.01);
    nook_sampler_free(u);

    /* NOOK_SEED_RANDOM means "random": two such samplers almost surely differ */
    nook_sampler *r1 = mk(plain(1.0f, NOOK_SEED_RANDOM), 2), *r2 = mk(plain(1.0f, NOOK_SEED_RANDOM), 2);
    bool differ = false;
    for (int i = 0; i < 4; i++) differ = differ || nk_sampler_uniform(r1) != nk_sampler_uniform(r2);
    CHECK(differ);
    nook_sampler_free(r1); nook_sampler_free(r2);
    /* 0 is an ordinary seed: the same stream twice */
    r1 = mk(plain(1.0f, 0), 2), r2 = mk(plain(1.0f, 0), 2);
    bool same = true;
    for (int i = 0; i < 4; i++) same = same && nk_sampler_uniform(r1) == nk_sampler_uniform(r2);
    CHECK(same);
    nook_sampler_free(r1); nook_sampler_free(r2);
}

/* 20k draws at temperature t must follow softmax(l / t) */
static void check_empirical(float t, uint64_t seed) {
    enum { NV = 8, N = 20000 };
    float l[NV] = { 0.5f, 1.5f, -1.0f, 2.0f, 0.0f, 1.0f, -3.0f, 2.2f };
    double want[NV], z = 0;
    for (int i = 0; i < NV; i++) z += want[i] = exp(l[i] / t);
    int hist[NV] = { 0 };
    nook_sampler *s = mk(plain(t, seed), NV);
    for (int i = 0; i < N; i++) hist[nook_sampler_sample(s, l)]++;
    for (int i = 0; i < NV; i++) {
        double p = want[i] / z;
        double sigma = sqrt(p * (1 - p) / N);
        CHECK_MSG(fabs((double)hist[i] / N - p) <= 5 * sigma + 1e-4,
                  "t=%g token %d: %g drawn vs %g softmax", (double)t, i, (double)hist[i] / N, p);
    }
    nook_sampler_free(s);
}

static void test_empirical(void) {
    check_empirical(1.0f, 1234);
    check_empirical(0.7f, 99);
    check_empirical(2.0f, 5);
}

static void test_bad_logits(void) {
    float l[4] = { NAN, 1.0f, NAN, 2.0f };
    nook_sampler *g = mk(plain(0.0f, 1), 4);
    CHECK_EQ_INT(nook_sampler_sample(g, l), 3);
    float lnan0[4] = { NAN, -1.0f, 5.0f, NAN };   /* NaN first must not win the argmax */
    CHECK_EQ_INT(nook_sampler_sample(g, lnan0), 2);
    nook_sampler_free(g);

    nook_sampler *s = mk(plain(1.0f, 11), 4);
    bool ok = true;
    for (int i = 0; i < 2000; i++) {
        nook_token t = nook_sampler_sample(s, l);
        ok = ok && (t == 1 || t == 3);
    }
    CHECK(ok);
    float linf[4] = { 1.0f, 3.0f, INFINITY, -INFINITY };
    ok = true;
    for (int i = 0; i < 200; i++) ok = ok && nook_sampler_sample(s, linf) == 2;
    CHECK(ok);
    float lall[4] = { NAN, -INFINITY, NAN, -INFINITY };
    nook_token t = nook_sampler_sample(s, lall);
    CHECK(t >= 0 && t < 4);
    nook_sampler_free(s);

    /* random junk: never out of range, never a NaN logit, default chain */
    enum { NV = 300 };
    float r[NV];
    nook_sampler_params p = nook_sampler_default_params();
    p.seed = 77; p.repeat_penalty = 1.3f; p.min_p = 0.05f;
    s = mk(p, NV);
    ok = true;
    for (int trial = 0; trial < 3000; trial++) {
        for (int i = 0; i < NV; i++) {
            float x = frand();
            r[i] = x < 0.05f ? NAN : x < 0.07f ? -INFINITY : x < 0.071f ? INFINITY
                 : x < 0.08f ? FLT_MAX : x < 0.09f ? -FLT_MAX : (x - 0.5f) * 40.0f;
        }
        nook_token tok = nook_sampler_sample(s, r);
        ok = ok && tok >= 0 && tok < NV && !isnan(r[tok]) && r[tok] != -INFINITY;
    }
    CHECK(ok);
    nook_sampler_free(s);
}

static void test_bad_params(void) {
    nook_sampler *s = NULL;
    nook_error err;
    nook_sampler_params p = nook_sampler_default_params();
    CHECK_EQ_INT(nook_sampler_new(&p, 0, &s, &err), NOOK_EINVAL);
    CHECK(s == NULL);
    p.top_p = 1.5f;
    CHECK_EQ_INT(nook_sampler_new(&p, 10, &s, &err), NOOK_EINVAL);
    CHECK(strstr(err.msg, "top_p") != NULL);
    p = nook_sampler_default_params(); p.min_p = -0.1f;
    CHECK_EQ_INT(nook_sampler_new(&p, 10, &s, &err), NOOK_EINVAL);
    p = nook_sampler_default_params(); p.repeat_penalty = 0.0f;
    CHECK_EQ_INT(nook_sampler_new(&p, 10, &s, &err), NOOK_EINVAL);
    p = nook_sampler_default_params(); p.temperature = NAN;
    CHECK_EQ_INT(nook_sampler_new(&p, 10, &s, &err), NOOK_EINVAL);
    p = nook_sampler_default_params(); p.repeat_last_n = -2;
    CHECK_EQ_INT(nook_sampler_new(&p, 10, &s, &err), NOOK_EINVAL);
    p = nook_sampler_default_params(); p.repeat_last_n = -1;   /* "whole history" is fine */
    CHECK_EQ_INT(nook_sampler_new(&p, 10, &s, &err), NOOK_OK);
    nook_sampler_free(s);
    CHECK_EQ_INT(nook_sampler_new(NULL, 10, &s, &err), NOOK_OK);  /* NULL: defaults */
    nook_sampler_accept(s, -5);                                    /* ignored, no crash */
    nook_sampler_accept(s, 10);
    nook_sampler_free(s);
    nook_sampler_free(NULL);
}

/* An allocator that counts calls, to prove nook_sampler_sample allocates nothing. */
static int n_allocs;
static void *cnt_malloc(size_t n, void *ud) { (void)ud; n_allocs++; return malloc(n); }
static void *cnt_realloc(void *q, size_t n, void *ud) { (void)ud; n_allocs++; return realloc(q, n); }
static void cnt_free(void *q, void *ud) { (void)ud; free(q); }

static void test_no_alloc(void) {
    enum { NV = 151936 };     /* a Qwen-sized vocabulary */
    float *l = malloc(NV * sizeof *l);
    for (int i = 0; i < NV; i++) l[i] = frand() * 20.0f - 10.0f;
    nook_sampler_params p = nook_sampler_default_params();
    p.seed = 3; p.repeat_penalty = 1.1f;
    nook_sampler *s = mk(p, NV);
    nk_set_allocator(&(nk_allocator){ cnt_malloc, cnt_realloc, cnt_free, NULL });
    n_allocs = 0;
    for (int i = 0; i < 50; i++) {
        nook_token t = nook_sampler_sample(s, l);
        CHECK(t >= 0 && t < NV);
    }
    nook_sampler_params q = plain(1.0f, 3);
    q.top_p = 0.95f;                            /* the full-vocabulary heap path */
    nk_set_allocator(NULL);
    nook_sampler *s2 = mk(q, NV);
    nk_set_allocator(&(nk_allocator){ cnt_malloc, cnt_realloc, cnt_free, NULL });
    for (int i = 0; i < 5; i++) nook_sampler_sample(s2, l);
    nk_set_allocator(NULL);
    CHECK_EQ_INT(n_allocs, 0);
    nook_sampler_free(s);
    nook_sampler_free(s2);
    free(l);
}

int main(void) {
    test_defaults();
    test_greedy();
    test_greedy_blocked();
    test_topk1_is_greedy();
    test_topk_set();
    test_topk_reference();
    test_topp_reference();
    test_topp_set();
    test_minp_set();
    test_temperature_probs();
    test_penalties();
    test_seed();
    test_empirical();
    test_bad_logits();
    test_bad_params();
    test_no_alloc();
    NK_TEST_DONE();
}

/*
 * sampler.c: the sampler chain, in llama.cpp's order:
 *
 *   penalties (repeat, frequency, presence over the last repeat_last_n tokens)
 *   -> top-k -> top-p -> min-p -> temperature -> seeded categorical draw
 *
 * Temperature <= 0 is greedy: the argmax after the penalties (with the default
 * repeat_penalty 1.0 that is the argmax of the raw logits), ties to the lowest id.
 *
 * All buffers (n_vocab each) are allocated in nook_sampler_new; sampling allocates
 * nothing. Nothing sorts the whole vocabulary: top-k keeps a k-entry min-heap in one
 * pass over the logits; top-p without top-k builds a max-heap (O(n)) and pops it in
 * order only as far as the probability mass requires.
 *
 * Bad logits: NaN is treated as -inf (never drawn), +inf as FLT_MAX (so softmax stays
 * finite and an infinite logit simply dominates).
 */
#include "sampling/sampler.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Longest history the penalties look at when repeat_last_n is -1 ("the context"):
 * the sampler does not know the context length, so callers that do (the CLI) pass
 * it explicitly instead of -1. */
#define NK_SAMPLER_HISTORY_MAX 65536

struct nook_sampler {
    nook_sampler_params p;
    int n_vocab;

    float      *work;    /* [n_vocab] sanitized, penalized logits, indexed by id      */
    nook_token *buf_a;   /* [n_vocab] candidate ids (heap or list)                    */
    nook_token *buf_b;   /* [n_vocab] second candidate buffer, stages ping-pong       */
    float      *probs;   /* [n_vocab] probabilities of the survivors                  */
    int32_t    *count;   /* [n_vocab] occurrences of each token in the history ring   */

    nook_token *ring;    /* [ring_cap] the last tokens accepted, oldest at ring_head  */
    int ring_cap, ring_len, ring_head;
    int ring_alloc;      /* ring's allocation (>= ring_cap after a reinit)            */

    uint64_t seed;       /* resolved seed, kept so reset replays the stream */
    uint64_t rng[4];     /* xoshiro256** state                                        */
};

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna, public domain algorithms) */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void rng_seed(nook_sampler *smp) {
    uint64_t x = smp->seed;
    for (int i = 0; i < 4; i++) smp->rng[i] = splitmix64(&x);
}

double nk_sampler_uniform(nook_sampler *smp) {
    /* top 53 bits -> a double in [0, 1) with every value equally likely */
    return (double)(xoshiro_next(smp->rng) >> 11) * 0x1.0p-53;
}

/* A seed from the clock for params.seed == NOOK_SEED_RANDOM; mixed with the object's address so two
 * samplers made in the same nanosecond still differ. */
static uint64_t clock_seed(const void *salt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)(uintptr_t)salt;
    uint64_t s = splitmix64(&x);
    return s ? s : 1;
}

/* ---- construction ---------------------------------------------------------------- */

nook_sampler_params nook_sampler_default_params(void) {
    return (nook_sampler_params){
        .temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .min_p = 0.0f,
        .repeat_penalty = 1.0f, .repeat_last_n = 64,
        .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .seed = NOOK_SEED_RANDOM,
    };
}

/* Validates p (NOOK_EINVAL naming the bad field) and allocates every buffer the
 * chain needs for n_vocab tokens. The caller owns *out (nook_sampler_free). */
static nook_status check_params(const nook_sampler_params *p, nook_error *err) {
    const nook_sampler_params prm = *p;
    if (isnan(prm.temperature))
        return nk_fail(err, NOOK_EINVAL, "sampler: temperature is NaN");
    if (!(prm.top_p >= 0.0f && prm.top_p <= 1.0f))
        return nk_fail(err, NOOK_EINVAL, "sampler: top_p %g outside [0, 1]", (double)prm.top_p);
    if (!(prm.min_p >= 0.0f && prm.min_p <= 1.0f))
        return nk_fail(err, NOOK_EINVAL, "sampler: min_p %g outside [0, 1]", (double)prm.min_p);
    if (!(prm.repeat_penalty > 0.0f && isfinite(prm.repeat_penalty)))
        return nk_fail(err, NOOK_EINVAL, "sampler: repeat_penalty %g must be positive",
                       (double)prm.repeat_penalty);
    if (!isfinite(prm.presence_penalty) || !isfinite(prm.frequency_penalty))
        return nk_fail(err, NOOK_EINVAL, "sampler: presence/frequency penalties must be finite");
    if (prm.repeat_last_n < -1)
        return nk_fail(err, NOOK_EINVAL, "sampler: repeat_last_n %d (use -1, 0 or a count)",
                       prm.repeat_last_n);
    return NOOK_OK;
}

static int ring_cap_for(const nook_sampler_params *p) {
    return p->repeat_last_n > 0 ? p->repeat_last_n : p->repeat_last_n < 0 ? NK_SAMPLER_HISTORY_MAX : 0;
}

nook_status nook_sampler_new(const nook_sampler_params *p, int n_vocab,
                             nook_sampler **out, nook_error *err) {
    if (!out) return nk_fail(err, NOOK_EINVAL, "sampler: out is NULL");
    *out = NULL;
    nook_sampler_params prm = p ? *p : nook_sampler_default_params();
    if (n_vocab <= 0) return nk_fail(err, NOOK_EINVAL, "sampler: n_vocab %d must be positive", n_vocab);
    nook_status st = check_params(&prm, err);
    if (st != NOOK_OK) return st;

    nook_sampler *smp = nk_calloc(1, sizeof *smp);
    if (!smp) return nk_fail(err, NOOK_ENOMEM, "sampler: out of memory");
    smp->p = prm;
    smp->n_vocab = n_vocab;
    smp->ring_cap = smp->ring_alloc = ring_cap_for(&prm);
    smp->work  = nk_alloc_array((size_t)n_vocab, sizeof(float));
    smp->buf_a = nk_alloc_array((size_t)n_vocab, sizeof(nook_token));
    smp->buf_b = nk_alloc_array((size_t)n_vocab, sizeof(nook_token));
    smp->probs = nk_alloc_array((size_t)n_vocab, sizeof(float));
    smp->count = nk_calloc((size_t)n_vocab, sizeof(int32_t));
    smp->ring  = smp->ring_cap ? nk_alloc_array((size_t)smp->ring_cap, sizeof(nook_token)) : NULL;
    if (!smp->work || !smp->buf_a || !smp->buf_b || !smp->probs || !smp->count ||
        (smp->ring_cap && !smp->ring)) {
        nook_sampler_free(smp);
        return nk_fail(err, NOOK_ENOMEM, "sampler: out of memory for %d-token vocabulary", n_vocab);
    }
    smp->seed = prm.seed == NOOK_SEED_RANDOM ? clock_seed(smp) : prm.seed;
    rng_seed(smp);
    *out = smp;
    return NOOK_OK;
}

void nook_sampler_free(nook_sampler *smp) {
    if (!smp) return;
    nk_free(smp->work);
    nk_free(smp->buf_a);
    nk_free(smp->buf_b);
    nk_free(smp->probs);
    nk_free(smp->count);
    nk_free(smp->ring);
    nk_free(smp);
}

/* Empties the penalty history. count[t] is the number of times t is in the ring, so
 * zeroing the counts of the ring's tokens zeroes them all: O(history), not
 * O(vocabulary). */
static void clear_history(nook_sampler *smp) {
    for (int i = 0; i < smp->ring_len; i++) smp->count[smp->ring[i]] = 0;
    smp->ring_len = smp->ring_head = 0;
}

/* Forgets the history and restarts the PRNG from the same seed, so a reset sampler
 * replays exactly the sequence a fresh one with that seed would. */
void nook_sampler_reset(nook_sampler *smp) {
    if (!smp) return;
    clear_history(smp);
    rng_seed(smp);
}

nook_status nk_sampler_reinit(nook_sampler *smp, const nook_sampler_params *p, nook_error *err) {
    if (!smp || !p) return nk_fail(err, NOOK_EINVAL, "sampler: bad arguments");
    nook_status st = check_params(p, err);
    if (st != NOOK_OK) return st;
    const int cap = ring_cap_for(p);
    clear_history(smp);
    if (cap > smp->ring_alloc) {
        nook_token *r = nk_realloc(smp->ring, (size_t)cap * sizeof *r);
        if (!r) return nk_fail(err, NOOK_ENOMEM, "sampler: out of memory for a %d-token history", cap);
        smp->ring = r;
        smp->ring_alloc = cap;
    }
    smp->ring_cap = cap;
    smp->p = *p;
    smp->seed = p->seed == NOOK_SEED_RANDOM ? clock_seed(smp) : p->seed;
    rng_seed(smp);
    return NOOK_OK;
}

/* Records tok in the penalty history (ids outside the vocabulary are ignored: there
 * is no logit for them to penalize). */
void nook_sampler_accept(nook_sampler *smp, nook_token tok) {
    if (!smp || smp->ring_cap == 0 || tok < 0 || tok >= smp->n_vocab) return;
    if (smp->ring_len == smp->ring_cap) {          /* evict the oldest */
        smp->count[smp->ring[smp->ring_head]]--;
        smp->ring[smp->ring_head] = tok;
        smp->ring_head = (smp->ring_head + 1) % smp->ring_cap;
    } else {
        smp->ring[(smp->ring_head + smp->ring_len) % smp->ring_cap] = tok;
        smp->ring_len++;
    }
    smp->count[tok]++;
}

/* ---- the chain ------------------------------------------------------------------- */

static bool penalties_active(const nook_sampler *smp) {
    return smp->ring_len > 0 &&
           (smp->p.repeat_penalty != 1.0f || smp->p.frequency_penalty != 0.0f ||
            smp->p.presence_penalty != 0.0f);
}

/* llama.cpp's penalty for a token seen c > 0 times: a logit <= 0 is multiplied by the
 * repeat penalty, a positive one divided (both push it down), then frequency and
 * presence are subtracted. */
static float penalize(const nook_sampler_params *p, float l, int32_t c) {
    if (l <= 0.0f) l *= p->repeat_penalty;
    else l /= p->repeat_penalty;
    return l - (float)c * p->frequency_penalty - p->presence_penalty;
}

float nk_sampler_penalized(const nook_sampler *smp, nook_token tok, float logit) {
    if (tok < 0 || tok >= smp->n_vocab || !penalties_active(smp)) return logit;
    int32_t c = smp->count[tok];
    return c > 0 ? penalize(&smp->p, logit, c) : logit;
}

/* Each distinct token in the history is penalized once. count[] doubles as the
 * "already done" mark: it is negated after the token is handled and restored after. */
static void apply_penalties(nook_sampler *smp) {
    for (int i = 0; i < smp->ring_len; i++) {
        nook_token t = smp->ring[(smp->ring_head + i) % smp->ring_cap];
        int32_t c = smp->count[t];
        if (c <= 0) continue;
        smp->work[t] = penalize(&smp->p, smp->work[t], c);
        smp->count[t] = -c;
    }
    for (int i = 0; i < smp->ring_len; i++) {
        nook_token t = smp->ring[(smp->ring_head + i) % smp->ring_cap];
        if (smp->count[t] < 0) smp->count[t] = -smp->count[t];
    }
}

/* Candidate order: higher logit first, equal logits by lower id (deterministic). */
static inline bool before(const float *w, nook_token a, nook_token b) {
    return w[a] > w[b] || (w[a] == w[b] && a < b);
}

static void sift_down(const float *w, nook_token *h, int n, int i) {
    nook_token x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(w, h[c + 1], h[c])) c++;
        if (!before(w, h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heapify(const float *w, nook_token *h, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(w, h, n, i);
}

/* Removes and returns the best candidate of the heap h[0..*n). */
static nook_token heap_pop(const float *w, nook_token *h, int *n) {
    nook_token top = h[0];
    h[0] = h[--*n];
    if (*n > 0) sift_down(w, h, *n, 0);
    return top;
}

/* top-k in one pass: a min-heap of the k best so far (its root the worst of them), so
 * most tokens cost a single comparison against the root. Writes the survivors, best
 * first, to out and returns how many (fewer than k only if fewer are finite). heap
 * is scratch of k entries. Ties keep the lower id: a later equal logit never beats
 * the root. */
static void sift_down_worst(const float *w, nook_token *h, int n, int i) {
    nook_token x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(w, h[c], h[c + 1])) c++;     /* the worse child */
        if (!before(w, x, h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int select_top_k(const float *w, int nv, int k, nook_token *heap, nook_token *out) {
    int hn = 0;
    for (int i = 0; i < nv; i++) {
        if (w[i] == -INFINITY) continue;
        if (hn < k) {                                   /* sift up */
            int j = hn++;
            while (j > 0 && before(w, heap[(j - 1) / 2], i)) { heap[j] = heap[(j - 1) / 2]; j = (j - 1) / 2; }
            heap[j] = i;
        } else if (before(w, i, heap[0])) {
            heap[0] = i;
            sift_down_worst(w, heap, hn, 0);
        }
    }
    for (int m = hn; m > 0; m--) {                      /* pop worst first, fill from the back */
        out[m - 1] = heap[0];
        heap[0] = heap[m - 1];
        if (m - 1 > 0) sift_down_worst(w, heap, m - 1, 0);
    }
    return hn;
}

static float max_logit(const float *w, const nook_token *ids, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) if (w[ids[i]] > m) m = w[ids[i]];
    return m;
}

/* The greedy pick over logits as the chain sees them (NaN never chosen, +inf counted as
 * FLT_MAX: the values it sanitizes to): the first index of the largest, or -1 when
 * every logit is NaN or -inf. A scalar compare-and-branch loop over a 151,936-token
 * vocabulary took ~230 us per pick (thread CPU time), run once per sequence and step on
 * the batching scheduler's one thread while the decode's other threads wait: so the
 * maximum is taken 16 lanes at a time per 256-logit block (a loop the compiler turns
 * into packed max instructions; `v > m ? v : m` never takes a NaN), and only the first
 * block holding the best value is scanned for its index. */
static int argmax_sanitized(const float *x, int n) {
    enum { LANES = 16, BLK = 256 };
    float best = -INFINITY;
    int best_blk = -1, i = 0;
    for (; i + BLK <= n; i += BLK) {
        float m[LANES];
        for (int l = 0; l < LANES; l++) m[l] = -INFINITY;
        for (int j = 0; j < BLK; j += LANES)
            for (int l = 0; l < LANES; l++) {
                const float v = x[i + j + l];
                m[l] = v > m[l] ? v : m[l];
            }
        float bm = m[0];
        for (int l = 1; l < LANES; l++) bm = m[l] > bm ? m[l] : bm;
        if (bm == INFINITY) bm = FLT_MAX;   /* monotone: the block's best stays its best */
        if (bm > best) best = bm, best_blk = i;
    }
    int b = -1;
    if (best_blk >= 0)
        for (int k = best_blk; k < best_blk + BLK; k++) {
            const float v = x[k] == INFINITY ? FLT_MAX : x[k];
            if (v == best) {
                b = k;
                break;
            }
        }
    for (; i < n; i++) {
        const float v = x[i] == INFINITY ? FLT_MAX : x[i];
        if (v > best) best = v, b = i;   /* NaN: false */
    }
    return b;
}

/* w = logits with NaN -> -inf and +inf -> FLT_MAX, as a packed max and min (a NaN fails
 * `l > -inf`), 16 at a time (restrict and a fixed count let the compiler's cheapest
 * vectorizer take it): the branchy scalar form ran ~110 us on 151,936 logits. */
static void sanitize(float *restrict w, const float *restrict logits, int n) {
    enum { LANES = 16 };
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            const float x = logits[i + l], u = x > -INFINITY ? x : -INFINITY;
            w[i + l] = u < FLT_MAX ? u : FLT_MAX;
        }
    for (; i < n; i++) {
        const float x = logits[i], u = x > -INFINITY ? x : -INFINITY;
        w[i] = u < FLT_MAX ? u : FLT_MAX;
    }
}

int nk_sampler_candidates(nook_sampler *smp, const float *logits,
                          const nook_token **ids_out, const float **probs_out) {
    const nook_sampler_params *p = &smp->p;
    float *w = smp->work;
    const int nv = smp->n_vocab;

    if (p->temperature <= 0.0f && !penalties_active(smp)) {   /* greedy on the logits as they are */
        const int best = argmax_sanitized(logits, nv);
        *ids_out = smp->buf_a;
        *probs_out = smp->probs;
        if (best < 0) return 0;
        smp->buf_a[0] = best;
        smp->probs[0] = 1.0f;
        return 1;
    }
    sanitize(w, logits, nv);
    if (penalties_active(smp)) apply_penalties(smp);

    nook_token *cur = smp->buf_a, *spare = smp->buf_b;
    *ids_out = cur;
    *probs_out = smp->probs;

    if (p->temperature <= 0.0f) {                  /* greedy, penalized */
        const int best = argmax_sanitized(w, nv);
        if (best < 0) return 0;
        cur[0] = best;
        smp->probs[0] = 1.0f;
        return 1;
    }

    int n = 0;
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < nv) {
        n = select_top_k(w, nv, p->top_k, spare, cur);
        sorted = true;
    } else {
        for (int i = 0; i < nv; i++) if (w[i] > -INFINITY) cur[n++] = i;
    }
    if (n == 0) return 0;

    /* top-p (on the softmax at temperature 1, as llama.cpp): keep the smallest prefix,
     * best first, whose probability reaches top_p. Unsorted input is popped off a heap
     * only until the prefix is complete. */
    if (p->top_p < 1.0f && n > 1) {
        float mx = sorted ? w[cur[0]] : max_logit(w, cur, n);
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += exp((double)w[cur[i]] - mx);
        double cum = 0.0;
        int m = 0;
        if (sorted) {
            while (m < n) {
                cum += exp((double)w[cur[m]] - mx) / sum;
                m++;
                if (cum >= p->top_p) break;
            }
        } else {
            /* Tokens with p < (1 - top_p) / n together hold less than 1 - top_p, so the
             * rest alone reaches top_p and the prefix never gets to them: drop them
             * before the heap (with a peaked distribution that is nearly all). */
            double floor_l = (double)mx + log(sum * (1.0 - (double)p->top_p) / n);
            int kept = 0;
            for (int i = 0; i < n; i++) if ((double)w[cur[i]] >= floor_l) cur[kept++] = cur[i];
            n = kept;      /* the max passes: sum <= n, so floor_l <= mx */
            heapify(w, cur, n);
            int hn = n;
            while (hn > 0) {
                nook_token t = heap_pop(w, cur, &hn);
                spare[m++] = t;
                cum += exp((double)w[t] - mx) / sum;
                if (cum >= p->top_p) break;
            }
            nook_token *t = cur; cur = spare; spare = t;
            sorted = true;
        }
        n = m;
    }

    /* min-p: keep tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p) */
    if (p->min_p > 0.0f && n > 1) {
        float mx = sorted ? w[cur[0]] : max_logit(w, cur, n);
        float floor_l = mx + logf(p->min_p);
        int m = 0;
        for (int i = 0; i < n; i++) if (w[cur[i]] >= floor_l) cur[m++] = cur[i];
        n = m;   /* the max itself always passes, so m >= 1 */
    }

    /* temperature, then softmax over the survivors */
    float mx = sorted ? w[cur[0]] : max_logit(w, cur, n);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        float e = expf((w[cur[i]] - mx) / p->temperature);
        smp->probs[i] = e;
        sum += e;
    }
    for (int i = 0; i < n; i++) smp->probs[i] = (float)(smp->probs[i] / sum);
    *ids_out = cur;
    return n;
}

/* Runs the chain and draws one token; remembers it for the penalties. When every
 * logit is NaN or -inf there is nothing sensible to draw: token 0 is returned (always
 * inside the vocabulary) and a warning logged. */
nook_token nook_sampler_sample(nook_sampler *smp, const float *logits) {
    const nook_token *ids;
    const float *probs;
    int n = nk_sampler_candidates(smp, logits, &ids, &probs);
    nook_token tok;
    if (n == 0) {
        nk_log(NK_LOG_WARN, "sampler: every logit is NaN or -inf; returning token 0");
        tok = 0;
    } else if (n == 1) {
        tok = ids[0];
    } else {
        double u = nk_sampler_uniform(smp), cum = 0.0;
        tok = -1;
        nook_token last = ids[0];          /* rounding may leave cum a hair below u: */
        for (int i = 0; i < n; i++) {      /* then the last token that can be drawn   */
            if (probs[i] > 0.0f) last = ids[i];
            cum += probs[i];
            if (u < cum) { tok = ids[i]; break; }
        }
        if (tok < 0) tok = last;
    }
    nook_sampler_accept(smp, tok);
    return tok;
}

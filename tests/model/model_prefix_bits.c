/* model_prefix_bits: the logits of a token do not depend on how the tokens before it
 * were batched. The server serves a request partly from the prefix cache (it keeps
 * the cached tokens and decodes only the rest), so a sampled reply must be the same
 * bits whether the prompt was decoded whole, or in pieces, or its last tokens one at
 * a time; a split-decoding kernel that reduced a single token's attention in other
 * chunks than the prefill did broke exactly this (reverted in 110a8bd: the streamed
 * and unstreamed tool calls of tests/clients/structured.mjs differed).
 *
 * For stories260K and a random-weight qwen3-tiny (written by build/mkmodel at test
 * time), N > 600 tokens (several attention chunks), the logits of the last K tokens
 * must be bit-identical between (a) the N tokens in one pass, (b) N - K in one pass
 * then K decodes of one token (decoding at depth, dec_task), (c) odd-sized pieces
 * (positions cut inside attention chunks and tiles), each at 1 and 2 threads, with an
 * f16, a q8_0 and a q4_0 cache (compared within a cache type; stories260K's heads of 8
 * take no quantized cache). qwen3-tiny's heads of 64 run dec_task and the tiled prefill,
 * stories260K's the per-query path.
 */
#include "nook.h"
#include "nk_test.h"

#include <unistd.h>

#define N 650
#define K 3

/* Decode toks[from..to) into s as one batch (n_batch >= to - from), copying the
 * logits of the positions >= N - K into out[(pos - (N - K)) * n_vocab]. */
static bool decode_range(nook_session *s, const nook_token *toks, int from, int to, float *out, int n_vocab) {
    nook_batch b;
    nook_error err = { 0 };
    if (nook_batch_init(&b, to - from, &err) != NOOK_OK) return false;
    for (int p = from; p < to; p++) nook_batch_add(&b, toks[p], p, 0, p >= N - K);
    bool ok = nook_session_decode_batch(s, &b, &err) == NOOK_OK;
    CHECK_MSG(ok, "decode [%d, %d): %s", from, to, err.msg);
    for (int p = from; ok && p < to; p++)
        if (p >= N - K) memcpy(out + (size_t)(p - (N - K)) * (size_t)n_vocab, nook_session_logits_ith(s, p - from),
                               sizeof(float) * (size_t)n_vocab);
    nook_batch_free(&b);
    return ok;
}

/* mode 0: one pass; 1: N - K then one at a time; 2: odd pieces */
static bool run(const nook_model *m, const nook_token *toks, int mode, nook_kv_type kv, int threads, float *out) {
    nook_session_params sp = nook_session_default_params();
    sp.n_ctx = 1024;
    sp.n_batch = 1024;
    sp.n_threads = threads;
    sp.kv_type = kv;
    nook_session *s = NULL;
    nook_error err = { 0 };
    if (nook_session_new(m, &sp, &s, &err) != NOOK_OK) {
        /* stories260K's heads (8) are too small for a quantized cache: refused by name */
        CHECK_MSG(kv != NOOK_KV_F16 && strstr(err.msg, "multiples of 32"), "session: %s", err.msg);
        return false;
    }
    const int n_vocab = nook_model_n_vocab(m);
    bool ok = true;
    if (mode == 0) ok = decode_range(s, toks, 0, N, out, n_vocab);
    else if (mode == 1) {
        ok = decode_range(s, toks, 0, N - K, out, n_vocab);
        for (int p = N - K; ok && p < N; p++) ok = decode_range(s, toks, p, p + 1, out, n_vocab);
    } else {
        static const int pieces[] = { 1, 7, 3, 61, 5, 129, 2, 255, 13, 31, 97, 11, 1, 9 };
        for (int i = 0, p = 0; ok && p < N; i++) {
            const int n = pieces[i % (int)(sizeof pieces / sizeof pieces[0])] < N - p ? pieces[i % (int)(sizeof pieces / sizeof pieces[0])] : N - p;
            ok = decode_range(s, toks, p, p + n, out, n_vocab);
            p += n;
        }
    }
    nook_session_free(s);
    return ok;
}

static void check_model(const char *path) {
    nook_model *m = NULL;
    nook_error err = { 0 };
    nook_model_params mp = nook_model_default_params();
    if (nook_model_load(path, &mp, &m, &err) != NOOK_OK) {
        CHECK_MSG(false, "load %s: %s", path, err.msg);
        return;
    }
    const int n_vocab = nook_model_n_vocab(m);
    nook_token toks[N];
    uint32_t x = 2463534242u;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        toks[i] = (nook_token)(x % (uint32_t)(n_vocab < 4000 ? n_vocab : 4000));
    }
    const size_t sz = (size_t)K * (size_t)n_vocab;
    float *want = malloc(sizeof(float) * sz), *got = malloc(sizeof(float) * sz);
    static const nook_kv_type kvs[] = { NOOK_KV_F16, NOOK_KV_Q8_0, NOOK_KV_Q4_0 };
    static const char *const kv_name[] = { "f16", "q8_0", "q4_0" };
    for (int ki = 0; ki < 3; ki++) {
        if (!run(m, toks, 0, kvs[ki], 1, want)) break;
        for (int threads = 1; threads <= 2; threads++)
            for (int mode = 0; mode < 3; mode++) {
                if (mode == 0 && threads == 1) continue;
                memset(got, 0, sizeof(float) * sz);
                if (!run(m, toks, mode, kvs[ki], threads, got)) continue;
                int bad = 0, first = -1;
                for (size_t i = 0; i < sz; i++)
                    if (memcmp(&want[i], &got[i], sizeof(float)) != 0 && bad++ == 0) first = (int)i;
                CHECK_MSG(bad == 0, "%s, %s cache, %d thread(s), %s: %d of %zu logits differ from one pass at 1 thread (first: token %d, %g vs %g)",
                          path, kv_name[ki], threads, mode == 0 ? "one pass" : mode == 1 ? "one at a time" : "odd pieces",
                          bad, sz, first < 0 ? 0 : N - K + first / n_vocab, first < 0 ? 0.0 : (double)want[first],
                          first < 0 ? 0.0 : (double)got[first]);
            }
    }
    free(want);
    free(got);
    nook_model_free(m);
}

int main(void) {
    const char *models = getenv("NOOK_TEST_MODELS"), *bin = getenv("NOOK_BIN");
    if (!models) models = "../shared/models";
    char path[4096], dir[] = "/tmp/nook-prefix-bits-XXXXXX", gguf[4200], cmd[9000];
    snprintf(path, sizeof path, "%s/stories260K.gguf", models);
    check_model(path);
    /* a qwen3 shape (GQA, q/k norms, 151k vocabulary), random weights */
    if (!mkdtemp(dir)) {
        CHECK_MSG(false, "mkdtemp");
        NK_TEST_DONE();
    }
    snprintf(gguf, sizeof gguf, "%s/qwen3-tiny.gguf", dir);
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' qwen3-tiny Q8_0 '%s' --models '%s' --layers 2 >/dev/null", bin ? bin : "build",
             gguf, models);
    const int rc = system(cmd);
    CHECK_MSG(rc == 0, "mkmodel failed (%d): %s", rc, cmd);
    if (rc == 0) check_model(gguf);
    unlink(gguf);
    rmdir(dir);
    NK_TEST_DONE();
}

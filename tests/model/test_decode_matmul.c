/* test_decode_matmul: nk_matmul_n's decode path, where one pool run serves weights
 * of different types (each thread converts the input into every activation format
 * the run needs, or the threads share the rows of every format) and each thread streams its own contiguous range of rows, taking
 * rows from the others' ranges when its own is done. Results must equal one plain
 * single-threaded nk_matmul per weight bit for bit, whatever the thread count and
 * however the rows fall into chunks and ranges. */
#include "tensor/ops.h"
#include "nk_test.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

enum { N_IN = 512, MAX_TOK = 33, MAX_ROWS = 700 };

/* A weight of `type` with `rows` rows of N_IN random values. */
static nk_tensor make_weight(uint32_t type, int rows) {
    const nk_type_traits *tr = nk_type_get(type);
    const size_t nb1 = nk_row_size(type, N_IN);
    uint8_t *q = malloc(nb1 * (size_t)rows);
    float row[N_IN];
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < N_IN; i++) row[i] = frand();
        if (type == NK_TYPE_F32) memcpy(q + (size_t)r * nb1, row, nb1);
        else tr->from_float(row, q + (size_t)r * nb1, N_IN);
    }
    return (nk_tensor){ .name = "w", .type = type, .ne = { N_IN, rows, 1, 1 }, .nb1 = nb1, .data = q };
}

/* Weights of types[0..n) with rows[0..n) rows against n_tok tokens on 1, 2, 3 and 5
 * threads, each compared with nk_matmul(NULL) of that weight alone. */
static void check_mix(int n, const uint32_t *types, const int *rows, int n_tok) {
    static float x[MAX_TOK * N_IN];
    static float want[3][MAX_TOK * MAX_ROWS], got[3][MAX_TOK * MAX_ROWS];
    nk_tensor W[3];
    const nk_tensor *Wp[3];
    float *yp[3];
    size_t ys[3];
    size_t ws = 0;
    for (int i = 0; i < n; i++) {
        W[i] = make_weight(types[i], rows[i]);
        Wp[i] = &W[i];
        yp[i] = got[i];
        ys[i] = (size_t)rows[i];
        ws = NK_MAX(ws, nk_matmul_wsize(types[i], N_IN, n_tok));
    }
    for (int i = 0; i < n_tok * N_IN; i++) x[i] = frand();
    void *wbuf = nk_aligned_alloc(ws ? ws : 64);
    CHECK(wbuf != NULL);
    for (int i = 0; i < n; i++) nk_matmul(NULL, &W[i], x, N_IN, n_tok, want[i], (size_t)rows[i], wbuf);
    const int threads[] = { 1, 2, 3, 5 };
    for (size_t k = 0; k < NK_ARRAY_LEN(threads); k++) {
        nk_pool *p = NULL;
        CHECK_EQ_INT(nk_pool_new(threads[k], &p, NULL), NOOK_OK);
        for (int i = 0; i < n; i++) memset(got[i], 0xff, sizeof got[i]);   /* NaNs: every output must be written */
        nk_matmul_n(p, n, Wp, x, N_IN, n_tok, yp, ys, wbuf);
        for (int i = 0; i < n; i++) {
            const size_t bytes = (size_t)n_tok * (size_t)rows[i] * sizeof(float);
            CHECK_MSG(memcmp(want[i], got[i], bytes) == 0, "%d threads, %d tokens: weight %d (%s, %d rows) differs",
                      threads[k], n_tok, i, nk_type_name(types[i]), rows[i]);
        }
        nk_pool_free(p);
    }
    for (int i = 0; i < n; i++) free((void *)W[i].data);
    nk_aligned_free(wbuf);
}

int main(void) {
    nk_tensor_init();
    /* Q4_K and Q6_K read different Q8_K layouts; Q5_0 and Q8_0 share one; F32 reads x */
    const uint32_t kq[3] = { NK_TYPE_Q4_K, NK_TYPE_Q4_K, NK_TYPE_Q6_K };
    const uint32_t kq2[3] = { NK_TYPE_Q6_K, NK_TYPE_Q4_K, NK_TYPE_Q6_K };
    const uint32_t b32[3] = { NK_TYPE_Q5_0, NK_TYPE_Q5_0, NK_TYPE_Q8_0 };
    const uint32_t f32[2] = { NK_TYPE_F32, NK_TYPE_Q8_0 };
    const int rows3[3] = { 700, 130, 257 }, rows_small[3] = { 4, 12, 9 };
    /* 1-4 tokens: each thread converts every format (private); 5-9 (decode steps of
     * several sequences) and 32 with two formats: rows split between the threads, the
     * formats side by side in the scratch; 33 with two formats (66 rows): one run per
     * format */
    const int toks[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 32, 33 };
    for (size_t k = 0; k < NK_ARRAY_LEN(toks); k++) {
        const int t = toks[k];
        check_mix(3, kq, rows3, t);
        check_mix(3, kq2, rows_small, t);
        check_mix(3, b32, rows3, t);
        check_mix(2, f32, rows3, t);
        check_mix(1, kq + 2, rows3, t);
    }
    NK_TEST_DONE();
}

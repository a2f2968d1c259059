/*
 * test_attn_expf.c: the flash softmax's exponentials (nk_attn_expf, attention.c: 16
 * lanes of glibc's expf expression in double, checked against the C library at first
 * use) must give expf's bits: on a stride through every float in [-104, 0] (the
 * arguments attention forms: x - max <= 0), on inputs near float rounding midpoints'
 * neighbours (consecutive floats), at the edges (-0, tiny, -87..-104 where the result
 * goes subnormal, the underflow), -inf, NaN, and in lengths that are not multiples of 16.
 */
#include "nk_test.h"
#include "tensor/ops.h"

#include <math.h>

static int g_bad;

static void check_block(const float *x, int n) {
    float y[64];
    memcpy(y, x, sizeof(float) * (size_t)n);
    nk_attn_expf(y, n);
    for (int i = 0; i < n; i++) {
        const float w = expf(x[i]);
        if (memcmp(&w, &y[i], 4) != 0 && !(isnan(w) && isnan(y[i]))) {
            if (g_bad < 5) fprintf(stderr, "expf(%a): got %a, want %a\n", (double)x[i], (double)y[i], (double)w);
            g_bad++;
        }
    }
}

static void walk(uint32_t from, uint32_t to, uint32_t stride, int len) {
    float x[64];
    int n = 0;
    for (uint64_t b = from; b <= to; b += stride) {
        const uint32_t u = (uint32_t)b;
        memcpy(&x[n++], &u, 4);
        if (n == len) {
            check_block(x, n);
            n = 0;
        }
    }
    if (n) check_block(x, n);
}

int main(void) {
    nk_tensor_init();
    /* -0.0 (0x80000000) down to -104 (0xC2D00000): 1.1e9 floats, every 101st */
    walk(0x80000000u, 0xC2D00000u, 101, 16);
    /* runs of consecutive floats in a few places (ties and neighbours), odd lengths */
    walk(0xBF800000u, 0xBF800000u + 4000, 1, 13);   /* around -1 */
    walk(0xC0A00000u, 0xC0A00000u + 4000, 1, 37);   /* around -5 */
    walk(0xC2AE0000u, 0xC2D00000u, 7, 16);          /* -87 .. -104: subnormal results, underflow */
    walk(0x80000000u, 0x80000000u + 5000, 1, 16);   /* -0 and tiny negatives */
    walk(0x00000000u, 0x00000000u + 5000, 1, 16);   /* +0 and tiny positives */
    const float special[] = { -INFINITY, NAN, -NAN, 0.0f, -0.0f, 1.0f, 88.0f, 89.0f, INFINITY, -103.0f, -103.5f,
                              -103.97f, -200.0f, -1e30f, 0x1p-149f, -0x1p-149f, 0.5f };
    check_block(special, (int)(sizeof special / sizeof special[0]));
    CHECK_MSG(g_bad == 0, "%d exponentials differ from expf", g_bad);
    NK_TEST_DONE();
}

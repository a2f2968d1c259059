/*
 * test_swiglu.c: the AVX-512 SwiGLU and expf (arch/x86/glu_avx512.c) must give the
 * scalar bits: expf(x) equal to the C library's on a stride through every float of
 * both signs, on runs of consecutive floats, at the range edges (overflow above
 * 0x1.62e42ep6, subnormal results and the underflow below -87.3, -103.97), on
 * +-inf and NaN; nk_swiglu equal to (x / (1 + expf(-x))) * up, element for element,
 * in lengths that are not multiples of 16. NOOK_GLU_EXHAUSTIVE=1 walks all 2^32
 * floats instead of the stride (47 s of CPU here). Without AVX-512 it checks the fallback.
 */
#include "nk_test.h"
#include "tensor/ops.h"
#include "tensor/ops_gemm.h"

#include <math.h>
#include <stdlib.h>

static long g_bad_exp, g_bad_glu;

static bool same(float a, float b) {
    return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b));
}

static void check_block(const float *x, int n) {
    float y[64], g[64], up[64];
    memcpy(y, x, sizeof(float) * (size_t)n);
    const bool vec = nk_expf_avx512(y, (size_t)n);
    for (int i = 0; i < n; i++) {
        up[i] = (float)((i % 7) - 3) * 0.37f + 0.01f;
        g[i] = x[i];
    }
    nk_swiglu(g, up, (size_t)n);
    for (int i = 0; i < n; i++) {
        const float w = expf(x[i]);
        if (vec && !same(w, y[i])) {
            if (g_bad_exp < 5) fprintf(stderr, "expf(%a): got %a, want %a\n", (double)x[i], (double)y[i], (double)w);
            g_bad_exp++;
        }
        const float s = (x[i] / (1.0f + expf(-x[i]))) * up[i];
        if (!same(s, g[i])) {
            if (g_bad_glu < 5) fprintf(stderr, "swiglu(%a, %a): got %a, want %a\n", (double)x[i], (double)up[i],
                                       (double)g[i], (double)s);
            g_bad_glu++;
        }
    }
}

static void walk(uint64_t from, uint64_t to, uint64_t stride, int len) {
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
    const char *ex = getenv("NOOK_GLU_EXHAUSTIVE");
    if (ex && *ex == '1') walk(0, 0xFFFFFFFFu, 1, 64);
    else walk(0, 0xFFFFFFFFu, 1009, 16);   /* every 1009th bit pattern: 4.3 million */
    walk(0x3F800000u, 0x3F800000u + 4000, 1, 13);   /* around 1 */
    walk(0xBF800000u, 0xBF800000u + 4000, 1, 37);   /* around -1 */
    walk(0x42B17000u, 0x42B20000u, 1, 16);          /* 88.7..89: the overflow edge */
    walk(0xC2AE0000u, 0xC2D00000u, 7, 16);          /* -87 .. -104: subnormal results, underflow */
    walk(0x80000000u, 0x80000000u + 5000, 1, 16);   /* -0 and tiny negatives */
    walk(0x00000000u, 0x00000000u + 5000, 1, 16);   /* +0 and tiny positives */
    const float special[] = { -INFINITY, NAN, -NAN, 0.0f, -0.0f, 1.0f, 88.0f, 89.0f, INFINITY, -103.0f, -103.5f,
                              -103.97f, -200.0f, -1e30f, 1e30f, 0x1p-149f, -0x1p-149f, 0.5f, 0x1.62e42ep6f,
                              0x1.62e430p6f, -0x1.9fe368p6f, -0x1.9fe36ap6f };
    check_block(special, (int)(sizeof special / sizeof special[0]));
    float probe = 1.0f;
    fprintf(stderr, "vector path: %s\n", nk_expf_avx512(&probe, 1) ? "yes" : "no (scalar fallback)");
    CHECK_MSG(g_bad_exp == 0, "%ld exponentials differ from expf", g_bad_exp);
    CHECK_MSG(g_bad_glu == 0, "%ld swiglu outputs differ from the scalar loop", g_bad_glu);
    NK_TEST_DONE();
}

/*
 * test_glu.c: GeGLU's table-driven gelu (ops.c) must give exactly the bits of ggml's
 * definition (tanh gelu of the fp16-rounded input, rounded to fp16; 0 below -10, the
 * input above 10) for every fp16 value and random floats, on the scalar tail and the
 * 8-wide path alike; nk_glu on a pool must equal the single-thread result.
 */
#include "nk_test.h"
#include "tensor/ops.h"

#include <math.h>

static float gelu_def(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    const float xh = nk_fp16_to_fp32(nk_fp32_to_fp16(x));
    const float c = 0.79788456080286535587989211986876f;
    const float r = 0.5f * xh * (1.0f + tanhf(c * xh * (1.0f + 0.044715f * xh * xh)));
    return nk_fp16_to_fp32(nk_fp32_to_fp16(r));
}

int main(void) {
    nk_tensor_init();
    enum { N = 65536 + 4099 };   /* every fp16 value, then random floats; odd length */
    float *g = malloc(sizeof(float) * N), *g2 = malloc(sizeof(float) * N), *up = malloc(sizeof(float) * N);
    float *want = malloc(sizeof(float) * N);
    uint64_t s = 0x1234567;
    int n = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float x = nk_fp16_to_fp32((uint16_t)h);
        if (isfinite(x)) g[n++] = x;
    }
    while (n < N) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        g[n++] = ((float)(s >> 40) / 16777216.0f - 0.5f) * 30.0f;
    }
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        up[i] = ((float)(s >> 40) / 16777216.0f - 0.5f) * 4.0f;
        want[i] = gelu_def(g[i]) * up[i];
        g2[i] = g[i];
    }
    nk_geglu(g, up, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += memcmp(&g[i], &want[i], sizeof(float)) != 0;
    CHECK_MSG(bad == 0, "geglu: %d of %d values differ from the definition", bad, N);
    nk_pool *p = NULL;
    nk_pool_new(3, &p, NULL);
    nk_glu(p, true, g2, up, N);
    CHECK(memcmp(g, g2, sizeof(float) * N) == 0);
    nk_pool_free(p);
    free(g); free(g2); free(up); free(want);
    NK_TEST_DONE();
}

/*
 * test_rope8.c: nk_rope_apply's vector NEOX path (ops.c, rope_neox_avx2) must give the
 * scalar loop's bits: x0 * c - x1 * s and x0 * s + x1 * c per pair, in float, for
 * qwen3's shape (16 heads of 128, all rotated), a partial rotation (64 of 128), a
 * rotated half that is not a multiple of 8 (n_rot 20: the scalar loop), at several
 * positions.
 */
#include "nk_test.h"
#include "tensor/ops.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return ((float)(g_rng >> 40) / 16777216.0f - 0.5f) * 8.0f;
}

/* the scalar NEOX loop, as ops.c had it */
static void rope_ref(const float *cs, float *x, int n_head, int head_dim, int n_dims) {
    const int half = n_dims / 2;
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int i0 = 0; i0 < n_dims; i0 += 2) {
            const float c = cs[i0], s = cs[i0 + 1];
            const float x0 = v[i0 / 2], x1 = v[i0 / 2 + half];
            v[i0 / 2] = x0 * c - x1 * s;
            v[i0 / 2 + half] = x0 * s + x1 * c;
        }
    }
}

int main(void) {
    nk_tensor_init();
    const int shapes[][3] = { { 16, 128, 128 }, { 8, 128, 128 }, { 4, 128, 64 }, { 3, 24, 20 }, { 2, 10, 8 } };
    int bad = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int n_head = shapes[k][0], hd = shapes[k][1], n_rot = shapes[k][2];
        nk_rope r = { .mode = NK_ROPE_NEOX, .n_rot = n_rot, .freq_base = 1000000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f };
        static float x[16 * 128], y[16 * 128], cs[128];
        for (int pos = 0; pos < 5000; pos += 997) {
            nk_rope_cache(&r, pos, cs);
            for (int i = 0; i < n_head * hd; i++) x[i] = y[i] = frand();
            nk_rope_apply(&r, cs, x, n_head, hd);
            rope_ref(cs, y, n_head, hd, n_rot);
            if (memcmp(x, y, sizeof(float) * (size_t)(n_head * hd)) != 0) {
                if (bad < 5) fprintf(stderr, "shape %d x %d rot %d pos %d differs\n", n_head, hd, n_rot, pos);
                bad++;
            }
        }
    }
    CHECK_MSG(bad == 0, "%d rows differ from the scalar loop", bad);
    NK_TEST_DONE();
}

/*
 * test_quants.c: the block formats, pinned by hand-built blocks (every nibble and
 * high bit placed on purpose), plus quantize->dequantize error bounds, reference
 * dot products against dequantize-then-dot, and the traits table itself.
 */
#include "nk_test.h"
#include "tensor/quants.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rnd_uniform(void) { return (float)((rnd_u32() & 0xFFFFFF) + 0.5) / 16777216.0f; }
/* roughly Gaussian (sum of 4 uniforms), with an occasional outlier like real weights */
static float rnd_weight(void) {
    float g = (rnd_uniform() + rnd_uniform() + rnd_uniform() + rnd_uniform() - 2.0f) * 1.7f;
    if ((rnd_u32() & 63) == 0) g *= 4.0f;
    return g;
}

static void test_traits(void) {
    static const struct { uint32_t id; const char *name; int blck; size_t size; bool readable; } rows[] = {
        {NK_TYPE_F32, "F32", 1, 4, true},      {NK_TYPE_F16, "F16", 1, 2, true},
        {NK_TYPE_BF16, "BF16", 1, 2, true},    {NK_TYPE_Q4_0, "Q4_0", 32, 18, true},
        {NK_TYPE_Q4_1, "Q4_1", 32, 20, true},  {NK_TYPE_Q5_0, "Q5_0", 32, 22, true},
        {NK_TYPE_Q5_1, "Q5_1", 32, 24, true},  {NK_TYPE_Q8_0, "Q8_0", 32, 34, true},
        {NK_TYPE_Q8_1, "Q8_1", 32, 36, true},  {NK_TYPE_Q2_K, "Q2_K", 256, 84, true},
        {NK_TYPE_Q3_K, "Q3_K", 256, 110, true}, {NK_TYPE_Q4_K, "Q4_K", 256, 144, true},
        {NK_TYPE_Q5_K, "Q5_K", 256, 176, true}, {NK_TYPE_Q6_K, "Q6_K", 256, 210, true},
        {NK_TYPE_Q8_K, "Q8_K", 256, 292, true},
        {16, "IQ2_XXS", 256, 66, false}, {17, "IQ2_XS", 256, 74, false}, {18, "IQ3_XXS", 256, 98, false},
        {19, "IQ1_S", 256, 50, false}, {20, "IQ4_NL", 32, 18, false}, {21, "IQ3_S", 256, 110, false},
        {22, "IQ2_S", 256, 82, false}, {23, "IQ4_XS", 256, 136, false}, {29, "IQ1_M", 256, 56, false},
        {34, "TQ1_0", 256, 54, false}, {35, "TQ2_0", 256, 66, false}, {39, "MXFP4", 32, 17, false},
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(rows); i++) {
        const nk_type_traits *t = nk_type_get(rows[i].id);
        CHECK_MSG(t != NULL, "id %u", rows[i].id);
        if (!t) continue;
        CHECK_STR(t->name, rows[i].name);
        CHECK_EQ_INT(t->blck, rows[i].blck);
        CHECK_EQ_INT(t->type_size, rows[i].size);
        CHECK_EQ_INT(t->to_float != NULL, rows[i].readable);
        CHECK_EQ_INT(nk_type_from_name(rows[i].name), rows[i].id);
        CHECK_STR(nk_type_name(rows[i].id), rows[i].name);
    }
    /* every weight type nook reads has a reference dot and a quantizer for its activation */
    static const uint32_t weights[] = {NK_TYPE_F32, NK_TYPE_F16, NK_TYPE_BF16, NK_TYPE_Q4_0, NK_TYPE_Q4_1,
        NK_TYPE_Q5_0, NK_TYPE_Q5_1, NK_TYPE_Q8_0, NK_TYPE_Q2_K, NK_TYPE_Q3_K, NK_TYPE_Q4_K, NK_TYPE_Q5_K, NK_TYPE_Q6_K};
    for (size_t i = 0; i < NK_ARRAY_LEN(weights); i++) {
        const nk_type_traits *t = nk_type_get(weights[i]);
        CHECK(t->vec_dot_ref != NULL && t->vec_dot != NULL && t->from_float != NULL);
        const nk_type_traits *a = nk_type_get((uint32_t)t->vec_dot_type);
        CHECK(a && a->from_float && a->blck == t->blck);
    }
    CHECK_EQ_INT(nk_type_get(NK_TYPE_Q4_K)->vec_dot_type, NK_TYPE_Q8_K);
    CHECK_EQ_INT(nk_type_get(NK_TYPE_Q4_1)->vec_dot_type, NK_TYPE_Q8_1);
    CHECK_EQ_INT(nk_type_get(NK_TYPE_Q5_0)->vec_dot_type, NK_TYPE_Q8_0);
    CHECK(nk_type_get(4) == NULL && nk_type_get(5) == NULL && nk_type_get(31) == NULL);
    CHECK(nk_type_get(40) == NULL && nk_type_get(0xFFFFFFFFu) == NULL);
    CHECK(nk_type_name(33) == NULL);
    CHECK_EQ_INT(nk_type_from_name("q4_k"), NK_TYPE_Q4_K);
    CHECK_EQ_INT(nk_type_from_name("bf16"), NK_TYPE_BF16);
    CHECK_EQ_INT(nk_type_from_name("Q4_2"), -1);
    CHECK_EQ_INT(nk_type_from_name(""), -1);
    CHECK_EQ_INT(nk_type_from_name(NULL), -1);
    /* row sizes */
    CHECK_EQ_INT(nk_row_size(NK_TYPE_Q4_K, 4096), 16 * 144);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_Q4_0, 4096), 128 * 18);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_F16, 7), 14);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_Q4_K, 896), 0);    /* not a multiple of 256 */
    CHECK_EQ_INT(nk_row_size(NK_TYPE_Q8_0, 33), 0);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_Q8_0, -32), 0);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_Q8_0, 0), 0);
    CHECK_EQ_INT(nk_row_size(99, 32), 0);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_IQ2_XXS, 512), 132);
    CHECK_EQ_INT(nk_row_size(NK_TYPE_F64, INT64_MAX), 0);  /* overflow */
    CHECK_EQ_INT(nk_row_size(NK_TYPE_I32, (int64_t)1 << 40), (size_t)4 << 40);
}

static uint16_t h(float f) { return nk_fp32_to_fp16(f); }

static void test_q4_0_q4_1_q8_0_blocks(void) {
    nk_block_q4_0 b;
    b.d = h(0.5f);
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    nk_type_get(NK_TYPE_Q4_0)->to_float(&b, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK_EQ_INT((int)(y[j] * 2), j - 8);              /* low nibble: first half */
        CHECK_EQ_INT((int)(y[j + 16] * 2), (15 - j) - 8);  /* high nibble: second half */
    }
    nk_block_q4_1 b1;
    b1.d = h(0.25f);
    b1.m = h(-1.0f);
    for (int j = 0; j < 16; j++) b1.qs[j] = (uint8_t)(j | (3 << 4));
    nk_type_get(NK_TYPE_Q4_1)->to_float(&b1, y, 32);
    CHECK(y[0] == -1.0f && y[15] == 2.75f && y[16] == -0.25f && y[31] == -0.25f);

    nk_block_q8_0 b8;
    b8.d = h(0.125f);
    for (int j = 0; j < 32; j++) b8.qs[j] = (int8_t)(j * 8 - 128);
    nk_type_get(NK_TYPE_Q8_0)->to_float(&b8, y, 32);
    CHECK(y[0] == -16.0f && y[31] == 15.0f);

    /* quantizer: max = -8 gives d = 1; x = k - 8 lands on code k exactly */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)((j % 16) - 8);
    nk_block_q4_0 q;
    nk_quant_q4_0_ref(x, &q, 32);
    CHECK(nk_fp16_to_fp32(q.d) == 1.0f);
    for (int j = 0; j < 16; j++) CHECK_EQ_INT(q.qs[j], j | (j << 4));
    /* the positive max becomes code 0 (d negative): ggml maps max to -8 */
    for (int j = 0; j < 32; j++) x[j] = j == 5 ? 4.0f : 0.0f;
    nk_quant_q4_0_ref(x, &q, 32);
    CHECK(nk_fp16_to_fp32(q.d) == -0.5f);
    CHECK_EQ_INT(q.qs[5] & 0xF, 0);
    CHECK_EQ_INT(q.qs[0], 0x88);

    /* Q8_0 rounds half away from zero (roundf): amax 127 -> d = 1 */
    for (int j = 0; j < 32; j++) x[j] = 0;
    x[0] = 127; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.5f; x[4] = -126.5f;
    nk_block_q8_0 q8;
    nk_quant_q8_0_ref(x, &q8, 32);
    CHECK(nk_fp16_to_fp32(q8.d) == 1.0f);
    CHECK(q8.qs[0] == 127 && q8.qs[1] == 3 && q8.qs[2] == -3 && q8.qs[3] == 1 && q8.qs[4] == -127);
    /* Q8_1: s = d * sum(qs) */
    nk_block_q8_1 q81;
    nk_quant_q8_1_ref(x, &q81, 32);
    CHECK(nk_fp16_to_fp32(q81.s) == 127.0f + 3 - 3 + 1 - 127);
}

static void test_q5_blocks(void) {
    nk_block_q5_0 b;
    b.d = h(1.0f);
    for (int j = 0; j < 16; j++) b.qs[j] = 0x00;
    /* qh little-endian u32: bit e = 5th bit of element e. Set elements 0, 9, 16, 31. */
    uint32_t qh = (1u << 0) | (1u << 9) | (1u << 16) | (1u << 31);
    for (int k = 0; k < 4; k++) b.qh[k] = (uint8_t)(qh >> (8 * k));
    b.qs[9] = 0x5F;  /* element 9: 0xF|16 = 31; element 25: 5 */
    float y[32];
    nk_type_get(NK_TYPE_Q5_0)->to_float(&b, y, 32);
    CHECK(y[0] == 0.0f && y[1] == -16.0f && y[9] == 15.0f && y[25] == -11.0f);
    CHECK(y[16] == 0.0f && y[31] == 0.0f && y[30] == -16.0f);
    nk_block_q5_1 b1;
    b1.d = h(0.5f);
    b1.m = h(2.0f);
    memcpy(b1.qh, b.qh, 4);
    memcpy(b1.qs, b.qs, 16);
    nk_type_get(NK_TYPE_Q5_1)->to_float(&b1, y, 32);
    CHECK(y[0] == 10.0f && y[1] == 2.0f && y[9] == 17.5f && y[25] == 4.5f && y[31] == 10.0f);

    /* quantizer round trip on exactly representable codes: x = q - 16 with max -16 */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    nk_block_q5_0 q;
    nk_quant_q5_0_ref(x, &q, 32);
    nk_dequant_q5_0(&q, y, 32);
    for (int j = 0; j < 32; j++) CHECK_MSG(y[j] == x[j], "j=%d %g", j, y[j]);
}

/* Pack 6-bit scales and mins the way Q4_K/Q5_K store them. */
static void pack_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

static void test_q4_K_q5_K_blocks(void) {
    const uint8_t sc[8] = {1, 63, 17, 32, 5, 48, 63, 33};
    const uint8_t mn[8] = {0, 7, 63, 16, 50, 1, 31, 62};
    nk_block_q4_K b;
    pack_k4(sc, mn, b.scales);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        nk_get_scale_min_k4(j, b.scales, &s, &m);
        CHECK_EQ_INT(s, sc[j]);
        CHECK_EQ_INT(m, mn[j]);
    }
    /* hand-written bytes for sub-block 4: sc 5 (low nibble 5 in byte 8, top bits 00 in
     * byte 0), min 50 = 0b110010 (low nibble 2 in byte 8, top bits 11 in byte 4) */
    CHECK_EQ_INT(b.scales[8], 0x25);
    CHECK_EQ_INT(b.scales[4] >> 6, 3);
    b.d = h(0.5f);
    b.dmin = h(0.25f);
    for (int l = 0; l < 128; l++) b.qs[l] = (uint8_t)((l % 16) | ((15 - l % 16) << 4));
    float y[256];
    nk_type_get(NK_TYPE_Q4_K)->to_float(&b, y, 256);
    /* element e: chunk c = e/64, low half l<32 from low nibble of qs[32c+l], high half high nibble */
    for (int e = 0; e < 256; e++) {
        int c = e / 64, l = e % 64, j = e / 32;
        int q = l < 32 ? (b.qs[32 * c + l] & 0xF) : (b.qs[32 * c + l - 32] >> 4);
        float want = 0.5f * sc[j] * q - 0.25f * mn[j];
        CHECK_MSG(y[e] == want, "q4_K e=%d %g vs %g", e, y[e], want);
    }
    nk_block_q5_K b5;
    b5.d = b.d;
    b5.dmin = b.dmin;
    memcpy(b5.scales, b.scales, 12);
    memcpy(b5.qs, b.qs, 128);
    for (int l = 0; l < 32; l++) b5.qh[l] = (uint8_t)(l * 37 + 11);
    nk_type_get(NK_TYPE_Q5_K)->to_float(&b5, y, 256);
    for (int e = 0; e < 256; e++) {
        int c = e / 64, l = e % 64, j = e / 32;
        int lo = l < 32 ? (b.qs[32 * c + l] & 0xF) : (b.qs[32 * c + l - 32] >> 4);
        int bit = (b5.qh[l % 32] >> (2 * c + (l >= 32))) & 1;
        float want = 0.5f * sc[j] * (lo + 16 * bit) - 0.25f * mn[j];
        CHECK_MSG(y[e] == want, "q5_K e=%d %g vs %g", e, y[e], want);
    }
    /* element 0 of chunk 0 with qh[0] bit 0 set: (lo 0 + 16) */
    b5.qh[0] = 1;
    b5.qs[0] = 0;
    nk_dequant_q5_K(&b5, y, 256);
    CHECK(y[0] == 0.5f * 1 * 16 - 0);
}

static void test_q6_K_block(void) {
    nk_block_q6_K b;
    for (int i = 0; i < 128; i++) b.ql[i] = (uint8_t)(i * 13 + 7);
    for (int i = 0; i < 64; i++) b.qh[i] = (uint8_t)(i * 29 + 3);
    for (int i = 0; i < 16; i++) b.scales[i] = (int8_t)(i * 17 - 128);
    b.d = h(0.125f);
    float y[256];
    nk_type_get(NK_TYPE_Q6_K)->to_float(&b, y, 256);
    for (int e = 0; e < 256; e++) {
        int n = e / 128, r = e % 128, l = r % 32, g = r / 32;
        const uint8_t *ql = b.ql + 64 * n, *qh = b.qh + 32 * n;
        int low = g == 0 ? ql[l] & 0xF : g == 1 ? ql[l + 32] & 0xF : g == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
        int hi = (qh[l] >> (2 * g)) & 3;
        float want = 0.125f * b.scales[e / 16] * ((low | (hi << 4)) - 32);
        CHECK_MSG(y[e] == want, "q6_K e=%d %g vs %g", e, y[e], want);
    }
    /* one fully hand-made value: element 200 = half 1, r 72: g 2, l 8 -> high nibble of ql[64+8],
     * bits 4-5 of qh[32+8], scale[12] */
    memset(&b, 0, sizeof b);
    b.ql[72] = 0xA0;           /* low4 = 0xA */
    b.qh[40] = 0x30;           /* hi2 = 3 */
    b.scales[12] = -3;
    b.d = h(1.0f);
    nk_dequant_q6_K(&b, y, 256);
    CHECK(y[200] == -3.0f * ((0xA | 0x30) - 32));
    CHECK(y[199] == -3.0f * -32);
}

static void test_q3_K_block(void) {
    nk_block_q3_K b;
    memset(&b, 0, sizeof b);
    /* scales: s=0 -> 6-bit 0 (=-32), s=5 -> 40 (8), s=10 -> 33 (1), s=15 -> 63 (31) */
    int want_sc[16];
    for (int s = 0; s < 16; s++) want_sc[s] = ((s * 7 + 3) % 64);
    want_sc[0] = 0; want_sc[5] = 40; want_sc[10] = 33; want_sc[15] = 63;
    for (int s = 0; s < 16; s++) {
        int v = want_sc[s];
        if (s < 8) b.scales[s] |= (uint8_t)(v & 0xF);
        else b.scales[s - 8] |= (uint8_t)((v & 0xF) << 4);
        b.scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
    }
    int8_t sc[16];
    nk_q3_K_scales(b.scales, sc);
    for (int s = 0; s < 16; s++) CHECK_EQ_INT(sc[s], want_sc[s] - 32);
    for (int i = 0; i < 64; i++) b.qs[i] = (uint8_t)(i * 53 + 1);
    for (int i = 0; i < 32; i++) b.hmask[i] = (uint8_t)(i * 71 + 5);
    b.d = h(0.5f);
    float y[256];
    nk_type_get(NK_TYPE_Q3_K)->to_float(&b, y, 256);
    for (int e = 0; e < 256; e++) {
        int hh = e / 128, r = e % 128, j = r / 32, l = r % 32;
        int low = (b.qs[32 * hh + l] >> (2 * j)) & 3;
        int hbit = (b.hmask[e % 32] >> (e / 32)) & 1;
        int code = low - (hbit ? 0 : 4);
        float want = 0.5f * (float)sc[e / 16] * (float)code;
        CHECK_MSG(y[e] == want, "q3_K e=%d %g vs %g", e, y[e], want);
    }
    /* a clear high bit means negative: element 0 with low2 = 1 and hbit 0 -> code -3 */
    memset(b.hmask, 0, 32);
    b.qs[0] = 1;
    nk_dequant_q3_K(&b, y, 256);
    CHECK(y[0] == 0.5f * -32 * -3);
}

static void test_q2_K_block(void) {
    nk_block_q2_K b;
    for (int i = 0; i < 16; i++) b.scales[i] = (uint8_t)((i & 0xF) | ((15 - i) << 4));
    for (int i = 0; i < 64; i++) b.qs[i] = (uint8_t)(i * 97 + 13);
    b.d = h(0.5f);
    b.dmin = h(0.25f);
    float y[256];
    nk_type_get(NK_TYPE_Q2_K)->to_float(&b, y, 256);
    for (int e = 0; e < 256; e++) {
        int hh = e / 128, r = e % 128, j = r / 32, l = r % 32, s = e / 16;
        int q = (b.qs[32 * hh + l] >> (2 * j)) & 3;
        float want = 0.5f * (b.scales[s] & 0xF) * q - 0.25f * (b.scales[s] >> 4);
        CHECK_MSG(y[e] == want, "q2_K e=%d %g vs %g", e, y[e], want);
    }
}

static void test_q8_K(void) {
    float x[256];
    for (int j = 0; j < 256; j++) x[j] = (float)(j % 7) - 3.0f;
    x[100] = -127.0f;  /* signed max negative: iscale = 1 */
    x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f;  /* ties go to even */
    nk_block_q8_K q;
    nk_quant_q8_K_ref(x, &q, 256);
    CHECK(q.d == 1.0f);
    CHECK(q.qs[100] == -127 && q.qs[1] == 2 && q.qs[2] == 4 && q.qs[3] == -2);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int k = 0; k < 16; k++) sum += q.qs[16 * g + k];
        CHECK_EQ_INT(q.bsums[g], sum);
    }
    /* positive max: iscale = -127/max, so d is negative and the max maps to -127 */
    for (int j = 0; j < 256; j++) x[j] = 0.0f;
    x[7] = 2.0f;
    x[8] = -1.0f;
    nk_quant_q8_K_ref(x, &q, 256);
    CHECK(q.qs[7] == -127 && q.qs[8] == 64 && q.d < 0);   /* -63.5 -> 64 (even) */
    float y[256];
    nk_dequant_q8_K(&q, y, 256);
    CHECK_NEAR(y[7], 2.0f, 1e-6);
    /* all zero */
    for (int j = 0; j < 256; j++) x[j] = 0.0f;
    nk_quant_q8_K_ref(x, &q, 256);
    CHECK(q.d == 0.0f && q.qs[0] == 0 && q.bsums[15] == 0);
}

/* Relative RMSE of quantize->dequantize on n values, bounds stated per type. */
static void test_round_trips(void) {
    static const struct { uint32_t t; double max_rel_rmse; } cases[] = {
        {NK_TYPE_F16, 0.0004}, {NK_TYPE_BF16, 0.003},
        {NK_TYPE_Q8_0, 0.0085}, {NK_TYPE_Q8_1, 0.0085}, {NK_TYPE_Q8_K, 0.017},
        {NK_TYPE_Q6_K, 0.025}, {NK_TYPE_Q5_K, 0.045}, {NK_TYPE_Q5_0, 0.06}, {NK_TYPE_Q5_1, 0.05},
        {NK_TYPE_Q4_K, 0.09}, {NK_TYPE_Q4_0, 0.12}, {NK_TYPE_Q4_1, 0.10},
        {NK_TYPE_Q3_K, 0.20}, {NK_TYPE_Q2_K, 0.40},
    };
    enum { N = 256 * 32 };
    static float x[N], y[N];
    static uint8_t buf[N * 4];
    for (int i = 0; i < N; i++) x[i] = rnd_weight();
    for (size_t c = 0; c < NK_ARRAY_LEN(cases); c++) {
        const nk_type_traits *t = nk_type_get(cases[c].t);
        CHECK(nk_row_size(cases[c].t, N) <= sizeof buf);
        t->from_float_ref(x, buf, N);
        t->to_float(buf, y, N);
        double se = 0, sx = 0;
        for (int i = 0; i < N; i++) { se += (double)(x[i] - y[i]) * (x[i] - y[i]); sx += (double)x[i] * x[i]; }
        double rel = sqrt(se / sx);
        printf("round trip %-5s rel rmse %.5f (bound %.4f)\n", t->name, rel, cases[c].max_rel_rmse);
        CHECK_MSG(rel <= cases[c].max_rel_rmse, "%s rel rmse %g", t->name, rel);
        /* quantizing twice gives the same bytes (deterministic, no hidden state) */
        static uint8_t buf2[N * 4];
        t->from_float_ref(x, buf2, N);
        CHECK(memcmp(buf, buf2, nk_row_size(cases[c].t, N)) == 0);
    }
    /* all-zero and constant blocks quantize without NaN */
    for (size_t c = 0; c < NK_ARRAY_LEN(cases); c++) {
        const nk_type_traits *t = nk_type_get(cases[c].t);
        for (int i = 0; i < 512; i++) x[i] = (c & 1) ? 0.0f : 0.75f;
        t->from_float_ref(x, buf, 512);
        t->to_float(buf, y, 512);
        bool finite = true;
        double err = 0;
        for (int i = 0; i < 512; i++) { finite &= isfinite(y[i]) != 0; err = fmax(err, fabs(y[i] - x[i])); }
        CHECK_MSG(finite && err < 0.08, "%s constant block: err %g", t->name, err);
    }
}

/* The reference dot equals the double-precision dot of the dequantized rows, up to
 * float accumulation (and, for Q8_1, the fp16 rounding of its s = d*sum field). */
static void test_vec_dot_ref(void) {
    static const uint32_t types[] = {NK_TYPE_F32, NK_TYPE_F16, NK_TYPE_BF16, NK_TYPE_Q4_0, NK_TYPE_Q4_1,
        NK_TYPE_Q5_0, NK_TYPE_Q5_1, NK_TYPE_Q8_0, NK_TYPE_Q2_K, NK_TYPE_Q3_K, NK_TYPE_Q4_K, NK_TYPE_Q5_K, NK_TYPE_Q6_K};
    enum { N = 256 * 12 };
    static float x[N], y[N], xd[N], yd[N];
    static uint8_t qx[N * 4], qy[N * 4];
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < N; i++) { x[i] = rnd_weight(); y[i] = rnd_weight() * 3.0f + (rep == 2 ? 1.0f : 0.0f); }
        for (size_t k = 0; k < NK_ARRAY_LEN(types); k++) {
            const nk_type_traits *t = nk_type_get(types[k]);
            const nk_type_traits *a = nk_type_get((uint32_t)t->vec_dot_type);
            t->from_float_ref(x, qx, N);
            a->from_float_ref(y, qy, N);
            t->to_float(qx, xd, N);
            a->to_float(qy, yd, N);
            double want = 0, mag = 0;
            for (int i = 0; i < N; i++) { want += (double)xd[i] * yd[i]; mag += fabs((double)xd[i] * yd[i]); }
            float got;
            t->vec_dot_ref(N, &got, qx, qy);
            double tol = (a == nk_type_get(NK_TYPE_Q8_1) ? 2e-3 : 2e-6) * mag;
            CHECK_MSG(fabs(got - want) <= tol, "%s: %.7g vs %.7g (tol %g)", t->name, got, want, tol);
            /* and it approximates the float dot of the originals (quantization error) */
            double exact = 0;
            for (int i = 0; i < N; i++) exact += (double)x[i] * y[i];
            CHECK_MSG(fabs(got - exact) <= 0.1 * mag, "%s vs exact %.7g %.7g", t->name, got, exact);
        }
    }
}

static void test_f16_bf16_edges(void) {
    const nk_type_traits *f16 = nk_type_get(NK_TYPE_F16), *bf = nk_type_get(NK_TYPE_BF16);
    float in[8] = {65504.0f, 65520.0f, 5.9604645e-8f /* 2^-24 */, 2.9802322e-8f /* 2^-25: tie -> 0 */,
                   -0.0f, NAN, 1.0009765625f /* 1+2^-10 */, 1.00048828125f /* 1+2^-11: tie -> even */};
    uint16_t hb[8];
    f16->from_float(in, hb, 8);
    CHECK_EQ_INT(hb[0], 0x7BFF);
    CHECK_EQ_INT(hb[1], 0x7C00);   /* rounds to inf */
    CHECK_EQ_INT(hb[2], 0x0001);
    CHECK_EQ_INT(hb[3], 0x0000);
    CHECK_EQ_INT(hb[4], 0x8000);
    CHECK((hb[5] & 0x7C00) == 0x7C00 && (hb[5] & 0x3FF) != 0);
    CHECK_EQ_INT(hb[6], 0x3C01);
    CHECK_EQ_INT(hb[7], 0x3C00);
    float out[8];
    f16->to_float(hb, out, 8);
    CHECK(out[0] == 65504.0f && isinf(out[1]) && out[2] == 5.9604645e-8f && isnan(out[5]));
    CHECK(signbit(out[4]) && out[4] == 0.0f);

    float bin[5] = {1.00390625f /* 1+2^-8: tie -> 1 */, 1.01171875f /* 1+3*2^-8: tie -> up */, NAN, -INFINITY, 3.0e38f};
    uint16_t bb[5];
    bf->from_float(bin, bb, 5);
    CHECK_EQ_INT(bb[0], 0x3F80);
    CHECK_EQ_INT(bb[1], 0x3F82);
    CHECK((bb[2] & 0x7F80) == 0x7F80 && (bb[2] & 0x7F) != 0);
    CHECK_EQ_INT(bb[3], 0xFF80);
    bf->to_float(bb, out, 5);
    CHECK(out[0] == 1.0f && isnan(out[2]) && isinf(out[3]) && fabsf(out[4] - 3.0e38f) < 1e36f);
    /* F16 dot of activations rounded to fp16 */
    uint16_t a[3] = {h(1.5f), h(-2.0f), h(0.25f)}, b2[3] = {h(2.0f), h(0.5f), h(4.0f)};
    float s;
    nk_type_get(NK_TYPE_F16)->vec_dot_ref(3, &s, a, b2);
    CHECK(s == 3.0f - 1.0f + 1.0f);
}

/* Non-finite input must not crash or hit undefined conversions (UBSan watches). */
static void test_nonfinite_inputs(void) {
    static float x[512];
    static uint8_t buf[512 * 4];
    static const uint32_t types[] = {NK_TYPE_Q4_0, NK_TYPE_Q4_1, NK_TYPE_Q5_0, NK_TYPE_Q5_1, NK_TYPE_Q8_0,
        NK_TYPE_Q8_1, NK_TYPE_Q2_K, NK_TYPE_Q3_K, NK_TYPE_Q4_K, NK_TYPE_Q5_K, NK_TYPE_Q6_K, NK_TYPE_Q8_K};
    for (int i = 0; i < 512; i++) x[i] = rnd_weight();
    x[3] = INFINITY;
    x[300] = NAN;
    for (size_t k = 0; k < NK_ARRAY_LEN(types); k++) {
        const nk_type_traits *t = nk_type_get(types[k]);
        t->from_float_ref(x, buf, 512);
        t->from_float(x, buf, 512);
    }
    CHECK(1);
}

int main(void) {
    test_traits();
    test_q4_0_q4_1_q8_0_blocks();
    test_q5_blocks();
    test_q4_K_q5_K_blocks();
    test_q6_K_block();
    test_q3_K_block();
    test_q2_K_block();
    test_q8_K();
    test_round_trips();
    test_vec_dot_ref();
    test_f16_bf16_edges();
    test_nonfinite_inputs();
    /* init is idempotent and names what it installed */
    nk_tensor_init();
    nk_tensor_init();
    const char *isa = nk_tensor_isa();
    CHECK(isa && (!strcmp(isa, "reference") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512vnni") || !strcmp(isa, "neon") || !strcmp(isa, "neon-dotprod")));
    CHECK(nk_isa_supported(NK_ISA_REF) && !nk_isa_supported(NK_ISA_COUNT));
    printf("isa: %s\n", isa);
    NK_TEST_DONE();
}

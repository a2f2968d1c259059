/*
 * kernels_neon.h: the NEON integer dot-product kernels, written once and compiled
 * twice: by neon.c (baseline Armv8-A: vmull_s8 + vpadalq_s16) and by
 * neon_dotprod.c (Armv8.2-A dotprod: vdotq_s32). Not a normal header: include it
 * only from those files, after <arm_neon.h> and after defining
 *
 *   NK_TGT             the function target attribute (may be empty)
 *   NK_FN(name)        the name of a kernel in this compilation (adds a suffix)
 *   NK_DOT(acc, a, b)  int32x4_t: acc plus the 16 products a[k]*b[k] of two int8x16_t,
 *                      spread over the four lanes in some order (only lane sums, or
 *                      whole-vector scalings, are used, so the order never matters)
 *
 * NEON multiplies signed by signed, so no sign trick is needed: every weight code
 * is made signed first (Q4_0 -8, Q5_0 -16, Q6_K -32, Q3_K -4) and multiplied by the
 * activation directly. Only K-quant mins (Q4_K, Q5_K, Q2_K) go through Q8_K's bsums.
 * Every product and partial sum fits its lane (|a*b| <= 2^14 in int16 for vmull,
 * block totals < 2^31), so the integers equal the reference's exactly and only the
 * float accumulation order differs from it.
 */

#define NK_DOT2(a0, b0, a1, b1) NK_DOT(NK_DOT(vdupq_n_s32(0), (a0), (b0)), (a1), (b1))

NK_TGT static inline float NK_FN(h2f)(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* The 32 four-bit codes of a 16-byte Q4/Q5 block: byte j holds element j (low
 * nibble) and element j + 16 (high nibble). */
NK_TGT static inline void NK_FN(nibbles)(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t b = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
}

/* Q5_0 / Q5_1 fifth bits: byte i of h0 (h1) is 0x10 iff bit i (16 + i) of the
 * little-endian u32 qh is set. Byte k of qh holds the bits of elements 8k..8k+7. */
NK_TGT static inline void NK_FN(q5_high)(const uint8_t qh[4], int8x16_t *h0, int8x16_t *h1) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t sel = vld1q_u8(bit), b4 = vdupq_n_u8(0x10);
    const uint8x16_t a = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    const uint8x16_t b = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
    *h0 = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(a, sel), b4));
    *h1 = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(b, sel), b4));
}

/* ---- 32-blocks against Q8_0 / Q8_1 ---------------------------------------------- */

NK_TGT static void NK_FN(vec_dot_q8_0)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q8_0 *x = vx, *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    const int nb = n / QK8_0;
    int i = 0;
    for (; i + 1 < nb; i += 2) {
        const int32x4_t p0 = NK_DOT2(vld1q_s8(x[i].qs), vld1q_s8(y[i].qs), vld1q_s8(x[i].qs + 16), vld1q_s8(y[i].qs + 16));
        const int32x4_t p1 = NK_DOT2(vld1q_s8(x[i + 1].qs), vld1q_s8(y[i + 1].qs),
                                     vld1q_s8(x[i + 1].qs + 16), vld1q_s8(y[i + 1].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), NK_FN(h2f)(x[i + 1].d) * NK_FN(h2f)(y[i + 1].d));
    }
    for (; i < nb; i++) {
        const int32x4_t p0 = NK_DOT2(vld1q_s8(x[i].qs), vld1q_s8(y[i].qs), vld1q_s8(x[i].qs + 16), vld1q_s8(y[i].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
    }
    *s = vaddvq_f32(vaddq_f32(acc0, acc1));
}

NK_TGT static void NK_FN(vec_dot_q4_0)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    const int8x16_t off = vdupq_n_s8(8);
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    const int nb = n / QK8_0;
    int i = 0;
    for (; i + 1 < nb; i += 2) {
        int8x16_t l0, h0, l1, h1;
        NK_FN(nibbles)(x[i].qs, &l0, &h0);
        NK_FN(nibbles)(x[i + 1].qs, &l1, &h1);
        const int32x4_t p0 = NK_DOT2(vsubq_s8(l0, off), vld1q_s8(y[i].qs), vsubq_s8(h0, off), vld1q_s8(y[i].qs + 16));
        const int32x4_t p1 = NK_DOT2(vsubq_s8(l1, off), vld1q_s8(y[i + 1].qs), vsubq_s8(h1, off), vld1q_s8(y[i + 1].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), NK_FN(h2f)(x[i + 1].d) * NK_FN(h2f)(y[i + 1].d));
    }
    for (; i < nb; i++) {
        int8x16_t l0, h0;
        NK_FN(nibbles)(x[i].qs, &l0, &h0);
        const int32x4_t p0 = NK_DOT2(vsubq_s8(l0, off), vld1q_s8(y[i].qs), vsubq_s8(h0, off), vld1q_s8(y[i].qs + 16));
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
    }
    *s = vaddvq_f32(vaddq_f32(acc0, acc1));
}

/* Q4_1 / Q5_1: unsigned codes (0..15, 0..31: still valid int8); the min enters as
 * m_x * s_y (s = d_y * sum(q_y)). */
NK_TGT static void NK_FN(vec_dot_q4_1)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_1 *x = vx;
    const nk_block_q8_1 *y = vy;
    float32x4_t acc = vdupq_n_f32(0);
    float summ = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        int8x16_t lo, hi;
        NK_FN(nibbles)(x[i].qs, &lo, &hi);
        const int32x4_t p = NK_DOT2(lo, vld1q_s8(y[i].qs), hi, vld1q_s8(y[i].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        summ += NK_FN(h2f)(x[i].m) * NK_FN(h2f)(y[i].s);
    }
    *s = vaddvq_f32(acc) + summ;
}

NK_TGT static void NK_FN(vec_dot_q5_0)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    const int8x16_t off = vdupq_n_s8(16);
    float32x4_t acc = vdupq_n_f32(0);
    for (int i = 0; i < n / QK8_0; i++) {
        int8x16_t lo, hi, b0, b1;
        NK_FN(nibbles)(x[i].qs, &lo, &hi);
        NK_FN(q5_high)(x[i].qh, &b0, &b1);
        const int8x16_t q0 = vsubq_s8(vorrq_s8(lo, b0), off), q1 = vsubq_s8(vorrq_s8(hi, b1), off);
        const int32x4_t p = NK_DOT2(q0, vld1q_s8(y[i].qs), q1, vld1q_s8(y[i].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
    }
    *s = vaddvq_f32(acc);
}

NK_TGT static void NK_FN(vec_dot_q5_1)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_1 *x = vx;
    const nk_block_q8_1 *y = vy;
    float32x4_t acc = vdupq_n_f32(0);
    float summ = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        int8x16_t lo, hi, b0, b1;
        NK_FN(nibbles)(x[i].qs, &lo, &hi);
        NK_FN(q5_high)(x[i].qh, &b0, &b1);
        const int32x4_t p = NK_DOT2(vorrq_s8(lo, b0), vld1q_s8(y[i].qs), vorrq_s8(hi, b1), vld1q_s8(y[i].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        summ += NK_FN(h2f)(x[i].m) * NK_FN(h2f)(y[i].s);
    }
    *s = vaddvq_f32(acc) + summ;
}

/* ---- K-quants against Q8_K -------------------------------------------------------- */

/* The 8 six-bit scales (sc) and mins (mn) of a Q4_K/Q5_K block, four at a time
 * through u32 words: the same bits nk_get_scale_min_k4 picks one by one (j < 4:
 * low 6 bits of bytes j, j+4; j >= 4: nibbles of bytes j+4 plus the top two bits
 * of bytes j-4, j). */
static inline void NK_FN(k4_scales)(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t w[3], out[4];
    memcpy(w, packed, 12);
    out[0] = w[0] & 0x3f3f3f3fu;
    out[1] = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
    out[2] = w[1] & 0x3f3f3f3fu;
    out[3] = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
    memcpy(sc, &out[0], 8);
    memcpy(mn, &out[2], 8);
}

/* Q4_K / Q5_K mins: sum_j mn[j] * (bsums[2j] + bsums[2j+1]). A pair of bsums is at
 * most 32 * 128 in magnitude, so the pairwise int16 add cannot overflow. */
NK_TGT static inline int NK_FN(k4_summs)(const uint8_t mn[8], const int16_t *bsums) {
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
    return vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(pairs), vget_low_s16(m)), pairs, m));
}

/* sum_g w[g] * bsums[g] over the 16 sub-block sums of a Q8_K block (w: 16 bytes,
 * unsigned, at most 15: Q2_K's mins) */
NK_TGT static inline int NK_FN(bsum_dot16)(const int16_t *bsums, uint8x16_t w) {
    const int16x8_t w0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(w)));
    const int16x8_t w1 = vreinterpretq_s16_u16(vmovl_high_u8(w));
    const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t a = vmull_s16(vget_low_s16(b0), vget_low_s16(w0));
    a = vmlal_high_s16(a, b0, w0);
    a = vmlal_s16(a, vget_low_s16(b1), vget_low_s16(w1));
    a = vmlal_high_s16(a, b1, w1);
    return vaddvq_s32(a);
}

NK_TGT static void NK_FN(vec_dot_q4_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_K *x = vx;
    const nk_block_q8_K *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        NK_FN(k4_scales)(x[i].scales, sc, mn);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int32x4_t isum = vdupq_n_s32(0);
        for (int j = 0; j < 4; j++) {
            /* 64 elements: low nibbles of qs[32j..32j+31] then their high nibbles */
            const uint8x16_t b0 = vld1q_u8(q4 + 32 * j), b1 = vld1q_u8(q4 + 32 * j + 16);
            const int8_t *y8 = q8 + 64 * j;
            const int32x4_t pl = NK_DOT2(vreinterpretq_s8_u8(vandq_u8(b0, m4)), vld1q_s8(y8),
                                         vreinterpretq_s8_u8(vandq_u8(b1, m4)), vld1q_s8(y8 + 16));
            const int32x4_t ph = NK_DOT2(vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vld1q_s8(y8 + 32),
                                         vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), vld1q_s8(y8 + 48));
            isum = vmlaq_n_s32(isum, pl, sc[2 * j]);
            isum = vmlaq_n_s32(isum, ph, sc[2 * j + 1]);
        }
        const float d = NK_FN(h2f)(x[i].d) * y[i].d, dmin = NK_FN(h2f)(x[i].dmin) * y[i].d;
        sumf += d * (float)vaddvq_s32(isum) - dmin * (float)NK_FN(k4_summs)(mn, y[i].bsums);
    }
    *s = sumf;
}

NK_TGT static void NK_FN(vec_dot_q5_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_K *x = vx;
    const nk_block_q8_K *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), b4 = vdupq_n_u8(0x10);
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        NK_FN(k4_scales)(x[i].scales, sc, mn);
        const uint8_t *q5 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const uint8x16_t qh0 = vld1q_u8(x[i].qh), qh1 = vld1q_u8(x[i].qh + 16);
        int32x4_t isum = vdupq_n_s32(0);
        for (int j = 0; j < 4; j++) {
            /* chunk j: the low nibbles take bit 2j of qh[l], the high nibbles bit 2j+1 */
            const uint8x16_t bl = vdupq_n_u8((uint8_t)(1u << (2 * j))), bh = vdupq_n_u8((uint8_t)(2u << (2 * j)));
            const uint8x16_t b0 = vld1q_u8(q5 + 32 * j), b1 = vld1q_u8(q5 + 32 * j + 16);
            const uint8x16_t l0 = vorrq_u8(vandq_u8(b0, m4), vandq_u8(vtstq_u8(qh0, bl), b4));
            const uint8x16_t l1 = vorrq_u8(vandq_u8(b1, m4), vandq_u8(vtstq_u8(qh1, bl), b4));
            const uint8x16_t h0 = vorrq_u8(vshrq_n_u8(b0, 4), vandq_u8(vtstq_u8(qh0, bh), b4));
            const uint8x16_t h1 = vorrq_u8(vshrq_n_u8(b1, 4), vandq_u8(vtstq_u8(qh1, bh), b4));
            const int8_t *y8 = q8 + 64 * j;
            const int32x4_t pl = NK_DOT2(vreinterpretq_s8_u8(l0), vld1q_s8(y8), vreinterpretq_s8_u8(l1), vld1q_s8(y8 + 16));
            const int32x4_t ph = NK_DOT2(vreinterpretq_s8_u8(h0), vld1q_s8(y8 + 32), vreinterpretq_s8_u8(h1), vld1q_s8(y8 + 48));
            isum = vmlaq_n_s32(isum, pl, sc[2 * j]);
            isum = vmlaq_n_s32(isum, ph, sc[2 * j + 1]);
        }
        const float d = NK_FN(h2f)(x[i].d) * y[i].d, dmin = NK_FN(h2f)(x[i].dmin) * y[i].d;
        sumf += d * (float)vaddvq_s32(isum) - dmin * (float)NK_FN(k4_summs)(mn, y[i].bsums);
    }
    *s = sumf;
}

/* Q6_K: code = low4 | hi2 << 4, minus 32 (so -32..31), one int8 scale per 16.
 * Half h (128 elements) takes ql[64h..64h+63] and qh[32h..32h+31]: element l, 32+l,
 * 64+l, 96+l get the low nibble of ql[l], of ql[32+l], the high nibble of ql[l], of
 * ql[32+l], and bits 0-1, 2-3, 4-5, 6-7 of qh[l]. */
NK_TGT static void NK_FN(vec_dot_q6_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q6_K *x = vx;
    const nk_block_q8_K *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t off = vdupq_n_s8(32);
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int32x4_t isum = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h, *y8 = y[i].qs + 128 * h;
            const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16), l2 = vld1q_u8(ql + 32), l3 = vld1q_u8(ql + 48);
            const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
#define NK_Q6(code, k) do { \
            const int8x16_t c_ = vsubq_s8(vreinterpretq_s8_u8(code), off); \
            isum = vmlaq_n_s32(isum, NK_DOT(vdupq_n_s32(0), c_, vld1q_s8(y8 + 16 * (k))), sc[k]); \
        } while (0)
            NK_Q6(vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(h0, 4), m30)), 0);
            NK_Q6(vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(h1, 4), m30)), 1);
            NK_Q6(vorrq_u8(vandq_u8(l2, m4), vandq_u8(vshlq_n_u8(h0, 2), m30)), 2);
            NK_Q6(vorrq_u8(vandq_u8(l3, m4), vandq_u8(vshlq_n_u8(h1, 2), m30)), 3);
            NK_Q6(vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(h0, m30)), 4);
            NK_Q6(vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(h1, m30)), 5);
            NK_Q6(vorrq_u8(vshrq_n_u8(l2, 4), vandq_u8(vshrq_n_u8(h0, 2), m30)), 6);
            NK_Q6(vorrq_u8(vshrq_n_u8(l3, 4), vandq_u8(vshrq_n_u8(h1, 2), m30)), 7);
#undef NK_Q6
        }
        sumf += NK_FN(h2f)(x[i].d) * y[i].d * (float)vaddvq_s32(isum);
    }
    *s = sumf;
}

/* Q3_K: code = low2 | hbit << 2, minus 4 (so -4..3); 16 six-bit scales minus 32.
 * Group g of 32 (g = 0..7) takes bits 2(g%4) of qs[32(g/4) + l] and bit g of
 * hmask[l]; its first 16 elements use scale 2g, the next 16 scale 2g+1. */
NK_TGT static void NK_FN(vec_dot_q3_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q3_K *x = vx;
    const nk_block_q8_K *y = vy;
    const uint8x16_t m3 = vdupq_n_u8(3), b2 = vdupq_n_u8(4);
    const int8x16_t off = vdupq_n_s8(4);
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        /* the 16 scales four bytes at a time (the bits nk_q3_K_scales picks) */
        uint32_t a[3], u[4];
        memcpy(a, x[i].scales, 12);
        u[0] = (a[0] & 0x0f0f0f0fu) | (((a[2] >> 0) & 0x03030303u) << 4);
        u[1] = (a[1] & 0x0f0f0f0fu) | (((a[2] >> 2) & 0x03030303u) << 4);
        u[2] = ((a[0] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 4) & 0x03030303u) << 4);
        u[3] = ((a[1] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 6) & 0x03030303u) << 4);
        uint8_t su[16];
        memcpy(su, u, 16);
        const int8_t *q8 = y[i].qs;
        const uint8x16_t hm0 = vld1q_u8(x[i].hmask), hm1 = vld1q_u8(x[i].hmask + 16);
        int32x4_t isum = vdupq_n_s32(0);
        for (int g = 0; g < 8; g++) {
            const uint8_t *src = x[i].qs + 32 * (g / 4);
            const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * (g % 4)));   /* vshlq by a negative count: right shift */
            const uint8x16_t hb = vdupq_n_u8((uint8_t)(1u << g));
            const uint8x16_t c0 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(src), sh), m3), vandq_u8(vtstq_u8(hm0, hb), b2));
            const uint8x16_t c1 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(src + 16), sh), m3), vandq_u8(vtstq_u8(hm1, hb), b2));
            const int32x4_t p0 = NK_DOT(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(c0), off), vld1q_s8(q8 + 32 * g));
            const int32x4_t p1 = NK_DOT(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(c1), off), vld1q_s8(q8 + 32 * g + 16));
            isum = vmlaq_n_s32(isum, p0, (int)su[2 * g] - 32);
            isum = vmlaq_n_s32(isum, p1, (int)su[2 * g + 1] - 32);
        }
        sumf += NK_FN(h2f)(x[i].d) * y[i].d * (float)vaddvq_s32(isum);
    }
    *s = sumf;
}

/* Q2_K: code = 2 bits (0..3), weight d*(sc & 15)*q - dmin*(sc >> 4) per 16; group g
 * of 32 takes bits 2(g%4) of qs[32(g/4) + l]; the mins go through bsums. */
NK_TGT static void NK_FN(vec_dot_q2_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q2_K *x = vx;
    const nk_block_q8_K *y = vy;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int32x4_t isum = vdupq_n_s32(0);
        for (int hf = 0; hf < 2; hf++) {
            uint8x16_t q0 = vld1q_u8(x[i].qs + 32 * hf), q1 = vld1q_u8(x[i].qs + 32 * hf + 16);
            for (int k = 0; k < 4; k++) {
                const int g = 4 * hf + k;
                const int32x4_t p0 = NK_DOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(q0, m3)), vld1q_s8(q8 + 32 * g));
                const int32x4_t p1 = NK_DOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(q1, m3)), vld1q_s8(q8 + 32 * g + 16));
                isum = vmlaq_n_s32(isum, p0, sc[2 * g] & 0xF);
                isum = vmlaq_n_s32(isum, p1, sc[2 * g + 1] & 0xF);
                q0 = vshrq_n_u8(q0, 2);
                q1 = vshrq_n_u8(q1, 2);
            }
        }
        const int summs = NK_FN(bsum_dot16)(y[i].bsums, vshrq_n_u8(vld1q_u8(sc), 4));
        const float dall = y[i].d * NK_FN(h2f)(x[i].d), dmin = y[i].d * NK_FN(h2f)(x[i].dmin);
        sumf += dall * (float)vaddvq_s32(isum) - dmin * (float)summs;
    }
    *s = sumf;
}

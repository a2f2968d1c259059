/*
 * kernels_256.h: the 256-bit integer dot-product kernels, written once and compiled
 * twice: by avx2.c (maddubs/madd) and by avx512.c (AVX512-VNNI vpdpbusd on ymm
 * registers). Not a normal header: include it only from those files, after defining
 *
 *   NK_TGT              the function target attribute
 *   NK_FN(name)         the name of a kernel in this compilation (adds a suffix)
 *   NK_DOT(u, s)        __m256i: int32 lane k = sum of u8*s8 products of bytes 4k..4k+3
 *   NK_DOT_SC(u, s, a, b)  NK_DOT times a in lanes 0..3 and b in lanes 4..7
 *   NK_BITS32(qh)       __m256i: byte i = 0xFF if bit i of the u32 qh is set, else 0
 *
 * The unsigned operand is always a weight code (at most 127), so the AVX2 maddubs
 * never saturates: both variants give the same integers as the reference, and only
 * the float accumulation order (8 lanes, hsum at the end) differs from it.
 * Offsets (Q4_0's -8, Q6_K's -32, Q3_K's -4) are applied either with the sign trick
 * (|q|, sign(y, q)) or through Q8_K's bsums, as noted per kernel.
 */

NK_TGT static inline float NK_FN(hsum8)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NK_TGT static inline float NK_FN(h2f)(uint16_t h) { return _cvtsh_ss(h); }

/* signed x signed dot by the sign trick: |x| * (y with x's sign) */
#define NK_DOT_SS(x, y) NK_DOT(_mm256_sign_epi8((x), (x)), _mm256_sign_epi8((y), (x)))

/* 32 nibbles of a 16-byte Q4 block: low nibbles (elements 0..15) in the low lane. */
NK_TGT static inline __m256i NK_FN(nibbles32)(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

NK_TGT static inline uint32_t NK_FN(load_u32)(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- 32-blocks against Q8_0 / Q8_1 ---------------------------------------------- */

NK_TGT static void NK_FN(vec_dot_q8_0)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q8_0 *x = vx, *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int nb = n / QK8_0;
    int i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)x[i].qs), y0 = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)x[i + 1].qs), y1 = _mm256_loadu_si256((const __m256i *)y[i + 1].qs);
        const __m256 d0 = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        const __m256 d1 = _mm256_set1_ps(NK_FN(h2f)(x[i + 1].d) * NK_FN(h2f)(y[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(NK_DOT_SS(x0, y0)), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(NK_DOT_SS(x1, y1)), acc1);
    }
    for (; i < nb; i++) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)x[i].qs), y0 = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 d0 = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(NK_DOT_SS(x0, y0)), acc0);
    }
    *s = NK_FN(hsum8)(_mm256_add_ps(acc0, acc1));
}

NK_TGT static void NK_FN(vec_dot_q4_0)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int nb = n / QK8_0;
    int i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256i q0 = _mm256_sub_epi8(NK_FN(nibbles32)(x[i].qs), off);
        const __m256i q1 = _mm256_sub_epi8(NK_FN(nibbles32)(x[i + 1].qs), off);
        const __m256i y0 = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i y1 = _mm256_loadu_si256((const __m256i *)y[i + 1].qs);
        const __m256 d0 = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        const __m256 d1 = _mm256_set1_ps(NK_FN(h2f)(x[i + 1].d) * NK_FN(h2f)(y[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(NK_DOT_SS(q0, y0)), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(NK_DOT_SS(q1, y1)), acc1);
    }
    for (; i < nb; i++) {
        const __m256i q0 = _mm256_sub_epi8(NK_FN(nibbles32)(x[i].qs), off);
        const __m256i y0 = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 d0 = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(NK_DOT_SS(q0, y0)), acc0);
    }
    *s = NK_FN(hsum8)(_mm256_add_ps(acc0, acc1));
}

/* Q4_1 / Q5_1: unsigned codes; the min enters as m_x * s_y (s = d_y * sum(q_y)). */
NK_TGT static void NK_FN(vec_dot_q4_1)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_1 *x = vx;
    const nk_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        const __m256i q = NK_FN(nibbles32)(x[i].qs);
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 d = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(NK_DOT(q, yv)), acc);
        summ += NK_FN(h2f)(x[i].m) * NK_FN(h2f)(y[i].s);
    }
    *s = NK_FN(hsum8)(acc) + summ;
}

NK_TGT static void NK_FN(vec_dot_q5_0)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    const __m256i b4 = _mm256_set1_epi8(0x10), off = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK8_0; i++) {
        const __m256i hb = _mm256_and_si256(NK_BITS32(NK_FN(load_u32)(x[i].qh)), b4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(NK_FN(nibbles32)(x[i].qs), hb), off);
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 d = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(NK_DOT_SS(q, yv)), acc);
    }
    *s = NK_FN(hsum8)(acc);
}

NK_TGT static void NK_FN(vec_dot_q5_1)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_1 *x = vx;
    const nk_block_q8_1 *y = vy;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        const __m256i hb = _mm256_and_si256(NK_BITS32(NK_FN(load_u32)(x[i].qh)), b4);
        const __m256i q = _mm256_or_si256(NK_FN(nibbles32)(x[i].qs), hb);
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256 d = _mm256_set1_ps(NK_FN(h2f)(x[i].d) * NK_FN(h2f)(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(NK_DOT(q, yv)), acc);
        summ += NK_FN(h2f)(x[i].m) * NK_FN(h2f)(y[i].s);
    }
    *s = NK_FN(hsum8)(acc) + summ;
}

/* ---- K-quants against Q8_K -------------------------------------------------------- */

/* sum_g sc16[g] * bsums[g] over the 16 sub-block sums of a Q8_K block */
NK_TGT static inline int NK_FN(bsum_dot)(const int16_t *bsums, __m256i sc16) {
    const __m256i p = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), sc16);
    __m128i u = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4E));
    u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xB1));
    return _mm_cvtsi128_si32(u);
}

/* The 8 six-bit scales (sc) and mins (mn) of a Q4_K/Q5_K block, unpacked four at a
 * time through u32 words (the same bits nk_get_scale_min_k4 picks one by one). */
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

/* mins through bsums: sum_j mn_j * (bsums[2j] + bsums[2j+1]) */
NK_TGT static inline int NK_FN(k4_summs)(const uint8_t mn[8], const int16_t *bsums) {
    const __m128i m = _mm_loadl_epi64((const __m128i *)mn);
    return NK_FN(bsum_dot)(bsums, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)));
}

NK_TGT static void NK_FN(vec_dot_q4_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_K *x = vx;
    const nk_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        NK_FN(k4_scales)(x[i].scales, sc, mn);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(q4 + 32 * j));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * j));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32));
            sumi0 = _mm256_add_epi32(sumi0, NK_DOT_SC(lo, y0, sc[2 * j], sc[2 * j]));
            sumi1 = _mm256_add_epi32(sumi1, NK_DOT_SC(hi, y1, sc[2 * j + 1], sc[2 * j + 1]));
        }
        const float d = NK_FN(h2f)(x[i].d) * y[i].d, dmin = NK_FN(h2f)(x[i].dmin) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi0, sumi1)), acc);
        accm += dmin * (float)NK_FN(k4_summs)(mn, y[i].bsums);
    }
    *s = NK_FN(hsum8)(acc) - accm;
}

NK_TGT static void NK_FN(vec_dot_q5_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_K *x = vx;
    const nk_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        NK_FN(k4_scales)(x[i].scales, sc, mn);
        const uint8_t *q5 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i hbits = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            /* chunk j: the low half takes bit 2j of qh, the high half bit 2j+1 */
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hbits, one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), one), 4);
            hbits = _mm256_srli_epi16(hbits, 2);
            const __m256i q = _mm256_loadu_si256((const __m256i *)(q5 + 32 * j));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * j));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32));
            sumi0 = _mm256_add_epi32(sumi0, NK_DOT_SC(lo, y0, sc[2 * j], sc[2 * j]));
            sumi1 = _mm256_add_epi32(sumi1, NK_DOT_SC(hi, y1, sc[2 * j + 1], sc[2 * j + 1]));
        }
        const float d = NK_FN(h2f)(x[i].d) * y[i].d, dmin = NK_FN(h2f)(x[i].dmin) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi0, sumi1)), acc);
        accm += dmin * (float)NK_FN(k4_summs)(mn, y[i].bsums);
    }
    *s = NK_FN(hsum8)(acc) - accm;
}

/* Q6_K: unsigned 6-bit codes q = low4 | hi2 << 4; the -32 comes back as
 * -32 * sum_g scale_g * bsums[g]. */
NK_TGT static void NK_FN(vec_dot_q6_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q6_K *x = vx;
    const nk_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *q8 = y[i].qs;
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m30));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m30));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hv, m30));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(hv, 2), m30));
            const int8_t *y8 = q8 + 128 * h, *s8 = sc + 8 * h;
            sumi0 = _mm256_add_epi32(sumi0, NK_DOT_SC(q0, _mm256_loadu_si256((const __m256i *)(y8)), s8[0], s8[1]));
            sumi1 = _mm256_add_epi32(sumi1, NK_DOT_SC(q1, _mm256_loadu_si256((const __m256i *)(y8 + 32)), s8[2], s8[3]));
            sumi0 = _mm256_add_epi32(sumi0, NK_DOT_SC(q2, _mm256_loadu_si256((const __m256i *)(y8 + 64)), s8[4], s8[5]));
            sumi1 = _mm256_add_epi32(sumi1, NK_DOT_SC(q3, _mm256_loadu_si256((const __m256i *)(y8 + 96)), s8[6], s8[7]));
        }
        const int offs = NK_FN(bsum_dot)(y[i].bsums, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)));
        const float d = NK_FN(h2f)(x[i].d) * y[i].d;
        const __m256i sumi = _mm256_add_epi32(sumi0, sumi1);
        /* fold the offset into lane 0 so the block's integer total stays exact */
        const __m256i fix = _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, -32 * offs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi, fix)), acc);
    }
    *s = NK_FN(hsum8)(acc);
}

/* Q3_K: unsigned 3-bit codes q = low2 | hbit << 2 (0..7); the -4 comes back as
 * -4 * sum_g scale_g * bsums[g]. Group g of 32 (g = 0..7) takes bits 2(g%4) of
 * qs[32(g/4) + l] and bit g of hmask[l]. */
NK_TGT static void NK_FN(vec_dot_q3_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q3_K *x = vx;
    const nk_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        /* the 16 six-bit scales, four bytes at a time (the bits nk_q3_K_scales picks) */
        uint32_t a[3], u[4];
        memcpy(a, x[i].scales, 12);
        u[0] = (a[0] & 0x0f0f0f0fu) | (((a[2] >> 0) & 0x03030303u) << 4);
        u[1] = (a[1] & 0x0f0f0f0fu) | (((a[2] >> 2) & 0x03030303u) << 4);
        u[2] = ((a[0] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 4) & 0x03030303u) << 4);
        u[3] = ((a[1] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 6) & 0x03030303u) << 4);
        uint8_t su[16];
        memcpy(su, u, 16);
        int sc[16];
        for (int g = 0; g < 16; g++) sc[g] = (int)su[g] - 32;
        const int8_t *q8 = y[i].qs;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i qb = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32));
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = _mm256_setzero_si256();
#define NK_Q3_GROUP(g, qv, sh, acc_) do { \
        const __m256i hb_ = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, (g)), one), 2); \
        const __m256i code_ = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16((qv), (sh)), m3), hb_); \
        const __m256i yv_ = _mm256_loadu_si256((const __m256i *)(q8 + 32 * (g))); \
        acc_ = _mm256_add_epi32(acc_, NK_DOT_SC(code_, yv_, sc[2 * (g)], sc[2 * (g) + 1])); \
    } while (0)
        NK_Q3_GROUP(0, qa, 0, sumi0); NK_Q3_GROUP(1, qa, 2, sumi1);
        NK_Q3_GROUP(2, qa, 4, sumi0); NK_Q3_GROUP(3, qa, 6, sumi1);
        NK_Q3_GROUP(4, qb, 0, sumi0); NK_Q3_GROUP(5, qb, 2, sumi1);
        NK_Q3_GROUP(6, qb, 4, sumi0); NK_Q3_GROUP(7, qb, 6, sumi1);
#undef NK_Q3_GROUP
        const __m256i sc16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)su)), _mm256_set1_epi16(32));
        const int offs = NK_FN(bsum_dot)(y[i].bsums, sc16);
        const float d = NK_FN(h2f)(x[i].d) * y[i].d;
        const __m256i fix = _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, -4 * offs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(sumi0, sumi1), fix)), acc);
    }
    *s = NK_FN(hsum8)(acc);
}

NK_TGT static void NK_FN(vec_dot_q2_K)(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q2_K *x = vx;
    const nk_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = _mm256_setzero_si256();
        for (int hf = 0; hf < 2; hf++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * hf));
            for (int k = 0; k < 4; k++) {
                const int g = 4 * hf + k;
                const __m256i code = _mm256_and_si256(q, m3);
                q = _mm256_srli_epi16(q, 2);
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * g));
                const __m256i p = NK_DOT_SC(code, yv, sc[2 * g] & 0xF, sc[2 * g + 1] & 0xF);
                if (k & 1) sumi1 = _mm256_add_epi32(sumi1, p);
                else sumi0 = _mm256_add_epi32(sumi0, p);
            }
        }
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)sc), 4), _mm_set1_epi8(0x0F)));
        const int summs = NK_FN(bsum_dot)(y[i].bsums, mins16);
        const float dall = y[i].d * NK_FN(h2f)(x[i].d), dmin = y[i].d * NK_FN(h2f)(x[i].dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi0, sumi1)), acc);
        accm += dmin * (float)summs;
    }
    *s = NK_FN(hsum8)(acc) - accm;
}

/* ---- activation quantizers ------------------------------------------------------------
 * Q8_0 / Q8_1 follow ggml's x86 path, not its *_ref: id = 127/amax (instead of
 * 1/d) and round half to even (instead of roundf), so a code can differ by one from
 * nk_quant_q8_0_ref; this is what llama.cpp computes on these CPUs. Q8_K has no
 * x86 path in ggml: this one gives exactly nk_quant_q8_K_ref's bytes. */

/* 32 floats * mul, rounded to nearest even, packed to int8 in element order; the
 * int32 codes' sum goes to *sum when sum != NULL. */
NK_TGT static inline __m256i NK_FN(round_pack32)(const float *x, __m256 mul, int *sum) {
#define rnd (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x), mul), rnd));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8), mul), rnd));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16), mul), rnd));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 24), mul), rnd));
#undef rnd
    if (sum) {
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4E));
        u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xB1));
        *sum = _mm_cvtsi128_si32(u);
    }
    const __m256i p16a = _mm256_packs_epi32(i0, i1), p16b = _mm256_packs_epi32(i2, i3);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    /* packs work per 128-bit lane: put the eight 4-byte groups back in order */
    return _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

NK_TGT static inline float NK_FN(absmax32)(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

NK_TGT static void NK_FN(quant_q8_0)(const float *src, void *dst, int64_t n) {
    nk_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *x = src + i * QK8_0;
        const float amax = NK_FN(absmax32)(x);
        const float d = amax / 127.f;
        y[i].d = nk_fp32_to_fp16(d);
        const __m256 mul = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
        _mm256_storeu_si256((__m256i *)y[i].qs, NK_FN(round_pack32)(x, mul, NULL));
    }
}

NK_TGT static void NK_FN(quant_q8_1)(const float *src, void *dst, int64_t n) {
    nk_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const float *x = src + i * QK8_1;
        const float amax = NK_FN(absmax32)(x);
        const float d = amax / 127.f;
        y[i].d = nk_fp32_to_fp16(d);
        const __m256 mul = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
        int sum;
        _mm256_storeu_si256((__m256i *)y[i].qs, NK_FN(round_pack32)(x, mul, &sum));
        y[i].s = nk_fp32_to_fp16(d * (float)sum);
    }
}

NK_TGT static void NK_FN(quant_q8_K)(const float *src, void *dst, int64_t n) {
    nk_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float amax = 0;
        for (int j = 0; j < QK_K; j += 32) amax = NK_MAX(amax, NK_FN(absmax32)(x + j));
        if (!(amax > 0)) {   /* zero (or all-NaN) block, as the reference */
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        /* the first value of largest magnitude, sign kept: the reference's scalar
         * search "fabsf(x[j]) == amax", 8 lanes at a time (the same ordered compare),
         * then the lowest matching lane. A scalar loop with a data-dependent exit took
         * about as long as the rest of the block at 8 tokens. */
        float max = 0;
        const __m256 sign = _mm256_set1_ps(-0.0f), vmax = _mm256_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 8) {
            const int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), vmax, _CMP_EQ_OQ));
            if (eq) {
                max = x[j + __builtin_ctz((unsigned)eq)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 mul = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi8(127);
        for (int j = 0; j < QK_K; j += 32) {
            const __m256i q = _mm256_min_epi8(NK_FN(round_pack32)(x + j, mul, NULL), cap);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
            /* bsums: the two 16-code sums of this 32-chunk */
            const __m256i w = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
            const __m128i l2 = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0x4E));
            const __m128i h2 = _mm_add_epi32(hi, _mm_shuffle_epi32(hi, 0x4E));
            y[i].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(_mm_add_epi32(l2, _mm_shuffle_epi32(l2, 0xB1)));
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_cvtsi128_si32(_mm_add_epi32(h2, _mm_shuffle_epi32(h2, 0xB1)));
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- float formats (256-bit) ------------------------------------------------------ */

#ifndef NK_NO_F16_256   /* avx512.c has a 512-bit one */
NK_TGT static void NK_FN(vec_dot_f16)(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
#define NK_LDH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(NK_LDH(x + i), NK_LDH(y + i), a0);
        a1 = _mm256_fmadd_ps(NK_LDH(x + i + 8), NK_LDH(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(NK_LDH(x + i + 16), NK_LDH(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(NK_LDH(x + i + 24), NK_LDH(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(NK_LDH(x + i), NK_LDH(y + i), a0);
#undef NK_LDH
    float sum = NK_FN(hsum8)(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += NK_FN(h2f)(x[i]) * NK_FN(h2f)(y[i]);
    *s = sum;
}
#endif

NK_TGT static void NK_FN(vec_dot_bf16)(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
#define NK_LDB(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(NK_LDB(x + i), NK_LDB(y + i), a0);
        a1 = _mm256_fmadd_ps(NK_LDB(x + i + 8), NK_LDB(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(NK_LDB(x + i), NK_LDB(y + i), a0);
#undef NK_LDB
    float sum = NK_FN(hsum8)(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += nk_bf16_to_fp32(x[i]) * nk_bf16_to_fp32(y[i]);
    *s = sum;
}

/*
 * gemm_avx512.c: register-blocked weight x activation kernels for AVX-512 VNNI
 * (contract in tensor/ops_gemm.h).
 *
 * A tile is up to TR weight rows x TT tokens. For each weight block the tile decodes
 * every row's codes once into zmm registers (and builds its scale vectors), then
 * runs them against each token's activation block, so decoding is paid once per
 * TT tokens and each activation load once per TR rows.
 *
 * Two families:
 *  - 32-element blocks (Q8_0, Q5_0, Q4_0) against "a32" rows: ggml's x86 Q8_0 codes
 *    (signed) in groups of two blocks, with each block's scale expanded to 8 floats
 *    and, per 4-code lane, -offset * (sum of the codes). The weight codes are read
 *    unsigned, code + offset (Q8_0: +128, Q5_0: +16, Q4_0: +8, i.e. Q5_0's and
 *    Q4_0's raw bits), so one vpdpbusd multiplies 64 codes (two blocks) starting
 *    from the activation row's correction: the lane sums are the exact signed
 *    products, and nothing is paid per weight row for the offset. The two blocks'
 *    integer sums (lanes 0-7 and 8-15) are scaled by d_w * d_x in float.
 *  - K-quants (Q4_K, Q6_K) against Q8_K blocks (Q4_K's with the bytes permuted so a
 *    64-byte load of activations matches a 64-byte load of nibbles). Codes times
 *    activations by vpmaddubsw (no saturation: codes <= 63, pair sums < 2^15), times
 *    the sub-block scales by vpdpwssd, so a whole block sums in one int32 register;
 *    mins (Q4_K) and the -32 offset (Q6_K) come from the Q8_K block sums.
 * Each output is the sum of its 16 float lanes at the end (_mm512_reduce_add_ps).
 */
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

/* Tile shapes (rows x tokens), bounded by the 32 zmm registers: the 32-block family
 * holds per row the codes and the scales (2 zmm) and one accumulator per
 * output; the K-quants hold 4 zmm of codes per row, so they take fewer rows and more
 * tokens (their scale vectors are read from the stack as memory operands). */
#define TR 4   /* 32-block family */
#define TT 4
#define KR 2   /* K-quants */
#define KT 6
#define KT1 8  /* K-quants, one row at a time (small batches): tokens per tile */

TGT static INL float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* ---- 32-block family -------------------------------------------------------------- */

typedef struct a32_group {
    float d[16];        /* block 2g's scale in 0..7, block 2g+1's in 8..15 */
    int8_t q[64];       /* the codes */
    int32_t c[16];      /* -offset * (sum of the 4 codes of each 32-bit lane) */
} a32_group;
/* three cache lines: in a 64-byte aligned scratch every load of a group is aligned
 * (straddling lines, the one-token Q8_0 product measured 1.3x slower) */
_Static_assert(sizeof(a32_group) == 192, "a32 group size");

static size_t a32_row_size(int64_t n) { return (size_t)((n / 32 + 1) / 2) * sizeof(a32_group); }

/* The codes and scales ggml's x86 quantize_row_q8_0 produces (the installed Q8_0
 * from_float), re-laid, with each 4-code lane's sum times -(1 << sh): the weight
 * codes are read unsigned (code + (1 << sh)), and a weight row's vpdpbusd starts from
 * this correction, so the offset costs nothing per row. An odd last block gets a zero
 * partner (scale 0, codes 0, correction 0). */
TGT static INL void a32_quant_off(const float *x, void *dst, int64_t n, int sh) {
    a32_group *g = dst;
    const nk_from_float_fn q8 = nk_type_get(NK_TYPE_Q8_0)->from_float;
    const int64_t nb = n / 32;
    const __m256i ones = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
    for (int64_t b = 0; b < nb; b++) {
        nk_block_q8_0 blk;
        q8(x + 32 * b, &blk, 32);
        a32_group *gg = &g[b / 2];
        const int h = (int)(b & 1);
        const __m256i q = _mm256_loadu_si256((const __m256i *)blk.qs);
        _mm256_storeu_ps(gg->d + 8 * h, _mm256_set1_ps(nk_fp16_to_fp32(blk.d)));
        _mm256_storeu_si256((__m256i *)(gg->q + 32 * h), q);
        const __m256i sum = _mm256_dpbusd_epi32(zero, ones, q);
        _mm256_storeu_si256((__m256i *)(gg->c + 8 * h), _mm256_sub_epi32(zero, _mm256_slli_epi32(sum, sh)));
    }
    if (nb & 1) {
        a32_group *gg = &g[nb / 2];
        _mm256_storeu_ps(gg->d + 8, _mm256_setzero_ps());
        _mm256_storeu_si256((__m256i *)(gg->q + 32), zero);
        _mm256_storeu_si256((__m256i *)(gg->c + 8), zero);
    }
}

TGT static void a32_quant_q8_0(const float *x, void *dst, int64_t n) { a32_quant_off(x, dst, n, 7); }
TGT static void a32_quant_q5_0(const float *x, void *dst, int64_t n) { a32_quant_off(x, dst, n, 4); }
TGT static void a32_quant_q4_0(const float *x, void *dst, int64_t n) { a32_quant_off(x, dst, n, 3); }

/* Decoders: blocks x[0] and (if two) x[1] of a row (blocks bsz bytes apart) as 64
 * unsigned codes (code + 128 / 16 / 8 for Q8_0 / Q5_0 / Q4_0), and their scales as a
 * float vector (x[0]'s in lanes 0..7). A missing second block reads nothing and
 * yields scale 0 (its codes meet zero activations and a zero correction). */
TGT static INL __m512 dscale2(const uint8_t *p, size_t bsz, int two) {
    uint16_t h0, h1 = 0;
    memcpy(&h0, p, 2);
    if (two) memcpy(&h1, p + bsz, 2);
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(f));
}

/* The nibbles of two blocks' 16 code bytes: low nibbles are elements 0..15, high
 * nibbles 16..31 of each block. */
TGT static INL __m512i nib64(const uint8_t *q0, const uint8_t *q1, int two) {
    const __m128i b0 = _mm_loadu_si128((const __m128i *)q0);
    const __m128i b1 = two ? _mm_loadu_si128((const __m128i *)q1) : _mm_setzero_si128();
    const __m512i t = _mm512_castsi256_si512(_mm256_set_m128i(b1, b0));
    const __m512i z = _mm512_shuffle_i64x2(t, t, _MM_SHUFFLE(1, 1, 0, 0));   /* b0 b0 b1 b1 */
    return _mm512_and_si512(_mm512_mask_srli_epi16(z, (__mmask32)0xFF00FF00u, z, 4), _mm512_set1_epi8(0x0F));
}

TGT static INL __m512i dec_q8_0(const uint8_t *p, int two, __m512 *dw) {
    const nk_block_q8_0 *x = (const nk_block_q8_0 *)p;
    const __m256i lo = _mm256_loadu_si256((const __m256i *)x[0].qs);
    const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)x[1].qs) : _mm256_setzero_si256();
    *dw = dscale2(p, sizeof(nk_block_q8_0), two);
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi8((char)0x80));
}

TGT static INL __m512i dec_q4_0(const uint8_t *p, int two, __m512 *dw) {
    const nk_block_q4_0 *x = (const nk_block_q4_0 *)p;
    *dw = dscale2(p, sizeof(nk_block_q4_0), two);
    return nib64(x[0].qs, two ? x[1].qs : x[0].qs, two);
}

/* the fifth bits (qh bit j = element j) as a 64-lane byte mask over both blocks */
TGT static INL __m512i dec_q5_0(const uint8_t *p, int two, __m512 *dw) {
    const nk_block_q5_0 *x = (const nk_block_q5_0 *)p;
    uint32_t h0, h1 = 0;
    memcpy(&h0, x[0].qh, 4);
    if (two) memcpy(&h1, x[1].qh, 4);
    *dw = dscale2(p, sizeof(nk_block_q5_0), two);
    const __m512i nb = nib64(x[0].qs, two ? x[1].qs : x[0].qs, two);
    return _mm512_mask_add_epi8(nb, _cvtu64_mask64((uint64_t)h0 | (uint64_t)h1 << 32), nb, _mm512_set1_epi8(0x10));
}

/* Block pair g (blocks b, b+1; the second missing when two == 0) of R rows against T
 * tokens, added to acc. */
TGT static INL void pair32(const int type, const int R, const int T, const int two, int b, int g, size_t bsz,
                           const uint8_t *w, size_t ws, const uint8_t *a, size_t as, __m512 acc[TR][TT]) {
    __m512i wq[TR];
    __m512 dw[TR];
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++) {
        const uint8_t *p = w + (size_t)r * ws + (size_t)b * bsz;
        wq[r] = type == NK_TYPE_Q8_0 ? dec_q8_0(p, two, &dw[r])
              : type == NK_TYPE_Q5_0 ? dec_q5_0(p, two, &dw[r]) : dec_q4_0(p, two, &dw[r]);
    }
    _Pragma("GCC unroll 16")
    for (int t = 0; t < T; t++) {
        const a32_group *ag = (const a32_group *)(a + (size_t)t * as) + g;
        const __m512i av = _mm512_loadu_si512(ag->q), corr = _mm512_loadu_si512(ag->c);
        const __m512 dx = _mm512_loadu_ps(ag->d);
        _Pragma("GCC unroll 16")
        for (int r = 0; r < R; r++) {
            /* the same exact lane sums as signed x signed */
            const __m512i s = _mm512_dpbusd_epi32(corr, wq[r], av);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], dx), acc[r][t]);
        }
    }
}

/* One tile of R rows x T tokens (compile-time constants after inlining). */
TGT static INL void tile32(const int type, const int R, const int T, int n, const uint8_t *w, size_t ws,
                           const uint8_t *a, size_t as, float *y, size_t ys) {
    const size_t bsz = type == NK_TYPE_Q8_0 ? sizeof(nk_block_q8_0)
                     : type == NK_TYPE_Q5_0 ? sizeof(nk_block_q5_0) : sizeof(nk_block_q4_0);
    __m512 acc[TR][TT];
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    const int nb = n / 32;
    int b = 0, g = 0;
    for (; b + 1 < nb; b += 2, g++) pair32(type, R, T, 1, b, g, bsz, w, ws, a, as, acc);
    if (b < nb) pair32(type, R, T, 0, b, g, bsz, w, ws, a, as, acc);
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) y[(size_t)t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ---- K-quants --------------------------------------------------------------------- */

static size_t q8K_row_size(int64_t n) { return nk_row_size(NK_TYPE_Q8_K, n); }

/* Q8_K for Q6_K: the reference codes (the installed from_float is exact). */
static void q8K_quant(const float *x, void *dst, int64_t n) {
    nk_type_get(NK_TYPE_Q8_K)->from_float(x, dst, n);
}

/* Q8_K for Q4_K: the same block with each 128-code half reordered as
 * [0..31, 64..95, 32..63, 96..127], the order of a 64-byte load of Q4_K nibbles
 * (low nibbles of bytes 0..63 are elements 0..31 and 64..95 of the half). bsums stay
 * in element order. */
static void q8K_perm_quant(const float *x, void *dst, int64_t n) {
    nk_type_get(NK_TYPE_Q8_K)->from_float(x, dst, n);
    nk_block_q8_K *yb = dst;
    static const int base[4] = { 0, 32, 128, 160 };
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t tmp[QK_K];
        memcpy(tmp, yb[i].qs, QK_K);
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 4; k++) {
            memcpy(yb[i].qs + 64 * k, tmp + base[k], 32);
            memcpy(yb[i].qs + 64 * k + 32, tmp + base[k] + 64, 32);
        }
    }
}

/* A Q4_K block's 8 six-bit scales (bytes 0..7) and mins (bytes 8..15) in one
 * vector, nk_get_scale_min_k4's bits: the 12 packed bytes as words w0 w1 w2 give
 *   scales 0..3 = w0 & 0x3f.., scales 4..7 = (w2 & 0x0f..) | ((w0 >> 2) & 0x30..),
 *   mins 0..3 = w1 & 0x3f..,   mins 4..7 = ((w2 >> 4) & 0x0f..) | ((w1 >> 2) & 0x30..).
 * The 16-byte load reads 4 bytes of the block's codes past the scales. */
TGT static INL __m128i k4_scales_v(const uint8_t *packed) {
    const __m128i v = _mm_loadu_si128((const __m128i *)packed);
    const __m128i p = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));   /* w0 w2 w1 w2 */
    const __m128i q = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));   /* w0 w0 w1 w1 */
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(p, _mm_set_epi32(4, 0, 0, 0)),
                                     _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(q, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(lo, hi);
}

/* vpshufb controls on the scales/mins vector broadcast to every 128-bit lane: part k
 * (64 codes: sub-blocks A in its 16-bit lanes 0..15 and A+2 in 16..31, A = 0,1,4,5)
 * gets each of its 16-bit lanes the zero-extended scale of its sub-block; the mins
 * come out as 16-bit m0 m0 m1 m1 .. m7 m7 (against the 16 bsums). */
TGT static INL __m512i ctl_q4K(int k) {
    static const int A[4] = { 0, 1, 4, 5 };
    const __m256i lo = _mm256_set1_epi16((short)(0xFF00 | A[k])), hi = _mm256_set1_epi16((short)(0xFF00 | (A[k] + 2)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

TGT static INL __m256i ctl_q4K_mins(void) {
    return _mm256_setr_epi8(8, -1, 8, -1, 9, -1, 9, -1, 10, -1, 10, -1, 11, -1, 11, -1,
                            12, -1, 12, -1, 13, -1, 13, -1, 14, -1, 14, -1, 15, -1, 15, -1);
}

/* [d x 8, -dmin x 8] of a Q4_K block (d and dmin are its first two halves) */
TGT static INL __m512 q4K_dd(const nk_block_q4_K *x) {
    uint32_t h;
    memcpy(&h, x, 4);
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)h));
    const __m512 dd = _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                            _mm512_castps128_ps512(dm));
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(dd),
                                                _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi32((int)0x80000000), 1)));
}

TGT static INL __m512i idx_q6K(int k) {
    /* part k = elements 64k..64k+63: lane i covers elements 64k+2i, 64k+2i+1, group 4k + i/8 */
    const long long K = 0x0001000100010001LL;
    return _mm512_add_epi16(_mm512_set_epi64(3 * K, 3 * K, 2 * K, 2 * K, K, K, 0, 0), _mm512_set1_epi16((short)(4 * k)));
}

TGT static INL void tile_q4K(const int R, const int T, int n, const uint8_t *w, size_t ws,
                             const uint8_t *a, size_t as, float *y, size_t ys) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[KR][KT1];
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < n / QK_K; b++) {
        __m512i wq[KR][4], sc[KR][4];
        __m256i mn[KR];
        __m512 dd[KR];   /* d in lanes 0..7, -dmin in lanes 8..15 */
        _Pragma("GCC unroll 16")
        for (int r = 0; r < R; r++) {
            const nk_block_q4_K *x = (const nk_block_q4_K *)(w + (size_t)r * ws) + b;
            const __m512i q0 = _mm512_loadu_si512(x->qs), q1 = _mm512_loadu_si512(x->qs + 64);
            wq[r][0] = _mm512_and_si512(q0, m4);
            wq[r][1] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4);
            wq[r][2] = _mm512_and_si512(q1, m4);
            wq[r][3] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4);
            const __m512i sm = _mm512_broadcast_i32x4(k4_scales_v(x->scales));
            _Pragma("GCC unroll 16")
            for (int k = 0; k < 4; k++) sc[r][k] = _mm512_shuffle_epi8(sm, ctl_q4K(k));
            mn[r] = _mm256_shuffle_epi8(_mm512_castsi512_si256(sm), ctl_q4K_mins());
            dd[r] = q4K_dd(x);
        }
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) {
            const nk_block_q8_K *yb = (const nk_block_q8_K *)(a + (size_t)t * as) + b;
            const __m512i a0 = _mm512_loadu_si512(yb->qs), a1 = _mm512_loadu_si512(yb->qs + 64);
            const __m512i a2 = _mm512_loadu_si512(yb->qs + 128), a3 = _mm512_loadu_si512(yb->qs + 192);
            const __m256i bs = _mm256_loadu_si256((const __m256i *)yb->bsums);
            const __m512 dx = _mm512_set1_ps(yb->d);
            _Pragma("GCC unroll 16")
            for (int r = 0; r < R; r++) {
                /* two chains of two (the integer sums are exact in any order) */
                __m512i ia = _mm512_madd_epi16(_mm512_maddubs_epi16(wq[r][0], a0), sc[r][0]);
                __m512i ib = _mm512_madd_epi16(_mm512_maddubs_epi16(wq[r][2], a2), sc[r][2]);
                ia = _mm512_dpwssd_epi32(ia, _mm512_maddubs_epi16(wq[r][1], a1), sc[r][1]);
                ib = _mm512_dpwssd_epi32(ib, _mm512_maddubs_epi16(wq[r][3], a3), sc[r][3]);
                ia = _mm512_add_epi32(ia, ib);
                /* lanes 0..7: the scaled code sums folded to 8 lanes; 8..15: the mins
                 * sums; one conversion and one FMA with [d*dx, -dmin*dx] */
                const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(ia), _mm512_extracti64x4_epi64(ia, 1));
                const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(i8), _mm256_madd_epi16(mn[r], bs), 1);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(both), _mm512_mul_ps(dd[r], dx), acc[r][t]);
            }
        }
    }
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) y[(size_t)t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

TGT static INL void tile_q6K(const int R, const int T, int n, const uint8_t *w, size_t ws,
                             const uint8_t *a, size_t as, float *y, size_t ys) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* per 16-bit word shift counts: high-bit pairs for the low/high 256-bit halves */
    const __m512i shA = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shB = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    __m512 acc[KR][KT1];
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < n / QK_K; b++) {
        __m512i wq[KR][4], sc[KR][4];
        __m256i sc16[KR];
        __m512 dw[KR];
        _Pragma("GCC unroll 16")
        for (int r = 0; r < R; r++) {
            const nk_block_q6_K *x = (const nk_block_q6_K *)(w + (size_t)r * ws) + b;
            _Pragma("GCC unroll 16")
            for (int h = 0; h < 2; h++) {
                const __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
                const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h)));
                wq[r][2 * h] = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_and_si512(_mm512_sllv_epi16(H, shA), m30));
                wq[r][2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                                   _mm512_and_si512(_mm512_srlv_epi16(H, shB), m30));
            }
            sc16[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
            const __m512i s = _mm512_castsi256_si512(sc16[r]);
            _Pragma("GCC unroll 16")
            for (int k = 0; k < 4; k++) sc[r][k] = _mm512_permutexvar_epi16(idx_q6K(k), s);
            dw[r] = _mm512_set1_ps(h2f(x->d));
        }
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) {
            const nk_block_q8_K *yb = (const nk_block_q8_K *)(a + (size_t)t * as) + b;
            const __m512i a0 = _mm512_loadu_si512(yb->qs), a1 = _mm512_loadu_si512(yb->qs + 64);
            const __m512i a2 = _mm512_loadu_si512(yb->qs + 128), a3 = _mm512_loadu_si512(yb->qs + 192);
            const __m256i bs = _mm256_loadu_si256((const __m256i *)yb->bsums);
            const __m512 dx = _mm512_set1_ps(yb->d);
            _Pragma("GCC unroll 16")
            for (int r = 0; r < R; r++) {
                __m512i ia = _mm512_madd_epi16(_mm512_maddubs_epi16(wq[r][0], a0), sc[r][0]);
                ia = _mm512_dpwssd_epi32(ia, _mm512_maddubs_epi16(wq[r][1], a1), sc[r][1]);
                ia = _mm512_dpwssd_epi32(ia, _mm512_maddubs_epi16(wq[r][2], a2), sc[r][2]);
                ia = _mm512_dpwssd_epi32(ia, _mm512_maddubs_epi16(wq[r][3], a3), sc[r][3]);
                /* codes are stored +32: subtract 32 * sum_g scale_g * bsum_g */
                const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(sc16[r], bs), 5);
                ia = _mm512_sub_epi32(ia, _mm512_inserti64x4(_mm512_setzero_si512(), off, 0));
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
    _Pragma("GCC unroll 16")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; t++) y[(size_t)t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ---- drivers: walk nr x nt in tiles, edge tiles instantiated for every size ------- */

#define TILE_CASES_4x4(CALL) \
    switch ((R - 1) * 4 + (T - 1)) { \
    case 0: CALL(1, 1); break;  case 1: CALL(1, 2); break;  case 2: CALL(1, 3); break;  case 3: CALL(1, 4); break; \
    case 4: CALL(2, 1); break;  case 5: CALL(2, 2); break;  case 6: CALL(2, 3); break;  case 7: CALL(2, 4); break; \
    case 8: CALL(3, 1); break;  case 9: CALL(3, 2); break;  case 10: CALL(3, 3); break; case 11: CALL(3, 4); break; \
    case 12: CALL(4, 1); break; case 13: CALL(4, 2); break; case 14: CALL(4, 3); break; default: CALL(4, 4); break; \
    }

#define TILE_CASES_2x6(CALL) \
    switch ((R - 1) * 6 + (T - 1)) { \
    case 0: CALL(1, 1); break; case 1: CALL(1, 2); break; case 2: CALL(1, 3); break; \
    case 3: CALL(1, 4); break; case 4: CALL(1, 5); break; case 5: CALL(1, 6); break; \
    case 6: CALL(2, 1); break; case 7: CALL(2, 2); break; case 8: CALL(2, 3); break; \
    case 9: CALL(2, 4); break; case 10: CALL(2, 5); break; default: CALL(2, 6); break; \
    }

/* Decode-sized batches go one row at a time: the rows of a chunk are then read as one
 * sequential stream, which the hardware prefetchers follow at full DRAM bandwidth
 * (tiles of four interleaved rows measured 4x slower from DRAM). */
#define DRIVER(NAME, TILE_CALL, ROWS, TOKS, CASES) \
    TGT static void NAME(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y, \
                         size_t ys) { \
        if (nt == 1) { \
            /* one token: the 1 x 1 tile (so the same bits) in a loop of its own, which \
             * keeps the tile's constants in registers from row to row */ \
            const uint8_t *ap = a; \
            for (int r = 0; r < nr; r++) { \
                const uint8_t *wp = (const uint8_t *)w + (size_t)r * ws; \
                float *yp = y + r; \
                TILE_CALL(1, 1); \
            } \
            return; \
        } \
        if (ROWS == KR && nt <= KT1) { \
            /* small batches: one row at a time with every token in the tile, so the \
             * rows stream sequentially (two interleaved rows measured 3-4x slower \
             * from DRAM) and each block is unpacked once for all tokens */ \
            const uint8_t *ap = a; \
            for (int r = 0; r < nr; r++) { \
                const uint8_t *wp = (const uint8_t *)w + (size_t)r * ws; \
                float *yp = y + r; \
                switch (nt) { \
                case 2: TILE_CALL(1, 2); break; case 3: TILE_CALL(1, 3); break; \
                case 4: TILE_CALL(1, 4); break; case 5: TILE_CALL(1, 5); break; \
                case 6: TILE_CALL(1, 6); break; case 7: TILE_CALL(1, 7); break; \
                default: TILE_CALL(1, 8); break; \
                } \
            } \
            return; \
        } \
        const int tr = nt <= 2 ? 1 : ROWS; \
        for (int r0 = 0; r0 < nr; r0 += tr) { \
            const int R = nr - r0 < tr ? nr - r0 : tr; \
            const uint8_t *wp = (const uint8_t *)w + (size_t)r0 * ws; \
            for (int t0 = 0; t0 < nt; t0 += TOKS) { \
                const int T = nt - t0 < TOKS ? nt - t0 : TOKS; \
                const uint8_t *ap = (const uint8_t *)a + (size_t)t0 * as; \
                float *yp = y + (size_t)t0 * ys + r0; \
                CASES(TILE_CALL) \
            } \
        } \
    }

#define CALL_Q8_0(r, t) tile32(NK_TYPE_Q8_0, r, t, n, wp, ws, ap, as, yp, ys)
#define CALL_Q5_0(r, t) tile32(NK_TYPE_Q5_0, r, t, n, wp, ws, ap, as, yp, ys)
#define CALL_Q4_0(r, t) tile32(NK_TYPE_Q4_0, r, t, n, wp, ws, ap, as, yp, ys)
#define CALL_Q4_K(r, t) tile_q4K(r, t, n, wp, ws, ap, as, yp, ys)
#define CALL_Q6_K(r, t) tile_q6K(r, t, n, wp, ws, ap, as, yp, ys)

DRIVER(gemm_q8_0, CALL_Q8_0, TR, TT, TILE_CASES_4x4)
DRIVER(gemm_q5_0, CALL_Q5_0, TR, TT, TILE_CASES_4x4)
DRIVER(gemm_q4_0, CALL_Q4_0, TR, TT, TILE_CASES_4x4)
DRIVER(gemm_q4_K, CALL_Q4_K, KR, KT, TILE_CASES_2x6)
DRIVER(gemm_q6_K, CALL_Q6_K, KR, KT, TILE_CASES_2x6)

static const nk_gemm_kernel k_q8_0 = { gemm_q8_0, a32_quant_q8_0, a32_row_size, 0 };
static const nk_gemm_kernel k_q5_0 = { gemm_q5_0, a32_quant_q5_0, a32_row_size, 0 };
static const nk_gemm_kernel k_q4_0 = { gemm_q4_0, a32_quant_q4_0, a32_row_size, 0 };
static const nk_gemm_kernel k_q4_K = { gemm_q4_K, q8K_perm_quant, q8K_row_size, 0 };
static const nk_gemm_kernel k_q6_K = { gemm_q6_K, q8K_quant, q8K_row_size, 0 };

const nk_gemm_kernel *nk_gemm_avx512(uint32_t wtype) {
    /* cpuid traps to the hypervisor in a VM: ask once (a benign race: every thread
     * stores the same answer) */
    static _Atomic int have = -1;
    if (have < 0) have = nk_isa_supported(NK_ISA_AVX512);
    if (!have) return NULL;
    switch (wtype) {
    case NK_TYPE_Q8_0: return &k_q8_0;
    case NK_TYPE_Q5_0: return &k_q5_0;
    case NK_TYPE_Q4_0: return &k_q4_0;
    case NK_TYPE_Q4_K: return &k_q4_K;
    case NK_TYPE_Q6_K: return &k_q6_K;
    default: return NULL;
    }
}

#else
const nk_gemm_kernel *nk_gemm_avx512(uint32_t wtype) {
    (void)wtype;
    return NULL;
}
#endif

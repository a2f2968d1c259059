/*
 * attn_avx512.h: the pieces the tiled prefill (attn_tile.c) and decoding
 * (attn_dec.c) share: target attributes, the f16 rounding, the scratch carving and
 * the lane-sum tree of 16 positions at once. Include only inside an x86 guard.
 */
#ifndef NK_ATTN_AVX512_H
#define NK_ATTN_AVX512_H

#include "tensor/attn_plan.h"

#include <immintrin.h>

#define ATTN_TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define TILE_INLINE ATTN_TGT512 static inline __attribute__((always_inline))
/* the loops over rows and registers must unroll for the accumulators to stay in registers */
#define TILE_UNROLL _Pragma("GCC unroll 16")

/* x rounded to f16 and back (round to nearest even, as nk_fp32_to_fp16) */
TILE_INLINE __m512 rt_f16_512(__m512 x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }

/* nk_attn_piece_merge (ops.h's merge of a piece into the total) for n a multiple of
 * 16, 16 dims at a time: the same products and sums, never contracted */
TILE_INLINE void tile_piece_merge(int n, float *accT, float *MT, float *ST, const float *acc, float M, float S) {
    float a, b;
    nk_attn_piece_factors(MT, ST, M, S, &a, &b);
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    for (int d = 0; d < n; d += 16)
        _mm512_storeu_ps(accT + d, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(accT + d), va),
                                                 _mm512_mul_ps(_mm512_loadu_ps(acc + d), vb)));
}


static inline tile_ws tile_carve(void *base, int hd) {
    uint8_t *p = base;
    tile_ws t;
    t.kf = (float *)p, p += round64((size_t)TILE_KF * 4);
    t.qf = (float *)p, p += round64((size_t)TILE_RMAX * (size_t)hd * 4);
    t.acc = (float *)p, p += round64((size_t)TILE_RMAX * (size_t)hd * 4);
    t.sc = (float *)p, p += round64((size_t)TILE_RMAX * TILE_CMAX * 4);
    t.ms = (float *)p, p += round64((size_t)TILE_RMAX * TILE_CMAX * 4);
    t.w = (float *)p, p += round64((size_t)TILE_RMAX * TILE_CMAX * 4);
    t.resc = (uint32_t *)p, p += round64((size_t)TILE_CMAX * 4);
    t.valid = (uint32_t *)p;
    return t;
}

/* _mm512_reduce_add_ps's tree (lanes l + l+8, then + l+4, then + l+2, then + l+1) on
 * 16 vectors at once: each level adds the same lane pairs of two vectors packed side
 * by side. Returns the 16 sums in position order. */
TILE_INLINE __m512 tile_pair1(__m512 x0, __m512 x1) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, 0x44), _mm512_shuffle_f32x4(x0, x1, 0xEE));
}
TILE_INLINE __m512 tile_pair2(__m512 y0, __m512 y1) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(y0, y1, 0x88), _mm512_shuffle_f32x4(y0, y1, 0xDD));
}
/* The tree's last two levels: z[g]'s 128-bit group i holds position 4g+i's 4 partial
 * sums (after tile_pair1/tile_pair2); returns the 16 sums in position order. */
TILE_INLINE __m512 tile_tree_last(const __m512 z[4]) {
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x44), _mm512_shuffle_ps(z[0], z[1], 0xEE));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_ps(z[2], z[3], 0x44), _mm512_shuffle_ps(z[2], z[3], 0xEE));
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, 0x88), _mm512_shuffle_ps(u0, u1, 0xDD));
    return _mm512_permutexvar_ps(order, r);   /* lane 4g+i of r holds position 4i+g */
}

#endif

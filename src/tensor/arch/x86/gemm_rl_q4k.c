/*
 * gemm_rl_q4k.c: the rows-in-lanes batch kernel for Q4_K weights (contract in
 * tensor/ops_gemm.h), used by nk_matmul for prompt-sized batches.
 *
 * The register-blocked kernel (gemm_avx512.c) puts 64 codes of ONE row in a zmm and
 * sums its 16 lanes at the end; here each 32-bit lane belongs to a different weight
 * row, so one vpdpbusd multiplies 4 codes of each of 16 rows by the same 4 activation
 * codes (an embedded {1to16} broadcast from memory), and a whole 16-row output of one
 * token is one register: no horizontal sums, no per-token decoding.
 *
 * For each 256-element block column of 16 rows the kernel unpacks, once:
 *  - the codes, by a 16 x 16 dword transpose of the rows' nibble bytes, into
 *    w[s][j] (sub-block s = 0..7, j = 0..7): lane r = codes 32s+4j .. 32s+4j+3 of
 *    row r as u8 (the Q4_K byte order puts elements i and i+32 of a 64-group in the
 *    low and high nibble of one byte, so dword j of a 32-byte group holds exactly
 *    codes 4j..4j+3 of two sub-blocks);
 *  - the 6-bit scales as int32 per sub-block, the mins as int16 pairs, d and dmin as
 *    floats, each a vector with one lane per row;
 * into a 5 KB scratch that stays in L1 while every token of the tile (up to 64, in
 * groups of 8 that share each loaded weight register) meets it.
 *
 * Per token and block, all in int32 lanes and exact: isum = sum_s sc_s * (sum of 8
 * vpdpbusd over the sub-block), msum = sum_s m_s * (sum of the sub-block's 32
 * activation codes) by 4 vpdpwssd; then in float y += isum * (d * dx) and
 * y -= msum * (dmin * dx) (two FMAs). The activation rows are llama.cpp's Q8_K codes
 * and scale, re-laid with the sums per 32 codes (rl_act).
 *
 * Determinism: every output lane sees the same operations in the same order (blocks
 * in order, one FMA pair each) whatever its row position, token group or tile, so
 * results do not depend on nr/nt splits or threads. Rows past nr are zero lanes that
 * are never stored.
 */
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "tensor/arch/x86/gemm_rl.h"

#define RL_ROWS 16   /* weight rows per pass: one per 32-bit lane */
#define RL_TOK 64    /* tokens per pass over a block column (accumulators on the stack) */
#define RL_GRP 8     /* tokens sharing each loaded weight register */

/* One block of a converted activation row: the Q8_K codes and scale, and the sums of
 * each 32 codes (|sum| <= 32 * 128, an int16) for the mins. 288 bytes, so every
 * 4-byte group the kernel broadcasts is 4-aligned. */
typedef struct rl_act {
    int8_t qs[QK_K];
    int16_t s32[QK_K / 32];
    float d;
    uint32_t pad[3];
} rl_act;
_Static_assert(sizeof(rl_act) == 288, "rl_act size");

static size_t rl_act_row_size(int64_t n) { return (size_t)(n / QK_K) * sizeof(rl_act); }

/* The codes and scale of the installed Q8_K from_float (llama.cpp's exactly), block
 * by block (Q8_K blocks are independent), plus the per-32 sums. */
static void rl_act_quant(const float *x, void *dst, int64_t n) {
    const nk_from_float_fn q8 = nk_type_get(NK_TYPE_Q8_K)->from_float;
    rl_act *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++) {
        nk_block_q8_K blk;
        q8(x + b * QK_K, &blk, QK_K);
        memcpy(o[b].qs, blk.qs, QK_K);
        for (int k = 0; k < QK_K / 32; k++) o[b].s32[k] = (int16_t)(blk.bsums[2 * k] + blk.bsums[2 * k + 1]);
        o[b].d = blk.d;
        memset(o[b].pad, 0, sizeof o[b].pad);
    }
}

/* One block column of 16 rows, unpacked (lane r = row r). */
typedef struct rl_blk {
    __m512i w[8][8];    /* [sub-block][j]: codes 4j..4j+3 of the sub-block, u8 */
    __m512i sc[8];      /* sub-block scales, int32 */
    __m512i mn[4];      /* mins of sub-blocks 2k and 2k+1, int16 pair */
    __m512 d, dmin;
} rl_blk;

/* Transpose 16 rows of 16 dwords: out[c] lane r = in[r] dword c. */
TGT static INL void tr16(const __m512i in[16], __m512i out[16]) {
    __m512i a[16], b[16];
    UNROLL
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
    }
    /* b[4i+k], 128-bit lane L: column 4L+k, rows 4i..4i+3 */
    UNROLL
    for (int i = 0; i < 4; i++) {
        b[4 * i + 0] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    /* a 4 x 4 transpose of 128-bit lanes for each k */
    UNROLL
    for (int k = 0; k < 4; k++) {
        const __m512i s0 = _mm512_shuffle_i32x4(b[k], b[4 + k], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i s1 = _mm512_shuffle_i32x4(b[k], b[4 + k], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i s2 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i s3 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], _MM_SHUFFLE(3, 2, 3, 2));
        out[k] = _mm512_shuffle_i32x4(s0, s2, _MM_SHUFFLE(2, 0, 2, 0));
        out[4 + k] = _mm512_shuffle_i32x4(s0, s2, _MM_SHUFFLE(3, 1, 3, 1));
        out[8 + k] = _mm512_shuffle_i32x4(s1, s3, _MM_SHUFFLE(2, 0, 2, 0));
        out[12 + k] = _mm512_shuffle_i32x4(s1, s3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* The headers of block b of rows 0..R-1 with one dword per row in each of four
 * vectors: hd (d | dmin << 16) and the three dwords w0 w1 w2 of packed scales. */
TGT static INL void rl_hdr_words(__m512i hw[4], const uint8_t *w, size_t ws, int R, int b) {
    /* z_i holds rows i, 4+i, 8+i, 12+i in its 128-bit lanes, so the 4 x 4 dword
     * transposes inside the lanes below leave lane 4m+i = row 4m+i */
    __m512i z[4];
    UNROLL
    for (int i = 0; i < 4; i++) {
        __m128i h[4];
        UNROLL
        for (int m = 0; m < 4; m++) {
            const int r = 4 * m + i;
            h[m] = r < R ? _mm_loadu_si128((const __m128i *)((const nk_block_q4_K *)(w + (size_t)r * ws) + b))
                         : _mm_setzero_si128();
        }
        z[i] = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(h[0]), h[1], 1),
                                                     h[2], 2), h[3], 3);
    }
    const __m512i p0 = _mm512_unpacklo_epi32(z[0], z[1]), p1 = _mm512_unpackhi_epi32(z[0], z[1]);
    const __m512i p2 = _mm512_unpacklo_epi32(z[2], z[3]), p3 = _mm512_unpackhi_epi32(z[2], z[3]);
    hw[0] = _mm512_unpacklo_epi64(p0, p2);
    hw[1] = _mm512_unpackhi_epi64(p0, p2);
    hw[2] = _mm512_unpacklo_epi64(p1, p3);
    hw[3] = _mm512_unpackhi_epi64(p1, p3);
}

/* From those words: sub-block scales (int32), mins (int16 pairs), d and dmin, one
 * lane per row. */
TGT static INL void rl_hdr_from_words(__m512i sc[8], __m512i mn[4], __m512 *d, __m512 *dmin, __m512i hd, __m512i w0,
                                      __m512i w1, __m512i w2) {
    *d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hd));
    *dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(hd, 16)));
    /* nk_get_scale_min_k4's bits, four sub-blocks per dword */
    const __m512i k3f = _mm512_set1_epi8(0x3F), k0f = _mm512_set1_epi8(0x0F), k03 = _mm512_set1_epi8(0x03);
    const __m512i sc_lo = _mm512_and_si512(w0, k3f), mn_lo = _mm512_and_si512(w1, k3f);
    const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(w2, k0f),
                                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), k03), 4));
    const __m512i mn_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), k0f),
                                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), k03), 4));
    UNROLL
    for (int k = 0; k < 8; k++) {
        /* byte k%4 of each dword, zero-extended (vpshufb indexes 128-bit lanes) */
        const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)(0x80808000u | (unsigned)(k % 4))),
                                             _mm512_set4_epi32(12, 8, 4, 0));
        sc[k] = _mm512_shuffle_epi8(k < 4 ? sc_lo : sc_hi, idx);
    }
    UNROLL
    for (int k = 0; k < 4; k++) {
        /* bytes 2(k%2) and 2(k%2)+1 of each dword, as two zero-extended words */
        const unsigned lo = 2u * (unsigned)(k % 2);
        const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)(0x80008000u | ((lo + 1) << 16) | lo)),
                                             _mm512_set4_epi32(0x000C000C, 0x00080008, 0x00040004, 0));
        mn[k] = _mm512_shuffle_epi8(k < 2 ? mn_lo : mn_hi, idx);
    }
}

/* The headers of block b of rows 0..R-1: sub-block scales (int32), mins (int16
 * pairs), d and dmin, one lane per row. */
TGT static INL void rl_unpack_hdr(__m512i sc[8], __m512i mn[4], __m512 *d, __m512 *dmin, const uint8_t *w, size_t ws,
                                  int R, int b) {
    __m512i hw[4];
    rl_hdr_words(hw, w, ws, R, b);
    rl_hdr_from_words(sc, mn, d, dmin, hw[0], hw[1], hw[2], hw[3]);
}

/* Unpack block b of rows 0..R-1 (R <= 16; rows w_stride bytes apart) into s. Rows
 * past R are not read and unpack as zeros. */
TGT static INL void rl_unpack(rl_blk *s, const uint8_t *w, size_t ws, int R, int b) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i in[16], col[16];
    /* codes: bytes 0..63 (groups 0, 1: sub-blocks 0..3), then 64..127 (4..7) */
    UNROLL
    for (int h = 0; h < 2; h++) {
        UNROLL
        for (int r = 0; r < RL_ROWS; r++) {
            const nk_block_q4_K *x = (const nk_block_q4_K *)(w + (size_t)r * ws) + b;
            in[r] = r < R ? _mm512_loadu_si512(x->qs + 64 * h) : _mm512_setzero_si512();
        }
        tr16(in, col);
        UNROLL
        for (int c = 0; c < 16; c++) {
            const int g = 2 * h + c / 8, j = c % 8;   /* 32-byte group, dword in it */
            s->w[2 * g][j] = _mm512_and_si512(col[c], m4);
            s->w[2 * g + 1][j] = _mm512_and_si512(_mm512_srli_epi32(col[c], 4), m4);
        }
    }
    rl_unpack_hdr(s->sc, s->mn, &s->d, &s->dmin, w, ws, R, b);
}

/* One sub-block of 32 weights (wv: 16 rows' codes in lanes) against token codes q,
 * scaled by the rows' sub-block scales: isum + sc * dot. Two chains of 4: vpdpbusd's
 * latency, not its throughput, bounds one chain of 8 (measured ~5-10% slower). */
TGT static INL __m512i rl_sb_dot(__m512i isum, const __m512i *wv, const int8_t *q, __m512i sc) {
    __m512i p0 = rl_dpbusd_bc(_mm512_setzero_si512(), wv[0], q);
    __m512i p1 = rl_dpbusd_bc(_mm512_setzero_si512(), wv[4], q + 16);
    UNROLL
    for (int j = 1; j < 4; j++) {
        p0 = rl_dpbusd_bc(p0, wv[j], q + 4 * j);
        p1 = rl_dpbusd_bc(p1, wv[4 + j], q + 16 + 4 * j);
    }
    return _mm512_add_epi32(isum, _mm512_mullo_epi32(_mm512_add_epi32(p0, p1), sc));
}

/* A block's end for T tokens: acc[t] += d*dx*isum[t] - dmin*dx*(mins . token sums). */
TGT static INL void rl_finish(const int T, const __m512i *mn, __m512 d, __m512 dmin, const rl_act *const *x,
                              const __m512i *isum, __m512 *acc) {
    UNROLL
    for (int t = 0; t < T; t++) {
        __m512i m = _mm512_setzero_si512();
        UNROLL
        for (int k = 0; k < 4; k++) m = rl_dpwssd_bc(m, mn[k], x[t]->s32 + 2 * k);
        const __m512 dx = _mm512_set1_ps(x[t]->d);
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, dx), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, dx), y);
    }
}

/* T tokens (a compile-time constant after inlining) against one unpacked block:
 * acc[t] (16 rows of token t) += their dots. x[t]: token t's block. */
TGT static INL void rl_tokens(const int T, const rl_blk *s, const rl_act *const *x, __m512 *acc) {
    __m512i isum[RL_GRP];
    UNROLL
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    NO_UNROLL
    for (int sb = 0; sb < 8; sb++) {
        __m512i wv[8];
        UNROLL
        for (int j = 0; j < 8; j++) wv[j] = s->w[sb][j];
        const __m512i sc = s->sc[sb];
        UNROLL
        for (int t = 0; t < T; t++) {
            isum[t] = rl_sb_dot(isum[t], wv, x[t]->qs + 32 * sb, sc);
        }
    }
    rl_finish(T, s->mn, s->d, s->dmin, x, isum, acc);
}

/* Decode-sized batches (up to RL_GRP tokens, one token group) keep the transposed
 * code bytes as tr16 leaves them (32 zmm per block instead of 64) and split the
 * nibbles when a sub-block is used: with one token group every sub-block is used
 * once, so the splitting costs what it cost in rl_unpack, and the scratch's stores
 * and loads halve. At up to 8 tokens the unpack is most of this kernel's time (it
 * costs the same from L2 as from DRAM: not the memory). Same integer sums and the
 * same two FMAs per block as rl_tokens, so the same bits. Measured
 * (bench/bench_gemm_small.c-style driver, 100,000 rows of K 1,024 from DRAM, one
 * thread, thread CPU ms, same run): 4 tokens 3.05 -> 2.70-2.75, 8 tokens 4.79-4.81
 * -> 4.40-4.54, 9 tokens (the general path) unchanged. */
/* A block's headers, one lane per row: sub-block scales (int32), mins (int16 pairs),
 * d and dmin (also what the repacked layout's kernel loads per block). */
typedef struct rl_hdr {
    __m512i sc[8];
    __m512i mn[4];
    __m512 d, dmin;
} rl_hdr;

typedef struct rl_cblk {
    __m512i col[2][16];
    rl_hdr hd;
} rl_cblk;

TGT static INL void rl_unpack_c(rl_cblk *s, const uint8_t *w, size_t ws, int R, int b) {
    __m512i in[16];
    UNROLL
    for (int h = 0; h < 2; h++) {
        UNROLL
        for (int r = 0; r < RL_ROWS; r++) {
            const nk_block_q4_K *x = (const nk_block_q4_K *)(w + (size_t)r * ws) + b;
            in[r] = r < R ? _mm512_loadu_si512(x->qs + 64 * h) : _mm512_setzero_si512();
        }
        tr16(in, s->col[h]);
    }
    rl_unpack_hdr(s->hd.sc, s->hd.mn, &s->hd.d, &s->hd.dmin, w, ws, R, b);
}

/* T tokens against one block whose transposed code bytes are the 32 vectors at col
 * (col[h][c] lane r: bytes 64h + 4c .. + 3 of row r's codes) with headers hd: the
 * nibbles split here, per sub-block. Serves the unpacked file layout (rl_cblk) and the
 * repacked one (the same vectors stored at load), so both give the same bits. */
TGT static INL void rl_tokens_c(const int T, const __m512i *col, const rl_hdr *s, const rl_act *const *x, __m512 *acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i isum[RL_GRP];
    UNROLL
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    NO_UNROLL
    for (int sb = 0; sb < 8; sb++) {
        const int g = sb >> 1, h = g >> 1, c0 = 8 * (g & 1);
        const __m512i *cv = col + 16 * h + c0;
        __m512i wv[8];
        if (sb & 1) {
            UNROLL
            for (int j = 0; j < 8; j++) wv[j] = _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cv + j), 4), m4);
        } else {
            UNROLL
            for (int j = 0; j < 8; j++) wv[j] = _mm512_and_si512(_mm512_loadu_si512(cv + j), m4);
        }
        const __m512i sc = s->sc[sb];
        UNROLL
        for (int t = 0; t < T; t++) {
            isum[t] = rl_sb_dot(isum[t], wv, x[t]->qs + 32 * sb, sc);
        }
    }
    rl_finish(T, s->mn, s->d, s->dmin, x, isum, acc);
}

#define RL_CASE_C(T) case T: rl_tokens_c(T, &cb.col[0][0], &cb.hd, xp, acc); break;
#define RL_CASE(T) case T: rl_tokens(T, &blk, xp, acc + t); break;

TGT static void rl_gemm(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                        size_t ys) {
    const int nb = n / QK_K;
    rl_blk blk;
    __m512 acc[RL_TOK];
    for (int r0 = 0; r0 < nr; r0 += RL_ROWS) {
        const int R = nr - r0 < RL_ROWS ? nr - r0 : RL_ROWS;
        const __mmask16 live = (__mmask16)((1u << R) - 1);
        const uint8_t *wr = (const uint8_t *)w + (size_t)r0 * ws;
        if (nt <= RL_GRP) {
            rl_cblk cb;
            for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                rl_prefetch_part(wr + RL_ROWS * ws, RL_ROWS * ws, b, nb);
                rl_unpack_c(&cb, wr, ws, R, b);
                const rl_act *xp[RL_GRP];
                for (int i = 0; i < nt; i++) xp[i] = (const rl_act *)((const uint8_t *)a + (size_t)i * as) + b;
                switch (nt) {
                RL_CASE_C(1) RL_CASE_C(2) RL_CASE_C(3) RL_CASE_C(4) RL_CASE_C(5) RL_CASE_C(6) RL_CASE_C(7)
                default: rl_tokens_c(RL_GRP, &cb.col[0][0], &cb.hd, xp, acc); break;
                }
            }
            for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + (size_t)t * ys + r0, live, acc[t]);
            continue;
        }
        for (int t0 = 0; t0 < nt; t0 += RL_TOK) {
            const int TT = nt - t0 < RL_TOK ? nt - t0 : RL_TOK;
            const uint8_t *at = (const uint8_t *)a + (size_t)t0 * as;
            for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                if (t0 == 0) rl_prefetch_part(wr + RL_ROWS * ws, RL_ROWS * ws, b, nb);
                rl_unpack(&blk, wr, ws, R, b);
                for (int t = 0; t < TT; t += RL_GRP) {
                    const rl_act *xp[RL_GRP];
                    const int T = TT - t < RL_GRP ? TT - t : RL_GRP;
                    for (int i = 0; i < T; i++) xp[i] = (const rl_act *)(at + (size_t)(t + i) * as) + b;
                    switch (T) {
                    RL_CASE(1) RL_CASE(2) RL_CASE(3) RL_CASE(4) RL_CASE(5) RL_CASE(6) RL_CASE(7)
                    default: rl_tokens(RL_GRP, &blk, xp, acc + t); break;
                    }
                }
            }
            for (int t = 0; t < TT; t++) _mm512_mask_storeu_ps(y + (size_t)(t0 + t) * ys + r0, live, acc[t]);
        }
    }
}

/* ---- the 16-row interleaved layout (repacked at load) --------------------------------
 *
 * What rl_unpack_c and rl_unpack_hdr's transposes compute for every block of 16 rows at
 * every step is stored once, at load (nk_q4k_r16_pack): per 256-element block of a
 * group (2,304 bytes: the 16 rows' 144-byte blocks, so the tensor keeps its size and
 * its row offsets at group boundaries) four vectors with one dword per row (d | dmin
 * << 16, then the three dwords of packed scales) and the 32 vectors of transposed code
 * bytes (col[h][c] lane r: bytes 64h + 4c .. + 3 of row r's codes). The kernel splits
 * the nibbles and the scales as rl_tokens_c does, reading them from the repacked
 * bytes: the same operations, so gemm_rl's bits on the original rows at every token
 * count. A final partial group stays in the file's row layout. */

#define R16_BLK 2304
_Static_assert(R16_BLK == 16 * sizeof(nk_block_q4_K), "r16 block size");

TGT static INL void r16_hdr_load(rl_hdr *h, const uint8_t *blk) {
    const __m512i *v = (const __m512i *)blk;
    rl_hdr_from_words(h->sc, h->mn, &h->d, &h->dmin, _mm512_loadu_si512(v), _mm512_loadu_si512(v + 1),
                      _mm512_loadu_si512(v + 2), _mm512_loadu_si512(v + 3));
}

#define R16_PASS 64
#ifndef R16_PF
#define R16_PF 4
#endif
#define R16_CASE(T) case T: rl_tokens_c(T, (const __m512i *)(blk + 256), &hd, xp, acc + t); break;

TGT static void gemm_r16_q4_K(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                              size_t ys) {
    const int nb = n / QK_K;
    const int full = nr & ~(RL_ROWS - 1);
    __m512 acc[R16_PASS];
    for (int r0 = 0; r0 < full; r0 += RL_ROWS) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)r0 * ws;
        for (int t0 = 0; t0 < nt; t0 += R16_PASS) {
            const int TT = nt - t0 < R16_PASS ? nt - t0 : R16_PASS;
            const uint8_t *at = (const uint8_t *)a + (size_t)t0 * as;
            for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = gw + (size_t)b * R16_BLK;
                /* groups are contiguous: fetch two blocks ahead (past the end: harmless) */
                if (t0 == 0) rl_prefetch_part(blk + R16_PF * R16_BLK, R16_BLK, 0, 1);
                rl_hdr hd;
                r16_hdr_load(&hd, blk);
                for (int t = 0; t < TT; t += RL_GRP) {
                    const int T = TT - t < RL_GRP ? TT - t : RL_GRP;
                    const rl_act *xp[RL_GRP];
                    for (int i = 0; i < T; i++) xp[i] = (const rl_act *)(at + (size_t)(t + i) * as) + b;
                    switch (T) {
                    R16_CASE(1) R16_CASE(2) R16_CASE(3) R16_CASE(4) R16_CASE(5) R16_CASE(6) R16_CASE(7)
                    default: rl_tokens_c(RL_GRP, (const __m512i *)(blk + 256), &hd, xp, acc + t); break;
                    }
                }
            }
            for (int t = 0; t < TT; t++) _mm512_storeu_ps(y + (size_t)(t0 + t) * ys + r0, acc[t]);
        }
    }
    if (full < nr)   /* the partial last group: the file's rows */
        rl_gemm(n, nr - full, nt, (const uint8_t *)w + (size_t)full * ws, ws, a, as, y + full, ys);
}

TGT static void r16_pack_avx512(const void *src, void *dst, int64_t nrows, int64_t n) {
    const int nb = (int)(n / QK_K);
    const size_t ws = (size_t)nb * sizeof(nk_block_q4_K);
    const int64_t full = nrows & ~(int64_t)(RL_ROWS - 1);
    for (int64_t r0 = 0; r0 < full; r0 += RL_ROWS) {
        const uint8_t *gs = (const uint8_t *)src + (size_t)r0 * ws;
        uint8_t *gd = (uint8_t *)dst + (size_t)r0 * ws;
        for (int b = 0; b < nb; b++) {
            if (r0 + RL_ROWS < full) rl_prefetch_part(gs + RL_ROWS * ws, RL_ROWS * ws, b, nb);
            __m512i *o = (__m512i *)(gd + (size_t)b * R16_BLK);
            __m512i hw[4], in[16], col[16];
            rl_hdr_words(hw, gs, ws, RL_ROWS, b);
            UNROLL
            for (int i = 0; i < 4; i++) _mm512_storeu_si512(o + i, hw[i]);
            UNROLL
            for (int h = 0; h < 2; h++) {
                UNROLL
                for (int r = 0; r < RL_ROWS; r++)
                    in[r] = _mm512_loadu_si512(((const nk_block_q4_K *)(gs + (size_t)r * ws) + b)->qs + 64 * h);
                tr16(in, col);
                UNROLL
                for (int c = 0; c < 16; c++) _mm512_storeu_si512(o + 4 + 16 * h + c, col[c]);
            }
        }
    }
    if (full < nrows)
        memcpy((uint8_t *)dst + (size_t)full * ws, (const uint8_t *)src + (size_t)full * ws, (size_t)(nrows - full) * ws);
}

static const nk_gemm_kernel k_r16_q4_K = { gemm_r16_q4_K, rl_act_quant, rl_act_row_size, 1 };

const nk_gemm_kernel *nk_gemm_r16_q4_K(void) { return nk_gemm_rl_q4_K() ? &k_r16_q4_K : NULL; }

bool nk_q4k_r16_pack(const void *src, void *dst, int64_t nrows, int64_t n) {
    if (!nk_gemm_r16_q4_K() || n % QK_K) return false;
    r16_pack_avx512(src, dst, nrows, n);
    return true;
}

/* From 2 tokens. Measured on weights streamed from DRAM as a decode step reads them
 * (100,000 rows of K 1024 on 2 MB pages, one thread, thread CPU time): 4 tokens
 * 3.1-3.8 ms vs 4.0-4.2 for gemm_avx512.c's one-row tiles, 8 tokens 4.6-5.4 vs
 * 7.1-7.8; 2 and 3 tokens lead since rl_small (above). (Without the prefetch of the
 * next 16 rows this kernel took 5-12 ms at 4-8 tokens from DRAM.) One token stays on
 * the one-row kernel, whose bits the single-sequence path has always had. */
#define NK_RL_Q4_K_MIN_TOK 4

static const nk_gemm_kernel k_rl_q4_K = { rl_gemm, rl_act_quant, rl_act_row_size, NK_RL_Q4_K_MIN_TOK };

const nk_gemm_kernel *nk_gemm_rl_q4_K(void) {
    /* cpuid traps to the hypervisor in a VM: ask once (a benign race: every thread
     * stores the same answer) */
    static _Atomic int have = -1;
    if (have < 0) have = nk_isa_supported(NK_ISA_AVX512);
    return have ? &k_rl_q4_K : NULL;
}

#else
const nk_gemm_kernel *nk_gemm_rl_q4_K(void) { return NULL; }
const nk_gemm_kernel *nk_gemm_r16_q4_K(void) { return NULL; }
bool nk_q4k_r16_pack(const void *src, void *dst, int64_t nrows, int64_t n) {
    (void)src; (void)dst; (void)nrows; (void)n;
    return false;
}
#endif

/* Row `row` of a repacked tensor as floats: its original blocks gathered back from the
 * group's vectors, then nk_dequant_q4_K (so its bits). Plain C. */
void nk_q4k_r16_row_to_float(const void *data, int64_t row, int64_t nrows, int64_t n, float *dst) {
    const int64_t nb = n / QK_K;
    const size_t ws = (size_t)nb * sizeof(nk_block_q4_K);
    if (row >= (nrows & ~(int64_t)15)) {
        nk_dequant_q4_K((const uint8_t *)data + (size_t)row * ws, dst, n);
        return;
    }
    const int r = (int)(row & 15);
    const uint8_t *grp = (const uint8_t *)data + (size_t)(row - r) * ws;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * 16 * sizeof(nk_block_q4_K);
        uint8_t raw[sizeof(nk_block_q4_K)];
        for (int i = 0; i < 4; i++) memcpy(raw + 4 * i, blk + 64 * i + 4 * r, 4);
        for (int h = 0; h < 2; h++)
            for (int c = 0; c < 16; c++) memcpy(raw + 16 + 64 * h + 4 * c, blk + 256 + 64 * (16 * h + c) + 4 * r, 4);
        nk_dequant_q4_K(raw, dst + b * QK_K, QK_K);
    }
}

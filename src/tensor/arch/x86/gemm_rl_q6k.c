/*
 * gemm_rl_q6k.c: the rows-in-lanes batch kernel for Q6_K weights (contract in
 * tensor/ops_gemm.h), for prompt processing on AVX-512 VNNI.
 *
 * Layout. The 16 weight rows of a call meet each token in one zmm: lane r belongs
 * to row r. Each 256-element block of the 16 rows is unpacked once into a small
 * scratch ("slab", L1-sized): zmm 4g+k holds, in lane r, codes 16g+4k..16g+4k+3 of
 * row r as u8 0..63 (ql and qh combined), and zmm g of the scales holds sub-block
 * g's int8 scale of every row as int32; 16 x 16 dword transposes in registers build
 * both from each row's decoded codes and scales.
 *
 * Per token and 16-element sub-block g: four vpdpbusd with the activation's 4-code
 * dwords broadcast ({1to16}) as the signed operand give sum q * x for all 16 rows;
 * the accumulator starts at -32 * (sum of the sub-block's activation codes), so the
 * result is sum (q - 32) * x exactly. Times the rows' scales (vpmulld) and summed
 * over the block's 16 sub-blocks it is the reference's exact integer isum, then
 * scaled by d_w (per lane) * d_x in one FMA per block.
 *
 * Activations: ggml's Q8_K codes (the installed from_float, exactly what the type's
 * vec_dot uses), per block {codes, -32 * bsums, d}.
 *
 * Determinism: every output is the same sequence of operations whatever nr, nt, the
 * token group or the thread: an exact integer per block, then one FMA per block in
 * block order (accumulators that cross slabs go through y unchanged).
 */
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "tensor/arch/x86/gemm_rl.h"

#define RL_ROWS 16      /* rows per pass: one per 32-bit lane */
#define RL_SLAB 4       /* blocks per slab: 4 x 5 KiB */
#define RL_TG 6         /* tokens sharing the weight registers */

/* One activation block: the Q8_K codes, -32 * each sub-block's code sum, the scale. */
typedef struct rl6_blk {
    int8_t q[QK_K];
    int32_t bias[QK_K / 16];
    float d;
} rl6_blk;
_Static_assert(sizeof(rl6_blk) == 324, "rl6 block size");

static size_t rl6_row_size(int64_t n) { return (size_t)(n / QK_K) * sizeof(rl6_blk); }

/* n floats (n a multiple of 256) into n/256 rl6 blocks. Thread-safe. */
static void rl6_quant(const float *x, void *dst, int64_t n) {
    const nk_from_float_fn q8 = nk_type_get(NK_TYPE_Q8_K)->from_float;
    rl6_blk *o = dst;
    for (int64_t b = 0; b < n / QK_K; b++) {
        nk_block_q8_K blk;
        q8(x + QK_K * b, &blk, QK_K);
        memcpy(o[b].q, blk.qs, QK_K);
        for (int g = 0; g < QK_K / 16; g++) o[b].bias[g] = -32 * (int32_t)blk.bsums[g];
        o[b].d = blk.d;
    }
}

/* The weight side of one block of 16 rows: codes[4g+k] (lane r: codes 16g+4k..+3 of
 * row r), sc[g] (lane r: row r's scale of sub-block g) and the rows' d. */
typedef struct rl6_wblk {
    __m512i codes[QK_K / 4];
    __m512i sc[QK_K / 16];
    __m512 dw;
} rl6_wblk;


/* Codes 64p..64p+63 of a Q6_K block in element order, as u8 0..63. Part 2h holds
 * elements 128h + 0..63 (ql low nibbles, qh bits 0-1 then 2-3), part 2h+1 elements
 * 128h + 64..127 (ql high nibbles, qh bits 4-5 then 6-7). */
TGT static INL __m512i q6_part(const nk_block_q6_K *x, int p) {
    const int h = p >> 1;
    const __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
    const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h)));
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    if (!(p & 1)) {
        const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        return _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_and_si512(_mm512_sllv_epi16(H, sh), m30));
    }
    const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4), _mm512_and_si512(_mm512_srlv_epi16(H, sh), m30));
}

/* Unpack block b of nr rows (w: the first row) into o. Rows nr..15 are zero (their
 * lanes are never stored). */
TGT static void unpack_block(rl6_wblk *o, const uint8_t *w, size_t ws, int nr, int b) {
    __m512i r[16];
    UNROLL
    for (int p = 0; p < 4; p++) {
        UNROLL
        for (int i = 0; i < 16; i++)
            r[i] = i < nr ? q6_part((const nk_block_q6_K *)(w + (size_t)i * ws) + b, p) : _mm512_setzero_si512();
        transpose16(r);
        UNROLL
        for (int k = 0; k < 16; k++) o->codes[16 * p + k] = r[k];
    }
    uint16_t d[16];
    UNROLL
    for (int i = 0; i < 16; i++) {
        if (i < nr) {
            const nk_block_q6_K *x = (const nk_block_q6_K *)(w + (size_t)i * ws) + b;
            r[i] = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x->scales));
            d[i] = x->d;
        } else {
            r[i] = _mm512_setzero_si512();
            d[i] = 0;
        }
    }
    transpose16(r);
    UNROLL
    for (int g = 0; g < 16; g++) o->sc[g] = r[g];
    o->dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d));
}

/* T tokens (a compile-time constant after inlining) against the slab's nb blocks.
 * first: the accumulators start at zero, else at the partial sums stored in y. */
TGT static INL void group(const int T, const rl6_wblk *s, int nb, int first, const uint8_t *a, size_t as,
                          int b0, float *y, size_t ys, __mmask16 m) {
    __m512 acc[RL_TG];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, y + (size_t)t * ys);
    for (int b = 0; b < nb; b++) {
        const rl6_wblk *wb = &s[b];
        __m512i ia[RL_TG];
        UNROLL
        for (int t = 0; t < T; t++) ia[t] = _mm512_setzero_si512();
        for (int g = 0; g < QK_K / 16; g++) {
            const __m512i w0 = _mm512_load_si512(&wb->codes[4 * g]), w1 = _mm512_load_si512(&wb->codes[4 * g + 1]);
            const __m512i w2 = _mm512_load_si512(&wb->codes[4 * g + 2]), w3 = _mm512_load_si512(&wb->codes[4 * g + 3]);
            const __m512i sc = _mm512_load_si512(&wb->sc[g]);
            UNROLL
            for (int t = 0; t < T; t++) {
                const rl6_blk *ab = (const rl6_blk *)(a + (size_t)t * as) + b0 + b;
                const int8_t *q = ab->q + 16 * g;
                __m512i v = _mm512_set1_epi32(ab->bias[g]);
                v = rl_dpbusd_bc(v, w0, q + 0);
                v = rl_dpbusd_bc(v, w1, q + 4);
                v = rl_dpbusd_bc(v, w2, q + 8);
                v = rl_dpbusd_bc(v, w3, q + 12);
                ia[t] = _mm512_add_epi32(ia[t], _mm512_mullo_epi32(v, sc));
            }
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            const rl6_blk *ab = (const rl6_blk *)(a + (size_t)t * as) + b0 + b;
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[t]), _mm512_mul_ps(wb->dw, _mm512_set1_ps(ab->d)), acc[t]);
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + (size_t)t * ys, m, acc[t]);
}

/* nr (any >= 1; done 16 at a time) rows x nt tokens. Thread-safe; no allocation
 * (the slab lives on the stack). */
TGT static void gemm_rl_q6_K(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                             size_t ys) {
    _Alignas(64) rl6_wblk s[RL_SLAB];
    const int nb = n / QK_K;
    for (int r0 = 0; r0 < nr; r0 += RL_ROWS) {
        const int R = nr - r0 < RL_ROWS ? nr - r0 : RL_ROWS;
        const __mmask16 m = (__mmask16)((1u << R) - 1);
        const uint8_t *wr = (const uint8_t *)w + (size_t)r0 * ws;
        for (int b0 = 0; b0 < nb; b0 += RL_SLAB) {
            const int sb = nb - b0 < RL_SLAB ? nb - b0 : RL_SLAB;
            for (int b = 0; b < sb; b++) {
                rl_prefetch_part(wr + RL_ROWS * ws, RL_ROWS * ws, b0 + b, nb);
                unpack_block(&s[b], wr, ws, R, b0 + b);
            }
            for (int t0 = 0; t0 < nt; t0 += RL_TG) {
                const int T = nt - t0 < RL_TG ? nt - t0 : RL_TG;
                const uint8_t *ap = (const uint8_t *)a + (size_t)t0 * as;
                float *yp = y + (size_t)t0 * ys + r0;
                switch (T) {
                case 1: group(1, s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 2: group(2, s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 3: group(3, s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 4: group(4, s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 5: group(5, s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                default: group(6, s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                }
            }
        }
    }
}

/* ---- the 16-row interleaved layout (repacked at load) --------------------------------
 *
 * The unpack above (decode each row, then 16 x 16 transposes) is most of this kernel's
 * time at decode-sized batches, and it costs the same from L2 as from DRAM: it is
 * instructions, not memory. nk_q6k_r16_pack stores every full group of 16 rows with
 * that work done once, at load: per 256-element block of the group (3,360 bytes, the
 * 16 rows' 210-byte blocks, so the tensor keeps its size and its row offsets at group
 * boundaries):
 *   d[16]         fp16, one per row (32 bytes)
 *   sc[16][16]    int8, [sub-block g][row r] (256 bytes)
 *   then per sub-block g (192 bytes): two 64-byte vectors of low nibbles and one of
 *   high bits, each with one 32-bit lane per row: code vector C_k (lane r: codes
 *   4k..4k+3 of row r, k = 4g+i) is
 *     C_4g   = (L0 & 0xF)        | (H << 4 & 0x30)
 *     C_4g+1 = (L1 & 0xF)        | (H << 2 & 0x30)
 *     C_4g+2 = (L0 >> 4 & 0xF)   | (H & 0x30)
 *     C_4g+3 = (L1 >> 4 & 0xF)   | (H >> 2 & 0x30)
 *   (3.25 operations per code vector instead of a decode plus a transpose).
 * A final partial group (rows % 16) stays in the file's row layout.
 *
 * The products are the same operations as gemm_rl_q6_K (the integer per block, one FMA
 * per block in block order), so a repacked tensor gives the bits gemm_rl_q6_K gives on
 * its original rows, at every token count. */

#define R16_BLK 3360   /* bytes of one block of 16 rows */
_Static_assert(R16_BLK == 16 * sizeof(nk_block_q6_K), "r16 block size");

/* The code vectors of sub-block g at p (the sub-block's 192 bytes). */
TGT static INL void r16_codes(const uint8_t *p, __m512i c[4]) {
    const __m512i m0F = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512i L0 = _mm512_loadu_si512(p), L1 = _mm512_loadu_si512(p + 64), H = _mm512_loadu_si512(p + 128);
#if !defined(__clang__)
    /* one load each: gcc otherwise folds H's load into each of its four uses */
    __asm__("" : "+v"(L0), "+v"(L1), "+v"(H));
#endif
    /* (A & C) | B with B holding only bits 4-5: vpternlog 0xEC */
    c[0] = _mm512_ternarylogic_epi32(L0, _mm512_and_si512(_mm512_slli_epi32(H, 4), m30), m0F, 0xEC);
    c[1] = _mm512_ternarylogic_epi32(L1, _mm512_and_si512(_mm512_slli_epi32(H, 2), m30), m0F, 0xEC);
    c[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi32(L0, 4), _mm512_and_si512(H, m30), m0F, 0xEC);
    c[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi32(L1, 4), _mm512_and_si512(_mm512_srli_epi32(H, 2), m30), m0F, 0xEC);
}

/* A repacked block decoded once for many token groups (prompt-sized batches): the
 * code vectors and scales as r16_codes and the scale load give them. */
typedef struct r16_slab {
    __m512i c[QK_K / 4];
    __m512i sc[QK_K / 16];
} r16_slab;

TGT static INL __m512i r16_scales(const uint8_t *blk, int g) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 32 + 16 * g)));
}

/* Sub-block g of a repacked block for T tokens: ia[t] += (bias + the four products) *
 * the rows' scales, each token's chain in the original order (the tokens' steps
 * interleaved: the same integer sums). */
TGT static INL void r16_sub(const int T, const uint8_t *blk, const r16_slab *sl, const rl6_blk *const *x, int g,
                            __m512i *ia) {
    __m512i c[4], sc;
    if (sl) {
        UNROLL
        for (int i = 0; i < 4; i++) c[i] = sl->c[4 * g + i];
        sc = sl->sc[g];
    } else {
        r16_codes(blk + 288 + 192 * g, c);
        sc = r16_scales(blk, g);
    }
    __m512i v[8];
    UNROLL
    for (int t = 0; t < T; t++) v[t] = _mm512_set1_epi32(x[t]->bias[g]);
    UNROLL
    for (int i = 0; i < 4; i++) {
        UNROLL
        for (int t = 0; t < T; t++) v[t] = rl_dpbusd_bc(v[t], c[i], x[t]->q + 16 * g + 4 * i);
    }
    UNROLL
    for (int t = 0; t < T; t++) ia[t] = _mm512_add_epi32(ia[t], _mm512_mullo_epi32(v[t], sc));
}

#ifndef R16_UNROLL_MIN
#define R16_UNROLL_MIN 5
#endif

/* T tokens (compile-time after inlining) against one repacked block, its codes
 * decoded here (sl NULL) or taken from sl: group()'s operations in group()'s order.
 * From R16_UNROLL_MIN tokens the 16 sub-blocks are unrolled (r16_sub): rolled, gcc
 * (12) kept the loop's pointers in stack slots and copied the token sums between
 * registers every sub-block; unrolled, every address is a base and a constant.
 * Cycles per 16-row block, least of 4-6 interleaved runs (session 11): 8 tokens from
 * L2 488 -> 444. Fewer tokens keep the rolled loop: at 1 token from DRAM (a decode
 * step of one sequence) r16_sub rolled cost 323 cycles against this loop's 269,
 * though it was faster from L2 (152 vs 171), and at 4 tokens the unrolled loop
 * measured both faster and slower than this one on this shared machine. */
TGT static INL void r16_tokens(const int T, const uint8_t *blk, const r16_slab *sl, const rl6_blk *const *x,
                               __m512 *acc) {
    __m512i ia[8];
    UNROLL
    for (int t = 0; t < T; t++) ia[t] = _mm512_setzero_si512();
    if (T >= R16_UNROLL_MIN) {
        UNROLL
        for (int g = 0; g < QK_K / 16; g++) r16_sub(T, blk, sl, x, g, ia);
    } else {
        for (int g = 0; g < QK_K / 16; g++) {
            __m512i c[4], sc;
            if (sl) {
                UNROLL
                for (int i = 0; i < 4; i++) c[i] = sl->c[4 * g + i];
                sc = sl->sc[g];
            } else {
                r16_codes(blk + 288 + 192 * g, c);
                sc = r16_scales(blk, g);
            }
            UNROLL
            for (int t = 0; t < T; t++) {
                const int8_t *q = x[t]->q + 16 * g;
                __m512i v = _mm512_set1_epi32(x[t]->bias[g]);
                v = rl_dpbusd_bc(v, c[0], q + 0);
                v = rl_dpbusd_bc(v, c[1], q + 4);
                v = rl_dpbusd_bc(v, c[2], q + 8);
                v = rl_dpbusd_bc(v, c[3], q + 12);
                ia[t] = _mm512_add_epi32(ia[t], _mm512_mullo_epi32(v, sc));
            }
        }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
    UNROLL
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[t]), _mm512_mul_ps(dw, _mm512_set1_ps(x[t]->d)), acc[t]);
}

#ifndef R16_PF
#define R16_PF 2
#endif
#define R16_GRP 8    /* tokens sharing each decoded code vector */
#define R16_PASS 64  /* tokens per pass over a group (a block stays in L1 meanwhile) */

#define R16_SLAB_MIN 17  /* from this many tokens a block is decoded once into a slab */

/* 5-8 tokens out of line, so that their unrolled bodies do not change how gcc
 * compiles gemm_r16_q6_K's own loop and its 1-4 token paths (decoding one sequence:
 * DRAM bound, where a slower 1-token product was suspected once and not confirmed) */
#define R16_MANY(T)                                                                                        \
    TGT static __attribute__((noinline)) void r16_tokens_##T(const uint8_t *blk, const r16_slab *sl,       \
                                                             const rl6_blk *const *x, __m512 *acc) {      \
        r16_tokens(T, blk, sl, x, acc);                                                                    \
    }
R16_MANY(5)
R16_MANY(6)
R16_MANY(7)
R16_MANY(8)
#define R16_CASE(T) case T: r16_tokens(T, blk, sl, xp, acc + t); break;
#define R16_CASE_N(T) case T: r16_tokens_##T(blk, sl, xp, acc + t); break;

/* nr rows from a group boundary of a repacked tensor (w: its first row's offset,
 * ws: the file's row size), nt tokens of rl6 activations. Every token count runs
 * straight from the repacked bytes: decoding a block again for each 8 tokens costs
 * less than a scratch copy (measured: 9 tokens via gemm_rl_q6_K's slab 9.4 ms per
 * 100,000 rows from DRAM, 8 tokens here 4.8). */
TGT static void gemm_r16_q6_K(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                              size_t ys) {
    const int nb = n / QK_K;
    const int full = nr & ~(RL_ROWS - 1);
    __m512 acc[R16_PASS];
    _Alignas(64) r16_slab slab;
    for (int r0 = 0; r0 < full; r0 += RL_ROWS) {
        const uint8_t *gw = (const uint8_t *)w + (size_t)r0 * ws;
        for (int t0 = 0; t0 < nt; t0 += R16_PASS) {
            const int TT = nt - t0 < R16_PASS ? nt - t0 : R16_PASS;
            const uint8_t *at = (const uint8_t *)a + (size_t)t0 * as;
            for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = gw + (size_t)b * R16_BLK;
                /* groups are contiguous: fetch R16_PF blocks ahead (past the end:
                 * harmless); from DRAM the hardware prefetchers alone left the 1-8
                 * token products ~20-40% slower */
                if (t0 == 0) rl_prefetch_part(blk + R16_PF * R16_BLK, R16_BLK, 0, 1);
                const r16_slab *sl = NULL;
                if (TT >= R16_SLAB_MIN) {
                    UNROLL
                    for (int g = 0; g < QK_K / 16; g++) {
                        r16_codes(blk + 288 + 192 * g, &slab.c[4 * g]);
                        slab.sc[g] = r16_scales(blk, g);
                    }
                    sl = &slab;
                }
                for (int t = 0; t < TT; t += R16_GRP) {
                    const int T = TT - t < R16_GRP ? TT - t : R16_GRP;
                    const rl6_blk *xp[R16_GRP];
                    for (int i = 0; i < T; i++) xp[i] = (const rl6_blk *)(at + (size_t)(t + i) * as) + b;
                    switch (T) {
                    R16_CASE(1) R16_CASE(2) R16_CASE(3) R16_CASE(4) R16_CASE_N(5) R16_CASE_N(6) R16_CASE_N(7)
                    default: r16_tokens_8(blk, sl, xp, acc + t); break;
                    }
                }
            }
            for (int t = 0; t < TT; t++) _mm512_storeu_ps(y + (size_t)(t0 + t) * ys + r0, acc[t]);
        }
    }
    if (full < nr)   /* the partial last group: the file's rows */
        gemm_rl_q6_K(n, nr - full, nt, (const uint8_t *)w + (size_t)full * ws, ws, a, as, y + full, ys);
}

/* Repack: each full group of 16 rows through the row unpack above, then re-laid. */
TGT static void r16_pack_avx512(const void *src, void *dst, int64_t nrows, int64_t n) {
    const int nb = (int)(n / QK_K);
    const size_t ws = (size_t)nb * sizeof(nk_block_q6_K);
    const int64_t full = nrows & ~(int64_t)(RL_ROWS - 1);
    const __m512i m0F = _mm512_set1_epi8(0x0F), m03 = _mm512_set1_epi8(0x03);
    for (int64_t r0 = 0; r0 < full; r0 += RL_ROWS) {
        const uint8_t *gs = (const uint8_t *)src + (size_t)r0 * ws;
        uint8_t *gd = (uint8_t *)dst + (size_t)r0 * ws;
        for (int b = 0; b < nb; b++) {
            /* the next group's bytes meanwhile: a file mapping in 4 KiB pages is read
             * here at a fraction of DRAM speed otherwise (16 streams, each stopping the
             * hardware prefetcher at every page) */
            if (r0 + RL_ROWS < full) rl_prefetch_part(gs + RL_ROWS * ws, RL_ROWS * ws, b, nb);
            _Alignas(64) rl6_wblk o;
            unpack_block(&o, gs, ws, RL_ROWS, b);
            uint8_t *blk = gd + (size_t)b * R16_BLK;
            uint16_t d[16];
            for (int r = 0; r < 16; r++) d[r] = ((const nk_block_q6_K *)(gs + (size_t)r * ws) + b)->d;
            memcpy(blk, d, 32);
            for (int g = 0; g < QK_K / 16; g++) {
                _mm_storeu_si128((__m128i *)(blk + 32 + 16 * g), _mm512_cvtepi32_epi8(o.sc[g]));
                const __m512i *c = &o.codes[4 * g];
                const __m512i l0 = _mm512_or_si512(_mm512_and_si512(c[0], m0F), _mm512_slli_epi32(_mm512_and_si512(c[2], m0F), 4));
                const __m512i l1 = _mm512_or_si512(_mm512_and_si512(c[1], m0F), _mm512_slli_epi32(_mm512_and_si512(c[3], m0F), 4));
                __m512i h = _mm512_and_si512(_mm512_srli_epi32(c[0], 4), m03);
                h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(c[1], 4), m03), 2));
                h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(c[2], 4), m03), 4));
                h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(c[3], 4), m03), 6));
                uint8_t *p = blk + 288 + 192 * g;
                _mm512_storeu_si512(p, l0);
                _mm512_storeu_si512(p + 64, l1);
                _mm512_storeu_si512(p + 128, h);
            }
        }
    }
    if (full < nrows)
        memcpy((uint8_t *)dst + (size_t)full * ws, (const uint8_t *)src + (size_t)full * ws, (size_t)(nrows - full) * ws);
}

static const nk_gemm_kernel k_r16_q6_K = { gemm_r16_q6_K, rl6_quant, rl6_row_size, 1 };

const nk_gemm_kernel *nk_gemm_r16_q6_K(void) {
    static _Atomic int have = -1;
    if (have < 0) have = nk_isa_supported(NK_ISA_AVX512);
    return have ? &k_r16_q6_K : NULL;
}

bool nk_q6k_r16_pack(const void *src, void *dst, int64_t nrows, int64_t n) {
    if (!nk_gemm_r16_q6_K() || n % QK_K) return false;
    r16_pack_avx512(src, dst, nrows, n);
    return true;
}

/* Crossover against gemm_avx512.c's small-batch tiles (one row x up to 8 tokens),
 * measured on weights streamed from DRAM as a decode step reads them (100,000 rows of
 * K 1024 on 2 MB pages, one thread, thread CPU time, with the prefetch): the tiles
 * lead up to 8 tokens (4 tokens 4.3-4.7 vs 5.7 ms, 8 tokens 7.0-7.2 vs 7.7-8.3);
 * from L2 this kernel leads from 5 tokens, 1.9x at 16, 2.7x at 64. */
#define NK_RL_Q6_K_MIN_TOK 9

static const nk_gemm_kernel k_rl_q6_K = { gemm_rl_q6_K, rl6_quant, rl6_row_size, NK_RL_Q6_K_MIN_TOK };

const nk_gemm_kernel *nk_gemm_rl_q6_K(void) {
    /* cpuid traps to the hypervisor in a VM: ask once (a benign race: every thread
     * stores the same answer) */
    static _Atomic int have = -1;
    if (have < 0) have = nk_isa_supported(NK_ISA_AVX512);
    return have ? &k_rl_q6_K : NULL;
}

#else
const nk_gemm_kernel *nk_gemm_rl_q6_K(void) { return NULL; }
const nk_gemm_kernel *nk_gemm_r16_q6_K(void) { return NULL; }
bool nk_q6k_r16_pack(const void *src, void *dst, int64_t nrows, int64_t n) {
    (void)src; (void)dst; (void)nrows; (void)n;
    return false;
}
#endif

/* Row `row` of a repacked tensor of nrows rows of n elements (data: its first byte)
 * as floats: nk_dequant_q6_K's arithmetic on the same codes, so the same bits. Plain
 * C: a repacked tensor exists only where the kernel does, but reading it needs none. */
void nk_q6k_r16_row_to_float(const void *data, int64_t row, int64_t nrows, int64_t n, float *dst) {
    const int64_t nb = n / QK_K;
    const size_t ws = (size_t)nb * sizeof(nk_block_q6_K);
    if (row >= (nrows & ~(int64_t)15)) {   /* the partial last group: file rows */
        nk_dequant_q6_K((const uint8_t *)data + (size_t)row * ws, dst, n);
        return;
    }
    const int r = (int)(row & 15);
    const uint8_t *grp = (const uint8_t *)data + (size_t)(row - r) * ws;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * 16 * sizeof(nk_block_q6_K);
        uint16_t dh;
        memcpy(&dh, blk + 2 * r, 2);
        const float d = nk_fp16_to_fp32(dh);
        float *y = dst + b * QK_K;
        for (int g = 0; g < QK_K / 16; g++) {
            const int8_t sc = (int8_t)blk[32 + 16 * g + r];
            const uint8_t *p = blk + 288 + 192 * g + 4 * r;
            for (int j = 0; j < 4; j++) {
                const uint8_t l0 = p[j], l1 = p[64 + j], h = p[128 + j];
                const int c0 = (l0 & 0xF) | (h & 3) << 4, c1 = (l1 & 0xF) | (h >> 2 & 3) << 4;
                const int c2 = (l0 >> 4) | (h >> 4 & 3) << 4, c3 = (l1 >> 4) | (h >> 6 & 3) << 4;
                y[16 * g + j] = d * (float)sc * (float)(c0 - 32);
                y[16 * g + 4 + j] = d * (float)sc * (float)(c1 - 32);
                y[16 * g + 8 + j] = d * (float)sc * (float)(c2 - 32);
                y[16 * g + 12 + j] = d * (float)sc * (float)(c3 - 32);
            }
        }
    }
}

/*
 * gemm_rl_q8_0.c: the rows-in-lanes batch kernels for Q8_0, Q5_0 and Q4_0 weights (contract in
 * tensor/ops_gemm.h), for prompt processing on AVX-512 VNNI.
 *
 * Layout. The 16 weight rows of a call meet each token in one zmm: lane r belongs
 * to row r. For every block column the kernel unpacks the rows once into a small
 * scratch ("slab", L1-sized) where zmm k of block b holds, in lane r, codes
 * 4k..4k+3 of row r stored as u8 (code + 128); a 16 x 16 dword transpose in
 * registers builds it from two blocks of each row. A token's block then costs 8
 * vpdpbusd with the activation's 4-code dwords broadcast ({1to16}) as the signed
 * operand, all 16 rows at once: no horizontal sums, no per-token decoding.
 *
 * Offset: sum (w + 128) * x = sum w * x + 128 * sum x, so each integer accumulator
 * starts at -128 * (sum of the activation block's codes), a per-token value the
 * activation conversion stores next to the codes. The block's exact integer dot is
 * then scaled by d_w (per lane) * d_x and added into a float accumulator (FMA).
 *
 * Activations: ggml's Q8_0 codes (the installed from_float, exactly what the
 * type's vec_dot uses), per block {codes, bias, d}.
 *
 * Q5_0 and Q4_0 weights (vec_dot_type Q8_0 too) share everything but the unpacking
 * (load_blk): their codes, in [-16, 15] and [-8, 7], become the same u8 code + 128.
 *
 * Determinism: every output is the same sequence of operations whatever nr, nt, the
 * token group or the thread: an exact integer dot per block, then one FMA per block
 * in block order (accumulators that cross slabs go through y unchanged).
 */
#include "tensor/ops_gemm.h"
#include "tensor/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "tensor/arch/x86/gemm_rl.h"

#define RL_ROWS 16      /* rows per pass: one per 32-bit lane */
#define RL_SLAB 32      /* blocks per slab: 16 KiB of codes + 2 KiB of scales */
#define RL_TG 8         /* tokens sharing the weight registers */

/* One activation block: the codes, -128 * their sum, and the block scale. */
typedef struct rl8_blk {
    int8_t q[32];
    int32_t bias;
    float d;
} rl8_blk;
_Static_assert(sizeof(rl8_blk) == 40, "rl8 block size");

static size_t rl8_row_size(int64_t n) { return (size_t)(n / 32) * sizeof(rl8_blk); }

/* n floats (n a multiple of 32) into n/32 rl8 blocks. Thread-safe. */
static void rl8_quant(const float *x, void *dst, int64_t n) {
    const nk_from_float_fn q8 = nk_type_get(NK_TYPE_Q8_0)->from_float;
    rl8_blk *o = dst;
    for (int64_t b = 0; b < n / 32; b++) {
        nk_block_q8_0 blk;
        q8(x + 32 * b, &blk, 32);
        int32_t s = 0;
        for (int i = 0; i < 32; i++) s += blk.qs[i];
        memcpy(o[b].q, blk.qs, 32);
        o[b].bias = -128 * s;
        o[b].d = nk_fp16_to_fp32(blk.d);
    }
}

/* The weight side of one slab: codes[b][k] (lane r: codes 4k..4k+3 of row r, + 128)
 * and the rows' block scales dw[b]. */
typedef struct rl8_slab {
    __m512i codes[RL_SLAB][8];
    __m512 dw[RL_SLAB];
} rl8_slab;


/* One 32-code block of a row as u8 (code + 128), element j in byte j, and its f16
 * scale (at offset 0 in all three layouts). ty is a compile-time constant after
 * inlining.
 *  Q8_0: codes are the bytes themselves; flipping the sign bit adds 128.
 *  Q4_0: code = nibble - 8 (element j < 16: low nibble of qs[j], j >= 16: high
 *        nibble of qs[j - 16]), so code + 128 = nibble + 120.
 *  Q5_0: code = (nibble | bit j of qh << 4) - 16, so code + 128 = nibble + 112,
 *        plus 16 where qh's bit is set: qh is exactly a byte mask. */
TGT static INL __m256i load_blk(const int ty, const uint8_t *p) {
    if (ty == NK_TYPE_Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), _mm256_set1_epi8((char)0x80));
    const __m128i q = _mm_loadu_si128((const __m128i *)(p + (ty == NK_TYPE_Q5_0 ? 6 : 2)));
    const __m128i k0f = _mm_set1_epi8(0x0F);
    const __m256i nib = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, k0f)),
                                                _mm_and_si128(_mm_srli_epi16(q, 4), k0f), 1);
    if (ty == NK_TYPE_Q4_0) return _mm256_add_epi8(nib, _mm256_set1_epi8(120));
    uint32_t qh;
    memcpy(&qh, p + 2, 4);
    const __m256i v = _mm256_add_epi8(nib, _mm256_set1_epi8(112));
    return _mm256_mask_add_epi8(v, (__mmask32)qh, v, _mm256_set1_epi8(16));
}

static INL size_t blk_bytes(const int ty) {
    return ty == NK_TYPE_Q8_0 ? sizeof(nk_block_q8_0) : ty == NK_TYPE_Q5_0 ? sizeof(nk_block_q5_0)
                                                                            : sizeof(nk_block_q4_0);
}

/* Unpack blocks [b0, b0 + nb) of nr rows of type ty into s. Rows nr..15 are zero
 * (their lanes are never stored). Reads nothing past block b0 + nb - 1. */
TGT static INL void unpack_slab_t(const int ty, rl8_slab *s, const uint8_t *w, size_t ws, int nr, int b0, int nb) {
    const size_t bs = blk_bytes(ty);
    for (int b = 0; b < nb; b += 2) {
        const int two = b + 1 < nb;
        __m512i r[16];
        uint16_t d0[16], d1[16];
        UNROLL
        for (int i = 0; i < 16; i++) {
            if (i >= nr) {
                r[i] = _mm512_setzero_si512();
                d0[i] = d1[i] = 0;
                continue;
            }
            const uint8_t *x = w + (size_t)i * ws + (size_t)(b0 + b) * bs;
            const __m256i lo = load_blk(ty, x);
            const __m256i hi = two ? load_blk(ty, x + bs) : _mm256_setzero_si256();
            r[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            memcpy(&d0[i], x, 2);
            if (two) memcpy(&d1[i], x + bs, 2);
            else d1[i] = 0;
        }
        transpose16(r);
        UNROLL
        for (int k = 0; k < 8; k++) s->codes[b][k] = r[k];
        s->dw[b] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d0));
        if (two) {
            UNROLL
            for (int k = 0; k < 8; k++) s->codes[b + 1][k] = r[8 + k];
            s->dw[b + 1] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d1));
        }
    }
}

typedef void (*unpack_fn)(rl8_slab *s, const uint8_t *w, size_t ws, int nr, int b0, int nb);
TGT static void unpack_q8_0(rl8_slab *s, const uint8_t *w, size_t ws, int nr, int b0, int nb) {
    unpack_slab_t(NK_TYPE_Q8_0, s, w, ws, nr, b0, nb);
}
TGT static void unpack_q5_0(rl8_slab *s, const uint8_t *w, size_t ws, int nr, int b0, int nb) {
    unpack_slab_t(NK_TYPE_Q5_0, s, w, ws, nr, b0, nb);
}
TGT static void unpack_q4_0(rl8_slab *s, const uint8_t *w, size_t ws, int nr, int b0, int nb) {
    unpack_slab_t(NK_TYPE_Q4_0, s, w, ws, nr, b0, nb);
}

/* T tokens (a compile-time constant after inlining) against the slab's nb blocks.
 * first: the accumulators start at zero, else at the partial sums stored in y. */
TGT static INL void group(const int T, const rl8_slab *s, int nb, int first, const uint8_t *a, size_t as,
                          int b0, float *y, size_t ys, __mmask16 m) {
    __m512 acc[RL_TG];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, y + (size_t)t * ys);
    for (int b = 0; b < nb; b++) {
        __m512i w[8];
        UNROLL
        for (int k = 0; k < 8; k++) w[k] = _mm512_load_si512(&s->codes[b][k]);
        const __m512 dw = _mm512_load_ps(&s->dw[b]);
        UNROLL
        for (int t = 0; t < T; t++) {
            const rl8_blk *ab = (const rl8_blk *)(a + (size_t)t * as) + b0 + b;
            __m512i i0 = _mm512_set1_epi32(ab->bias);
            UNROLL
            for (int k = 0; k < 8; k++) i0 = _mm512_dpbusd_epi32(i0, w[k], rl_bcast4(ab->q + 4 * k));
            const __m512 f = _mm512_cvtepi32_ps(i0);
            acc[t] = _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(ab->d)), acc[t]);
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + (size_t)t * ys, m, acc[t]);
}

/* nr (any >= 1; done 16 at a time) rows x nt tokens, the weights unpacked by
 * unpack (one indirect call per slab). Thread-safe; no allocation (the slab lives on
 * the stack). */
TGT static void gemm_rl(unpack_fn unpack, int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as,
                        float *y, size_t ys) {
    _Alignas(64) rl8_slab s;
    const int nb = n / 32;
    for (int r0 = 0; r0 < nr; r0 += RL_ROWS) {
        const int R = nr - r0 < RL_ROWS ? nr - r0 : RL_ROWS;
        const __mmask16 m = (__mmask16)((1u << R) - 1);
        const uint8_t *wr = (const uint8_t *)w + (size_t)r0 * ws;
        for (int b0 = 0; b0 < nb; b0 += RL_SLAB) {
            const int sb = nb - b0 < RL_SLAB ? nb - b0 : RL_SLAB;
            unpack(&s, wr, ws, R, b0, sb);
            for (int t0 = 0; t0 < nt; t0 += RL_TG) {
                const int T = nt - t0 < RL_TG ? nt - t0 : RL_TG;
                const uint8_t *ap = (const uint8_t *)a + (size_t)t0 * as;
                float *yp = y + (size_t)t0 * ys + r0;
                switch (T) {
                case 1: group(1, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 2: group(2, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 3: group(3, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 4: group(4, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 5: group(5, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 6: group(6, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                case 7: group(7, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                default: group(8, &s, sb, b0 == 0, ap, as, b0, yp, ys, m); break;
                }
            }
        }
    }
}

TGT static void gemm_rl_q8_0(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                             size_t ys) {
    gemm_rl(unpack_q8_0, n, nr, nt, w, ws, a, as, y, ys);
}
TGT static void gemm_rl_q5_0(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                             size_t ys) {
    gemm_rl(unpack_q5_0, n, nr, nt, w, ws, a, as, y, ys);
}
TGT static void gemm_rl_q4_0(int n, int nr, int nt, const void *w, size_t ws, const void *a, size_t as, float *y,
                             size_t ys) {
    gemm_rl(unpack_q4_0, n, nr, nt, w, ws, a, as, y, ys);
}

/* Crossover against gemm_avx512.c's 4 x 4 tiles (K 1024, 3072 rows, one thread,
 * thread CPU time): behind at 4 tokens (73 vs 85 GMAC/s), ahead from 5 (80 vs 68),
 * 1.4x at 8, 2.4x at 64. */
#define NK_RL_Q8_0_MIN_TOK 5
/* Q5_0 and Q4_0 (K 1152, 3072 rows, one thread, thread CPU time, best of 7): ahead
 * of the 4 x 4 tiles from 2 tokens (Q5_0 48 vs 41 GMAC/s; at 4: 84 vs 66; at 8: 131
 * vs 65; at 512, 6912 rows: 237 vs 62), since their tiles decode each block again
 * for every 4 tokens. 4 is the floor: test_errors.c compares batches of 3 with
 * single tokens. */
#define NK_RL_Q5_0_MIN_TOK 4
#define NK_RL_Q4_0_MIN_TOK 4

static const nk_gemm_kernel k_rl_q8_0 = { gemm_rl_q8_0, rl8_quant, rl8_row_size, NK_RL_Q8_0_MIN_TOK };
static const nk_gemm_kernel k_rl_q5_0 = { gemm_rl_q5_0, rl8_quant, rl8_row_size, NK_RL_Q5_0_MIN_TOK };
static const nk_gemm_kernel k_rl_q4_0 = { gemm_rl_q4_0, rl8_quant, rl8_row_size, NK_RL_Q4_0_MIN_TOK };

/* cpuid traps to the hypervisor in a VM: ask once (a benign race: every thread
 * stores the same answer) */
static bool rl_have(void) {
    static _Atomic int have = -1;
    if (have < 0) have = nk_isa_supported(NK_ISA_AVX512);
    return have != 0;
}

const nk_gemm_kernel *nk_gemm_rl_q8_0(void) { return rl_have() ? &k_rl_q8_0 : NULL; }
const nk_gemm_kernel *nk_gemm_rl_q5_0(void) { return rl_have() ? &k_rl_q5_0 : NULL; }
const nk_gemm_kernel *nk_gemm_rl_q4_0(void) { return rl_have() ? &k_rl_q4_0 : NULL; }

#else
const nk_gemm_kernel *nk_gemm_rl_q8_0(void) { return NULL; }
const nk_gemm_kernel *nk_gemm_rl_q5_0(void) { return NULL; }
const nk_gemm_kernel *nk_gemm_rl_q4_0(void) { return NULL; }
#endif

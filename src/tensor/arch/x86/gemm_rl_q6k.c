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
                v = _mm512_dpbusd_epi32(v, w0, rl_bcast4(q + 0));
                v = _mm512_dpbusd_epi32(v, w1, rl_bcast4(q + 4));
                v = _mm512_dpbusd_epi32(v, w2, rl_bcast4(q + 8));
                v = _mm512_dpbusd_epi32(v, w3, rl_bcast4(q + 12));
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
#endif

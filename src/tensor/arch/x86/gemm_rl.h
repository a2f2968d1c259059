/*
 * gemm_rl.h: what the rows-in-lanes batch kernels (gemm_rl_*.c) share: their target
 * attributes, the unroll pragma both compilers honour, and the 16 x 16 dword
 * transpose that turns 16 rows into one register per 4-code column. Included only
 * inside those files' x86-64 sections.
 */
#ifndef NOOK_TENSOR_ARCH_X86_GEMM_RL_H
#define NOOK_TENSOR_ARCH_X86_GEMM_RL_H

#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

/* clang ignores GCC's unroll pragma and then keeps per-token accumulators in memory
 * (Q6_K 150 instead of 236 GMAC/s): ask each compiler in its own words. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#define NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#define NO_UNROLL _Pragma("GCC unroll 1")
#endif

/* In-register transpose of 16 rows of 16 dwords: out[k] lane r = in[r] dword k. */
TGT static INL void transpose16(__m512i r[16]) {
    __m512i a[16], b[16];
    UNROLL
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    UNROLL
    for (int i = 0; i < 4; i++) {
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    /* b[4i+m], 128-bit lane j: dword 4j+m of rows 4i..4i+3 */
    UNROLL
    for (int m = 0; m < 4; m++) {
        const __m512i c = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x88), d = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xDD);
        const __m512i e = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x88);
        const __m512i f = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xDD);
        r[m] = _mm512_shuffle_i32x4(c, e, 0x88);
        r[8 + m] = _mm512_shuffle_i32x4(c, e, 0xDD);
        r[4 + m] = _mm512_shuffle_i32x4(d, f, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(d, f, 0xDD);
    }
}

/* Four activation codes at p broadcast to every lane, straight from memory (a
 * {1to16} operand of vpdpbusd): going through a general register instead cost the
 * Q8_0 kernel 235 -> 180 GMAC/s. */
TGT static INL __m512i rl_bcast4(const void *p) { return _mm512_broadcastd_epi32(_mm_loadu_si32(p)); }

/* acc + the dot of w's bytes with the 4 bytes at p broadcast (vpdpbusd with a {1to16}
 * memory operand). clang folds rl_bcast4 into the instruction; gcc (12-14) emits a
 * separate vpbroadcastd for each, which cost the r16 kernels 15-30% of their time at
 * 1-8 tokens (cycles per block measured from L2): so gcc gets the instruction
 * spelled out. Same operation, same bits. */
typedef int32_t rl_i32u __attribute__((may_alias, aligned(1)));

TGT static INL __m512i rl_dpbusd_bc(__m512i acc, __m512i w, const void *p) {
#if defined(__clang__)
    return _mm512_dpbusd_epi32(acc, w, rl_bcast4(p));
#else
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const rl_i32u *)p));
    return acc;
#endif
}

/* The same for vpdpwssd (16-bit pairs). */
TGT static INL __m512i rl_dpwssd_bc(__m512i acc, __m512i w, const void *p) {
#if defined(__clang__)
    return _mm512_dpwssd_epi32(acc, w, rl_bcast4(p));
#else
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const rl_i32u *)p));
    return acc;
#endif
}

/* Software prefetch of part `i` of `parts` of the span [p, p + bytes): the kernels
 * walk 16 rows at once, block column by block column (16 streams 144-210 bytes
 * apart), which the hardware prefetchers follow poorly from DRAM; each block
 * column's pass fetches a slice of the next 16 rows (contiguous in the file), so
 * those arrive while this group computes. Prefetches past the tensor's end are
 * harmless hints (they never fault). */
TGT static INL void rl_prefetch_part(const uint8_t *p, size_t bytes, int i, int parts) {
    const size_t lo = bytes * (size_t)i / (size_t)parts, hi = bytes * (size_t)(i + 1) / (size_t)parts;
    for (size_t o = lo & ~(size_t)63; o < hi; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

#endif /* NOOK_TENSOR_ARCH_X86_GEMM_RL_H */

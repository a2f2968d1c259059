/*
 * neon.c: AArch64 kernels that need only baseline Armv8-A Advanced SIMD (NEON),
 * which every AArch64 CPU has: the integer dots of kernels_neon.h with the widening
 * multiply + pairwise add form (vmull_s8, vpadalq_s16), the F32/F16/BF16 dots, and
 * the Q8_0/Q8_1/Q8_K activation quantizers. neon_dotprod.c replaces the integer
 * dots on CPUs with the dotprod extension (Apple M1 and later, Cortex-A55/A76 and
 * later); everything else is used from here on every AArch64 CPU.
 *
 * The F16 dot converts halves to float (FCVTL, baseline) and accumulates in float
 * lanes; it does not use FP16 arithmetic, whose 11-bit accumulators would lose far
 * more than the 2e-5 relative error test_simd.c allows. On other targets this file
 * compiles to an empty kernel set.
 */
#include "tensor/quants.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define NK_TGT
#define NK_FN(name) name##_neon

/* 16 signed products widened to int16 (|a*b| <= 2^14: exact), pairwise added into
 * the four int32 lanes */
static inline int32x4_t nk_dot_neon(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}
#define NK_DOT(acc, a, b) nk_dot_neon((acc), (a), (b))

#include "kernels_neon.h"

/* ---- float formats ------------------------------------------------------------------ */

static void vec_dot_f32_neon(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0), a2 = vdupq_n_f32(0), a3 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
        a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static void vec_dot_f16_neon(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0), a2 = vdupq_n_f32(0), a3 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const float16x8_t x0 = vreinterpretq_f16_u16(vld1q_u16(x + i)), y0 = vreinterpretq_f16_u16(vld1q_u16(y + i));
        const float16x8_t x1 = vreinterpretq_f16_u16(vld1q_u16(x + i + 8)), y1 = vreinterpretq_f16_u16(vld1q_u16(y + i + 8));
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(x0)), vcvt_f32_f16(vget_low_f16(y0)));
        a1 = vfmaq_f32(a1, vcvt_high_f32_f16(x0), vcvt_high_f32_f16(y0));
        a2 = vfmaq_f32(a2, vcvt_f32_f16(vget_low_f16(x1)), vcvt_f32_f16(vget_low_f16(y1)));
        a3 = vfmaq_f32(a3, vcvt_high_f32_f16(x1), vcvt_high_f32_f16(y1));
    }
    for (; i + 4 <= n; i += 4)
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))),
                       vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(y + i))));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += h2f_neon(x[i]) * h2f_neon(y[i]);
    *s = sum;
}

/* bf16 -> f32 is a 16-bit left shift (vshll_n_u16 by the element width) */
static void vec_dot_bf16_neon(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0), a2 = vdupq_n_f32(0), a3 = vdupq_n_f32(0);
#define NK_LO(v) vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16))
#define NK_HI(v) vreinterpretq_f32_u32(vshll_high_n_u16((v), 16))
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const uint16x8_t x0 = vld1q_u16(x + i), y0 = vld1q_u16(y + i);
        const uint16x8_t x1 = vld1q_u16(x + i + 8), y1 = vld1q_u16(y + i + 8);
        a0 = vfmaq_f32(a0, NK_LO(x0), NK_LO(y0));
        a1 = vfmaq_f32(a1, NK_HI(x0), NK_HI(y0));
        a2 = vfmaq_f32(a2, NK_LO(x1), NK_LO(y1));
        a3 = vfmaq_f32(a3, NK_HI(x1), NK_HI(y1));
    }
#undef NK_LO
#undef NK_HI
    for (; i + 4 <= n; i += 4)
        a0 = vfmaq_f32(a0, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(x + i), 16)),
                       vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(y + i), 16)));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += nk_bf16_to_fp32(x[i]) * nk_bf16_to_fp32(y[i]);
    *s = sum;
}

/* ---- activation quantizers ------------------------------------------------------------
 * Q8_0 / Q8_1 follow ggml's ARM NEON path: d = amax/127, id = 1/d (as *_ref) but
 * round half to even (FCVTNS) instead of roundf, so a code on an exact .5 tie can
 * differ by one from nk_quant_q8_0_ref; that is what llama.cpp computes on these
 * CPUs. (ggml's x86 path uses id = 127/amax instead: the two can differ in the last
 * bit of id, hence separate models in test_simd.c.) Q8_K gives exactly
 * nk_quant_q8_K_ref's bytes. */

/* 16 int32 codes narrowed with saturation to int8, in order */
static inline int8x16_t narrow16(int32x4_t i0, int32x4_t i1, int32x4_t i2, int32x4_t i3) {
    const int16x8_t a = vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1));
    const int16x8_t b = vcombine_s16(vqmovn_s32(i2), vqmovn_s32(i3));
    return vcombine_s8(vqmovn_s16(a), vqmovn_s16(b));
}

/* One 32-block: d = amax/127 (fp16), codes = nearest-even(x/d); returns the float
 * d and the sum of the codes. */
static inline float quant32_neon(const float *x, int8_t *qs, int *sum) {
    float32x4_t v[8];
    for (int j = 0; j < 8; j++) v[j] = vld1q_f32(x + 4 * j);
    float32x4_t m = vabsq_f32(v[0]);
    for (int j = 1; j < 8; j++) m = vmaxq_f32(m, vabsq_f32(v[j]));
    const float amax = vmaxvq_f32(m);
    const float d = amax / 127.f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t c[8];
    for (int j = 0; j < 8; j++) c[j] = vcvtnq_s32_f32(vmulq_n_f32(v[j], id));
    vst1q_s8(qs, narrow16(c[0], c[1], c[2], c[3]));
    vst1q_s8(qs + 16, narrow16(c[4], c[5], c[6], c[7]));
    const int32x4_t t = vaddq_s32(vaddq_s32(vaddq_s32(c[0], c[1]), vaddq_s32(c[2], c[3])),
                                  vaddq_s32(vaddq_s32(c[4], c[5]), vaddq_s32(c[6], c[7])));
    *sum = vaddvq_s32(t);
    return d;
}

static void quant_q8_0_neon(const float *src, void *dst, int64_t n) {
    nk_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sum;
        y[i].d = nk_fp32_to_fp16(quant32_neon(src + i * QK8_0, y[i].qs, &sum));
    }
}

static void quant_q8_1_neon(const float *src, void *dst, int64_t n) {
    nk_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum;
        const float d = quant32_neon(src + i * QK8_1, y[i].qs, &sum);
        y[i].d = nk_fp32_to_fp16(d);
        y[i].s = nk_fp32_to_fp16(d * (float)sum);
    }
}

/* As nk_quant_q8_K_ref: the signed value of largest magnitude (the first such;
 * NaNs skipped, hence the max-number form vmaxnm), iscale = -127/max, codes
 * nearest-even(iscale*x) clamped to [-128, 127] (FCVTNS gives 0 for NaN and
 * saturates, as nk_nint does), bsums per 16. */
static void quant_q8_K_neon(const float *src, void *dst, int64_t n) {
    nk_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float32x4_t m = vabsq_f32(vld1q_f32(x));
        for (int j = 4; j < QK_K; j += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxnmvq_f32(m);
        if (!(amax > 0)) {   /* zero (or all-NaN) block, as the reference */
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        float max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j += 16) {
            const int8x16_t q = narrow16(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), iscale)),
                                         vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), iscale)),
                                         vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 8), iscale)),
                                         vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 12), iscale)));
            vst1q_s8(y[i].qs + j, q);
            y[i].bsums[j / 16] = vaddlvq_s8(q);
        }
        y[i].d = 1 / iscale;
    }
}

static const nk_kernel_set g_neon = {
    .vec_dot = {
        [NK_TYPE_F32] = vec_dot_f32_neon,   [NK_TYPE_F16] = vec_dot_f16_neon,
        [NK_TYPE_BF16] = vec_dot_bf16_neon,
        [NK_TYPE_Q4_0] = vec_dot_q4_0_neon, [NK_TYPE_Q4_1] = vec_dot_q4_1_neon,
        [NK_TYPE_Q5_0] = vec_dot_q5_0_neon, [NK_TYPE_Q5_1] = vec_dot_q5_1_neon,
        [NK_TYPE_Q8_0] = vec_dot_q8_0_neon,
        [NK_TYPE_Q2_K] = vec_dot_q2_K_neon, [NK_TYPE_Q3_K] = vec_dot_q3_K_neon,
        [NK_TYPE_Q4_K] = vec_dot_q4_K_neon, [NK_TYPE_Q5_K] = vec_dot_q5_K_neon,
        [NK_TYPE_Q6_K] = vec_dot_q6_K_neon,
    },
    .from_float = {
        [NK_TYPE_Q8_0] = quant_q8_0_neon, [NK_TYPE_Q8_1] = quant_q8_1_neon,
        [NK_TYPE_Q8_K] = quant_q8_K_neon,
    },
};

const nk_kernel_set *nk_kernels_neon(void) {
    return &g_neon;
}

#else
const nk_kernel_set *nk_kernels_neon(void) {
    static const nk_kernel_set none;
    return &none;
}
#endif

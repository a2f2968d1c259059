/*
 * quants_legacy.c: reference kernels for the float formats (F32, F16, BF16) and the
 * 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1).
 *
 * Every function follows ggml's reference semantics (ggml-quants.c *_ref and the
 * generic vec_dot kernels): the same rounding, the same order of operations where
 * it changes a result, so files written here match llama-quantize's bytes and dot
 * products match llama.cpp's numerics closely. Non-finite inputs are kept from
 * tripping undefined float->int conversions (nk_cvt_i) but otherwise give garbage,
 * as in ggml.
 */
#include "tensor/quants.h"

#include <float.h>

/* C's float->int conversion (truncation toward zero) with the value clamped to
 * [lo, hi] first, and NaN -> 0, so no input is undefined behaviour. For finite
 * in-range values it is exactly the (int) cast ggml uses. */
static inline int nk_cvt_i(float v, int lo, int hi) {
    if (!(v == v)) return 0;
    if (v < (float)lo) return lo;
    if (v > (float)hi) return hi;
    return (int)v;
}

/* ---- F32 / F16 / BF16 ----------------------------------------------------------- */

void nk_dequant_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void nk_quant_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void nk_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) dst[i] = nk_fp16_to_fp32(x[i]);
}

void nk_quant_f16(const float *src, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = nk_fp32_to_fp16(src[i]);
}

void nk_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) dst[i] = nk_bf16_to_fp32(x[i]);
}

void nk_quant_bf16(const float *src, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = nk_fp32_to_bf16(src[i]);
}

/* ggml's generic float dots multiply in float and accumulate in double
 * (ggml_float); the SIMD kernels accumulate in float lanes instead. */
void nk_vec_dot_f32_ref(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

void nk_vec_dot_f16_ref(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(nk_fp16_to_fp32(x[i]) * nk_fp16_to_fp32(y[i]));
    *s = (float)sum;
}

void nk_vec_dot_bf16_ref(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(nk_bf16_to_fp32(x[i]) * nk_bf16_to_fp32(y[i]));
    *s = (float)sum;
}

/* ---- dequantize ----------------------------------------------------------------
 * In all 32-blocks byte j holds element j in its low nibble and element j+16 in
 * its high nibble (the two halves of the block, not neighbours). */

void nk_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const nk_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float d = nk_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[i * QK4_0 + j] = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            dst[i * QK4_0 + j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void nk_dequant_q4_1(const void *src, float *dst, int64_t n) {
    const nk_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        const float d = nk_fp16_to_fp32(x[i].d), m = nk_fp16_to_fp32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[i * QK4_1 + j] = (float)(x[i].qs[j] & 0x0F) * d + m;
            dst[i * QK4_1 + j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* Q5: qh is a little-endian u32 whose bit e is the 5th bit of element e. */
static inline uint32_t nk_load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void nk_dequant_q5_0(const void *src, float *dst, int64_t n) {
    const nk_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        const float d = nk_fp16_to_fp32(x[i].d);
        const uint32_t qh = nk_load_qh(x[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            dst[i * QK5_0 + j] = (float)(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            dst[i * QK5_0 + j + QK5_0 / 2] = (float)(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void nk_dequant_q5_1(const void *src, float *dst, int64_t n) {
    const nk_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        const float d = nk_fp16_to_fp32(x[i].d), m = nk_fp16_to_fp32(x[i].m);
        const uint32_t qh = nk_load_qh(x[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            dst[i * QK5_1 + j] = (float)((x[i].qs[j] & 0x0F) | h0) * d + m;
            dst[i * QK5_1 + j + QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void nk_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const nk_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = nk_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++) dst[i * QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

void nk_dequant_q8_1(const void *src, float *dst, int64_t n) {
    const nk_block_q8_1 *x = src;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const float d = nk_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_1; j++) dst[i * QK8_1 + j] = (float)x[i].qs[j] * d;
    }
}

/* ---- quantize (ggml's *_ref algorithms) --------------------------------------- */

/* The value with the largest magnitude, sign kept (first one wins on ties). */
static inline float nk_signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    }
    return max;
}

void nk_quant_q4_0_ref(const float *src, void *dst, int64_t n) {
    nk_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float *x = src + i * QK4_0;
        const float max = nk_signed_absmax(x, QK4_0);
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = nk_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = NK_MIN(15, nk_cvt_i(x[j] * id + 8.5f, -128, 127));
            const int q1 = NK_MIN(15, nk_cvt_i(x[j + QK4_0 / 2] * id + 8.5f, -128, 127));
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | (q1 << 4));
        }
    }
}

void nk_quant_q4_1_ref(const float *src, void *dst, int64_t n) {
    nk_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        const float *x = src + i * QK4_1;
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK4_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = nk_fp32_to_fp16(d);
        y[i].m = nk_fp32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = NK_MIN(15, nk_cvt_i((x[j] - min) * id + 0.5f, -128, 127));
            const int q1 = NK_MIN(15, nk_cvt_i((x[j + QK4_1 / 2] - min) * id + 0.5f, -128, 127));
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | (q1 << 4));
        }
    }
}

void nk_quant_q5_0_ref(const float *src, void *dst, int64_t n) {
    nk_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        const float *x = src + i * QK5_0;
        const float max = nk_signed_absmax(x, QK5_0);
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = nk_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int q0 = NK_MIN(31, nk_cvt_i(x[j] * id + 16.5f, -128, 127));
            const int q1 = NK_MIN(31, nk_cvt_i(x[j + QK5_0 / 2] * id + 16.5f, -128, 127));
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + QK5_0 / 2);
        }
        for (int b = 0; b < 4; b++) y[i].qh[b] = (uint8_t)(qh >> (8 * b));
    }
}

void nk_quant_q5_1_ref(const float *src, void *dst, int64_t n) {
    nk_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        const float *x = src + i * QK5_1;
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = nk_fp32_to_fp16(d);
        y[i].m = nk_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            /* ggml casts to uint8_t without a clamp; (x-min)*id is within [0, 31]. */
            const int q0 = nk_cvt_i((x[j] - min) * id + 0.5f, 0, 31);
            const int q1 = nk_cvt_i((x[j + QK5_1 / 2] - min) * id + 0.5f, 0, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + QK5_1 / 2);
        }
        for (int b = 0; b < 4; b++) y[i].qh[b] = (uint8_t)(qh >> (8 * b));
    }
}

/* roundf (half away from zero) into int8, as the reference; NaN -> 0. */
static inline int8_t nk_round_i8(float v) {
    return (int8_t)nk_cvt_i(roundf(v), -127, 127);
}

void nk_quant_q8_0_ref(const float *src, void *dst, int64_t n) {
    nk_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *x = src + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = NK_MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = nk_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = nk_round_i8(x[j] * id);
    }
}

void nk_quant_q8_1_ref(const float *src, void *dst, int64_t n) {
    nk_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const float *x = src + i * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = NK_MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = nk_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = nk_round_i8(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = nk_fp32_to_fp16((float)sum * d);
    }
}

/* ---- dot products: integer dot per block, times d_x*d_y, float accumulate ------ */

void nk_vec_dot_q4_0_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK8_0 / 2];
        }
        sumf += (float)sumi * (nk_fp16_to_fp32(x[i].d) * nk_fp16_to_fp32(y[i].d));
    }
    *s = sumf;
}

void nk_vec_dot_q4_1_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_1 *x = vx;
    const nk_block_q8_1 *y = vy;
    float sumf = 0.0f;
    for (int i = 0; i < n / QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            sumi += (x[i].qs[j] & 0x0F) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + QK8_1 / 2];
        }
        sumf += (nk_fp16_to_fp32(x[i].d) * nk_fp16_to_fp32(y[i].d)) * (float)sumi
              + nk_fp16_to_fp32(x[i].m) * nk_fp16_to_fp32(y[i].s);
    }
    *s = sumf;
}

void nk_vec_dot_q5_0_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int i = 0; i < n / QK8_0; i++) {
        const uint32_t qh = nk_load_qh(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            sumi += (((x[i].qs[j] & 0x0F) | h0) - 16) * y[i].qs[j];
            sumi += (((x[i].qs[j] >> 4) | h1) - 16) * y[i].qs[j + QK8_0 / 2];
        }
        sumf += (float)sumi * (nk_fp16_to_fp32(x[i].d) * nk_fp16_to_fp32(y[i].d));
    }
    *s = sumf;
}

void nk_vec_dot_q5_1_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_1 *x = vx;
    const nk_block_q8_1 *y = vy;
    float sumf = 0.0f;
    for (int i = 0; i < n / QK8_1; i++) {
        const uint32_t qh = nk_load_qh(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            sumi += ((x[i].qs[j] & 0x0F) | h0) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) | h1) * y[i].qs[j + QK8_1 / 2];
        }
        sumf += (nk_fp16_to_fp32(x[i].d) * nk_fp16_to_fp32(y[i].d)) * (float)sumi
              + nk_fp16_to_fp32(x[i].m) * nk_fp16_to_fp32(y[i].s);
    }
    *s = sumf;
}

void nk_vec_dot_q8_0_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q8_0 *x = vx;
    const nk_block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += (float)sumi * (nk_fp16_to_fp32(x[i].d) * nk_fp16_to_fp32(y[i].d));
    }
    *s = sumf;
}

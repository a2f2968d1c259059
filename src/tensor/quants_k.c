/*
 * quants_k.c: reference kernels for the K-quants (256-element superblocks): Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K, and the Q8_K activation format they are dotted with.
 *
 * Quantizers are ggml's reference algorithms without an importance matrix (what
 * llama-quantize runs when no imatrix is given): per sub-block weighted searches
 * for scale (and min), then 6-bit (4-bit for Q2_K) super-quantization of the
 * scales, then a final requantization of every weight with the stored scales.
 * Dots use integer sums per sub-block; the mins enter through Q8_K's bsums.
 */
#include "tensor/quants.h"

#define GROUP_MAX_EPS 1e-15f

/* ---- dequantize ------------------------------------------------------------------ */

void nk_dequant_q2_K(const void *src, float *dst, int64_t n) {
    const nk_block_q2_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_fp16_to_fp32(x[i].d), dmin = nk_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        float *y = dst + i * QK_K;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
            q += 32;
        }
    }
}

void nk_dequant_q3_K(const void *src, float *dst, int64_t n) {
    const nk_block_q3_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = nk_fp16_to_fp32(x[i].d);
        int8_t sc[16];
        nk_q3_K_scales(x[i].scales, sc);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        float *y = dst + i * QK_K;
        int is = 0;
        uint8_t m = 1;
        for (int h = 0; h < QK_K; h += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * (float)sc[is++];
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        const int code = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        *y++ = dl * (float)code;
                    }
                }
                m <<= 1;
            }
            q += 32;
        }
    }
}

void nk_dequant_q4_K(const void *src, float *dst, int64_t n) {
    const nk_block_q4_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_fp16_to_fp32(x[i].d), dmin = nk_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        float *y = dst + i * QK_K;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc, m;
            nk_get_scale_min_k4(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            nk_get_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
        }
    }
}

void nk_dequant_q5_K(const void *src, float *dst, int64_t n) {
    const nk_block_q5_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_fp16_to_fp32(x[i].d), dmin = nk_fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        float *y = dst + i * QK_K;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc, m;
            nk_get_scale_min_k4(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            nk_get_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            ql += 32;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

void nk_dequant_q6_K(const void *src, float *dst, int64_t n) {
    const nk_block_q6_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        float *y = dst + i * QK_K;
        for (int h = 0; h < QK_K; h += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

void nk_dequant_q8_K(const void *src, float *dst, int64_t n) {
    const nk_block_q8_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) dst[i * QK_K + j] = x[i].d * (float)x[i].qs[j];
}

/* ---- quantizer building blocks (ggml's make_*_quants) ------------------------ */

/* Non-finite values would make nearest_int's magic trick meaningless (and the
 * int conversions below undefined); ggml asserts finiteness, we clamp. */
static inline int nk_nint(float f) {
    if (!(f == f)) return 0;
    if (f > 4194303.f) f = 4194303.f;
    if (f < -4194303.f) f = -4194303.f;
    return nk_nearest_int(f);
}

/* Symmetric quantization of n values to [-nmax, nmax-1] (stored + nmax in L),
 * returning the scale. rmse_type 1: weights x^2, then a search over 18 nearby
 * inverse scales keeping the one with the best weighted least-squares fit. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; i++) {
            int l = nk_nint(iscale * x[i]);
            L[i] = (int8_t)(nmax + NK_MAX(-nmax, NK_MIN(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nk_nint(iscale * x[i]);
        l = NK_MAX(-nmax, NK_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];   /* rmse_type 1 (the only other one nook uses) */
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nk_nint(iscale * x[i]);
            l = NK_MAX(-nmax, NK_MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nk_nint(iscale * x[i]);
                L[i] = (int8_t)(nmax + NK_MAX(-nmax, NK_MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Asymmetric quantization to [0, nmax] with a min (x ~ scale*L - the_min): start
 * from the range, then try nstep+1 inverse scales (rmin + rdelta*is + nmax)/range,
 * solving the weighted least squares for scale and min at each, keeping the one
 * with the smallest weighted error (squared, or absolute with use_mad). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; i++) {
        int l = nk_nint(iscale * (x[i] - min));
        L[i] = (uint8_t)NK_MAX(0, NK_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_mad += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nk_nint(iscale * (x[i] - min));
            l = NK_MAX(0, NK_MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                mad += weights[i] * diff;
            }
            if (mad < best_mad) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Symmetric 3-bit codes in [-nmax, nmax-1] (stored + nmax): the first guess is
 * refined by up to 5 passes of coordinate descent on the x^2-weighted fit. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nk_nint(iscale * x[i]);
        l = NK_MAX(-nmax, NK_MIN(nmax - 1, l));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = nk_nint(x[i] * sl2 / slx);
                new_l = NK_MAX(-nmax, NK_MIN(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

/* Pack 256 2-bit codes: byte l of each 32-byte group holds elements l, l+32, l+64,
 * l+96 of its 128-element half at bits 0, 2, 4, 6. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* ---- quantize ------------------------------------------------------------------- */

void nk_quant_q2_K_ref(const float *src, void *dst, int64_t n) {
    nk_block_q2_K *y = dst;
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] = (uint8_t)nk_nint(iscale * scales[j]);
            y[i].d = nk_fp32_to_fp16(max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] = 0;
            y[i].d = nk_fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] |= (uint8_t)(nk_nint(iscale * mins[j]) << 4);
            y[i].dmin = nk_fp32_to_fp16(max_min / q4scale);
        } else {
            y[i].dmin = nk_fp32_to_fp16(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = nk_fp16_to_fp32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = nk_fp16_to_fp32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                int l = nk_nint((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)NK_MAX(0, NK_MIN(3, l));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

void nk_quant_q3_K_ref(const float *src, void *dst, int64_t n) {
    nk_block_q3_K *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            float scale = fabsf(scales[j]);
            if (scale > amax) { amax = scale; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = nk_nint(iscale * scales[j]);
                l = NK_MAX(-32, NK_MIN(31, l)) + 32;
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = nk_fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = nk_fp32_to_fp16(0.f);
        }
        int8_t sc[16];
        nk_q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = nk_fp16_to_fp32(y[i].d) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nk_nint(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(NK_MAX(-4, NK_MIN(3, l)) + 4);
            }
        }
        /* high bit of element j goes to bit j/32 of hmask[j%32] */
        memset(y[i].hmask, 0, QK_K / 8);
        uint8_t Lu[QK_K];
        for (int j = 0; j < QK_K; j++) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            Lu[j] = (uint8_t)l;
        }
        pack_2bit(Lu, y[i].qs);
    }
}

/* Q4_K and Q5_K share the scale search and the scale/min packing. */
static void quant_k_scales(const float *x, int nmax, float rmin, int nstep, nk_block_q4_K *hdr, uint8_t *L) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(hdr->scales, 0, sizeof hdr->scales);
    for (int j = 0; j < QK_K / 32; j++) {
        /* ggml stores nearest_int into a uint8_t before the MIN; same here */
        uint8_t ls = (uint8_t)nk_nint(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nk_nint(inv_min * mins[j]);
        ls = NK_MIN(63, ls);
        lm = NK_MIN(63, lm);
        if (j < 4) {
            hdr->scales[j] = ls;
            hdr->scales[j + 4] = lm;
        } else {
            hdr->scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            hdr->scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            hdr->scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    hdr->d = nk_fp32_to_fp16(max_scale / 63.f);
    hdr->dmin = nk_fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        nk_get_scale_min_k4(j, hdr->scales, &sc, &m);
        const float d = nk_fp16_to_fp32(hdr->d) * sc;
        if (!d) continue;
        const float dm = nk_fp16_to_fp32(hdr->dmin) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nk_nint((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)NK_MAX(0, NK_MIN(nmax, l));
        }
    }
}

void nk_quant_q4_K_ref(const float *src, void *dst, int64_t n) {
    nk_block_q4_K *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        quant_k_scales(src + i * QK_K, 15, -1.f, 20, &y[i], L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

void nk_quant_q5_K_ref(const float *src, void *dst, int64_t n) {
    nk_block_q5_K *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        nk_block_q4_K hdr;
        quant_k_scales(src + i * QK_K, 31, -0.5f, 15, &hdr, L);
        y[i].d = hdr.d;
        y[i].dmin = hdr.dmin;
        memcpy(y[i].scales, hdr.scales, sizeof y[i].scales);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) { l1 -= 16; qh[l] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[l] |= m2; }
                ql[l] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
            ql += 32;
        }
    }
}

void nk_quant_q6_K_ref(const float *src, void *dst, int64_t n) {
    nk_block_q6_K *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = nk_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) y[i].scales[ib] = (int8_t)NK_MIN(127, nk_nint(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            float d = nk_fp16_to_fp32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nk_nint(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(NK_MAX(-32, NK_MIN(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

/* Activations for K-quant dots: the signed value of largest magnitude maps to -127
 * (iscale = -127/max), codes round half to even and are capped at 127, and
 * bsums hold the sum of each 16 codes. */
void nk_quant_q8_K_ref(const float *src, void *dst, int64_t n) {
    nk_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)NK_MAX(-128, NK_MIN(127, nk_nint(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- dot products against Q8_K ----------------------------------------------- */

void nk_vec_dot_q2_K_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q2_K *x = vx;
    const nk_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *q2 = x[i].qs, *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        int isum = 0, is = 0;
        for (int k = 0; k < QK_K / 128; k++) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    int isuml = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += (sc[is++] & 0xF) * isuml;
                }
                q8 += 32;
            }
            q2 += 32;
        }
        const float dall = y[i].d * nk_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * nk_fp16_to_fp32(x[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

void nk_vec_dot_q3_K_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q3_K *x = vx;
    const nk_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t sc[16];
        nk_q3_K_scales(x[i].scales, sc);
        const uint8_t *q3 = x[i].qs, *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        int isum = 0, is = 0;
        uint8_t m = 1;
        for (int k = 0; k < QK_K / 128; k++) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    int isuml = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        isuml += q8[l] * (((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                    isum += sc[is++] * isuml;
                }
                q8 += 32;
                m <<= 1;
            }
            q3 += 32;
        }
        sumf += nk_fp16_to_fp32(x[i].d) * y[i].d * (float)isum;
    }
    *s = sumf;
}

/* Q4_K/Q5_K: d*d8*sum_j sc_j*(q.q8)_j - dmin*d8*sum_j m_j*(bsum_2j + bsum_2j+1). */
void nk_vec_dot_q4_K_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q4_K *x = vx;
    const nk_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc1, m1, sc2, m2;
            nk_get_scale_min_k4(2 * j, x[i].scales, &sc1, &m1);
            nk_get_scale_min_k4(2 * j + 1, x[i].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (q4[l] & 0xF) * q8[l];
                s2 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc1 * s1 + sc2 * s2;
            summs += m1 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) + m2 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
            q4 += 32;
            q8 += 64;
        }
        const float d = nk_fp16_to_fp32(x[i].d) * y[i].d;
        const float dmin = nk_fp16_to_fp32(x[i].dmin) * y[i].d;
        sumf += d * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

void nk_vec_dot_q5_K_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q5_K *x = vx;
    const nk_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc1, m1, sc2, m2;
            nk_get_scale_min_k4(2 * j, x[i].scales, &sc1, &m1);
            nk_get_scale_min_k4(2 * j + 1, x[i].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((ql[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4)) * q8[l];
                s2 += ((ql[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) * q8[l + 32];
            }
            isum += sc1 * s1 + sc2 * s2;
            summs += m1 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) + m2 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
            ql += 32;
            q8 += 64;
        }
        const float d = nk_fp16_to_fp32(x[i].d) * y[i].d;
        const float dmin = nk_fp16_to_fp32(x[i].dmin) * y[i].d;
        sumf += d * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

void nk_vec_dot_q6_K_ref(int n, float *s, const void *vx, const void *vy) {
    const nk_block_q6_K *x = vx;
    const nk_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *q8 = y[i].qs;
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            int sub[8] = {0};   /* 16-element groups of this half, in element order */
            for (int l = 0; l < 32; l++) {
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                sub[l / 16 + 0] += q1 * q8[l];
                sub[l / 16 + 2] += q2 * q8[l + 32];
                sub[l / 16 + 4] += q3 * q8[l + 64];
                sub[l / 16 + 6] += q4 * q8[l + 96];
            }
            for (int g = 0; g < 8; g++) isum += sc[g] * sub[g];
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        sumf += nk_fp16_to_fp32(x[i].d) * y[i].d * (float)isum;
    }
    *s = sumf;
}

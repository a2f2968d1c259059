/*
 * ops_gemm.h: register-blocked matrix kernels for nk_matmul (internal to the tensor
 * layer and its tests).
 *
 * A gemm kernel multiplies a block of weight rows (the model file's own layout, no
 * repacking) by a block of activation rows that were converted once into the
 * kernel's activation format (act_quant). Inside, tiles of up to 4 weight rows x 4
 * tokens keep their accumulators in registers, so every weight block loaded and
 * decoded is used for several tokens, and every activation block for several rows.
 *
 * Determinism: each output element is computed by the same sequence of operations
 * whatever the tile it falls in and whatever nr/nt are, so results do not depend on
 * batching or on how rows are split between threads (bit for bit). They differ from
 * the type's vec_dot only in float rounding order (bounds in tests/tensor/test_gemm.c).
 *
 * Activation formats keep llama.cpp's codes: the K-quant kernels read Q8_K blocks
 * (exact reference codes; Q4_K's in a permuted byte order), the 32-block kernels
 * (Q8_0, Q5_0, Q4_0) read ggml's x86 Q8_0 codes stored as u8 (code + 128) with the
 * block scales expanded to floats.
 */
#ifndef NOOK_TENSOR_OPS_GEMM_H
#define NOOK_TENSOR_OPS_GEMM_H

#include "tensor/types.h"

/* y[t*ys + r] = dot(weight row r, activation row t) for r < nr, t < nt. w: the first
 * weight row (rows w_stride bytes apart); a: the first converted activation row
 * (rows a_stride bytes apart). n: elements per row (a multiple of the block size). */
typedef void (*nk_gemm_fn)(int n, int nr, int nt, const void *w, size_t w_stride,
                           const void *a, size_t a_stride, float *y, size_t ys);
/* Convert n floats (n a multiple of the weight's block size) into act_row_size(n) bytes. */
typedef void (*nk_act_quant_fn)(const float *x, void *dst, int64_t n);

typedef struct nk_gemm_kernel {
    nk_gemm_fn gemm;
    nk_act_quant_fn act_quant;
    size_t (*act_row_size)(int64_t n);
} nk_gemm_kernel;

/* The kernel for weights of this type on this CPU, or NULL (then nk_matmul uses the
 * type's vec_dot). Honors NOOK_NO_SIMD through nk_tensor_isa(). */
const nk_gemm_kernel *nk_gemm_get(uint32_t wtype);
/* The AVX-512 VNNI kernel regardless of NOOK_NO_SIMD (tests); NULL if the CPU lacks it
 * or there is none for the type. */
const nk_gemm_kernel *nk_gemm_avx512(uint32_t wtype);

#endif /* NOOK_TENSOR_OPS_GEMM_H */

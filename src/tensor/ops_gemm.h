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
 * (exact reference codes; Q4_K's in a permuted byte order), the small-batch 32-block
 * kernels (Q8_0, Q5_0, Q4_0) read ggml's x86 Q8_0 codes (signed) with the block
 * scales expanded to floats and, per group of 4 codes, -offset * (their sum), where
 * offset is what the kernel adds to the weight codes to read them unsigned (Q8_0
 * 128, Q5_0 16, Q4_0 8): one conversion per weight type.
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
    int min_tok;        /* batch kernels: used for matmuls of at least this many tokens */
} nk_gemm_kernel;

/* The kernel for weights of this type on this CPU, or NULL (then nk_matmul uses the
 * type's vec_dot). Honors NOOK_NO_SIMD through nk_tensor_isa(). */
const nk_gemm_kernel *nk_gemm_get(uint32_t wtype);
/* The AVX-512 VNNI kernel regardless of NOOK_NO_SIMD (tests); NULL if the CPU lacks it
 * or there is none for the type. */
const nk_gemm_kernel *nk_gemm_avx512(uint32_t wtype);

/* Batch ("rows in lanes") kernels for prompt processing: for each weight block they
 * unpack 16 rows' codes once into an interleaved scratch (one 32-bit lane per row)
 * and run it against many tokens with broadcast activations, so no horizontal sums
 * and no per-token decoding. Each returns NULL when the CPU lacks AVX-512 VNNI. */
const nk_gemm_kernel *nk_gemm_rl_q4_K(void);
const nk_gemm_kernel *nk_gemm_rl_q6_K(void);
const nk_gemm_kernel *nk_gemm_rl_q8_0(void);
const nk_gemm_kernel *nk_gemm_rl_q5_0(void);
const nk_gemm_kernel *nk_gemm_rl_q4_0(void);

/* Q6_K repacked at load into 16-row interleaved blocks (layout in gemm_rl_q6k.c): each
 * full group of 16 rows keeps its bytes (16 x 210 per block) with the codes already
 * in rows-in-lanes order; a partial last group stays in the file's layout. Row
 * offsets at group boundaries are unchanged, so nk_matmul hands the kernel rows from
 * a multiple of 16. The kernel gives gemm_rl_q6_K's bits on the original rows at
 * every token count (1 included). NULL without AVX-512 VNNI. */
const nk_gemm_kernel *nk_gemm_r16_q6_K(void);
/* Repack nrows Q6_K rows of n elements from src into dst (the same byte count, no
 * overlap). False (nothing written) without the kernel. Thread-safe. */
bool nk_q6k_r16_pack(const void *src, void *dst, int64_t nrows, int64_t n);
/* Row `row` of a repacked tensor (data: its start) as floats, nk_dequant_q6_K's bits. */
void nk_q6k_r16_row_to_float(const void *data, int64_t row, int64_t nrows, int64_t n, float *dst);

/* The same for Q4_K (layout in gemm_rl_q4k.c: per block of 16 rows the rows' d|dmin
 * and packed scales one dword per row, then their code bytes transposed 16 x 16), with
 * gemm_rl_q4_K's bits on the original rows at every token count. */
const nk_gemm_kernel *nk_gemm_r16_q4_K(void);
bool nk_q4k_r16_pack(const void *src, void *dst, int64_t nrows, int64_t n);
void nk_q4k_r16_row_to_float(const void *data, int64_t row, int64_t nrows, int64_t n, float *dst);

/* The kernel nk_matmul uses for n_tok tokens of this weight type: the batch kernel
 * when there is one and n_tok >= its min_tok (unless NOOK_NO_RL=1), else
 * nk_gemm_get's. */
const nk_gemm_kernel *nk_gemm_pick(uint32_t wtype, int n_tok);

/* NOOK_NO_GEMM and NOOK_NO_RL are read once, at the first matmul. Tests that switch
 * them inside one process call this after setenv/unsetenv; never while a matmul runs. */
void nk_gemm_reread_env(void);

/* nk_swiglu's loop on AVX-512 (arch/x86/glu_avx512.c), the same bits: false (nothing
 * written) when the CPU level is below avx512vnni (nk_tensor_isa, so NOOK_NO_SIMD
 * too) or this C library's expf differs from the vector one on its first-use check. */
bool nk_swiglu_avx512(float *gate_out, const float *up, size_t n);
/* x[i] = expf(x[i]) with the C library's bits, every input, under the same conditions. */
bool nk_expf_avx512(float *x, size_t n);

#endif /* NOOK_TENSOR_OPS_GEMM_H */

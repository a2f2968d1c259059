/*
 * gemm_rl_q4k.c: the rows-in-lanes batch kernel for Q4_K weights (contract in
 * tensor/ops_gemm.h). Not written yet: nk_matmul falls back to nk_gemm_get's kernel.
 */
#include "tensor/ops_gemm.h"

const nk_gemm_kernel *nk_gemm_rl_q4_K(void) { return NULL; }

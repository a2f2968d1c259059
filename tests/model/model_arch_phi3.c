/*
 * model_arch_phi3.c: Phi-3 mini (phi3): NEOX RoPE, fused attn_qkv and ffn_up (gate|up), head_dim 96, no GQA, Q x 1/sqrt(96)
 * after RoPE, untied output. n_embd 768 (8 heads of 96) so K-quants apply.
 *
 * nook vs llama.cpp on the same generated files at F32, F16, Q8_0, Q4_0 and Q4_K_M: log-softmax
 * at every position of a 32-token prompt and 32 greedy ids (see model_arch.h).
 *
 * Tolerance: llama.cpp's own flash-vs-plain spread on the same file, x1.5, with a floor of
 * 1e-3 (arch_check in model_arch.h explains why; docs/architectures.md has the numbers).
 */
#include "model_arch.h"

static const arch_cfg CFG = {
    .name = "phi3", .arch = "phi3", .n_embd = 768, .n_layer = 2, .n_head = 8, .n_head_kv = 8, .head_dim = 96,
    .n_ff = 512, .n_ctx = 4096, .tied = false, .rope_dim = true, .fused = true, .rope_base = 10000.0f, .eps = 1e-5f,
    .tol = 1e-3f,
};

int main(void) { return arch_main(&CFG); }

/*
 * model_arch_qwen3.c: Qwen3 (qwen3): NEOX RoPE, per-head RMSNorm on Q and K before RoPE, head_dim 128 from attention.key_length
 * (not n_embd/n_head), GQA 2:1, tied output, rope base 1e6. Shape of qwen3-0.6b scaled down: n_embd 256, 4 layers.
 *
 * nook vs llama.cpp on the same generated files at F32, F16, Q8_0, Q4_0 and Q4_K_M: log-softmax
 * at every position of a 32-token prompt and 32 greedy ids (see model_arch.h).
 *
 * Tolerance: llama.cpp's own flash-vs-plain spread on the same file, x1.5, with a floor of
 * 1e-3 (arch_check in model_arch.h explains why; docs/architectures.md has the numbers).
 */
#include "model_arch.h"

static const arch_cfg CFG = {
    .name = "qwen3", .arch = "qwen3", .n_embd = 256, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 128,
    .n_ff = 768, .n_ctx = 40960, .tied = true, .key_length = true, .qk_norm = true, .rope_base = 1e6f, .eps = 1e-6f,
    .tol = 1e-3f,
};

int main(void) { return arch_main(&CFG); }

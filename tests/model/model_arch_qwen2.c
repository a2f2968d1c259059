/*
 * model_arch_qwen2.c: Qwen2/2.5 (qwen2): NEOX RoPE, biases on Q, K and V, GQA 2:1, tied output (0.5B-3B), rope base 1e6;
 * head_dim = n_embd/n_head (no key_length key, as in real qwen2 files).
 *
 * nook vs llama.cpp on the same generated files at F32, F16, Q8_0, Q4_0 and Q4_K_M: log-softmax
 * at every position of a 32-token prompt and 32 greedy ids (see model_arch.h).
 *
 * Tolerance: llama.cpp's own flash-vs-plain spread on the same file, x1.5, with a floor of
 * 1e-3 (arch_check in model_arch.h explains why; docs/architectures.md has the numbers).
 */
#include "model_arch.h"

static const arch_cfg CFG = {
    .name = "qwen2", .arch = "qwen2", .n_embd = 256, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 64,
    .n_ff = 768, .n_ctx = 32768, .tied = true, .qkv_bias = true, .rope_base = 1e6f, .eps = 1e-6f,
    .tol = 1e-3f,
};

int main(void) { return arch_main(&CFG); }

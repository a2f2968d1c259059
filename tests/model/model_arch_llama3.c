/*
 * model_arch_llama3.c: Llama 3.2 (llama): NORM RoPE, base 500000 with the llama3 scaling (factor 32) baked into rope_freqs,
 * GQA 4:1, head_dim 32, tied output (1B/3B), rope.dimension_count written.
 *
 * nook vs llama.cpp on the same generated files at F32, F16, Q8_0, Q4_0 and Q4_K_M: log-softmax
 * at every position of a 32-token prompt and 32 greedy ids (see model_arch.h).
 *
 * Tolerance: llama.cpp's own flash-vs-plain spread on the same file, x1.5, with a floor of
 * 1e-3 (arch_check in model_arch.h explains why; docs/architectures.md has the numbers).
 */
#include "model_arch.h"

static const arch_cfg CFG = {
    .name = "llama3", .arch = "llama", .n_embd = 256, .n_layer = 4, .n_head = 8, .n_head_kv = 2, .head_dim = 32,
    .n_ff = 768, .n_ctx = 131072, .tied = true, .rope_dim = true, .rope_base = 500000.0f, .eps = 1e-5f,
    .llama3_rope = 32.0f,
    .tol = 1e-3f,
};

int main(void) { return arch_main(&CFG); }

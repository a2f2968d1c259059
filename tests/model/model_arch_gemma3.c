/*
 * model_arch_gemma3.c: Gemma 3 (gemma3): NEOX RoPE, embeddings x sqrt(n_embd), q/k norms, Q x 1/sqrt(head_dim) after RoPE,
 * post-attention and post-FFN norms, GeGLU, head_dim 256, one KV head (like gemma3-1b), tied output,
 * 6 layers so that layers 0-4 are local (sliding window 8, RoPE base 10000) and layer 5 is global
 * (base 1e6): the 32-token prompt crosses the window.
 *
 * nook vs llama.cpp on the same generated files at F32, F16, Q8_0, Q4_0 and Q4_K_M: log-softmax
 * at every position of a 32-token prompt and 32 greedy ids (see model_arch.h).
 *
 * Tolerance: llama.cpp's own flash-vs-plain spread on the same file, x1.5, with a floor of
 * 1e-3 (arch_check in model_arch.h explains why; docs/architectures.md has the numbers).
 */
#include "model_arch.h"

static const arch_cfg CFG = {
    .name = "gemma3", .arch = "gemma3", .n_embd = 256, .n_layer = 6, .n_head = 4, .n_head_kv = 1, .head_dim = 256,
    .n_ff = 512, .n_ctx = 32768, .tied = true, .key_length = true, .qk_norm = true, .post_norms = true,
    .rope_base = 1e6f, .eps = 1e-6f, .n_swa = 8,
    .tol = 1e-3f,
};

int main(void) { return arch_main(&CFG); }

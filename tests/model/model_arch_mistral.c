/*
 * model_arch_mistral.c: Mistral 7B v0.2/v0.3 (GGUF arch "llama"; llama.cpp has no "mistral" arch, only "mistral3" for
 * Mistral Small 3.1): NORM RoPE base 1e6, GQA 4:1, untied output, no rope_freqs.
 *
 * nook vs llama.cpp on the same generated files at F32, F16, Q8_0, Q4_0 and Q4_K_M: log-softmax
 * at every position of a 32-token prompt and 32 greedy ids (see model_arch.h).
 *
 * Tolerance: llama.cpp's own flash-vs-plain spread on the same file, x1.5, with a floor of
 * 1e-3 (arch_check in model_arch.h explains why; docs/architectures.md has the numbers).
 */
#include "model_arch.h"

static const arch_cfg CFG = {
    .name = "mistral", .arch = "llama", .n_embd = 256, .n_layer = 4, .n_head = 8, .n_head_kv = 2, .head_dim = 32,
    .n_ff = 768, .n_ctx = 32768, .tied = false, .rope_dim = true, .rope_base = 1e6f, .eps = 1e-5f,
    .tol = 1e-3f,
};

int main(void) { return arch_main(&CFG); }

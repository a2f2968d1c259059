/*
 * neon_dotprod.c: the integer dots of kernels_neon.h with the Armv8.2-A dotprod
 * instruction (SDOT, vdotq_s32: four int8 products summed into each int32 lane).
 *
 * Every function carries its own target attribute, so the file builds with the
 * compiler's default -march (baseline Armv8-A) and the code runs only after
 * nk_tensor_init (or a test) has checked the CPU with
 * nk_isa_supported(NK_ISA_NEON_DOTPROD). Float dots and activation quantizers are
 * not here: they gain nothing from dotprod, and the per-type fallback takes them
 * from neon.c. On other targets this file compiles to an empty kernel set.
 *
 * GCC's arm_neon.h defines vdotq_s32 for any function whose target includes
 * dotprod. Older clang (14 at least) defines it only when the whole translation
 * unit has dotprod (__ARM_FEATURE_DOTPROD: -march=armv8.2-a+dotprod, -mcpu=native,
 * or Apple clang's default arm64 target); without it this file compiles to an
 * empty set and the baseline NEON kernels run.
 */
#include "tensor/quants.h"

#if defined(__aarch64__) && (!defined(__clang__) || defined(__ARM_FEATURE_DOTPROD))
#include <arm_neon.h>

/* GCC defines vdotq_s32 under "arch=armv8.2-a+dotprod", and a callee inlines only
 * into a caller whose target includes its own. */
#if defined(__clang__)
#define NK_TGT __attribute__((target("dotprod")))
#else
#define NK_TGT __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#define NK_FN(name) name##_neon_dotprod
#define NK_DOT(acc, a, b) vdotq_s32((acc), (a), (b))

#include "kernels_neon.h"

static const nk_kernel_set g_neon_dotprod = {
    .vec_dot = {
        [NK_TYPE_Q4_0] = vec_dot_q4_0_neon_dotprod, [NK_TYPE_Q4_1] = vec_dot_q4_1_neon_dotprod,
        [NK_TYPE_Q5_0] = vec_dot_q5_0_neon_dotprod, [NK_TYPE_Q5_1] = vec_dot_q5_1_neon_dotprod,
        [NK_TYPE_Q8_0] = vec_dot_q8_0_neon_dotprod,
        [NK_TYPE_Q2_K] = vec_dot_q2_K_neon_dotprod, [NK_TYPE_Q3_K] = vec_dot_q3_K_neon_dotprod,
        [NK_TYPE_Q4_K] = vec_dot_q4_K_neon_dotprod, [NK_TYPE_Q5_K] = vec_dot_q5_K_neon_dotprod,
        [NK_TYPE_Q6_K] = vec_dot_q6_K_neon_dotprod,
    },
};

const nk_kernel_set *nk_kernels_neon_dotprod(void) {
    return &g_neon_dotprod;
}

#else
const nk_kernel_set *nk_kernels_neon_dotprod(void) {
    static const nk_kernel_set none;
    return &none;
}
#endif

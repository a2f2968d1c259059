/*
 * types.c: the traits table (one row per ggml type id), name lookup, row sizes, and
 * the start-up kernel selection (nk_tensor_init).
 *
 * The table starts out holding the reference kernels, so it is correct before
 * nk_tensor_init; init swaps in SIMD kernels once, under pthread_once, and the
 * table is read-only afterwards (lock-free reads from any thread).
 */
#include "tensor/quants.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#define ROW(nm, b, sz, q, tof, fromf, vdt, vd) \
    { .name = nm, .blck = b, .type_size = sz, .is_quantized = q, .to_float = tof, \
      .from_float = fromf, .vec_dot_type = vdt, .vec_dot = vd, .vec_dot_ref = vd, .from_float_ref = fromf }
/* A type ggml knows and nook cannot compute with: sized, named, no kernels. */
#define UNSUPPORTED(nm, b, sz) \
    { .name = nm, .blck = b, .type_size = sz, .is_quantized = true, .vec_dot_type = -1 }

static nk_type_traits g_traits[NK_TYPE_COUNT] = {
    [NK_TYPE_F32]  = ROW("F32", 1, 4, false, nk_dequant_f32, nk_quant_f32, NK_TYPE_F32, nk_vec_dot_f32_ref),
    [NK_TYPE_F16]  = ROW("F16", 1, 2, false, nk_dequant_f16, nk_quant_f16, NK_TYPE_F16, nk_vec_dot_f16_ref),
    [NK_TYPE_BF16] = ROW("BF16", 1, 2, false, nk_dequant_bf16, nk_quant_bf16, NK_TYPE_BF16, nk_vec_dot_bf16_ref),
    [NK_TYPE_Q4_0] = ROW("Q4_0", QK4_0, sizeof(nk_block_q4_0), true, nk_dequant_q4_0, nk_quant_q4_0_ref, NK_TYPE_Q8_0, nk_vec_dot_q4_0_ref),
    [NK_TYPE_Q4_1] = ROW("Q4_1", QK4_1, sizeof(nk_block_q4_1), true, nk_dequant_q4_1, nk_quant_q4_1_ref, NK_TYPE_Q8_1, nk_vec_dot_q4_1_ref),
    [NK_TYPE_Q5_0] = ROW("Q5_0", QK5_0, sizeof(nk_block_q5_0), true, nk_dequant_q5_0, nk_quant_q5_0_ref, NK_TYPE_Q8_0, nk_vec_dot_q5_0_ref),
    [NK_TYPE_Q5_1] = ROW("Q5_1", QK5_1, sizeof(nk_block_q5_1), true, nk_dequant_q5_1, nk_quant_q5_1_ref, NK_TYPE_Q8_1, nk_vec_dot_q5_1_ref),
    [NK_TYPE_Q8_0] = ROW("Q8_0", QK8_0, sizeof(nk_block_q8_0), true, nk_dequant_q8_0, nk_quant_q8_0_ref, NK_TYPE_Q8_0, nk_vec_dot_q8_0_ref),
    /* Q8_1 and Q8_K are activation formats: quantizers, no dot of their own. */
    [NK_TYPE_Q8_1] = ROW("Q8_1", QK8_1, sizeof(nk_block_q8_1), true, nk_dequant_q8_1, nk_quant_q8_1_ref, NK_TYPE_Q8_1, NULL),
    [NK_TYPE_Q2_K] = ROW("Q2_K", QK_K, sizeof(nk_block_q2_K), true, nk_dequant_q2_K, nk_quant_q2_K_ref, NK_TYPE_Q8_K, nk_vec_dot_q2_K_ref),
    [NK_TYPE_Q3_K] = ROW("Q3_K", QK_K, sizeof(nk_block_q3_K), true, nk_dequant_q3_K, nk_quant_q3_K_ref, NK_TYPE_Q8_K, nk_vec_dot_q3_K_ref),
    [NK_TYPE_Q4_K] = ROW("Q4_K", QK_K, sizeof(nk_block_q4_K), true, nk_dequant_q4_K, nk_quant_q4_K_ref, NK_TYPE_Q8_K, nk_vec_dot_q4_K_ref),
    [NK_TYPE_Q5_K] = ROW("Q5_K", QK_K, sizeof(nk_block_q5_K), true, nk_dequant_q5_K, nk_quant_q5_K_ref, NK_TYPE_Q8_K, nk_vec_dot_q5_K_ref),
    [NK_TYPE_Q6_K] = ROW("Q6_K", QK_K, sizeof(nk_block_q6_K), true, nk_dequant_q6_K, nk_quant_q6_K_ref, NK_TYPE_Q8_K, nk_vec_dot_q6_K_ref),
    [NK_TYPE_Q8_K] = ROW("Q8_K", QK_K, sizeof(nk_block_q8_K), true, nk_dequant_q8_K, nk_quant_q8_K_ref, NK_TYPE_Q8_K, NULL),

    [NK_TYPE_IQ2_XXS] = UNSUPPORTED("IQ2_XXS", QK_K, 66),
    [NK_TYPE_IQ2_XS]  = UNSUPPORTED("IQ2_XS", QK_K, 74),
    [NK_TYPE_IQ3_XXS] = UNSUPPORTED("IQ3_XXS", QK_K, 98),
    [NK_TYPE_IQ1_S]   = UNSUPPORTED("IQ1_S", QK_K, 50),
    [NK_TYPE_IQ4_NL]  = UNSUPPORTED("IQ4_NL", 32, 18),
    [NK_TYPE_IQ3_S]   = UNSUPPORTED("IQ3_S", QK_K, 110),
    [NK_TYPE_IQ2_S]   = UNSUPPORTED("IQ2_S", QK_K, 82),
    [NK_TYPE_IQ4_XS]  = UNSUPPORTED("IQ4_XS", QK_K, 136),
    [NK_TYPE_IQ1_M]   = UNSUPPORTED("IQ1_M", QK_K, 56),
    [NK_TYPE_TQ1_0]   = UNSUPPORTED("TQ1_0", QK_K, 54),
    [NK_TYPE_TQ2_0]   = UNSUPPORTED("TQ2_0", QK_K, 66),
    [NK_TYPE_MXFP4]   = UNSUPPORTED("MXFP4", 32, 17),
    /* plain integer / double tensors: sized so a file can be walked, not computed */
    [NK_TYPE_I8]  = { .name = "I8", .blck = 1, .type_size = 1, .vec_dot_type = -1 },
    [NK_TYPE_I16] = { .name = "I16", .blck = 1, .type_size = 2, .vec_dot_type = -1 },
    [NK_TYPE_I32] = { .name = "I32", .blck = 1, .type_size = 4, .vec_dot_type = -1 },
    [NK_TYPE_I64] = { .name = "I64", .blck = 1, .type_size = 8, .vec_dot_type = -1 },
    [NK_TYPE_F64] = { .name = "F64", .blck = 1, .type_size = 8, .vec_dot_type = -1 },
};

const nk_type_traits *nk_type_get(uint32_t type) {
    if (type >= NK_TYPE_COUNT || !g_traits[type].name) return NULL;
    return &g_traits[type];
}

const char *nk_type_name(uint32_t type) {
    const nk_type_traits *t = nk_type_get(type);
    return t ? t->name : NULL;
}

int nk_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < NK_TYPE_COUNT; i++)
        if (g_traits[i].name && strcasecmp(g_traits[i].name, name) == 0) return i;
    return -1;
}

size_t nk_row_size(uint32_t type, int64_t n) {
    const nk_type_traits *t = nk_type_get(type);
    if (!t || n < 0 || n % t->blck != 0) return 0;
    uint64_t bytes;
    if (!nk_mul_ok((uint64_t)(n / t->blck), t->type_size, &bytes) || bytes > SIZE_MAX) return 0;
    return (size_t)bytes;
}

/* ---- CPU detection and kernel selection ---------------------------------------- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

/* CPU features from cpuid, and whether the OS saves the AVX / AVX-512 register
 * state (xgetbv): an instruction the CPU has is unusable if the OS does not. */
typedef struct { bool avx2, avx512; } nk_cpu;

static nk_cpu detect_cpu(void) {
    nk_cpu c = {false, false};
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    const bool fma = cx & (1u << 12), osxsave = cx & (1u << 27), avx = cx & (1u << 28), f16c = cx & (1u << 29);
    if (!osxsave || !avx) return c;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    const bool os_avx = (xlo & 0x6) == 0x6, os_avx512 = (xlo & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d)) return c;
    const bool avx2 = b & (1u << 5);
    const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    const bool vnni = cx & (1u << 11);
    c.avx2 = os_avx && avx2 && fma && f16c;
    c.avx512 = c.avx2 && os_avx512 && f && dq && bw && vl && vnni;
    return c;
}
#endif

#if defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
/* bit values from the kernel's uapi asm/hwcap.h, for libcs that predate them */
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/* Advanced SIMD and dotprod as the OS reports them: getauxval(AT_HWCAP) on Linux,
 * sysctl on macOS; elsewhere only what the compiler was told to assume. */
typedef struct { bool neon, dotprod; } nk_cpu;

static nk_cpu detect_cpu(void) {
    nk_cpu c = {false, false};
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    c.neon = (hw & HWCAP_ASIMD) != 0;
    c.dotprod = c.neon && (hw & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    c.neon = true;   /* every Apple arm64 CPU */
    c.dotprod = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v != 0;
#else
    c.neon = true;   /* Advanced SIMD is mandatory in the AArch64 ABIs */
#if defined(__ARM_FEATURE_DOTPROD)
    c.dotprod = true;
#endif
#endif
    return c;
}
#endif

/* cpuid / getauxval are cheap and their answers never change: no caching, no shared state. */
bool nk_isa_supported(int isa) {
    switch (isa) {
    case NK_ISA_REF: return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case NK_ISA_AVX2: return detect_cpu().avx2;
    case NK_ISA_AVX512: return detect_cpu().avx512;
#endif
#if defined(__aarch64__)
    case NK_ISA_NEON: return detect_cpu().neon;
    case NK_ISA_NEON_DOTPROD: return detect_cpu().dotprod;
#endif
    default: return false;
    }
}

const char *nk_isa_name(int isa) {
    switch (isa) {
    case NK_ISA_REF: return "reference";
    case NK_ISA_AVX2: return "avx2";
    case NK_ISA_AVX512: return "avx512vnni";
    case NK_ISA_NEON: return "neon";
    case NK_ISA_NEON_DOTPROD: return "neon-dotprod";
    default: return NULL;
    }
}

static const nk_kernel_set *kernel_set(int isa) {
    switch (isa) {
    case NK_ISA_AVX2: return nk_kernels_avx2();
    case NK_ISA_AVX512: return nk_kernels_avx512();
    case NK_ISA_NEON: return nk_kernels_neon();
    case NK_ISA_NEON_DOTPROD: return nk_kernels_neon_dotprod();
    default: return NULL;
    }
}

nk_vec_dot_fn nk_vec_dot_variant(uint32_t type, int isa) {
    const nk_type_traits *t = nk_type_get(type);
    if (!t) return NULL;
    if (isa == NK_ISA_REF) return t->vec_dot_ref;
    const nk_kernel_set *k = kernel_set(isa);
    return k ? k->vec_dot[type] : NULL;
}

nk_from_float_fn nk_from_float_variant(uint32_t type, int isa) {
    const nk_type_traits *t = nk_type_get(type);
    if (!t) return NULL;
    if (isa == NK_ISA_REF) return t->from_float_ref;
    const nk_kernel_set *k = kernel_set(isa);
    return k ? k->from_float[type] : NULL;
}

static const char *g_isa = "reference";
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* For each type take the kernel of the best supported level that has one, so a
 * level with only some kernels written still falls back per type. */
static void init_once(void) {
    const char *no_simd = getenv("NOOK_NO_SIMD");
    if (no_simd && *no_simd && strcmp(no_simd, "0") != 0) return;
    int best = NK_ISA_REF;
    for (int isa = NK_ISA_COUNT - 1; isa > NK_ISA_REF; isa--)
        if (nk_isa_supported(isa)) { best = isa; break; }
    if (best == NK_ISA_REF) return;
    g_isa = nk_isa_name(best);
    for (uint32_t t = 0; t < NK_TYPE_COUNT; t++) {
        if (!g_traits[t].name) continue;
        for (int isa = best; isa > NK_ISA_REF; isa--) {
            nk_vec_dot_fn f = nk_vec_dot_variant(t, isa);
            if (f) { g_traits[t].vec_dot = f; break; }
        }
        for (int isa = best; isa > NK_ISA_REF; isa--) {
            nk_from_float_fn f = nk_from_float_variant(t, isa);
            if (f) { g_traits[t].from_float = f; break; }
        }
    }
}

void nk_tensor_init(void) {
    pthread_once(&g_once, init_once);
}

const char *nk_tensor_isa(void) {
    return g_isa;
}

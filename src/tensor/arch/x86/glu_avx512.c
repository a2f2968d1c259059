/*
 * glu_avx512.c: SwiGLU (x = silu(gate) * up) 16 lanes at a time with the bits of
 * the scalar loop in ops.c, (x / (1 + expf(-x))) * up, on AVX-512.
 *
 * Why: at 8 sequences a decode step runs 8 x 28 x 3,072 SwiGLU elements on
 * qwen3-0.6b, and the scalar loop (a libm call per element, then a divide) was ~4%
 * of the step's CPU time (perf, one thread), time the other thread waits for.
 *
 * expf with the C library's bits, every input. glibc (2.27 on; the FMA build
 * __expf_fma it selects on every CPU this runs on) evaluates, for every x with
 * -0x1.9fe368p6 <= x <= 0x1.62e42ep6, one double expression rounded to float once:
 * with N = 32,
 *   z = fma(N/ln2, x, 0x1.8p52)          (k = round(x N/ln2) in z's low bits)
 *   r = fma(N/ln2, x, -(z - 0x1.8p52))   (x N/ln2 - k, |r| <= 1/2)
 *   s = 2^(k/N)                          (T[k mod N] plus k's high bits in the exponent)
 *   y = fma(fma(r, C0, C1), r*r, fma(r, C2, 1)) * s
 * and outside that range returns +inf (above), +0 (below, -inf included) or x + x
 * (NaN). nk_exp_pd (expf_pd.h) is the expression, operation for operation, 8 lanes at a
 * time (the same double roundings, so the same float); the range cases are blended in
 * after.
 * The attention's softmax (attn_tile.c) uses the same expression on [-103, 0]; this
 * is the whole range.
 *
 * Another C library may round its own approximation differently: the first call
 * checks this one against expf on ~400,000 inputs of both signs (every input near a
 * float rounding midpoint among them) and, if any differs, nk_swiglu_avx512 answers
 * false from then on and ops.c keeps its scalar loop. Checked exhaustively here
 * against glibc 2.36: all 2^32 floats (tests/tensor/test_swiglu.c with NOOK_GLU_EXHAUSTIVE=1, 47 s).
 */
#include "tensor/ops_gemm.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "tensor/arch/x86/expf_pd.h"

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

static uint64_t g_tab[32];   /* bits(2^(i/32)) - (i << 47), glibc's T */
static atomic_int g_state;   /* 0: unchecked, 1: exact, 2: differs from this libm (scalar) */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;


/* expf of 16 lanes, glibc's result for every input (NaN: x + x, as glibc) */
TGT static inline __m512 expf16(__m512 v, const __m512d *tab) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(nk_exp_pd(lo, tab))),
                                  _mm512_cvtpd_ps(nk_exp_pd(hi, tab)), 1);
    const __mmask16 over = _mm512_cmp_ps_mask(v, _mm512_set1_ps(0x1.62e42ep6f), _CMP_GT_OQ);
    const __mmask16 under = _mm512_cmp_ps_mask(v, _mm512_set1_ps(-0x1.9fe368p6f), _CMP_LT_OQ);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    y = _mm512_mask_mov_ps(y, over, _mm512_set1_ps(INFINITY));
    y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
    return _mm512_mask_add_ps(y, nan, v, v);
}

TGT static void swiglu16(float *g, const float *up, size_t n) {
    __m512d tab[4];
    for (int i = 0; i < 4; i++) tab[i] = _mm512_loadu_pd((const double *)g_tab + 8 * i);
    const __m512 one = _mm512_set1_ps(1.0f), sign = _mm512_set1_ps(-0.0f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 e = expf16(_mm512_xor_ps(x, sign), tab);
        const __m512 q = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(q, _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* 16 inputs from bits b, b + step, ...: does expf16 give expf's bits for each? */
TGT static bool check16(uint32_t b, uint32_t step, const __m512d *tab) {
    float x[16], y[16];
    for (int l = 0; l < 16; l++) {
        const uint32_t u = b + step * (uint32_t)l;
        memcpy(&x[l], &u, 4);
    }
    _mm512_storeu_ps(y, expf16(_mm512_loadu_ps(x), tab));
    for (int l = 0; l < 16; l++) {
        const float w = expf(x[l]);
        if (memcmp(&y[l], &w, 4) != 0 && !(isnan(w) && isnan(y[l]))) return false;
    }
    return true;
}

/* Once per process: the table, then expf16 against expf over both signs (every
 * 21,000th float bit pattern, ~200,000 inputs), plus the range edges. */
TGT static void init_once(void) {
    nk_exp_tab_fill(g_tab);
    __m512d tab[4];
    for (int i = 0; i < 4; i++) tab[i] = _mm512_loadu_pd((const double *)g_tab + 8 * i);
    bool ok = true;
    for (uint64_t b = 0; ok && b + 16 * 21001 <= 0xFFFFFFFFu; b += 16 * 21001) ok = check16((uint32_t)b, 21001, tab);
    /* around the edges of the range and of the subnormal results */
    const float edges[] = { 0x1.62e42ep6f, -0x1.9fe368p6f, -0x1.9d1d9ep6f, -0x1.5d589ep6f, 0.0f };
    for (size_t e = 0; ok && e < sizeof edges / sizeof *edges; e++) {
        uint32_t u;
        memcpy(&u, &edges[e], 4);
        ok = check16(u - 8, 1, tab) && check16((u ^ 0x80000000u) - 8, 1, tab);
    }
    atomic_store_explicit(&g_state, ok ? 1 : 2, memory_order_release);
}

TGT static void expf_n(float *x, size_t n) {
    __m512d tab[4];
    for (int i = 0; i < 4; i++) tab[i] = _mm512_loadu_pd((const double *)g_tab + 8 * i);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, expf16(_mm512_maskz_loadu_ps(m, x + i), tab));
    }
}

static bool usable(void) {
    int st = atomic_load_explicit(&g_state, memory_order_acquire);
    if (st == 0) {
        if (strcmp(nk_tensor_isa(), "avx512vnni") != 0) return false;
        pthread_once(&g_once, init_once);
        st = atomic_load_explicit(&g_state, memory_order_acquire);
    }
    return st == 1;
}

bool nk_swiglu_avx512(float *g, const float *up, size_t n) {
    if (!usable()) return false;
    swiglu16(g, up, n);
    return true;
}

bool nk_expf_avx512(float *x, size_t n) {
    if (!usable()) return false;
    expf_n(x, n);
    return true;
}

#else
bool nk_swiglu_avx512(float *g, const float *up, size_t n) {
    (void)g, (void)up, (void)n;
    return false;
}

bool nk_expf_avx512(float *x, size_t n) {
    (void)x, (void)n;
    return false;
}
#endif

/*
 * ops.c: shared transformer blocks (see ops.h for the contracts and the numerics).
 */
#include "tensor/ops.h"
#include "tensor/ops_gemm.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- elementwise ---------------------------------------------------------------- */

void nk_get_rows(const nk_tensor *table_in, const int32_t *ids, int n, float *out) {
    bool pending;
    const nk_tensor now = nk_tensor_now(table_in, &pending);   /* either layout reads the same floats */
    const nk_tensor *table = &now;
    const nk_type_traits *tr = nk_type_get(table->type);
    const int64_t n_embd = table->ne[0];
    if (table->layout != NK_LAYOUT_FILE) {
        for (int t = 0; t < n; t++) {
            float *o = out + (size_t)t * (size_t)n_embd;
            if (table->layout == NK_LAYOUT_Q6K_R16) nk_q6k_r16_row_to_float(table->data, ids[t], table->ne[1], n_embd, o);
            else nk_q4k_r16_row_to_float(table->data, ids[t], table->ne[1], n_embd, o);
        }
        return;
    }
    for (int t = 0; t < n; t++) {
        const uint8_t *row = (const uint8_t *)table->data + (size_t)ids[t] * table->nb1;
        tr->to_float(row, out + (size_t)t * (size_t)n_embd, n_embd);
    }
}

void nk_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    /* ggml: squares in float, summed in double; mean and scale in float */
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    } else {
        for (int i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

/* Scale rows r0..r1 of a group whose sums are done (ggml's float steps). */
static void rmsnorm_apply(float *y, const float *x, size_t stride, const float *w, int n, const double *sum, int R,
                          float eps) {
    for (int r = 0; r < R; r++) {
        const float mean = (float)(sum[r] / n);
        const float scale = 1.0f / sqrtf(mean + eps);
        float *yr = y + (size_t)r * stride;
        const float *xr = x + (size_t)r * stride;
        if (w) {
            for (int i = 0; i < n; i++) yr[i] = (xr[i] * scale) * w[i];
        } else {
            for (int i = 0; i < n; i++) yr[i] = xr[i] * scale;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define NK_HAVE_SUMS8 1
/* The sums of squares of 8 rows, each the sequential chain nk_rmsnorm adds (float
 * square, widened, added in double in element order), the 8 chains in the lanes of
 * two double vectors: 8 x 8 blocks of squares are transposed so that one vector add
 * takes element i of every row. One add per element and 8 rows instead of one per
 * element and row, and the chain's latency is paid once for the 8. */
__attribute__((target("avx2,fma"))) static void sums8_avx2(const float *const *row, int n, double *out) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; k++) {
            const __m256 v = _mm256_loadu_ps(row[k] + i);
            r[k] = _mm256_mul_ps(v, v);
        }
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        /* c[j] lane k = square of row k's element i + j */
        const __m256 c[8] = {
            _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
            _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
            _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
            _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31),
        };
        for (int j = 0; j < 8; j++) {
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(c[j])));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(c[j], 1)));
        }
    }
    for (; i < n; i++) {
        float sq[8];
        for (int k = 0; k < 8; k++) {
            const float v = row[k][i];
            sq[k] = v * v;
        }
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm_loadu_ps(sq)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm_loadu_ps(sq + 4)));
    }
    _mm256_storeu_pd(out, lo);
    _mm256_storeu_pd(out + 4, hi);
}

/* rmsnorm_apply's products, 8 lanes at a time (the same two float multiplies per
 * element, in the same order). */
__attribute__((target("avx2,fma"))) static void apply8_avx2(float *y, const float *x, size_t stride, const float *w,
                                                             int n, const double *sum, int R, float eps) {
    for (int r = 0; r < R; r++) {
        const float mean = (float)(sum[r] / n);
        const float scale = 1.0f / sqrtf(mean + eps);
        const __m256 sc = _mm256_set1_ps(scale);
        float *yr = y + (size_t)r * stride;
        const float *xr = x + (size_t)r * stride;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + i), sc);
            _mm256_storeu_ps(yr + i, w ? _mm256_mul_ps(v, _mm256_loadu_ps(w + i)) : v);
        }
        for (; i < n; i++) yr[i] = w ? (xr[i] * scale) * w[i] : xr[i] * scale;
    }
}
#endif

void nk_rmsnorm_rows(float *y, const float *x, size_t stride, const float *w, int n, int rows, float eps) {
    int r = 0;
#ifdef NK_HAVE_SUMS8
    if (rows >= 2 && strncmp(nk_tensor_isa(), "avx", 3) == 0) {
        /* groups of 8; a last group of 2..7 rows reads its first row in the unused
         * lanes (their sums are dropped) */
        for (; r + 2 <= rows; r += 8) {
            const int R = NK_MIN(8, rows - r);
            const float *row[8];
            for (int k = 0; k < 8; k++) row[k] = x + (size_t)(r + (k < R ? k : 0)) * stride;
            double sum[8];
            sums8_avx2(row, n, sum);
            apply8_avx2(y + (size_t)r * stride, x + (size_t)r * stride, stride, w, n, sum, R, eps);
        }
        r = NK_MIN(r, rows);
    }
#endif
    /* the rest: 4 rows' scalar chains side by side (same order per row), then one */
    for (; r + 4 <= rows; r += 4) {
        const float *xr = x + (size_t)r * stride;
        double sum[4] = { 0 };
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 4; k++) {
                const float v = xr[(size_t)k * stride + (size_t)i];
                sum[k] += (double)(v * v);
            }
        rmsnorm_apply(y + (size_t)r * stride, xr, stride, w, n, sum, 4, eps);
    }
    for (; r < rows; r++) nk_rmsnorm(y + (size_t)r * stride, x + (size_t)r * stride, w, n, eps);
}

void nk_swiglu(float *g, const float *up, size_t n) {
    if (nk_swiglu_avx512(g, up, n)) return;
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i] = (x / (1.0f + expf(-x))) * up[i];
    }
}

/* ggml evaluates gelu through a table indexed by the fp16 input and holding fp16
 * results. gelu_f16_compute is that function on the rounded input, rounded; the
 * table (128 KiB of BSS, filled once per process) caches it for every fp16 value, so
 * lookups give exactly the computed bits. */
static float gelu_f16_compute(float xh) {
    const float c = 0.79788456080286535587989211986876f; /* sqrt(2/pi) */
    const float r = 0.5f * xh * (1.0f + tanhf(c * xh * (1.0f + 0.044715f * xh * xh)));
    return nk_fp16_to_fp32(nk_fp32_to_fp16(r));
}

static uint16_t g_gelu_table[1 << 16];
static pthread_once_t g_gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void) {
    for (uint32_t h = 0; h < (1u << 16); h++)
        g_gelu_table[h] = nk_fp32_to_fp16(gelu_f16_compute(nk_fp16_to_fp32((uint16_t)h)));
}

static inline float gelu_f16(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return nk_fp16_to_fp32(g_gelu_table[nk_fp32_to_fp16(x)]);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* The same lookups 8 at a time, F16C conversions (round to nearest even, as the
 * scalar ones) and the clamps as blends. */
__attribute__((target("avx2,fma,f16c"))) static void geglu_f16c(float *g, const float *up, size_t n) {
    size_t i = 0;
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        uint16_t h[8], r[8];
        _mm_storeu_si128((__m128i *)h, _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
        for (int k = 0; k < 8; k++) r[k] = g_gelu_table[h[k]];
        __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)r));
        y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LE_OQ));
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(y, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) g[i] = gelu_f16(g[i]) * up[i];
}
#endif

void nk_geglu(float *g, const float *up, size_t n) {
    pthread_once(&g_gelu_once, gelu_table_init);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (strncmp(nk_tensor_isa(), "avx", 3) == 0) {
        geglu_f16c(g, up, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) g[i] = gelu_f16(g[i]) * up[i];
}

typedef struct glu_job {
    float *g;
    const float *up;
    size_t n;
    bool gelu;
} glu_job;

static void glu_fn(void *ctx, int ith, int nth) {
    const glu_job *j = ctx;
    /* contiguous slices, multiples of 16 elements */
    const size_t per = ((j->n + (size_t)nth - 1) / (size_t)nth + 15) & ~(size_t)15;
    const size_t a = NK_MIN(j->n, per * (size_t)ith), b = NK_MIN(j->n, a + per);
    if (b <= a) return;
    if (j->gelu) nk_geglu(j->g + a, j->up + a, b - a);
    else nk_swiglu(j->g + a, j->up + a, b - a);
}

/* Below this many elements the GLU runs on the caller. One row of qwen3-0.6b's FFN
 * (3,072) takes ~7 us of expf, about what waking the other thread saves; 4 rows
 * (12,288, ~26 us) ran serially under the old 16,384 threshold while the other
 * thread waited, ~0.7 ms of a 4-sequence decode step. */
#define NK_GLU_PAR_MIN 4096

void nk_glu(nk_pool *pool, bool gelu, float *gate_out, const float *up, size_t n) {
    if (gelu) pthread_once(&g_gelu_once, gelu_table_init);
    glu_job j = { gate_out, up, n, gelu };
    nk_pool_run(n < NK_GLU_PAR_MIN ? NULL : pool, glu_fn, &j);
}

void nk_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void nk_softmax(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* ---- RoPE ---------------------------------------------------------------------- */

static float yarn_ramp(float low, float high, int i0) {
    const float y = ((float)(i0 / 2) - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

/* The dimension index at which the rotation count over n_ctx_orig equals n_rot turns. */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

void nk_rope_cache(const nk_rope *r, int pos, float *cs) {
    const int n_dims = r->n_rot;
    const float theta_scale = powf(r->freq_base, -2.0f / (float)n_dims);
    float corr0 = 0.0f, corr1 = 0.0f;
    if (r->ext_factor != 0.0f) {
        const float start = floorf(yarn_corr_dim(n_dims, r->n_ctx_orig, r->beta_fast, r->freq_base));
        const float end = ceilf(yarn_corr_dim(n_dims, r->n_ctx_orig, r->beta_slow, r->freq_base));
        corr0 = fmaxf(0.0f, start);
        corr1 = fminf((float)(n_dims - 1), end);
    }
    float theta = (float)pos;
    for (int i0 = 0; i0 < n_dims; i0 += 2) {
        const float ff = r->freq_factors ? r->freq_factors[i0 / 2] : 1.0f;
        const float theta_extrap = theta / ff;
        const float theta_interp = r->freq_scale * theta_extrap;
        float th = theta_interp;
        float mscale = r->attn_factor;
        if (r->ext_factor != 0.0f) {
            const float mix = yarn_ramp(corr0, corr1, i0) * r->ext_factor;
            th = theta_interp * (1.0f - mix) + theta_extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
        }
        cs[i0] = cosf(th) * mscale;
        cs[i0 + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* NEOX RoPE 8 lanes at a time: the cos/sin table split into two arrays once per row
 * (it is the same for every head), then per head the scalar loop's float multiplies
 * and add/subtract on 8 pairs at once, the same bits: separate intrinsics, which
 * neither compiler fuses (no scalar a * b - c here: clang would contract it into an
 * FMA inside this fma-enabled function, so half must be a multiple of 8). Was ~1% of
 * an 8-sequence decode step's CPU time (perf, one thread) as a scalar loop. */
__attribute__((target("avx2,fma"))) static void rope_neox_avx2(const float *cs, float *x, int n_head, int head_dim,
                                                                int half) {
    float c[256], sn[256];
    for (int i = 0; i < half; i++) {
        c[i] = cs[2 * i];
        sn[i] = cs[2 * i + 1];
    }
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i += 8) {
            const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(sn + i);
            const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
            _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(x0, cv), _mm256_mul_ps(x1, sv)));
            _mm256_storeu_ps(v + i + half, _mm256_add_ps(_mm256_mul_ps(x0, sv), _mm256_mul_ps(x1, cv)));
        }
    }
}
#define NK_HAVE_ROPE8 1
#endif

void nk_rope_apply(const nk_rope *r, const float *cs, float *x, int n_head, int head_dim) {
    const int n_dims = r->n_rot;
#ifdef NK_HAVE_ROPE8
    if (r->mode == NK_ROPE_NEOX && n_dims <= 512 && n_dims % 16 == 0 && strncmp(nk_tensor_isa(), "avx", 3) == 0) {
        rope_neox_avx2(cs, x, n_head, head_dim, n_dims / 2);
        return;
    }
#endif
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        if (r->mode == NK_ROPE_NEOX) {
            const int half = n_dims / 2;
            for (int i0 = 0; i0 < n_dims; i0 += 2) {
                const float c = cs[i0], s = cs[i0 + 1];
                const float x0 = v[i0 / 2], x1 = v[i0 / 2 + half];
                v[i0 / 2] = x0 * c - x1 * s;
                v[i0 / 2 + half] = x0 * s + x1 * c;
            }
        } else {
            for (int i0 = 0; i0 < n_dims; i0 += 2) {
                const float c = cs[i0], s = cs[i0 + 1];
                const float x0 = v[i0], x1 = v[i0 + 1];
                v[i0] = x0 * c - x1 * s;
                v[i0 + 1] = x0 * s + x1 * c;
            }
        }
    }
}

/* ---- matmul -------------------------------------------------------------------- */

/* The matmul kernel choice, decided once per process (issue 9: not a getenv per
 * matmul): the tensor layer installs AVX-512 kernels only when the CPU has them and
 * NOOK_NO_SIMD is unset, and this follows its decision; NOOK_NO_GEMM=1 keeps the
 * vec_dot path, NOOK_NO_RL=1 the one-token kernels for batches (comparisons,
 * debugging). */
static bool g_gemm_on, g_rl_on, g_repack_on;
static pthread_once_t g_gemm_once = PTHREAD_ONCE_INIT;

static void gemm_choice_once(void) {
    const char *no_gemm = getenv("NOOK_NO_GEMM"), *no_rl = getenv("NOOK_NO_RL");
    const char *no_repack = getenv("NOOK_NO_REPACK");
    g_gemm_on = strcmp(nk_tensor_isa(), "avx512vnni") == 0 && !(no_gemm && no_gemm[0] == '1');
    g_rl_on = g_gemm_on && !(no_rl && no_rl[0] == '1');
    g_repack_on = g_gemm_on && !(no_repack && no_repack[0] == '1') && nk_gemm_r16_q6_K() && nk_gemm_r16_q4_K();
}

/* ---- repacking at load ------------------------------------------------------------- */

bool nk_tensor_repack_wanted(const nk_tensor *t) {
    pthread_once(&g_gemm_once, gemm_choice_once);
    return g_repack_on && t->data && t->layout == NK_LAYOUT_FILE && !t->pack && (t->type == NK_TYPE_Q6_K || t->type == NK_TYPE_Q4_K) &&
           t->ne[1] >= 16 &&
           t->ne[2] == 1 && t->ne[3] == 1 && t->ne[0] % QK_K == 0 && t->nb1 == nk_row_size(t->type, t->ne[0]);
}

bool nk_tensor_repack(nk_tensor *t, void *dst) {
    if (!nk_tensor_repack_wanted(t)) return false;
    const bool q6 = t->type == NK_TYPE_Q6_K;
    if (!(q6 ? nk_q6k_r16_pack : nk_q4k_r16_pack)(t->data, dst, t->ne[1], t->ne[0])) return false;
    t->data = dst;
    t->layout = q6 ? NK_LAYOUT_Q6K_R16 : NK_LAYOUT_Q4K_R16;
    return true;
}

void nk_gemm_reread_env(void) {
    pthread_once(&g_gemm_once, gemm_choice_once);
    gemm_choice_once();
}

const nk_gemm_kernel *nk_gemm_get(uint32_t wtype) {
    pthread_once(&g_gemm_once, gemm_choice_once);
    return g_gemm_on ? nk_gemm_avx512(wtype) : NULL;
}

static const nk_gemm_kernel *gemm_batch_get(uint32_t wtype) {
    pthread_once(&g_gemm_once, gemm_choice_once);
    if (!g_rl_on || !nk_gemm_avx512(wtype)) return NULL;   /* same ISA and NOOK_NO_GEMM rules */
    switch (wtype) {
    case NK_TYPE_Q4_K: return nk_gemm_rl_q4_K();
    case NK_TYPE_Q6_K: return nk_gemm_rl_q6_K();
    case NK_TYPE_Q8_0: return nk_gemm_rl_q8_0();
    case NK_TYPE_Q5_0: return nk_gemm_rl_q5_0();
    case NK_TYPE_Q4_0: return nk_gemm_rl_q4_0();
    default: return NULL;
    }
}

const nk_gemm_kernel *nk_gemm_pick(uint32_t wtype, int n_tok) {
    const nk_gemm_kernel *b = gemm_batch_get(wtype);
    if (b && n_tok >= b->min_tok) return b;
    return nk_gemm_get(wtype);
}

static size_t act_row_bytes_plain(uint32_t type, int64_t n_in) {
    const nk_type_traits *tr = nk_type_get(type);
    if (!tr || tr->vec_dot_type == NK_TYPE_F32) return 0;
    return nk_row_size((uint32_t)tr->vec_dot_type, n_in);
}

/* Bytes of one converted activation row for weights of this type (0: F32 weights):
 * the larger of the batch and the small-batch kernels' formats. */
static size_t act_row_bytes(uint32_t type, int64_t n_in) {
    const nk_gemm_kernel *gk = nk_gemm_get(type);
    const nk_gemm_kernel *bk = gemm_batch_get(type);
    /* a repacked weight's kernel, whatever NOOK_NO_GEMM/NO_RL say now */
    const nk_gemm_kernel *pk = type == NK_TYPE_Q6_K ? nk_gemm_r16_q6_K() : type == NK_TYPE_Q4_K ? nk_gemm_r16_q4_K() : NULL;
    if (pk && !gk) return NK_MAX(pk->act_row_size(n_in), act_row_bytes_plain(type, n_in));
    if (gk) return NK_MAX(NK_MAX(gk->act_row_size(n_in), bk ? bk->act_row_size(n_in) : 0),
                          pk ? pk->act_row_size(n_in) : 0);
    const nk_type_traits *tr = nk_type_get(type);
    if (!tr || tr->vec_dot_type == NK_TYPE_F32) return 0;
    return nk_row_size((uint32_t)tr->vec_dot_type, n_in);
}

/* Small batches (decode) skip the barrier between converting the activations and
 * the dots: every thread converts all rows into its own slice of the scratch. */
#define MM_PRIV_TOK 4
#define MM_PRIV_THREADS 16

size_t nk_matmul_wsize(uint32_t type, int64_t n_in, int n_tok) {
    const size_t row = act_row_bytes(type, n_in);
    const size_t shared = row * (size_t)n_tok, priv = row * MM_PRIV_TOK * MM_PRIV_THREADS;
    return shared > priv ? shared : priv;
}

bool nk_matmul_supported(uint32_t type, int64_t n_in) {
    const nk_type_traits *tr = nk_type_get(type);
    if (!tr || !tr->vec_dot || nk_row_size(type, n_in) == 0) return false;
    if (tr->vec_dot_type == NK_TYPE_F32) return true;
    const nk_type_traits *vt = nk_type_get((uint32_t)tr->vec_dot_type);
    return vt && vt->from_float && nk_row_size((uint32_t)tr->vec_dot_type, n_in) != 0;
}

#define MM_MAX_W 3

/* One activation format of a run: how the input is converted for some of its weights
 * (quant NULL: F32 weights read x as it is). */
typedef struct mm_fmt {
    nk_act_quant_fn quant;
    size_t row;                       /* bytes between converted rows */
    size_t off;                       /* private mode: offset in a thread's slice */
} mm_fmt;

typedef struct mm_w {
    const nk_tensor *W;
    const void *data;                 /* W's data in the layout gk reads (nk_tensor_now) */
    float *y;
    size_t ys;
    const nk_gemm_kernel *gk;         /* register-blocked kernel, or NULL: vec_dot */
    nk_vec_dot_fn dot;
    int fmt;                          /* index into mm_job.fmt */
} mm_w;

/* Each thread owns a contiguous range of chunks, [lo, hi) packed in one word (lo in
 * the low half): the owner takes chunks from the front (one fetch_add on a line no
 * other thread touches until the end), and a thread whose range is empty takes
 * chunks from the back of the others' (compare-and-swap on hi). So each thread
 * streams one contiguous stretch of weights, which the hardware prefetchers follow,
 * and still no thread waits for a descheduled one for more than a chunk. */
#define MM_RANGES 16

typedef struct mm_range {
    _Alignas(64) _Atomic uint64_t lohi;
} mm_range;

typedef struct mm_job {
    int n_w;
    mm_w w[MM_MAX_W];
    int first_chunk[MM_MAX_W + 1];    /* chunk ids of weight i: [first_chunk[i], first_chunk[i+1]) */
    int n_fmt;
    mm_fmt fmt[MM_MAX_W];
    const float *x;
    size_t xs;
    int n_tok;
    uint8_t *wbuf;
    size_t slice;                     /* private mode: bytes of scratch per thread */
    bool priv;                        /* each thread converts into its own slice */
    int chunk;                        /* weight rows per chunk */
    int n_chunks;
    int n_ranges;
    nk_pool *pool;
    nk_pool *ctl;                     /* whose abort flag the chunks check (the caller's pool) */
    mm_range range[MM_RANGES];
} mm_job;

/* Tokens per pass over a chunk: their converted rows stay in L2 while the chunk's
 * weight rows (in L1) meet each of them. */
#define MM_TILE_TOK 64

/* Batches of fewer tokens than this are decode steps (several sequences), not
 * prompts: chunked like one token. */
#define MM_SMALL_TOK 16

/* Waking the workers and joining them costs a few microseconds (much more on a busy
 * machine), so products smaller than this many multiply-adds run on the caller. */
#define NK_PAR_MIN_WORK 65536.0

static void mm_chunk(const mm_job *j, const uint8_t *const *act, int c) {
    int wi = 0;
    while (c >= j->first_chunk[wi + 1]) wi++;
    const mm_w *w = &j->w[wi];
    const nk_tensor *W = w->W;
    const int n_in = (int)W->ne[0];
    const int64_t r0 = (int64_t)(c - j->first_chunk[wi]) * j->chunk;
    const int64_t r1 = NK_MIN(r0 + j->chunk, W->ne[1]);
    const uint8_t *wdata = w->data;
    const size_t nb1 = W->nb1;
    const uint8_t *a = act[w->fmt];
    const size_t as = j->fmt[w->fmt].row;
    float *y = w->y;
    const size_t ys = w->ys;
    for (int t0 = 0; t0 < j->n_tok; t0 += MM_TILE_TOK) {
        const int t1 = NK_MIN(t0 + MM_TILE_TOK, j->n_tok);
        if (w->gk) {
            w->gk->gemm(n_in, (int)(r1 - r0), t1 - t0, wdata + (size_t)r0 * nb1, nb1, a + (size_t)t0 * as, as,
                        y + (size_t)t0 * ys + (size_t)r0, ys);
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            const void *wrow = wdata + (size_t)r * nb1;
            for (int t = t0; t < t1; t++) w->dot(n_in, &y[(size_t)t * ys + (size_t)r], wrow, a + (size_t)t * as);
        }
    }
}

#define LO(v) ((uint32_t)(v))
#define HI(v) ((uint32_t)((v) >> 32))

/* The next chunk for thread ith, or -1 when every range is empty. */
static int mm_claim(mm_job *j, int ith) {
    if (ith < j->n_ranges) {
        const uint64_t v = atomic_fetch_add_explicit(&j->range[ith].lohi, 1, memory_order_relaxed);
        if (LO(v) < HI(v)) return (int)LO(v);
    }
    for (int k = 1; k <= j->n_ranges; k++) {
        const int o = (ith + k) % j->n_ranges;
        if (o == ith) continue;
        _Atomic uint64_t *p = &j->range[o].lohi;
        uint64_t v = atomic_load_explicit(p, memory_order_relaxed);
        while (LO(v) < HI(v)) {
            const uint64_t nv = v - ((uint64_t)1 << 32);
            if (atomic_compare_exchange_weak_explicit(p, &v, nv, memory_order_relaxed, memory_order_relaxed))
                return (int)HI(v) - 1;
        }
    }
    return -1;
}

static void mm_run_fn(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    const uint8_t *act[MM_MAX_W];
    bool shared = false;
    for (int f = 0; f < j->n_fmt; f++) {
        const mm_fmt *fm = &j->fmt[f];
        const int64_t n_in = j->w[0].W->ne[0];
        if (!fm->quant) {
            act[f] = (const uint8_t *)j->x;
        } else if (j->priv) {
            uint8_t *mine = j->wbuf + (size_t)ith * j->slice + fm->off;
            for (int t = 0; t < j->n_tok; t++) fm->quant(j->x + (size_t)t * j->xs, mine + (size_t)t * fm->row, n_in);
            act[f] = mine;
        } else {   /* rows split between the threads, one barrier after every format */
            uint8_t *dst = j->wbuf + fm->off;
            for (int t = ith; t < j->n_tok; t += nth) fm->quant(j->x + (size_t)t * j->xs, dst + (size_t)t * fm->row, n_in);
            act[f] = dst;
            shared = true;
        }
    }
    if (shared) nk_pool_barrier(j->pool);
    for (int c; (c = mm_claim(j, ith)) >= 0;) {
        if (nk_pool_should_stop(j->ctl, ith)) return;
        mm_chunk(j, act, c);
    }
}

void nk_matmul_n(nk_pool *pool, int n_w, const nk_tensor *const *W, const float *x, size_t xs, int n_tok,
                 float *const *y, const size_t *ys, void *wbuf) {
    assert(n_w >= 1 && n_w <= MM_MAX_W);
    if (nk_pool_aborted(pool)) return;
    mm_job j = { .n_w = n_w, .x = x, .xs = xs, .n_tok = n_tok, .wbuf = wbuf, .pool = pool, .ctl = pool };
    double work = 0;
    bool any_packed = false;
    int64_t max_rows = 0;
    size_t row_max = 0;
    for (int i = 0; i < n_w; i++) {
        mm_w *w = &j.w[i];
        const nk_type_traits *tr = nk_type_get(W[i]->type);
        /* (layout, data) read once here, so every thread of the run sees one pair */
        bool pending;
        const nk_tensor now = nk_tensor_now(W[i], &pending);
        *w = (mm_w){ .W = W[i], .data = now.data, .y = y[i], .ys = ys[i], .dot = tr->vec_dot };
        work += (double)W[i]->ne[1] * (double)W[i]->ne[0] * n_tok;
        max_rows = NK_MAX(max_rows, W[i]->ne[1]);
        mm_fmt f = { 0 };
        /* a repacked weight has one kernel (its layout's), whatever the environment;
         * one whose copy is still being made runs the rows-in-lanes kernel on the
         * file's rows at every token count: the copy's kernel does its operations in
         * its order, so the bits are the same before and after the copy lands */
        w->gk = now.layout == NK_LAYOUT_Q6K_R16   ? nk_gemm_r16_q6_K()
              : now.layout == NK_LAYOUT_Q4K_R16 ? nk_gemm_r16_q4_K()
              : pending ? (W[i]->type == NK_TYPE_Q6_K ? nk_gemm_rl_q6_K() : nk_gemm_rl_q4_K())
                        : nk_gemm_pick(W[i]->type, n_tok);
        if (now.layout != NK_LAYOUT_FILE || pending) any_packed = true;
        if (w->gk) {
            f.quant = w->gk->act_quant;
            f.row = w->gk->act_row_size(W[i]->ne[0]);
        } else if (tr->vec_dot_type != NK_TYPE_F32) {
            f.quant = nk_type_get((uint32_t)tr->vec_dot_type)->from_float;
            f.row = nk_row_size((uint32_t)tr->vec_dot_type, W[i]->ne[0]);
        } else {
            f.row = xs * sizeof(float);
        }
        /* weights whose kernels read the same activation format share one conversion
         * (every weight of one type; Q4_K with Q6_K do not: different byte orders) */
        int k = 0;
        while (k < j.n_fmt && !(j.fmt[k].quant == f.quant && j.fmt[k].row == f.row)) k++;
        if (k == j.n_fmt) j.fmt[j.n_fmt++] = f;
        w->fmt = k;
        if (f.quant) row_max = NK_MAX(row_max, f.row);
    }
    nk_pool *const pool_in = pool;
    if (work < NK_PAR_MIN_WORK) pool = NULL;
    j.pool = pool;
    const int nth = nk_pool_size(pool);

    /* Small batches (decode) skip the barrier between converting the activations and
     * the dots: every thread converts all rows, in every format the weights need, into
     * its own slice of the scratch (MM_PRIV_TOK rows of the largest format each). */
    int n_q = 0;
    for (int f = 0; f < j.n_fmt; f++) {
        if (!j.fmt[f].quant) continue;
        j.fmt[f].off = (size_t)n_q * (size_t)n_tok * row_max;
        n_q++;
    }
    j.priv = n_q > 0 && n_q * n_tok <= MM_PRIV_TOK && nth <= MM_PRIV_THREADS;
    j.slice = MM_PRIV_TOK * row_max;
    /* Shared conversion of several formats: their rows side by side in the scratch,
     * which holds MM_PRIV_TOK * MM_PRIV_THREADS rows of the largest format (see
     * nk_matmul_wsize), so decode-sized batches (Q4_K with Q6_K Q/K/V at 4 and 8
     * sequences) stay one run with one barrier instead of a run per format. */
    if (!j.priv && n_q > 1 && n_q * n_tok > MM_PRIV_TOK * MM_PRIV_THREADS) {
        /* prompts: the shared scratch is sized for one format: one run per format */
        for (int f = 0; f < j.n_fmt; f++) {
            const nk_tensor *Wf[MM_MAX_W];
            float *yf[MM_MAX_W];
            size_t ysf[MM_MAX_W];
            int n = 0;
            for (int i = 0; i < n_w; i++) {
                if (j.w[i].fmt != f) continue;
                Wf[n] = W[i];
                yf[n] = y[i];
                ysf[n++] = ys[i];
            }
            nk_matmul_n(pool_in, n, Wf, x, xs, n_tok, yf, ysf, wbuf);
        }
        return;
    }

    /* Chunks of weight rows; at least 4 per thread so that a descheduled thread's
     * range can be shared out. Multiples of 4 rows keep the kernels' tiles full.
     * Decode-sized batches take 64 rows as one token does: their kernels go a row
     * (or 16) at a time anyway, and 16-row chunks meant ~9,500 claims for the output
     * projection alone in every step of several sequences. */
    int64_t chunk = n_tok < MM_SMALL_TOK ? 64 : 16;
    int64_t total = 0;
    for (int i = 0; i < n_w; i++) total += (W[i]->ne[1] + chunk - 1) / chunk;
    if (total < 4 * nth) chunk = NK_MAX(4, ((max_rows + 4 * nth - 1) / (4 * nth) + 3) / 4 * 4);
    /* repacked weights are cut only at their 16-row groups */
    if (any_packed) chunk = (chunk + 15) / 16 * 16;
    j.chunk = (int)chunk;
    j.first_chunk[0] = 0;
    for (int i = 0; i < n_w; i++) j.first_chunk[i + 1] = j.first_chunk[i] + (int)((W[i]->ne[1] + chunk - 1) / chunk);
    j.n_chunks = j.first_chunk[n_w];
    j.n_ranges = NK_MIN(nth, MM_RANGES);
    for (int r = 0; r < j.n_ranges; r++) {
        const uint64_t lo = (uint64_t)j.n_chunks * (uint64_t)r / (uint64_t)j.n_ranges;
        const uint64_t hi = (uint64_t)j.n_chunks * (uint64_t)(r + 1) / (uint64_t)j.n_ranges;
        atomic_init(&j.range[r].lohi, lo | hi << 32);
    }
    nk_pool_run(pool, mm_run_fn, &j);
}

void nk_matmul(nk_pool *pool, const nk_tensor *W, const float *x, size_t xs, int n_tok,
               float *y, size_t ys, void *wbuf) {
    nk_matmul_n(pool, 1, &W, x, xs, n_tok, &y, &ys, wbuf);
}

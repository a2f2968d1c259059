/*
 * ops.h: the transformer building blocks every architecture shares: embedding
 * lookup, RMSNorm, RoPE, matmul against weights of any supported type, causal
 * grouped-query attention over a KV cache, and the gated FFN activations.
 *
 * Numerics follow ggml's CPU backend where it matters for parity with llama.cpp:
 * RMSNorm sums squares in double; RoPE builds its angle table the way ggml does
 * (theta *= theta_scale per pair, cosf/sinf in float); a matmul quantizes each
 * activation row once to the weight type's vec_dot_type (F16 weights see activations
 * rounded to f16); attention follows ggml's flash-attention kernel (or its plain
 * path) with the same cache type, roundings included (see nk_attention).
 *
 * Parallel ops take an nk_pool (NULL runs on the caller only). Results never depend
 * on the number of threads or on how tokens are batched: each output element is
 * computed by exactly one call with the same inputs, whatever the split.
 * Nothing here allocates: callers pass scratch sized with the *_wsize functions.
 */
#ifndef NOOK_TENSOR_OPS_H
#define NOOK_TENSOR_OPS_H

#include "base/pool.h"
#include "tensor/types.h"

#include <stdatomic.h>
#include <stdbool.h>

/* How a weight's bytes are laid out: as in the file (rows of blocks, nb1 apart), or
 * repacked at load for the batch kernels (nk_tensor_repack). */
typedef enum {
    NK_LAYOUT_FILE = 0,
    NK_LAYOUT_Q6K_R16 = 1,   /* Q6_K, 16-row interleaved groups (tensor/ops_gemm.h) */
    NK_LAYOUT_Q4K_R16 = 2,   /* Q4_K, likewise */
} nk_layout;

/* A read-only view of a weight tensor in the model file (ne[0] is the row length). */
/* A copy of a matrix in another layout, made on a thread after load
 * (src/model/repack.c) and published once complete: data stays NULL until then, is set
 * once with a release store, and readers load it with acquire (nk_tensor_now), so a
 * reader sees no copy or all of it, and (layout, data) always as one pair. */
typedef struct nk_tensor_pack {
    _Atomic(const void *) data;
    uint32_t layout;       /* nk_layout of the copy */
} nk_tensor_pack;

typedef struct nk_tensor {
    const char *name;      /* NUL-terminated; owned by the model */
    uint32_t type;         /* NK_TYPE_* */
    int64_t ne[4];         /* missing dims are 1 */
    size_t nb1;            /* bytes per row (a repacked tensor keeps the file's size) */
    const void *data;      /* NULL: an optional tensor that is absent */
    uint32_t layout;       /* nk_layout; rows are whole only in NK_LAYOUT_FILE */
    const nk_tensor_pack *pack; /* NULL, or a copy being made (set before any reader exists) */
} nk_tensor;

/* t as a reader uses it now: its copy's layout and data once published, else t's own;
 * *pending tells whether a copy is still being made (matmul then runs the kernels whose
 * bits the copy's give, so results never depend on when the copy lands). */
static inline nk_tensor nk_tensor_now(const nk_tensor *t, bool *pending) {
    nk_tensor r = *t;
    r.pack = NULL;
    *pending = false;
    if (t->pack) {
        const void *p = atomic_load_explicit(&t->pack->data, memory_order_acquire);
        if (p) {
            r.data = p;
            r.layout = t->pack->layout;
        } else {
            *pending = true;
        }
    }
    return r;
}

/* Whether nk_tensor_repack would repack t on this CPU (Q4_K and Q6_K matrices of at
 * least 16 rows with the AVX-512 VNNI kernels on, unless NOOK_NO_REPACK=1; read once). */
bool nk_tensor_repack_wanted(const nk_tensor *t);
/* Write t's bytes, repacked, to dst (t's rows * nb1 bytes, not overlapping t->data)
 * and point t at them. Returns false (t unchanged) when not wanted. get_rows and
 * matmul read a repacked tensor; nothing else may read its rows. Thread-safe for
 * distinct tensors. */
bool nk_tensor_repack(nk_tensor *t, void *dst);

/* ---- elementwise ---------------------------------------------------------------- */

/* out[t] = row ids[t] of table (any type with to_float), n_embd = table->ne[0].
 * Caller checks ids are in range. */
void nk_get_rows(const nk_tensor *table, const int32_t *ids, int n, float *out);

/* y = x / sqrt(mean(x^2) + eps) * w (w may be NULL), n elements; y may alias x. */
void nk_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
/* nk_rmsnorm on `rows` rows of n elements, row r at x + r * stride (y alike; y may
 * alias x), the same bits as one call per row. The per-row sums are chains of
 * dependent double adds (ggml's order, one after another), so one row is bound by
 * the add latency; this runs 8 rows' chains side by side (each chain unchanged). */
void nk_rmsnorm_rows(float *y, const float *x, size_t stride, const float *w, int n, int rows, float eps);

/* x = silu(gate) * up, elementwise over n (as ggml_swiglu). */
void nk_swiglu(float *gate_out, const float *up, size_t n);
/* x = gelu_tanh(gate) * up (as ggml_geglu, with ggml's fp16 table semantics). */
void nk_geglu(float *gate_out, const float *up, size_t n);
/* nk_geglu (gelu) or nk_swiglu split across the pool's threads (same results). */
void nk_glu(nk_pool *pool, bool gelu, float *gate_out, const float *up, size_t n);

/* h[i] = fp16(x[i]) rounded to nearest even (nk_fp32_to_fp16's bits; F16C when
 * the CPU has it). */
void nk_f32_to_f16_row(const float *x, uint16_t *h, int n);

/* x[i] = expf(x[i]) for i < n with the bits of the C library's expf: the flash
 * softmax's exponentials (attention.c), 16 at a time on AVX-512. For tests. */
void nk_attn_expf(float *x, int n);

/* y += x over n elements. */
void nk_add(float *y, const float *x, size_t n);

/* In-place softmax over n values; returns nothing (all finite inputs). */
void nk_softmax(float *x, int n);

/* ---- RoPE ---------------------------------------------------------------------- */

enum { NK_ROPE_NORM = 0, NK_ROPE_NEOX = 2 };

typedef struct nk_rope {
    int   mode;           /* NK_ROPE_NORM (adjacent pairs) or NK_ROPE_NEOX (halves) */
    int   n_rot;          /* rotated dims per head (<= head dim, even)              */
    float freq_base;
    float freq_scale;     /* 1/linear factor                                          */
    float ext_factor;     /* YaRN extrapolation mix (0: none)                         */
    float attn_factor;    /* YaRN magnitude scale (1: none)                           */
    float beta_fast, beta_slow;
    int   n_ctx_orig;     /* YaRN original context                                    */
    const float *freq_factors; /* [n_rot/2] or NULL (Llama 3 rope_freqs)             */
} nk_rope;

/* cos/sin table for one position: cs[2*i] = cos, cs[2*i+1] = sin, i < n_rot/2. */
void nk_rope_cache(const nk_rope *r, int pos, float *cs);
/* Rotate n_head heads of head_dim values each (contiguous) with a table from
 * nk_rope_cache. */
void nk_rope_apply(const nk_rope *r, const float *cs, float *x, int n_head, int head_dim);

/* ---- matmul -------------------------------------------------------------------- */

/* Bytes of scratch nk_matmul needs for n_tok activation rows against a weight of type
 * `type` with rows of n_in elements (0 for F32 weights, which read x directly). */
size_t nk_matmul_wsize(uint32_t type, int64_t n_in, int n_tok);

/* True if nook can multiply by a weight of this type (dot kernel and activation
 * quantizer present) and rows of n_in elements fit its blocks. */
bool nk_matmul_supported(uint32_t type, int64_t n_in);

/* y[t*ys + r] = dot(row r of W, x[t*xs .. +n_in)) for r < W->ne[1], t < n_tok.
 * n_in = W->ne[0]. wbuf: nk_matmul_wsize bytes, 64-byte aligned (or NULL if 0).
 * Between chunks of rows the threads check the pool's abort flag
 * (nk_pool_should_stop) and stop once it is raised; y is then incomplete. */
void nk_matmul(nk_pool *pool, const nk_tensor *W, const float *x, size_t xs, int n_tok,
               float *y, size_t ys, void *wbuf);

/* n_w (1..3) matmuls of the same input in one pool run (Q/K/V, gate/up): the input is
 * converted once when the weights share a type (else they run one by one). Output
 * i goes to y[i] with row stride ys[i]. wbuf: the largest nk_matmul_wsize of them. */
void nk_matmul_n(nk_pool *pool, int n_w, const nk_tensor *const *W, const float *x, size_t xs, int n_tok,
                 float *const *y, const size_t *ys, void *wbuf);

/* ---- attention ----------------------------------------------------------------- */

/* One layer's causal attention for a batch of n_tok queries at positions
 * pos0..pos0+n_tok-1 over the KV cache (which already holds positions 0..pos0+n_tok-1).
 * Layout: q [n_tok][n_head*hd_k] f32; K cache [n_ctx][n_head_kv*hd_k] and V cache
 * [n_ctx][n_head_kv*hd_v], both of kv_type, one row per position; out
 * [n_tok][n_head*hd_v]. Query head h reads KV head h / (n_head / n_head_kv).
 * n_swa > 0 limits each query to the last n_swa positions (sliding window). */
typedef struct nk_attn {
    int n_tok, pos0, n_head, n_head_kv, hd_k, hd_v, n_ctx, n_swa;
    float scale;
    uint32_t kv_type;     /* NK_TYPE_F16, NK_TYPE_F32, NK_TYPE_Q8_0 or NK_TYPE_Q4_0 (the
                             quantized ones flash only; head sizes multiples of 32:
                             each head's row is whole blocks) */
    bool flash;           /* ggml's flash-attention numerics (see nk_attention) */
    const float *q;
    const void *k;
    const void *v;
    float *out;
    void *scratch;        /* nk_attn_wsize bytes */
} nk_attn;

/* Scratch bytes for n_threads threads; hd = max(hd_k, hd_v). */
size_t nk_attn_wsize(int n_threads, int n_ctx, int hd);

/* Two numerics, both as ggml computes them on the CPU with the same cache:
 *  - flash = false (ggml's plain path): softmax over all scores, probabilities
 *    rounded to the cache type, then one dot per output dim against V.
 *  - flash = true (ggml_compute_forward_flash_attn_ext_f16): an online softmax
 *    with an f32 V accumulator (attention.c's v_mad_flash), divided by the sum at
 *    the end; and, as llama.cpp's decoding splits a long cache over its threads and
 *    merges the parts, the positions a query sees are cut into pieces at multiples of
 *    NK_ATTN_SPLIT (absolute positions, the same whatever the batch, the path or the
 *    thread count). Each piece is its own online softmax (M, S, acc) from scratch;
 *    the pieces merge in position order into the total (MT, ST, accT), which starts
 *    as the first piece: if M > MT then a = expf(MT - M), b = 1, MT = M, else a = 1,
 *    b = expf(M - MT); ST = ST * a + S * b and accT = accT * a + acc * b (each product
 *    rounded, then the sum). The output is accT * (1 / ST).
 * The results differ by ~1e-3 relative with an f16 cache; llama.cpp picks flash
 * attention on the CPU by default (-fa auto). */
#define NK_ATTN_SPLIT 1024
void nk_attention(nk_pool *pool, const nk_attn *a);

/* n_seg attentions with the same shapes and types (n_head, hd, kv_type, flash,
 * n_ctx, scratch) but their own queries, caches and positions (one per sequence of a
 * batch), in one pool run: the same results as nk_attention on each. Tasks check the
 * pool's abort flag (nk_pool_should_stop) and stop early once it is raised; the
 * output is then incomplete. */
void nk_attention_multi(nk_pool *pool, const nk_attn *segs, int n_seg);

/* The number of one-token segments decoded split over the cache length (pieces
 * shared among the threads, attention.c) so far, process-wide: for tests that must
 * know the path ran (the bits are the same on every path). */
long nk_attn_dec_split_runs(void);

#endif /* NOOK_TENSOR_OPS_H */

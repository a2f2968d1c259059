/*
 * attn_plan.h: what the attention's dispatch (attention.c) and its AVX-512 kernels
 * (arch/x86/attn_tile.c: the tiled prefill; arch/x86/attn_dec.c: decoding at depth)
 * share: the tiles' and the decoding pieces' sizes, the per-thread scratch layout and
 * the kernels' entry points. Internal to src/tensor.
 */
#ifndef NK_ATTN_PLAN_H
#define NK_ATTN_PLAN_H

#include "tensor/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* scratch pieces are rounded up to 64 bytes (cache lines) */
static inline size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The tiled path (arch/x86/attn_tile.c says how it works and why). */

#define TILE_RMAX 16                  /* rows per tile: one lane each in the softmax    */
#define TILE_KF 8192                  /* floats of converted K per chunk (32 KiB, L1)     */
#define TILE_CMAX (TILE_KF / 32)      /* the largest chunk (hd_k 32)                      */
#define TILE_P 6                      /* rows per register block                          */
#define TILE_D 4                      /* zmm per row per register block (64 dims)         */
#define TILE_VAHEAD 8                 /* V rows prefetched ahead while the scores convert them */

typedef struct tile_ws {
    float *kf;                 /* [C][hd_k] chunk of K in f32, zero past the chunk */
    float *qf;                 /* [R][hd_k] queries rounded to f16                 */
    float *acc;                /* [R][hd_v] f32 accumulators                       */
    float *sc;                 /* [C][TILE_RMAX] scores, then their exponentials   */
    float *ms, *w;             /* [C][TILE_RMAX] rescale factor and weight         */
    uint32_t *resc, *valid;    /* [C] rows (bits) that rescale / use the position  */
} tile_ws;

static inline size_t tile_bytes(int hd) {
    return round64((size_t)TILE_KF * 4) + 2 * round64((size_t)TILE_RMAX * (size_t)hd * 4) +
           3 * round64((size_t)TILE_RMAX * TILE_CMAX * 4) + 2 * round64((size_t)TILE_CMAX * 4);
}

/* The plan: tiles of T tokens and G heads (T * G <= 16); tasks enumerate (KV head,
 * tile, head group), within a KV head the last tokens (the most positions) first.
 * The plan may depend on the thread count; the results do not (see above). */
typedef struct tile_plan {
    int T, G, n_tiles, n_hsplit, n_task;
    int NS, n_super;   /* tiles per task (consecutive tokens), tasks per KV head and head group */
} tile_plan;

/* Tiles per task: a task walks the positions once for up to TILE_NS consecutive tiles of
 * the same KV head and head group, each chunk of K and V used by all of them while it is
 * in L1/L2 (one tile per pass streamed the head's cache from L3 once per 16 rows: at
 * 4,096 positions 2 MB per head, more than L2, and the loads stalled the scores). */
#ifndef TILE_NS
#define TILE_NS 8   /* (bench builds try others with -D) */
#endif

static inline size_t dec_head_floats(int hd) { return ((size_t)hd + 2 + 15) & ~(size_t)15; }
/* bytes per query row of a quantized cache's decoding (decq_prep's layout, below) */
static inline size_t decq_row_bytes(int hd_k) { return round64((size_t)hd_k + 128 * (size_t)((hd_k / 32 + 1) / 2)); }

/* Decoding split over the cache length (attention.c): a lone one-token segment's pieces
 * (ops.h, NK_ATTN_SPLIT positions each) are tasks of their own, all its query rows (at
 * most DEC_RMAX) at once; each piece's state (per row hf floats: the accumulator, then
 * M at hd_v and S at hd_v + 1) goes to a region shared by the threads, and the thread
 * that finishes the last piece merges them in position order. */
#define DEC_RMAX 64
/* bytes of the shared region of the pieces' states, at the start of the scratch */
static inline size_t dec_split_bytes(int n_ctx, int hd) {
    return round64((size_t)(n_ctx / NK_ATTN_SPLIT + 2) * DEC_RMAX * dec_head_floats(hd) * 4);
}
/* a piece task's queries (after tile_bytes): DEC_RMAX rows in the scores' layout */
static inline size_t dec_split_q(int hd) { return round64((size_t)DEC_RMAX * NK_MAX((size_t)hd * 4, decq_row_bytes(hd))); }
/* the task split by heads: the total and the piece, TILE_RMAX rows each (after tile_bytes) */
static inline size_t dec_task_bytes(int hd) { return 2 * round64((size_t)TILE_RMAX * dec_head_floats(hd) * 4); }

/* The end (exclusive) of the piece holding position j (ops.h) */
static inline int nk_attn_piece_end(int j) { return (j / NK_ATTN_SPLIT + 1) * NK_ATTN_SPLIT; }

/* The merge's first half (ops.h): the factors a (the total's) and b (the piece's) of
 * a piece (M, S) merged into the total (*MT, *ST), which it updates; the accumulators
 * then take accT * a + acc * b, each product rounded. Separate statements: never
 * contracted to an fma. */
static inline void nk_attn_piece_factors(float *MT, float *ST, float M, float S, float *a, float *b) {
    *a = 1.0f, *b = 1.0f;
    if (M > *MT) {
        *a = expf(*MT - M);
        *MT = M;
    } else {
        *b = expf(M - *MT);
    }
    const float x = *ST * *a, y = S * *b;
    *ST = x + y;
}

/* Merge a piece's state (acc[0..n-1], M, S) into the total (accT, *MT, *ST), the
 * pieces in position order (the description in ops.h; attention.c). */
void nk_attn_piece_merge(int n, float *restrict accT, float *MT, float *ST, const float *restrict acc, float M, float S);

/* the tiled path's queries and accumulators of a task's tiles past the first, then
 * every tile's merged pieces' accumulators (ops.h), after tile_bytes */
static inline size_t tile_more_bytes(int hd) { return (size_t)(3 * TILE_NS - 2) * round64((size_t)TILE_RMAX * (size_t)hd * 4); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The AVX-512 kernels; they run only when the tensor layer picked its avx512vnni level.
 * Each reads segment a and writes its own scratch (a piece task: its own piece's
 * state), so any thread may run any task; the bits depend on neither. */

/* Task `task` of the tiled plan pl: up to pl->NS tiles of one KV head and head group
 * (arch/x86/attn_tile.c). scratch: this thread's (attn_thread_bytes). */
void nk_attn_tile_task(const nk_attn *a, const tile_plan *pl, int task, void *scratch);

/* Task `task` of a one-token segment decoded split by heads, hpt KV heads per task
 * (arch/x86/attn_dec.c). */
void nk_attn_dec_task(const nk_attn *a, int hpt, int task, void *scratch);

/* Pieces p0..p1-1 of a lone one-token segment decoded split over the cache length (all
 * its query rows), in order: their states to st (per piece n_head rows of
 * dec_head_floats(hd) floats; arch/x86/attn_dec.c). scratch: this thread's. */
void nk_attn_dec_piece_task(const nk_attn *a, int p0, int p1, float *st, void *scratch);

/* The n_piece states st of a segment split over its length merged in position order
 * and divided out into a->out (arch/x86/attn_dec.c). */
void nk_attn_dec_split_merge(const nk_attn *a, const float *st, int n_piece);

/* x[0..n-1] = expf(x[0..n-1]) with the C library's bits, 16 at a time (AVX-512 only) */
void nk_attn_tile_expf(float *x, int n);

/* The per-query path's helpers (arch/x86/attn_query.c), the scalar description's bits;
 * the first two and the last need AVX2, FMA and F16C, the scores AVX-512.
 * acc[0..n-1] += h * p (plain), or acc = acc * ms (when ms != 1), then += h * w (flash),
 * for an f16 V row h: */
void nk_attn_q_vmad_plain_f16(int n, float *acc, const uint16_t *h, float p);
void nk_attn_q_vmad_flash_f16(int n, float *acc, const uint16_t *h, float ms, float w);
/* scores[j] = (q . K row j) * scale for j < n_kv, an f16 query qh and f16 rows k_row
 * bytes apart from kb; false (nothing written) for head sizes other than 64/128/256 */
bool nk_attn_q_scores_f16(int hd, int n_kv, const uint16_t *qh, const uint8_t *kb, size_t k_row, float scale,
                          float *scores);
/* h[0..n-1] = x[0..n-1] rounded to f16 (nearest even) */
void nk_attn_q_f32_to_f16(const float *x, uint16_t *h, int n);
#endif

#endif

/*
 * attn_plan.h: what the attention's dispatch (attention.c) and its AVX-512 kernels
 * (arch/x86/attn_tile.c: the tiled prefill; arch/x86/attn_dec.c: decoding at depth)
 * share: the tiles' and the decoding pairs' sizes, the per-thread scratch layout and
 * the kernels' entry points. Internal to src/tensor.
 */
#ifndef NK_ATTN_PLAN_H
#define NK_ATTN_PLAN_H

#include "tensor/ops.h"

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

/* Decoding on pairs of threads (dec_pipe_run): at most DEC_RMAX query rows per pair,
 * DEC_RING blocks of ms, w and rescale masks between the pair's two threads. */
#define DEC_RMAX 64
#ifndef DEC_RING
#define DEC_RING 8
#endif
#define DEC_MAX_PAIRS 16
typedef struct dec_pipe {
    _Alignas(64) atomic_int made;   /* blocks published by the producer */
    _Alignas(64) atomic_int used;   /* blocks the consumer has finished with */
    _Alignas(64) atomic_int quit;   /* a thread of the pair stopped (abort) */
    atomic_int yielded;             /* a wait outlasted the spin: the partner was off its core */
} dec_pipe;
static inline size_t dec_ring_slot(void) { return 2 * round64((size_t)DEC_RMAX * 16 * 4) + 2 * round64((size_t)DEC_RMAX * 4); }
static inline size_t dec_pipe_q(int hd) { return round64((size_t)DEC_RMAX * NK_MAX((size_t)hd * 4, decq_row_bytes(hd))); }
/* a thread's scratch for either role: the producer's queries and the ring; the
 * consumer's accumulators, running maxima and sums */
static inline size_t dec_pipe_bytes(int hd) {
    const size_t prod = dec_pipe_q(hd) + DEC_RING * dec_ring_slot();
    return NK_MAX(prod, round64((size_t)DEC_RMAX * dec_head_floats(hd) * 4));
}

/* the tiled path's queries and accumulators of a task's tiles past the first, after tile_bytes */
static inline size_t tile_more_bytes(int hd) { return (size_t)(TILE_NS - 1) * 2 * round64((size_t)TILE_RMAX * (size_t)hd * 4); }

/* below this many positions a lone segment decodes split by heads, not on pairs: the
 * pair's handshakes cost more than the two streams gain */
#ifndef DEC_PIPE_MIN
#define DEC_PIPE_MIN 256
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The AVX-512 kernels; they run only when the tensor layer picked its avx512vnni level.
 * Each reads segment a and its own scratch (no other shared state but the pair's
 * counters), so any thread may run any task; the bits depend on neither. */

/* Task `task` of the tiled plan pl: up to pl->NS tiles of one KV head and head group
 * (arch/x86/attn_tile.c). scratch: this thread's (attn_thread_bytes). */
void nk_attn_tile_task(const nk_attn *a, const tile_plan *pl, int task, void *scratch);

/* Task `task` of a one-token segment decoded split by heads, hpt KV heads per task
 * (arch/x86/attn_dec.c). */
void nk_attn_dec_task(const nk_attn *a, int hpt, int task, void *scratch);

/* One thread's role in pair `pair` of n_pairs decoding segment a (producer: K and the
 * scores; consumer: V); ws: this thread's scratch, pws: the producer's; stops early
 * when ctl's abort flag is raised (arch/x86/attn_dec.c). */
void nk_attn_dec_pipe_run(const nk_attn *a, int pair, int n_pairs, bool producer, dec_pipe *pp, uint8_t *ws,
                          uint8_t *pws, nk_pool *ctl, int ith);

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

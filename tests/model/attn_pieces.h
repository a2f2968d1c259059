/*
 * attn_pieces.h: the flash numerics' pieces (src/tensor/ops.h), written again from the
 * description for the tests' scalar references: the positions a query sees are cut at
 * multiples of REF_SPLIT; each piece is its own online softmax (M, S, acc) from
 * scratch; the pieces merge in position order into the total (MT, ST, accT), which
 * starts as the first piece.
 */
#ifndef NK_TEST_ATTN_PIECES_H
#define NK_TEST_ATTN_PIECES_H

#include "tensor/ops.h"

#include <math.h>
#include <string.h>

#define REF_SPLIT 1024
_Static_assert(REF_SPLIT == NK_ATTN_SPLIT, "the tests' piece length is the library's");

/* Position j starts a new piece (lo: the first position the query sees). */
static inline int ref_piece_starts(int j, int lo) { return j > lo && j % REF_SPLIT == 0; }

/* Close the piece (acc[0..n-1], *M, *S): the total if it is the first (*np == 0),
 * else merged into it; then the piece restarts. */
static inline void ref_piece_close(int n, int *np, float *accT, float *MT, float *ST, float *acc, float *M, float *S) {
    if (*np == 0) {
        memcpy(accT, acc, sizeof(float) * (size_t)n);
        *MT = *M, *ST = *S;
    } else {
        float a = 1, b = 1;
        if (*M > *MT) { a = expf(*MT - *M); *MT = *M; } else { b = expf(*M - *MT); }
        const float x = *ST * a, y = *S * b;
        *ST = x + y;
        for (int d = 0; d < n; d++) {
            const float p = accT[d] * a, r = acc[d] * b;
            accT[d] = p + r;
        }
    }
    (*np)++;
    memset(acc, 0, sizeof(float) * (size_t)n);
    *M = -INFINITY, *S = 0;
}

#endif

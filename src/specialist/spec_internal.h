/*
 * spec_internal.h: what the specialist's files share and nothing outside the module
 * uses: building one feature row from counts and a vocabulary; the L-BFGS loop.
 */
#ifndef NOOK_SPEC_INTERNAL_H
#define NOOK_SPEC_INTERNAL_H

#include "specialist/specialist.h"

/* Blocks that make up a row (word, character, embedding); each is L2-normalised and
 * scaled by 1/sqrt(blocks), so a full row has unit norm. */
int nk_feat_blocks(const nk_feat_cfg *c, uint32_t embed_dim, bool text);
/* Binary search of id in the sorted ids[0..n); -1 when absent. */
long nk_feat_find_id(const uint32_t *ids, size_t n, uint32_t id);

/* Maps the counts of one text onto the vocabulary ids[0..d_text) (ids absent from it
 * are dropped), weights by idf (NULL: 1), L2-normalises each block to length scale.
 * Writes at most cnt[0].n + cnt[1].n entries to col/val; returns how many. */
size_t nk_feat_row(const uint32_t *ids, const float *idf, size_t d_text, const nk_sparse cnt[2], double scale,
                   uint32_t *col, double *val);
/* The embedding block: dim entries at columns first_col.., L2-normalised to scale. */
size_t nk_feat_embed_row(const float *emb, uint32_t dim, size_t first_col, double scale, uint32_t *col,
                         double *val);

/* One L-BFGS minimisation (logreg.c), shared by the primal solver (logreg.c) and the one
 * in the span of the rows (logreg_kernel.c), which differ only in these callbacks:
 * eval writes the gradient at th to g and returns f; dot is the inner product of two
 * parameter vectors; gnorm is the norm of the stopping test. L parameters, m pairs. */
typedef struct nk_lbfgs_prob {
    size_t L;
    int m;
    double (*eval)(void *ctx, const double *th, double *g);
    double (*dot)(void *ctx, const double *u, const double *v);
    double (*gnorm)(void *ctx, const double *g);
    void *ctx;
} nk_lbfgs_prob;
/* Minimises from th, in place. Returns the iterations taken, or -1 when out of memory. */
int nk_lbfgs(const nk_lbfgs_prob *p, double *th, double tol, int max_iter);

#endif

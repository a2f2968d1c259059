/*
 * gmask.c: token masks. The vocabulary is a byte trie stored in depth-first
 * pre-order (arrays: edge byte, depth, end of subtree, tokens ending here), built
 * once per model by sorting the token pieces. A mask is one walk over the trie with
 * the grammar state of each depth on a small stack: a node whose byte kills the
 * state skips its whole subtree (one jump to end[i]), and a live node allows the
 * tokens ending there. Each step is a table load once the state's transitions are
 * known (gmatch.c), so a walk costs about one load per trie node visited.
 *
 * Masks are cached on the state they were computed for: the common states of
 * structured output (inside a string, between items, in a number) recur, and a
 * recurring state costs a pointer load. The cache is bounded (NK_GMASK_CACHE masks
 * per grammar, then cleared) and lives as long as the grammar's state tables.
 */
#include "grammar/grammar_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NK_GMASK_CACHE 512

/* ---- vocabulary ----------------------------------------------------------------------------- */

typedef struct sort_ctx { const char *bytes; const uint32_t *off, *len; } sort_ctx;

static int cmp_piece(const void *a, const void *b, void *ctx) {
    const sort_ctx *c0 = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = c0->len[x], ly = c0->len[y];
    int c = memcmp(c0->bytes + c0->off[x], c0->bytes + c0->off[y], lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

void nk_gvocab_free(nk_gvocab *v) {
    if (!v) return;
    nk_free(v->byte); nk_free(v->depth); nk_free(v->end); nk_free(v->tok_first); nk_free(v->toks);
    nk_free(v->eog); nk_free(v->bytes); nk_free(v->piece_off); nk_free(v->piece_len);
    nk_free(v);
}

int nk_gvocab_n_vocab(const nk_gvocab *v) { return v->n_vocab; }

const char *nk_gvocab_piece(const nk_gvocab *v, int32_t tok, size_t *len) {
    if (tok < 0 || tok >= v->n_vocab) { *len = 0; return ""; }
    *len = v->piece_len[tok];
    return v->bytes + v->piece_off[tok];
}

nook_status nk_gvocab_new(int n_vocab, nk_gvocab_piece_fn piece, nk_gvocab_eog_fn eog, void *ud,
                          nk_gvocab **out, nook_error *err) {
    if (!out || !piece || n_vocab <= 0) return nk_fail(err, NOOK_EINVAL, "gvocab: bad arguments");
    *out = NULL;
    nk_gvocab *v = nk_calloc(1, sizeof *v);
    if (!v) return nk_fail(err, NOOK_ENOMEM, "gvocab: out of memory");
    v->n_vocab = n_vocab;
    v->piece_off = nk_calloc((size_t)n_vocab, sizeof(uint32_t));
    v->piece_len = nk_calloc((size_t)n_vocab, sizeof(uint32_t));
    v->eog = nk_alloc_array((size_t)n_vocab, sizeof(int32_t));
    int32_t *order = nk_alloc_array((size_t)n_vocab, sizeof(int32_t));
    size_t cap = (size_t)n_vocab * 8 + 64, used = 0;
    v->bytes = nk_malloc(cap);
    if (!v->piece_off || !v->piece_len || !v->eog || !order || !v->bytes) goto nomem;
    int32_t n_in = 0;
    char buf[512];
    for (int32_t t = 0; t < n_vocab; t++) {
        if (eog && eog(ud, t)) { v->eog[v->n_eog++] = t; continue; }
        int n = piece(ud, t, buf, sizeof buf);
        if (n <= 0) continue;
        if ((size_t)n > sizeof buf) continue;          /* a piece this long never helps */
        if (used + (size_t)n > cap) {
            cap = cap * 2 + (size_t)n;
            char *nb = nk_realloc(v->bytes, cap);
            if (!nb) goto nomem;
            v->bytes = nb;
        }
        memcpy(v->bytes + used, buf, (size_t)n);
        v->piece_off[t] = (uint32_t)used; v->piece_len[t] = (uint32_t)n;
        used += (size_t)n;
        order[n_in++] = t;
    }
    sort_ctx sc = { v->bytes, v->piece_off, v->piece_len };
    qsort_r(order, (size_t)n_in, sizeof(int32_t), cmp_piece, &sc);   /* GNU: _GNU_SOURCE */

    /* nodes: at most one per byte of all pieces */
    v->byte = nk_alloc_array(used + 1, 1);
    v->depth = nk_alloc_array(used + 1, sizeof(uint16_t));
    v->end = nk_alloc_array(used + 1, sizeof(int32_t));
    v->tok_first = nk_alloc_array(used + 2, sizeof(int32_t));
    v->toks = nk_alloc_array((size_t)n_in + 1, sizeof(int32_t));
    int32_t path[512];      /* node id of each depth of the current path */
    if (!v->byte || !v->depth || !v->end || !v->tok_first || !v->toks) goto nomem;
    int32_t nn = 0, nt = 0, plen = 0;
    const char *prev = NULL; uint32_t prev_len = 0;
    for (int32_t i = 0; i < n_in; i++) {
        int32_t t = order[i];
        const char *pc = v->bytes + v->piece_off[t];
        uint32_t pl = v->piece_len[t];
        uint32_t lcp = 0;
        if (prev) while (lcp < pl && lcp < prev_len && pc[lcp] == prev[lcp]) lcp++;
        /* close the nodes of the previous path below the common prefix */
        while ((uint32_t)plen > lcp) { v->end[path[plen - 1]] = nn; plen--; }
        while ((uint32_t)plen < pl) {
            v->byte[nn] = (uint8_t)pc[plen];
            v->depth[nn] = (uint16_t)(plen + 1);
            v->tok_first[nn] = nt;
            path[plen++] = nn++;
        }
        v->toks[nt++] = t;     /* ends at path[pl-1], the last node made or revisited */
        prev = pc; prev_len = pl;
    }
    while (plen > 0) { v->end[path[plen - 1]] = nn; plen--; }
    v->tok_first[nn] = nt;
    v->n_nodes = nn;
    /* tok_first so far is where each node's tokens start; tokens are appended in
     * sorted order, so node i's tokens are toks[tok_first[i] .. tok_first[i+1]) once
     * every node created after a token is pushed starts after it: true by construction
     * (a node is made before the token that ends on it and after any earlier token). */
    nk_free(order);
    *out = v;
    return NOOK_OK;
nomem:
    nk_free(order);
    nk_gvocab_free(v);
    return nk_fail(err, NOOK_ENOMEM, "gvocab: out of memory for %d tokens", n_vocab);
}

/* ---- masks ------------------------------------------------------------------------------------ */

static void clear_masks(nk_grammar *g) {
    for (int32_t i = 0; i < g->n_states; i++) { nk_free(g->states[i].mask); g->states[i].mask = NULL; }
    g->n_masks = 0;
}

nook_status nk_grammar_mask(nk_grammar *g, const nk_gvocab *v, const uint32_t **mask_out,
                            int *n_allowed, nook_error *err) {
    nk_gm_maybe_flush(g);
    if (g->mask_vocab != v) { clear_masks(g); g->mask_vocab = v; }
    gstate *cs = &g->states[g->cur];
    if (cs->mask) {
        g->st.mask_hits++;
        *mask_out = cs->mask;
        if (n_allowed) *n_allowed = cs->n_allowed;
        return NOOK_OK;
    }
    size_t words = ((size_t)v->n_vocab + 31) / 32;
    if (g->n_masks >= NK_GMASK_CACHE) clear_masks(g);
    uint32_t *m = nk_calloc(words, sizeof(uint32_t));
    if (!m) return nk_fail(err, NOOK_ENOMEM, "grammar: out of memory for a token mask");
    if (g->cap_walk < 513) {
        nk_free(g->walk);
        g->walk = nk_alloc_array(513, sizeof(int32_t));
        if (!g->walk) { nk_free(m); g->cap_walk = 0; return nk_fail(err, NOOK_ENOMEM, "grammar: out of memory"); }
        g->cap_walk = 513;
    }
    int32_t cur = g->cur;
    int32_t *st = g->walk;
    st[0] = cur;
    int32_t allowed = 0;
    long visited = 0;
    /* the hot loop: a known transition is two loads (the state's table, the entry);
     * anything else goes through nk_gm_step, after which the state array may have moved */
    const gstate *S = g->states;
    const uint8_t *byte = v->byte;
    const uint16_t *depth = v->depth;
    const int32_t *end = v->end, *tf = v->tok_first, *toks = v->toks;
    for (int32_t i = 0; i < v->n_nodes;) {
        int d = depth[i];
        int32_t ps = st[d - 1];
        const int32_t *tab = S[ps].tab;
        int32_t s = tab ? tab[byte[i]] : -2;
        if (s == -2) {
            s = nk_gm_step(g, ps, byte[i]);
            S = g->states;
        }
        visited++;
        if (s < 0) {
            if (s == -3) { nk_free(m); return nk_fail(err, NOOK_ERANGE, "grammar: state tables exceed their limit"); }
            i = end[i];
            continue;
        }
        st[d] = s;
        for (int32_t k = tf[i], ke = tf[i + 1]; k < ke; k++) {
            int32_t t = toks[k];
            m[t >> 5] |= 1u << (t & 31);
        }
        allowed += tf[i + 1] - tf[i];
        i++;
    }
    if (g->states[cur].can_end)
        for (int32_t k = 0; k < v->n_eog; k++) {
            int32_t t = v->eog[k];
            m[t >> 5] |= 1u << (t & 31);
            allowed++;
        }
    g->st.masks_computed++;
    g->st.trie_nodes_visited += visited;
    cs = &g->states[cur];           /* the walk may have moved the state table */
    cs->mask = m;
    cs->n_allowed = allowed;
    g->n_masks++;
    *mask_out = m;
    if (n_allowed) *n_allowed = allowed;
    return NOOK_OK;
}

nook_status nk_grammar_apply(nk_grammar *g, const nk_gvocab *v, float *logits, nook_error *err) {
    const uint32_t *m;
    int n;
    nook_status st = nk_grammar_mask(g, v, &m, &n, err);
    if (st != NOOK_OK) return st;
    if (n == 0) return nk_fail(err, NOOK_ERANGE, "grammar: no token of the vocabulary can continue the output");
    int32_t nv = v->n_vocab;
    for (int32_t w = 0; w * 32 < nv; w++) {
        uint32_t bits = m[w];
        if (bits == 0xFFFFFFFFu) continue;
        int32_t base = w * 32, lim = nv - base < 32 ? nv - base : 32;
        for (int32_t j = 0; j < lim; j++)
            if (!(bits >> j & 1u)) logits[base + j] = -INFINITY;
    }
    return NOOK_OK;
}

nook_status nk_grammar_accept_token(nk_grammar *g, const nk_gvocab *v, int32_t tok, nook_error *err) {
    if (tok < 0 || tok >= v->n_vocab) return nk_fail(err, NOOK_EINVAL, "grammar: token %d out of range", tok);
    for (int32_t k = 0; k < v->n_eog; k++)
        if (v->eog[k] == tok) {
            if (!nk_grammar_can_end(g))
                return nk_fail(err, NOOK_EINVAL, "grammar: end of generation where the output is incomplete");
            return NOOK_OK;
        }
    size_t n;
    const char *p = nk_gvocab_piece(v, tok, &n);
    if (n == 0) return nk_fail(err, NOOK_EINVAL, "grammar: token %d has no text the grammar could match", tok);
    nook_status st = nk_grammar_accept_bytes(g, p, n, err);
    if (st != NOOK_OK) nk_prefix(err, "token %d: ", tok);
    return st;
}

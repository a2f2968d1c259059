/*
 * grammar_internal.h: the compiled form of a grammar, shared by the parser
 * (gbnf.c), the matcher (gmatch.c) and the token masks (gmask.c).
 *
 * A compiled grammar is a flat array of symbols. Each rule is a list of
 * alternatives; an alternative is a run of symbols ended by GS_END. Groups and
 * repetitions were expanded by the parser into generated rules, so only three kinds
 * of symbol remain: a character class, a reference to a rule, and the end marker.
 * Every class is normalized to sorted, merged, non-negated code-point ranges.
 */
#ifndef NOOK_GRAMMAR_INTERNAL_H
#define NOOK_GRAMMAR_INTERNAL_H

#include "grammar/grammar.h"

enum { GS_END = 0, GS_CHAR = 1, GS_REF = 2 };

typedef struct gsym { int32_t type, arg; } gsym;      /* arg: class id or rule id       */
typedef struct grange { uint32_t lo, hi; } grange;    /* inclusive code points          */
typedef struct gclass { int32_t first, n; } gclass;   /* ranges[first .. first + n)     */
typedef struct grule { char *name; int32_t first_alt, n_alts; } grule; /* alt_start[...] */

/* The matcher's tables (gmatch.c). A stack node is (symbol position, parent node):
 * the stacks of the pushdown automaton, hash-consed so equal stacks are one id.
 * Node 0 is the empty stack (the sentence may end). A state is a sorted set of
 * nodes (one per live stack, its top always a GS_CHAR) plus a partial UTF-8
 * character; states are interned too, so a state id is a canonical name used by
 * the byte transition tables and the mask cache. */
typedef struct gnode { int32_t pos, parent; } gnode;
typedef struct gstate {
    int32_t off, n;          /* node ids in the pool                       */
    uint32_t acc;            /* bits of the partial character so far       */
    uint8_t need, len;       /* continuation bytes still expected, length  */
    bool can_end;
    int32_t *tab;            /* [256] next state, -1 dead, -2 unknown (lazy) */
    uint32_t *mask;          /* cached token mask (lazy)                   */
    int32_t n_allowed;
} gstate;

typedef struct ghash { uint64_t *keys; int32_t *vals; size_t cap, n; } ghash;

struct nk_grammar {
    /* compiled, immutable */
    gsym *sym; int32_t n_sym;
    grange *rng; int32_t n_rng;
    gclass *cls; int32_t n_cls;
    grule *rules; int32_t n_rules;
    int32_t *alt_start; int32_t n_alt;
    int32_t root;

    /* matcher caches */
    gnode *nodes; int32_t n_nodes, cap_nodes;
    ghash node_ix;                        /* (pos, parent) -> node id              */
    gstate *states; int32_t n_states, cap_states;
    int32_t *pool; size_t n_pool, cap_pool; /* node ids of all states               */
    ghash state_ix;                       /* hash of a state's content -> state id */
    int32_t start, cur;                   /* start state and current state ids     */

    /* transition tables come from chunks of NK_GM_TABS_PER_CHUNK, reused after a flush */
    int32_t **tab_chunks; int32_t n_chunks, cap_chunks;
    int64_t tabs_used;

    /* closure scratch */
    int32_t *work; size_t n_work, cap_work;     /* pairs (pos, parent)              */
    int32_t *outv; size_t n_out, cap_out;       /* node ids collected               */
    ghash seen;                                 /* (pos, parent) visited            */
    size_t *seen_used; size_t n_seen_used, cap_seen_used; /* slots to clear     */

    /* masks */
    const nk_gvocab *mask_vocab;
    int32_t n_masks;
    int32_t *walk;  size_t cap_walk;            /* state per trie depth             */
    uint32_t *scratch_mask;

    nk_grammar_stats st;
    bool oom;                                   /* a table hit its hard limit       */
};

/* gmatch.c */
nook_status nk_gm_init(nk_grammar *g, nook_error *err);   /* after compile: start state */
void nk_gm_release(nk_grammar *g);
int32_t nk_gm_step(nk_grammar *g, int32_t s, uint8_t byte);  /* -1 dead, -3 table limit  */
void nk_gm_maybe_flush(nk_grammar *g);                       /* between top-level calls  */

/* The vocabulary trie, nodes in depth-first pre-order (gmask.c). */
struct nk_gvocab {
    int32_t n_vocab;
    int32_t n_nodes;
    uint8_t *byte;        /* byte on the edge into node i                      */
    uint16_t *depth;      /* length of node i's prefix (1-based)               */
    int32_t *end;         /* first node after i's subtree                      */
    int32_t *tok_first;   /* tokens ending at node i: toks[tok_first[i] .. tok_first[i+1]) */
    int32_t *toks;
    int32_t *eog; int32_t n_eog;
    char *bytes; uint32_t *piece_off; uint32_t *piece_len; /* piece of each token */
};

#endif /* NOOK_GRAMMAR_INTERNAL_H */

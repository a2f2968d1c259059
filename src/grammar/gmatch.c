/*
 * gmatch.c: the matcher: a pushdown automaton over bytes, determinized lazily.
 *
 * The automaton's configuration is a set of stacks (as in llama.cpp's grammar
 * sampler): each stack's top is a character class to match next, the entries below
 * are where to continue when the rule on top ends. Here stacks are hash-consed into
 * nodes (pos, parent), and a whole configuration (sorted node set + partial UTF-8
 * character) is interned as a state. So a state id names a configuration, and the
 * result of feeding byte b to state s is computed once and stored in s's 256-entry
 * table: after warm-up, matching a byte is one array load. That is what makes trie
 * walks for token masks cheap (gmask.c).
 *
 * A rule reference that is the last symbol of its alternative pushes nothing (a tail
 * call), so repetitions (R ::= x R |) keep stacks flat and revisit the same states.
 *
 * Tables grow with the text generated (nested JSON makes new stacks). Between
 * top-level calls, past NK_GM_SOFT_STATES states or NK_GM_SOFT_NODES nodes, every
 * table is flushed and the current configuration re-interned from its stacks; in
 * one call, past 8x those, the call fails with NOOK_ERANGE.
 */
#include "grammar/grammar_internal.h"

#include <stdlib.h>
#include <string.h>

#define NK_GM_SOFT_STATES 16384
#define NK_GM_SOFT_NODES  (1 << 20)
#define NK_GM_TABS_PER_CHUNK 256
#define NK_GM_UNKNOWN -2
#define NK_GM_LIMIT   -3

/* ---- hash tables: open addressing, 64-bit keys, key 0 unused (keys are offset) ---- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static bool hash_init(ghash *h, size_t cap) {
    h->keys = nk_calloc(cap, sizeof(uint64_t));
    h->vals = nk_alloc_array(cap, sizeof(int32_t));
    h->cap = cap; h->n = 0;
    return h->keys && h->vals;
}

static void hash_free(ghash *h) { nk_free(h->keys); nk_free(h->vals); memset(h, 0, sizeof *h); }

static void hash_clear(ghash *h) { if (h->keys) memset(h->keys, 0, h->cap * sizeof(uint64_t)); h->n = 0; }

/* Slot of key (or of the empty slot where it would go). */
static size_t hash_slot(const ghash *h, uint64_t key) {
    size_t i = (size_t)mix64(key) & (h->cap - 1);
    while (h->keys[i] && h->keys[i] != key) i = (i + 1) & (h->cap - 1);
    return i;
}

static bool hash_put(ghash *h, uint64_t key, int32_t val) {
    if ((h->n + 1) * 2 > h->cap) {
        ghash nh;
        if (!hash_init(&nh, h->cap * 2)) { hash_free(&nh); return false; }
        for (size_t i = 0; i < h->cap; i++)
            if (h->keys[i]) { size_t j = hash_slot(&nh, h->keys[i]); nh.keys[j] = h->keys[i]; nh.vals[j] = h->vals[i]; }
        nh.n = h->n;
        hash_free(h);
        *h = nh;
    }
    size_t i = hash_slot(h, key);
    if (!h->keys[i]) h->n++;
    h->keys[i] = key; h->vals[i] = val;
    return true;
}

static int32_t hash_get(const ghash *h, uint64_t key) {
    size_t i = hash_slot(h, key);
    return h->keys[i] ? h->vals[i] : -1;
}

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1); }

/* ---- nodes ------------------------------------------------------------------------------ */

static int32_t node_get(nk_grammar *g, int32_t pos, int32_t parent) {
    uint64_t k = pair_key(pos, parent);
    int32_t id = hash_get(&g->node_ix, k);
    if (id >= 0) return id;
    if (g->n_nodes >= NK_GM_SOFT_NODES * 8) { g->oom = true; return -1; }
    if (g->n_nodes == g->cap_nodes) {
        int32_t nc = g->cap_nodes * 2;
        gnode *nn = nk_realloc(g->nodes, (size_t)nc * sizeof(gnode));
        if (!nn) { g->oom = true; return -1; }
        g->nodes = nn; g->cap_nodes = nc;
    }
    id = g->n_nodes++;
    g->nodes[id] = (gnode){ pos, parent };
    if (!hash_put(&g->node_ix, k, id)) { g->oom = true; return -1; }
    return id;
}

/* ---- closure: expand (pos, parent) until every stack's top is a character class --------- */

/* Empties the visited set by clearing the slots used since the last call (a closure
 * touches few; memset of a table that once grew would cost more than the closure). */
static void seen_clear(nk_grammar *g) {
    if (g->n_seen_used > g->seen.cap / 4) hash_clear(&g->seen);
    else for (size_t i = 0; i < g->n_seen_used; i++) g->seen.keys[g->seen_used[i]] = 0;
    g->seen.n = 0;
    g->n_seen_used = 0;
}

static bool work_push(nk_grammar *g, int32_t pos, int32_t parent) {
    uint64_t k = pair_key(pos, parent);
    size_t i = hash_slot(&g->seen, k);
    if (g->seen.keys[i]) return true;                   /* already expanded */
    size_t cap0 = g->seen.cap;
    if (!hash_put(&g->seen, k, 0)) { g->oom = true; return false; }
    if (g->seen.cap != cap0) g->n_seen_used = g->seen.cap;   /* rehashed: clear it all next time */
    else {
        if (g->n_seen_used == g->cap_seen_used) {
            size_t nc = g->cap_seen_used ? g->cap_seen_used * 2 : 256;
            size_t *nu = nk_realloc(g->seen_used, nc * sizeof(size_t));
            if (!nu) { g->oom = true; return false; }
            g->seen_used = nu; g->cap_seen_used = nc;
        }
        if (g->n_seen_used < g->cap_seen_used) g->seen_used[g->n_seen_used++] = i;
    }
    if (g->n_work + 2 > g->cap_work) {
        size_t nc = g->cap_work * 2;
        int32_t *nw = nk_realloc(g->work, nc * sizeof(int32_t));
        if (!nw) { g->oom = true; return false; }
        g->work = nw; g->cap_work = nc;
    }
    g->work[g->n_work++] = pos;
    g->work[g->n_work++] = parent;
    return true;
}

static bool out_push(nk_grammar *g, int32_t node) {
    if (g->n_out == g->cap_out) {
        size_t nc = g->cap_out * 2;
        int32_t *no = nk_realloc(g->outv, nc * sizeof(int32_t));
        if (!no) { g->oom = true; return false; }
        g->outv = no; g->cap_out = nc;
    }
    g->outv[g->n_out++] = node;
    return true;
}

static bool run_closure(nk_grammar *g) {
    while (g->n_work) {
        int32_t parent = g->work[--g->n_work];
        int32_t pos = g->work[--g->n_work];
        const gsym *s = &g->sym[pos];
        if (s->type == GS_CHAR) {
            int32_t n = node_get(g, pos, parent);
            if (n < 0 || !out_push(g, n)) return false;
        } else if (s->type == GS_END) {
            if (parent == 0) { if (!out_push(g, 0)) return false; }
            else if (!work_push(g, g->nodes[parent].pos, g->nodes[parent].parent)) return false;
        } else {
            const grule *r = &g->rules[s->arg];
            int32_t np = parent;
            if (g->sym[pos + 1].type != GS_END) {
                np = node_get(g, pos + 1, parent);
                if (np < 0) return false;
            }
            for (int32_t a = r->n_alts - 1; a >= 0; a--)
                if (!work_push(g, g->alt_start[r->first_alt + a], np)) return false;
        }
    }
    return true;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- states ------------------------------------------------------------------------------ */

static uint64_t state_hash(const int32_t *ids, int32_t n, uint32_t acc, int need, int len) {
    uint64_t h = mix64(((uint64_t)acc << 16) ^ ((uint64_t)need << 8) ^ (uint64_t)len ^ ((uint64_t)n << 40));
    for (int32_t i = 0; i < n; i++) h = mix64(h ^ (uint64_t)(uint32_t)ids[i]) + 0x9E3779B97F4A7C15ull;
    return h | 1;   /* never 0 (the empty-slot key) */
}

/* Interns (ids sorted and unique). Returns the state id or -3 at the hard limit. */
static int32_t state_get(nk_grammar *g, const int32_t *ids, int32_t n, uint32_t acc, int need, int len) {
    uint64_t h = state_hash(ids, n, acc, need, len);
    /* the table maps a hash to the first state with it; collisions chain by probing
     * with a perturbed key */
    for (uint64_t k = h;; k = mix64(k) | 1) {
        size_t i = hash_slot(&g->state_ix, k);
        if (!g->state_ix.keys[i]) break;
        const gstate *s = &g->states[g->state_ix.vals[i]];
        if (s->n == n && s->acc == acc && s->need == need && s->len == len &&
            memcmp(g->pool + s->off, ids, (size_t)n * sizeof(int32_t)) == 0)
            return g->state_ix.vals[i];
    }
    if (g->n_states >= NK_GM_SOFT_STATES * 8) { g->oom = true; return NK_GM_LIMIT; }
    if (g->n_states == g->cap_states) {
        int32_t nc = g->cap_states * 2;
        gstate *ns = nk_realloc(g->states, (size_t)nc * sizeof(gstate));
        if (!ns) { g->oom = true; return NK_GM_LIMIT; }
        g->states = ns; g->cap_states = nc;
    }
    if (g->n_pool + (size_t)n > g->cap_pool) {
        size_t nc = g->cap_pool * 2;
        while (nc < g->n_pool + (size_t)n) nc *= 2;
        int32_t *np = nk_realloc(g->pool, nc * sizeof(int32_t));
        if (!np) { g->oom = true; return NK_GM_LIMIT; }
        g->pool = np; g->cap_pool = nc;
    }
    int32_t id = g->n_states++;
    gstate *s = &g->states[id];
    memset(s, 0, sizeof *s);
    s->off = (int32_t)g->n_pool; s->n = n; s->acc = acc; s->need = (uint8_t)need; s->len = (uint8_t)len;
    s->can_end = need == 0 && n > 0 && ids[0] == 0;
    memcpy(g->pool + g->n_pool, ids, (size_t)n * sizeof(int32_t));
    g->n_pool += (size_t)n;
    uint64_t k = h;
    for (;; k = mix64(k) | 1) {
        size_t i = hash_slot(&g->state_ix, k);
        if (!g->state_ix.keys[i]) break;
    }
    if (!hash_put(&g->state_ix, k, id)) { g->oom = true; return NK_GM_LIMIT; }
    g->st.states++;
    return id;
}

/* The state after the closure collected in outv (sorted, deduplicated here). */
static int32_t state_from_out(nk_grammar *g) {
    if (g->oom) return NK_GM_LIMIT;
    if (g->n_out == 0) return -1;
    qsort(g->outv, g->n_out, sizeof(int32_t), cmp_i32);
    size_t m = 0;
    for (size_t i = 0; i < g->n_out; i++) if (!m || g->outv[i] != g->outv[m - 1]) g->outv[m++] = g->outv[i];
    return state_get(g, g->outv, (int32_t)m, 0, 0, 0);
}

static bool class_has(const nk_grammar *g, int32_t c, uint32_t cp) {
    const gclass *k = &g->cls[c];
    int32_t lo = 0, hi = k->n - 1;
    const grange *r = g->rng + k->first;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}


/* The state after code point cp from the stacks of s (all = advance every stack:
 * s is a "uniform" partial state whose stacks all take any completion). */
static int32_t step_cp(nk_grammar *g, const gstate *s0, uint32_t cp, bool all) {
    int32_t off = s0->off, n = s0->n;
    g->n_out = 0; g->n_work = 0;
    seen_clear(g);
    for (int32_t i = 0; i < n; i++) {
        int32_t id = g->pool[off + i];
        if (id == 0) continue;
        const gnode *nd = &g->nodes[id];
        if (!all && !class_has(g, g->sym[nd->pos].arg, cp)) continue;
        if (!work_push(g, nd->pos + 1, nd->parent)) return NK_GM_LIMIT;
    }
    if (!run_closure(g)) return NK_GM_LIMIT;
    return state_from_out(g);
}

static const uint32_t k_min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };

#define UNI 0x80    /* in gstate.len: a uniform partial character (see partial_state) */

/* The state after the bytes of a partial character: acc holds its bits so far, need
 * bytes are missing, len is its length. The code points it can still become form the
 * range [lo, hi]. Dead when no stack's class meets the range. When the whole range is
 * valid and every stack's class holds either all of it or none of it, which code point
 * it becomes cannot matter: the state keeps only the stacks that take it, forgets acc
 * and is marked uniform (UNI), so e.g. the thousands of 3-byte prefixes of CJK
 * characters inside a JSON string are one state, not one each. */
static int32_t partial_state(nk_grammar *g, const gstate *s, uint32_t acc, int need, int len) {
    uint32_t lo = acc << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
    bool valid = lo >= k_min_cp[len] && hi <= 0x10FFFF && !(lo <= 0xDFFF && hi >= 0xD800);
    uint32_t clo = lo < k_min_cp[len] ? k_min_cp[len] : lo, chi = hi > 0x10FFFF ? 0x10FFFF : hi;
    g->n_out = 0;
    bool any = false, uniform = valid;
    for (int32_t i = 0; i < s->n; i++) {
        int32_t id = g->pool[s->off + i];
        if (id == 0) continue;
        const gclass *k = &g->cls[g->sym[g->nodes[id].pos].arg];
        const grange *r = g->rng + k->first;
        bool meets = false, covers = false;
        for (int32_t j = 0; j < k->n && clo <= chi; j++) {
            if (r[j].lo <= chi && r[j].hi >= clo) meets = true;
            if (r[j].lo <= clo && r[j].hi >= chi) covers = true;
        }
        if (!meets) continue;
        any = true;
        if (!covers) uniform = false;
        if (!out_push(g, id)) return NK_GM_LIMIT;
    }
    if (!any) return -1;
    if (uniform) return state_get(g, g->outv, (int32_t)g->n_out, 0, need, len | UNI);
    /* exact: every stack is kept, acc decides at the end */
    g->n_out = 0;
    for (int32_t i = 0; i < s->n; i++) if (!out_push(g, g->pool[s->off + i])) return NK_GM_LIMIT;
    return state_get(g, g->outv, s->n, acc, need, len);
}

static int32_t compute_step(nk_grammar *g, int32_t si, uint8_t b) {
    gstate s = g->states[si];    /* a copy: the table may move while interning */
    if (s.need == 0) {
        if (b < 0x80) return step_cp(g, &s, b, false);
        int len = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (!len || b == 0xC0 || b == 0xC1 || b > 0xF4) return -1;
        return partial_state(g, &s, b & (0x7Fu >> len), len - 1, len);
    }
    if ((b & 0xC0) != 0x80) return -1;
    int need = s.need - 1;
    if (s.len & UNI) {            /* any continuation: the stacks kept all take it */
        if (need == 0) return step_cp(g, &s, 0, true);
        g->n_out = 0;
        for (int32_t i = 0; i < s.n; i++) if (!out_push(g, g->pool[s.off + i])) return NK_GM_LIMIT;
        return state_get(g, g->outv, s.n, 0, need, s.len);
    }
    uint32_t acc = (s.acc << 6) | (b & 0x3Fu);
    if (need == 0) {
        if (acc < k_min_cp[s.len] || acc > 0x10FFFF || (acc >= 0xD800 && acc <= 0xDFFF)) return -1;
        return step_cp(g, &s, acc, false);
    }
    return partial_state(g, &s, acc, need, s.len);
}

/* A 256-entry table from the chunks (one malloc per NK_GM_TABS_PER_CHUNK states
 * instead of one per state; chunks are kept over flushes). */
static int32_t *tab_alloc(nk_grammar *g) {
    int64_t chunk = g->tabs_used / NK_GM_TABS_PER_CHUNK, k = g->tabs_used % NK_GM_TABS_PER_CHUNK;
    if (chunk == g->n_chunks) {
        if (g->n_chunks == g->cap_chunks) {
            int32_t nc = g->cap_chunks ? g->cap_chunks * 2 : 16;
            int32_t **ncs = nk_realloc(g->tab_chunks, (size_t)nc * sizeof *ncs);
            if (!ncs) return NULL;
            g->tab_chunks = ncs; g->cap_chunks = nc;
        }
        g->tab_chunks[g->n_chunks] = nk_alloc_array((size_t)NK_GM_TABS_PER_CHUNK * 256, sizeof(int32_t));
        if (!g->tab_chunks[g->n_chunks]) return NULL;
        g->n_chunks++;
    }
    g->tabs_used++;
    return g->tab_chunks[chunk] + k * 256;
}

int32_t nk_gm_step(nk_grammar *g, int32_t si, uint8_t b) {
    gstate *s = &g->states[si];
    if (s->tab) {
        int32_t t = s->tab[b];
        if (t != NK_GM_UNKNOWN) return t;
    } else {
        int32_t *tab = tab_alloc(g);
        if (!tab) { g->oom = true; return NK_GM_LIMIT; }
        for (int i = 0; i < 256; i++) tab[i] = NK_GM_UNKNOWN;
        g->states[si].tab = tab;
    }
    int32_t t = compute_step(g, si, b);
    g->st.transitions++;
    if (t == NK_GM_LIMIT) return t;
    g->states[si].tab[b] = t;
    return t;
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void tables_free(nk_grammar *g) {
    for (int32_t i = 0; i < g->n_states; i++) nk_free(g->states[i].mask);
    g->tabs_used = 0;
    g->n_states = 0; g->n_pool = 0; g->n_masks = 0;
    hash_clear(&g->state_ix);
    hash_clear(&g->node_ix);
    g->n_nodes = 1;          /* node 0: the empty stack */
}

void nk_gm_release(nk_grammar *g) {
    if (g->states) tables_free(g);
    nk_free(g->nodes); nk_free(g->states); nk_free(g->pool);
    nk_free(g->work); nk_free(g->outv); nk_free(g->walk); nk_free(g->scratch_mask);
    for (int32_t i = 0; i < g->n_chunks; i++) nk_free(g->tab_chunks[i]);
    nk_free(g->tab_chunks); nk_free(g->seen_used);
    hash_free(&g->node_ix); hash_free(&g->state_ix); hash_free(&g->seen);
}

static int32_t start_state(nk_grammar *g) {
    g->n_out = 0; g->n_work = 0;
    seen_clear(g);
    const grule *r = &g->rules[g->root];
    for (int32_t a = r->n_alts - 1; a >= 0; a--)
        if (!work_push(g, g->alt_start[r->first_alt + a], 0)) return NK_GM_LIMIT;
    if (!run_closure(g)) return NK_GM_LIMIT;
    return state_from_out(g);
}

nook_status nk_gm_init(nk_grammar *g, nook_error *err) {
    g->cap_nodes = 1024; g->cap_states = 256; g->cap_pool = 4096;
    g->cap_work = 256; g->cap_out = 256;
    g->nodes = nk_alloc_array((size_t)g->cap_nodes, sizeof(gnode));
    g->states = nk_alloc_array((size_t)g->cap_states, sizeof(gstate));
    g->pool = nk_alloc_array(g->cap_pool, sizeof(int32_t));
    g->work = nk_alloc_array(g->cap_work, sizeof(int32_t));
    g->outv = nk_alloc_array(g->cap_out, sizeof(int32_t));
    if (!g->nodes || !g->states || !g->pool || !g->work || !g->outv ||
        !hash_init(&g->node_ix, 2048) || !hash_init(&g->state_ix, 512) || !hash_init(&g->seen, 256))
        return nk_fail(err, NOOK_ENOMEM, "grammar: out of memory");
    g->nodes[0] = (gnode){ -1, -1 };
    g->n_nodes = 1;
    g->start = g->cur = start_state(g);
    if (g->start == NK_GM_LIMIT) return nk_fail(err, NOOK_ERANGE, "grammar: state tables exceed their limit");
    if (g->start < 0) return nk_fail(err, NOOK_EFORMAT, "grammar: the start rule matches nothing");
    return NOOK_OK;
}

/* Re-interns the current configuration after a flush: each node's stack is saved as
 * its list of positions (top first), the tables cleared, and the stacks rebuilt. */
void nk_gm_maybe_flush(nk_grammar *g) {
    if (g->n_states < NK_GM_SOFT_STATES && g->n_nodes < NK_GM_SOFT_NODES && !g->oom) return;
    gstate cs = g->states[g->cur];
    size_t total = 0;
    for (int32_t i = 0; i < cs.n; i++)
        for (int32_t id = g->pool[cs.off + i]; id > 0; id = g->nodes[id].parent) total++;
    int32_t *saved = nk_alloc_array(total + (size_t)cs.n + 1, sizeof(int32_t));
    if (!saved) return;   /* keep the big tables; the next call may fail with ERANGE */
    size_t k = 0;
    for (int32_t i = 0; i < cs.n; i++) {       /* each stack: positions top..bottom, then -1 */
        for (int32_t id = g->pool[cs.off + i]; id > 0; id = g->nodes[id].parent) saved[k++] = g->nodes[id].pos;
        saved[k++] = -1;
    }
    tables_free(g);
    g->oom = false;
    g->st.flushes++;
    g->start = start_state(g);
    /* rebuild: each saved stack bottom-up */
    int32_t *ids = nk_alloc_array((size_t)cs.n + 1, sizeof(int32_t));
    int32_t m = 0;
    size_t b = 0;
    for (int32_t i = 0; ids && i < cs.n; i++) {
        size_t e = b;
        while (saved[e] != -1) e++;
        int32_t id = 0;
        for (size_t j = e; j > b; j--) id = node_get(g, saved[j - 1], id);
        ids[m++] = id;
        b = e + 1;
    }
    if (ids && !g->oom) {
        qsort(ids, (size_t)m, sizeof(int32_t), cmp_i32);
        int32_t u = 0;
        for (int32_t i = 0; i < m; i++) if (!u || ids[i] != ids[u - 1]) ids[u++] = ids[i];
        g->cur = state_get(g, ids, u, cs.acc, cs.need, cs.len);
    } else g->cur = g->start;
    nk_free(ids);
    nk_free(saved);
}

/* ---- public matching ----------------------------------------------------------------------- */

void nk_grammar_reset(nk_grammar *g) { if (g) g->cur = g->start; }

nook_status nk_grammar_accept_bytes(nk_grammar *g, const void *bytes, size_t n, nook_error *err) {
    nk_gm_maybe_flush(g);
    const uint8_t *b = bytes;
    int32_t s = g->cur;
    for (size_t i = 0; i < n; i++) {
        s = nk_gm_step(g, s, b[i]);
        if (s == NK_GM_LIMIT) return nk_fail(err, NOOK_ERANGE, "grammar: state tables exceed their limit");
        if (s < 0) return nk_fail(err, NOOK_EINVAL, "grammar: byte %zu (0x%02x) leaves the language", i, b[i]);
    }
    g->cur = s;
    return NOOK_OK;
}

bool nk_grammar_can_end(const nk_grammar *g) { return g->states[g->cur].can_end; }

bool nk_grammar_done(const nk_grammar *g) {
    const gstate *s = &g->states[g->cur];
    return s->can_end && s->n == 1;
}

nook_status nk_grammar_test(nk_grammar *g, const void *str, size_t n, bool *viable,
                            bool *complete, nook_error *err) {
    nk_gm_maybe_flush(g);
    const uint8_t *b = str;
    int32_t s = g->start;
    *viable = *complete = false;
    for (size_t i = 0; i < n; i++) {
        s = nk_gm_step(g, s, b[i]);
        if (s == NK_GM_LIMIT) return nk_fail(err, NOOK_ERANGE, "grammar: state tables exceed their limit");
        if (s < 0) return NOOK_OK;
    }
    *viable = true;
    *complete = g->states[s].can_end;
    return NOOK_OK;
}

void nk_grammar_get_stats(const nk_grammar *g, nk_grammar_stats *st) {
    *st = g->st;
    st->nodes = g->n_nodes;
    st->states = g->n_states;
}

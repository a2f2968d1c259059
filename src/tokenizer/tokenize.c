/*
 * tokenize.c: text -> token ids, as llama.cpp's llama_tokenize.
 *
 *  1. Special-token partition: the text is cut around occurrences of special tokens
 *     (CONTROL/UNKNOWN only when parse_special, USER_DEFINED always), longest token
 *     first, each token splitting every remaining raw fragment left to right.
 *  2. Raw fragments go to the model's tokenizer: SPM (score-driven merges over UTF-8
 *     characters with byte fallback) or BPE (pre-tokenizer words, lowest-rank merges).
 *
 * All working memory of a call lives in one scratch struct that grows as needed and is
 * freed on return, so concurrent calls on one vocab share nothing mutable.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

typedef struct frag { int32_t tok; size_t off, len; } frag;   /* tok -1: raw text */

typedef struct sym { uint32_t off, n; int32_t prev, next; int32_t sid; } sym;

typedef struct spm_bigram { float score; int32_t left, right; uint32_t size; } spm_bigram;
typedef struct bpe_bigram { int32_t rank, left, right, lsid, rsid; } bpe_bigram;

typedef struct tok_scratch {
    frag *fa, *fb; size_t fa_cap, fb_cap;
    uint8_t *present; size_t present_cap;
    char *esc; size_t esc_cap;
    sym *syms; size_t syms_cap;
    spm_bigram *sh; size_t sh_cap;
    bpe_bigram *bh; size_t bh_cap;
    nk_pretok_scratch pre;
    /* output sink */
    nook_token *out; size_t cap, n;
} tok_scratch;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    uint64_t bytes;
    if (!nk_mul_ok(nc, elem, &bytes)) return false;
    void *q = nk_realloc(*p, (size_t)bytes);
    if (!q) return false;
    *p = q; *cap = nc;
    return true;
}
#define GROW(s, f, capf, need) grow((void **)&(s)->f, &(s)->capf, (need), sizeof *(s)->f)

static inline void put(tok_scratch *s, nook_token t) {
    if (s->n < s->cap) s->out[s->n] = t;
    s->n++;
}

static void scratch_free(tok_scratch *s) {
    nk_free(s->fa); nk_free(s->fb); nk_free(s->present); nk_free(s->esc);
    nk_free(s->syms); nk_free(s->sh); nk_free(s->bh);
    nk_pretok_scratch_free(&s->pre);
}

static inline bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* ---- 1. special-token partition ------------------------------------------------------- */

static bool eligible(const nk_vocab *v, int32_t id, bool parse_special) {
    return parse_special || !(v->attr[id] & (NK_ATTR_CONTROL | NK_ATTR_UNKNOWN));
}

static nook_status partition(const nk_vocab *v, const char *text, size_t len, bool parse_special,
                             tok_scratch *s, frag **frags, size_t *n_frags, nook_error *err) {
    if (!GROW(s, fa, fa_cap, 1)) return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
    size_t nf = 0;
    if (len) s->fa[nf++] = (frag){ -1, 0, len };
    *frags = s->fa; *n_frags = nf;
    if (!len || !v->n_special) return NOOK_OK;

    /* Prefilter: one pass with the trie marks which specials occur at all; only those
     * are searched for below, in llama.cpp's order. A token absent from the text cannot
     * occur in any fragment (fragments are substrings of it). */
    if (!GROW(s, present, present_cap, (size_t)v->n_special)) return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
    memset(s->present, 0, (size_t)v->n_special);
    const uint8_t *t = (const uint8_t *)text;
    int32_t lo = v->n_special, hi = -1;
    for (size_t i = 0; i < len; i++) {
        int32_t node = v->trie_root[t[i]];
        size_t j = i;
        while (node >= 0) {
            int32_t id = v->trie[node].token;
            if (id >= 0 && eligible(v, id, parse_special)) {
                int32_t r = v->special_rank[id];
                s->present[r] = 1;
                if (r < lo) lo = r;
                if (r > hi) hi = r;
            }
            if (++j >= len) break;
            int32_t c = v->trie[node].child;
            while (c >= 0 && v->trie[c].byte != t[j]) c = v->trie[c].sibling;
            node = c;
        }
    }
    for (int32_t r = lo; r <= hi; r++) {
        if (!s->present[r]) continue;
        int32_t id = v->special[r];
        const char *st = nk_strtab_str(&v->strs, id);
        size_t sl = v->strs.len[id];
        uint16_t attr = v->attr[id];
        /* at most two new fragments per occurrence: bound by the text length */
        if (!GROW(s, fb, fb_cap, 2 * nf + 2 * (len / sl + 1) + 1)) return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
        size_t nb = 0;
        for (size_t k = 0; k < nf; k++) {
            frag fr = s->fa[k];
            if (fr.tok >= 0) { s->fb[nb++] = fr; continue; }
            size_t base = fr.off, blen = fr.len;
            for (;;) {
                const char *m = blen >= sl ? memmem(text + base, blen, st, sl) : NULL;
                if (!m) { s->fb[nb++] = (frag){ -1, base, blen }; break; }
                size_t mpos = (size_t)(m - text);
                if (mpos > base) {
                    size_t ll = mpos - base;
                    if (attr & NK_ATTR_LSTRIP) while (ll > 0 && is_ascii_space(text[base + ll - 1])) ll--;
                    if (ll > 0) s->fb[nb++] = (frag){ -1, base, ll };
                }
                s->fb[nb++] = (frag){ id, mpos, sl };
                size_t rest = base + blen - (mpos + sl);
                if (rest == 0) break;
                size_t roff = mpos + sl;
                if (attr & NK_ATTR_RSTRIP) while (rest > 0 && is_ascii_space(text[roff])) { roff++; rest--; }
                if (rest == 0) break;
                base = roff; blen = rest;
            }
        }
        frag *tmp = s->fa; s->fa = s->fb; s->fb = tmp;
        size_t tc = s->fa_cap; s->fa_cap = s->fb_cap; s->fb_cap = tc;
        nf = nb;
    }
    *frags = s->fa; *n_frags = nf;
    return NOOK_OK;
}

/* ---- 2a. SPM -------------------------------------------------------------------------------
 * Max-heap of adjacent pairs whose concatenation is a token, by score; ties go to the
 * leftmost pair. A popped pair is stale if either side has changed since it was pushed
 * (detected by the recorded total size, which only ever grows). */
static inline bool spm_before(const spm_bigram *a, const spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void spm_push(tok_scratch *s, size_t *n, spm_bigram x) {
    spm_bigram *h = s->sh;
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_before(&x, &h[p])) break;
        h[i] = h[p]; i = p;
    }
    h[i] = x;
}

static spm_bigram spm_pop(tok_scratch *s, size_t *n) {
    spm_bigram *h = s->sh, top = h[0], x = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && spm_before(&h[c + 1], &h[c])) c++;
        if (!spm_before(&h[c], &x)) break;
        h[i] = h[c]; i = c;
    }
    if (m) h[i] = x;
    return top;
}

static void spm_try(const nk_vocab *v, tok_scratch *s, size_t *nh, const char *text, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    sym *y = s->syms;
    uint32_t size = y[l].n + y[r].n;
    int32_t id = nk_strtab_find(&v->strs, text + y[l].off, size);
    if (id < 0 || id >= v->n_tokens) return;
    spm_push(s, nh, (spm_bigram){ v->scores[id], l, r, size });
}

static nook_status spm_fragment(const nk_vocab *v, tok_scratch *s, const char *frag_text, size_t flen,
                                bool prefix_space, nook_error *err) {
    /* escape: optional leading space, then every ' ' -> U+2581 */
    size_t need = 3 * (flen + 1) + 1;
    if (!GROW(s, esc, esc_cap, need)) return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
    char *e = s->esc;
    size_t n = 0;
    if (prefix_space) { e[n++] = (char)0xe2; e[n++] = (char)0x96; e[n++] = (char)0x81; }
    for (size_t i = 0; i < flen; i++) {
        if (frag_text[i] == ' ') { e[n++] = (char)0xe2; e[n++] = (char)0x96; e[n++] = (char)0x81; }
        else e[n++] = frag_text[i];
    }
    if (!n) return NOOK_OK;
    if (!GROW(s, syms, syms_cap, n) || !GROW(s, sh, sh_cap, 3 * n + 1))
        return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
    sym *y = s->syms;
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        int k = nk_utf8_len((uint8_t)e[off]);
        if (k <= 0) k = 1;
        if ((size_t)k > n - off) k = (int)(n - off);
        y[ns] = (sym){ (uint32_t)off, (uint32_t)k, ns - 1, -1, -1 };
        off += (size_t)k;
        if (off < n) y[ns].next = ns + 1;
        ns++;
    }
    size_t nh = 0;
    for (int32_t i = 1; i < ns; i++) spm_try(v, s, &nh, e, i - 1, i);
    while (nh) {
        spm_bigram b = spm_pop(s, &nh);
        sym *l = &y[b.left], *r = &y[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) y[r->next].prev = b.left;
        spm_try(v, s, &nh, e, l->prev, b.left);
        spm_try(v, s, &nh, e, b.left, l->next);
    }
    for (int32_t i = 0; i != -1; i = y[i].next) {
        int32_t id = nk_strtab_find(&v->strs, e + y[i].off, y[i].n);
        if (id >= 0 && id < v->n_tokens) { put(s, id); continue; }
        for (uint32_t k = 0; k < y[i].n; k++) {   /* byte fallback */
            nook_token bt = v->byte_tok[(uint8_t)e[y[i].off + k]];
            if (bt < 0) bt = v->unk;
            if (bt >= 0) put(s, bt);
        }
    }
    return NOOK_OK;
}

/* ---- 2b. BPE ----------------------------------------------------------------------------------
 * Symbols carry string-table ids, so a pair lookup is one integer hash probe. A pair is
 * stale when either side is gone or no longer has the string id it was pushed with. */
static inline bool bpe_before(const bpe_bigram *a, const bpe_bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void bpe_push(tok_scratch *s, size_t *n, bpe_bigram x) {
    bpe_bigram *h = s->bh;
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bpe_before(&x, &h[p])) break;
        h[i] = h[p]; i = p;
    }
    h[i] = x;
}

static bpe_bigram bpe_pop(tok_scratch *s, size_t *n) {
    bpe_bigram *h = s->bh, top = h[0], x = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && bpe_before(&h[c + 1], &h[c])) c++;
        if (!bpe_before(&h[c], &x)) break;
        h[i] = h[c]; i = c;
    }
    if (m) h[i] = x;
    return top;
}

static int32_t merge_lookup(const nk_vocab *v, int32_t l, int32_t r, int32_t *res) {
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint64_t i = nk_hash_bytes(&key, 8) & v->merge_mask;
    for (;;) {
        const nk_merge_slot *sl = &v->merges[i];
        if (!sl->key) return -1;
        if (sl->key == key) { *res = sl->result; return sl->rank; }
        i = (i + 1) & v->merge_mask;
    }
}

static void bpe_try(const nk_vocab *v, tok_scratch *s, size_t *nh, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t res;
    int32_t rank = merge_lookup(v, s->syms[l].sid, s->syms[r].sid, &res);
    if (rank < 0) return;
    bpe_push(s, nh, (bpe_bigram){ rank, l, r, s->syms[l].sid, s->syms[r].sid });
}

static nook_status bpe_word(const nk_vocab *v, tok_scratch *s, const uint8_t *w, size_t n, nook_error *err) {
    const nk_byte_map *bm = nk_byte_map_get();
    if (v->ignore_merges) {   /* a word that is already a token is emitted whole */
        if (!GROW(s, esc, esc_cap, 2 * n + 1)) return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(s->esc + m, bm->enc[w[i]], bm->enc_len[w[i]]);
            m += bm->enc_len[w[i]];
        }
        int32_t id = nk_strtab_find(&v->strs, s->esc, m);
        if (id >= 0 && id < v->n_tokens) { put(s, id); return NOOK_OK; }
    }
    if (!GROW(s, syms, syms_cap, n) || !GROW(s, bh, bh_cap, 3 * n + 1))
        return nk_fail(err, NOOK_ENOMEM, "tokenize: out of memory");
    sym *y = s->syms;
    for (size_t i = 0; i < n; i++)
        y[i] = (sym){ (uint32_t)i, 1, (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, v->byte_sid[w[i]] };
    size_t nh = 0;
    for (size_t i = 1; i < n; i++) bpe_try(v, s, &nh, (int32_t)i - 1, (int32_t)i);
    while (nh) {
        bpe_bigram b = bpe_pop(s, &nh);
        sym *l = &y[b.left], *r = &y[b.right];
        if (l->n == 0 || r->n == 0 || l->sid != b.lsid || r->sid != b.rsid || l->next != b.right) continue;
        /* the pair was pushed because this merge exists (bpe_try), and the sid checks
         * above say it still holds the same symbols, so the lookup cannot miss */
        int32_t res = -1;
        if (merge_lookup(v, l->sid, r->sid, &res) < 0) continue;
        l->sid = res;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) y[r->next].prev = b.left;
        bpe_try(v, s, &nh, l->prev, b.left);
        bpe_try(v, s, &nh, b.left, l->next);
    }
    for (int32_t i = 0; i != -1; i = y[i].next) {
        if (y[i].sid >= 0 && y[i].sid < v->n_tokens) { put(s, y[i].sid); continue; }
        /* not a token: llama.cpp looks up each byte of the encoded text as a 1-byte token */
        for (uint32_t k = 0; k < y[i].n; k++) {
            uint8_t raw = w[y[i].off + k];
            for (int j = 0; j < bm->enc_len[raw]; j++) {
                nook_token bt = v->byte1_tok[(uint8_t)bm->enc[raw][j]];
                if (bt >= 0) put(s, bt);
            }
        }
    }
    return NOOK_OK;
}

static nook_status bpe_fragment(const nk_vocab *v, tok_scratch *s, const char *text, size_t len, nook_error *err) {
    size_t *words, nw;
    nook_status st = nk_pretok_split(&v->pretok, text, len, &s->pre, &words, &nw, err);
    if (st) return st;
    for (size_t k = 0; k < nw; k++) {
        st = bpe_word(v, s, (const uint8_t *)text + words[2 * k], words[2 * k + 1] - words[2 * k], err);
        if (st) return st;
    }
    return NOOK_OK;
}

/* ---- driver ------------------------------------------------------------------------------------ */

nook_status nk_vocab_tokenize_impl(const nk_vocab *v, const char *text, size_t len,
                                   bool add_special, bool parse_special,
                                   nook_token *out, size_t cap, size_t *n_out, nook_error *err) {
    tok_scratch s;
    memset(&s, 0, sizeof s);
    s.out = out; s.cap = out ? cap : 0;
    frag *fr = NULL; size_t nf = 0;
    nook_status st = partition(v, text, len, parse_special, &s, &fr, &nf, err);
    if (st) goto done;
    if (add_special && v->add_bos) put(&s, v->bos);
    bool prev_special = true;   /* SPM: the first fragment gets the space prefix */
    for (size_t k = 0; k < nf && !st; k++) {
        if (fr[k].tok >= 0) { put(&s, fr[k].tok); prev_special = true; continue; }
        if (v->type == NK_VOCAB_SPM)
            st = spm_fragment(v, &s, text + fr[k].off, fr[k].len, v->add_space_prefix && prev_special, err);
        else
            st = bpe_fragment(v, &s, text + fr[k].off, fr[k].len, err);
        prev_special = false;
    }
    if (st) goto done;
    if (add_special && v->add_eos) put(&s, v->eos);
    *n_out = s.n;
    if (s.n > cap) st = nk_fail(err, NOOK_ERANGE, "tokenize: %zu tokens do not fit in a buffer of %zu", s.n, cap);
done:
    scratch_free(&s);
    return st;
}

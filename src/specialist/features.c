/*
 * features.c: model-free text features: hashed word n-grams and character n-grams
 * inside words (scikit-learn's "char_wb"), log-count weighted, IDF-weighted and
 * L2-normalised per block against a vocabulary fitted on the training texts.
 *
 * Text goes through utf8proc (NFKC + case folding) so "Ünïcode", "ÜNÏCODE" and the
 * compatibility forms share features. Tokens: maximal runs of letters, digits and
 * marks; every other visible character (punctuation, symbols, emoji) is a token of its
 * own, because "!!!" and "$" carry signal in short texts. Hashes are 64-bit FNV-1a
 * finished with a splitmix step, folded into 2^hash_bits; the top bit of an id marks
 * the character block so the two blocks never collide with each other.
 */
#include "specialist/specialist.h"
#include "specialist/spec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_WORD_CPS 64   /* longer tokens (URLs, base64) give char n-grams of their first 64 */

void nk_feat_cfg_default(nk_feat_cfg *c) {
    c->hash_bits = 20;
    c->word_max = 2;
    c->char_min = 2;
    c->char_max = 5;
    c->idf = true;
}

nook_status nk_feat_cfg_check(const nk_feat_cfg *c, nook_error *err) {
    if (c->hash_bits < 8 || c->hash_bits > 24)
        return nk_fail(err, NOOK_EINVAL, "feature hash bits %u outside 8..24", c->hash_bits);
    if (c->word_max > 4) return nk_fail(err, NOOK_EINVAL, "word n-gram order %u outside 0..4", c->word_max);
    if (c->char_max > 8 || (c->char_max && (c->char_min < 1 || c->char_min > c->char_max)))
        return nk_fail(err, NOOK_EINVAL, "character n-grams %u..%u: need 1 <= min <= max <= 8", c->char_min,
                       c->char_max);
    if (!c->word_max && !c->char_max)
        return nk_fail(err, NOOK_EINVAL, "no text features: word and character n-grams are both off");
    return NOOK_OK;
}

void nk_sparse_free(nk_sparse *s) {
    nk_free(s->id);
    nk_free(s->val);
    memset(s, 0, sizeof *s);
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv_cps(uint64_t h, const int32_t *cp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)cp[i];
        for (int b = 0; b < 4; b++) {
            h ^= (c >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static bool sp_push(nk_sparse *s, uint32_t id) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        uint32_t *ni = nk_realloc(s->id, nc * sizeof *ni);
        if (!ni) return false;
        s->id = ni;
        double *nv = nk_realloc(s->val, nc * sizeof *nv);
        if (!nv) return false;
        s->val = nv;
        s->cap = nc;
    }
    s->id[s->n++] = id;
    return true;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort ids, merge duplicates into log-counts 1 + ln(tf). */
static void sp_finish(nk_sparse *s) {
    if (!s->n) return;
    qsort(s->id, s->n, sizeof *s->id, cmp_u32);
    size_t o = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        while (j < s->n && s->id[j] == s->id[i]) j++;
        s->id[o] = s->id[i];
        s->val[o] = 1.0 + log((double)(j - i));
        o++;
        i = j;
    }
    s->n = o;
}

typedef enum { CP_SPACE, CP_WORD, CP_OTHER } cp_class;

static cp_class classify_cp(int32_t c) {
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CP_WORD;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CS:
        return CP_SPACE;
    default:
        return CP_OTHER;
    }
}

nook_status nk_feat_counts(const nk_feat_cfg *c, const char *text, size_t len, nk_sparse out[2],
                           nook_error *err) {
    out[0].n = out[1].n = 0;
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t nb = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &norm,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    if (nb < 0) {
        long at = nk_utf8_invalid_at(text, len);
        return nk_fail(err, nb == UTF8PROC_ERROR_NOMEM ? NOOK_ENOMEM : NOOK_EFORMAT,
                       "text is not valid UTF-8 (byte %ld): %s", at, utf8proc_errmsg(nb));
    }
    /* decode to code points (utf8proc's output is valid UTF-8) */
    size_t ncp = 0;
    int32_t *cps = nk_alloc_array((size_t)nb + 1, sizeof *cps);
    uint64_t *whash = nk_alloc_array((size_t)nb + 1, sizeof *whash);   /* one per token */
    int32_t *pad = nk_alloc_array(MAX_WORD_CPS + 2, sizeof *pad);
    nook_status st = NOOK_OK;
    if (!cps || !whash || !pad) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
    for (utf8proc_ssize_t p = 0; p < nb;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(norm + p, nb - p, &cp);
        if (k <= 0) { st = nk_fail(err, NOOK_EINTERNAL, "utf8proc produced invalid UTF-8"); goto out; }
        cps[ncp++] = cp;
        p += k;
    }
    const uint32_t mask = (1u << c->hash_bits) - 1;
    size_t ntok = 0;
    for (size_t i = 0; i < ncp;) {
        cp_class k = classify_cp(cps[i]);
        if (k == CP_SPACE) { i++; continue; }
        size_t j = i + 1;
        if (k == CP_WORD)
            while (j < ncp && classify_cp(cps[j]) == CP_WORD) j++;
        /* the token cps[i..j) */
        uint64_t h = fnv_cps(0xcbf29ce484222325ull, cps + i, j - i);
        whash[ntok++] = h;
        if (c->char_max) {
            size_t wl = NK_MIN(j - i, (size_t)MAX_WORD_CPS);
            pad[0] = ' ';
            memcpy(pad + 1, cps + i, wl * sizeof *pad);
            pad[wl + 1] = ' ';
            size_t pl = wl + 2;
            for (uint32_t n = c->char_min; n <= c->char_max; n++) {
                if (n > pl) break;
                for (size_t s = 0; s + n <= pl; s++) {
                    uint64_t g = mix64(fnv_cps(0x84222325cbf29ce4ull ^ n, pad + s, n));
                    if (!sp_push(&out[1], ((uint32_t)g & mask) | 0x80000000u)) {
                        st = nk_fail(err, NOOK_ENOMEM, "out of memory");
                        goto out;
                    }
                }
            }
        }
        i = j;
    }
    for (uint32_t n = 1; n <= c->word_max; n++) {
        for (size_t t = 0; t + n <= ntok; t++) {
            uint64_t g = 0x9e3779b97f4a7c15ull * n;
            for (uint32_t q = 0; q < n; q++) g = mix64(g ^ whash[t + q]);
            if (!sp_push(&out[0], (uint32_t)g & mask)) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
        }
    }
    sp_finish(&out[0]);
    sp_finish(&out[1]);
out:
    free(norm);   /* utf8proc allocates with malloc */
    nk_free(cps);
    nk_free(whash);
    nk_free(pad);
    return st;
}

int nk_feat_blocks(const nk_feat_cfg *c, uint32_t embed_dim, bool text) {
    return (text && c->word_max ? 1 : 0) + (text && c->char_max ? 1 : 0) + (embed_dim ? 1 : 0);
}

long nk_feat_find_id(const uint32_t *ids, size_t n, uint32_t id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == id ? (long)lo : -1;
}

size_t nk_feat_row(const uint32_t *ids, const float *idf, size_t d_text, const nk_sparse cnt[2], double scale,
                   uint32_t *col, double *val) {
    size_t o = 0;
    for (int b = 0; b < 2; b++) {
        size_t start = o;
        double ss = 0;
        for (size_t i = 0; i < cnt[b].n; i++) {
            long j = nk_feat_find_id(ids, d_text, cnt[b].id[i]);
            if (j < 0) continue;   /* not in the vocabulary: no weight to meet */
            double v = cnt[b].val[i] * (idf ? (double)idf[j] : 1.0);
            col[o] = (uint32_t)j;
            val[o] = v;
            ss += v * v;
            o++;
        }
        if (ss > 0) {
            double inv = scale / sqrt(ss);
            for (size_t i = start; i < o; i++) val[i] *= inv;
        }
    }
    return o;
}

size_t nk_feat_embed_row(const float *emb, uint32_t dim, size_t first_col, double scale, uint32_t *col,
                         double *val) {
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) ss += (double)emb[i] * emb[i];
    double inv = ss > 0 ? scale / sqrt(ss) : 0;
    for (uint32_t i = 0; i < dim; i++) {
        col[i] = (uint32_t)(first_col + i);
        val[i] = emb[i] * inv;
    }
    return dim;
}

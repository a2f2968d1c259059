/*
 * test_examples.c: grammars of the shapes in llama.cpp's grammars/ folder
 * (tests/data/grammar: arithmetic, json, list, c) compile, accept and reject
 * sentences as they should, and their token masks equal a brute-force check of
 * every token (prefix + token bytes is viable) on a synthetic vocabulary holding
 * all single bytes, multi-byte characters cut in pieces, and random fragments.
 */
#include "grammar/grammar.h"
#include "nk_test.h"

static char *slurp(const char *path) {
    char *s = NULL;
    size_t n;
    nook_error e;
    if (nk_read_file(path, &s, &n, &e) != NOOK_OK) { fprintf(stderr, "%s\n", e.msg); return NULL; }
    return s;
}

static nk_grammar *load(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/grammar/%s.gbnf", name);
    char *src = slurp(path);
    if (!src) return NULL;
    nk_grammar *g = NULL;
    nook_error e = { 0 };
    if (nk_grammar_compile(src, strlen(src), NULL, &g, &e) != NOOK_OK) fprintf(stderr, "%s: %s\n", name, e.msg);
    nk_free(src);
    return g;
}

static int complete(nk_grammar *g, const char *s) {
    bool v, c;
    nook_error e;
    if (nk_grammar_test(g, s, strlen(s), &v, &c, &e) != NOOK_OK) return -1;
    return c ? 2 : v ? 1 : 0;
}

typedef struct sample { const char *text; int want; } sample;   /* 2 complete, 1 prefix, 0 dead */

static void check_samples(const char *name, const sample *s, size_t n) {
    nk_grammar *g = load(name);
    CHECK_MSG(g != NULL, "%s does not compile", name);
    if (!g) return;
    for (size_t i = 0; i < n; i++) {
        int got = complete(g, s[i].text);
        CHECK_MSG(got == s[i].want, "%s: '%s': got %d want %d", name, s[i].text, got, s[i].want);
    }
    nk_grammar_free(g);
}

/* ---- synthetic vocabulary ---- */

static const char *k_frag[] = {
    "{", "}", "[", "]", "\"", ":", ",", " ", "\n", "\t", "true", "false", "null", "tru", "nu", "0", "1", "12",
    "-", ".", "e", "E", "+", "\\", "\\n", "\\u", "u00", "name", "\": \"", "\":", "\",", "{\"", "}]", "]}", "\"}",
    "int", "float", "char", "return", "while", "if", "else", "for", "(", ")", ";", "=", "==", "<=", "/*", "*/",
    "//", "*", "/", "x", "y", "ab", "a", "- ", "\xc3\xa9", "\xc3", "\xa9", "\xe2\x82", "\xac", "\xe2\x82\xac",
    "\xe2\x80\xa8", "\xf0\x9f", "\x98\x80", "\xc2\x85", "= ", " =", "foo", "bar", "()", "{}", "[]", "\"\"",
};

typedef struct vocab { char piece[300][16]; int len[300]; int n; } vocab;
static vocab V;

static int piece_fn(void *ud, int32_t t, char *buf, size_t cap) {
    (void)ud;
    if (t == V.n) return -1;               /* a control token */
    if ((size_t)V.len[t] <= cap) memcpy(buf, V.piece[t], (size_t)V.len[t]);
    return V.len[t];
}
static bool eog_fn(void *ud, int32_t t) { (void)ud; return t == V.n + 1; }

static void build_vocab(void) {
    V.n = 0;
    for (int b = 1; b < 256; b++) { V.piece[V.n][0] = (char)b; V.len[V.n++] = 1; }
    uint64_t r = 99;
    while (V.n < 298) {
        char *p = V.piece[V.n];
        int l = 0, parts = 1 + (int)(r >> 60) % 2;
        for (int k = 0; k < parts; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            const char *f = k_frag[(r >> 33) % NK_ARRAY_LEN(k_frag)];
            if (l + (int)strlen(f) > 15) break;
            memcpy(p + l, f, strlen(f));
            l += (int)strlen(f);
        }
        V.len[V.n++] = l;
    }
}

/* Walks a sentence; at every token boundary of a greedy tokenization compares the
 * mask with the brute force. */
static void check_masks(const char *name, const char *sentence, const nk_gvocab *gv) {
    nk_grammar *g = load(name), *ref = load(name);
    if (!g || !ref) { CHECK(0); nk_grammar_free(g); nk_grammar_free(ref); return; }
    size_t pos = 0, n = strlen(sentence);
    int steps = 0, bad = 0;
    while (pos <= n) {
        const uint32_t *m;
        int allowed;
        nook_error e = { 0 };
        CHECK(nk_grammar_mask(g, gv, &m, &allowed, &e) == NOOK_OK);
        int cnt = 0;
        for (int t = 0; t < V.n + 2; t++) {
            bool want;
            if (t == V.n) want = false;
            else if (t == V.n + 1) { bool v, c; nk_grammar_test(ref, sentence, pos, &v, &c, &e); want = c; }
            else {
                char buf[4096];
                memcpy(buf, sentence, pos);
                memcpy(buf + pos, V.piece[t], (size_t)V.len[t]);
                bool v, c;
                nk_grammar_test(ref, buf, pos + (size_t)V.len[t], &v, &c, &e);
                want = v;
            }
            bool got = (m[t >> 5] >> (t & 31)) & 1;
            cnt += got;
            if (got != want && bad++ < 5)
                fprintf(stderr, "%s at %zu: token %d '%.*s' mask %d brute %d\n", name, pos, t,
                        t < V.n ? V.len[t] : 0, t < V.n ? V.piece[t] : "", got, want);
        }
        CHECK_EQ_INT(cnt, allowed);
        if (pos == n) break;
        /* next token: the longest piece that matches the sentence here */
        int best = -1;
        for (int t = 0; t < V.n; t++)
            if ((size_t)V.len[t] <= n - pos && memcmp(V.piece[t], sentence + pos, (size_t)V.len[t]) == 0 &&
                (best < 0 || V.len[t] > V.len[best])) best = t;
        CHECK(best >= 0);
        if (best < 0) break;
        CHECK_MSG(nk_grammar_accept_token(g, gv, best, &e) == NOOK_OK, "%s", e.msg);
        pos += (size_t)V.len[best];
        steps++;
    }
    CHECK_MSG(bad == 0, "%s: %d mask mismatches", name, bad);
    nook_error e = { 0 };
    CHECK(nk_grammar_accept_token(g, gv, V.n + 1, &e) == NOOK_OK);   /* end of generation */
    nk_grammar_free(g);
    nk_grammar_free(ref);
}

int main(void) {
    static const sample arith[] = {
        { "1+2=3\n", 2 }, { "(a1 + b) * 2 = x\n", 0 }, { "(a1 +", 1 }, { "(a1 +b)*2= x\n", 2 }, { "1+=2\n", 0 },
        { "x=y\nz*(1)=2\n", 2 }, { "1+2=", 1 }, { "=", 0 },
    };
    check_samples("arithmetic", arith, NK_ARRAY_LEN(arith));
    static const sample list[] = {
        { "- a\n- b c\n", 2 }, { "- \n", 0 }, { "- x", 1 }, { "-x\n", 0 }, { "- \xe2\x80\xa8\n", 0 },
        { "- \xc3\xa9\n", 2 }, { "- \xc2\x85", 0 }, { "- \xc2", 1 },
    };
    check_samples("list", list, NK_ARRAY_LEN(list));
    static const sample json[] = {
        { "{}", 2 }, { "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"]}", 2 }, { "{\"a\":1,}", 0 },
        { "{\"a\": {\"b\": [[], {}]}}\n  ", 2 }, { "[1]", 0 }, { "{\"a\": 01}", 0 }, { "{\"\x01\":1}", 0 },
        { "{\"a\"", 1 }, { "{\"\\x\": 1}", 0 }, { "{ \"k\" : 1 }", 2 }, { "{\"k\"  :1}", 0 },
    };
    check_samples("json", json, NK_ARRAY_LEN(json));
    static const sample c[] = {
        { "int main(){return 0;}", 2 }, { "int f(int x){while(x<10){x = x+1;}return x*2;}", 2 },
        { "int main(){/* c */// d\n}", 2 }, { "int main({}", 0 }, { "float g(){y = h(1, 2);}", 2 },
        { "", 2 }, { "int", 1 },
    };
    check_samples("c", c, NK_ARRAY_LEN(c));

    build_vocab();
    nk_gvocab *gv = NULL;
    nook_error e = { 0 };
    CHECK(nk_gvocab_new(V.n + 2, piece_fn, eog_fn, NULL, &gv, &e) == NOOK_OK);
    if (gv) {
        check_masks("json", "{\"name\": \"\xc3\xa9t\xe2\x82\xac\\n\", \"a\": [1, -2.5e3, true, null, {}], \"b\":{\"c\":[]}}", gv);
        check_masks("c", "int main(int x){while(x<=10){x = foo(x, 2);}/* c\xc3\xa9 */return x*2;}", gv);
        check_masks("arithmetic", "(ab +x)*12 = y\n1=2\n", gv);
        check_masks("list", "- foo \xe2\x82\xac\n- \xf0\x9f\x98\x80\n", gv);
        nk_gvocab_free(gv);
    }
    NK_TEST_DONE();
}

/*
 * test_gbnf.c: the GBNF parser's errors and the matcher against an independent
 * reference. The reference is PCRE2: each grammar below comes with a regular
 * expression written by hand for the same (non-recursive) language. Random strings
 * over the grammar's alphabet must be judged the same way: complete = a full match,
 * viable = PCRE2's hard partial match (the string is a prefix of some match). The
 * alphabets include the bytes of multi-byte characters one at a time, so strings
 * that end (or break) in the middle of a UTF-8 character are tested too.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "grammar/grammar.h"
#include "nk_test.h"

#include <pcre2.h>

static nk_grammar *compile(const char *src, nook_error *e) {
    nk_grammar *g = NULL;
    nook_status st = nk_grammar_compile(src, strlen(src), NULL, &g, e);
    return st == NOOK_OK ? g : NULL;
}

static void expect_error(const char *src, const char *needle) {
    nook_error e = { 0 };
    nk_grammar *g = compile(src, &e);
    CHECK_MSG(g == NULL && strstr(e.msg, needle) != NULL, "grammar %s: got '%s', want '%s'", src,
              g ? "(compiled)" : e.msg, needle);
    nk_grammar_free(g);
}

static void test_errors(void) {
    expect_error("root ::= \"abc", "line 1, column 10: unterminated literal");
    expect_error("root ::= [a-", "line 1, column 10: unterminated character class");
    expect_error("root ::= foo\n", "line 1, column 10: undefined rule 'foo'");
    expect_error("# c\nroot ::= \"a\"\n  x ::= \"b\" ::=\n", "line 3, column 13: expecting newline");
    expect_error("root ::= ( \"a\" \n", "line 2, column 1: expecting ')'");
    expect_error("root ::= \"a\" )\n", "line 1, column 14: unbalanced ')'");
    expect_error("root ::= * \"a\"", "line 1, column 10: '*' without an item");
    expect_error("root ::= \"\\q\"", "line 1, column 11: unknown escape \\q");
    expect_error("root ::= \"a\"{3,1}", "maximum below minimum");
    expect_error("root ::= [z-a]", "range end below its start");
    expect_error("a ::= \"x\"\n", "no rule named 'root'");
    expect_error("root ::= root \"a\" | \"b\"", "left recursion: rule 'root'");
    expect_error("root ::= x\nx ::= y? root\ny ::= \"a\"", "left recursion");
    expect_error("root ::= (\"a\"?)*", "left recursion");
    expect_error("root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' defined twice");
    expect_error("root ::= \"\\xZZ\"", "expecting 2 hex digits");
    expect_error("root ::= \"a\"{2000000}", "repetition count too large");
    expect_error("root ::= \"ab\"{600000}", "more than");
    expect_error("root = \"a\"", "line 1, column 6: expecting '::='");
    expect_error("", "no rules");
    expect_error("root ::= \"\xff\"", "invalid UTF-8");
    char deep[1000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "root ::= ");
    for (int i = 0; i < 300; i++) deep[n++] = '(';
    deep[n] = 0;
    expect_error(deep, "nested deeper than 200");
    /* accepted forms */
    nook_error e = { 0 };
    nk_grammar *g = compile("root ::= ( \"a\"\n  | \"b\" ) # comment\n\n# only a comment\nx ::= \"y\"{2,} [^\\]\\-] .\n", &e);
    CHECK_MSG(g != NULL, "%s", e.msg);
    nk_grammar_free(g);
}

/* ---- property tests against PCRE2 ---- */

typedef struct pcase { const char *gbnf, *regex; const char *alpha[16]; } pcase;

static const pcase k_cases[] = {
    { "root ::= \"a\" [b-d]* (\"x\" | \"yz\")?", "a[b-d]*(?:x|yz)?", { "a", "b", "c", "d", "x", "y", "z", "e" } },
    { "root ::= (\"ab\" | \"a\")+ \"c\"{2,3}", "(?:ab|a)+c{2,3}", { "a", "b", "c" } },
    { "root ::= x{0,3} \"-\" y{2}\nx ::= [0-9] | \"#\"\ny ::= [^0-9\\n-]", "[0-9#]{0,3}-[^0-9\\n-]{2}",
      { "1", "#", "-", "q", "\n", "5" } },
    { "root ::= ([a-c] \" \"?){1,4} end\nend ::= \".\" | \"!\" | \"\"", "(?:[a-c] ?){1,4}(?:\\.|!|)",
      { "a", "c", " ", ".", "!", "d" } },
    { "root ::= \"\xce\xb1\" [\xce\xb2-\xcf\x89]* \"\xe2\x82\xac\"?  [\\U0001F600-\\U0001F64F]?",
      "\xce\xb1[\xce\xb2-\xcf\x89]*(?:\xe2\x82\xac)?[\\x{1F600}-\\x{1F64F}]?",
      { "\xce", "\xb1", "\xb2", "\xcf", "\x89", "\xe2", "\x82", "\xac", "\xf0", "\x9f", "\x98", "\x80", "a" } },
    { "root ::= [^a]+", "[^a]+", { "a", "b", "\xc3", "\xa9", "\xe2", "\x82", "\xac", "\x80" } },
    { "root ::= (\"{\" inner \"}\")?\ninner ::= [a-z]{1,2} (\",\" [a-z]{1,2})*", "(?:\\{[a-z]{1,2}(?:,[a-z]{1,2})*\\})?",
      { "{", "}", "a", "q", ",", " " } },
    { "root ::= .{2} \"x\"", ".{2}x", { "x", "\n", "y", "\xc3", "\xa9" } },
    /* a rule whose name is what a generated one would be called (fuzz_schema finding) */
    { "root ::= x x-1\nx ::= (\"a\")? \"b\"\nx-1 ::= \"c\"", "a?bc", { "a", "b", "c" } },
    /* repeating nothing is nothing (a fuzz_gbnf finding: memcpy of an empty unit) */
    { "root ::= \"a\" (){0,4} \"\"{2} \"b\" \"\"*", "ab", { "a", "b", "c" } },
};

static void test_against_pcre2(void) {
    uint64_t rng = 12345;
    for (size_t c = 0; c < NK_ARRAY_LEN(k_cases); c++) {
        const pcase *pc = &k_cases[c];
        nook_error e = { 0 };
        nk_grammar *g = compile(pc->gbnf, &e);
        CHECK_MSG(g != NULL, "case %zu: %s", c, e.msg);
        if (!g) continue;
        int ecode;
        PCRE2_SIZE eoff;
        char pat[256];
        snprintf(pat, sizeof pat, "^(?:%s)\\z", pc->regex);
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOTALL,
                                       &ecode, &eoff, NULL);
        CHECK_MSG(re != NULL, "case %zu: regex does not compile", c);
        if (!re) { nk_grammar_free(g); continue; }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int na = 0;
        while (na < 16 && pc->alpha[na]) na++;
        int mismatches = 0, n_complete = 0, n_viable = 0;
        for (int it = 0; it < 3000; it++) {
            char s[64];
            size_t n = 0;
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int len = (int)((rng >> 33) % 12);
            for (int k = 0; k < len; k++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                const char *a = pc->alpha[(rng >> 33) % (uint64_t)na];
                memcpy(s + n, a, strlen(a));
                n += strlen(a);
            }
            bool viable, complete;
            CHECK(nk_grammar_test(g, s, n, &viable, &complete, &e) == NOOK_OK);
            /* the reference: a string that is not valid UTF-8 as a whole (other than a
             * truncated last character) can be neither */
            long bad = nk_utf8_invalid_at(s, n);
            bool r_complete = false, r_viable = false;
            if (bad < 0) {
                r_complete = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL) >= 0;
            }
            /* viable: hard partial match, on the longest valid prefix when the tail is an
             * incomplete character, checked by trying every completion byte sequence is
             * not possible with PCRE2, so an incomplete tail is judged by extending it
             * with each continuation that makes it a character in the alphabet */
            if (bad < 0) {
                /* PCRE2 reports no partial match for an empty subject: the empty
                 * string is a prefix of every sentence (these languages are not empty) */
                int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_PARTIAL_HARD, md, NULL);
                r_viable = n == 0 || rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
            } else {
                /* extend with up to 3 alphabet items: viable iff some extension is a
                 * valid-UTF-8 viable prefix */
                for (int x = 0; x < na && !r_viable; x++)
                    for (int y = -1; y < na && !r_viable; y++)
                        for (int z = -1; z < na && !r_viable; z++) {
                            char t[80]; size_t m = n;
                            memcpy(t, s, n);
                            const char *ext[3] = { pc->alpha[x], y >= 0 ? pc->alpha[y] : "", z >= 0 ? pc->alpha[z] : "" };
                            for (int q = 0; q < 3; q++) { memcpy(t + m, ext[q], strlen(ext[q])); m += strlen(ext[q]); }
                            if (nk_utf8_invalid_at(t, m) >= 0) continue;
                            int rc = pcre2_match(re, (PCRE2_SPTR)t, m, 0, PCRE2_PARTIAL_HARD, md, NULL);
                            r_viable = rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
                        }
            }
            if (viable != r_viable || complete != r_complete) {
                if (mismatches++ < 5)
                    fprintf(stderr, "case %zu: '%.*s' (%zu bytes): grammar viable=%d complete=%d, pcre2 %d %d\n",
                            c, (int)n, s, n, viable, complete, r_viable, r_complete);
            }
            n_complete += complete;
            n_viable += viable;
        }
        CHECK_MSG(mismatches == 0, "case %zu: %d mismatches", c, mismatches);
        CHECK_MSG(n_complete > 0 && n_viable > n_complete, "case %zu: the random strings never matched (%d, %d)", c,
                  n_complete, n_viable);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        nk_grammar_free(g);
    }
}

/* accept_bytes refuses a byte and leaves the state as it was */
static void test_incremental(void) {
    nook_error e = { 0 };
    nk_grammar *g = compile("root ::= \"ab\" \"\xc3\xa9\"* \"c\"", &e);
    CHECK(g != NULL);
    if (!g) return;
    CHECK(nk_grammar_accept_bytes(g, "a", 1, &e) == NOOK_OK);
    CHECK(nk_grammar_accept_bytes(g, "bx", 2, &e) == NOOK_EINVAL);
    CHECK(strstr(e.msg, "byte 1 (0x78)") != NULL);
    CHECK(nk_grammar_accept_bytes(g, "b\xc3", 2, &e) == NOOK_OK);   /* half of é */
    CHECK(!nk_grammar_can_end(g));
    CHECK(nk_grammar_accept_bytes(g, "\xa8", 1, &e) == NOOK_EINVAL); /* è: not allowed */
    CHECK(nk_grammar_accept_bytes(g, "\xa9\xc3\xa9", 3, &e) == NOOK_OK);
    CHECK(nk_grammar_accept_bytes(g, "c", 1, &e) == NOOK_OK);
    CHECK(nk_grammar_can_end(g) && nk_grammar_done(g));
    nk_grammar_reset(g);
    CHECK(!nk_grammar_can_end(g));
    nk_grammar_free(g);
}

int main(void) {
    test_errors();
    test_incremental();
    test_against_pcre2();
    NK_TEST_DONE();
}

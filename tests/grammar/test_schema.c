/*
 * test_schema.c: JSON schema -> grammar. Instances accepted and rejected per
 * keyword; integer and number ranges against plain arithmetic on every value of a
 * window; patterns against PCRE2 on random strings; date formats against a
 * calendar; refusals (unsupported keywords by name, $ref loops, size limits).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "grammar/grammar.h"
#include "nk_test.h"

#include <pcre2.h>

static nk_grammar *from_schema(const char *schema, nook_error *e) {
    nk_grammar *g = NULL;
    return nk_grammar_from_schema(schema, strlen(schema), &g, e) == NOOK_OK ? g : NULL;
}

static int judge(nk_grammar *g, const char *s) {
    bool v, c;
    nook_error e;
    nk_grammar_test(g, s, strlen(s), &v, &c, &e);
    return c ? 2 : v ? 1 : 0;
}

typedef struct inst { const char *text; bool ok; } inst;

static void check_schema(const char *schema, const inst *in, size_t n) {
    nook_error e = { 0 };
    nk_grammar *g = from_schema(schema, &e);
    CHECK_MSG(g != NULL, "%s: %s", schema, e.msg);
    if (!g) return;
    for (size_t i = 0; i < n; i++) {
        bool got = judge(g, in[i].text) == 2;
        CHECK_MSG(got == in[i].ok, "%s: '%s' accepted=%d", schema, in[i].text, got);
    }
    nk_grammar_free(g);
}

static void refuse(const char *schema, const char *needle) {
    nook_error e = { 0 };
    nk_grammar *g = from_schema(schema, &e);
    CHECK_MSG(!g && strstr(e.msg, needle), "%.80s: got '%s', want '%s'", schema, g ? "(accepted)" : e.msg, needle);
    nk_grammar_free(g);
}

static void test_keywords(void) {
    static const inst obj[] = {
        { "{\"name\": \"bob\", \"age\": 42}", true }, { "{\"name\":\"bob\",\"age\":121}", false },
        { "{\"name\":\"x\",\"tags\":[\"a\",\"b\"]}", true }, { "{\"age\":3}", false },
        { "{\"name\":\"abcdef\"}", false }, { "{\"name\":\"\\u00e9\\n\"}", true }, { "{\"name\":\"\\ud800\"}", false },
        { "{\"name\":\"x\",\"tags\":[\"a\",\"b\",\"a\",\"b\"]}", false }, { "{\"name\":\"x\",\"other\":1}", false },
        { "{\n  \"name\": \"x\"\n}", true }, { " {\"name\":\"x\"}", false },
    };
    check_schema("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":5},"
                 "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},"
                 "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},\"maxItems\":3}},\"required\":[\"name\"]}",
                 obj, NK_ARRAY_LEN(obj));
    static const inst opt[] = {
        { "{}", true }, { "{\"b\":1}", true }, { "{\"a\":\"x\",\"b\":1}", true }, { "{\"b\":1,\"a\":\"x\"}", false },
        { "{,\"b\":1}", false }, { "{\"zz\":null}", true }, { "{\"a\":\"x\",\"zz\":[1],\"q\":{}}", true },
        { "{\"a\":\"x\",\"a\":\"y\"}", false }, { "{\"zz\":1,\"b\":2}", false }, { "{\"ab\":1}", true }, { "{\"\":1}", true },
    };
    check_schema("{\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"number\"}},\"additionalProperties\":true}",
                 opt, NK_ARRAY_LEN(opt));
    static const inst uni[] = {
        { "null", true }, { "\"x\"", true }, { "1", false }, { "[1, \"a\", true]", true }, { "[]", false },
        { "{\"k\": [null]}", true }, { "-0.5e-3", false },
    };
    check_schema("{\"anyOf\":[{\"type\":[\"string\",\"null\"]},{\"type\":\"array\",\"minItems\":1},"
                 "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"array\"}}]}", uni, NK_ARRAY_LEN(uni));
    static const inst cst[] = {
        { "{\"a\":[1,2.5,\"x\"],\"b\":null}", true }, { "{\"a\": [1,2.5,\"x\"],\"b\":null}", false }, { "true", true },
        { "\"\\\"q\\\\\"", true }, { "false", false },
    };
    check_schema("{\"enum\":[{\"a\":[1,2.5,\"x\"],\"b\":null}, true, \"\\\"q\\\\\"]}", cst, NK_ARRAY_LEN(cst));
    static const inst tup[] = {
        { "[1, \"a\"]", true }, { "[1, \"a\", true, false]", true }, { "[1, \"a\", 3]", false }, { "[1]", false },
        { "[1, \"a\", true, true, true]", false },
    };
    check_schema("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}],"
                 "\"items\":{\"type\":\"boolean\"},\"maxItems\":4}", tup, NK_ARRAY_LEN(tup));
    static const inst ref[] = {
        { "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[]}]}", true }, { "{\"v\":1,\"kids\":[{\"v\":\"x\"}]}", false },
        { "{\"v\":1}", true },
    };
    check_schema("{\"$ref\":\"#/$defs/node\",\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
                 "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\"]}}}", ref, NK_ARRAY_LEN(ref));
    static const inst all[] = { { "{\"a\":1,\"b\":\"x\"}", true }, { "{\"a\":1}", false }, { "{\"b\":\"x\"}", false } };
    check_schema("{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
                 "{\"$ref\":\"#/definitions/B\"}],\"definitions\":{\"B\":{\"properties\":{\"b\":{\"type\":\"string\"}},\"required\":[\"b\"]}}}",
                 all, NK_ARRAY_LEN(all));
    static const inst fmt[] = {
        { "{\"d\":\"2024-02-28\",\"t\":\"23:59:59.123+05:30\",\"dt\":\"1999-12-31T00:00:00Z\",\"u\":\"123e4567-e89b-12d3-a456-426614174000\"}", true },
        { "{\"d\":\"2024-02-30\",\"t\":\"23:59:59Z\",\"dt\":\"1999-12-31T00:00:00Z\",\"u\":\"123e4567-e89b-12d3-a456-426614174000\"}", false },
        { "{\"d\":\"2024-04-31\",\"t\":\"23:59:59Z\",\"dt\":\"1999-12-31T00:00:00Z\",\"u\":\"123e4567-e89b-12d3-a456-426614174000\"}", false },
        { "{\"d\":\"2024-01-31\",\"t\":\"24:00:00Z\",\"dt\":\"1999-12-31T00:00:00Z\",\"u\":\"123e4567-e89b-12d3-a456-426614174000\"}", false },
    };
    check_schema("{\"type\":\"object\",\"properties\":{\"d\":{\"type\":\"string\",\"format\":\"date\"},\"t\":{\"format\":\"time\"},"
                 "\"dt\":{\"type\":\"string\",\"format\":\"date-time\"},\"u\":{\"type\":\"string\",\"format\":\"uuid\"}},"
                 "\"required\":[\"d\",\"t\",\"dt\",\"u\"]}", fmt, NK_ARRAY_LEN(fmt));
    static const inst any[] = { { "[1,{\"a\":null}]", true }, { "\"s\"", true }, { "tru", false } };
    check_schema("{}", any, NK_ARRAY_LEN(any));
    check_schema("true", any, NK_ARRAY_LEN(any));
}

static void test_refusals(void) {
    refuse("{\"type\":\"string\",\"format\":\"email\"}", "format 'email' is not supported");
    refuse("{\"not\":{\"type\":\"string\"}}", "keyword 'not' is not supported");
    refuse("{\"type\":\"array\",\"uniqueItems\":true}", "keyword 'uniqueItems'");
    refuse("{\"type\":\"number\",\"multipleOf\":2}", "keyword 'multipleOf'");
    refuse("{\"type\":\"object\",\"patternProperties\":{}}", "keyword 'patternProperties'");
    refuse("{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}}}",
           "a $ref loop that never consumes input");
    refuse("{\"$ref\":\"#/$defs/missing\"}", "points to nothing");
    refuse("{\"$ref\":\"http://x/y.json\"}", "only references within the document");
    refuse("{\"type\":\"string\",\"pattern\":\"abc\"}", "only anchored patterns");
    refuse("{\"type\":\"string\",\"pattern\":\"^(?=a)b$\"}", "lookaround");
    refuse("{\"type\":\"string\",\"pattern\":\"^(a)\\\\1$\"}", "backreferences");
    refuse("{\"type\":\"number\",\"minimum\":0.5}", "number bounds must be integers");
    refuse("{\"type\":\"number\",\"exclusiveMinimum\":0}", "'exclusiveMinimum' on a number");
    refuse("{\"type\":\"integer\",\"minimum\":1e300}", "bounds beyond 10^15");
    refuse("{\"type\":\"array\",\"maxItems\":1000000}", "above the limit of 100000");
    refuse("{\"type\":\"strin\"}", "type 'strin'");
    refuse("{\"type\":", "not JSON");
    refuse("false", "accepts nothing");
    refuse("{\"required\":[\"x\"]}", "'required' names 'x'");
    refuse("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "is empty");
    /* size: twelve strings of up to 100000 characters each expand past the limit */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"p%d\":{\"type\":\"string\",\"maxLength\":%d}", i ? "," : "", i, 90000 + i);
    snprintf(big + n, sizeof big - n, "}}");
    double t0 = nk_time_ms();
    refuse(big, "expands to more than");
    CHECK_MSG(nk_time_ms() - t0 < 30000, "the size refusal took %.0f ms", nk_time_ms() - t0);
    /* deep nesting */
    char deep[8192];
    n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"type\":\"array\",\"items\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{}");
    for (int i = 0; i < 100; i++) deep[n++] = '}';
    deep[n] = 0;
    refuse(deep, "nested deeper than 64");
}

static uint64_t rng_state = 7;
static int64_t rnd(int64_t lo, int64_t hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (int64_t)((rng_state >> 20) % (uint64_t)(hi - lo + 1));
}

/* Every integer in a window around random bounds: accepted iff inside. */
static void test_int_ranges(void) {
    int bad = 0;
    for (int it = 0; it < 60; it++) {
        int scale = it % 3 == 0 ? 30 : it % 3 == 1 ? 3000 : 300000;
        bool hl = rnd(0, 4) != 0, hh = rnd(0, 4) != 0;
        int64_t lo = rnd(-scale, scale), hi = lo + rnd(0, 2 * scale);
        char schema[200];
        int k = snprintf(schema, sizeof schema, "{\"type\":\"integer\"");
        if (hl) k += snprintf(schema + k, sizeof schema - (size_t)k, ",\"minimum\":%lld", (long long)lo);
        if (hh) k += snprintf(schema + k, sizeof schema - (size_t)k, ",\"exclusiveMaximum\":%lld", (long long)hi + 1);
        snprintf(schema + k, sizeof schema - (size_t)k, "}");
        nook_error e = { 0 };
        nk_grammar *g = from_schema(schema, &e);
        CHECK_MSG(g != NULL, "%s: %s", schema, e.msg);
        if (!g) continue;
        int64_t a = lo - 2 * scale - 5, z = hi + 2 * scale + 5;
        int64_t step = (z - a) / 2000 + 1;
        for (int64_t x = a; x <= z; x += (x > lo - 20 && x < lo + 20) || (x > hi - 20 && x < hi + 20) ? 1 : step) {
            char s[32];
            snprintf(s, sizeof s, "%lld", (long long)x);
            bool want = (!hl || x >= lo) && (!hh || x <= hi);
            bool got = judge(g, s) == 2;
            if (got != want && bad++ < 10) fprintf(stderr, "%s: %s accepted=%d\n", schema, s, got);
        }
        CHECK_MSG(judge(g, "01") != 2 && judge(g, "1.0") != 2, "%s: %d %d", schema, judge(g, "01"), judge(g, "1.0"));
        nk_grammar_free(g);
    }
    CHECK_MSG(bad == 0, "%d integer range mismatches", bad);
    /* numbers with integer bounds: fractions near the ends */
    nook_error e = { 0 };
    nk_grammar *g = from_schema("{\"type\":\"number\",\"minimum\":-3,\"maximum\":12}", &e);
    CHECK(g != NULL);
    if (g) {
        static const inst num[] = {
            { "-3", true }, { "-3.0", true }, { "-3.01", false }, { "-2.999", true }, { "12", true }, { "12.000", true },
            { "12.001", false }, { "11.9999", true }, { "0.5", true }, { "-0.5", true }, { "13", false }, { "-4", false },
            { "1e1", false },
        };
        for (size_t i = 0; i < NK_ARRAY_LEN(num); i++)
            CHECK_MSG((judge(g, num[i].text) == 2) == num[i].ok, "number range: %s", num[i].text);
        nk_grammar_free(g);
    }
}

/* Patterns: a JSON string "s" is accepted iff PCRE2 matches s fully. */
static void test_patterns(void) {
    static const struct { const char *pat, *alpha; } P[] = {
        { "^[a-c]{2,3}-\\\\d+$", "abcd-19x" },
        { "^(foo|ba[rz])*(\\\\.x)?$", "fobarz.x" },
        { "^[^a-c\\\\s]+$", "abcdz \tq" },
        { "^\\\\w\\\\W?[0-9A-F]{0,2}$", "aZ_0F-!G" },
        { "^(?:ab?)+c??$", "abcd" },
        { "^.{1,3}$", "a\n.b" },   /* \r: the grammar also keeps ECMA-262's exclusions */
    };
    int bad = 0;
    for (size_t c = 0; c < NK_ARRAY_LEN(P); c++) {
        char schema[200];
        snprintf(schema, sizeof schema, "{\"type\":\"string\",\"pattern\":\"%s\"}", P[c].pat);
        nook_error e = { 0 };
        nk_grammar *g = from_schema(schema, &e);
        CHECK_MSG(g != NULL, "%s: %s", schema, e.msg);
        /* the regex itself, unescaped from JSON */
        char re[100];
        size_t k = 0;
        for (const char *p = P[c].pat; *p; p++) { if (p[0] == '\\' && p[1] == '\\') p++; re[k++] = *p; }
        re[k] = 0;
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, k, PCRE2_UTF, &ec, &eo, NULL);
        CHECK(code != NULL);
        if (!g || !code) { nk_grammar_free(g); pcre2_code_free(code); continue; }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
        int hits = 0;
        size_t na = strlen(P[c].alpha);
        for (int it = 0; it < 2000; it++) {
            char s[16], js[40];
            int len = (int)rnd(0, 6);
            for (int i = 0; i < len; i++) s[i] = P[c].alpha[rnd(0, (int64_t)na - 1)];
            s[len] = 0;
            /* JSON-encode s */
            size_t j = 0;
            js[j++] = '"';
            for (int i = 0; i < len; i++) {
                if (s[i] == '\n') { js[j++] = '\\'; js[j++] = 'n'; }
                else if (s[i] == '\r') { js[j++] = '\\'; js[j++] = 'r'; }
                else if (s[i] == '\t') { js[j++] = '\\'; js[j++] = 't'; }
                else js[j++] = s[i];
            }
            js[j++] = '"';
            js[j] = 0;
            bool want = pcre2_match(code, (PCRE2_SPTR)s, (size_t)len, 0, 0, md, NULL) >= 0 &&
                        pcre2_get_ovector_pointer(md)[1] == (PCRE2_SIZE)len;
            bool got = judge(g, js) == 2;
            hits += want;
            if (got != want && bad++ < 10) fprintf(stderr, "pattern %s: %s grammar %d pcre2 %d\n", re, js, got, want);
        }
        CHECK_MSG(hits > 0, "pattern %s never matched", re);
        pcre2_match_data_free(md);
        pcre2_code_free(code);
        nk_grammar_free(g);
    }
    CHECK_MSG(bad == 0, "%d pattern mismatches", bad);
}

/* Every date string of a range of years: the grammar accepts only real dates. */
static void test_dates(void) {
    nook_error e = { 0 };
    nk_grammar *g = from_schema("{\"type\":\"string\",\"format\":\"date\"}", &e);
    CHECK(g != NULL);
    if (!g) return;
    static const int mdays[13] = { 0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int bad = 0, ok = 0;
    for (int y = 1999; y <= 2001; y++)
        for (int m = 0; m <= 13; m++)
            for (int d = 0; d <= 32; d++) {
                char s[32];
                snprintf(s, sizeof s, "\"%04d-%02d-%02d\"", y, m, d);
                bool got = judge(g, s) == 2, real = m >= 1 && m <= 12 && d >= 1 && d <= mdays[m];
                ok += got;
                if (got && !real && bad++ < 5) fprintf(stderr, "date %s accepted\n", s);
                if (!got && real && (m != 2 || d != 29)) { if (bad++ < 5) fprintf(stderr, "date %s refused\n", s); }
            }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(ok, 3 * 365);
    nk_grammar_free(g);
}

int main(void) {
    test_keywords();
    test_refusals();
    test_int_ranges();
    test_patterns();
    test_dates();
    NK_TEST_DONE();
}

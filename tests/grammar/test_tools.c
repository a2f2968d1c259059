/*
 * test_tools.c: tool calls. The family of each real template in tests/data/chat;
 * parsing model output into calls per family (and the fallback); the grammar that
 * forces a call compiles, accepts well-formed calls only, and every walk through it
 * (random tokens among those its mask allows, on a synthetic vocabulary) ends in
 * text that nook_tool_parse turns into one call whose arguments satisfy the tool.
 */
#include "grammar/grammar.h"
#include "nook.h"
#include "nk_test.h"

#include <jansson.h>

static char *tmpl(const char *name) {
    char path[200], *s = NULL;
    size_t n;
    nook_error e;
    snprintf(path, sizeof path, "tests/data/chat/templates/%s.jinja", name);
    if (nk_read_file(path, &s, &n, &e) != NOOK_OK) return NULL;
    return s;
}

static void expect_calls(const char *t, const char *text, const char *want_calls, const char *want_content) {
    char *content = NULL, *calls = NULL;
    nook_error e = { 0 };
    CHECK(nook_tool_parse(t, text, strlen(text), &content, &calls, &e) == NOOK_OK);
    if (want_calls) {
        json_t *got = calls ? json_loads(calls, 0, NULL) : NULL, *want = json_loads(want_calls, 0, NULL);
        /* ids are checked for shape only */
        size_t i;
        json_t *c;
        json_array_foreach(got, i, c) {
            const char *id = json_string_value(json_object_get(c, "id"));
            CHECK(id && strncmp(id, "call_", 5) == 0 && strlen(id) == 13);
            json_object_del(c, "id");
        }
        CHECK_MSG(got && want && json_equal(got, want), "%.60s: calls %s, want %s", text, calls ? calls : "(none)", want_calls);
        json_decref(got); json_decref(want);
    } else CHECK_MSG(calls == NULL, "%.60s: unexpected calls %s", text, calls);
    CHECK_MSG(content && strcmp(content, want_content) == 0, "%.60s: content '%s', want '%s'", text, content ? content : "(null)", want_content);
    nk_free(content); nk_free(calls);
}

static const char *k_tools =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},"
    "\"unit\":{\"enum\":[\"C\",\"F\"]}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"a\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99},\"b\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99}},"
    "\"required\":[\"a\",\"b\"]}}}]";

/* Synthetic vocabulary: all bytes plus fragments of calls. */
static const char *k_frag[] = { "<tool_call>", "<tool", "_call>", "</tool_call>", "\n", "{\"", "\"name\"", "\": \"",
    "get_weather", "add", "\"arguments\"", "\"parameters\"", "city", "Paris", "\"}", "}}", ": ", ", ", "\"a\"", "\"b\"",
    "12", "7", "C\"", "unit", "[", "]", " " };
#define NFRAG ((int)(sizeof k_frag / sizeof *k_frag))
static int piece(void *ud, int32_t t, char *buf, size_t cap) {
    (void)ud;
    if (t < 255) { buf[0] = (char)(t + 1); return 1; }
    const char *f = k_frag[t - 255];
    size_t n = strlen(f);
    if (n <= cap) memcpy(buf, f, n);
    return (int)n;
}
static bool eog(void *ud, int32_t t) { (void)ud; return t == 255 + NFRAG; }

static void walk_forced(const char *tname, const char *choice) {
    char *t = tmpl(tname), *g = NULL;
    nook_error e = { 0 };
    CHECK_MSG(nook_tool_grammar(t, k_tools, choice, &g, &e) == NOOK_OK, "%s: %s", tname, e.msg);
    nk_grammar *gr = NULL;
    CHECK_MSG(g && nk_grammar_compile(g, strlen(g), NULL, &gr, &e) == NOOK_OK, "%s: %s\n%s", tname, e.msg, g ? g : "");
    nk_gvocab *v = NULL;
    CHECK(nk_gvocab_new(256 + NFRAG, piece, eog, NULL, &v, &e) == NOOK_OK);
    uint64_t r = 5;
    for (int run = 0; gr && v && run < 40; run++) {
        nk_grammar_reset(gr);
        char out[4096];
        size_t n = 0;
        bool ended = false;
        for (int step = 0; step < 400 && !ended; step++) {
            const uint32_t *m;
            int allowed;
            if (nk_grammar_mask(gr, v, &m, &allowed, &e) != NOOK_OK || allowed == 0) break;
            /* prefer fragments (a model would), else any allowed token */
            int pick = -1;
            for (int tries = 0; tries < 64 && pick < 0; tries++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                int tok = tries < 48 ? 255 + (int)((r >> 33) % (NFRAG + 1)) : (int)((r >> 33) % (256 + NFRAG));
                if (m[tok >> 5] >> (tok & 31) & 1) pick = tok;
            }
            if (pick < 0) for (int tok = 0; tok < 256 + NFRAG && pick < 0; tok++) if (m[tok >> 5] >> (tok & 31) & 1) pick = tok;
            CHECK(nk_grammar_accept_token(gr, v, pick, &e) == NOOK_OK);
            if (pick == 255 + NFRAG) { ended = true; break; }
            int len = piece(NULL, pick, out + n, sizeof out - n);
            n += (size_t)len;
            if (n > sizeof out - 64) break;
        }
        if (!ended) continue;     /* a long walk: the grammar allows long strings */
        out[n] = 0;
        char *content = NULL, *calls = NULL;
        CHECK(nook_tool_parse(t, out, n, &content, &calls, &e) == NOOK_OK);
        json_t *c = calls ? json_loads(calls, 0, NULL) : NULL;
        CHECK_MSG(json_array_size(c) == 1, "%s: '%s' parsed to %s", tname, out, calls ? calls : "nothing");
        json_t *fn = json_object_get(json_array_get(c, 0), "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *args = json_object_get(fn, "arguments");
        if (choice && strcmp(choice, "required") != 0) CHECK(name && strcmp(name, choice) == 0);
        if (name && strcmp(name, "add") == 0) {
            json_t *a = json_object_get(args, "a"), *b = json_object_get(args, "b");
            CHECK(json_is_integer(a) && json_is_integer(b) && json_integer_value(a) <= 99 && json_integer_value(b) >= 0);
        } else if (name) {
            CHECK(strcmp(name, "get_weather") == 0 && json_is_string(json_object_get(args, "city")));
        }
        CHECK_MSG(content && content[0] == 0, "%s: content '%s'", tname, content);
        json_decref(c);
        nk_free(content); nk_free(calls);
    }
    nk_gvocab_free(v);
    nk_grammar_free(gr);
    nk_free(g);
    nk_free(t);
}

int main(void) {
    char *qwen = tmpl("qwen3"), *llama = tmpl("llama3_2"), *mistral = tmpl("mistral_v03"), *gemma = tmpl("gemma3");
    if (!qwen || !llama || !mistral || !gemma) nk_test_skip("templates in tests/data/chat missing");
    CHECK(strcmp(nook_tool_family(qwen), "hermes") == 0);
    CHECK(strcmp(nook_tool_family(llama), "llama3") == 0);
    CHECK(strcmp(nook_tool_family(mistral), "mistral") == 0);
    CHECK(strcmp(nook_tool_family(gemma), "generic") == 0);
    CHECK(strcmp(nook_tool_family(NULL), "generic") == 0);

    expect_calls(qwen, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
                       "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}},"
                 "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2}}}]", "Let me check.");
    expect_calls(qwen, "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": [1]}\"}\n</tool_call>",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":[1]}}}]", "");
    expect_calls(qwen, "<tool_call>\n{\"name\": \"f\", \"argu", NULL, "<tool_call>\n{\"name\": \"f\", \"argu");
    expect_calls(qwen, "It is sunny.", NULL, "It is sunny.");
    expect_calls(llama, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}; {\"name\": \"add\", \"parameters\": {\"a\": 3, \"b\": 4}}",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}},"
                 "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":{\"a\":3,\"b\":4}}}]", "");
    expect_calls(llama, "{\"name\": \"add\", \"parameters\": {\"a\": 3, \"b\": 4}}",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":{\"a\":3,\"b\":4}}}]", "");
    expect_calls(llama, "{\"answer\": 4}", NULL, "{\"answer\": 4}");
    expect_calls(mistral, "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 3, \"b\": 4}}, {\"name\": \"g\", \"arguments\": {}}]",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":{\"a\":3,\"b\":4}}},"
                 "{\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":{}}}]", "");
    expect_calls(mistral, " [{\"name\": \"g\", \"arguments\": {}}]",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":{}}}]", "");
    expect_calls(gemma, "Sure:\n```json\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 1}}\n```\n",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":1}}}]", "Sure:");
    expect_calls(gemma, "[1, 2]", NULL, "[1, 2]");
    /* ids: stable for the same text, different per call */
    char *c1 = NULL, *c2 = NULL, *k1 = NULL, *k2 = NULL;
    nook_error e = { 0 };
    const char *two = "{\"name\": \"a\", \"arguments\": {}}";
    nook_tool_parse(gemma, two, strlen(two), &k1, &c1, &e);
    nook_tool_parse(gemma, two, strlen(two), &k2, &c2, &e);
    CHECK(c1 && c2 && strcmp(c1, c2) == 0);
    nk_free(c1); nk_free(c2); nk_free(k1); nk_free(k2);

    /* forcing grammars */
    char *g = NULL;
    CHECK(nook_tool_grammar(qwen, k_tools, "nope", &g, &e) == NOOK_ENOTFOUND && strstr(e.msg, "'nope'"));
    CHECK(nook_tool_grammar(qwen, "[]", "required", &g, &e) == NOOK_EINVAL);
    CHECK(nook_tool_grammar(qwen, "{", "required", &g, &e) == NOOK_EINVAL);
    CHECK(nook_tool_grammar(qwen, "[{\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"not\":{}}}}]", "required", &g, &e)
          == NOOK_EUNSUPPORTED && strstr(e.msg, "'not'"));
    CHECK(nook_tool_grammar(qwen, k_tools, "required", &g, &e) == NOOK_OK);
    nk_grammar *gr = NULL;
    CHECK(g && nk_grammar_compile(g, strlen(g), NULL, &gr, &e) == NOOK_OK);
    if (gr) {
        bool vi, co;
        const char *ok = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 99}}\n</tool_call>";
        const char *bad = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 100}}\n</tool_call>";
        nk_grammar_test(gr, ok, strlen(ok), &vi, &co, &e);
        CHECK(co);
        nk_grammar_test(gr, bad, strlen(bad), &vi, &co, &e);
        CHECK(!vi);
        nk_grammar_free(gr);
    }
    nk_free(g);
    walk_forced("qwen3", "required");
    walk_forced("llama3_2", "add");
    walk_forced("mistral_v03", "required");
    walk_forced("gemma3", "get_weather");
    nk_free(qwen); nk_free(llama); nk_free(mistral); nk_free(gemma);
    NK_TEST_DONE();
}

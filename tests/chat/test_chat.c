/*
 * test_chat.c: the chat API around the interpreter: hostile templates hit limits cleanly,
 * unsupported constructs are named, render_or_fallback falls back (and only when it should),
 * family detection, built-in formats, strftime_now from a caller time, the think splitter.
 */
#include "nk_test.h"
#include "chat/chat.h"

#include <jansson.h>

static json_t *conv(void) {
    return json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]",
                     "role", "system", "content", "Be brief.",
                     "role", "user", "content", "Hi",
                     "role", "assistant", "content", " Hello! ",
                     "role", "user", "content", "Bye");
}

static nook_status render(const char *t, const nk_chat_options *o, char **out, nook_error *err) {
    json_t *m = conv();
    json_t *kw = json_pack("{s:b}", "add_generation_prompt", 1);
    nk_chat_template *tp = NULL;
    nook_status rc = nk_chat_compile(t, strlen(t), o, &tp, err);
    *out = NULL;
    if (rc == NOOK_OK) rc = nk_chat_render_compiled(tp, m, NULL, kw, o, out, NULL, err);
    nk_chat_template_free(tp);
    json_decref(m);
    json_decref(kw);
    return rc;
}

static void test_limits(void) {
    char *out;
    nook_error err;
    nk_chat_options o = { .limits = { .max_steps = 200000, .max_output = 1 << 16 } };
    /* a loop that never ends in practice: 100k x 100k */
    nook_status rc = render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", &o, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    CHECK(strstr(err.msg, "step limit") != NULL);
    /* output bomb */
    rc = render("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}", &o, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    CHECK(strstr(err.msg, "exceeds") != NULL);
    /* string doubling: memory or output limit, never a crash */
    rc = render("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
                &o, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    rc = render("{{ 'x' * 100000000000 }}", &o, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    /* unbounded macro recursion */
    rc = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    CHECK(strstr(err.msg, "recursion") != NULL);
    /* deep nesting in the parser: (((((...))))) and nested ifs */
    size_t n = 20000;
    char *deep = malloc(n * 2 + 16);
    strcpy(deep, "{{ ");
    for (size_t i = 0; i < n; i++) strcat(deep + i, "(");
    size_t len = strlen(deep);
    deep[len++] = '1';
    for (size_t i = 0; i < n; i++) deep[len++] = ')';
    strcpy(deep + len, " }}");
    rc = render(deep, NULL, &out, &err);
    CHECK(rc == NOOK_ERANGE);
    free(deep);
    char *ifs = malloc(20000 * 16 + 64);
    ifs[0] = 0;
    char *p = ifs;
    for (int i = 0; i < 20000; i++) p += sprintf(p, "{%% if 1 %%}");
    rc = render(ifs, NULL, &out, &err);
    CHECK(rc == NOOK_ERANGE || rc == NOOK_EFORMAT);
    free(ifs);
    char *nots = malloc(4 * 50000 + 16);
    p = nots + sprintf(nots, "{{ ");
    for (int i = 0; i < 50000; i++) p += sprintf(p, "not ");
    sprintf(p, "1 }}");
    rc = render(nots, NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    free(nots);
    /* memory limit */
    nk_chat_options small = { .limits = { .max_memory = 1 << 20 } };
    rc = render("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}",
                &small, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    CHECK(strstr(err.msg, "memory") != NULL);
    /* a list nested 100000 deep: printing, comparing and tojson must not overflow the stack */
    const char *nest = "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}";
    const char *uses[] = { "{{ ns.l }}", "{{ ns.l == ns.l }}{{ ns.l == [ns.l] }}", "{{ ns.l < [ns.l] }}", "{{ ns.l|tojson }}",
                           "{{ [ns.l]|sort }}{{ ns.l in [ns.l] }}" };
    for (size_t i = 0; i < NK_ARRAY_LEN(uses); i++) {
        char t[512];
        snprintf(t, sizeof t, "%s%s", nest, uses[i]);
        rc = render(t, NULL, &out, &err);
        CHECK_MSG(rc == NOOK_OK || rc == NOOK_ERANGE, "%s: %d %s", uses[i], rc, err.msg);
        nk_free(out);
    }
    rc = render("{{ (range(100000)|list + range(100000)|list)|unique|length }}", &o, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
    /* range beyond jinja2's sandbox limit */
    rc = render("{{ range(100001)|length }}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_ERANGE);
}

static void test_errors(void) {
    char *out;
    nook_error err;
    nook_status rc = render("hello {% include 'other.jinja' %}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_EUNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "unsupported construct 'include' at line 1") != NULL, "%s", err.msg);
    rc = render("a\nb\n{{ x | frobnicate }}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_EUNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "unsupported construct 'filter frobnicate' at line 3") != NULL, "%s", err.msg);
    rc = render("{% if x %}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_EFORMAT);
    rc = render("{{ raise_exception('No system role, please') }}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_EINVAL);
    CHECK(strstr(err.msg, "No system role, please") != NULL);
    rc = render("{{ messages[0].content + 1 }}", NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_EINVAL);
    /* API misuse */
    json_t *notarr = json_object();
    rc = nk_chat_render("x", notarr, NULL, NULL, &out, &err);
    CHECK_EQ_INT(rc, NOOK_EINVAL);
    json_decref(notarr);
    /* templates are reusable: compile once, render many (threads may share one) */
    nk_chat_template *t;
    const char *src = "{% for m in messages %}{{ m.role[0] }}{% endfor %}";
    CHECK_EQ_INT(nk_chat_compile(src, strlen(src), NULL, &t, &err), NOOK_OK);
    json_t *m = conv();
    for (int i = 0; i < 3; i++) {
        size_t len;
        CHECK_EQ_INT(nk_chat_render_compiled(t, m, NULL, NULL, NULL, &out, &len, &err), NOOK_OK);
        CHECK_STR(out, "suau");
        CHECK_EQ_INT(len, 4);
        nk_free(out);
    }
    json_decref(m);
    nk_chat_template_free(t);
}

static void test_time(void) {
    nk_chat_options o = { .now = { true, 2024, 7, 4, 15, 5, 9 } };
    char *out;
    nook_error err;
    CHECK_EQ_INT(render("{{ strftime_now('%d %b %Y|%A %B %-d %H:%M:%S %I%p %j %y %%') }}", &o, &out, &err), NOOK_OK);
    CHECK_STR(out, "04 Jul 2024|Thursday July 4 15:05:09 03PM 186 24 %");
    nk_free(out);
    CHECK_EQ_INT(render("{{ strftime_now('%Y-%m-%d') }}", NULL, &out, &err), NOOK_OK);   /* local clock */
    CHECK(out && strlen(out) == 10 && out[4] == '-');
    nk_free(out);
}

static void test_fallback_and_builtins(void) {
    json_t *m = conv();
    json_t *kw = json_pack("{s:b}", "add_generation_prompt", 1);
    char *out, warn[300];
    nook_error err;
    /* a template outside the subset falls back to its detected family, with a warning */
    const char *t = "{% import 'macros' as m %}<|im_start|>{{ m.x() }}";
    CHECK_EQ_INT(nk_chat_render_or_fallback(t, NULL, m, NULL, kw, NULL, &out, warn, sizeof warn, &err), NOOK_OK);
    CHECK_STR(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                   "<|im_start|>assistant\n Hello! <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
    CHECK_MSG(strstr(warn, "unsupported construct 'import'") && strstr(warn, "'chatml'"), "%s", warn);
    nk_free(out);
    /* no template: built-in of the named family */
    CHECK_EQ_INT(nk_chat_render_or_fallback(NULL, "llama3", m, NULL, kw, NULL, &out, warn, sizeof warn, &err), NOOK_OK);
    CHECK_STR(out, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                   "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user"
                   "<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(strstr(warn, "no chat template") != NULL);
    nk_free(out);
    /* a template that raises on purpose is not papered over */
    CHECK_EQ_INT(nk_chat_render_or_fallback("{{ raise_exception('nope') }}", "chatml", m, NULL, kw, NULL, &out, warn,
                                            sizeof warn, &err), NOOK_EINVAL);
    CHECK(out == NULL);
    /* a good template renders with no warning */
    CHECK_EQ_INT(nk_chat_render_or_fallback("{{ messages|length }}", NULL, m, NULL, kw, NULL, &out, warn, sizeof warn, &err), NOOK_OK);
    CHECK_STR(out, "4");
    CHECK_STR(warn, "");
    nk_free(out);

    struct { const char *fam, *want; } b[] = {
        { "gemma", "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                   "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n" },
        { "phi3", "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n Hello! <|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n" },
        { "mistral", "[INST] Be brief.\n\nHi[/INST] Hello!</s>[INST] Bye[/INST]" },
        { "llama2", "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>[INST] Bye [/INST]" },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(b); i++) {
        const char *src = nk_chat_builtin(b[i].fam);
        CHECK(src != NULL);
        if (!src) continue;
        CHECK_EQ_INT(nk_chat_render(src, m, NULL, kw, &out, &err), NOOK_OK);
        CHECK_MSG(out && !strcmp(out, b[i].want), "%s: [%s]", b[i].fam, out ? out : err.msg);
        nk_free(out);
    }
    CHECK(nk_chat_builtin("nonesuch") == NULL);

    /* detection on the real templates */
    struct { const char *file, *fam; } d[] = {
        { "tests/data/chat/templates/qwen3.jinja", "chatml" },
        { "tests/data/chat/templates/llama3.jinja", "llama3" },
        { "tests/data/chat/templates/llama3_2.jinja", "llama3" },
        { "tests/data/chat/templates/gemma3.jinja", "gemma" },
        { "tests/data/chat/templates/mistral_v03.jinja", "mistral" },
        { "tests/data/chat/templates/phi3_mini.jinja", "phi3" },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(d); i++) {
        char *src;
        size_t len;
        CHECK_EQ_INT(nk_read_file(d[i].file, &src, &len, &err), NOOK_OK);
        const char *fam = nk_chat_detect_family(src);
        CHECK_MSG(fam && !strcmp(fam, d[i].fam), "%s: %s", d[i].file, fam ? fam : "NULL");
        nk_free(src);
    }
    CHECK(nk_chat_detect_family("{{ messages }}") == NULL);
    json_decref(m);
    json_decref(kw);
}

typedef struct { char think[256], content[256]; } split_out;
static void on_think(const char *s, size_t n, void *ud) { strncat(((split_out *)ud)->think, s, n); }
static void on_content(const char *s, size_t n, void *ud) { strncat(((split_out *)ud)->content, s, n); }

/* Feed text in pieces of every size from 1 to its length: the result must not depend on it. */
static void check_split(const char *text, bool in_think, const char *think, const char *content) {
    size_t len = strlen(text);
    for (size_t step = 1; step <= len; step++) {
        split_out o = {{0}, {0}};
        nk_think_splitter s;
        nk_think_init(&s, in_think);
        for (size_t i = 0; i < len; i += step)
            nk_think_feed(&s, text + i, NK_MIN(step, len - i), on_think, on_content, &o);
        nk_think_finish(&s, on_think, on_content, &o);
        CHECK_MSG(!strcmp(o.think, think) && !strcmp(o.content, content),
                  "split(%s, step %zu): think [%s] content [%s]", text, step, o.think, o.content);
    }
}

static void test_think(void) {
    check_split("<think>\nLet me see.\n2+2=4.\n</think>\n\nIt is 4.", false, "Let me see.\n2+2=4.", "It is 4.");
    check_split("No thinking here <think>x</think>", false, "", "No thinking here <think>x</think>");
    check_split("\nreasoning < not a tag </thin k>\n</think>\n\nanswer\n", true, "reasoning < not a tag </thin k>", "answer\n");
    check_split("<think>\n\n</think>\n\nEmpty.", false, "", "Empty.");
    check_split("<thinker>", false, "", "<thinker>");
    check_split("<think>unterminated </thi", false, "unterminated </thi", "");
    check_split("<thi", false, "", "<thi");
    check_split("", false, "", "");
}

int main(void) {
    test_limits();
    test_errors();
    test_time();
    test_fallback_and_builtins();
    test_think();
    NK_TEST_DONE();
}

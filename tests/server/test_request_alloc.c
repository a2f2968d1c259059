/*
 * test_request_alloc.c: the server's request path under allocation failure (issue 16,
 * SQLite's discipline, as tests/model/model_alloc_fail.c for the engine). Every nook
 * allocation (nk_set_allocator) goes through a counting allocator whose n-th call fails
 * (jansson keeps libc's allocator, as in the server, where the code frees json_dumps's
 * text with free()); each request body below is read as
 * the server reads it (srv_gen_request_parse of the JSON body, with every extension field:
 * format / response_format / tools / route) for n = 1, 2, ... until a run meets no
 * failure. (Routing jansson through the failing allocator too showed that its lexer drops a
 * byte when its buffer cannot grow: lex_save ignores strbuffer_append_byte's error in
 * jansson 2.14; that one is jansson's to fix.) A failed run must end in an error the server can answer with (no
 * JSON value, or an HTTP status with a message) and leave no block behind; the run with no
 * failure must read the body exactly as a run without the failing allocator did.
 */
#include "base/base.h"
#include "server/request.h"
#include "nk_test.h"

#include <jansson.h>
#include <stdlib.h>

typedef struct { long n_calls, fail_at, n_failed, live; bool armed; } fa_state;
static fa_state g;

/* a 16-byte header keeps each block's size, so live blocks can be counted */
static void *fa_alloc(size_t n) {
    if (g.armed && ++g.n_calls == g.fail_at) { g.n_failed++; return NULL; }
    size_t *h = malloc(n + 16);
    if (!h) return NULL;
    h[0] = n;
    g.live++;
    return (char *)h + 16;
}
static void fa_release(void *p) {
    if (!p) return;
    g.live--;
    free((char *)p - 16);
}
static void *nk_fa_malloc(size_t n, void *ud) { (void)ud; return fa_alloc(n); }
static void *nk_fa_realloc(void *p, size_t n, void *ud) {
    (void)ud;
    if (!p) return fa_alloc(n);
    if (g.armed && ++g.n_calls == g.fail_at) { g.n_failed++; return NULL; }
    size_t *old = (size_t *)((char *)p - 16);
    size_t *h = realloc(old, n + 16);
    if (!h) return NULL;
    h[0] = n;
    return (char *)h + 16;
}
static void nk_fa_free(void *p, void *ud) { (void)ud; fa_release(p); }

/* What a parsed request looks like, for comparing the run that met no failure with the
 * reference (the fields the routes use). */
static char *summary(const srv_gen_request *r) {
    char buf[2048];
    snprintf(buf, sizeof buf, "model=%s prompt=%s n_msg=%d stream=%d np=%d temp=%g stop=%d ext=%d%d%d%d",
             r->model ? r->model : "-", r->prompt ? r->prompt : "-", r->n_messages, r->stream,
             r->opt.num_predict, r->opt.temperature, r->opt.n_stop,
             r->ext[0] != NULL, r->ext[1] != NULL, r->ext[2] != NULL, r->ext[3] != NULL);
    for (int i = 0; i < r->n_messages; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, " [%s:%s]", r->messages[i].role, r->messages[i].content);
    }
    char *s = malloc(strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

/* Reads body as kind; returns the HTTP status (0: read), or -1 when the JSON itself could
 * not be built (the server answers 400 or 500 then). *sum gets the summary on success. */
static int read_body(const char *body, srv_kind kind, char **sum, char *msg, size_t cap) {
    json_error_t je;
    json_t *j = json_loadb(body, strlen(body), 0, &je);
    if (!j) { snprintf(msg, cap, "%s", je.text); return -1; }
    srv_gen_request r;
    g.armed = true;
    int st = srv_gen_request_parse(j, kind, 64, &r, msg, cap);
    g.armed = false;
    if (st == 0 && sum) *sum = summary(&r);
    srv_gen_request_free(&r);
    json_decref(j);
    return st;
}

static void sweep(const char *name, const char *body, srv_kind kind) {
    char msg[512];
    char *ref = NULL;
    CHECK_MSG(read_body(body, kind, &ref, msg, sizeof msg) == 0 && ref, "%s: the body itself fails: %s", name, msg);
    nk_set_allocator(&(nk_allocator){ nk_fa_malloc, nk_fa_realloc, nk_fa_free, NULL });
    long n = 1, points = 0;
    for (;; n++) {
        g.n_calls = 0;
        g.n_failed = 0;
        g.fail_at = n;
        const long live0 = g.live;
        char *got = NULL;
        msg[0] = 0;
        int st = read_body(body, kind, &got, msg, sizeof msg);
        g.fail_at = 0;
        const bool failed = g.n_failed > 0;
        if (st == 0 && got) {
            CHECK_MSG(strcmp(got, ref) == 0, "%s, allocation %ld failing: read as\n  %s\nwant\n  %s", name, n, got, ref);
            free(got);
            CHECK_MSG(g.live == live0, "%s, allocation %ld failing: %ld blocks leaked", name, n, g.live - live0);
            if (!failed) break;
        } else {
            free(got);
            points++;
            CHECK_MSG(failed, "%s: refused with no injected failure (n %ld): %d %s", name, n, st, msg);
            CHECK_MSG(st == -1 || (st >= 400 && msg[0]), "%s, allocation %ld failing: status %d, message '%s'",
                      name, n, st, msg);
            CHECK_MSG(g.live == live0, "%s, allocation %ld failing: %ld blocks leaked", name, n, g.live - live0);
            if (nk_t_fail > 20) { fprintf(stderr, "too many failures, stopping\n"); exit(1); }
        }
    }
    nk_set_allocator(NULL);
    printf("%-26s %5ld allocations, %5ld failure points tested\n", name, g.n_calls, points);
    free(ref);
}

int main(void) {
    sweep("generate", "{\"model\":\"m.gguf\",\"prompt\":\"Once upon a time\",\"system\":\"Be brief.\","
          "\"options\":{\"num_predict\":12,\"temperature\":0.5,\"stop\":[\"\\n\",\"The end\"],\"seed\":7},"
          "\"format\":\"json\",\"context\":[1,2,3],\"keep_alive\":\"5m\"}", SRV_GENERATE);
    sweep("chat+tools+schema", "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
          "{\"role\":\"user\",\"content\":\"What is the weather?\"},"
          "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"weather\","
          "\"arguments\":{\"city\":\"Oslo\"}}}]},{\"role\":\"tool\",\"content\":\"12 C\",\"tool_name\":\"weather\"}],"
          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"description\":\"d\","
          "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}],"
          "\"format\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"enum\":[\"x\",\"y\"]}}},"
          "\"think\":false,\"route\":{\"policy\":\"local\",\"task\":\"summarize\"}}", SRV_CHAT);
    sweep("openai chat", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
          "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],\"max_tokens\":9,\"temperature\":0.2,"
          "\"stop\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
          "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\",\"schema\":"
          "{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":3}}},"
          "\"tool_choice\":\"none\",\"logprobs\":true,\"top_logprobs\":2}", SRV_OAI_CHAT);
    sweep("openai completion", "{\"model\":\"m\",\"prompt\":\"Once\",\"max_tokens\":4,\"seed\":3}",
          SRV_OAI_COMPLETION);
    sweep("embed", "{\"model\":\"m\",\"input\":[\"one\",\"two\",\"three\"],\"truncate\":true}", SRV_EMBED);
    NK_TEST_DONE();
}

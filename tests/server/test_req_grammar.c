/*
 * test_req_grammar.c: the structured-output fields of requests (req_grammar.c):
 * Ollama format and OpenAI response_format / tool_choice become the generation's
 * format or grammar; bad schemas and choices are 400s naming the field and keyword.
 */
#include "server/request.h"
#include "nk_test.h"

#include <jansson.h>

static int parse(const char *body, srv_kind kind, srv_gen_request *r, char *msg) {
    json_t *j = json_loads(body, 0, NULL);
    int st = srv_gen_request_parse(j, kind, 100, r, msg, 300);
    json_decref(j);
    return st;
}

static void expect_format(const char *body, srv_kind kind, const char *want) {
    srv_gen_request r;
    char msg[300];
    int st = parse(body, kind, &r, msg);
    CHECK_MSG(st == 0, "%s: %s", body, msg);
    nook_gen_params gp = nook_gen_default_params();
    nook_error e = { 0 };
    CHECK(srv_grammar_apply(r.ext[SRV_EXT_GRAMMAR], NULL, &gp, &e) == NOOK_OK);
    if (!want) CHECK_MSG(gp.format == NULL && gp.grammar == NULL, "%s: format %s", body, gp.format);
    else CHECK_MSG(gp.format && strcmp(gp.format, want) == 0, "%s: format %s, want %s", body, gp.format ? gp.format : "(none)", want);
    srv_gen_request_free(&r);
}

static void expect_400(const char *body, srv_kind kind, const char *needle) {
    srv_gen_request r;
    char msg[300] = "";
    int st = parse(body, kind, &r, msg);
    CHECK_MSG(st == 400 && strstr(msg, needle), "%s: %d '%s', want '%s'", body, st, msg, needle);
    srv_gen_request_free(&r);
}

int main(void) {
    expect_format("{\"model\":\"m\",\"prompt\":\"p\",\"format\":\"json\"}", SRV_GENERATE, "json");
    expect_format("{\"model\":\"m\",\"prompt\":\"p\"}", SRV_GENERATE, NULL);
    expect_format("{\"model\":\"m\",\"messages\":[],\"format\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}",
                  SRV_CHAT, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}");
    expect_format("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}",
                  SRV_OAI_CHAT, "{\"type\":\"object\"}");   /* OpenAI promises an object */
    expect_format("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
                  "\"json_schema\":{\"name\":\"n\",\"strict\":true,\"schema\":{\"enum\":[1,2]}}}}", SRV_OAI_CHAT, "{\"enum\":[1,2]}");
    expect_format("{\"model\":\"m\",\"prompt\":\"x\",\"response_format\":{\"type\":\"text\"}}", SRV_OAI_COMPLETION, NULL);
    expect_400("{\"model\":\"m\",\"prompt\":\"p\",\"format\":\"xml\"}", SRV_GENERATE, "field 'format'");
    expect_400("{\"model\":\"m\",\"prompt\":\"p\",\"format\":{\"type\":\"string\",\"format\":\"email\"}}", SRV_GENERATE,
               "format 'email' is not supported");
    expect_400("{\"model\":\"m\",\"messages\":[],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"not\":{}}}}}",
               SRV_OAI_CHAT, "keyword 'not'");
    expect_400("{\"model\":\"m\",\"messages\":[],\"response_format\":{\"type\":\"yaml\"}}", SRV_OAI_CHAT, "unknown type 'yaml'");
    /* forced tool calls: a grammar, in the template's format */
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"add\",\"parameters\":{\"type\":\"object\","
                        "\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}},"
                        "{\"type\":\"function\",\"function\":{\"name\":\"mul\",\"parameters\":{\"type\":\"object\"}}}]";
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[],%s,\"tool_choice\":\"required\"}", tools);
    srv_gen_request r;
    char msg[300];
    CHECK(parse(body, SRV_OAI_CHAT, &r, msg) == 0);
    nook_gen_params gp = nook_gen_default_params();
    nook_error e = { 0 };
    CHECK(srv_grammar_apply(r.ext[SRV_EXT_GRAMMAR], "{% if tools %}<tool_call>{% endif %}", &gp, &e) == NOOK_OK);
    CHECK(gp.grammar && strstr(gp.grammar, "<tool_call>") && strstr(gp.grammar, "mul"));
    srv_gen_request_free(&r);
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[],%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"mul\"}}}", tools);
    CHECK(parse(body, SRV_OAI_CHAT, &r, msg) == 0);
    gp = nook_gen_default_params();
    CHECK(srv_grammar_apply(r.ext[SRV_EXT_GRAMMAR], NULL, &gp, &e) == NOOK_OK);
    CHECK(gp.grammar && strstr(gp.grammar, "mul") && !strstr(gp.grammar, "add"));
    srv_gen_request_free(&r);
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[],%s,\"tool_choice\":\"auto\"}", tools);
    expect_format(body, SRV_OAI_CHAT, NULL);
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[],%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"div\"}}}", tools);
    expect_400(body, SRV_OAI_CHAT, "'div', which is not among the tools");
    expect_400("{\"model\":\"m\",\"messages\":[],\"tool_choice\":\"required\"}", SRV_OAI_CHAT, "'tools' is empty");
    expect_400("{\"model\":\"m\",\"messages\":[],\"tool_choice\":\"sometimes\"}", SRV_OAI_CHAT, "field 'tool_choice'");
    NK_TEST_DONE();
}

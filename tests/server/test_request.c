/*
 * test_request.c: request bodies -> srv_gen_request, read as Ollama reads them:
 * unknown fields ignored, `name` for `model`, integer options given as reals, OpenAI
 * content parts joined; wrong types, out-of-range values and images refused (400).
 */
#include "server/request.h"
#include "nk_test.h"

static char g_msg[512];

static int parse(const char *body, srv_kind kind, srv_gen_request *r) {
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s: %s\n", body, je.text);
        exit(1);
    }
    int st = srv_gen_request_parse(j, kind, 8, r, g_msg, sizeof g_msg);
    json_decref(j);
    return st;
}

/* The body must be refused with 400 and a message containing want. */
static void refused(const char *body, srv_kind kind, const char *want) {
    srv_gen_request r;
    int st = parse(body, kind, &r);
    CHECK_MSG(st == 400 && strstr(g_msg, want), "%s: status %d, message \"%s\", want \"%s\"", body, st, g_msg, want);
    srv_gen_request_free(&r);
}

int main(void) {
    srv_gen_request r;

    /* generate: defaults, tolerance, options */
    CHECK_EQ_INT(parse("{\"name\":\"m.gguf\",\"prompt\":\"hi\",\"unknown\":{\"x\":[1]},"
                       "\"options\":{\"num_predict\":10.0,\"temperature\":0,\"stop\":\"\\n\",\"bogus\":\"x\","
                       "\"num_ctx\":2048,\"seed\":42,\"use_mmap\":true}}", SRV_GENERATE, &r), 0);
    CHECK_STR(r.model, "m.gguf");
    CHECK_STR(r.prompt, "hi");
    CHECK(r.stream);                       /* Ollama streams by default */
    CHECK(r.opt.set & SRV_OPT_NUM_PREDICT);
    CHECK_EQ_INT(r.opt.num_predict, 10);
    CHECK(r.opt.set & SRV_OPT_TEMPERATURE);
    CHECK_NEAR(r.opt.temperature, 0, 0);
    CHECK(!(r.opt.set & SRV_OPT_TOP_K));
    CHECK_EQ_INT(r.opt.n_stop, 1);
    CHECK_STR(r.opt.stop[0], "\n");
    CHECK_EQ_INT(r.opt.num_ctx, 2048);
    CHECK_EQ_INT(r.opt.seed, 42);
    CHECK(!r.has_keep_alive);
    srv_gen_request_free(&r);

    CHECK_EQ_INT(parse("{\"model\":\"m\",\"stream\":false,\"keep_alive\":\"10m\",\"think\":\"high\","
                       "\"context\":[1,2,3],\"logprobs\":true,\"top_logprobs\":5}", SRV_GENERATE, &r), 0);
    CHECK(!r.stream);
    CHECK(r.has_keep_alive && r.keep_alive_ns == 600000000000LL);
    CHECK(r.think == SRV_THINK_ON && strcmp(r.think_level, "high") == 0);
    CHECK_EQ_INT(r.n_context, 3);
    CHECK(r.logprobs && r.top_logprobs == 5);
    srv_gen_request_free(&r);

    CHECK_EQ_INT(parse("{\"model\":\"m\",\"keep_alive\":0}", SRV_GENERATE, &r), 0);
    CHECK(r.has_keep_alive && r.keep_alive_ns == 0 && !r.prompt);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"keep_alive\":-1}", SRV_GENERATE, &r), 0);
    CHECK(r.keep_alive_ns < 0);
    srv_gen_request_free(&r);

    /* refusals */
    refused("{\"prompt\":\"x\"}", SRV_GENERATE, "model is required");
    refused("{\"model\":5}", SRV_GENERATE, "'model' must be a string");
    refused("{\"model\":\"m\",\"prompt\":[1]}", SRV_GENERATE, "'prompt' must be a string");
    refused("{\"model\":\"m\",\"stream\":\"yes\"}", SRV_GENERATE, "'stream'");
    refused("{\"model\":\"m\",\"options\":[]}", SRV_GENERATE, "'options' must be an object");
    refused("{\"model\":\"m\",\"options\":{\"temperature\":\"hot\"}}", SRV_GENERATE, "'temperature' must be a number");
    refused("{\"model\":\"m\",\"options\":{\"num_ctx\":-5}}", SRV_GENERATE, "num_ctx");
    refused("{\"model\":\"m\",\"options\":{\"num_ctx\":1e12}}", SRV_GENERATE, "num_ctx");
    refused("{\"model\":\"m\",\"options\":{\"num_predict\":-3}}", SRV_GENERATE, "num_predict");
    refused("{\"model\":\"m\",\"options\":{\"num_predict\":99999999999}}", SRV_GENERATE, "num_predict");
    refused("{\"model\":\"m\",\"options\":{\"stop\":[1]}}", SRV_GENERATE, "'stop'");
    refused("{\"model\":\"m\",\"options\":{\"use_mmap\":\"no\"}}", SRV_GENERATE, "use_mmap");
    refused("{\"model\":\"m\",\"keep_alive\":\"forever\"}", SRV_GENERATE, "keep_alive");
    refused("{\"model\":\"m\",\"keep_alive\":[]}", SRV_GENERATE, "keep_alive");
    refused("{\"model\":\"m\",\"think\":\"ultra\"}", SRV_GENERATE, "think");
    refused("{\"model\":\"m\",\"top_logprobs\":21}", SRV_GENERATE, "top_logprobs");
    refused("{\"model\":\"m\",\"images\":[\"aGk=\"]}", SRV_GENERATE, "images are not supported");
    refused("{\"model\":\"m\",\"context\":[-1]}", SRV_GENERATE, "context");
    refused("{\"model\":\"m\",\"raw\":true,\"system\":\"s\"}", SRV_GENERATE, "raw mode");

    /* chat */
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":\"hi\",\"extra\":1},"
                       "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}}]},"
                       "{\"role\":\"tool\",\"content\":\"42\",\"tool_name\":\"f\"}]}", SRV_CHAT, &r), 0);
    CHECK_EQ_INT(r.n_messages, 4);
    CHECK_STR(r.messages[0].role, "system");
    CHECK_STR(r.messages[1].content, "hi");
    CHECK_STR(r.messages[2].content, "");
    CHECK(r.messages[2].tool_calls != NULL);
    CHECK_STR(r.messages[3].tool_name, "f");
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\"}", SRV_CHAT, &r), 0);   /* preload */
    CHECK_EQ_INT(r.n_messages, 0);
    srv_gen_request_free(&r);
    refused("{\"model\":\"m\",\"messages\":{}}", SRV_CHAT, "'messages' must be a list");
    refused("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", SRV_CHAT, "no role");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", SRV_CHAT, "unknown role");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"x\"]}]}", SRV_CHAT,
            "images are not supported");
    refused("{\"model\":\"m\",\"messages\":[1,2,3,4,5,6,7,8,9]}", SRV_CHAT, "too many messages");

    /* OpenAI chat */
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"sys\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                       "\"max_tokens\":7,\"stop\":[\"x\",\"y\"],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"seed\":3,\"reasoning_effort\":\"none\",\"user\":\"u\",\"logit_bias\":{},\"num_ctx\":512}",
                       SRV_OAI_CHAT, &r), 0);
    CHECK_STR(r.messages[0].role, "system");
    CHECK_STR(r.messages[1].content, "a\nb");
    CHECK_EQ_INT(r.opt.num_predict, 7);
    CHECK_EQ_INT(r.opt.n_stop, 2);
    CHECK(r.stream && r.include_usage);
    CHECK_NEAR(r.opt.temperature, 1.0, 0);   /* Ollama's OpenAI default */
    CHECK_EQ_INT(r.opt.seed, 3);
    CHECK(r.think == SRV_THINK_OFF);
    CHECK_EQ_INT(r.opt.num_ctx, 512);
    CHECK_EQ_INT(r.n, 1);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"messages\":[],\"max_completion_tokens\":3,\"max_tokens\":9,\"temperature\":0.2}",
                       SRV_OAI_CHAT, &r), 0);
    CHECK_EQ_INT(r.opt.num_predict, 3);
    CHECK(!r.stream);
    CHECK_NEAR(r.opt.temperature, 0.2, 1e-6);
    srv_gen_request_free(&r);
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
            SRV_OAI_CHAT, "images are not supported");
    refused("{\"model\":\"m\"}", SRV_OAI_CHAT, "'messages' is required");
    refused("{\"model\":\"m\",\"messages\":[],\"temperature\":\"1\"}", SRV_OAI_CHAT, "'temperature'");
    refused("{\"model\":\"m\",\"messages\":[],\"max_tokens\":-1}", SRV_OAI_CHAT, "max_tokens");
    refused("{\"model\":\"m\",\"messages\":[],\"stream_options\":1}", SRV_OAI_CHAT, "stream_options");

    /* OpenAI completions */
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"prompt\":[\"once\"],\"logprobs\":2}", SRV_OAI_COMPLETION, &r), 0);
    CHECK_STR(r.prompt, "once");
    CHECK(r.logprobs && r.top_logprobs == 2);
    srv_gen_request_free(&r);
    refused("{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", SRV_OAI_COMPLETION, "'prompt'");

    /* embeddings */
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"input\":[\"a\",\"b\"],\"truncate\":false,\"dimensions\":8}", SRV_EMBED, &r), 0);
    CHECK_EQ_INT(r.n_inputs, 2);
    CHECK(r.input_is_array && !r.truncate && r.dimensions == 8);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"input\":\"a\"}", SRV_EMBED, &r), 0);
    CHECK(r.n_inputs == 1 && !r.input_is_array && r.truncate);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"prompt\":\"p\"}", SRV_EMBEDDINGS, &r), 0);
    CHECK(r.n_inputs == 1 && strcmp(r.inputs[0], "p") == 0);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"base64\"}", SRV_OAI_EMBED, &r), 0);
    CHECK(r.base64);
    srv_gen_request_free(&r);
    refused("{\"model\":\"m\",\"input\":[[1,2]]}", SRV_OAI_EMBED, "token-id");
    refused("{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"hex\"}", SRV_OAI_EMBED, "encoding_format");
    refused("{\"model\":\"m\",\"input\":{}}", SRV_EMBED, "'input'");
    refused("{\"model\":\"m\",\"prompt\":[\"a\"]}", SRV_EMBEDDINGS, "'prompt' must be a string");
    NK_TEST_DONE();
}

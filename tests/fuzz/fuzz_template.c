/*
 * fuzz_template.c: libFuzzer target for the chat-template interpreter.
 *
 * The input is a template. It is compiled and rendered against a fixed conversation that
 * exercises what real templates touch (system/user/assistant/tool messages, tool calls with
 * dict and string arguments, null content, unicode, tools, kwargs), with tight limits so
 * that every input finishes quickly. Any outcome is fine except a crash, a sanitizer report,
 * a hang, an error without a message, or output that breaks the contract (length mismatch).
 * Seed corpus: tests/fuzz/corpus/template/ (the real templates from tests/data/chat).
 */
#include "chat/chat.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *g_messages, *g_tools, *g_kwargs;

static void setup(void) {
    const char *msgs =
        "[{\"role\":\"system\",\"content\":\"You are helpful. \\u00e9\\u65e5\"},"
        " {\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        " {\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call12345\",\"type\":\"function\","
        "   \"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},"
        " {\"role\":\"tool\",\"tool_call_id\":\"call12345\",\"content\":\"18C\"},"
        " {\"role\":\"assistant\",\"content\":\"<think>\\nok\\n</think>\\n\\nIt is 18C.\"},"
        " {\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"thanks \\ud83d\\ude00\"},{\"type\":\"image\"}]},"
        " {\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":[{\"id\":\"abcdefghi\",\"type\":\"function\","
        "   \"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\": [1, 2.5, true, null]}\"}}]}]";
    const char *tools =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather.\","
        "  \"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";
    g_messages = json_loads(msgs, 0, NULL);
    g_tools = json_loads(tools, 0, NULL);
    g_kwargs = json_pack("{s:b,s:b,s:s,s:s}", "add_generation_prompt", 1, "enable_thinking", 0,
                         "bos_token", "<s>", "eos_token", "</s>");
    if (!g_messages || !g_tools || !g_kwargs) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_messages) setup();
    nk_chat_options o = {
        .limits = { .max_output = 1 << 16, .max_memory = 8u << 20, .max_steps = 100000, .max_depth = 200,
                    .max_macro_depth = 16 },
        .now = { true, 2025, 1, 2, 3, 4, 5 },
    };
    nk_chat_template *t = NULL;
    nook_error err;
    nook_status rc = nk_chat_compile((const char *)data, size, &o, &t, &err);
    if (rc != NOOK_OK) {
        if (t || !err.msg[0]) abort();
        return 0;
    }
    for (int pass = 0; pass < 2; pass++) {   /* with and without tools */
        char *out = NULL;
        size_t len = 0;
        rc = nk_chat_render_compiled(t, g_messages, pass ? NULL : g_tools, g_kwargs, &o, &out, &len, &err);
        if (rc == NOOK_OK) {
            if (!out || strlen(out) > len || len > o.limits.max_output) abort();
            nk_free(out);
        } else if (out || !err.msg[0]) {
            abort();
        }
    }
    nk_chat_template_free(t);
    return 0;
}

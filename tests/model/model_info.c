/* model_info: metadata lookup, memory figures and the public log sink (issue 9, item 7),
 * on stories260K (llama, 5 layers, 64 wide, 8 heads of 8, 4 KV heads, all F32). */
#include "nook.h"
#include "base/base.h"
#include "nk_test.h"

static int g_msgs;
static nook_log_level g_level;
static char g_last[256];

static void sink(nook_log_level level, const char *msg, void *ud) {
    g_msgs += ud == &g_msgs;
    g_level = level;
    snprintf(g_last, sizeof g_last, "%s", msg);
}

int main(void) {
    char path[1024];
    nk_test_fixture(path, sizeof path, "stories260K.gguf");
    nook_model *m = NULL;
    nook_error err;
    CHECK_EQ_INT(nook_model_load(path, NULL, &m, &err), NOOK_OK);
    if (!m) NK_TEST_DONE();

    /* metadata: keys in file order, values as text, truncation, absent keys */
    const int n = nook_model_meta_count(m);
    CHECK(n > 10);
    char k[128], v[128];
    bool seen_arch = false;
    for (int i = 0; i < n; i++) {
        CHECK(nook_model_meta_key_by_index(m, i, k, sizeof k) > 0);
        seen_arch = seen_arch || !strcmp(k, "general.architecture");
    }
    CHECK(seen_arch);
    CHECK_EQ_INT(nook_model_meta_key_by_index(m, n, k, sizeof k), -1);
    CHECK_EQ_INT(nook_model_meta_val_str(m, "general.architecture", v, sizeof v), 5);
    CHECK_STR(v, "llama");
    CHECK_EQ_INT(nook_model_meta_val_str(m, "general.architecture", v, 3), 5);
    CHECK_STR(v, "ll");
    CHECK_EQ_INT(nook_model_meta_val_str(m, "llama.block_count", v, sizeof v), 1);
    CHECK_STR(v, "5");
    CHECK(nook_model_meta_val_str(m, "tokenizer.ggml.tokens", v, sizeof v) > 0);
    CHECK(strstr(v, "x 512]") != NULL);
    CHECK_EQ_INT(nook_model_meta_val_str(m, "no.such.key", v, sizeof v), -1);

    /* memory: all weights F32 (llama.cpp reports 1,171,200 bytes); KV per token per
     * sequence = 5 layers x (K + V) x 4 KV heads x 8 dims x element size */
    CHECK_EQ_INT(nook_model_weight_bytes(m), 1171200);
    CHECK_EQ_INT(nook_model_kv_bytes_per_token(m, NOOK_KV_F16), 5 * 2 * 32 * 2);
    CHECK_EQ_INT(nook_model_kv_bytes_per_token(m, NOOK_KV_F32), 5 * 2 * 32 * 4);
    CHECK_EQ_INT(nook_model_kv_bytes_per_token(m, NOOK_KV_Q8_0), 5 * 2 * 34);

    /* the log sink: installed, called with the embedder's pointer, removed */
    nook_log_set(sink, &g_msgs);
    nk_log(NK_LOG_WARN, "hello %d", 42);
    CHECK_EQ_INT(g_msgs, 1);
    CHECK_EQ_INT(g_level, NOOK_LOG_WARN);
    CHECK_STR(g_last, "hello 42");
    nook_session *s = NULL;
    nook_session_params sp = nook_session_default_params();
    sp.n_seq_max = 3;
    sp.n_ctx = 100;
    CHECK_EQ_INT(nook_session_new(m, &sp, &s, &err), NOOK_OK);
    CHECK_EQ_INT(g_msgs, 2);   /* the session reports its sizes at debug level */
    CHECK_EQ_INT(g_level, NOOK_LOG_DEBUG);
    CHECK(strstr(g_last, "3 sequences") != NULL);
    nook_session_free(s);
    nook_log_set(NULL, NULL);
    nk_log(NK_LOG_ERROR, "dropped");
    CHECK_EQ_INT(g_msgs, 2);
    nook_model_free(m);
    NK_TEST_DONE();
}

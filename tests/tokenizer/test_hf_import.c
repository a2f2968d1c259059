/*
 * test_hf_import: the Hugging Face tokenizer importer on two small hand-made tokenizers
 * (tests/data/hf_import/mini_bpe, mini_spm) whose every expected key is worked out
 * by hand from convert_hf_to_gguf.py's rules, and on malformed inputs (truncated JSON,
 * wrong types, bad ids, unknown pre-tokenizer...), which must fail with a clear error.
 */
#include "nk_test.h"
#include "tokenizer/hf_import.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <sys/stat.h>

static gguf_file *g_f;
static uint8_t *g_buf;

static void release(void) {
    gguf_free(g_f);
    nk_free(g_buf);
    g_f = NULL;
    g_buf = NULL;
}

/* Import dir into a fresh writer, serialize and parse it back into g_f. */
static nook_status import(const char *dir, const char *arch, nook_error *err) {
    release();
    gguf_writer *w = gguf_writer_new();
    nook_status st = nk_hf_import_tokenizer_arch(dir, arch, w, err);
    uint64_t len = 0;
    if (!st) st = gguf_write_mem(w, &g_buf, &len, err);
    if (!st) st = gguf_parse(g_buf, len, &g_f, err);
    gguf_writer_free(w);
    return st;
}

static bool has(const char *key) { return gguf_find(g_f, key) != NULL; }

static long long u32(const char *key) {
    uint32_t v;
    nook_error e;
    return gguf_get_u32(g_f, key, &v, &e) == NOOK_OK ? (long long)v : -1;
}

static int boolean(const char *key) {
    bool v;
    nook_error e;
    return gguf_get_bool(g_f, key, &v, &e) == NOOK_OK ? v : -1;
}

static char g_s[4096];
static const char *str(const char *key) {
    gguf_str s;
    nook_error e;
    if (gguf_get_str(g_f, key, &s, &e) != NOOK_OK || s.len >= sizeof g_s) return "(absent)";
    memcpy(g_s, s.ptr, s.len);
    g_s[s.len] = 0;
    return g_s;
}

/* Element i of a string array, or "(absent)". */
static const char *arr_str(const char *key, uint64_t i) {
    const gguf_kv *kv = gguf_find(g_f, key);
    gguf_str *s;
    nook_error e;
    if (!kv || kv->val.type != GGUF_TYPE_ARRAY || i >= kv->val.v.arr.count || gguf_arr_strings(&kv->val, &s, &e))
        return "(absent)";
    snprintf(g_s, sizeof g_s, "%.*s", (int)s[i].len, s[i].ptr);
    nk_free(s);
    return g_s;
}

static long long arr_count(const char *key) {
    const gguf_kv *kv = gguf_find(g_f, key);
    return kv && kv->val.type == GGUF_TYPE_ARRAY ? (long long)kv->val.v.arr.count : -1;
}

static double arr_num(const char *key, uint64_t i) {
    const gguf_kv *kv = gguf_find(g_f, key);
    if (!kv || kv->val.type != GGUF_TYPE_ARRAY || i >= kv->val.v.arr.count) return -99999;
    return gguf_arr_f64(&kv->val, i);
}

static void test_mini_bpe(void) {
    nook_error err = { 0 };
    nook_status st = import("tests/data/hf_import/mini_bpe", NULL, &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    if (st) return;
    CHECK_STR(str("tokenizer.ggml.model"), "gpt2");
    CHECK_STR(str("tokenizer.ggml.pre"), "qwen2");
    CHECK_EQ_INT(arr_count("tokenizer.ggml.tokens"), 11);   /* highest id 10, no config.json */
    CHECK_EQ_INT(arr_count("tokenizer.ggml.token_type"), 11);
    CHECK(!has("tokenizer.ggml.scores"));
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 2), "ab");
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 8), "[PAD8]");
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 9), " u");          /* user-defined: ▁ -> space */
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 6), "<|end|>");
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 0), NK_TOKEN_NORMAL);
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 5), NK_TOKEN_CONTROL);
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 6), NK_TOKEN_CONTROL);    /* not special, looks special */
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 7), NK_TOKEN_USER_DEFINED);
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 8), NK_TOKEN_UNUSED);
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 9), NK_TOKEN_USER_DEFINED);
    CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", 10), NK_TOKEN_CONTROL);
    CHECK_EQ_INT(arr_count("tokenizer.ggml.merges"), 3);
    CHECK_STR(arr_str("tokenizer.ggml.merges", 0), "a b");
    CHECK_STR(arr_str("tokenizer.ggml.merges", 1), "\xc4\xa0 a");
    CHECK_STR(arr_str("tokenizer.ggml.merges", 2), "a\xc4\xa0" "b c");   /* a space inside a part -> U+0120 */
    /* the template ends in <|end|>, not the configured <eot>: <|end|> becomes EOS, <eot> EOT */
    CHECK_EQ_INT(u32("tokenizer.ggml.bos_token_id"), 5);
    CHECK_EQ_INT(u32("tokenizer.ggml.eos_token_id"), 6);
    CHECK_EQ_INT(u32("tokenizer.ggml.eot_token_id"), 10);
    CHECK_EQ_INT(u32("tokenizer.ggml.padding_token_id"), 7);      /* {"content": "<x>"} form */
    CHECK(!has("tokenizer.ggml.unknown_token_id"));
    CHECK_EQ_INT(boolean("tokenizer.ggml.add_bos_token"), 1);
    CHECK_EQ_INT(boolean("tokenizer.ggml.add_eos_token"), 1);
    CHECK(!has("tokenizer.ggml.add_space_prefix"));
    CHECK_STR(str("tokenizer.chat_template"), "D{{ messages }}");
    CHECK_STR(str("tokenizer.chat_template.tool_use"), "T");
    CHECK_EQ_INT(arr_count("tokenizer.chat_templates"), 1);
    CHECK_STR(arr_str("tokenizer.chat_templates", 0), "tool_use");
}

static void test_mini_spm(void) {
    nook_error err = { 0 };
    nook_status st = import("tests/data/hf_import/mini_spm", NULL, &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    if (st) return;
    CHECK_STR(str("tokenizer.ggml.model"), "llama");
    CHECK_STR(str("tokenizer.ggml.pre"), "default");
    CHECK(!has("tokenizer.ggml.merges"));
    CHECK_EQ_INT(arr_count("tokenizer.ggml.tokens"), 13);
    CHECK_EQ_INT(arr_count("tokenizer.ggml.scores"), 13);
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 9), "\xe2\x96\x81" "a");   /* normal tokens keep ▁ */
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 11), "  ");                 /* user-defined: spaces */
    static const int types[13] = { 3, 3, 3, 2, 6, 1, 1, 1, 1, 1, 1, 4, 3 };
    for (int i = 0; i < 13; i++) CHECK_EQ_INT(arr_num("tokenizer.ggml.token_type", (uint64_t)i), types[i]);
    /* score = -(rank of the first merge yielding the piece); the rest below every merge */
    CHECK_NEAR(arr_num("tokenizer.ggml.scores", 8), 0.0, 0);      /* ab: merge 0 */
    CHECK_NEAR(arr_num("tokenizer.ggml.scores", 9), -1.0, 0);     /* ▁a: merge 1 */
    CHECK_NEAR(arr_num("tokenizer.ggml.scores", 10), -2.0, 0);    /* ▁ab: merge 2 (and 3) */
    CHECK_NEAR(arr_num("tokenizer.ggml.scores", 5), -5.0, 0);     /* "a": no merge yields it */
    CHECK_NEAR(arr_num("tokenizer.ggml.scores", 4), 0.0, 0);      /* byte */
    CHECK_NEAR(arr_num("tokenizer.ggml.scores", 11), -1000.0, 0); /* added */
    CHECK_EQ_INT(u32("tokenizer.ggml.bos_token_id"), 2);
    CHECK_EQ_INT(u32("tokenizer.ggml.eos_token_id"), 1);
    CHECK(!has("tokenizer.ggml.unknown_token_id"));   /* <unk> is not an added token */
    CHECK_EQ_INT(boolean("tokenizer.ggml.add_bos_token"), 1);
    CHECK_EQ_INT(boolean("tokenizer.ggml.add_eos_token"), 0);
    CHECK_EQ_INT(boolean("tokenizer.ggml.add_space_prefix"), 1);   /* Prepend("▁") normalizer */
    CHECK_STR(str("tokenizer.chat_template"), "X");

    st = import("tests/data/hf_import/mini_spm", "gemma3", &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    if (!st) CHECK_EQ_INT(boolean("tokenizer.ggml.add_space_prefix"), 0);   /* the converter's Gemma 3 rule */

    /* the SPM vocab loads and tokenizes through nook's own tokenizer */
    nk_vocab *v = NULL;
    if (!st && nk_vocab_load(g_f, &v, &err) == NOOK_OK) {
        nook_token toks[16];
        size_t n = 0;
        st = nk_vocab_tokenize(v, "ab aA", 5, false, false, toks, 16, &n, &err);
        CHECK_MSG(st == NOOK_OK, "%s", err.msg);
        /* "ab▁aA": ab, ▁a, then 'A' is not a token -> byte fallback <0x41> */
        CHECK_EQ_INT(n, 3);
        if (n == 3) { CHECK_EQ_INT(toks[0], 8); CHECK_EQ_INT(toks[1], 9); CHECK_EQ_INT(toks[2], 4); }
        nk_vocab_free(v);
    } else {
        CHECK_MSG(false, "nk_vocab_load: %s", err.msg);
    }
}

/* ---- malformed inputs ---------------------------------------------------------------- */

static char g_tmp[256];

static void write_file(const char *name, const char *text, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(1); }
    fwrite(text, 1, len, fp);
    fclose(fp);
}

static void write_str(const char *name, const char *text) { write_file(name, text, strlen(text)); }

static void remove_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    unlink(path);
}

static char *slurp(const char *path, size_t *len) {
    char *s;
    nook_error e;
    if (nk_read_file(path, &s, len, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    return s;
}

/* Import a tokenizer.json given as text; expect code and a message containing want. */
static void expect_fail(const char *json, nook_status code, const char *want) {
    write_file("tokenizer.json", json, strlen(json));
    nook_error err = { 0 };
    nook_status st = import(g_tmp, NULL, &err);
    CHECK_MSG(st == code, "got %s (%s) for %.80s", nook_status_str(st), err.msg, json);
    CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
}

#define BL "\"decoder\":{\"type\":\"ByteLevel\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}"

static void test_malformed(void) {
    nook_error err = { 0 };
    CHECK_EQ_INT(import("tests/data/hf_import/no_such_dir", NULL, &err), NOOK_EIO);
    CHECK(strstr(err.msg, "tokenizer.json") != NULL);

    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", NOOK_EFORMAT, "invalid JSON");
    expect_fail("[1, 2]", NOOK_EFORMAT, "not a JSON object");
    expect_fail("{}", NOOK_EFORMAT, "model.vocab");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": [1]}}", NOOK_EFORMAT, "model.vocab");
    expect_fail("{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}", NOOK_EUNSUPPORTED, "Unigram");
    expect_fail("{\"model\": {\"vocab\": {}}}", NOOK_EUNSUPPORTED, "model.type");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}, \"merges\": []}}", NOOK_EFORMAT,
                "model.vocab['a']");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", NOOK_EFORMAT,
                "model.vocab['a']");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 4000000000}, \"merges\": []}}",
                NOOK_EFORMAT, "model.vocab['a']");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
                NOOK_EFORMAT, "used by two tokens");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", NOOK_EFORMAT, "empty");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", NOOK_EFORMAT, "model.merges");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}", NOOK_EFORMAT,
                "merges[0]");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", NOOK_EFORMAT,
                "merges[0]");
    expect_fail("{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}",
                NOOK_EFORMAT, "merges[0]");
    expect_fail("{" BL ",\"added_tokens\": {}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                NOOK_EFORMAT, "added_tokens");
    expect_fail("{" BL ",\"added_tokens\": [{\"id\": 1}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}", NOOK_EFORMAT, "added_tokens[0]");
    expect_fail("{\"decoder\":{\"type\":\"ByteLevel\"},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":"
                "[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"}},{\"type\":\"ByteLevel\",\"use_regex\":false}]},"
                "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", NOOK_EUNSUPPORTED, "\\w+");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", NOOK_EUNSUPPORTED,
                "ByteLevel");
    /* SPM-derived: a merge that yields no vocab piece */
    expect_fail("{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0, \"b\": 1}, "
                "\"merges\": [[\"a\", \"b\"]]}}", NOOK_EFORMAT, "not in model.vocab");

    /* a malformed optional file is an error too, naming the file */
    const char *ok = "{" BL ",\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
    write_file("tokenizer.json", ok, strlen(ok));
    write_str("tokenizer_config.json", "{\"bos_token\": ");
    CHECK_EQ_INT(import(g_tmp, NULL, &err), NOOK_EFORMAT);
    CHECK(strstr(err.msg, "tokenizer_config.json") != NULL);
    write_str("tokenizer_config.json", "{\"added_tokens_decoder\": 3, \"chat_template\": 5}");
    CHECK_EQ_INT(import(g_tmp, NULL, &err), NOOK_OK);   /* wrong-typed optional fields are ignored */
    remove_file("tokenizer_config.json");
    write_str("config.json", "{\"vocab_size\": \"big\"}");
    CHECK_EQ_INT(import(g_tmp, NULL, &err), NOOK_EFORMAT);
    CHECK(strstr(err.msg, "vocab_size") != NULL);
    write_str("config.json", "{\"vocab_size\": 4}");   /* padded with [PAD<id>] */
    CHECK_EQ_INT(import(g_tmp, NULL, &err), NOOK_OK);
    CHECK_EQ_INT(arr_count("tokenizer.ggml.tokens"), 4);
    CHECK_STR(arr_str("tokenizer.ggml.tokens", 3), "[PAD3]");
    remove_file("config.json");

    /* truncations of a real tokenizer.json fail cleanly */
    size_t len;
    char *full = slurp("tests/data/hf_import/mini_bpe/tokenizer.json", &len);
    int bad = 0;
    /* every length up to 64, then every 7th: each one is a file write and an import */
    for (size_t k = 0; k < len; k += k < 64 ? 1 : 7) {
        write_file("tokenizer.json", full, k);
        nook_status st = import(g_tmp, NULL, &err);
        if (st != NOOK_EFORMAT || !err.msg[0]) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    nk_free(full);

    /* vocab GGUF: missing output path and arch detection failure are errors */
    CHECK_EQ_INT(nk_hf_import_vocab_gguf("tests/data/hf_import/mini_spm", "llama", "", &err), NOOK_EINVAL);
    char arch[32];
    CHECK_EQ_INT(nk_hf_detect_arch("tests/data/hf_import/mini_spm", arch, sizeof arch, &err), NOOK_ENOTFOUND);
    CHECK_EQ_INT(nk_hf_detect_arch("tests/data/hf_import/mini_bpe", arch, sizeof arch, &err), NOOK_OK);
    CHECK_STR(arch, "qwen3");
}

static void test_vocab_gguf(void) {
    char out[512];
    snprintf(out, sizeof out, "%s/vocab.gguf", g_tmp);
    nook_error err = { 0 };
    nook_status st = nk_hf_import_vocab_gguf("tests/data/hf_import/mini_bpe", NULL, out, &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    size_t len;
    char *data = slurp(out, &len);
    gguf_file *f = NULL;
    st = gguf_parse(data, len, &f, &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    if (!st) {
        gguf_str s;
        CHECK(gguf_get_str(f, "general.architecture", &s, &err) == NOOK_OK && gguf_str_eq(s, "qwen3"));
        CHECK_EQ_INT(f->n_tensors, 0);
        CHECK(gguf_find(f, "tokenizer.ggml.merges") != NULL);
    }
    gguf_free(f);
    nk_free(data);
    unlink(out);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/nk_hf_import_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
    test_mini_bpe();
    test_mini_spm();
    test_malformed();
    test_vocab_gguf();
    release();
    remove_file("tokenizer.json");
    remove_file("tokenizer_config.json");
    rmdir(g_tmp);
    NK_TEST_DONE();
}

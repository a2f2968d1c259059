/*
 * test_corpus.c: the generator of the fuzz seed corpus (tests/fuzz/corpus/gguf/), and
 * the check that the committed seeds are exactly what it generates and still parse.
 *
 * Regenerate after a deliberate change with:
 *   NOOK_GGUF_WRITE_CORPUS=tests/fuzz/corpus/gguf ./build/gguf_test_corpus
 * Each seed is small (< 4 KB) so the fuzzer mutates structure, not bulk data. The
 * seeds have no .gguf extension because the repository ignores *.gguf (models).
 */
#include "gguf/gguf.h"
#include "nk_test.h"

#define CORPUS_DIR "tests/fuzz/corpus/gguf"

typedef struct seed {
    const char *name;
    uint8_t *bytes;
    uint64_t len;
} seed;

static void finish(seed *s, gguf_writer *w) {
    nook_error err = { 0 };
    CHECK_MSG(gguf_write_mem(w, &s->bytes, &s->len, &err) == NOOK_OK, "%s: %s", s->name, err.msg);
    gguf_writer_free(w);
}

static void seed_header_only(seed *s) {
    s->name = "empty";
    finish(s, gguf_writer_new());
}

static void seed_scalars_v2(seed *s) {
    s->name = "scalars_v2";
    gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.architecture", "llama");
    gguf_set_str(w, "general.name", "seed");
    gguf_set_u32(w, "llama.context_length", 128);
    gguf_set_i32(w, "t.i32", -7);
    gguf_set_u64(w, "t.u64", 1ull << 33);
    gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    static const struct { gguf_type t; const char *k; } more[] = {
        { GGUF_TYPE_UINT8, "t.u8" }, { GGUF_TYPE_INT8, "t.i8" }, { GGUF_TYPE_UINT16, "t.u16" },
        { GGUF_TYPE_INT16, "t.i16" }, { GGUF_TYPE_INT64, "t.i64" }, { GGUF_TYPE_FLOAT64, "t.f64" },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(more); i++) {
        gguf_kv kv = { .key = { more[i].k, strlen(more[i].k) }, .val = { .type = more[i].t } };
        if (more[i].t == GGUF_TYPE_FLOAT64) kv.val.v.f64 = 0.25;
        else kv.val.v.u64 = 5;
        gguf_set_kv_from(w, &kv);
    }
    finish(s, w);
    if (s->bytes) s->bytes[4] = 2;   /* same layout as v3 for little-endian files */
}

static void seed_arrays(seed *s) {
    s->name = "arrays";
    gguf_writer *w = gguf_writer_new();
    uint8_t raw[64];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 37 + 1);
    for (int t = 0; t < GGUF_TYPE_COUNT; t++) {
        size_t es = gguf_type_size((gguf_type)t);
        if (!es) continue;
        char key[32];
        snprintf(key, sizeof key, "a.%s", gguf_type_name((gguf_type)t));
        gguf_set_arr(w, key, (gguf_type)t, raw, sizeof raw / es < 4 ? sizeof raw / es : 4);
    }
    const char *strs[4] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81the" };
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, 4);
    const char *merges[2] = { "\xe2\x96\x81 t", "h e" };
    gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 2);
    gguf_set_arr(w, "a.empty", GGUF_TYPE_INT32, NULL, 0);
    finish(s, w);
}

static void seed_tensors(seed *s, bool align64) {
    s->name = align64 ? "tensors_align64" : "tensors";
    gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.architecture", "llama");
    if (align64) gguf_set_u32(w, "general.alignment", 64);
    static uint8_t data[1024];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 13);
    const uint64_t ne_f32[2] = { 8, 4 }, ne_f16[1] = { 16 }, ne_q8[2] = { 32, 2 }, ne_q4k[1] = { 256 },
                   ne_4d[4] = { 2, 1, 3, 1 };
    gguf_add_tensor(w, "token_embd.weight", 0, 2, ne_f32, data, 128);
    gguf_add_tensor(w, "blk.0.attn_norm.weight", 1, 1, ne_f16, data, 32);
    gguf_add_tensor(w, "blk.0.attn_q.weight", 8, 2, ne_q8, data, 68);
    if (!align64) gguf_add_tensor(w, "blk.0.ffn_down.weight", 12, 1, ne_q4k, data, 144);
    gguf_add_tensor(w, "t4d", 0, 4, ne_4d, data, 24);
    finish(s, w);
}

/* A miniature of stories260K's shape: tokenizer arrays plus a few tensors. */
static void seed_model(seed *s) {
    s->name = "model";
    gguf_writer *w = gguf_writer_new();
    gguf_set_str(w, "general.architecture", "llama");
    gguf_set_u32(w, "llama.embedding_length", 8);
    gguf_set_u32(w, "llama.block_count", 1);
    gguf_set_u32(w, "llama.attention.head_count", 2);
    gguf_set_str(w, "tokenizer.ggml.model", "llama");
    const char *toks[6] = { "<unk>", "<s>", "</s>", "<0x00>", "\xe2\x96\x81\x61", "b" };
    const float scores[6] = { 0, 0, 0, 0, -1, -2 };
    const int32_t types[6] = { 2, 3, 3, 6, 1, 1 };
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 6);
    gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 6);
    gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 6);
    gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 4294967295u);
    static float wts[48];
    for (int i = 0; i < 48; i++) wts[i] = (float)i / 48.0f;
    const uint64_t ne_emb[2] = { 8, 6 }, ne_norm[1] = { 8 };
    gguf_add_tensor(w, "token_embd.weight", 0, 2, ne_emb, wts, sizeof wts);
    gguf_add_tensor(w, "output_norm.weight", 0, 1, ne_norm, wts, 32);
    gguf_add_tensor(w, "output.weight", 0, 2, ne_emb, wts, sizeof wts);
    finish(s, w);
}

int main(void) {
    seed seeds[6] = { { 0 } };
    seed_header_only(&seeds[0]);
    seed_scalars_v2(&seeds[1]);
    seed_arrays(&seeds[2]);
    seed_tensors(&seeds[3], false);
    seed_tensors(&seeds[4], true);
    seed_model(&seeds[5]);
    int n = 6;
    const char *out_dir = getenv("NOOK_GGUF_WRITE_CORPUS");
    for (int i = 0; i < n; i++) {
        seed *s = &seeds[i];
        gguf_file *f = NULL;
        nook_error err = { 0 };
        CHECK_MSG(s->bytes && gguf_parse(s->bytes, s->len, &f, &err) == NOOK_OK, "%s: %s", s->name, err.msg);
        CHECK_MSG(s->len < 4096, "%s is %llu bytes", s->name, (unsigned long long)s->len);
        gguf_free(f);
        char path[512];
        if (out_dir) {
            snprintf(path, sizeof path, "%s/%s", out_dir, s->name);
            CHECK_MSG(nk_write_file_atomic(path, s->bytes, (size_t)s->len, &err) == NOOK_OK, "%s", err.msg);
        }
        /* the committed seed must be what this generator writes (tests run from the source root) */
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, s->name);
        char *have = NULL;
        size_t have_len = 0;
        if (nk_read_file(path, &have, &have_len, &err) != NOOK_OK) {
            nk_free(s->bytes);
            nk_test_skip("corpus not found: run from the source root");
        }
        CHECK_MSG(have_len == s->len && memcmp(have, s->bytes, have_len) == 0, "%s differs from the generator", path);
        nk_free(have);
        nk_free(s->bytes);
    }
    NK_TEST_DONE();
}

/*
 * model_read.c: the reader against the real fixture files (facts from SOURCES.md).
 */
#include "gguf/gguf.h"
#include "nk_test.h"

typedef struct loaded {
    nk_map map;
    gguf_file *f;
} loaded;

static int load(loaded *l, const char *rel) {
    char path[1024];
    nook_error err = { 0 };
    nk_test_fixture(path, sizeof path, rel);
    if (nk_map_file(path, false, &l->map, &err) != NOOK_OK) {
        fprintf(stderr, "%s: %s\n", rel, err.msg);
        return 0;
    }
    nook_status st = gguf_parse(l->map.data, l->map.size, &l->f, &err);
    CHECK_MSG(st == NOOK_OK, "%s: %s", rel, err.msg);
    return st == NOOK_OK;
}

static void unload(loaded *l) {
    gguf_free(l->f);
    nk_unmap(&l->map);
}

static uint64_t arr_count(const gguf_file *f, const char *key, gguf_type want) {
    gguf_type t;
    uint64_t n = 0;
    const uint8_t *d;
    nook_error err;
    if (gguf_get_arr(f, key, &t, &n, &d, &err) != NOOK_OK || t != want) return (uint64_t)-1;
    return n;
}

static void test_stories(void) {
    loaded l;
    if (!load(&l, "stories260K.gguf")) return;
    const gguf_file *f = l.f;
    nook_error err;
    CHECK_EQ_INT(f->version, 3);
    CHECK_EQ_INT(f->n_tensors, 48);
    CHECK_EQ_INT(f->data_offset, 14176);
    CHECK_EQ_INT(f->alignment, 32);
    CHECK(gguf_find(f, "general.alignment") == NULL);
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == NOOK_OK && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s, &err) == NOOK_OK && gguf_str_eq(s, "llama"));
    uint32_t u = 0;
    CHECK(gguf_get_u32(f, "llama.context_length", &u, &err) == NOOK_OK && u == 2048);
    CHECK(gguf_get_u32(f, "llama.rope.dimension_count", &u, &err) == NOOK_OK && u == 8);
    CHECK(gguf_get_u32(f, "llama.embedding_length", &u, &err) == NOOK_OK && u == 64);
    CHECK(gguf_get_u32(f, "llama.block_count", &u, &err) == NOOK_OK && u == 5);
    CHECK(gguf_get_u32(f, "llama.attention.head_count", &u, &err) == NOOK_OK && u == 8);
    CHECK(gguf_get_u32(f, "llama.attention.head_count_kv", &u, &err) == NOOK_OK && u == 4);
    CHECK(gguf_get_u32(f, "llama.feed_forward_length", &u, &err) == NOOK_OK && u == 172);
    CHECK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &u, &err) == NOOK_OK && u == 1);
    CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &u, &err) == NOOK_OK && u == 2);
    CHECK(gguf_get_u32(f, "tokenizer.ggml.padding_token_id", &u, &err) == NOOK_OK && u == 4294967295u);
    CHECK(gguf_get_u32(f, "tokenizer.ggml.seperator_token_id", &u, &err) == NOOK_OK && u == 4294967295u);
    CHECK(gguf_find(f, "tokenizer.ggml.add_bos_token") == NULL);
    CHECK(gguf_find(f, "tokenizer.ggml.pre") == NULL);
    float eps = 0;
    CHECK(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps, &err) == NOOK_OK && eps > 0 && eps < 1e-3);
    CHECK_EQ_INT(arr_count(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING), 512);
    CHECK_EQ_INT(arr_count(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32), 512);
    CHECK_EQ_INT(arr_count(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32), 512);

    /* byte tokens: ids 3..258 are <0x00>..<0xFF> */
    const gguf_kv *kv = gguf_find(f, "tokenizer.ggml.tokens");
    gguf_str *toks = NULL;
    CHECK(kv && gguf_arr_strings(&kv->val, &toks, &err) == NOOK_OK);
    if (toks) {
        CHECK(gguf_str_eq(toks[3], "<0x00>"));
        CHECK(gguf_str_eq(toks[258], "<0xFF>"));
        nk_free(toks);
    }
    const gguf_kv *tt = gguf_find(f, "tokenizer.ggml.token_type");
    CHECK(tt && gguf_arr_i64(&tt->val, 3) == 6 && gguf_arr_i64(&tt->val, 1) == 3);

    uint64_t total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        CHECK_EQ_INT(f->tensors[i].type, 0);   /* all F32 */
        total += f->tensors[i].nbytes;
    }
    CHECK(total <= f->size - f->data_offset);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    const gguf_tensor *out = gguf_find_tensor(f, "output.weight");
    CHECK(emb && out);
    if (emb && out) {
        CHECK_EQ_INT(emb->n_dims, 2);
        CHECK_EQ_INT(emb->ne[0], 64);
        CHECK_EQ_INT(emb->ne[1], 512);
        CHECK_EQ_INT(emb->nbytes, 64 * 512 * 4);
        CHECK(emb->nbytes == out->nbytes && memcmp(emb->data, out->data, emb->nbytes) == 0);
        CHECK(((const uint8_t *)emb->data - f->base) % 32 == 0);
    }
    const gguf_tensor *n0 = gguf_find_tensor(f, "blk.0.attn_norm.weight");
    CHECK(n0 && n0->n_dims == 1 && n0->ne[0] == 64 && n0->ne[1] == 1);
    CHECK(gguf_find_tensor(f, "blk.5.attn_norm.weight") == NULL);
    CHECK(gguf_find_tensor(f, "") == NULL);
    unload(&l);
}

static void test_tiny_random(void) {
    loaded l;
    if (!load(&l, "llama-2-tiny-random.gguf")) return;
    const gguf_file *f = l.f;
    nook_error err;
    CHECK_EQ_INT(f->version, 3);
    CHECK_EQ_INT(f->n_tensors, 12);
    uint32_t u;
    CHECK(gguf_get_u32(f, "general.file_type", &u, &err) == NOOK_OK && u == 1);
    CHECK(gguf_get_u32(f, "llama.context_length", &u, &err) == NOOK_OK && u == 4096);
    CHECK_EQ_INT(arr_count(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING), 32000);
    int n_f16 = 0, n_f32 = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        n_f16 += f->tensors[i].type == 1;
        n_f32 += f->tensors[i].type == 0;
    }
    CHECK(n_f16 > 0 && n_f32 > 0 && n_f16 + n_f32 == 12);
    CHECK(gguf_find_tensor(f, "output.weight") != NULL);
    unload(&l);
}

static void test_vocab(const char *file, const char *arch, const char *model, uint64_t n_vocab, uint64_t n_merges) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/%s", file);
    loaded l;
    if (!load(&l, rel)) return;
    const gguf_file *f = l.f;
    nook_error err;
    gguf_str s;
    CHECK_MSG(gguf_get_str(f, "general.architecture", &s, &err) == NOOK_OK && gguf_str_eq(s, arch), "%s", file);
    CHECK_MSG(gguf_get_str(f, "tokenizer.ggml.model", &s, &err) == NOOK_OK && gguf_str_eq(s, model), "%s", file);
    CHECK_MSG(arr_count(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING) == n_vocab, "%s", file);
    if (n_merges) CHECK_MSG(arr_count(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING) == n_merges, "%s", file);
    /* walk every kv: every string and array lies inside the view */
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        CHECK(gguf_find(f, "") == NULL);
        char key[512];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        CHECK(gguf_find(f, key) == kv);
        if (kv->val.type == GGUF_TYPE_ARRAY && kv->val.v.arr.type == GGUF_TYPE_STRING) {
            const uint8_t *p = kv->val.v.arr.data;
            gguf_str e;
            for (uint64_t j = 0; j < kv->val.v.arr.count; j++) p = gguf_arr_str_next(p, &e);
            CHECK((uint64_t)(p - kv->val.v.arr.data) == kv->val.v.arr.nbytes);
        }
    }
    unload(&l);
}

int main(void) {
    test_stories();
    test_tiny_random();
    test_vocab("ggml-vocab-llama-spm.gguf", "llama", "llama", 32000, 0);
    test_vocab("ggml-vocab-phi-3.gguf", "phi3", "llama", 32064, 0);
    test_vocab("ggml-vocab-bert-bge.gguf", "bert", "bert", 30522, 0);
    test_vocab("ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", 50257, 50000);
    test_vocab("ggml-vocab-deepseek-coder.gguf", "llama", "gpt2", 32256, 31757);
    test_vocab("ggml-vocab-deepseek-llm.gguf", "llama", "gpt2", 102400, 99757);
    test_vocab("ggml-vocab-falcon.gguf", "falcon", "gpt2", 65024, 64784);
    test_vocab("ggml-vocab-mpt.gguf", "mpt", "gpt2", 50432, 50009);
    test_vocab("ggml-vocab-refact.gguf", "refact", "gpt2", 49216, 48891);
    test_vocab("ggml-vocab-starcoder.gguf", "starcoder2", "gpt2", 49152, 48872);
    /* the rest parse too (no SOURCES.md facts to pin) */
    const char *others[] = { "ggml-vocab-baichuan.gguf", "ggml-vocab-gpt-neox.gguf" };
    for (size_t i = 0; i < NK_ARRAY_LEN(others); i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "vocab/%s", others[i]);
        loaded l;
        if (load(&l, rel)) unload(&l);
    }
    NK_TEST_DONE();
}

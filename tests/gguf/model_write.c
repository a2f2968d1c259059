/*
 * model_write.c: copy real fixture files through the writer.
 *
 * Every fixture was written by llama.cpp's tools (gguf-py / ggml), so copying every
 * kv and tensor in order must reproduce it byte for byte: tensors padded to the
 * alignment with no gaps, and vocab-only files (no tensors) ending right after the
 * metadata. The copy must also re-parse to the same metadata and tensors.
 * With NOOK_GGUF_COPY_TO=<path> set, the stories260K copy is also written there (for
 * checking by hand that llama.cpp loads and runs our output).
 */
#include "gguf/gguf.h"
#include "nk_test.h"

static bool same_value(const gguf_value *a, const gguf_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case GGUF_TYPE_STRING:
        return a->v.str.len == b->v.str.len && memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len) == 0;
    case GGUF_TYPE_ARRAY:
        return a->v.arr.type == b->v.arr.type && a->v.arr.count == b->v.arr.count &&
               a->v.arr.nbytes == b->v.arr.nbytes && memcmp(a->v.arr.data, b->v.arr.data, a->v.arr.nbytes) == 0;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        return memcmp(&a->v.f64, &b->v.f64, sizeof(double)) == 0;
    default:
        return a->v.u64 == b->v.u64;
    }
}

/* Copy f into a fresh writer; NULL (after a failed CHECK) on error. */
static gguf_writer *copy_of(const gguf_file *f) {
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    if (!w) return NULL;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        nook_status st = gguf_set_kv_from(w, &f->kv[i]);
        CHECK_MSG(st == NOOK_OK, "kv %llu: %s", (unsigned long long)i, gguf_writer_error(w));
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char name[GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        nook_status st = gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
        CHECK_MSG(st == NOOK_OK, "tensor %s: %s", name, gguf_writer_error(w));
    }
    return w;
}

static void check_same(const gguf_file *a, const gguf_file *b) {
    CHECK_EQ_INT(a->n_kv, b->n_kv);
    CHECK_EQ_INT(a->n_tensors, b->n_tensors);
    CHECK_EQ_INT(a->alignment, b->alignment);
    for (uint64_t i = 0; i < a->n_kv && i < b->n_kv; i++) {
        CHECK(a->kv[i].key.len == b->kv[i].key.len &&
              memcmp(a->kv[i].key.ptr, b->kv[i].key.ptr, a->kv[i].key.len) == 0);
        CHECK_MSG(same_value(&a->kv[i].val, &b->kv[i].val), "kv %.*s", (int)a->kv[i].key.len, a->kv[i].key.ptr);
    }
    for (uint64_t i = 0; i < a->n_tensors && i < b->n_tensors; i++) {
        const gguf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        CHECK(x->name.len == y->name.len && memcmp(x->name.ptr, y->name.ptr, x->name.len) == 0);
        CHECK(x->type == y->type && x->n_dims == y->n_dims && x->nbytes == y->nbytes);
        CHECK(memcmp(x->ne, y->ne, sizeof x->ne) == 0);
        CHECK(memcmp(x->data, y->data, x->nbytes) == 0);
    }
}

static void copy_file(const char *rel, bool expect_identical, const char *copy_to) {
    char path[1024];
    nook_error err = { 0 };
    nk_map map;
    nk_test_fixture(path, sizeof path, rel);
    CHECK_MSG(nk_map_file(path, false, &map, &err) == NOOK_OK, "%s", err.msg);
    gguf_file *f = NULL, *g = NULL;
    CHECK_MSG(gguf_parse(map.data, map.size, &f, &err) == NOOK_OK, "%s: %s", rel, err.msg);
    if (!f) return;
    gguf_writer *w = copy_of(f);
    uint8_t *out = NULL;
    uint64_t len = 0;
    CHECK_MSG(w && gguf_write_mem(w, &out, &len, &err) == NOOK_OK, "%s", err.msg);
    if (out) {
        if (expect_identical) {
            CHECK_EQ_INT(len, map.size);
            CHECK_MSG(len == map.size && memcmp(out, map.data, len) == 0, "%s: copy differs from the original", rel);
        }
        CHECK_MSG(gguf_parse(out, len, &g, &err) == NOOK_OK, "%s copy: %s", rel, err.msg);
        if (g) check_same(f, g);
        gguf_free(g);
    }
    if (copy_to && w) {
        CHECK_MSG(gguf_write_file(w, copy_to, &err) == NOOK_OK, "%s", err.msg);
        nk_map m2;
        if (nk_map_file(copy_to, false, &m2, &err) == NOOK_OK) {
            CHECK(m2.size == len && out && memcmp(m2.data, out, len) == 0);
            nk_unmap(&m2);
        }
    }
    nk_free(out);
    gguf_writer_free(w);
    gguf_free(f);
    nk_unmap(&map);
}

int main(void) {
    copy_file("stories260K.gguf", true, getenv("NOOK_GGUF_COPY_TO"));
    copy_file("llama-2-tiny-random.gguf", true, NULL);
    static const char *vocab[] = {
        "baichuan", "bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2",
        "gpt-neox", "llama-spm", "mpt", "phi-3", "refact", "starcoder",
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(vocab); i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", vocab[i]);
        copy_file(rel, true, NULL);
    }
    NK_TEST_DONE();
}

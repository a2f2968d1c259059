/*
 * test_roundtrip.c: writer -> parser round trips of every value type, the typed
 * getters (conversions, range checks, wrong types), the array helpers, the writer's
 * layout and its argument checks, and a truncation sweep over a small valid file.
 */
#include "gguf/gguf.h"
#include "nk_test.h"

static const float k_f32[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
static const uint16_t k_f16[32] = { 0x3c00 };

/* A writer exercising every value type and a few tensor types. */
static gguf_writer *build(void) {
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    CHECK(gguf_set_str(w, "general.architecture", "llama") == NOOK_OK);
    CHECK(gguf_set_u32(w, "t.u32", 4000000000u) == NOOK_OK);
    CHECK(gguf_set_i32(w, "t.i32", -5) == NOOK_OK);
    CHECK(gguf_set_u64(w, "t.u64", 1ull << 40) == NOOK_OK);
    CHECK(gguf_set_f32(w, "t.f32", 1e-5f) == NOOK_OK);
    CHECK(gguf_set_bool(w, "t.bool", true) == NOOK_OK);
    CHECK(gguf_set_str(w, "t.empty", "") == NOOK_OK);
    /* the scalar types without a dedicated setter go through gguf_set_kv_from */
    static const struct { gguf_type t; uint64_t u; int64_t i; double f; const char *key; } more[] = {
        { GGUF_TYPE_UINT8, 200, 0, 0, "t.u8" },     { GGUF_TYPE_INT8, 0, -100, 0, "t.i8" },
        { GGUF_TYPE_UINT16, 60000, 0, 0, "t.u16" }, { GGUF_TYPE_INT16, 0, -30000, 0, "t.i16" },
        { GGUF_TYPE_INT64, 0, INT64_MIN, 0, "t.i64" }, { GGUF_TYPE_FLOAT64, 0, 0, 3.141592653589793, "t.f64" },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(more); i++) {
        gguf_kv kv = { .key = { more[i].key, strlen(more[i].key) }, .val = { .type = more[i].t } };
        if (more[i].t == GGUF_TYPE_FLOAT64) kv.val.v.f64 = more[i].f;
        else if (more[i].i) kv.val.v.i64 = more[i].i;
        else kv.val.v.u64 = more[i].u;
        CHECK(gguf_set_kv_from(w, &kv) == NOOK_OK);
    }
    const int32_t ia[3] = { -1, 0, 7 };
    const float fa[2] = { 0.5f, -2.25f };
    const uint8_t ba[3] = { 1, 0, 1 };
    const double da[2] = { 1e300, -0.0 };
    CHECK(gguf_set_arr(w, "a.i32", GGUF_TYPE_INT32, ia, 3) == NOOK_OK);
    CHECK(gguf_set_arr(w, "a.f32", GGUF_TYPE_FLOAT32, fa, 2) == NOOK_OK);
    CHECK(gguf_set_arr(w, "a.bool", GGUF_TYPE_BOOL, ba, 3) == NOOK_OK);
    CHECK(gguf_set_arr(w, "a.f64", GGUF_TYPE_FLOAT64, da, 2) == NOOK_OK);
    CHECK(gguf_set_arr(w, "a.empty", GGUF_TYPE_UINT8, NULL, 0) == NOOK_OK);
    const char *strs[3] = { "hello", "", "w\xc3\xb6rld" };
    CHECK(gguf_set_arr_str(w, "a.str", strs, NULL, 3) == NOOK_OK);
    const char *bin[1] = { "a\0b" };
    const uint64_t binlen[1] = { 3 };
    CHECK(gguf_set_arr_str(w, "a.bin", bin, binlen, 1) == NOOK_OK);
    /* replacing keeps the position: general.architecture stays first */
    CHECK(gguf_set_str(w, "general.architecture", "qwen2") == NOOK_OK);

    const uint64_t ne_f32[2] = { 4, 2 }, ne_f16[1] = { 32 }, ne_q8[2] = { 32, 1 };
    uint8_t q8[34] = { 0 };
    q8[33] = 0x7f;
    CHECK(gguf_add_tensor(w, "f32", 0, 2, ne_f32, k_f32, sizeof k_f32) == NOOK_OK);
    CHECK(gguf_add_tensor(w, "f16", 1, 1, ne_f16, k_f16, sizeof k_f16) == NOOK_OK);
    CHECK(gguf_add_tensor(w, "q8", 8, 2, ne_q8, q8, sizeof q8) == NOOK_OK);
    return w;
}

static void test_values(const gguf_file *f) {
    nook_error err = { 0 };
    CHECK_EQ_INT(f->version, 3);
    CHECK_EQ_INT(f->n_kv, 20);
    gguf_str s;
    CHECK(gguf_str_eq(f->kv[0].key, "general.architecture"));
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == NOOK_OK && gguf_str_eq(s, "qwen2"));
    CHECK(gguf_get_str(f, "t.empty", &s, &err) == NOOK_OK && s.len == 0);

    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    bool b = false;
    CHECK(gguf_get_u32(f, "t.u32", &u32, &err) == NOOK_OK && u32 == 4000000000u);
    CHECK(gguf_get_u32(f, "t.u8", &u32, &err) == NOOK_OK && u32 == 200);
    CHECK(gguf_get_u32(f, "t.u16", &u32, &err) == NOOK_OK && u32 == 60000);
    CHECK(gguf_get_i64(f, "t.i32", &i64, &err) == NOOK_OK && i64 == -5);
    CHECK(gguf_get_i64(f, "t.i8", &i64, &err) == NOOK_OK && i64 == -100);
    CHECK(gguf_get_i64(f, "t.i16", &i64, &err) == NOOK_OK && i64 == -30000);
    CHECK(gguf_get_i64(f, "t.i64", &i64, &err) == NOOK_OK && i64 == INT64_MIN);
    CHECK(gguf_get_i64(f, "t.u64", &i64, &err) == NOOK_OK && i64 == (1ll << 40));
    CHECK(gguf_get_i64(f, "t.u32", &i64, &err) == NOOK_OK && i64 == 4000000000ll);
    CHECK(gguf_get_f32(f, "t.f32", &f32, &err) == NOOK_OK && f32 == 1e-5f);
    CHECK(gguf_get_f32(f, "t.f64", &f32, &err) == NOOK_OK && f32 == (float)3.141592653589793);
    CHECK(gguf_get_f32(f, "t.i32", &f32, &err) == NOOK_OK && f32 == -5.0f);
    CHECK(gguf_get_bool(f, "t.bool", &b, &err) == NOOK_OK && b);
    const gguf_kv *kv = gguf_find(f, "t.f64");
    CHECK(kv && kv->val.type == GGUF_TYPE_FLOAT64 && kv->val.v.f64 == 3.141592653589793);

    /* range checks and wrong types: EFORMAT naming the key; out untouched on NOTFOUND */
    u32 = 123;
    CHECK(gguf_get_u32(f, "t.i32", &u32, &err) == NOOK_EFORMAT && strstr(err.msg, "t.i32") && strstr(err.msg, "uint32"));
    CHECK(gguf_get_u32(f, "t.u64", &u32, &err) == NOOK_EFORMAT && strstr(err.msg, "does not fit"));
    CHECK(gguf_get_u32(f, "t.f32", &u32, &err) == NOOK_EFORMAT && strstr(err.msg, "float32"));
    CHECK(gguf_get_u32(f, "missing", &u32, &err) == NOOK_ENOTFOUND && u32 == 123);
    CHECK(gguf_get_i64(f, "t.str", &i64, &err) == NOOK_ENOTFOUND);
    CHECK(gguf_get_i64(f, "general.architecture", &i64, &err) == NOOK_EFORMAT && strstr(err.msg, "string"));
    CHECK(gguf_get_f32(f, "t.bool", &f32, &err) == NOOK_EFORMAT && strstr(err.msg, "bool"));
    CHECK(gguf_get_bool(f, "t.u8", &b, &err) == NOOK_EFORMAT && strstr(err.msg, "t.u8"));
    CHECK(gguf_get_str(f, "t.u8", &s, &err) == NOOK_EFORMAT && strstr(err.msg, "uint8"));
    CHECK(gguf_get_arr(f, "t.u8", NULL, NULL, NULL, &err) == NOOK_EFORMAT && strstr(err.msg, "array"));

    gguf_type t;
    uint64_t n;
    const uint8_t *d;
    CHECK(gguf_get_arr(f, "a.i32", &t, &n, &d, &err) == NOOK_OK && t == GGUF_TYPE_INT32 && n == 3);
    kv = gguf_find(f, "a.i32");
    CHECK(gguf_arr_i64(&kv->val, 0) == -1 && gguf_arr_i64(&kv->val, 2) == 7 && gguf_arr_f64(&kv->val, 0) == -1.0);
    kv = gguf_find(f, "a.f32");
    CHECK(gguf_arr_f64(&kv->val, 1) == -2.25 && gguf_arr_i64(&kv->val, 1) == -2);
    kv = gguf_find(f, "a.bool");
    CHECK(gguf_arr_i64(&kv->val, 0) == 1 && gguf_arr_i64(&kv->val, 1) == 0);
    kv = gguf_find(f, "a.f64");
    CHECK(gguf_arr_f64(&kv->val, 0) == 1e300 && gguf_arr_i64(&kv->val, 0) == INT64_MAX);
    CHECK(gguf_get_arr(f, "a.empty", &t, &n, &d, &err) == NOOK_OK && t == GGUF_TYPE_UINT8 && n == 0);

    gguf_str *ss = NULL;
    kv = gguf_find(f, "a.str");
    CHECK(kv && gguf_arr_strings(&kv->val, &ss, &err) == NOOK_OK);
    if (ss) {
        CHECK(gguf_str_eq(ss[0], "hello") && gguf_str_eq(ss[1], "") && gguf_str_eq(ss[2], "w\xc3\xb6rld"));
        nk_free(ss);
    }
    kv = gguf_find(f, "a.bin");
    gguf_str e;
    CHECK(kv && gguf_arr_str_next(kv->val.v.arr.data, &e) && e.len == 3 && memcmp(e.ptr, "a\0b", 3) == 0);
    CHECK(gguf_arr_strings(&gguf_find(f, "a.i32")->val, &ss, &err) == NOOK_EFORMAT && ss == NULL &&
          strstr(err.msg, "array of int32"));

    /* tensors: llama.cpp layout, in order, each aligned, no gaps but padding */
    CHECK_EQ_INT(f->n_tensors, 3);
    const gguf_tensor *a = gguf_find_tensor(f, "f32"), *h = gguf_find_tensor(f, "f16"), *q = gguf_find_tensor(f, "q8");
    CHECK(a && h && q);
    if (a && h && q) {
        CHECK_EQ_INT(a->offset, 0);
        CHECK_EQ_INT(h->offset, 32);
        CHECK_EQ_INT(q->offset, 96);
        CHECK_EQ_INT(q->nbytes, 34);
        CHECK_EQ_INT(f->size, f->data_offset + 96 + 64);   /* the last tensor is padded too */
        CHECK(memcmp(a->data, k_f32, sizeof k_f32) == 0);
        CHECK(((const uint8_t *)q->data)[33] == 0x7f);
        CHECK_EQ_INT(a->ne[0], 4);
        CHECK_EQ_INT(a->ne[1], 2);
        CHECK_EQ_INT(a->ne[2], 1);
    }
}

static void test_writer_errors(void) {
    gguf_writer *w = gguf_writer_new();
    const uint64_t ne[2] = { 4, 2 };
    CHECK(gguf_add_tensor(w, "x", 0, 2, ne, k_f32, 31) == NOOK_EINVAL && strstr(gguf_writer_error(w), "need 32"));
    CHECK(gguf_add_tensor(w, "x", 99, 2, ne, k_f32, 32) == NOOK_EINVAL && strstr(gguf_writer_error(w), "unknown tensor type id 99"));
    const uint64_t ne33[1] = { 33 };
    CHECK(gguf_add_tensor(w, "x", 2, 1, ne33, k_f32, 18) == NOOK_EINVAL && strstr(gguf_writer_error(w), "block size"));
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = 0;
    CHECK(gguf_add_tensor(w, longname, 0, 2, ne, k_f32, 32) == NOOK_EINVAL && strstr(gguf_writer_error(w), "limit"));
    CHECK(gguf_add_tensor(w, "x", 0, 2, ne, k_f32, 32) == NOOK_OK);
    CHECK(gguf_add_tensor(w, "x", 0, 2, ne, k_f32, 32) == NOOK_EINVAL && strstr(gguf_writer_error(w), "duplicate"));
    CHECK(gguf_set_u32(w, "", 1) == NOOK_EINVAL);
    CHECK(gguf_set_u32(w, NULL, 1) == NOOK_EINVAL);
    CHECK(gguf_set_str(w, "k", NULL) == NOOK_EINVAL);
    CHECK(gguf_set_arr(w, "k", GGUF_TYPE_STRING, "x", 1) == NOOK_EINVAL);
    CHECK(gguf_set_arr(w, "k", GGUF_TYPE_UINT64, k_f32, 1ull << 62) == NOOK_EINVAL);

    /* alignment: invalid values are refused at write time, valid ones honoured */
    nook_error err = { 0 };
    uint8_t *out = NULL;
    uint64_t len = 0;
    CHECK(gguf_set_u32(w, "general.alignment", 48) == NOOK_OK);
    CHECK(gguf_write_mem(w, &out, &len, &err) == NOOK_EINVAL && strstr(err.msg, "power of two") && out == NULL);
    CHECK(gguf_set_u64(w, "general.alignment", 64) == NOOK_OK);
    CHECK(gguf_write_mem(w, &out, &len, &err) == NOOK_EINVAL && strstr(err.msg, "uint32"));
    CHECK(gguf_set_u32(w, "general.alignment", 64) == NOOK_OK);
    CHECK(gguf_write_mem(w, &out, &len, &err) == NOOK_OK);
    gguf_file *f = NULL;
    CHECK(out && gguf_parse(out, len, &f, &err) == NOOK_OK);
    if (f) {
        CHECK_EQ_INT(f->alignment, 64);
        CHECK_EQ_INT(f->data_offset % 64, 0);
        CHECK_EQ_INT(len, f->data_offset + 64);
        gguf_free(f);
    }
    nk_free(out);
    CHECK(gguf_write_file(w, "/nonexistent-dir/x.gguf", &err) == NOOK_EIO && strstr(err.msg, "nonexistent"));
    gguf_writer_free(w);
}

/* Every proper prefix of a valid file must fail cleanly; the parse is done on an
 * exact-size heap copy so ASan flags any read past the end. */
static void test_truncation(const uint8_t *file, uint64_t len) {
    gguf_file *f = NULL;
    nook_error err;
    CHECK(gguf_parse(file, len, &f, &err) == NOOK_OK);
    uint64_t need = 0;   /* the shortest valid length: end of the last tensor's bytes */
    for (uint64_t i = 0; f && i < f->n_tensors; i++)
        need = NK_MAX(need, f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes);
    gguf_free(f);
    int bad = 0;
    for (uint64_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        if (n) memcpy(copy, file, n);
        gguf_file *g = NULL;
        nook_status st = gguf_parse(copy, n, &g, &err);
        bool ok = n < need ? (st == NOOK_EFORMAT && g == NULL && strstr(err.msg, "gguf: ")) : st == NOOK_OK;
        if (!ok && bad++ < 5) fprintf(stderr, "prefix %llu: status %d: %s\n", (unsigned long long)n, st, err.msg);
        gguf_free(g);
        free(copy);
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void) {
    gguf_writer *w = build();
    uint8_t *out = NULL;
    uint64_t len = 0;
    nook_error err = { 0 };
    CHECK_MSG(gguf_write_mem(w, &out, &len, &err) == NOOK_OK, "%s", err.msg);
    gguf_file *f = NULL;
    CHECK_MSG(out && gguf_parse(out, len, &f, &err) == NOOK_OK, "%s", err.msg);
    if (f) {
        test_values(f);
        /* write -> parse -> copy -> write again gives the same bytes */
        gguf_writer *w2 = gguf_writer_new();
        for (uint64_t i = 0; i < f->n_kv; i++) CHECK(gguf_set_kv_from(w2, &f->kv[i]) == NOOK_OK);
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor *t = &f->tensors[i];
            char name[GGUF_MAX_NAME];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            CHECK(gguf_add_tensor(w2, name, t->type, t->n_dims, t->ne, t->data, t->nbytes) == NOOK_OK);
        }
        uint8_t *out2 = NULL;
        uint64_t len2 = 0;
        CHECK(gguf_write_mem(w2, &out2, &len2, &err) == NOOK_OK);
        CHECK(out2 && len2 == len && memcmp(out, out2, len) == 0);
        nk_free(out2);
        gguf_writer_free(w2);
        gguf_free(f);
        test_truncation(out, len);
    }
    nk_free(out);
    gguf_writer_free(w);
    test_writer_errors();
    NK_TEST_DONE();
}

/*
 * test_malformed.c: one hand-built bad file per validation rule of the reader. Each
 * check asserts the status code and that the message names the problem (and, where
 * the rule is about a position, the byte offset).
 */
#include "gguf_build.h"
#include "nk_test.h"

/* Parse exactly b's bytes from a heap copy of that size (so ASan sees any over-read). */
static nook_status parse_bytes(const gb *b, gguf_file **f, nook_error *err) {
    uint8_t *copy = malloc(b->len ? b->len : 1);
    if (b->len) memcpy(copy, b->p, b->len);
    nook_status st = gguf_parse(copy, b->len, f, err);
    if (st == NOOK_OK) {   /* the index points into copy: keep it alive by leaking into f's lifetime */
        gguf_free(*f);
        *f = NULL;
    }
    free(copy);
    return st;
}

static void expect(const char *what, gb *b, nook_status code, const char *needle, const char *needle2) {
    gguf_file *f = NULL;
    nook_error err = { 0 };
    nook_status st = parse_bytes(b, &f, &err);
    CHECK_MSG(st == code, "%s: status %d (%s), expected %d", what, st, err.msg, code);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg, needle);
    if (needle2) CHECK_MSG(strstr(err.msg, needle2) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg, needle2);
    CHECK_MSG(strncmp(err.msg, "gguf: ", 6) == 0, "%s: message \"%s\" lacks the gguf: prefix", what, err.msg);
    gb_free(b);
}

static void expect_ok(const char *what, gb *b) {
    gguf_file *f = NULL;
    nook_error err = { 0 };
    nook_status st = parse_bytes(b, &f, &err);
    CHECK_MSG(st == NOOK_OK, "%s: %s", what, err.msg);
    gb_free(b);
}

static const uint64_t ne_4x2[2] = { 4, 2 };   /* 8 floats = 32 bytes of F32 */

/* A minimal valid file with one F32 tensor of 32 bytes at offset off (1 tensor, n_kv kvs
 * emitted by the caller through kvs()). */
static void one_tensor_file(gb *b, uint32_t version, uint64_t off, uint64_t data_bytes) {
    gb_header(b, version, 1, 1);
    gb_kv_str(b, "general.architecture", "llama");
    gb_tensor(b, "w", 2, ne_4x2, 0, off);
    gb_pad(b, 32);
    gb_zeros(b, (size_t)data_bytes);
}

static void test_header(void) {
    gb b = { 0 };
    gb_u32(&b, 0x46554746u);   /* "FGUF" */
    gb_u32(&b, 3); gb_u64(&b, 0); gb_u64(&b, 0);
    expect("bad magic", &b, NOOK_EFORMAT, "bad magic", "offset 0");

    gb_u32(&b, GGUF_MAGIC); gb_u32(&b, 3); gb_u32(&b, 0);
    expect("truncated header", &b, NOOK_EFORMAT, "truncated header", "offset 8");

    b = (gb){ 0 };
    expect("empty file", &b, NOOK_EFORMAT, "truncated header", "magic");

    gb_header(&b, 1, 0, 0);
    expect("version 1", &b, NOOK_EUNSUPPORTED, "version 1", NULL);
    gb_header(&b, 4, 0, 0);
    expect("version 4", &b, NOOK_EUNSUPPORTED, "version 4", NULL);
    gb_header(&b, 0, 0, 0);
    expect("version 0", &b, NOOK_EFORMAT, "version 0", NULL);
    gb_header(&b, 0x03000000u, 0, 0);
    expect("byte-swapped", &b, NOOK_EUNSUPPORTED, "byte-swapped", "0x03000000");

    gb_header(&b, 2, 0, 0);
    expect_ok("version 2, empty", &b);
    gb_header(&b, 3, 0, 0);
    expect_ok("version 3, empty", &b);
    one_tensor_file(&b, 2, 0, 32);
    expect_ok("version 2 with a tensor", &b);

    gb_header(&b, 3, 0, 1ull << 62);
    expect("absurd kv count", &b, NOOK_EFORMAT, "kv count", "absurd");
    gb_header(&b, 3, 1ull << 62, 0);
    expect("absurd tensor count", &b, NOOK_EFORMAT, "tensor count", "absurd");
    gb_header(&b, 3, 2, 0);
    gb_zeros(&b, 30);
    expect("tensor count too large for the file", &b, NOOK_EFORMAT, "tensor count 2", NULL);
}

static void test_metadata(void) {
    gb b = { 0 };
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 20);
    gb_raw(&b, "general.arc", 11);
    expect("truncated key", &b, NOOK_EFORMAT, "truncated metadata", "offset 24");

    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "a", 1);
    gb_key(&b, "b", GGUF_TYPE_UINT64);
    gb_u32(&b, 7);   /* only 4 of 8 bytes */
    expect("truncated value", &b, NOOK_EFORMAT, "truncated metadata", "'b'");

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "s", GGUF_TYPE_STRING);
    gb_u64(&b, UINT64_MAX);
    gb_raw(&b, "xyzw", 4);
    expect("string longer than the file", &b, NOOK_EFORMAT, "length 18446744073709551615", "left");

    gb_header(&b, 3, 0, 1);
    gb_str(&b, "");
    gb_u32(&b, GGUF_TYPE_UINT8); gb_u8(&b, 1);
    gb_zeros(&b, 8);
    expect("empty key", &b, NOOK_EFORMAT, "empty key", "offset 24");

    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "general.x", 1);
    gb_kv_u32(&b, "general.x", 2);
    expect("duplicate key", &b, NOOK_EFORMAT, "duplicate key 'general.x'", "offset 49");

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 13);
    gb_u32(&b, 0);
    expect("unknown value type", &b, NOOK_EFORMAT, "unknown value type id 13", "offset 33");

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", 0xFFFFFFFFu);
    gb_u32(&b, 0);
    expect("negative value type", &b, NOOK_EFORMAT, "unknown value type id 4294967295", NULL);

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", GGUF_TYPE_ARRAY);
    gb_u32(&b, GGUF_TYPE_ARRAY); gb_u64(&b, 1);
    gb_u32(&b, GGUF_TYPE_UINT8); gb_u64(&b, 1); gb_u8(&b, 0);
    expect("nested array", &b, NOOK_EFORMAT, "nested arrays are not supported", "offset 37");

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", GGUF_TYPE_ARRAY);
    gb_u32(&b, 77); gb_u64(&b, 0);
    expect("unknown element type", &b, NOOK_EFORMAT, "unknown array element type id 77", NULL);

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", GGUF_TYPE_ARRAY);
    gb_u32(&b, GGUF_TYPE_UINT64); gb_u64(&b, 1ull << 61);   /* count * 8 would be 2^64 */
    gb_zeros(&b, 64);
    expect("array count * size overflows", &b, NOOK_EFORMAT, "claims 2305843009213693952 elements", NULL);

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", GGUF_TYPE_ARRAY);
    gb_u32(&b, GGUF_TYPE_FLOAT32); gb_u64(&b, 5);
    gb_zeros(&b, 16);
    expect("array longer than the file", &b, NOOK_EFORMAT, "claims 5 elements", "16 bytes are left");

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", GGUF_TYPE_ARRAY);
    gb_u32(&b, GGUF_TYPE_STRING); gb_u64(&b, 1000000);
    gb_zeros(&b, 64);
    expect("absurd string array count", &b, NOOK_EFORMAT, "string array", "claims 1000000 elements");

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "k", GGUF_TYPE_ARRAY);
    gb_u32(&b, GGUF_TYPE_STRING); gb_u64(&b, 2);
    gb_str(&b, "ok");
    gb_u64(&b, 100); gb_raw(&b, "short", 5);
    expect("string array element past the end", &b, NOOK_EFORMAT, "string array element", "length 100");
}

static void test_alignment(void) {
    gb b = { 0 };
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "general.alignment", GGUF_TYPE_UINT64);
    gb_u64(&b, 32);
    expect("alignment not u32", &b, NOOK_EFORMAT, "general.alignment must be a uint32", "uint64");

    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 0);
    expect("alignment 0", &b, NOOK_EFORMAT, "general.alignment 0", "power of two");
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 48);
    expect("alignment 48", &b, NOOK_EFORMAT, "general.alignment 48", "power of two");

    /* a valid custom alignment moves the data section */
    gb_header(&b, 3, 1, 1);
    gb_kv_u32(&b, "general.alignment", 256);
    gb_tensor(&b, "w", 2, ne_4x2, 0, 0);
    gb_pad(&b, 256);
    gb_zeros(&b, 32);
    gguf_file *f = NULL;
    nook_error err;
    CHECK_MSG(gguf_parse(b.p, b.len, &f, &err) == NOOK_OK, "%s", err.msg);
    if (f) {
        CHECK_EQ_INT(f->alignment, 256);
        CHECK_EQ_INT(f->data_offset, 256);
        CHECK(f->tensors[0].data == b.p + 256);
        gguf_free(f);
    }
    gb_free(&b);

    one_tensor_file(&b, 3, 16, 64);
    expect("misaligned tensor offset", &b, NOOK_EFORMAT, "not a multiple of the alignment 32", "offset 16");
}

static void test_tensor_infos(void) {
    gb b = { 0 };
    gb_header(&b, 3, 1, 1);   /* the kv makes the file long enough for the counts to be plausible */
    gb_kv_str(&b, "general.name", "a name long enough");
    gb_str(&b, "w");
    gb_u32(&b, 2);
    gb_u64(&b, 4);
    expect("truncated tensor info", &b, NOOK_EFORMAT, "truncated tensor info", "dimension");

    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "w", 2, ne_4x2, 0, 0);
    gb_tensor(&b, "w", 2, ne_4x2, 0, 32);
    gb_pad(&b, 32); gb_zeros(&b, 64);
    expect("duplicate tensor name", &b, NOOK_EFORMAT, "duplicate tensor name 'w'", "offset");

    char name64[65], name63[64];
    memset(name64, 'n', 64); name64[64] = 0;
    memset(name63, 'n', 63); name63[63] = 0;
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, name64, 2, ne_4x2, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("tensor name of 64 bytes", &b, NOOK_EFORMAT, "is 64 bytes, the limit is 63", NULL);
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, name63, 2, ne_4x2, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect_ok("tensor name of 63 bytes", &b);

    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, ne_4x2, 99, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("unknown tensor type", &b, NOOK_EUNSUPPORTED, "unknown tensor type id 99", "'w'");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, ne_4x2, 4, 0);   /* the retired Q4_2 */
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("retired tensor type", &b, NOOK_EUNSUPPORTED, "unknown tensor type id 4", NULL);

    const uint64_t ne_iq[1] = { 256 };   /* sized by the traits table though nook cannot compute with it */
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, ne_iq, 16 /* IQ2_XXS */, 0);
    gb_pad(&b, 32); gb_zeros(&b, 66);
    expect_ok("known but uncomputable tensor type", &b);

    const uint64_t ne5[5] = { 1, 1, 1, 1, 1 };
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 5, ne5, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("n_dims 5", &b, NOOK_EFORMAT, "n_dims 5 exceeds the maximum of 4", "offset 33");

    const uint64_t ne_zero[3] = { 4, 0, 2 };
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 3, ne_zero, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("zero dim", &b, NOOK_EFORMAT, "dimension 1 is zero", NULL);

    const uint64_t ne_big[3] = { 1ull << 32, 1ull << 32, 1ull << 32 };
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 3, ne_big, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("dims product overflows", &b, NOOK_EFORMAT, "element count overflows", NULL);

    const uint64_t ne_neg[1] = { UINT64_MAX };
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, ne_neg, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("negative dim", &b, NOOK_EFORMAT, "dimension 0", "too large");

    /* F32 of 2^61 elements: the count fits in int64 but the byte size does not */
    const uint64_t ne_bytes[1] = { 1ull << 62 };
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, ne_bytes, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 32);
    expect("byte size overflows", &b, NOOK_EFORMAT, "byte size overflows", NULL);

    const uint64_t ne_q[2] = { 33, 1 };
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, ne_q, 2 /* Q4_0 */, 0);
    gb_pad(&b, 32); gb_zeros(&b, 64);
    expect("row not a multiple of the block", &b, NOOK_EFORMAT, "ne[0] = 33 is not a multiple of the block size 32", "Q4_0");
}

static void test_tensor_data(void) {
    gb b = { 0 };
    one_tensor_file(&b, 3, 0, 31);
    expect("tensor data past the end", &b, NOOK_EFORMAT, "'w'", "outside the file");

    one_tensor_file(&b, 3, 0, 32);
    expect_ok("tensor data exactly to the end", &b);

    one_tensor_file(&b, 3, UINT64_MAX - 31, 32);   /* aligned, and offset + size wraps */
    expect("tensor offset wraps", &b, NOOK_EFORMAT, "outside the file", NULL);

    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, ne_4x2, 0, 0);
    expect("data section beyond the file", &b, NOOK_EFORMAT, "beyond the end of the file", NULL);

    const uint64_t ne16[1] = { 16 };   /* 64 bytes */
    gb_header(&b, 3, 3, 0);
    gb_tensor(&b, "a", 1, ne16, 0, 0);
    gb_tensor(&b, "b", 1, ne16, 0, 96);
    gb_tensor(&b, "c", 1, ne16, 0, 32);   /* [32, 96) overlaps a = [0, 64) */
    gb_pad(&b, 32); gb_zeros(&b, 160);
    expect("overlapping tensors", &b, NOOK_EFORMAT, "overlap", "'a' [0, 64) and 'c' [32, 96)");

    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "a", 1, ne16, 0, 64);
    gb_tensor(&b, "b", 1, ne16, 0, 64);
    gb_pad(&b, 32); gb_zeros(&b, 128);
    expect("tensors at the same offset", &b, NOOK_EFORMAT, "overlap", NULL);

    gb_header(&b, 3, 2, 0);   /* out of order and with a gap: allowed (we check alignment only) */
    gb_tensor(&b, "a", 1, ne16, 0, 128);
    gb_tensor(&b, "b", 1, ne16, 0, 0);
    gb_pad(&b, 32); gb_zeros(&b, 192);
    expect_ok("tensors out of order with a gap", &b);
}

int main(void) {
    test_header();
    test_metadata();
    test_alignment();
    test_tensor_infos();
    test_tensor_data();
    NK_TEST_DONE();
}

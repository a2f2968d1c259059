/* Base layer: errors, fp16/bf16 conversion, UTF-8 validation, allocation. */
#include "base/base.h"
#include "nk_test.h"

static void test_errors(void) {
    nook_error e;
    CHECK(nk_fail(&e, NOOK_EFORMAT, "bad %s at %d", "thing", 7) == NOOK_EFORMAT);
    CHECK_STR(e.msg, "bad thing at 7");
    nk_prefix(&e, "%s: ", "file.gguf");
    CHECK_STR(e.msg, "file.gguf: bad thing at 7");
    CHECK(nk_fail(NULL, NOOK_EIO, "no sink") == NOOK_EIO);
    CHECK_STR(nook_status_str(NOOK_ERANGE), "limit exceeded");
}

static void test_fp16(void) {
    CHECK(nk_fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(nk_fp16_to_fp32(0xc000) == -2.0f);
    CHECK(nk_fp16_to_fp32(0x0001) == 5.9604644775390625e-08f);   /* smallest subnormal */
    CHECK(nk_fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(isinf(nk_fp16_to_fp32(0x7c00)));
    CHECK(nk_fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(nk_fp32_to_fp16(65520.0f) == 0x7c00);                   /* rounds to inf */
    CHECK(nk_fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00);         /* tie to even */
    CHECK(nk_fp32_to_fp16(1.0f + 3.0f / 2048) == 0x3c02);         /* tie to even, up */
    /* every finite half survives a round trip */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        if (nk_fp32_to_fp16(nk_fp16_to_fp32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(nk_bf16_to_fp32(0x3f80) == 1.0f);
    CHECK(nk_fp32_to_bf16(1.0f) == 0x3f80);
    CHECK(nk_fp32_to_bf16(1.00390625f) == 0x3f80);                 /* tie to even */
}

static void test_utf8(void) {
    CHECK(nk_utf8_invalid_at("hello", 5) == -1);
    CHECK(nk_utf8_invalid_at("h\xc3\xa9llo", 6) == -1);
    CHECK(nk_utf8_invalid_at("\xf0\x9f\x98\x80", 4) == -1);
    CHECK(nk_utf8_invalid_at("ab\xff", 3) == 2);
    CHECK(nk_utf8_invalid_at("ab\xc3", 3) == 2);               /* truncated */
    CHECK(nk_utf8_invalid_at("\xc0\x80", 2) == 0);             /* overlong */
    CHECK(nk_utf8_invalid_at("\xed\xa0\x80", 3) == 0);         /* surrogate */
    CHECK(nk_utf8_invalid_at("\xf4\x90\x80\x80", 4) == 0);     /* > U+10FFFF */
}

static void test_alloc(void) {
    CHECK(nk_alloc_array(SIZE_MAX / 2, 4) == NULL);
    void *p = nk_aligned_alloc(100);
    CHECK(p && ((uintptr_t)p & 63) == 0);
    nk_aligned_free(p);
    char *s = nk_strndup("abcdef", 3);
    CHECK_STR(s, "abc");
    nk_free(s);
}

int main(void) {
    test_errors();
    test_fp16();
    test_utf8();
    test_alloc();
    NK_TEST_DONE();
}

/* Base layer: the three ways of holding a file (nk_map_file, nk_map_file_huge,
 * nk_load_file) give the same bytes, for sizes around page and 2 MB boundaries and
 * for a file large enough to take the 2 MB page-cache path; errors name the file. */
#include "base/base.h"
#include "nk_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint8_t byte_at(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static bool write_file(const char *path, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    uint8_t buf[65536];
    for (size_t off = 0; off < n; off += sizeof buf) {
        size_t k = NK_MIN(sizeof buf, n - off);
        for (size_t i = 0; i < k; i++) buf[i] = byte_at(off + i);
        if (fwrite(buf, 1, k, f) != k) { fclose(f); return false; }
    }
    return fclose(f) == 0;
}

static bool same_bytes(const nk_map *m, size_t n) {
    if (m->size != n) return false;
    for (size_t i = 0; i < n; i++)
        if (m->data[i] != byte_at(i)) return false;
    return true;
}

static void check_size(const char *path, size_t n) {
    CHECK(write_file(path, n));
    nook_error err = { 0 };
    nk_map a, b, c;
    CHECK_MSG(nk_map_file(path, false, &a, &err) == NOOK_OK, "%s", err.msg);
    CHECK_MSG(nk_map_file_huge(path, &b, &err) == NOOK_OK, "%s", err.msg);
    CHECK_MSG(nk_load_file(path, 3, &c, &err) == NOOK_OK, "%s", err.msg);
    CHECK_MSG(same_bytes(&a, n) && same_bytes(&b, n) && same_bytes(&c, n), "size %zu: contents differ", n);
    if (n >= ((size_t)2 << 20)) {
        CHECK(((uintptr_t)b.data & (((uintptr_t)2 << 20) - 1)) == 0);   /* 2 MB aligned */
        CHECK(((uintptr_t)c.data & (((uintptr_t)2 << 20) - 1)) == 0);
    }
    nk_unmap(&a);
    nk_unmap(&b);
    nk_unmap(&c);
    CHECK(a.data == NULL && b.data == NULL && c.data == NULL);
    /* a second huge mapping of the same (now possibly re-read) file: same bytes */
    CHECK_MSG(nk_map_file_huge(path, &b, &err) == NOOK_OK, "%s", err.msg);
    CHECK(same_bytes(&b, n));
    nk_unmap(&b);
}

int main(void) {
    char path[] = "/tmp/nook_test_file_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    const size_t mb2 = (size_t)2 << 20;
    const size_t sizes[] = { 0, 1, 4095, 4096, 4097, mb2 - 1, mb2, mb2 + 1, 3 * mb2 + 12345,
                             40 * mb2 + 777 /* above the 32 MB re-read threshold */ };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) check_size(path, sizes[i]);
    remove(path);

    nook_error err = { 0 };
    nk_map m;
    CHECK(nk_map_file_huge("/nonexistent/nook.gguf", &m, &err) == NOOK_EIO);
    CHECK(strstr(err.msg, "/nonexistent/nook.gguf") != NULL);
    CHECK(nk_load_file("/nonexistent/nook.gguf", 2, &m, &err) == NOOK_EIO);
    CHECK(nk_load_file("/tmp", 2, &m, &err) == NOOK_EIO);
    CHECK_MSG(strstr(err.msg, "not a regular file") != NULL, "%s", err.msg);
    CHECK(nk_map_file_huge("/tmp", &m, &err) == NOOK_EIO);
    NK_TEST_DONE();
}

/*
 * test_dataset.c: training files: what parses, and that every malformed file gets a
 * clear error naming its line (invalid JSON, missing fields, empty texts, one label
 * only, a line over the limit, a 1 GB line read from a sparse file without loading it).
 */
#include "nk_test.h"
#include "specialist/specialist.h"

#include <fcntl.h>

static void expect_error(const char *src, const char *want1, const char *want2) {
    nk_dataset d;
    nook_error err = { 0 };
    nook_status st = nk_dataset_parse(src, strlen(src), "t.jsonl", true, &d, &err);
    CHECK_MSG(st != NOOK_OK, "accepted: %s", src);
    CHECK_MSG(strstr(err.msg, want1) != NULL, "message '%s' lacks '%s'", err.msg, want1);
    if (want2) CHECK_MSG(strstr(err.msg, want2) != NULL, "message '%s' lacks '%s'", err.msg, want2);
    CHECK(d.n == 0 && d.texts == NULL);
}

int main(void) {
    nk_dataset d;
    nook_error err = { 0 };
    const char *ok = "{\"text\": \"the cat sat\", \"label\": \"animal\"}\n"
                     "\n"
                     "{\"text\": \"ÜBER straße\", \"label\": 7, \"extra\": [1,2]}\r\n"
                     "{\"label\": \"animal\", \"text\": \"a dog\"}";
    CHECK(nk_dataset_parse(ok, strlen(ok), "ok.jsonl", true, &d, &err) == NOOK_OK);
    CHECK_EQ_INT(d.n, 3);
    CHECK_EQ_INT(d.n_labels, 2);
    CHECK_STR(d.label_names[0], "animal");
    CHECK_STR(d.label_names[1], "7");
    CHECK_EQ_INT(d.labels[2], 0);
    CHECK_EQ_INT(d.lines[1], 3);
    CHECK_EQ_INT(d.lines[2], 4);
    CHECK_STR(d.texts[1], "ÜBER straße");
    CHECK(nk_dataset_check_trainable(&d, "ok.jsonl", &err) == NOOK_OK);
    nk_dataset_free(&d);

    expect_error("{\"text\":\"a\",\"label\":\"x\"}\n{\"text\": \"b\", \"label\": }\n", "t.jsonl:2:", "invalid JSON");
    expect_error("{\"text\":\"a\",\"label\":\"x\"}\n[1,2]\n", "t.jsonl:2:", "JSON object");
    expect_error("\n\n{\"label\":\"x\"}\n", "t.jsonl:3:", "missing \"text\"");
    expect_error("{\"text\":\"a\"}\n", "t.jsonl:1:", "missing \"label\"");
    expect_error("{\"text\":\"  \\n \",\"label\":\"x\"}\n", "t.jsonl:1:", "empty");
    expect_error("{\"text\":\"\",\"label\":\"x\"}\n", "t.jsonl:1:", "empty");
    expect_error("{\"text\":5,\"label\":\"x\"}\n", "t.jsonl:1:", "not a string");
    expect_error("{\"text\":\"a\",\"label\":[1]}\n", "t.jsonl:1:", "label");
    expect_error("{\"text\":\"a\",\"label\":\"\"}\n", "t.jsonl:1:", "label");
    expect_error("{\"text\":\"a\\u0000b\",\"label\":\"x\"}\n", "t.jsonl:1:", "NUL");
    expect_error("{\"text\":\"a\",\"text\":\"b\",\"label\":\"x\"}\n", "t.jsonl:1:", "invalid JSON");
    expect_error("{\"text\":\"\xff\xfe\",\"label\":\"x\"}\n", "t.jsonl:1:", "invalid JSON");

    /* a line over the limit, in memory */
    size_t big = NK_SPEC_MAX_LINE + 10;
    char *b = malloc(big + 1);
    memset(b, 'a', big);
    b[big] = 0;
    memcpy(b, "{\"text\":\"", 9);
    CHECK(nk_dataset_parse(b, big, "big.jsonl", true, &d, &err) == NOOK_EFORMAT);
    CHECK(strstr(err.msg, "big.jsonl:1: line is longer than") != NULL);
    free(b);

    /* one label only */
    const char *one = "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"x\"}\n";
    CHECK(nk_dataset_parse(one, strlen(one), "one.jsonl", true, &d, &err) == NOOK_OK);
    CHECK(nk_dataset_check_trainable(&d, "one.jsonl", &err) == NOOK_EINVAL);
    CHECK(strstr(err.msg, "'x'") && strstr(err.msg, "at least two labels"));
    nk_dataset_free(&d);

    /* texts without labels (what classify reads) are not training data (found by the fuzzer) */
    const char *nolab = "{\"text\":\"a\"}\n";
    CHECK(nk_dataset_parse(nolab, strlen(nolab), "n.jsonl", false, &d, &err) == NOOK_OK);
    CHECK(nk_dataset_check_trainable(&d, "n.jsonl", &err) == NOOK_EINVAL);
    CHECK(strstr(err.msg, "no labels") != NULL);
    nk_dataset_free(&d);

    /* files: a 1 GB line (a sparse file: no disk, and the reader stops after 1 MiB) */
    char path[] = "/tmp/nook_test_dataset_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *head = "{\"text\":\"fine\",\"label\":\"a\"}\n{\"text\":\"";
    CHECK(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
    CHECK(ftruncate(fd, (off_t)1 << 30) == 0);
    close(fd);
    CHECK(nk_dataset_read(path, true, &d, &err) == NOOK_EFORMAT);
    CHECK_MSG(strstr(err.msg, ":2: line is longer than 1048576 bytes") != NULL, "%s", err.msg);
    /* the same reader on a good file */
    FILE *f = fopen(path, "w");
    fputs("{\"text\":\"one\",\"label\":\"a\"}\n{\"text\":\"two\",\"label\":\"b\"}", f);
    fclose(f);
    CHECK(nk_dataset_read(path, true, &d, &err) == NOOK_OK);
    CHECK_EQ_INT(d.n, 2);
    nk_dataset_free(&d);
    unlink(path);
    CHECK(nk_dataset_read("/nonexistent/x.jsonl", true, &d, &err) == NOOK_EIO);
    CHECK(strstr(err.msg, "/nonexistent/x.jsonl") != NULL);
    NK_TEST_DONE();
}

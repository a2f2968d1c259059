/*
 * nk_test.h: the tiny test harness every test program includes.
 *
 * A test is a C program: main() calls CHECK*()s and ends with NK_TEST_DONE(), which
 * prints "N passed, M failed" and returns non-zero on any failure. A test that needs
 * a fixture that is absent calls nk_test_skip(), which prints why and exits 77 (ctest
 * reports it as skipped, never as passed).
 */
#ifndef NK_TEST_H
#define NK_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int nk_t_pass, nk_t_fail;

#define CHECK(cond) do { \
    if (cond) nk_t_pass++; \
    else { nk_t_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_MSG(cond, ...) do { \
    if (cond) nk_t_pass++; \
    else { nk_t_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

#define CHECK_EQ_INT(a, b) do { \
    long long nk_a = (long long)(a), nk_b = (long long)(b); \
    if (nk_a == nk_b) nk_t_pass++; \
    else { nk_t_fail++; fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", \
           __FILE__, __LINE__, #a, #b, nk_a, nk_b); } \
} while (0)

#define CHECK_NEAR(a, b, tol) do { \
    double nk_a = (double)(a), nk_b = (double)(b); \
    if (fabs(nk_a - nk_b) <= (tol)) nk_t_pass++; \
    else { nk_t_fail++; fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", \
           __FILE__, __LINE__, #a, #b, (double)(tol), nk_a, nk_b); } \
} while (0)

#define CHECK_STR(a, b) do { \
    const char *nk_a = (a), *nk_b = (b); \
    if (nk_a && nk_b && strcmp(nk_a, nk_b) == 0) nk_t_pass++; \
    else { nk_t_fail++; fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" vs \"%s\"\n", \
           __FILE__, __LINE__, #a, #b, nk_a ? nk_a : "(null)", nk_b ? nk_b : "(null)"); } \
} while (0)

#define NK_TEST_DONE() do { \
    printf("%d passed, %d failed\n", nk_t_pass, nk_t_fail); \
    return nk_t_fail ? 1 : 0; \
} while (0)

static inline void nk_test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

/* Directory of fixture models: $NOOK_TEST_MODELS, else ../shared/models. */
static inline const char *nk_test_models(void) {
    const char *d = getenv("NOOK_TEST_MODELS");
    return d && *d ? d : "../shared/models";
}

/* Path of a fixture file in buf; skips the test (exit 77) if it does not exist. */
static inline const char *nk_test_fixture(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", nk_test_models(), rel);
    if (access(buf, R_OK) != 0) {
        char why[4200];
        snprintf(why, sizeof why, "fixture %s not found (set NOOK_TEST_MODELS)", buf);
        nk_test_skip(why);
    }
    return buf;
}

#endif

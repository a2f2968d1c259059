/*
 * model_corpus_parity: nook tokenizes a varied corpus exactly as llama.cpp does, for the
 * real Qwen3, Llama 3 and Gemma 3 tokenizers (fixtures hf/{qwen3,llama3,gemma3}).
 *
 * Each tokenizer folder is imported at test time with nk_hf_import_vocab_gguf (what
 * `nook import-tokenizer` runs) into a temporary GGUF, loaded with gguf_parse +
 * nk_vocab_load, and every string of tests/data/tokenizer/corpus/corpus.txt (code, CJK,
 * emoji sequences, numbers, whitespace runs, accents, RTL and Indic scripts,
 * contractions, special-token-looking text, War and Peace passages) is tokenized with
 * add_special off and parse_special off and on. The ids must equal the goldens
 * <family>.special-<0|1>.out, which are llama.cpp's output on the same GGUF
 * (tools/tok_goldens/make.sh). Any mismatch prints the string index, the string and both
 * id lists.
 *
 * Families: all three by default; a file that defines NK_CORPUS_ONLY to a family name
 * before including this one runs just that family (model_corpus_parity_gemma3.c: the
 * Gemma 3 import is the slow part under ASan, so it runs as its own test), and this
 * file then skips it.
 */
#include "tok_test_util.h"
#include "tokenizer/hf_import.h"

#include <errno.h>
#include <stdlib.h>

#define CORPUS_DIR "tests/data/tokenizer/corpus"
#define MAX_STRINGS 512

/* Print at most 40 ids of a list (long strings have thousands). */
static void print_ids(const char *label, const nook_token *ids, size_t n) {
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* Import fixture hf/<family> into a temporary vocab-only GGUF and load it. Skips the
 * whole test (exit 77) when the fixture is absent. */
static bool load_family(const char *family, tt_vocab *tv) {
    char probe[1024], dir[1024], rel[128];
    snprintf(rel, sizeof rel, "hf/%s/tokenizer.json", family);
    nk_test_fixture(probe, sizeof probe, rel);
    snprintf(dir, sizeof dir, "%s/hf/%s", nk_test_models(), family);

    const char *tmpdir = getenv("TMPDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/nk_corpus_%s_XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp", family);
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK_MSG(false, "mkstemp %s: %s", path, strerror(errno));
        return false;
    }
    close(fd);
    nook_error err = { 0 };
    double t0 = nk_time_ms();
    nook_status st = nk_hf_import_vocab_gguf(dir, NULL, path, &err);
    double t1 = nk_time_ms();
    if (!st) st = tt_load(tv, path, &err);
    unlink(path);   /* the mapping stays valid after unlink */
    printf("%s: import %.0f ms, load %.0f ms\n", family, t1 - t0, nk_time_ms() - t1);
    CHECK_MSG(st == NOOK_OK, "%s: %s", family, err.msg);
    return st == NOOK_OK;
}

/* Tokenize every string with parse_special = special and compare with the golden file;
 * returns the number of strings that match. */
static int run_golden(const char *family, const nk_vocab *v, bool special, char **strs,
                      size_t *lens, int n) {
    char path[256];
    snprintf(path, sizeof path, CORPUS_DIR "/%s.special-%d.out", family, special ? 1 : 0);
    char *golden = NULL;
    size_t glen = 0;
    nook_error err = { 0 };
    if (nk_read_file(path, &golden, &glen, &err)) {
        CHECK_MSG(false, "%s", err.msg);
        return 0;
    }
    size_t maxlen = 0;
    for (int i = 0; i < n; i++) if (lens[i] > maxlen) maxlen = lens[i];
    /* One token per byte at most (byte fallback), and the golden can be no longer than
     * the text either, so maxlen + a margin bounds both lists. */
    size_t cap = maxlen + 16;
    nook_token *want = nk_malloc(cap * sizeof *want), *got = nk_malloc(cap * sizeof *got);
    if (!want || !got) {
        CHECK_MSG(false, "out of memory");
        nk_free(want); nk_free(got); nk_free(golden);
        return 0;
    }
    const char *line = golden, *end = golden + glen;
    int pass = 0, lines = 0;
    for (int i = 0; i < n; i++) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) {
            CHECK_MSG(false, "%s: %d lines for %d corpus strings", path, lines, n);
            break;
        }
        lines++;
        int nw = tt_parse_ids(line, eol, want, (int)cap);
        line = eol + 1;
        size_t ng = 0;
        err.msg[0] = 0;
        nook_status st = nk_vocab_tokenize(v, strs[i], lens[i], false, special, got, cap, &ng, &err);
        bool ok = st == NOOK_OK && ng == (size_t)nw && memcmp(got, want, ng * sizeof *got) == 0;
        CHECK_MSG(ok, "%s parse_special=%d string %d mismatch", family, special, i);
        if (ok) {
            pass++;
            continue;
        }
        fprintf(stderr, "  text: \"%.*s\"%s\n", lens[i] > 160 ? 160 : (int)lens[i], strs[i],
                lens[i] > 160 ? "..." : "");
        if (st) fprintf(stderr, "  status %d: %s\n", (int)st, err.msg);
        size_t k = 0;
        while (k < ng && k < (size_t)nw && got[k] == want[k]) k++;
        fprintf(stderr, "  first difference at token %zu\n", k);
        print_ids("want", want, (size_t)nw);
        print_ids("got ", got, ng);
    }
    if (line != end) CHECK_MSG(false, "%s: more lines than the %d corpus strings", path, n);
    printf("%s parse_special=%d: %d/%d strings match llama.cpp\n", family, special, pass, n);
    nk_free(want);
    nk_free(got);
    nk_free(golden);
    return pass;
}

int main(void) {
    static const char *families[] = { "qwen3", "llama3", "gemma3" };
    char *corpus = NULL;
    size_t clen = 0;
    nook_error err = { 0 };
    if (nk_read_file(CORPUS_DIR "/corpus.txt", &corpus, &clen, &err)) {
        CHECK_MSG(false, "%s", err.msg);
        NK_TEST_DONE();
    }
    static char *strs[MAX_STRINGS];
    static size_t lens[MAX_STRINGS];
    int n = tt_split_inp(corpus, clen, strs, lens, MAX_STRINGS);
    CHECK_MSG(n >= 60, "corpus has %d strings", n);

    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
#ifdef NK_CORPUS_ONLY
        if (strcmp(families[f], NK_CORPUS_ONLY) != 0) continue;
#else
        if (strcmp(families[f], "gemma3") == 0) continue;   /* model_corpus_parity_gemma3 */
#endif
        tt_vocab tv;
        if (!load_family(families[f], &tv)) continue;
        int p0 = run_golden(families[f], tv.v, false, strs, lens, n);
        int p1 = run_golden(families[f], tv.v, true, strs, lens, n);
        printf("%s: %d/%d (parse_special off), %d/%d (on)\n", families[f], p0, n, p1, n);
        tt_free(&tv);
    }
    nk_free(corpus);
    NK_TEST_DONE();
}

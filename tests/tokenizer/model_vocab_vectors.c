/*
 * model_vocab_vectors.c: every llama.cpp tokenizer test vector we have a vocabulary for
 * (vocab/ggml-vocab-*.gguf with .inp/.out), tokenized with add_special=false and
 * parse_special=false, must give exactly llama.cpp's ids. Prints per-file counts.
 * Vocabularies of a tokenizer type nook does not implement (WordPiece) are listed as
 * skipped; any mismatch fails the test.
 */
#include "tok_test_util.h"

#include <dirent.h>

#define MAX_TESTS 256
#define MAX_IDS 4096

static int run_file(const char *dir, const char *name) {
    char path[2048], inp[2100], outp[2100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(outp, sizeof outp, "%s.out", path);
    if (access(inp, R_OK) || access(outp, R_OK)) return 0;
    tt_vocab t;
    nook_error err;
    nook_status st = tt_load(&t, path, &err);
    if (st == NOOK_EUNSUPPORTED) { printf("%-34s skipped: %s\n", name, err.msg); return 0; }
    CHECK_MSG(st == NOOK_OK, "%s: %s", name, err.msg);
    if (st) return 0;
    char *ib, *ob; size_t il, ol;
    if (nk_read_file(inp, &ib, &il, &err) || nk_read_file(outp, &ob, &ol, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        tt_free(&t);
        return 0;
    }
    char *strs[MAX_TESTS]; size_t lens[MAX_TESTS];
    int n = tt_split_inp(ib, il, strs, lens, MAX_TESTS);
    static nook_token want[MAX_IDS], got[MAX_IDS];
    const char *line = ob;
    int pass = 0;
    for (int i = 0; i < n; i++) {
        const char *eol = memchr(line, '\n', (size_t)(ob + ol - line));
        if (!eol) eol = ob + ol;
        int nw = tt_parse_ids(line, eol, want, MAX_IDS);
        line = eol < ob + ol ? eol + 1 : eol;
        size_t ng = 0;
        st = nk_vocab_tokenize(t.v, strs[i], lens[i], false, false, got, MAX_IDS, &ng, &err);
        bool ok = st == NOOK_OK && (int)ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0;
        if (ok) { pass++; continue; }
        fprintf(stderr, "%s #%d: text \"%.*s\"\n  want:", name, i, (int)NK_MIN(lens[i], 80), strs[i]);
        for (int k = 0; k < nw && k < 40; k++) fprintf(stderr, " %d", want[k]);
        fprintf(stderr, "\n  got: ");
        for (size_t k = 0; k < ng && k < 40; k++) fprintf(stderr, " %d", got[k]);
        fprintf(stderr, "%s\n", st ? err.msg : "");
    }
    printf("%-34s %d/%d\n", name, pass, n);
    CHECK_MSG(pass == n && n > 0, "%s: %d of %d vectors match", name, pass, n);
    nk_free(ib); nk_free(ob);
    tt_free(&t);
    return 1;
}

int main(void) {
    char dir[1024];
    nk_test_fixture(dir, sizeof dir, "vocab");
    DIR *d = opendir(dir);
    if (!d) nk_test_skip("cannot open vocab dir");
    static char names[64][256];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0) { if (l < 250) memcpy(names[nn++], e->d_name, l + 1); }
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    int files = 0;
    for (int i = 0; i < nn; i++) files += run_file(dir, names[i]);
    CHECK(files >= 9);
    NK_TEST_DONE();
}

/*
 * model_hf_vocabs.c: vocabularies imported from Hugging Face tokenizers (nk_hf_import)
 * tokenized by nook: Qwen3's tokenizer must reproduce llama.cpp's qwen2 vectors
 * (Qwen1.5's tokenizer; same ids for ordinary text), Llama 3's the llama-bpe vectors,
 * and Gemma 3's 262k SPM-style vocabulary (add_space_prefix false) must load and
 * round-trip the vector strings.
 */
#include "tok_test_util.h"
#include "tokenizer/hf_import.h"

#define MAX_IDS 4096

static nk_vocab *import(const char *rel, const char *arch, gguf_file **gf, uint8_t **img) {
    char dir[1024];
    nk_test_fixture(dir, sizeof dir, rel);
    nook_error err;
    gguf_writer *w = gguf_writer_new();
    uint64_t len;
    nk_vocab *v = NULL;
    nook_status st = nk_hf_import_tokenizer_arch(dir, arch, w, &err);
    if (!st) st = gguf_set_str(w, "general.architecture", arch);
    if (!st) st = gguf_write_mem(w, img, &len, &err);
    if (!st) st = gguf_parse(*img, len, gf, &err);
    double t0 = nk_time_ms();
    if (!st) st = nk_vocab_load(*gf, &v, &err);
    CHECK_MSG(st == NOOK_OK, "%s: %s", rel, err.msg);
    if (v) printf("%s: %d tokens, %d merges, pre '%s', load %.1f ms\n", rel, nk_vocab_n_tokens(v),
                  nk_vocab_n_merges(v), nk_vocab_pre(v), nk_time_ms() - t0);
    gguf_writer_free(w);
    return v;
}

static void vectors(const nk_vocab *v, const char *name, bool check_ids) {
    char inp[1024], outp[1024];
    snprintf(inp, sizeof inp, "%s/vocab/%s.inp", nk_test_models(), name);
    snprintf(outp, sizeof outp, "%s/vocab/%s.out", nk_test_models(), name);
    char *ib, *ob; size_t il, ol;
    nook_error err;
    if (nk_read_file(inp, &ib, &il, &err) || nk_read_file(outp, &ob, &ol, &err)) { CHECK_MSG(0, "%s", err.msg); return; }
    char *strs[256]; size_t lens[256];
    int n = tt_split_inp(ib, il, strs, lens, 256), pass = 0;
    static nook_token want[MAX_IDS], got[MAX_IDS];
    static char back[65536];
    const char *line = ob;
    for (int i = 0; i < n; i++) {
        const char *eol = memchr(line, '\n', (size_t)(ob + ol - line));
        if (!eol) eol = ob + ol;
        int nw = tt_parse_ids(line, eol, want, MAX_IDS);
        line = eol < ob + ol ? eol + 1 : eol;
        size_t ng = 0;
        if (nk_vocab_tokenize(v, strs[i], lens[i], false, false, got, MAX_IDS, &ng, &err)) continue;
        if (check_ids) {
            if ((int)ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0) pass++;
            else fprintf(stderr, "%s #%d \"%.*s\": want %d ids, got %zu\n", name, i, (int)NK_MIN(lens[i], 60), strs[i], nw, ng);
        } else {   /* round trip only */
            size_t w = 0;
            for (size_t k = 0; k < ng; k++) {
                int m = nk_vocab_piece(v, got[k], true, back + w, sizeof back - w);
                if (m > 0) w += (size_t)m;
            }
            if (w == lens[i] && memcmp(back, strs[i], w) == 0) pass++;
            else fprintf(stderr, "%s #%d: round trip differs\n", name, i);
        }
    }
    printf("%s %s %d/%d\n", name, check_ids ? "ids" : "round trip", pass, n);
    CHECK_MSG(pass == n && n > 0, "%s: %d of %d", name, pass, n);
    nk_free(ib); nk_free(ob);
}

int main(void) {
    gguf_file *gf[3] = { 0 };
    uint8_t *img[3] = { 0 };
    nk_vocab *q = import("hf/qwen3", "qwen3", &gf[0], &img[0]);
    if (q) {
        vectors(q, "ggml-vocab-qwen2.gguf", true);
        CHECK(nk_vocab_is_eog(q, nk_vocab_find(q, "<|im_end|>", 10)));
    }
    nk_vocab *l = import("hf/llama3", "llama", &gf[1], &img[1]);
    if (l) vectors(l, "ggml-vocab-llama-bpe.gguf", true);
    nk_vocab *g = import("hf/gemma3", "gemma3", &gf[2], &img[2]);
    if (g) {
        CHECK(!nk_vocab_add_space_prefix(g));
        CHECK(nk_vocab_n_tokens(g) >= 262144);
        vectors(g, "ggml-vocab-llama-spm.gguf", false);
        nook_token t[16]; size_t n = 0;
        nook_error err;
        CHECK(nk_vocab_tokenize(g, "<start_of_turn>user", 19, false, true, t, 16, &n, &err) == NOOK_OK);
        CHECK(n >= 2 && t[0] == nk_vocab_find(g, "<start_of_turn>", 15));
        CHECK(nk_vocab_is_eog(g, nk_vocab_find(g, "<end_of_turn>", 13)));
    }
    for (int i = 0; i < 3; i++) { gguf_free(gf[i]); nk_free(img[i]); }
    nk_vocab_free(q); nk_vocab_free(l); nk_vocab_free(g);
    NK_TEST_DONE();
}

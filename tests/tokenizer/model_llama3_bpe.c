/*
 * model_llama3_bpe.c: the Llama 3 tokenizer (byte-level BPE, llama-bpe pre-tokenizer,
 * ignore_merges), built from tokenizers/llama3.2/{encoder.json,vocab.bpe} into a
 * vocab-only GGUF, must reproduce llama.cpp's vectors vocab/ggml-vocab-llama-bpe.gguf.*
 * exactly, plus ollama's known ids and special-token parsing.
 */
#include "tok_test_util.h"
#include "tt_gpt2_vocab.h"

#define MAX_IDS 4096

static void check_ids(const nk_vocab *v, const char *text, bool add_special, bool parse_special,
                      const nook_token *want, size_t nw) {
    nook_token got[64];
    size_t ng = 0;
    nook_error err;
    nook_status st = nk_vocab_tokenize(v, text, strlen(text), add_special, parse_special, got, 64, &ng, &err);
    bool ok = st == NOOK_OK && ng == nw && memcmp(got, want, nw * sizeof *got) == 0;
    CHECK_MSG(ok, "\"%s\": got %zu ids (first %d)", text, ng, ng ? got[0] : -1);
}

int main(void) {
    char enc[1024], bpe[1024], inp[1024], outp[1024];
    nk_test_fixture(enc, sizeof enc, "tokenizers/llama3.2/encoder.json");
    nk_test_fixture(bpe, sizeof bpe, "tokenizers/llama3.2/vocab.bpe");
    nk_test_fixture(inp, sizeof inp, "vocab/ggml-vocab-llama-bpe.gguf.inp");
    nk_test_fixture(outp, sizeof outp, "vocab/ggml-vocab-llama-bpe.gguf.out");
    nook_error err;
    uint8_t *img; uint64_t img_len;
    nook_status st = tt_build_llama3_gguf(enc, bpe, &img, &img_len, &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    if (st) NK_TEST_DONE();
    gguf_file *gf;
    st = gguf_parse(img, img_len, &gf, &err);
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    nk_vocab *v = NULL;
    double t0 = nk_time_ms();
    st = nk_vocab_load(gf, &v, &err);
    double t1 = nk_time_ms();
    CHECK_MSG(st == NOOK_OK, "%s", err.msg);
    if (st) NK_TEST_DONE();
    printf("llama3 vocab: %d tokens, %d merges, load %.1f ms\n", nk_vocab_n_tokens(v), nk_vocab_n_merges(v), t1 - t0);
    CHECK_EQ_INT(nk_vocab_n_tokens(v), 128256);
    CHECK_EQ_INT(nk_vocab_bos(v), 128000);
    CHECK(nk_vocab_add_bos(v));
    CHECK(nk_vocab_is_eog(v, 128001));
    CHECK(nk_vocab_is_eog(v, 128009));   /* <|eot_id|> auto-detected */
    CHECK_EQ_INT(nk_vocab_eot(v), 128009);
    CHECK_EQ_INT(nk_vocab_nl(v), 198);

    /* the llama.cpp vectors */
    char *ib, *ob; size_t il, ol;
    CHECK(nk_read_file(inp, &ib, &il, &err) == NOOK_OK);
    CHECK(nk_read_file(outp, &ob, &ol, &err) == NOOK_OK);
    char *strs[256]; size_t lens[256];
    int n = tt_split_inp(ib, il, strs, lens, 256), pass = 0;
    static nook_token want[MAX_IDS], got[MAX_IDS];
    const char *line = ob;
    for (int i = 0; i < n; i++) {
        const char *eol = memchr(line, '\n', (size_t)(ob + ol - line));
        if (!eol) eol = ob + ol;
        int nw = tt_parse_ids(line, eol, want, MAX_IDS);
        line = eol < ob + ol ? eol + 1 : eol;
        size_t ng = 0;
        st = nk_vocab_tokenize(v, strs[i], lens[i], false, false, got, MAX_IDS, &ng, &err);
        if (st == NOOK_OK && (int)ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0) { pass++; continue; }
        fprintf(stderr, "llama-bpe #%d \"%.*s\": want %d ids, got %zu\n", i, (int)NK_MIN(lens[i], 60), strs[i], nw, ng);
    }
    printf("ggml-vocab-llama-bpe (from llama3.2 files) %d/%d\n", pass, n);
    CHECK_MSG(pass == n && n > 0, "%d of %d", pass, n);

    /* ollama's test ids */
    check_ids(v, "hello world", false, false, (nook_token[]){ 15339, 1917 }, 2);
    check_ids(v, "hello <|end_of_text|>", false, true, (nook_token[]){ 15339, 220, 128001 }, 3);
    check_ids(v, "0000000", false, false, (nook_token[]){ 931, 931, 15 }, 3);
    check_ids(v, "Hello world", true, false, (nook_token[]){ 128000, 9906, 1917 }, 3);
    /* a control token in user text is not parsed without parse_special */
    nook_token t[64]; size_t nt = 0;
    CHECK(nk_vocab_tokenize(v, "<|eot_id|>", 10, false, false, t, 64, &nt, &err) == NOOK_OK);
    CHECK(nt > 1);
    for (size_t i = 0; i < nt; i++) CHECK(t[i] != 128009);
    check_ids(v, "<|eot_id|>", false, true, (nook_token[]){ 128009 }, 1);

    nk_free(ib); nk_free(ob);
    nk_vocab_free(v);
    gguf_free(gf);
    nk_free(img);
    NK_TEST_DONE();
}

/*
 * model_tokenizer_misc.c: behaviour around the vectors: special tokens in user text,
 * add_special, invalid UTF-8, buffer sizing, pieces, round trips over every test
 * string, EOG sets and GGUF special-id quirks, on the real vocab fixtures.
 */
#include "tok_test_util.h"

#define MAXT 4096

static size_t tok(const nk_vocab *v, const char *s, bool add, bool parse, nook_token *out) {
    size_t n = 0;
    nook_error err;
    nook_status st = nk_vocab_tokenize(v, s, strlen(s), add, parse, out, MAXT, &n, &err);
    CHECK_MSG(st == NOOK_OK, "tokenize \"%s\": %s", s, err.msg);
    return n;
}

static bool contains(const nook_token *t, size_t n, nook_token x) {
    for (size_t i = 0; i < n; i++) if (t[i] == x) return true;
    return false;
}

/* Every .inp string: the pieces of its tokens, joined, are the text again (SPM adds the
 * one leading space of add_space_prefix). */
static void round_trip(const nk_vocab *v, const char *inp_rel, bool spm) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", nk_test_models(), inp_rel);
    char *buf; size_t len;
    nook_error err;
    if (nk_read_file(path, &buf, &len, &err)) { CHECK_MSG(0, "%s", err.msg); return; }
    char *strs[256]; size_t lens[256];
    int n = tt_split_inp(buf, len, strs, lens, 256), ok = 0;
    static nook_token t[MAXT];
    static char out[65536];
    for (int i = 0; i < n; i++) {
        size_t nt = 0;
        if (nk_vocab_tokenize(v, strs[i], lens[i], false, false, t, MAXT, &nt, &err)) continue;
        size_t w = 0;
        for (size_t k = 0; k < nt; k++) {
            int m = nk_vocab_piece(v, t[k], true, out + w, sizeof out - w);
            if (m > 0) w += (size_t)m;
        }
        const char *o = out;
        if (spm && nk_vocab_add_space_prefix(v) && lens[i] > 0 && w > 0 && out[0] == ' ') { o++; w--; }
        if (w == lens[i] && memcmp(o, strs[i], w) == 0) ok++;
        else fprintf(stderr, "%s #%d: round trip differs\n", inp_rel, i);
    }
    printf("%s round trip %d/%d\n", inp_rel, ok, n);
    CHECK(ok == n && n > 0);
    nk_free(buf);
}

int main(void) {
    char p[1024];
    nook_error err;
    static nook_token t[MAXT];
    tt_vocab spm, gpt2, stories, phi3;

    nk_test_fixture(p, sizeof p, "vocab/ggml-vocab-llama-spm.gguf");
    CHECK(tt_load(&spm, p, &err) == NOOK_OK);
    const nk_vocab *v = spm.v;
    CHECK_STR(nk_vocab_model(v), "llama");
    CHECK_EQ_INT(nk_vocab_bos(v), 1);
    CHECK_EQ_INT(nk_vocab_eos(v), 2);
    CHECK(nk_vocab_is_eog(v, 2));
    CHECK(!nk_vocab_is_eog(v, 1));
    CHECK(nk_vocab_add_bos(v) && !nk_vocab_add_eos(v));
    CHECK_EQ_INT(nk_vocab_nl(v), 13);   /* <0x0A> */
    CHECK_EQ_INT(nk_vocab_token_type(v, 1), NK_TOKEN_CONTROL);
    CHECK_EQ_INT(nk_vocab_token_type(v, 13), NK_TOKEN_BYTE);

    /* "<s>" in user text is not BOS unless parse_special */
    size_t n = tok(v, "<s>", false, false, t);
    CHECK(n > 1 && !contains(t, n, 1));
    n = tok(v, "<s>", false, true, t);
    CHECK(n == 1 && t[0] == 1);
    n = tok(v, "Hello <s> world", false, true, t);
    CHECK(contains(t, n, 1));
    n = tok(v, "Hello", true, false, t);
    CHECK(n >= 2 && t[0] == 1);
    CHECK_EQ_INT(tok(v, "", false, false, t), 0);
    n = tok(v, "", true, false, t);
    CHECK(n == 1 && t[0] == 1);

    /* invalid UTF-8 -> EINVAL naming the offset */
    size_t nn = 0;
    nook_status st = nk_vocab_tokenize(v, "ab\xff" "cd", 5, false, false, t, MAXT, &nn, &err);
    CHECK_EQ_INT(st, NOOK_EINVAL);
    CHECK_MSG(strstr(err.msg, "offset 2") != NULL, "%s", err.msg);
    st = nk_vocab_tokenize(v, "\xe2\x96", 2, false, false, t, MAXT, &nn, &err);
    CHECK_EQ_INT(st, NOOK_EINVAL);

    /* too small a buffer: ERANGE and the needed count */
    n = tok(v, "The quick brown fox", false, false, t);
    nook_token small[2];
    st = nk_vocab_tokenize(v, "The quick brown fox", 19, false, false, small, 2, &nn, &err);
    CHECK_EQ_INT(st, NOOK_ERANGE);
    CHECK_EQ_INT(nn, n);
    CHECK(small[0] == t[0] && small[1] == t[1]);

    /* pieces */
    char buf[64];
    nook_token the = nk_vocab_find(v, "\xe2\x96\x81the", 6);
    CHECK(the >= 0);
    CHECK_EQ_INT(nk_vocab_piece(v, the, false, buf, sizeof buf), 4);
    CHECK(memcmp(buf, " the", 4) == 0);
    CHECK_EQ_INT(nk_vocab_piece(v, 13, false, buf, sizeof buf), 1);
    CHECK(buf[0] == '\n');
    CHECK_EQ_INT(nk_vocab_piece(v, 2, false, buf, sizeof buf), 0);
    CHECK_EQ_INT(nk_vocab_piece(v, 2, true, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "</s>", 4) == 0);
    CHECK_EQ_INT(nk_vocab_piece(v, 32000, true, buf, sizeof buf), -1);
    CHECK_EQ_INT(nk_vocab_piece(v, the, false, buf, 2), 4);   /* needs 4, wrote 2 */
    /* detokenize drops the SPM leading space of a first text token (llama.cpp keeps it
     * when the text starts after a BOS, even a removed one) */
    n = tok(v, "Hello world", false, false, t);
    size_t dl = nk_vocab_detokenize(v, t, n, false, false, buf, sizeof buf);
    CHECK(dl == 11 && memcmp(buf, "Hello world", 11) == 0);
    n = tok(v, "Hello world", true, false, t);
    dl = nk_vocab_detokenize(v, t, n, true, false, buf, sizeof buf);
    CHECK(dl == 12 && memcmp(buf, " Hello world", 12) == 0);
    round_trip(v, "vocab/ggml-vocab-llama-spm.gguf.inp", true);

    /* stories260K: SOURCES.md's reference ids; 0xFFFFFFFF special ids mean "none" */
    nk_test_fixture(p, sizeof p, "stories260K.gguf");
    CHECK(tt_load(&stories, p, &err) == NOOK_OK);
    n = tok(stories.v, "Once upon a time", false, false, t);
    CHECK(n == 4 && t[0] == 403 && t[1] == 407 && t[2] == 261 && t[3] == 378);
    CHECK_EQ_INT(nk_vocab_pad(stories.v), -1);

    /* GPT-2: byte-level pieces and round trips */
    nk_test_fixture(p, sizeof p, "vocab/ggml-vocab-gpt-2.gguf");
    CHECK(tt_load(&gpt2, p, &err) == NOOK_OK);
    v = gpt2.v;
    CHECK_EQ_INT(nk_vocab_eos(v), 50256);
    CHECK(nk_vocab_is_eog(v, 50256));
    CHECK(!nk_vocab_add_bos(v));
    CHECK_EQ_INT(nk_vocab_nl(v), 198);
    n = tok(v, "Hello world", false, false, t);
    CHECK(n == 2 && t[0] == 15496 && t[1] == 995);
    CHECK_EQ_INT(nk_vocab_piece(v, 995, false, buf, sizeof buf), 6);
    CHECK(memcmp(buf, " world", 6) == 0);
    n = tok(v, "<|endoftext|>", false, false, t);
    CHECK(n > 1 && !contains(t, n, 50256));
    n = tok(v, "a<|endoftext|>b", false, true, t);
    CHECK(n == 3 && t[1] == 50256);
    CHECK(nk_vocab_merge_rank(v, "\xc4\xa0", "t") == 0);
    round_trip(v, "vocab/ggml-vocab-gpt-2.gguf.inp", false);

    /* Phi-3: "</s>" (user-defined, forced to CONTROL as an EOG text) strips the
     * whitespace to its right (llama.cpp's RSTRIP rule for phi3 vocabularies) */
    nk_test_fixture(p, sizeof p, "vocab/ggml-vocab-phi-3.gguf");
    CHECK(tt_load(&phi3, p, &err) == NOOK_OK);
    v = phi3.v;
    CHECK(nk_vocab_token_attr(v, 2) & 256);
    nook_token t2[64];
    n = tok(v, "a</s>   b", false, true, t);
    size_t n2 = tok(v, "a</s>b", false, true, t2);
    CHECK(n == n2 && memcmp(t, t2, n * sizeof *t) == 0 && contains(t, n, 2));
    CHECK(nk_vocab_is_eog(v, 32000) && nk_vocab_is_eog(v, 32007));   /* <|endoftext|>, <|end|> */
    round_trip(v, "vocab/ggml-vocab-phi-3.gguf.inp", true);

    tt_free(&phi3); tt_free(&gpt2); tt_free(&stories); tt_free(&spm);
    NK_TEST_DONE();
}

/* Tokenizer, hostile vocabularies (docs/security.md): merges that reference tokens the
 * vocabulary does not have (a part, the result, or both), merges without a separator,
 * duplicate tokens, an SPM vocabulary without byte tokens, and malformed arrays. Loading
 * either refuses with a message or succeeds, and then every id the tokenizer returns is
 * inside the vocabulary and every piece renders: a hostile vocabulary never turns into an
 * out-of-range id (which would index the embedding matrix out of bounds). Duplicate
 * tokens are refused. */
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "nk_test.h"

typedef struct { gguf_file *gf; uint8_t *mem; nk_vocab *v; } built;

static nook_status build(const char *model, const char *const *toks, int nt, const char *const *merges, int nm,
                         bool merges_as_ints, built *b, nook_error *err) {
    memset(b, 0, sizeof *b);
    gguf_writer *w = gguf_writer_new();
    if (!w) return NOOK_ENOMEM;
    gguf_set_str(w, "general.architecture", "llama");
    gguf_set_str(w, "tokenizer.ggml.model", model);
    gguf_set_str(w, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, (uint64_t)nt);
    int32_t types[64];
    float scores[64];
    for (int i = 0; i < nt; i++) { types[i] = toks[i][0] == '<' && strlen(toks[i]) > 2 ? 3 : 1; scores[i] = -(float)i; }
    gguf_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)nt);
    gguf_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)nt);
    if (merges_as_ints) {
        int32_t junk[3] = { 1, 2, 3 };
        gguf_set_arr(w, "tokenizer.ggml.merges", GGUF_TYPE_INT32, junk, 3);
    } else if (nm) {
        gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, (uint64_t)nm);
    }
    uint64_t len = 0;
    nook_status st = gguf_write_mem(w, &b->mem, &len, err);
    gguf_writer_free(w);
    if (!st) st = gguf_parse(b->mem, len, &b->gf, err);
    if (!st) st = nk_vocab_load(b->gf, &b->v, err);
    return st;
}

static void drop(built *b) {
    nk_vocab_free(b->v);
    gguf_free(b->gf);
    nk_free(b->mem);
}

/* Tokenize text; every id in range and renderable. Returns the count. */
static size_t all_in_range(const nk_vocab *v, const char *text, nook_token *t, size_t cap) {
    size_t n = 0;
    nook_error err;
    CHECK_MSG(nk_vocab_tokenize(v, text, strlen(text), true, true, t, cap, &n, &err) == NOOK_OK, "%s", err.msg);
    for (size_t i = 0; i < n && i < cap; i++) {
        char piece[256];
        CHECK_MSG(t[i] >= 0 && t[i] < nk_vocab_n_tokens(v), "id %d out of [0, %d)", t[i], nk_vocab_n_tokens(v));
        CHECK(nk_vocab_piece(v, t[i], true, piece, sizeof piece) >= 0);
    }
    return n;
}

int main(void) {
    nook_error err = { 0 };
    nook_token t[256];
    built b;

    /* a duplicate token: refused, both ids named */
    static const char *const dup[] = { "a", "b", "ab", "<|endoftext|>", "a" };
    static const char *const one[] = { "a b" };
    CHECK(build("gpt2", dup, 5, one, 1, false, &b, &err) == NOOK_EFORMAT);
    CHECK_MSG(strstr(err.msg, "duplicate") && strstr(err.msg, "ids 0 and 4"), "%s", err.msg);
    drop(&b);

    /* BPE: merges whose parts or results are missing, one without a separator, one
     * that is only a space */
    static const char *const toks[] = { "a", "b", "ab", "<|endoftext|>", "\xc4\xa0" };
    static const char *const merges[] = { "a b", "ab c", "x y", "ab ab", "nospace", " ", "a  b", "\xc4\xa0 a" };
    CHECK_MSG(build("gpt2", toks, 5, merges, 8, false, &b, &err) == NOOK_OK, "%s", err.msg);
    if (b.v) {
        size_t n = all_in_range(b.v, "abab c xy ab zzz \xe6\x97\xa5 <|endoftext|>", t, 256);
        CHECK(n > 0);
        n = all_in_range(b.v, "ab", t, 256);
        CHECK(n == 1 && t[0] == 2);   /* the one good merge still applies */
        CHECK(nk_vocab_merge_rank(b.v, "a", "b") == 0);
    }
    drop(&b);

    /* BPE whose merges are not strings: refused, named */
    CHECK(build("gpt2", toks, 5, NULL, 0, true, &b, &err) == NOOK_EFORMAT);
    CHECK_MSG(strstr(err.msg, "merges"), "%s", err.msg);
    drop(&b);
    /* BPE without merges at all: refused */
    CHECK(build("gpt2", toks, 5, NULL, 0, false, &b, &err) == NOOK_EFORMAT);
    CHECK_MSG(strstr(err.msg, "merges"), "%s", err.msg);
    drop(&b);

    /* SPM without byte tokens: characters it cannot spell still give valid ids */
    static const char *const spm[] = { "<unk>", "<s>", "</s>", ("\xe2\x96\x81" "a"), "b" };
    CHECK_MSG(build("llama", spm, 5, NULL, 0, false, &b, &err) == NOOK_OK, "%s", err.msg);
    if (b.v) CHECK(all_in_range(b.v, "a b c \xf0\x9f\x98\x80 ab", t, 256) > 0);
    drop(&b);

    /* an unknown tokenizer model: refused with its name */
    CHECK(build("wordpiece-9000", spm, 5, NULL, 0, false, &b, &err) == NOOK_EUNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "wordpiece-9000"), "%s", err.msg);
    drop(&b);
    NK_TEST_DONE();
}

/*
 * tokenizer.h: a model's vocabulary and tokenizer, loaded from GGUF metadata
 * (tokenizer.ggml.*), behaving exactly as llama.cpp's for the same file.
 *
 * Supported tokenizer.ggml.model values: "llama" (SentencePiece-style, score-driven
 * merges with byte fallback) and "gpt2" (byte-level BPE with the pre-tokenizer named
 * by tokenizer.ggml.pre). An nk_vocab is immutable after load and safe to share
 * between threads.
 */
#ifndef NOOK_TOKENIZER_H
#define NOOK_TOKENIZER_H

#include "gguf/gguf.h"

typedef struct nk_vocab nk_vocab;

/* Token attributes, as llama.cpp's token_type values (tokenizer.ggml.token_type). */
enum {
    NK_TOKEN_UNDEFINED = 0, NK_TOKEN_NORMAL = 1, NK_TOKEN_UNKNOWN = 2, NK_TOKEN_CONTROL = 3,
    NK_TOKEN_USER_DEFINED = 4, NK_TOKEN_UNUSED = 5, NK_TOKEN_BYTE = 6
};

/* Build the vocabulary from a parsed GGUF file. The vocab copies what it needs, so the
 * file may be freed afterwards. Errors: NOOK_EUNSUPPORTED for an unknown tokenizer
 * model or pre-tokenizer (named), NOOK_EFORMAT for inconsistent arrays. */
nook_status nk_vocab_load(const gguf_file *f, nk_vocab **out, nook_error *err);
void nk_vocab_free(nk_vocab *v);

int         nk_vocab_n_tokens(const nk_vocab *v);
const char *nk_vocab_model(const nk_vocab *v);   /* "llama", "gpt2" */
const char *nk_vocab_pre(const nk_vocab *v);     /* pre-tokenizer name, "" if none */
int         nk_vocab_token_type(const nk_vocab *v, nook_token t);
/* The token's stored text (e.g. "▁the", "Ġthe", "<0x0A>"), NUL-terminated; NULL if out
 * of range. */
const char *nk_vocab_text(const nk_vocab *v, nook_token t);

nook_token nk_vocab_bos(const nk_vocab *v);   /* -1 if none */
nook_token nk_vocab_eos(const nk_vocab *v);   /* -1 if none */
bool nk_vocab_add_bos(const nk_vocab *v);
bool nk_vocab_add_eos(const nk_vocab *v);
bool nk_vocab_is_eog(const nk_vocab *v, nook_token t);   /* eos, eot, <|im_end|>, ... */

/* Same contract as nook_tokenize in nook.h (invalid UTF-8 -> NOOK_EINVAL). */
nook_status nk_vocab_tokenize(const nk_vocab *v, const char *text, size_t len,
                              bool add_special, bool parse_special,
                              nook_token *out, size_t cap, size_t *n_out, nook_error *err);

/* Same contract as nook_token_to_piece in nook.h: the raw bytes of the token's text
 * (byte tokens -> their byte, "▁" -> " " for SPM, GPT-2 byte alphabet reversed for BPE). */
int nk_vocab_piece(const nk_vocab *v, nook_token t, bool special, char *buf, size_t cap);

/* ---- extensions (beyond the engine's first contract) ------------------------------ */

/* llama.cpp's attribute bits of a token (NK_ATTR_* in tok_internal.h: 1 unknown,
 * 2 unused, 4 normal, 8 control, 16 user-defined, 32 byte, 128 lstrip, 256 rstrip);
 * 0 if out of range. */
int   nk_vocab_token_attr(const nk_vocab *v, nook_token t);
float nk_vocab_score(const nk_vocab *v, nook_token t);
/* Exact text -> id lookup; -1 if the vocabulary has no such token. */
nook_token nk_vocab_find(const nk_vocab *v, const char *text, size_t len);
nook_token nk_vocab_eot(const nk_vocab *v);   /* -1 if none */
nook_token nk_vocab_unk(const nk_vocab *v);   /* -1 if none */
nook_token nk_vocab_pad(const nk_vocab *v);   /* -1 if none */
nook_token nk_vocab_nl(const nk_vocab *v);    /* the newline token, -1 if none */
bool nk_vocab_add_space_prefix(const nk_vocab *v);
bool nk_vocab_is_control(const nk_vocab *v, nook_token t);
int  nk_vocab_n_merges(const nk_vocab *v);
/* Rank of the BPE merge "left right" (NUL-terminated GPT-2-alphabet strings), -1 if none. */
int  nk_vocab_merge_rank(const nk_vocab *v, const char *left, const char *right);

/* Detokenize n tokens the way llama.cpp's llama_detokenize does: pieces joined, the
 * SPM leading space after the start dropped, BOS/EOS removed when remove_special, and
 * the clean-up of spaces before punctuation where the vocabulary asks for it. Writes at
 * most cap bytes (no NUL) and returns the length of the text (if that exceeds cap the
 * text was cut and the returned length is before the space clean-up). */
size_t nk_vocab_detokenize(const nk_vocab *v, const nook_token *toks, size_t n, bool remove_special,
                           bool unparse_special, char *buf, size_t cap);

#endif /* NOOK_TOKENIZER_H */

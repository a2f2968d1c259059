/*
 * hf_import.h: turn a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json)
 * into GGUF tokenizer metadata, the keys llama.cpp's convert_hf_to_gguf.py writes for
 * the same folder, so that llama.cpp (and nook) tokenize the result as HF does.
 *
 * Two families are understood (docs/hf-import.md has the details and deviations):
 *  - byte-level BPE (model.type "BPE", no byte_fallback, ByteLevel pre-tokenizer):
 *    tokenizer.ggml.model "gpt2", the pre-tokenizer named from the Split regex
 *    ("llama-bpe" for Llama 3, "qwen2" for Qwen2/Qwen3, "gpt-2"), tokens, token types,
 *    merges ("a b", spaces inside a part written as U+0120);
 *  - SentencePiece-derived BPE with byte fallback (Gemma, Llama 2 style): model
 *    "llama", pre "default", tokens, scores, token types, add_space_prefix.
 * Both get bos/eos/unk/sep/pad ids, add_bos/add_eos (add_sep) flags and the chat
 * template(s), chosen as gguf-py's SpecialVocab chooses them.
 *
 * The token array has one entry per id up to the model's vocab size: config.json's
 * vocab_size when dir has a config.json, else the highest id + 1; ids nobody uses are
 * "[PAD<id>]" UNUSED tokens, as the converter writes them.
 *
 * Threads: the functions share no state; each call is independent.
 */
#ifndef NOOK_HF_IMPORT_H
#define NOOK_HF_IMPORT_H

#include "gguf/gguf.h"

/* Read dir/tokenizer.json (required), dir/tokenizer_config.json and dir/config.json
 * (both optional; a present but malformed one is an error) and set every tokenizer.*
 * key on w. Keys already on w with the same names are replaced; others are untouched.
 * Errors: NOOK_EIO (unreadable/missing tokenizer.json), NOOK_EFORMAT (malformed JSON
 * or inconsistent tokenizer, message names file and field), NOOK_EUNSUPPORTED (a
 * tokenizer type or pre-tokenizer we cannot express as GGUF), NOOK_ERANGE (vocab too
 * large), NOOK_ENOMEM. On error w may hold some of the keys: discard it. */
nook_status nk_hf_import_tokenizer(const char *dir, gguf_writer *w, nook_error *err);

/* As nk_hf_import_tokenizer, for a model of architecture arch (may be NULL): the
 * converter writes a few keys per architecture (Gemma 3: add_space_prefix false; llama:
 * add_space_prefix from tokenizer_config's add_prefix_space). */
nook_status nk_hf_import_tokenizer_arch(const char *dir, const char *arch, gguf_writer *w,
                                        nook_error *err);

/* The general.architecture a vocab-only GGUF of dir should carry: config.json's
 * model_type when present, else guessed from the tokenizer ("llama" for a llama-bpe
 * tokenizer, "qwen3" for a qwen2 one, "gemma3" for a GemmaTokenizer). Writes a
 * NUL-terminated name into out[cap]. NOOK_ENOTFOUND if nothing fits. */
nook_status nk_hf_detect_arch(const char *dir, char *out, size_t cap, nook_error *err);

/* Write a vocab-only GGUF (general.architecture + the tokenizer keys, no tensors) to
 * out_path, atomically. arch NULL or "" = nk_hf_detect_arch. llama.cpp loads such a file
 * with vocab_only set. */
nook_status nk_hf_import_vocab_gguf(const char *dir, const char *arch, const char *out_path,
                                    nook_error *err);

#endif /* NOOK_HF_IMPORT_H */

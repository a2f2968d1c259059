#!/usr/bin/env bash
# `nook import-tokenizer` and `nook quantize` end to end, and tokenize/detokenize on
# vocab-only GGUFs (any architecture, no weights needed).
cd "$(dirname "$0")" && source ./lib.bash
need_model hf/qwen3/tokenizer.json
need_model stories260K.gguf

# Qwen3's tokenizer.json -> vocab-only GGUF -> the ids of the qwen2 vectors' kind of text
run_cmd "$NOOK" import-tokenizer "$MODELS/hf/qwen3" "$TMP/qwen3-vocab.gguf"
check_eq "import-tokenizer rc" "$rc" 0
run_cmd "$NOOK" tokenize "$TMP/qwen3-vocab.gguf" "Hello world"
check_eq "qwen3 tokenize" "$out" "9707 1879"
run_cmd "$NOOK" tokenize --special "$TMP/qwen3-vocab.gguf" "<|im_start|>user"
check_eq "qwen3 special" "$out" "151644 872"
run_cmd "$NOOK" tokenize "$TMP/qwen3-vocab.gguf" "<|im_start|>"
[ "$out" != "151644" ] && ok || bad "control token parsed without --special"
run_cmd "$NOOK" detokenize "$TMP/qwen3-vocab.gguf" 9707 1879
check_eq "qwen3 detokenize" "$out" "Hello world"
# a vocab-only file cannot run
run_cmd "$NOOK" run "$TMP/qwen3-vocab.gguf" hi
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && ok || bad "run on vocab-only: rc=$rc"
run_cmd "$NOOK" import-tokenizer "$MODELS/stories260K.gguf" "$TMP/x.gguf"
[ "$rc" -eq 1 ] && ok || bad "import-tokenizer on a non-directory: rc=$rc"

# quantize: F32 stories260K -> Q8_0 (dims are multiples of 32) still tells the story
run_cmd "$NOOK" quantize "$MODELS/stories260K.gguf" "$TMP/s-q8.gguf" Q8_0
check_eq "quantize rc" "$rc" 0
run_cmd "$NOOK" show "$TMP/s-q8.gguf"
check_contains "show q8" "$out" "Q8_0"
run_cmd "$NOOK" run "$TMP/s-q8.gguf" "Once upon a time" --raw --temperature 0 -n 12
check_contains "q8 story" "$out" "there was a little girl"
run_cmd "$NOOK" quantize "$MODELS/stories260K.gguf" "$TMP/y.gguf" Q9_X
[ "$rc" -eq 1 ] && ok || bad "quantize to an unknown type: rc=$rc"
check_contains "unknown type named" "$err" "Q9_X"
finish

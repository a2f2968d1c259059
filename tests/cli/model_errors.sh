#!/usr/bin/env bash
# model_errors.sh: failures that need a real model: a prompt longer than the context,
# files that are GGUF but not runnable, truncated files. One line, non-zero, no crash.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
S="$MODELS/stories260K.gguf"

expect_fail "prompt longer than ctx" "$NOOK" run "$S" "Once upon a time there was a little girl named Lily" --raw --ctx 8
check_eq "prompt longer than ctx exit" "$rc" 1
check_contains "prompt longer than ctx says so" "$err" "context"
# a prompt that exactly fills the context still runs (one token comes out)
run_cmd "$NOOK" run "$S" "Once upon a time" --raw --ctx 5 --temperature 0 --no-shift
check_eq "prompt == ctx exit" "$rc" 0
check_eq "prompt == ctx output" "$out" ","

# KV cache types: an unknown name is a usage error; q8_0 needs head sizes that are
# multiples of 32 (stories260K's are 8) and says so; f32 runs
expect_fail "bad kv type" "$NOOK" run "$S" "Once" --raw --kv-cache-type q9
check_eq "bad kv type exit" "$rc" 2
check_contains "bad kv type names the flag" "$err" "--kv-cache-type"
expect_fail "q8_0 kv on head size 8" "$NOOK" run "$S" "Once" --raw --kv-cache-type q8_0
check_contains "q8_0 kv says why" "$err" "multiples of 32"
run_cmd "$NOOK" run "$S" "Once upon a time" --raw --temperature 0 -n 3 --kv-cache-type f32
check_eq "f32 kv runs" "$rc" 0

# a GGUF that is not a runnable model: the vocab-only files
for v in ggml-vocab-llama-spm.gguf ggml-vocab-bert-bge.gguf; do
    [ -r "$MODELS/vocab/$v" ] || continue
    expect_fail "run vocab-only $v" "$NOOK" run "$MODELS/vocab/$v" hi
done
# truncated copies of a real model, cut in the header, the tensor index and the data
for n in 100 6000 14000 200000; do
    head -c $n "$S" >"$TMP/cut.gguf"
    expect_fail "run truncated at $n" "$NOOK" run "$TMP/cut.gguf" hi
    expect_fail "show truncated at $n" "$NOOK" show "$TMP/cut.gguf"
done
finish

#!/usr/bin/env bash
# model_tokenize.sh: nook tokenize / detokenize / show on the fixture models: ids as
# llama.cpp gives them (SOURCES.md), round trips, JSON output, show's summary.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
S="$MODELS/stories260K.gguf"

run_cmd "$NOOK" tokenize "$S" "Once upon a time"
check_eq "tokenize exit" "$rc" 0
check_eq "tokenize ids" "$out" "1 403 407 261 378"
run_cmd "$NOOK" tokenize "$S" "Once upon a time" --no-bos
check_eq "tokenize --no-bos" "$out" "403 407 261 378"
out="$(printf 'Once upon a time' | "$NOOK" tokenize "$S" --no-bos)"
check_eq "tokenize stdin" "$out" "403 407 261 378"
# control tokens: text unless --special
run_cmd "$NOOK" tokenize "$S" "<s>Once" --no-bos --special
check_eq "tokenize --special" "${out%% *}" "1"
run_cmd "$NOOK" tokenize "$S" "<s>Once" --no-bos
if [ "${out%% *}" != "1" ]; then ok; else bad "<s> parsed as BOS without --special"; fi

run_cmd "$NOOK" tokenize "$S" "Once upon a time" --json
check_eq "tokenize --json exit" "$rc" 0
j="$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); print(" ".join(str(o["id"]) for o in a)); print("|".join(o["piece"] for o in a))' "$out")"
check_eq "json ids" "$(sed -n 1p <<<"$j")" "1 403 407 261 378"
check_eq "json pieces" "$(sed -n 2p <<<"$j")" "<s>| Once| upon| a| time"

run_cmd "$NOOK" detokenize "$S" 403 407 261 378
check_eq "detokenize" "$out" "Once upon a time"
run_cmd "$NOOK" detokenize "$S" 1 403 407 261 378
check_eq "detokenize with BOS" "$out" "Once upon a time"
run_cmd "$NOOK" detokenize "$S" 1 403 --special
check_eq "detokenize --special" "$out" "<s> Once"
out="$(echo "432 383 286" | "$NOOK" detokenize "$S")"
check_eq "detokenize stdin" "$out" ", there was"
expect_fail "detokenize out of range" "$NOOK" detokenize "$S" 1 512
check_contains "out of range named" "$err" "512"
expect_fail "detokenize negative" "$NOOK" detokenize "$S" -- -3
expect_fail "detokenize junk" "$NOOK" detokenize "$S" 12abc

# round trips, including bytes the 512-token vocab only has as byte tokens
for text in "Once upon a time" "Lily saw a big, red ball." "héllo wörld ☃ 日本" $'two\nlines'; do
    ids="$("$NOOK" tokenize "$S" "$text" </dev/null)"
    back="$("$NOOK" detokenize "$S" $ids </dev/null)"
    check_eq "round trip [$text]" "$back" "$text"
done
if [ -r "$MODELS/llama-2-tiny-random.gguf" ]; then
    L="$MODELS/llama-2-tiny-random.gguf"
    run_cmd "$NOOK" tokenize "$L" "Once upon a time" --no-bos
    check_eq "llama2 tokenize" "$out" "9038 2501 263 931"
    for text in "Hello, World!" "  two leading spaces" "naïve café 🍵"; do
        ids="$("$NOOK" tokenize "$L" "$text" </dev/null)"
        back="$("$NOOK" detokenize "$L" $ids </dev/null)"
        check_eq "llama2 round trip [$text]" "$back" "$text"
    done
fi

# show: the summary names the architecture, parameter count, shapes and tokenizer
run_cmd "$NOOK" show "$S"
check_eq "show exit" "$rc" 0
for want in "architecture" "llama" "parameters" "context length" "2048" "embedding length" \
            "layers" "heads" "quantization" "F32" "48 tensors" "vocab size" "512"; do
    check_contains "show has $want" "$out" "$want"
done
run_cmd "$NOOK" show "$S" --verbose
check_eq "show --verbose exit" "$rc" 0
for want in "general.architecture" "tokenizer.ggml.tokens" "[string x 512]" "token_embd.weight" \
            "blk.4.ffn_down.weight" "offset"; do
    check_contains "show --verbose has $want" "$out" "$want"
done
if [ -r "$MODELS/llama-2-tiny-random.gguf" ]; then
    run_cmd "$NOOK" show "$MODELS/llama-2-tiny-random.gguf"
    check_contains "llama2 show F16" "$out" "F16"
    check_contains "llama2 show vocab" "$out" "32000"
fi

finish

#!/usr/bin/env bash
# model_think.sh: thinking in nook run, on a synthetic qwen3-tiny (Qwen3's tokenizer and
# chat template, random weights, made by the mkmodel tool).
#  - --show-prompt prints the rendered prompt: --no-think adds Qwen3's empty think block.
#  - The split: a random model never writes <think> by itself, so the test opens the
#    block in the prompt (--raw, ending in "<think>\n"): everything generated is then
#    reasoning, which must go to stderr between "Thinking..." and "...done thinking.",
#    with stdout empty; --hidethinking drops it; --format jsonl marks each token
#    "thinking": true; --no-think turns the split off (all text on stdout).
#  - A model whose template does not think (stories260K) is unchanged: no field, no lines.
# The splitter itself (tags across pieces, </think>, newlines) is tested in tests/chat.
. "$(dirname "$0")/lib.bash"
MK="${NOOK_BUILD:-}/mkmodel"
if [ -z "${NOOK_BUILD:-}" ] || [ ! -x "$MK" ]; then echo "SKIP: mkmodel tool not built"; exit 77; fi
Q="$TMP/qwen3-tiny.gguf"
if ! "$MK" qwen3-tiny Q8_0 "$Q" --models "$MODELS" >"$TMP/mk.log" 2>&1; then
    echo "SKIP: mkmodel qwen3-tiny failed (fixture tokenizer missing?): $(tail -1 "$TMP/mk.log")"
    exit 77
fi

base=$'<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'
run_cmd "$NOOK" run "$Q" hi --show-prompt
check_eq "show-prompt exit" "$rc" 0
check_eq "rendered prompt (thinking by default)" "$out" "${base%$'\n'}"
check_eq "show-prompt prints nothing else" "$err" ""
"$NOOK" run "$Q" hi --show-prompt --no-think </dev/null >"$TMP/p_nothink"
check_eq "--no-think adds the empty think block" "$(od -c <"$TMP/p_nothink")" \
    "$(printf '%s<think>\n\n</think>\n\n' "$base" | od -c)"

P="${base}<think>"$'\n'
run_cmd "$NOOK" run "$Q" "$P" --raw -n 6 --temperature 0
check_eq "thinking run exit" "$rc" 0
check_eq "reasoning is not on stdout" "$out" ""
check_contains "reasoning header" "$err" "Thinking..."
check_contains "reasoning footer" "$err" "...done thinking."
thought="$(printf '%s\n' "$err" | sed -n '2p')"
# the same tokens as text, with the split off: the reasoning is exactly that text
run_cmd "$NOOK" run "$Q" "$P" --raw -n 6 --temperature 0 --no-think
check_eq "no-think: the text on stdout" "$out" "$thought"
check_eq "no-think: nothing on stderr" "$err" ""
if [ -n "$thought" ]; then ok; else bad "the reasoning text is empty"; fi

run_cmd "$NOOK" run "$Q" "$P" --raw -n 6 --temperature 0 --hidethinking
check_eq "hidethinking exit" "$rc" 0
check_eq "hidethinking: no stdout" "$out" ""
check_eq "hidethinking: no stderr" "$err" ""

run_cmd "$NOOK" run "$Q" "$P" --raw -n 6 --temperature 0 --format jsonl
check_eq "jsonl: 6 tokens, all reasoning" "$(grep -c '"thinking":true' <<<"$out")" 6
run_cmd "$NOOK" run "$Q" "$P" --raw -n 6 --temperature 0 --format jsonl --no-think
check_eq "jsonl --no-think: no thinking field" "$(grep -c '"thinking"' <<<"$out")" 0

if [ -r "$MODELS/stories260K.gguf" ]; then
    run_cmd "$NOOK" run "$MODELS/stories260K.gguf" "Once" --raw -n 3 --temperature 0 --format jsonl
    check_eq "no thinking template: no field" "$(grep -c '"thinking"' <<<"$out")" 0
    run_cmd "$NOOK" run "$MODELS/stories260K.gguf" "Once" --raw -n 3 --temperature 0 --hidethinking
    check_eq "no thinking template: --hidethinking changes nothing" "$out" " upon a time"
fi
finish

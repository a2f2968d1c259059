#!/usr/bin/env bash
# model_chat.sh: nook run through a real chat template (Llama 3's, on a synthetic
# llama3-tiny model made by the mkmodel tool): the prompt is rendered as one user turn
# with the generation prompt, tokenized with control tokens parsed, BOS not doubled
# (the template writes <|begin_of_text|> itself), and --raw skips the template.
. "$(dirname "$0")/lib.bash"
MK="${NOOK_BUILD:-}/mkmodel"
if [ -z "${NOOK_BUILD:-}" ] || [ ! -x "$MK" ]; then echo "SKIP: mkmodel tool not built"; exit 77; fi
L="$TMP/llama3-tiny.gguf"
if ! "$MK" llama3-tiny Q8_0 "$L" --models "$MODELS" >"$TMP/mk.log" 2>&1; then
    echo "SKIP: mkmodel llama3-tiny failed (fixture tokenizer missing?): $(tail -1 "$TMP/mk.log")"
    exit 77
fi

want=$'<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'
ids="$("$NOOK" tokenize "$L" --special --no-bos "$want" </dev/null)"
n_want=$(wc -w <<<"$ids")
check_eq "expected rendering is 11 tokens" "$n_want" 11
check_eq "it starts with BOS" "${ids%% *}" "128000"

run_cmd "$NOOK" run "$L" hi -n 3 --temperature 0 --verbose
check_eq "chat run exit" "$rc" 0
check_contains "chat prompt tokens (template applied, one BOS)" "$err" "prompt eval count:    $n_want token(s)"
check_contains "chat eval count" "$err" "eval count:           3 token(s)"

run_cmd "$NOOK" run "$L" hi -n 3 --temperature 0 --verbose --raw
check_contains "raw prompt tokens (BOS + hi)" "$err" "prompt eval count:    2 token(s)"
# --raw parses control tokens the caller wrote: the hand-written template gives the same count
run_cmd "$NOOK" run "$L" "$want" -n 3 --temperature 0 --verbose --raw
check_contains "raw hand-written template, BOS not doubled" "$err" "prompt eval count:    $n_want token(s)"

# the same greedy tokens either way
a="$("$NOOK" run "$L" hi -n 4 --temperature 0 --format jsonl </dev/null | python3 -c 'import json,sys; print([json.loads(l)["id"] for l in sys.stdin])')"
b="$("$NOOK" run "$L" "$want" -n 4 --temperature 0 --raw --format jsonl </dev/null | python3 -c 'import json,sys; print([json.loads(l)["id"] for l in sys.stdin])')"
check_eq "template vs hand-written prompt: same greedy ids" "$a" "$b"

run_cmd "$NOOK" show "$L"
check_contains "show chat template" "$out" "Chat template"
check_contains "show llama3 vocab" "$out" "128256"
finish

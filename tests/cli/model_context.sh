#!/usr/bin/env bash
# model_context.sh: nook run at a full context (stories260K, --ctx 64): by default the
# context is shifted (first tokens kept, half of the rest dropped, as Ollama) and
# generation goes on, deterministically; --no-shift stops with reason "length"; a
# prompt longer than the context is an error (exit 1).
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
M="$MODELS/stories260K.gguf"
P="Once upon a time"   # BOS + 4 tokens

run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 200 --verbose
check_eq "shift run exit" "$rc" 0
shifted="$out"
check_contains "200 tokens generated past a 64-token context" "$err" "eval count:           200 token(s)"
# 5 prompt tokens + 59 generated fill the cache; the 60th is sampled, then the shift:
# keep BOS + 4 (Ollama's num_keep), drop (64 - 5) / 2 = 29
check_contains "first shift" "$err" "context shift at token 60 (kept 5, discarded 29)"
check_contains "second shift, 29 tokens later" "$err" "context shift at token 89 (kept 5, discarded 29)"
check_contains "stopped by -n" "$err" "done reason: length"

run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 200
check_eq "shifted output is deterministic" "$out" "$shifted"

n=$("$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 200 --format jsonl </dev/null | grep -c '"id"')
check_eq "jsonl: 200 token objects" "$n" 200

run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 200 --verbose --no-shift
check_eq "no-shift exit" "$rc" 0
check_contains "no-shift stops at the full context" "$err" "eval count:           60 token(s)"
check_contains "no-shift says so" "$err" "context full (64 tokens)"
check_contains "no-shift reason" "$err" "done reason: length"
# up to the shift, both runs generate the same text
case "$shifted" in
    "$out"*) ok ;;
    *) bad "the no-shift text is not a prefix of the shifted text: [$out] vs [$shifted]" ;;
esac

# -n -1 with shifting is bounded at 10 contexts, as Ollama's boundedNumPredict
run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 32 --verbose
check_contains "unbounded run capped at 10 contexts" "$err" "eval count:           320 token(s)"

# --keep: tokens after BOS that a shift keeps; -1 keeps the prompt
run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 70 --verbose --keep 0
check_contains "keep 0: BOS only" "$err" "(kept 1, discarded 31)"
run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 70 --verbose --keep 20
check_contains "keep 20: BOS + 20" "$err" "(kept 21, discarded 21)"
run_cmd "$NOOK" run "$M" "$P" --raw --temperature 0 --ctx 64 -n 70 --verbose --keep -1
check_contains "keep -1: the prompt" "$err" "(kept 5, discarded 29)"

expect_fail "prompt longer than the context" "$NOOK" run "$M" "$P" --raw --ctx 3 -n 5
check_eq "prompt too long: exit 1" "$rc" 1
check_contains "prompt too long: message" "$err" "longer than the context (3)"
expect_fail "bad --keep" "$NOOK" run "$M" "$P" --raw --keep -2
check_eq "bad --keep: exit 2" "$rc" 2
finish

#!/usr/bin/env bash
# run_usage.sh: the nook command without a model: version, help, and every usage or
# file error ends in one "nook: ..." line and a non-zero exit, never a crash.
. "$(dirname "$0")/lib.bash"

run_cmd "$NOOK" --version
check_eq "--version exit" "$rc" 0
check_contains "--version text" "$out" "nook version "
run_cmd "$NOOK" -v
check_eq "-v exit" "$rc" 0

for h in --help help; do
    run_cmd "$NOOK" $h
    check_eq "$h exit" "$rc" 0
    for verb in run show tokenize detokenize; do check_contains "$h lists $verb" "$out" "$verb"; done
done
for verb in run show tokenize detokenize; do
    run_cmd "$NOOK" $verb --help
    check_eq "$verb --help exit" "$rc" 0
    check_contains "$verb --help usage" "$out" "Usage: nook $verb"
done
run_cmd "$NOOK" help tokenize
check_eq "help tokenize exit" "$rc" 0
check_contains "help tokenize usage" "$out" "Usage: nook tokenize"
run_cmd "$NOOK" run --help
for opt in --num-predict --temperature --top-k --top-p --min-p --repeat-penalty --repeat-last-n \
           --seed --threads --ctx --raw --verbose --format --top-logprobs --think --no-think; do
    check_contains "run --help mentions $opt" "$out" "$opt"
done

# no arguments: usage on stderr, exit 2
run_cmd "$NOOK"
check_eq "no args exit" "$rc" 2

expect_fail "unknown verb" "$NOOK" frobnicate
check_eq "unknown verb exit" "$rc" 2
check_contains "unknown verb named" "$err" "frobnicate"
expect_fail "unknown flag" "$NOOK" --frob

# option errors are caught before the model is opened (the file need not exist)
M=/nonexistent/model.gguf
expect_fail "unknown option" "$NOOK" run "$M" hi --frobnicate
check_eq "unknown option exit" "$rc" 2
check_contains "unknown option named" "$err" "--frobnicate"
expect_fail "temperature abc" "$NOOK" run "$M" hi --temperature abc
check_contains "temperature abc named" "$err" "--temperature"
expect_fail "temperature nan" "$NOOK" run "$M" hi --temperature=nan
expect_fail "num-predict -5" "$NOOK" run "$M" hi -n -5
expect_fail "num-predict 2.5" "$NOOK" run "$M" hi --num-predict=2.5 --ctx 0
expect_fail "num-predict overflow" "$NOOK" run "$M" hi -n 99999999999999999999
expect_fail "top-p 2" "$NOOK" run "$M" hi --top-p 2
expect_fail "min-p -1" "$NOOK" run "$M" hi --min-p -1
expect_fail "repeat-penalty 0" "$NOOK" run "$M" hi --repeat-penalty 0
expect_fail "repeat-last-n -2" "$NOOK" run "$M" hi --repeat-last-n -2
expect_fail "seed -7" "$NOOK" run "$M" hi --seed -7
expect_fail "format xml" "$NOOK" run "$M" hi --format xml
expect_fail "top-logprobs 50" "$NOOK" run "$M" hi --format jsonl --top-logprobs 50
expect_fail "top-logprobs without jsonl" "$NOOK" run "$M" hi --top-logprobs 3
expect_fail "missing value" "$NOOK" run "$M" hi --temperature
expect_fail "flag with value" "$NOOK" run "$M" hi --raw=yes
expect_fail "run without model" "$NOOK" run
expect_fail "show without model" "$NOOK" show
expect_fail "show two models" "$NOOK" show a.gguf b.gguf
expect_fail "tokenize without model" "$NOOK" tokenize
expect_fail "detokenize without model" "$NOOK" detokenize

# file errors
for verb in run show tokenize detokenize; do
    extra=1; [ $verb = show ] && extra=--verbose
    expect_fail "$verb missing file" "$NOOK" $verb "$M" $extra
    check_eq "$verb missing file exit" "$rc" 1
    check_contains "$verb missing file named" "$err" "$M"
done
NOTGGUF="$(dirname "$0")/lib.bash"
for verb in run show tokenize detokenize; do
    extra=1; [ $verb = show ] && extra=--verbose
    expect_fail "$verb not a gguf" "$NOOK" $verb "$NOTGGUF" $extra
    check_eq "$verb not a gguf exit" "$rc" 1
done
printf 'GGUF\003\000\000\000' >"$TMP/trunc.gguf"
expect_fail "show truncated gguf" "$NOOK" show "$TMP/trunc.gguf"
expect_fail "run truncated gguf" "$NOOK" run "$TMP/trunc.gguf" hi
expect_fail "run directory" "$NOOK" run "$TMP" hi

finish

#!/usr/bin/env bash
# model_client_serve.sh: the CLI as a client of a running server (as Ollama's CLI):
# `nook run` streams from the server NOOK_HOST names when one answers (the server's
# token counter and /api/ps show it did the work) with the same answer as in-process;
# `nook ps` lists the loaded model; `nook stop` unloads it; with no server, `run` works
# in-process and `ps` says none runs. A NOOK_HOST that is not a loopback literal
# (nook-test.localhost, which libcurl resolves to loopback, so nothing leaves the
# machine) makes the CLI a client of "another machine": no in-process fallback, an
# egress ledger line before the prompt is sent, in-process-only flags refused.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NOOK_HOME="$TMP/home"
M="$MODELS/stories260K.gguf"
metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 //p"; }

# no server: in-process
export NOOK_HOST=127.0.0.1:1
run_cmd "$NOOK" run "$M" -n 12 --temperature 0 "Once upon a time"
check_eq "in-process run" "$rc" 0
alone="$out"
check_eq "in-process answer" "$alone" ", there was a little girl named Lily. She"
alone_stdin=$(echo "Once upon a time" | "$NOOK" run "$M" -n 12 --temperature 0 2>/dev/null)
expect_fail "ps without a server" "$NOOK" ps
check_contains "ps without a server says so" "$err" "could not connect to a nook server at http://127.0.0.1:1"

serve_start NOOK_KEEP_ALIVE=-1
export NOOK_HOST="127.0.0.1:$PORT"
before=$(metric nook_generated_tokens_total)
run_cmd "$NOOK" run "$M" -n 12 --temperature 0 "Once upon a time"
check_eq "run through the server" "$rc" 0
check_eq "same answer as in-process" "$out" "$alone"
after=$(metric nook_generated_tokens_total)
check_eq "the server generated the tokens" "$((after - before))" 12
req GET /api/ps
check_contains "the server loaded the model" "$body" "$(realpath "$M")"
run_cmd "$NOOK" run "$M" -n 12 --temperature 0 --verbose "Once upon a time"
check_contains "--verbose names the server" "$err" "server:               http://127.0.0.1:$PORT"
check_contains "--verbose timings" "$err" "eval count:           12 token(s)"
# piped stdin as the prompt
out=$(echo "Once upon a time" | "$NOOK" run "$M" -n 12 --temperature 0 2>/dev/null)
check_eq "stdin prompt through the server" "$out" "$alone_stdin"
# in-process-only flags still work locally (the server is not used)
before=$(metric nook_generated_tokens_total)
run_cmd "$NOOK" run "$M" -n 3 --temperature 0 --format jsonl "Once upon a time"
check_eq "jsonl in-process" "$rc" 0
check_eq "jsonl lines" "$(echo "$out" | wc -l)" 3
check_eq "jsonl did not use the server" "$(metric nook_generated_tokens_total)" "$before"
# an unknown model: the server's 404 message
expect_fail "unknown model through the server" "$NOOK" run "$TMP/nope.gguf" hi
check_contains "unknown model message" "$err" "not found"

run_cmd "$NOOK" ps
check_eq "ps" "$rc" 0
check_contains "ps header" "$out" "NAME"
check_contains "ps row" "$out" "$(realpath "$M")"
check_contains "ps processor and until" "$out" "100% CPU"
check_contains "ps forever" "$out" "Forever"
run_cmd "$NOOK" stop "$M"
check_eq "stop" "$rc" 0
req GET /api/ps
check_eq "stop unloaded it" "$body" '{"models":[]}'
expect_fail "stop a model not loaded" "$NOOK" stop "$M"
check_contains "stop message" "$err" "couldn't find model"

# "another machine": a host that is not a loopback literal
export NOOK_HOST="http://nook-test.localhost:$PORT"
before=$(metric nook_generated_tokens_total)
run_cmd "$NOOK" run "$M" -n 12 --temperature 0 "Once upon a time"
check_eq "remote run" "$rc" 0
check_eq "remote answer" "$out" "$alone"
check_eq "remote: the server did the work" "$(($(metric nook_generated_tokens_total) - before))" 12
check_contains "remote: egress ledger line" "$(cat "$NOOK_HOME/egress.jsonl" 2>/dev/null)" '"policy":"client"'
check_contains "remote: ledger names the server" "$(cat "$NOOK_HOME/egress.jsonl" 2>/dev/null)" "nook-test.localhost:$PORT/api/generate"
run_cmd "$NOOK" run "$M" --format jsonl hi
check_eq "remote: in-process-only flag refused" "$rc" 2
check_contains "remote: refusal names the flag" "$err" "--format jsonl works in-process only"
run_cmd "$NOOK" ps
check_eq "remote ps" "$rc" 0
serve_stop
# the remote machine is gone: an error, never a silent in-process answer
expect_fail "remote down" "$NOOK" run "$M" -n 3 hi
finish

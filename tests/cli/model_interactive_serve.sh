#!/usr/bin/env bash
# model_interactive_serve.sh: the interactive `nook run MODEL` on a real terminal (tmux)
# with a `nook serve` running on a random loopback port (NOOK_HOST): the same REPL as
# in-process (model_interactive.sh), its turns streamed from the server: the answer is
# the one the in-process session gives, the server's counters and /api/ps show it did
# the work, /set parameter travels with the next turn, """ multi-line input and /clear
# work, and Ctrl-C in the middle of a reply closes the stream (the server counts a
# cancelled generation and its active sequences fall to 0) and returns to the prompt
# with the session still usable. Against a server on another machine (NOOK_HOST not a
# loopback literal) the conversation goes there with each body in the egress ledger.
# Latency limits are generous (a loaded machine).
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
command -v tmux >/dev/null || { echo "SKIP: tmux not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NOOK_HOME="$TMP/home"
M="$MODELS/stories260K.gguf"
SOCK="$TMP/tmux.sock"
T() { tmux -S "$SOCK" "$@"; }
trap 'T kill-server 2>/dev/null; [ -n "${SRV_PID:-}" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
screen() { T capture-pane -p -J -t t -S -300 2>/dev/null | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
wait_count() {   # wait_count TEXT N SECONDS: until the pane shows TEXT N times
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        [ "$(screen | grep -cF -- "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 //p"; }
start() {   # start ARGS...: nook run against the server in a fresh tmux session
    start_at "127.0.0.1:$PORT" "$@"
}
start_at() {   # start_at NOOK_HOST ARGS...
    local host="$1"; shift
    T kill-session -t t 2>/dev/null
    T new-session -d -s t -x 100 -y 50 "NOOK_HOST=$host NOOK_HOME=$NOOK_HOME $NOOK run $* ; echo EXIT=\$?; sleep 60"
    wait_count ">>> " 1 60 || bad "no prompt after start: $(screen | tail -5)"
}

first_turn() {   # first_turn LABEL: the session's first turn, streamed from the server
    local before
    before=$(metric nook_generated_tokens_total)
    T send-keys -t t "Once upon a time" Enter
    wait_count ">>> " 2 30 && ok || bad "${1}turn 1 did not end: $(screen | tail -5)"
    check_contains "${1}turn 1 streamed from the server" "$(screen)" "there was a little girl"
    check_eq "${1}the server generated turn 1" "$(( $(metric nook_generated_tokens_total) - before ))" 12
}

serve_start NOOK_KEEP_ALIVE=-1

# turn 1 through the server: the in-process answer (model_interactive.sh checks the same text)
start "$M" --temperature 0 -n 12
req GET /api/ps
check_contains "the session preloaded the model on the server" "$body" "$(realpath "$M")"
first_turn ""

# turn 2 carries the conversation so far; /set parameter goes with the next turn
T send-keys -t t "/set parameter num_predict 3" Enter
wait_count "Set parameter 'num_predict' to '3'" 1 10 && ok || bad "/set parameter: $(screen | tail -3)"
before=$(metric nook_generated_tokens_total)
T send-keys -t t "Lily went to the park" Enter
wait_count ">>> " 4 30 && ok || bad "turn 2 did not end: $(screen | tail -5)"
check_eq "num_predict reached the server" "$(( $(metric nook_generated_tokens_total) - before ))" 3

# """ multi-line input, then /clear
T send-keys -t t '"""The cat' Enter
wait_count "... " 1 10 && ok || bad "no continuation prompt"
n=$(screen | grep -c ">>> ")
T send-keys -t t 'sat on the mat"""' Enter
wait_count ">>> " $((n + 1)) 30 && ok || bad "multi-line turn did not end"
T send-keys -t t "/clear" Enter
wait_count "Cleared session context" 1 10 && ok || bad "/clear: $(screen | tail -3)"
T send-keys -t t "/show info" Enter
wait_count "served by           http://127.0.0.1:$PORT" 1 10 && ok || bad "/show info: $(screen | tail -8)"

# Ctrl-C in the middle of a reply: a model that takes seconds per reply (random
# weights, qwen3-0.6b shape), loaded on the server by /load
BIG=$(big_model)
if [ -n "$BIG" ]; then
    T send-keys -t t "/load $BIG" Enter "/set parameter num_predict 2000" Enter
    wait_count "Set parameter 'num_predict' to '2000'" 1 120 || bad "/load of the big model: $(screen | tail -3)"
    cancelled=$(metric nook_cancelled_total)
    gen0=$(metric nook_generated_tokens_total)
    T send-keys -t t "Tell me a long story" Enter
    # until the server is generating it and some of it is on the screen
    for _ in $(seq 1 600); do
        [ "$(metric nook_active_sequences)" = 1 ] && [ "$(metric nook_generated_tokens_total)" -gt "$gen0" ] && break
        sleep 0.1
    done
    sleep 1
    n=$(screen | grep -c ">>> ")
    T send-keys -t t C-c
    wait_count ">>> " $((n + 1)) 15 && ok || bad "Ctrl-C mid-reply did not return to the prompt: $(screen | tail -3)"
    for _ in $(seq 1 100); do [ "$(metric nook_active_sequences)" = 0 ] && break; sleep 0.1; done
    check_eq "the server stopped generating" "$(metric nook_active_sequences)" 0
    check_eq "the server counted the cancel" "$(( $(metric nook_cancelled_total) - cancelled ))" 1
    T send-keys -t t "/show system" Enter
    wait_count "No system message was specified" 1 10 && ok || bad "session not usable after Ctrl-C"
else
    echo "note: no mkmodel; the Ctrl-C mid-reply check was skipped"
fi

T send-keys -t t "/bye" Enter
wait_count "EXIT=0" 1 20 && ok || bad "/bye: $(screen | tail -3)"

# Another machine's server (a NOOK_HOST that is not a loopback literal; the name
# resolves to this machine): the conversation goes there, and every body that leaves
# is in the egress ledger before it is sent, completed after
rm -f "$NOOK_HOME/egress.jsonl"
start_at "http://nook-test.localhost:$PORT" "$M" --temperature 0 -n 12
first_turn "remote: "
T send-keys -t t "/bye" Enter
wait_count "EXIT=0" 1 20 && ok || bad "remote /bye: $(screen | tail -3)"
led="$(cat "$NOOK_HOME/egress.jsonl" 2>/dev/null)"
check_contains "remote: the chat turn is in the egress ledger" "$led" "nook-test.localhost:$PORT/api/chat"
check_contains "remote: its prompt was recorded as sent" "$led" '"policy":"client"'
check_eq "remote: every egress line completed" \
    "$(grep -c '"kind":"egress"' <<<"$led") $(grep -c '"kind":"complete"' <<<"$led")" \
    "$(grep -c '"kind":"egress"' <<<"$led") $(grep -c '"kind":"egress"' <<<"$led")"
run_cmd "$NOOK" audit verify
check_eq "remote: the ledger verifies" "$rc" 0
echo '{"type":"string"}' >"$TMP/s.json"
T kill-session -t t 2>/dev/null
T new-session -d -s t -x 100 -y 50 "NOOK_HOST=http://nook-test.localhost:$PORT NOOK_HOME=$NOOK_HOME $NOOK run $M --schema $TMP/s.json; echo EXIT=\$?; sleep 60"
wait_count "EXIT=2" 1 20 && ok || bad "remote interactive --schema not refused: $(screen | tail -3)"
check_contains "remote: the refusal names it" "$(screen)" "--schema in the interactive conversation works in-process only"
serve_stop
finish

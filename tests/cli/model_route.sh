#!/usr/bin/env bash
# model_route.sh: the router end to end against a mock OpenAI-compatible remote on
# loopback (tests/router/fixtures/mock_remote.py):
#  - mixed requests (auto kept local, auto escalated, remote with redaction, local, ask,
#    a content pin, strict mode): the bodies the mock received equal the ledger's egress
#    lines in number and SHA-256, placeholders never reach it and come back restored;
#  - a remote that dies mid-request: a clear error, the egress line stays pending;
#  - nothing configured (and offline mode): auto answers locally, remote is refused,
#    nothing is sent and the ledger stays empty.
# The low-confidence model is stories260K with random weights (tools/randomize), so it
# has exactly stories260K's vocabulary.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
M="$MODELS/stories260K.gguf"
R="$TMP/random.gguf"
"${NOOK_BUILD:?}/randomize" "$M" "$R" 1 || { bad "randomize"; finish; exit 1; }
MOCK="tests/router/fixtures/mock_remote.py"
export NOOK_HOME="$TMP/home"
mkdir -p "$NOOK_HOME"
unset NOOK_ESCALATE_URL NOOK_ESCALATE_MODEL NOOK_ESCALATE_KEY_ENV NOOK_OFFLINE NOOK_ROUTE

start_mock() {  # LOG [ARGS...]: sets $MOCK_PID, $PORT
    local log="$1"; shift
    python3 "$MOCK" "$log" --lifetime 240 "$@" >"$TMP/port" &
    MOCK_PID=$!
    for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
    PORT=$(cat "$TMP/port")
}
run() { run_cmd "$NOOK" run "$@" --raw --temperature 0 -n 24; }

# ---- nothing configured: never sent --------------------------------------------------
run "$R" "Once upon a time" --route auto
check_eq "unconfigured auto exit" "$rc" 0
check_contains "unconfigured auto reason" "$err" '"reason":"policy auto, answered locally: no remote configured"'
run "$M" "Once upon a time" --route remote
check_eq "unconfigured remote refused" "$rc" 1
check_contains "unconfigured remote message" "$err" "nothing was sent"
NOOK_OFFLINE=1 NOOK_ESCALATE_URL=https://api.example.invalid/v1 NOOK_ESCALATE_MODEL=big run "$R" "Once upon a time" --route auto
check_eq "offline auto exit" "$rc" 0
check_contains "offline auto reason" "$err" "offline mode"
NOOK_OFFLINE=1 NOOK_ESCALATE_URL=https://api.example.invalid/v1 NOOK_ESCALATE_MODEL=big run "$R" "Once upon a time" --route remote
check_eq "offline remote refused" "$rc" 1
check_eq "ledger empty" "$(cat "$NOOK_HOME/egress.jsonl" 2>/dev/null | wc -l)" 0

# ---- mixed requests against the mock -------------------------------------------------
start_mock "$TMP/mock.log"
export NOOK_ESCALATE_URL="http://127.0.0.1:$PORT/v1" NOOK_ESCALATE_MODEL=mock-big
export NOOK_ESCALATE_KEY_ENV=ROUTE_TEST_KEY ROUTE_TEST_KEY=sk-test-0123456789
run "$M" "Once upon a time" --route auto
check_eq "confident exit" "$rc" 0
check_contains "confident kept local" "$err" '"target":"local","policy":"auto","reason":"confident'
run "$R" "Once upon a time" --route auto
check_eq "unsure exit" "$rc" 0
check_contains "unsure escalated" "$err" '"target":"remote","policy":"auto","reason":"low confidence'
check_eq "unsure answer is the remote's" "$out" "REMOTE: Once upon a time"
run "$M" "Mail bob@example.com about card 4111 1111 1111 1111" --route remote
check_eq "remote exit" "$rc" 0
check_eq "remote answer restored" "$out" "REMOTE: Mail bob@example.com about card 4111 1111 1111 1111"
check_contains "remote route redactions" "$err" '"redactions":{"EMAIL":1,"CARD":1}'
run "$M" "Once upon a time" --route local
check_contains "local" "$err" '"target":"local","policy":"local"'
run "$R" "Once upon a time" --route ask
check_eq "ask exit" "$rc" 0
check_contains "ask suggests" "$err" '"target":"suggest"'
check_contains "ask suggestion body" "$err" '"suggestion":{"model":"mock-big"'
run "$M" "#nook:local secret plans" --route remote
check_contains "content pin" "$err" 'pinned local (a message is marked local)'
echo '{"route": {"strict": true, "tasks": {"diary": {"local_only": true}}}}' >"$NOOK_HOME/config.json"
run "$M" "Mail bob@example.com" --route remote
check_contains "strict pin" "$err" 'pinned local (strict mode: 1 redaction hit; nothing sent)'
check_eq "strict pin: answered locally" "$rc" 0
check_eq "strict pin: a local answer" "$([ -n "$out" ] && echo yes)" "yes"
run "$M" "Once upon a time" --route remote --task diary
check_contains "task pin" "$err" 'pinned local (task local_only)'
rm "$NOOK_HOME/config.json"

# what the mock received == the ledger's egress lines
sent=$(wc -l <"$TMP/mock.log")
check_eq "mock received 2 requests" "$sent" 2
python3 - "$TMP/mock.log" "$NOOK_HOME/egress.jsonl" >"$TMP/cmp" 2>&1 <<'PY'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
led = [json.loads(l) for l in open(sys.argv[2])]
eg = [l for l in led if l["kind"] == "egress"]
ok = len(got) == len(eg) and [g["sha256"] for g in got] == [e["body_sha256"] for e in eg]
ok = ok and all(g["bytes"] == e["bytes"] for g, e in zip(got, eg))
ok = ok and all(g["auth"] == "Bearer sk-test-0123456789" for g in got)
ok = ok and not any("bob@example.com" in g["body"] or "4111" in g["body"] for g in got)
ok = ok and any("[EMAIL_1]" in g["body"] and "[CARD_1]" in g["body"] for g in got)
ok = ok and len([l for l in led if l["kind"] == "complete"]) == len(eg)
print("MATCH" if ok else "MISMATCH", len(got), len(eg))
PY
check_eq "mock == ledger" "$(cat "$TMP/cmp")" "MATCH 2 2"
run_cmd "$NOOK" audit verify
check_eq "audit verify" "$rc" 0
check_contains "audit counts" "$out" "(2 egress, 2 complete, 0 pending, 0 pulls)"
kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null

# without the key variable: no Authorization header
start_mock "$TMP/mock2.log"
NOOK_ESCALATE_URL="http://127.0.0.1:$PORT/v1" NOOK_ESCALATE_KEY_ENV= run "$M" "hello there" --route remote
check_eq "no key exit" "$rc" 0
check_contains "no Authorization header" "$(cat "$TMP/mock2.log")" '"auth": null'
kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null

# ---- a remote that dies mid-request ----------------------------------------------------
start_mock "$TMP/mock3.log" --die-after 0
NOOK_ESCALATE_URL="http://127.0.0.1:$PORT/v1" run "$R" "Once upon a time" --route auto
check_eq "dying remote exit" "$rc" 1
check_contains "dying remote error" "$err" "stays pending in the egress ledger"
check_eq "dying remote received it" "$(wc -l <"$TMP/mock3.log")" 1
run_cmd "$NOOK" audit verify
check_eq "audit verify after failure" "$rc" 0
check_contains "one pending" "$out" "(4 egress, 3 complete, 1 pending, 0 pulls)"
kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null
finish

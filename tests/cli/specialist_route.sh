#!/usr/bin/env bash
# specialist_route.sh: `nook classify --route POLICY` sends an abstaining case to the
# router (the mock OpenAI-compatible remote of the router tests, on loopback): the
# label that came back is printed, --json/--jsonl carry the "escalation" object, the
# egress ledger records each case sent, a confident case and the default (local)
# policy send nothing, and policy remote without a remote is refused.
. "$(dirname "$0")/lib.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
DATA=tests/data/specialist/split.jsonl
MOCK=tests/router/fixtures/mock_remote.py
export NOOK_HOME="$TMP/home"
unset NOOK_MODELS NOOK_ESCALATE_URL NOOK_ESCALATE_MODEL NOOK_ESCALATE_KEY_ENV NOOK_OFFLINE NOOK_ROUTE
run_cmd "$NOOK" specialize unsure --data "$DATA" --threshold 0.99
check_eq "specialize" "$rc" 0

expect_fail "remote without a remote" "$NOOK" classify unsure --route remote "two"
check_contains "says nothing was sent" "$err" "nothing was sent"
expect_fail "bad policy" "$NOOK" classify unsure --route never "two"

python3 "$MOCK" "$TMP/mock.log" --lifetime 180 >"$TMP/port" &
MOCK_PID=$!
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
export NOOK_ESCALATE_URL="http://127.0.0.1:$(cat "$TMP/port")/v1" NOOK_ESCALATE_MODEL=mock-big

# the default policy (local) keeps it here: the most likely label, nothing sent
run_cmd "$NOOK" classify unsure "two"
check_eq "local exit" "$rc" 0
check_contains "local: abstained" "$err" "the most likely label is printed"
[ ! -s "$NOOK_HOME/egress.jsonl" ] && ok || bad "local policy wrote to the ledger"

# auto: escalated; the mock echoes the text, so "two" comes back as the label two
run_cmd "$NOOK" classify unsure --route auto "two"
check_eq "auto exit" "$rc" 0
check_eq "auto prints the router's label" "$out" "two"
check_contains "auto says escalated" "$err" '"escalated":true,"general":"remote","label":"two"'
run_cmd "$NOOK" classify unsure --route auto --json "one"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); e=r["escalation"]; assert r["abstain"] and e["escalated"] and e["label"]=="one" and e["route"]["target"]=="remote", r' "$out" \
    && ok || bad "json escalation [$out]"
# the configuration's policy (NOOK_ROUTE) applies too; an answer naming no label is null
printf '{"text":"The build is green."}\n' > "$TMP/in.jsonl"
out=$(NOOK_ROUTE=auto "$NOOK" classify unsure --jsonl < "$TMP/in.jsonl")
python3 -c 'import json,sys; e=json.loads(sys.argv[1])["escalation"]; assert e["escalated"] and e["label"] is None and e["answer"]=="REMOTE: The build is green.", e' "$out" \
    && ok || bad "jsonl escalation [$out]"
# a confident case is not sent
run_cmd "$NOOK" classify unsure --route auto --threshold 0.01 "two"
check_eq "confident exit" "$rc" 0
kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null

python3 - "$TMP/mock.log" "$NOOK_HOME/egress.jsonl" <<'PY' && ok || bad "mock == ledger"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
eg = [l for l in map(json.loads, open(sys.argv[2])) if l["kind"] == "egress"]
assert len(got) == 3 and len(eg) == 3, (len(got), len(eg))
assert [g["sha256"] for g in got] == [e["body_sha256"] for e in eg]
assert all("one, two." in json.loads(g["body"])["messages"][0]["content"] for g in got)
PY
finish

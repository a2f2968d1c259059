#!/usr/bin/env bash
# model_route_serve.sh: the router in `nook serve`, end to end over HTTP with curl,
# against a mock OpenAI-compatible remote on loopback (tests/router/fixtures/mock_remote.py):
#  - nothing configured: policy remote is refused (400, nothing sent), auto answers
#    locally; the ledger stays empty;
#  - mixed requests over the four endpoints (local, auto kept local, auto escalated,
#    remote with redaction, ask, the request's local_only pin, content pins, a model
#    whose Modelfile says PARAMETER route auto, streamed and whole): every reply carries
#    the route object; the bodies the mock received equal the ledger's egress lines in
#    number and SHA-256, no redacted value reaches it, placeholders come back restored;
#  - a remote that dies mid-request: a 502 naming the pending audit id, the egress line
#    stays pending, `nook audit verify` still passes.
# The low-confidence model is stories260K with random weights (tools/randomize).
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
M="$MODELS/stories260K.gguf"
M="$(cd "$(dirname "$M")" && pwd)/$(basename "$M")"
R="$TMP/random.gguf"
"${NOOK_BUILD:?}/randomize" "$M" "$R" 1 || { bad "randomize"; finish; exit 1; }
MOCK="tests/router/fixtures/mock_remote.py"
export NOOK_HOME="$TMP/home"
mkdir -p "$NOOK_HOME"
unset NOOK_ESCALATE_URL NOOK_ESCALATE_MODEL NOOK_ESCALATE_KEY_ENV NOOK_OFFLINE NOOK_ROUTE

start_mock() {  # LOG [ARGS...]: sets $MOCK_PID, $MPORT
    local log="$1"; shift
    : >"$TMP/mport"
    python3 "$MOCK" "$log" --lifetime 240 "$@" >"$TMP/mport" &
    MOCK_PID=$!
    for _ in $(seq 50); do [ -s "$TMP/mport" ] && break; sleep 0.1; done
    MPORT=$(cat "$TMP/mport")
}
# post PATH JSON: sets $code and $body
post() { req POST "$1" -H 'Content-Type: application/json' -d "$2"; }
# jq-like field access: jget JSON EXPR (python expression on d)
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>&1; }
gen() {  # MODEL PROMPT ROUTE-JSON [STREAM]: /api/generate, greedy, 24 tokens
    post /api/generate "{\"model\":\"$1\",\"prompt\":\"$2\",\"stream\":${4:-false},\"raw\":true,\"route\":$3,\"options\":{\"temperature\":0,\"num_predict\":24}}"
}

# ---- nothing configured: nothing can leave -------------------------------------------
serve_start
gen "$M" "Once upon a time" '{"policy":"remote"}'
check_eq "unconfigured remote refused" "$code" 400
check_contains "unconfigured remote message" "$body" "nothing was sent"
gen "$R" "Once upon a time" '{"policy":"auto"}'
check_eq "unconfigured auto status" "$code" 200
check_eq "unconfigured auto answered locally" "$(jget "$body" 'd["route"]["target"], d["route"]["reason"]')" \
    "('local', 'policy auto, answered locally: no remote configured')"
post /v1/chat/completions "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}"
check_eq "route object without a route field" "$(jget "$body" 'd["route"]["target"], d["route"]["policy"]')" "('local', 'local')"
serve_stop
check_eq "ledger empty" "$(cat "$NOOK_HOME/egress.jsonl" 2>/dev/null | wc -l)" 0

# ---- mixed requests against the mock -------------------------------------------------
printf 'FROM %s\nPARAMETER route auto\n' "$R" >"$TMP/Modelfile"
run_cmd "$NOOK" create writer-auto -f "$TMP/Modelfile"
check_eq "create writer-auto" "$rc" 0
printf 'FROM %s\nSYSTEM be brief\nMESSAGE user hi\nMESSAGE assistant hello\n' "$M" >"$TMP/Modelfile2"
run_cmd "$NOOK" create writer-history -f "$TMP/Modelfile2"
check_eq "create writer-history" "$rc" 0
start_mock "$TMP/mock.log"
serve_start NOOK_ESCALATE_URL="http://127.0.0.1:$MPORT/v1" NOOK_ESCALATE_MODEL=mock-big \
    NOOK_ESCALATE_KEY_ENV=ROUTE_TEST_KEY ROUTE_TEST_KEY=sk-test-0123456789
gen "$M" "Once upon a time" '{"policy":"local"}'
check_eq "local" "$(jget "$body" 'd["route"]["target"], d["route"]["policy"], d["route"]["audit_id"]')" "('local', 'local', None)"
gen "$M" "Once upon a time" '{"policy":"auto"}'
check_eq "confident kept local" "$(jget "$body" 'd["route"]["target"], d["route"]["reason"][:9], d["response"] != ""')" \
    "('local', 'confident', True)"
check_eq "kept local: signals and threshold" "$(jget "$body" 'd["route"]["signals"]["n_tokens"], d["route"]["threshold"]')" "(24, -1.5)"
gen "$R" "Once upon a time" '{"policy":"auto"}'
check_eq "unsure escalated" "$(jget "$body" 'd["route"]["target"], d["route"]["reason"][:14], d["response"]')" \
    "('remote', 'low confidence', 'REMOTE: Once upon a time')"
check_contains "escalated: audit id" "$(jget "$body" 'd["route"]["audit_id"]')" "1-"
post /api/chat "{\"model\":\"$M\",\"stream\":false,\"route\":{\"policy\":\"remote\"},\"messages\":[{\"role\":\"user\",\"content\":\"Mail bob@example.com about card 4111 1111 1111 1111\"}]}"
check_eq "remote chat restored" "$(jget "$body" 'd["message"]["content"], d["route"]["redactions"]')" \
    "('REMOTE: Mail bob@example.com about card 4111 1111 1111 1111', {'EMAIL': 1, 'CARD': 1})"
post /v1/completions "{\"model\":\"$M\",\"prompt\":\"Call me at +44 20 7946 0958\",\"route\":{\"policy\":\"remote\"}}"
check_eq "remote completion" "$(jget "$body" 'd["choices"][0]["text"], d["route"]["target"]')" \
    "('REMOTE: Call me at +44 20 7946 0958', 'remote')"
# OpenAI streamed, escalated: the answer arrives after the decision; the finish chunk carries route
post /v1/chat/completions "{\"model\":\"$R\",\"stream\":true,\"route\":{\"policy\":\"auto\"},\"max_tokens\":24,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}"
check_eq "oai stream escalated" "$(python3 -c '
import json,sys
ev=[l[6:] for l in sys.argv[1].split("\n") if l.startswith("data: ")]
assert ev[-1]=="[DONE]"
ch=[json.loads(e) for e in ev[:-1]]
text="".join(c["choices"][0]["delta"].get("content","") for c in ch)
fin=[c for c in ch if c["choices"][0]["finish_reason"]]
print(text, fin[0]["route"]["target"], fin[0]["choices"][0]["finish_reason"])' "$body" 2>&1)" "REMOTE: Once upon a time remote stop"
# Ollama streamed, kept local: the held answer comes as one chunk, then the final line
gen "$M" "Once upon a time" '{"policy":"auto"}' true
check_eq "ollama stream kept local" "$(python3 -c '
import json,sys
ls=[json.loads(l) for l in sys.argv[1].split("\n") if l]
print(len(ls), ls[-1]["done"], ls[-1]["route"]["target"], ls[0]["response"] != "")' "$body" 2>&1)" "2 True local True"
post /api/chat "{\"model\":\"$R\",\"stream\":false,\"route\":{\"policy\":\"ask\"},\"options\":{\"temperature\":0,\"num_predict\":24},\"messages\":[{\"role\":\"user\",\"content\":\"Ask alice@example.org\"}]}"
check_eq "ask suggests" "$(jget "$body" 'd["route"]["target"], d["route"]["suggestion"]["messages"][0]["content"], d["route"]["audit_id"]')" \
    "('suggest', 'Ask [EMAIL_1]', None)"
post /api/chat "{\"model\":\"$M\",\"stream\":false,\"route\":{\"policy\":\"remote\",\"local_only\":true},\"options\":{\"num_predict\":4},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
check_eq "request pin" "$(jget "$body" 'd["route"]["target"], d["route"]["reason"]')" "('local', 'pinned local (request local_only)')"
post /api/chat "{\"model\":\"$M\",\"stream\":false,\"route\":{\"policy\":\"remote\"},\"options\":{\"num_predict\":4},\"messages\":[{\"role\":\"user\",\"content\":\"#nook:local my diary\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"more\"}]}"
check_eq "content marker pin sticks" "$(jget "$body" 'd["route"]["reason"]')" "pinned local (a message is marked local)"
post /v1/chat/completions "{\"model\":\"$M\",\"route\":{\"policy\":\"remote\"},\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"secret\",\"local_only\":true}]}"
check_eq "message local_only pin" "$(jget "$body" 'd["route"]["reason"]')" "pinned local (a message is marked local)"
# a Modelfile's SYSTEM and MESSAGE turns go in front of the request's: its pin still holds
post /api/chat '{"model":"writer-history","stream":false,"route":{"policy":"remote"},"options":{"num_predict":4},"messages":[{"role":"user","content":"secret"},{"role":"assistant","content":"ok"},{"role":"user","content":"more","local_only":true}]}'
check_eq "pin after Modelfile history" "$(jget "$body" 'd["route"]["reason"]')" "pinned local (a message is marked local)"
post /api/generate '{"model":"writer-auto","prompt":"Once upon a time","stream":false,"raw":true,"options":{"temperature":0,"num_predict":24}}'
check_eq "Modelfile route auto" "$(jget "$body" 'd["route"]["target"], d["route"]["policy"], d["response"]')" \
    "('remote', 'auto', 'REMOTE: Once upon a time')"
gen "$M" "Once upon a time" '{"policy":"sometimes"}'
check_eq "bad policy" "$code" 400
# strict mode: a remote request in which a detector fires is answered locally, not sent
echo '{"route": {"strict": true}}' >"$NOOK_HOME/config.json"
gen "$M" "Mail bob@example.com" '{"policy":"remote"}'
check_eq "strict pin" "$(jget "$body" 'd["route"]["target"], d["route"]["reason"], d["response"] != ""')" \
    "('local', 'pinned local (strict mode: 1 redaction hit; nothing sent)', True)"
rm "$NOOK_HOME/config.json"
# a closed-label task: the label mass at the first answer token, against the token's
# log-probabilities in the same reply (both labels are among its 20 best)
post /api/generate "{\"model\":\"$M\",\"prompt\":\"Once upon a time\",\"raw\":true,\"stream\":false,\"logprobs\":true,\"top_logprobs\":20,\"route\":{\"policy\":\"auto\",\"labels\":[\",\",\" there\"]},\"options\":{\"temperature\":0,\"num_predict\":4}}"
check_eq "label mass" "$(python3 -c '
import json, math, sys
d = json.loads(sys.argv[1])
top = {t["token"]: t["logprob"] for t in d["logprobs"][0]["top_logprobs"]}
p = [math.exp(top[","]), math.exp(top[" there"])]
got = d["route"]["signals"]["label_mass"]
print(abs(got - max(p) / sum(p)) < 1e-9, len(d["logprobs"][0]["top_logprobs"]), d["route"]["target"])' "$body" 2>&1)" "True 20 local"
post /api/generate "{\"model\":\"$M\",\"prompt\":\"x\",\"route\":{\"policy\":\"auto\",\"labels\":[\"x\",\"x\"]}}"
check_eq "labels that cannot be told apart" "$code" 400
serve_stop

# what the mock received == the ledger's egress lines
python3 - "$TMP/mock.log" "$NOOK_HOME/egress.jsonl" >"$TMP/cmp" 2>&1 <<'PY'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
led = [json.loads(l) for l in open(sys.argv[2])]
eg = [l for l in led if l["kind"] == "egress"]
ok = len(got) == len(eg) and [g["sha256"] for g in got] == [e["body_sha256"] for e in eg]
ok = ok and all(g["bytes"] == e["bytes"] for g, e in zip(got, eg))
ok = ok and all(g["auth"] == "Bearer sk-test-0123456789" for g in got)
ok = ok and not any(s in g["body"] for g in got for s in ("bob@example.com", "4111", "7946", "alice@"))
ok = ok and any("[EMAIL_1]" in g["body"] and "[CARD_1]" in g["body"] for g in got)
ok = ok and not any("diary" in g["body"] or "secret" in g["body"] for g in got)
ok = ok and len([l for l in led if l["kind"] == "complete"]) == len(eg)
print("MATCH" if ok else "MISMATCH", len(got), len(eg))
PY
check_eq "mock == ledger" "$(cat "$TMP/cmp")" "MATCH 5 5"
run_cmd "$NOOK" audit verify
check_eq "audit verify" "$rc" 0
check_contains "audit counts" "$out" "(5 egress, 5 complete, 0 pending, 0 pulls)"
kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null

# ---- a remote that dies mid-request ----------------------------------------------------
start_mock "$TMP/mock3.log" --die-after 0
serve_start NOOK_ESCALATE_URL="http://127.0.0.1:$MPORT/v1" NOOK_ESCALATE_MODEL=mock-big
gen "$R" "Once upon a time" '{"policy":"auto"}'
check_eq "dying remote status" "$code" 502
check_contains "dying remote error" "$body" "stays pending in the egress ledger (audit id 11-"
gen "$R" "Once upon a time" '{"policy":"auto"}' true
check_eq "dying remote status (stream)" "$code" 502
serve_stop
check_eq "dying remote received both" "$(wc -l <"$TMP/mock3.log")" 2
run_cmd "$NOOK" audit verify
check_eq "audit verify after failure" "$rc" 0
check_contains "two pending" "$out" "(7 egress, 5 complete, 2 pending, 0 pulls)"
kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null
finish

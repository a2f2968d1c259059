#!/usr/bin/env bash
# model_specialist_local.sh: an abstaining specialist escalated to a LOCAL general model
# through the server. With NOOK_SPECIALIST_GENERAL naming a model (a GGUF path, or a
# stored name) and a routing policy that would escalate (NOOK_ROUTE=auto) but no remote
# configured, /api/classify, /api/chat and /v1/chat/completions with the specialist's
# name ask that model with the label set (label-token log-probabilities) and answer with
# its label, marked escalated to the local general model; the label equals what the CLI's
# `nook classify --local-model` gets; nothing is written to the egress ledger; a
# local_only pin still reaches it (nothing leaves); an unknown general model is a clear 500.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
M="$MODELS/stories260K.gguf"
DATA=tests/data/specialist/split.jsonl
export NOOK_HOME="$TMP/home"
unset NOOK_MODELS NOOK_ESCALATE_URL NOOK_ESCALATE_MODEL
run_cmd "$NOOK" specialize unsure --data "$DATA" --threshold 0.99
check_eq "specialize exit" "$rc" 0
printf 'FROM %s\n' "$M" > "$TMP/Modelfile"
run_cmd "$NOOK" create general -f "$TMP/Modelfile"
check_eq "create the general model" "$rc" 0
T1="The build is green."
T2="Fix the flaky test and then book the flights for the team."
cli1=$("$NOOK" classify unsure --local-model "$M" --json "$T1")
cli2=$("$NOOK" classify unsure --local-model general --json "$T2")   # a stored name works too

for G in "$M" general; do
    serve_start NOOK_HOME="$NOOK_HOME" NOOK_ROUTE=auto NOOK_SPECIALIST_GENERAL="$G" NOOK_DEBUG=1
    r=$(curl -s "$BASE/api/classify" -d "{\"model\":\"unsure\",\"input\":[\"$T1\",\"$T2\"]}")
    python3 - "$r" "$cli1" "$cli2" <<'PY' && ok || bad "classify escalated locally ($G) [$r] [$cli1] [$cli2]"
import json, sys
r, c1, c2 = (json.loads(x) for x in sys.argv[1:])
res = r["results"]
for x, c in zip(res, (c1, c2)):
    e = x["escalation"]
    assert x["abstain"] and e["escalated"] and e["general"] == "local" and e["label"] in ("one", "two"), x
    assert e["route"]["target"] == "local" and "local general model" in e["route"]["reason"], e
    assert e["label"] == c["escalation"]["label"], (e, c)           # the CLI's answer
    assert x["label"] == c["label"] and x["probabilities"] == c["probabilities"], (x, c)
PY
    r=$(curl -s "$BASE/api/chat" -d "{\"model\":\"unsure\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"$T1\"}]}")
    python3 - "$r" "$cli1" <<'PY' && ok || bad "chat escalated locally ($G) [$r]"
import json, sys
r, c = (json.loads(x) for x in sys.argv[1:])
e = r["classification"]["escalation"]
assert e["general"] == "local" and r["message"]["content"] == e["label"] == c["escalation"]["label"], r
PY
    r=$(curl -s "$BASE/v1/chat/completions" -d "{\"model\":\"unsure\",\"messages\":[{\"role\":\"user\",\"content\":\"$T2\"}]}")
    python3 - "$r" "$cli2" <<'PY' && ok || bad "openai chat escalated locally ($G) [$r]"
import json, sys
r, c = (json.loads(x) for x in sys.argv[1:])
e = r["classification"]["escalation"]
assert e["general"] == "local" and r["choices"][0]["message"]["content"] == e["label"] == c["escalation"]["label"], r
PY
    r=$(curl -s "$BASE/api/classify" -d "{\"model\":\"unsure\",\"input\":\"$T1\",\"route\":{\"policy\":\"remote\",\"local_only\":true}}")
    python3 -c 'import json,sys; e=json.loads(sys.argv[1])["results"][0]["escalation"]; assert e["escalated"] and e["general"]=="local", e' "$r" \
        && ok || bad "a local_only pin still reaches the local model [$r]"
    # the general model stayed loaded between those requests, as any model the server
    # loaded: /api/ps lists it, and the four escalating requests loaded it once
    ps=$(curl -s "$BASE/api/ps")
    python3 -c 'import json,sys; m=json.loads(sys.argv[1])["models"]; assert len(m)==1, m' "$ps" \
        && ok || bad "the general model is resident after escalations ($G) [$ps]"
    check_eq "the general model loaded once for four escalations ($G)" "$(grep -c 'server: loaded ' "$SRV_LOG")" 1
    serve_stop
done
# keep_alive 0 (NOOK_KEEP_ALIVE): the general model is unloaded once the request ends
serve_start NOOK_HOME="$NOOK_HOME" NOOK_ROUTE=auto NOOK_SPECIALIST_GENERAL="$M" NOOK_KEEP_ALIVE=0
r=$(curl -s "$BASE/api/classify" -d "{\"model\":\"unsure\",\"input\":\"$T1\"}")
check_contains "escalated with keep_alive 0" "$r" '"general":"local"'
for _ in $(seq 1 40); do
    ps=$(curl -s "$BASE/api/ps")
    [ "$ps" = '{"models":[]}' ] && break
    sleep 0.05
done
check_eq "keep_alive 0 unloads the general model" "$ps" '{"models":[]}'
serve_stop
[ ! -s "$NOOK_HOME/egress.jsonl" ] && ok || bad "a local escalation wrote to the egress ledger: $(cat "$NOOK_HOME/egress.jsonl")"

serve_start NOOK_HOME="$NOOK_HOME" NOOK_ROUTE=auto NOOK_SPECIALIST_GENERAL=nosuch-general
code=$(curl -s -o "$TMP/err.json" -w '%{http_code}' "$BASE/api/classify" -d "{\"model\":\"unsure\",\"input\":\"$T1\"}")
check_eq "unknown general model status" "$code" 500
check_contains "unknown general model message" "$(cat "$TMP/err.json")" "NOOK_SPECIALIST_GENERAL"
serve_stop
finish

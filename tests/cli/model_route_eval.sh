#!/usr/bin/env bash
# model_route_eval.sh: `nook route eval`, mechanically: stories260K is the local model and
# a second `nook serve` on another loopback port (serving stories260K) stands in for the
# remote, reached by the real escalation path (egress ledger, POST). Checks:
#  - every prompt is answered by both, stored once (answers, signals, audit ids), and the
#    ledger holds one egress and one completion line per prompt;
#  - the report's numbers equal an independent recomputation in Python from the stored
#    run (token F1, AUROC of two signals for a local failure, the mean_logprob router's
#    and the oracle's quality at 50% escalation, random routing, risk at 50% coverage);
#  - --replay reports the same from the stored run with no model and no remote;
#  - without a remote configured it refuses clearly.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
M="$MODELS/stories260K.gguf"
M="$(cd "$(dirname "$M")" && pwd)/$(basename "$M")"
unset NOOK_ESCALATE_URL NOOK_ESCALATE_MODEL NOOK_ESCALATE_KEY_ENV NOOK_OFFLINE NOOK_ROUTE
export NOOK_HOME="$TMP/home"
mkdir -p "$NOOK_HOME" "$TMP/remote-home"
# the remote's answers are bounded (sent as max_tokens in the escalation body)
echo '{"route": {"remote": {"max_tokens": 16}}}' >"$NOOK_HOME/config.json"
cat >"$TMP/prompts.jsonl" <<'EOF'
{"prompt": "Once upon a time", "reference": "there was a little girl named Lily"}
{"prompt": "Lily went to the park", "reference": "she saw a big tree"}
{"prompt": "The cat sat", "reference": "on the mat"}
{"prompt": "Tom had a red ball", "reference": "he liked to play with it"}
{"prompt": "zq xv 9k ### 1234 @@", "reference": "nonsense"}
{"prompt": "One day, a little boy", "task": "story"}
{"prompt": "The sun was", "reference": "The sun was hot"}
{"prompt": "Mom said", "task": "story"}
EOF

run_cmd "$NOOK" route eval "$TMP/prompts.jsonl" --model "$M" --out "$TMP/run.jsonl"
check_eq "no remote: refused" "$rc" 1
check_contains "no remote: message" "$err" "no remote configured"

NOOK_HOME="$TMP/remote-home" serve_start
NOOK_ESCALATE_URL="$BASE/v1" NOOK_ESCALATE_MODEL="$M" \
    run_cmd "$NOOK" route eval "$TMP/prompts.jsonl" --model "$M" --out "$TMP/run.jsonl" --report "$TMP/rep.json" -n 16
check_eq "eval exit" "$rc" 0
check_contains "eval summary" "$out" "8 prompts"
check_contains "eval table" "$out" "mean_logprob"
serve_stop
check_eq "run lines" "$(wc -l <"$TMP/run.jsonl")" 8
run_cmd "$NOOK" audit verify
check_eq "audit verify" "$rc" 0
check_contains "ledger: one egress and completion per prompt" "$out" "(8 egress, 8 complete, 0 pending, 0 pulls)"

python3 - "$TMP/run.jsonl" "$TMP/rep.json" "$NOOK_HOME/egress.jsonl" >"$TMP/cmp" 2>&1 <<'PY'
import json, math, re, sys
from collections import Counter
rows = [json.loads(l) for l in open(sys.argv[1])]
rep = json.load(open(sys.argv[2]))
led = [json.loads(l) for l in open(sys.argv[3])]
bad = []
def near(name, a, b):
    if a is None or b is None or abs(a - b) > 1e-9: bad.append("%s: %r vs %r" % (name, a, b))
def words(s):
    return [w.lower() for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", s.encode())]
def f1(a, r):
    a, r = words(a), words(r)
    if not a or not r: return 1.0 if len(a) == len(r) else 0.0
    c = sum((Counter(a) & Counter(r)).values())
    if not c: return 0.0
    p, q = c / len(a), c / len(r)
    return 2 * p * q / (p + q)
n = len(rows)
eg = {l["seq"]: l for l in led if l["kind"] == "egress"}
for i, r in enumerate(rows):
    ref = r.get("reference")
    near("q_local %d" % i, r["q_local"], f1(r["local"]["text"], ref if ref is not None else r["remote"]["text"]))
    near("q_remote %d" % i, r["q_remote"], f1(r["remote"]["text"], ref) if ref is not None else 1.0)
    if not r["remote"]["text"] or int(r["remote"]["audit_id"].split("-")[0]) not in eg: bad.append("remote %d" % i)
fail = [r["q_local"] < 0.5 for r in rows]
if rep["failures"] != sum(fail): bad.append("failures")
def order(score):   # least confident first; ties in prompt order
    return sorted(range(n), key=lambda i: (score[i], i))
def auroc(score):
    nf = sum(fail); no = n - nf
    pairs = sum((1.0 if score[i] < score[j] else 0.5 if score[i] == score[j] else 0.0)
                for i in range(n) if fail[i] for j in range(n) if not fail[j])
    return pairs / (nf * no)
def quality(esc):
    return sum(r["q_remote"] if e else r["q_local"] for r, e in zip(rows, esc)) / n
mean_qr = sum(r["q_remote"] for r in rows) / n
mean_ql = sum(r["q_local"] for r in rows) / n
for name, sign in (("mean_logprob", 1), ("mean_entropy", -1)):
    score = [sign * r["local"]["signals"][name] for r in rows]
    near("auroc " + name, rep["signals"][name]["auroc"], auroc(score))
    k = math.floor(0.5 * n + 0.5)
    esc = [False] * n
    for i in order(score)[:k]: esc[i] = True
    pt = rep["signals"][name]["curve"][5]
    near("rate " + name, pt["rate"], k / n)
    near("quality@50 " + name, pt["quality"], quality(esc))
    near("retained@50 " + name, pt["retained"], quality(esc) / mean_qr)
    kept = order(score)[n - k:]
    near("risk@50 " + name, rep["signals"][name]["risk_coverage"][4]["risk"], sum(fail[i] for i in kept) / k)
gain = [-(r["q_remote"] - r["q_local"]) for r in rows]
esc = [False] * n
for i in order(gain)[:math.floor(0.5 * n + 0.5)]: esc[i] = True
near("oracle@50", rep["oracle"]["curve"][5]["quality"], quality(esc))
near("random@50", rep["random"]["curve"][5]["quality"], 0.5 * mean_ql + 0.5 * mean_qr)
esc = [not (r["local"]["signals"]["mean_logprob"] >= -1.5) for r in rows]
near("default router", rep["default_router"]["quality"], quality(esc))
print("MATCH" if not bad else "MISMATCH " + "; ".join(bad))
PY
check_eq "report == independent recomputation" "$(cat "$TMP/cmp")" "MATCH"

# replay: no model, no remote (the server is gone), the same report
run_cmd "$NOOK" route eval --replay "$TMP/run.jsonl" --report "$TMP/rep2.json"
check_eq "replay exit" "$rc" 0
check_eq "replay == first report" "$(cmp "$TMP/rep.json" "$TMP/rep2.json" && echo same)" "same"
run_cmd "$NOOK" route eval --replay "$TMP/run.jsonl" --fail-below 0.9 --report "$TMP/rep3.json"
check_eq "replay with another failure bound" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fail_below"])' "$TMP/rep3.json")" "0.9"
echo 'not json' >"$TMP/bad.jsonl"
run_cmd "$NOOK" route eval --replay "$TMP/bad.jsonl"
check_eq "bad run refused" "$rc" 1
check_contains "bad run message" "$err" "bad.jsonl:1: not a line of a stored run"
finish

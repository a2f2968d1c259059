#!/usr/bin/env bash
# route_calibrate.sh: `nook route calibrate` trains on graded examples (synthetic here:
# the grade depends on mean_logprob), writes the combiner for the task into
# $NOOK_HOME/router.json next to other tasks' and reports the escalation rate it chose;
# malformed lines are named.
. "$(dirname "$0")/lib.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
export NOOK_HOME="$TMP/home"
mkdir -p "$NOOK_HOME"
python3 - "$TMP/graded.jsonl" <<'PY'
import json, random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for i in range(400):
        q = random.gauss(0, 1)
        ok = random.random() < 1 / (1 + 2.718281828 ** (-3 * q))
        sig = {"n_tokens": 20, "mean_logprob": -1.5 + 0.5 * q + random.gauss(0, 0.3),
               "mean_entropy": 2 - 0.6 * q + random.gauss(0, 0.4)}
        f.write(json.dumps({"signals": sig, "ok": ok, "task": "qa" if i % 2 else ""}) + "\n")
PY
run_cmd "$NOOK" route calibrate "$TMP/graded.jsonl" --task qa --rate 0.25
check_eq "calibrate exit" "$rc" 0
check_contains "calibrate summary" "$out" 'calibrated task "qa" on 200 examples'
check_contains "calibrate rate" "$out" "escalates 25.0% of these examples"
run_cmd "$NOOK" route calibrate "$TMP/graded.jsonl" --max-error 0.1
check_eq "calibrate default task exit" "$rc" 0
check_contains "both tasks kept" "$(cat "$NOOK_HOME/router.json")" '"qa"'
check_contains "default task" "$(cat "$NOOK_HOME/router.json")" '"": {'
echo '{"signals": 3}' >"$TMP/bad.jsonl"
run_cmd "$NOOK" route calibrate "$TMP/bad.jsonl"
check_eq "bad file exit" "$rc" 1
check_contains "bad line named" "$err" "bad.jsonl:1:"
run_cmd "$NOOK" route frob x
check_eq "usage" "$rc" 2
finish

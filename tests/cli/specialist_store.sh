#!/usr/bin/env bash
# specialist_store.sh: specialists in the model store (a temporary NOOK_HOME):
# `nook specialize NAME` without --output stores it, `nook list` shows it, `nook show`
# says what it is, `nook classify NAME` uses it, `nook cp` and `nook rm` act on it (rm
# leaves no blob behind), `nook run` refuses it with a pointer to classify, and
# --output still writes a standalone file that equals the stored blob.
. "$(dirname "$0")/lib.bash"
DATA=tests/data/specialist/split.jsonl
export NOOK_HOME="$TMP/home"
unset NOOK_MODELS NOOK_OLLAMA_STORE

run_cmd "$NOOK" specialize split --data "$DATA"
check_eq "specialize (store) exit" "$rc" 0
check_contains "specialize says stored" "$out" "stored as 'split'"
manifest="$NOOK_HOME/models/manifests/registry.ollama.ai/library/split/latest"
[ -f "$manifest" ] && ok || bad "no manifest at $manifest"
python3 - "$manifest" "$NOOK_HOME/models/blobs" <<'PY' && ok || bad "manifest shape"
import json, sys, os
m = json.load(open(sys.argv[1]))
layers = m["layers"]
assert [l["mediaType"] for l in layers] == ["application/vnd.nook.specialist"], layers
blob = os.path.join(sys.argv[2], layers[0]["digest"].replace(":", "-"))
assert os.path.getsize(blob) == layers[0]["size"]
assert open(blob, "rb").read(4) == b"GGUF"
cfg = json.load(open(os.path.join(sys.argv[2], m["config"]["digest"].replace(":", "-"))))
assert cfg["model_family"] == "nook-specialist" and cfg["labels"] == ["one", "two"], cfg
PY

run_cmd "$NOOK" list
check_contains "list shows it" "$out" "split:latest"

run_cmd "$NOOK" show split
check_eq "show exit" "$rc" 0
check_contains "show: what it is" "$out" "Specialist (a text classifier"
check_contains "show: labels" "$out" "one, two"

run_cmd "$NOOK" classify split "Fix the flaky test and then update the changelog."
check_eq "classify by name exit" "$rc" 0
case "$out" in one|two) ok ;; *) bad "classify printed [$out]" ;; esac
by_name="$out"

# the standalone file (--output) is byte-for-byte the stored blob, and classifies alike
run_cmd "$NOOK" specialize split --data "$DATA" --output "$TMP/split.gguf"
check_eq "specialize --output exit" "$rc" 0
blob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"].replace(":","-"))' "$manifest")
cmp -s "$TMP/split.gguf" "$NOOK_HOME/models/blobs/$blob" && ok || bad "--output file differs from the stored blob"
run_cmd "$NOOK" classify "$TMP/split.gguf" "Fix the flaky test and then update the changelog."
check_eq "file and name agree" "$out" "$by_name"

printf '{"text":"The build is green."}\n' > "$TMP/in.jsonl"
out=$("$NOOK" classify split --jsonl < "$TMP/in.jsonl")
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert set(r)=={"label","confidence","probabilities","abstain"}, r' "$out" \
    && ok || bad "jsonl by name [$out]"

expect_fail "run refuses a specialist" "$NOOK" run split hello
check_contains "run points to classify" "$err" "nook classify"
expect_fail "bad name" "$NOOK" specialize ../x --data "$DATA"
expect_fail "unknown specialist" "$NOOK" classify nosuch "text"

run_cmd "$NOOK" cp split split2
check_eq "cp exit" "$rc" 0
run_cmd "$NOOK" rm split
check_eq "rm exit" "$rc" 0
run_cmd "$NOOK" list
case "$out" in *"split:latest"*) bad "rm left it listed" ;; *) ok ;; esac
run_cmd "$NOOK" classify split2 "The build is green."
check_eq "the copy still classifies" "$rc" 0
expect_fail "removed one is gone" "$NOOK" classify split "The build is green."
run_cmd "$NOOK" rm split2
n=$(find "$NOOK_HOME/models/blobs" -type f -name 'sha256-*' | wc -l)
check_eq "rm removes the blobs" "$n" 0
finish

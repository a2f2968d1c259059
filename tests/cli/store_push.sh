#!/usr/bin/env bash
# store_push.sh: nook push against the loopback mock registry (tests/fixtures/registry.py
# accepts Ollama's push protocol): off unless NOOK_ALLOW_PUSH=1; a push uploads every
# blob (HEAD, POST, PUT ?digest=) and the manifest; a second push uploads nothing; the
# pushed model pulled into a fresh store is byte-identical and answers the same.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 needed for the mock registry"; exit 77; }
export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/a" NOOK_HOME="$TMP/home"
unset NOOK_OLLAMA_STORE NOOK_ALLOW_PUSH NOOK_REGISTRY_MIRROR
GGUF="$MODELS/stories260K.gguf"
python3 "$(dirname "$0")/../fixtures/registry.py" --port-file "$TMP/port" --ttl 120 &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
R="127.0.0.1:$(cat "$TMP/port")"
stat_() { curl -s --noproxy '*' "http://$R/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

printf 'FROM %s\nSYSTEM """Tell stories."""\nPARAMETER temperature 0\nPARAMETER num_predict 5\n' "$GGUF" >"$TMP/Modelfile"
"$NOOK" create story -f "$TMP/Modelfile" >/dev/null 2>&1
"$NOOK" cp story "$R/me/story:v1" >/dev/null
expect_fail "push is off by default" "$NOOK" push --insecure "$R/me/story:v1"
check_contains "push off: says how to enable it" "$err" "NOOK_ALLOW_PUSH=1"
check_eq "nothing uploaded while off" "$(stat_ '["pushed_blobs"]')" 0
export NOOK_ALLOW_PUSH=1
# a registry that moves the upload to another host over plain http: nothing is sent there
curl -s --noproxy '*' -X POST "http://$R/_ctl" -d '{"upload_elsewhere": true}' >/dev/null
expect_fail "push redirected to another host over http: refused" "$NOOK" push --insecure "$R/me/story:v1"
check_contains "redirected push: says why" "$err" "another host over plain http"
check_eq "redirected push: no blob uploaded" "$(stat_ '["pushed_blobs"]')" 0
curl -s --noproxy '*' -X POST "http://$R/_ctl" -d '{"upload_elsewhere": false}' >/dev/null
expect_fail "push of a model not in the store" "$NOOK" push --insecure "$R/me/nosuch:v1"
check_contains "push unknown: not found" "$err" "not found"
run_cmd "$NOOK" push --insecure "$R/me/story:v1"
check_eq "push" "$rc" 0
[ "$rc" = 0 ] || echo "push: $err"
check_eq "push quiet in a pipe" "$out$err" ""
layers=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(1+len(m['layers']))" "$NOOK_MODELS/manifests/$R/me/story/v1")
check_eq "every blob uploaded once" "$(stat_ '["pushed_blobs"]')" "$layers"
run_cmd "$NOOK" push --insecure "$R/me/story:v1"
check_eq "second push" "$rc" 0
check_eq "second push uploaded nothing (HEAD found every blob)" "$(stat_ '["pushed_blobs"]')" "$layers"
check_contains "the push is in the egress ledger, as user content" "$(cat "$TMP/home/egress.jsonl" 2>/dev/null)" '"kind":"push"'

# pull it into a fresh store
export NOOK_MODELS="$TMP/b"
run_cmd "$NOOK" pull --insecure "$R/me/story:v1"
check_eq "pull of the pushed model" "$rc" 0
cmp -s "$TMP/a/manifests/$R/me/story/v1" "$TMP/b/manifests/$R/me/story/v1" && ok || bad "pulled manifest differs from the pushed one"
for f in "$TMP"/b/blobs/sha256-*; do
    check_eq "pulled blob $(basename "$f") matches its name" "sha256-$(sha256sum "$f" | cut -d' ' -f1)" "$(basename "$f")"
done
check_eq "same blobs in both stores" "$(ls "$TMP/b/blobs")" "$(ls "$TMP/a/blobs")"
run_cmd "$NOOK" show "$R/me/story:v1" --modelfile
check_contains "pulled model keeps its SYSTEM" "$out" 'Tell stories.'
check_eq "pulled model answers as the original" "$("$NOOK" run "$R/me/story:v1" "Once upon a time" 2>/dev/null)" \
    "$(NOOK_MODELS="$TMP/a" "$NOOK" run story "Once upon a time" 2>/dev/null)"
expect_fail "push of a Hugging Face name refused" "$NOOK" push hf.co/someone/x:Q4_K_M
finish

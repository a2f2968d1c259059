#!/usr/bin/env bash
# store_pull.sh: nook pull against the loopback mock registry (tests/fixtures/registry.py):
# a good pull, resume after a drop fetching only the missing bytes, 500s and stalls
# retried, corrupt bytes refused and not kept, every malicious manifest/model refused with
# no manifest and no file outside the store, kill -9 at random moments then a new pull,
# two concurrent pulls, the token handshake (Authorization not sent to the blob CDN host),
# Hugging Face repos by quant, rm garbage collection, cp. NOOK_OFFLINE=1 throughout: nook
# refuses any non-loopback host, so nothing here can reach beyond 127.0.0.1.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 needed for the mock registry"; exit 77; }

export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/store" NOOK_PULL_MIN_PART=65536 NOOK_PULL_STALL_MS=1000
unset NOOK_OLLAMA_STORE NOOK_REGISTRY_MIRROR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
GGUF="$MODELS/stories260K.gguf"
SHA=$(sha256sum "$GGUF" | cut -d' ' -f1)
SIZE=$(stat -c %s "$GGUF")

python3 "$(dirname "$0")/../fixtures/registry.py" --port-file "$TMP/port" --ttl 600 \
    --model "library/tiny:latest=$GGUF" --hf "someone/tiny-GGUF=$GGUF" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
PORT=$(cat "$TMP/port")
R="127.0.0.1:$PORT"
ctl()   { curl -s --noproxy '*' -X POST -d "$1" "http://$R/_ctl" >/dev/null; }
stat_() { curl -s --noproxy '*' "http://$R/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
blob="$NOOK_MODELS/blobs/sha256-$SHA"
no_partials() { ! ls "$NOOK_MODELS/blobs" 2>/dev/null | grep -q partial; }

# ---- a good pull, then the same again fetches nothing ----
run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "pull exit" "$rc" 0
check_eq "pull quiet in a pipe" "$err$out" ""
check_eq "blob sha256" "$(sha256sum "$blob" | cut -d' ' -f1)" "$SHA"
run_cmd "$NOOK" list
check_contains "list" "$out" "$R/library/tiny:latest"
b0=$(stat_ '["blob_bytes"]')
check_eq "first pull fetched the blobs once" "$((b0 >= SIZE && b0 < SIZE + 1000))" 1
check_eq "ranged parts used" "$(stat_ '["ranges"].__len__() > 4')" True
run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "second pull exit" "$rc" 0
check_eq "second pull fetched no blob bytes" "$(stat_ '["blob_bytes"]')" "$b0"
run_cmd "$NOOK" run "$R/library/tiny" "Once upon a time"
check_eq "run NAME exit" "$rc" 0
run_cmd "$NOOK" run "$GGUF" -n 4 --temperature 0 "Once upon a time"
check_eq "run NAME applies the Modelfile parameters (same as the path with them)" "$($NOOK run "$R/library/tiny" "Once upon a time" 2>/dev/null)" "$out"
run_cmd "$NOOK" show "$R/library/tiny" --modelfile
check_contains "show --modelfile" "$out" "PARAMETER num_predict 4"
check_contains "show --modelfile system" "$out" 'SYSTEM """You are a test."""'

# ---- rm keeps blobs another model uses, then removes them ----
"$NOOK" cp "$R/library/tiny" mycopy >/dev/null
run_cmd "$NOOK" rm "$R/library/tiny"
check_eq "rm exit" "$rc" 0
[ -f "$blob" ] && ok || bad "rm removed a blob still used by mycopy"
run_cmd "$NOOK" rm mycopy
[ -f "$blob" ] && bad "rm left an unreferenced blob" || ok
check_eq "store empty" "$(ls "$NOOK_MODELS/blobs" | wc -l)" 0
expect_fail "rm unknown" "$NOOK" rm nosuchmodel

# ---- run NAME of a model not in the store pulls it first (as `ollama run`), then answers ----
expect_fail "run's pull over http needs --insecure" "$NOOK" run "$R/library/tiny" "Once upon a time"
check_contains "run's pull failure says what to do" "$err" "check the name"
run_cmd "$NOOK" run --insecure "$R/library/tiny" "Once upon a time"
check_eq "run pulls a missing name" "$rc" 0
[ "$rc" = 0 ] || echo "run: $err"
check_eq "the pulled model answers as before" "$out" "$($NOOK run "$GGUF" -n 4 --temperature 0 "Once upon a time" 2>/dev/null)"
run_cmd "$NOOK" list
check_contains "run's pull is in the store" "$out" "tiny"
"$NOOK" rm "$R/library/tiny" >/dev/null

# ---- resume after a drop: only the missing bytes are fetched ----
b1=$(stat_ '["blob_bytes"]')
ctl '{"drop_after": 300000, "times": 1}'
NOOK_PULL_PARTS=1 run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "pull after a drop" "$rc" 0
got=$(( $(stat_ '["blob_bytes"]') - b1 ))
check_eq "resume fetched only the missing bytes (model + small layers)" "$((got >= SIZE && got < SIZE + 1000))" 1
check_eq "blob sha256 after resume" "$(sha256sum "$blob" | cut -d' ' -f1)" "$SHA"
"$NOOK" rm "$R/library/tiny" >/dev/null

# ---- 500 then success; a stall is detected and retried ----
ctl '{"fail500": 2}'
run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "pull after two 500s" "$rc" 0
"$NOOK" rm "$R/library/tiny" >/dev/null
ctl '{"drop_after": 100000, "stall": 6, "times": 1}'
t0=$(date +%s)
NOOK_PULL_PARTS=1 run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "pull after a stall" "$rc" 0
check_eq "stall detected before the server gave up (<6 s)" "$(( $(date +%s) - t0 < 6 ))" 1
"$NOOK" rm "$R/library/tiny" >/dev/null

# ---- corrupt bytes: refused, nothing kept ----
ctl '{"wrong": true}'
expect_fail "corrupt bytes refused" "$NOOK" pull --insecure "$R/library/tiny"
check_contains "corrupt: says digest mismatch" "$err" "digest mismatch"
ctl '{"wrong": false}'
[ -f "$blob" ] && bad "corrupt blob kept" || ok
no_partials && ok || bad "partial file of a corrupt blob kept"
run_cmd "$NOOK" list
check_eq "no manifest after corrupt pull" "$(printf '%s\n' "$out" | wc -l)" 1

# ---- malicious manifests and models ----
for m in traverse otherblob huge badgguf bigconfig; do
    expect_fail "malicious $m refused" "$NOOK" pull --insecure "$R/library/$m"
    [ -e "$NOOK_MODELS/manifests/$R/library/$m" ] && bad "$m: manifest written" || ok
done
[ -e /tmp/nook-evil ] && bad "a file was written outside the store" || ok
check_eq "nothing but store files" "$(find "$NOOK_MODELS" -newer "$TMP/port" -not -path "$NOOK_MODELS/blobs/sha256-*" -not -name .nook-lock -type f | wc -l)" 0
check_eq "malicious pulls left no model blob" "$(ls "$NOOK_MODELS/blobs" | grep -c "$SHA")" 0
expect_fail "unknown model" "$NOOK" pull --insecure "$R/library/nosuch"
check_contains "unknown model message" "$err" "not found"
expect_fail "invalid name" "$NOOK" pull "../../etc/passwd"
expect_fail "offline refuses the default registry" "$NOOK" pull tinyllama
check_contains "offline message" "$err" "offline"
expect_fail "http needs --insecure for non-loopback" env NOOK_OFFLINE=0 "$NOOK" pull http://nook-test.invalid/library/x:y
expect_fail "run of an unknown name says what to do" "$NOOK" run "$R/library/nosuch" hi
check_contains "run unknown: hint" "$err" ".gguf"

# ---- kill -9 at 20 random moments, each followed by a new pull ----
# The mock is rate-limited (per connection) so a pull lasts about a second and the kill
# moments (uniform over 0-1.2 s after the start) spread over startup, manifest, the
# parallel parts, verification and the manifest write. After each kill: every blob under
# its final name hashes to its name; then a new, unlimited pull (resuming what the killed
# one left) ends with the right blob, no partial file, and a store `nook list` reads.
blobs_ok() {   # every sha256-<hex> file (not -partial*) hashes to its name
    local f
    for f in "$NOOK_MODELS"/blobs/sha256-*; do
        [ -e "$f" ] || continue
        case "$f" in *-partial*) continue ;; esac
        [ "sha256-$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || { echo "bad blob $f"; return 1; }
    done
}
mid=0
for i in $(seq 20); do
    ctl '{"rate": 200000}'
    "$NOOK" pull --insecure "$R/library/tiny" >/dev/null 2>&1 &
    pid=$!
    ms=$(( RANDOM % 1200 ))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ -e "$NOOK_MODELS/manifests/$R/library/tiny/latest" ] || mid=$((mid + 1))
    blobs_ok && ok || bad "kill $i: a blob under its final name does not match"
    ctl '{"rate": 0}'
    run_cmd "$NOOK" pull --insecure "$R/library/tiny"
    check_eq "pull after kill $i" "$rc" 0
    check_eq "blob sha256 after kill $i" "$(sha256sum "$blob" | cut -d' ' -f1)" "$SHA"
    blobs_ok && ok || bad "kill $i: blobs after the new pull"
    no_partials && ok || bad "kill $i: partial files left after the new pull"
    run_cmd "$NOOK" list
    check_contains "list after the pull after kill $i" "$out" "library/tiny:latest"
    "$NOOK" rm "$R/library/tiny" >/dev/null
done
check_eq "kills landed mid-pull (>= 5 of 20; got $mid)" "$((mid >= 5))" 1

# ---- two pulls of one model at once ----
ctl '{"rate": 3000000}'
"$NOOK" pull --insecure "$R/library/tiny" >"$TMP/p1" 2>&1 & p1=$!
"$NOOK" pull --insecure "$R/library/tiny" >"$TMP/p2" 2>&1 & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
ctl '{"rate": 0}'
check_eq "concurrent pulls succeed" "$r1$r2" "00"
check_eq "one correct copy" "$(sha256sum "$blob" | cut -d' ' -f1)" "$SHA"
no_partials && ok || bad "partial files left after concurrent pulls"
"$NOOK" rm "$R/library/tiny" >/dev/null

# ---- token handshake; Authorization stays on the registry host ----
ctl '{"auth": true}'
run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "pull with the token handshake" "$rc" 0
check_eq "registry blob requests carried the token" "$(stat_ '["auth_headers"][-1]')" "['cdn', None]"
check_eq "Authorization sent to the registry" "$(stat_ '["auth_headers"][-2][1]')" "Bearer t0ken"
ctl '{"auth": false}'

# ---- Hugging Face: the file for the quant tag ----
export NOOK_HF_ENDPOINT="http://$R"
run_cmd "$NOOK" pull hf.co/someone/tiny-GGUF:q8_0
check_eq "hf pull by quant" "$rc" 0
run_cmd "$NOOK" pull hf.co/someone/tiny-GGUF
check_eq "hf pull default quant" "$rc" 0
run_cmd "$NOOK" list
check_contains "hf listed" "$out" "hf.co/someone/tiny-GGUF:q8_0"
check_contains "hf default listed" "$out" "hf.co/someone/tiny-GGUF:latest"
expect_fail "hf unknown quant" "$NOOK" pull hf.co/someone/tiny-GGUF:IQ1_S
run_cmd "$NOOK" run hf.co/someone/tiny-GGUF:Q8_0 -n 2 "Once"
check_eq "run hf name (case-insensitive tag)" "$rc" 0
finish

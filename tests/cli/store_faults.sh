#!/usr/bin/env bash
# store_faults.sh: the store under faults (issue 16 item 4):
#  - a full disk during a pull (RLIMIT_FSIZE stands in for it): a clear error, the store
#    intact (list reads, nothing registered), and the pull completes once there is room;
#  - kill -9 during create (while quantizing, and while copying the model in): no model
#    registered, the store lists, and the dead process's temporary files go at the next
#    rm (garbage collection removes .tmp- files no live writer holds);
#  - kill -9 during quantize: the next quantize to the same OUT succeeds and leaves no
#    OUT.tmp (the one a killed process leaves cannot be removed by it).
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 needed for the mock registry"; exit 77; }
export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/store" NOOK_HOME="$TMP/home"
unset NOOK_OLLAMA_STORE NOOK_REGISTRY_MIRROR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
S="$MODELS/stories260K.gguf"

python3 "$(dirname "$0")/../fixtures/registry.py" --port-file "$TMP/port" --ttl 120 \
    --model "library/tiny:latest=$S" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
R="127.0.0.1:$(cat "$TMP/port")"

# ---- a full disk during a pull ----
# (SIGXFSZ ignored, so the write fails with EFBIG instead of killing the process)
( trap '' XFSZ; ulimit -f 400; exec "$NOOK" pull --insecure "$R/library/tiny" ) >"$TMP/out" 2>"$TMP/err" </dev/null
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && ok || bad "full disk: exit $rc, want a clean failure"
check_contains "full disk: says why" "$(cat "$TMP/err")" "File too large"
run_cmd "$NOOK" list
check_eq "full disk: list still reads" "$rc" 0
case "$out" in *tiny*) bad "full disk: a model was registered" ;; *) ok ;; esac
run_cmd "$NOOK" pull --insecure "$R/library/tiny"
check_eq "full disk: the pull completes with room" "$rc" 0
run_cmd "$NOOK" run "$R/library/tiny" "Once upon a time" -n 4 --temperature 0
check_eq "full disk: the model runs after" "$out" "$("$NOOK" run "$S" "Once upon a time" -n 4 --temperature 0 2>/dev/null </dev/null)"

# ---- kill -9 during create and quantize (a model that takes seconds) ----
BIG=$(big_model)
[ -n "$BIG" ] && BIG=$(realpath "$BIG")
if [ -n "$BIG" ] && [ -z "${ASAN_OPTIONS:-}" ]; then
    printf 'FROM %s\n' "$BIG" > "$TMP/Modelfile"
    for how in "--quantize q8_0" ""; do
        "$NOOK" create big -f "$TMP/Modelfile" $how >/dev/null 2>&1 </dev/null &
        pid=$!
        for _ in $(seq 1 200); do ls -A "$NOOK_MODELS/blobs" 2>/dev/null | grep -q '^\.tmp-' && break; sleep 0.02; done
        sleep 0.05
        if ! kill -9 "$pid" 2>/dev/null; then
            # a fast disk can copy the whole file in that time: then there is nothing to test
            wait "$pid" 2>/dev/null
            echo "note: create $how finished before the kill"
            "$NOOK" rm big >/dev/null 2>&1
            continue
        fi
        wait "$pid" 2>/dev/null
        run_cmd "$NOOK" list
        check_eq "create $how killed: list reads" "$rc" 0
        case "$out" in *big*) bad "create $how killed: a model was registered" ;; *) ok ;; esac
    done
    left=$(ls -A "$NOOK_MODELS/blobs" | grep -c '^\.tmp-')
    [ "$left" -gt 0 ] && ok || bad "the killed creates left no temporary file to clean (nothing tested)"
    "$NOOK" cp "$R/library/tiny" spare >/dev/null 2>&1
    run_cmd "$NOOK" rm spare
    check_eq "rm after the kills" "$rc" 0
    check_eq "no temporary file left after rm" "$(ls -A "$NOOK_MODELS/blobs" | grep -c '^\.tmp-')" 0
    run_cmd "$NOOK" run "$R/library/tiny" "Once upon a time" -n 4 --temperature 0
    check_eq "the store still runs its model" "$rc" 0

    "$NOOK" quantize "$BIG" "$TMP/q.gguf" Q8_0 --allow-requantize >/dev/null 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 200); do [ -e "$TMP/q.gguf.tmp" ] && break; sleep 0.02; done
    sleep 0.05
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    [ ! -e "$TMP/q.gguf" ] && ok || bad "quantize killed: a partial OUT"
    run_cmd "$NOOK" quantize "$S" "$TMP/q.gguf" Q8_0
    check_eq "quantize after a kill" "$rc" 0
    [ -e "$TMP/q.gguf" ] && [ ! -e "$TMP/q.gguf.tmp" ] && ok || bad "quantize after a kill left OUT.tmp or no OUT"
fi
finish

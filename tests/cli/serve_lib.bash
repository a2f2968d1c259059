# serve_lib.bash: start and stop `nook serve` for the tests/cli/serve_*.sh scripts
# (sourced after lib.bash; not a test itself). Loopback only, a free port each time.

# serve_start [ENV=VALUE...]: starts the server on 127.0.0.1 with a free port, with the
# given extra environment; sets $SRV_PID, $PORT and $BASE; fails the script if it
# does not come up within 10 s.
serve_start() {
    local log="$TMP/serve.$RANDOM.log"
    env NOOK_HOST=127.0.0.1:0 "$@" "$NOOK" serve 2>"$log" &
    SRV_PID=$!
    SRV_LOG="$log"
    PORT=""
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's/.*Listening on [^ ]*:\([0-9]*\) .*/\1/p' "$log" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$PORT" ]; then
        echo "FAIL: nook serve did not start: $(cat "$log")" >&2
        exit 1
    fi
    BASE="http://127.0.0.1:$PORT"
}

# serve_stop: SIGTERM, and the exit status must be 0 within 10 s (graceful drain).
serve_stop() {
    kill -TERM "$SRV_PID" 2>/dev/null
    local i
    for i in $(seq 1 200); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        bad "server did not stop on SIGTERM"
        kill -KILL "$SRV_PID"
    fi
    wait "$SRV_PID"
    local rc=$?
    check_eq "server exit status after SIGTERM" "$rc" 0
}

# req METHOD PATH [curl args...]: sets $code (HTTP status) and $body.
req() {
    local m="$1" p="$2"; shift 2
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 20 -X "$m" "$@" "$BASE$p")
    body="$(cat "$TMP/body" 2>/dev/null)"
}

#!/usr/bin/env bash
# bench/store.sh: the store's two measured numbers (docs/store.md):
#  1. pull throughput from the loopback mock registry (tests/fixtures/registry.py) with
#     parallel ranged parts vs one stream, unthrottled and with a per-connection rate
#     limit (as CDNs limit each connection);
#  2. the time `nook run NAME` adds over `nook run PATH` (resolving the name).
# Usage: bench/store.sh [MODEL.gguf] [RUNS]   (RUNS default 3; RATE: the per-connection limit
#        in bytes/s for the limited rows, default 20000000)
# Loopback only; NOOK_OFFLINE=1 is set so nothing can leave the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
NOOK=${NOOK:-build/nook}
MODEL="${1:?usage: $0 MODEL.gguf (e.g. from build/mkmodel qwen3-0.6b Q4_K_M OUT.gguf)}"
RUNS=${2:-3}
TMP=$(mktemp -d)
export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/store"
python3 tests/fixtures/registry.py --port-file "$TMP/port" --ttl 900 --model "library/bench:latest=$MODEL" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 600); do [ -s "$TMP/port" ] && break; sleep 0.1; done
R="127.0.0.1:$(cat "$TMP/port")"
SIZE=$(stat -c %s "$MODEL")
echo "model $(basename "$MODEL"), $SIZE bytes; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

pull_time() {   # parts rate -> seconds (best of RUNS)
    local best=999999
    curl -s --noproxy '*' -X POST -d "{\"rate\": $2}" "http://$R/_ctl" >/dev/null
    for _ in $(seq "$RUNS"); do
        rm -rf "$NOOK_MODELS"
        local t0 t1
        t0=$(date +%s.%N)
        NOOK_PULL_PARTS=$1 "$NOOK" pull --insecure "$R/library/bench" >/dev/null
        t1=$(date +%s.%N)
        best=$(echo "$t1 - $t0" | bc -l | awk -v b="$best" '{ print ($1 < b) ? $1 : b }')
    done
    echo "$best"
}
for rate in 0 "${RATE:-20000000}"; do
    for parts in 1 8; do
        t=$(pull_time $parts $rate)
        printf 'rate limit %-9s parts %-2s  %6.2f s  %7.1f MB/s\n' "$([ $rate = 0 ] && echo none || echo $((rate / 1000000))MB/s)" \
            "$parts" "$t" "$(echo "$SIZE / $t / 1000000" | bc -l)"
    done
done
curl -s --noproxy '*' -X POST -d '{"rate": 0}' "http://$R/_ctl" >/dev/null

# run NAME vs run PATH: the whole command, --show-prompt (load + template, no generation)
"$NOOK" pull --insecure "$R/library/bench" >/dev/null
NAME="$R/library/bench"
time_cmd() {   # best wall time of 10 runs, microseconds
    local best=999999999999
    for _ in $(seq 10); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        best=$(( (t1 - t0) / 1000 < best ? (t1 - t0) / 1000 : best ))
    done
    echo "$best"
}
p=$(time_cmd "$NOOK" run "$MODEL" --show-prompt hi)
n=$(time_cmd "$NOOK" run "$NAME" --show-prompt hi)
blob="$NOOK_MODELS/blobs/sha256-$(sha256sum "$MODEL" | cut -d' ' -f1)"
b=$(time_cmd "$NOOK" run "$blob" --show-prompt hi)
echo "run --show-prompt (load + template), best of 10: PATH $((p / 1000)).$(printf %03d $((p % 1000))) ms, NAME $((n / 1000)).$(printf %03d $((n % 1000))) ms, blob PATH $((b / 1000)).$(printf %03d $((b % 1000))) ms"
p=$(time_cmd "$NOOK" show "$MODEL" --system)
n=$(time_cmd "$NOOK" show "$NAME" --system)
echo "show --system (process + resolution only), best of 10: PATH $p us, NAME $n us"

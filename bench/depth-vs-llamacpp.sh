#!/usr/bin/env bash
# depth-vs-llamacpp.sh MODEL...: issue 17's two figures at one depth, nook and llama.cpp
# side by side on the same files, from one fill each.
#
#   ppDEPTH      prompt processing of DEPTH tokens into an empty cache, in forward passes
#                of FILL_BATCH tokens (n_batch = n_ubatch = FILL_BATCH on both sides)
#   tgTG@dDEPTH  TG single-token greedy decodes with DEPTH tokens already in the cache
#                (one untimed warm-up, then INNER timed runs, each after the cache is cut
#                back to DEPTH; the median)
#
# Both come from one fill per runtime and round: `nook bench -p 0 -n TG -d DEPTH
# --fill-batch B` and `node bench/llamacpp_ext.mjs depth` (llama.cpp through
# node-llama-cpp). vs-llamacpp.sh measures the same things with the shared tool's
# `bench`, which fills the cache before every run and its warm-up: at 16,384 tokens
# that is four fills of several minutes each per model here; this script needs two.
# REPS rounds (default 1) alternate the runtimes so both see the same load.
#
# Environment: NOOK (default build/nook), THREADS (2), DEPTH (16384), TG (32),
# FILL_BATCH (2048, llama-bench's n_batch), REPS (1), INNER (2), KV (nook's cache type,
# f16; llama.cpp's stays its default f16), LLAMACPP_REF (required). Raw JSON lines in
# $OUT_JSONL when set. BW: a bandwidth probe run just before and just after nook's run
# (e.g. "bench_bw 2 1024 5", bench/bench_bw.c: it prints "... N GB/s ..."), whose two
# readings the round's line gives for the share of the bandwidth bound: this host's
# bandwidth moves 2x within minutes, so a reading taken elsewhere in the window says
# little about the run. Needs node.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NOOK=${NOOK:-$ROOT/build/nook}
THREADS=${THREADS:-2}; DEPTH=${DEPTH:-16384}; TG=${TG:-32}; FILL_BATCH=${FILL_BATCH:-2048}
REPS=${REPS:-1}; INNER=${INNER:-2}; KV=${KV:-f16}
export LLAMACPP_REF=${LLAMACPP_REF:?set LLAMACPP_REF to the node-llama-cpp install (../shared/tools/ref/README.md)}
[ $# -ge 1 ] || { echo "usage: $0 MODEL.gguf..." >&2; exit 2; }
[ -x "$NOOK" ] || { echo "nook binary not found at $NOOK (set NOOK=)" >&2; exit 2; }

source "$ROOT/bench/lib.sh"   # field, stats, ratio

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "depth $DEPTH, fill in passes of $FILL_BATCH, $THREADS threads, nook cache $KV"
printf '%-28s %-12s %-26s %-26s %s\n' model test "nook t/s (min med max)" "llama.cpp t/s (min med max)" "ratio (min med max)"
for model in "$@"; do
    name=$(basename "$model")
    np=(); nt=(); lp=(); lt=(); rp=(); rt=()
    for r in $(seq 1 "$REPS"); do
        bw0=""; bw1=""
        [ -n "${BW:-}" ] && bw0=$($BW | grep -o '[0-9.]* GB/s' | head -n1)
        "$NOOK" bench "$model" -p 0 -n "$TG" -d "$DEPTH" --fill-batch "$FILL_BATCH" -t "$THREADS" -r "$INNER" \
            --kv-cache-type "$KV" --json > "$tmp/n.json"
        [ -n "${BW:-}" ] && bw1=$($BW | grep -o '[0-9.]* GB/s' | head -n1)
        node "$ROOT/bench/llamacpp_ext.mjs" depth -m "$model" --threads "$THREADS" --depth "$DEPTH" --tg "$TG" \
            --batch "$FILL_BATCH" --reps "$INNER" --json > "$tmp/l.json" 2> "$tmp/l.err" || { cat "$tmp/l.err" >&2; exit 1; }
        if [ -n "${OUT_JSONL:-}" ]; then cat "$tmp/n.json" >> "$OUT_JSONL"; tail -n1 "$tmp/l.json" >> "$OUT_JSONL"; fi
        a=$(field "$tmp/n.json" fill_tps); b=$(field "$tmp/n.json" tg_tps)
        c=$(field "$tmp/l.json" fill_tps); d=$(field "$tmp/l.json" tg_tps)
        np+=("$a"); nt+=("$b"); lp+=("$c"); lt+=("$d")
        rp+=("$(ratio "$a" "$c")")
        rt+=("$(ratio "$b" "$d")")
        echo "$name round $r/$REPS: nook pp$DEPTH $a tg$TG@d$DEPTH $b | llama.cpp pp$DEPTH $c tg$TG@d$DEPTH $d (load $(uptime | sed 's/.*average: //'))${BW:+; bandwidth before / after nook: $bw0 / $bw1}" >&2
    done
    printf '%-28s %-12s %-26s %-26s %s\n' "$name" "pp$DEPTH" "$(stats "${np[@]}")" "$(stats "${lp[@]}")" "$(stats "${rp[@]}")"
    printf '%-28s %-12s %-26s %-26s %s\n' "$name" "tg$TG@d$DEPTH" "$(stats "${nt[@]}")" "$(stats "${lt[@]}")" "$(stats "${rt[@]}")"
done

#!/usr/bin/env bash
# batched-vs-llamacpp.sh MODEL.gguf: aggregate decode throughput of P sequences
# decoded together, nook and llama.cpp side by side on the same file (issue 9).
#
# For each round (REPS, default 2) and each level P of LEVELS (default 1,2,4,8), runs
# `nook bench --parallel P` and then `bench/llamacpp_ext.mjs batched --parallel P`
# (node-llama-cpp 3.21.1: one context with P sequences, whose evaluations its batch
# dispatcher decodes in one llama_decode per step) with the same threads and tg, so
# both see the same machine load at each level. Each side starts every sequence from
# BOS and generates TG greedy tokens per sequence; tg_tps is the summed rate (P x TG
# tokens over the wall time), the median of INNER repetitions after a warm-up.
# Prints per level each runtime's min/median/max over rounds, the speed-up over P=1
# (medians), and the per-round ratio nook / llama.cpp (min/median/max). The load
# average (`uptime`) of each round goes to stderr.
#
# Environment: NOOK (default build/nook), THREADS (2), TG (64), LEVELS (1,2,4,8),
# REPS (2), INNER (2), LLAMACPP_REF (required: the node-llama-cpp install), OUT_JSONL
# (raw JSON lines appended there when set). Needs node.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NOOK=${NOOK:-$ROOT/build/nook}
THREADS=${THREADS:-2}
TG=${TG:-64}
LEVELS=${LEVELS:-1,2,4,8}
REPS=${REPS:-2}
INNER=${INNER:-2}
export LLAMACPP_REF=${LLAMACPP_REF:?set LLAMACPP_REF to the node-llama-cpp install (../shared/tools/ref/README.md)}
[ $# -eq 1 ] || { echo "usage: $0 MODEL.gguf" >&2; exit 2; }
[ -x "$NOOK" ] || { echo "nook binary not found at $NOOK (set NOOK=)" >&2; exit 2; }
model=$1

source "$ROOT/bench/lib.sh"   # field, stats, ratio
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IFS=, read -r -a levels <<< "$LEVELS"
declare -A N L R
for r in $(seq 1 "$REPS"); do
    for p in "${levels[@]}"; do
        "$NOOK" bench "$model" --parallel "$p" -n "$TG" -t "$THREADS" -r "$INNER" --json > "$tmp/n.json"
        node "$ROOT/bench/llamacpp_ext.mjs" batched -m "$model" --threads "$THREADS" --parallel "$p" --tg "$TG" \
            --reps "$INNER" --json > "$tmp/l.json" 2> "$tmp/l.err" || { cat "$tmp/l.err" >&2; exit 1; }
        if [ -n "${OUT_JSONL:-}" ]; then cat "$tmp/n.json" >> "$OUT_JSONL"; tail -n1 "$tmp/l.json" >> "$OUT_JSONL"; fi
        a=$(field "$tmp/n.json" tg_tps); b=$(field "$tmp/l.json" tg_tps)
        N[$p]="${N[$p]:-} $a"; L[$p]="${L[$p]:-} $b"
        R[$p]="${R[$p]:-} $(ratio "$a" "$b")"
        echo "round $r/$REPS parallel $p: nook $a t/s, llama.cpp $b t/s (load $(uptime | sed 's/.*average: //'))" >&2
    done
done
p1=${levels[0]}
n1=$(med ${N[$p1]}); l1=$(med ${L[$p1]})
echo "$(basename "$model"), $THREADS threads, tg$TG, $REPS rounds; t/s summed over the sequences (min med max)"
printf '%-4s %-26s %-10s %-26s %-10s %s\n' P "nook t/s" "nook xP$p1" "llama.cpp t/s" "llama xP$p1" "nook/llama.cpp (min med max)"
for p in "${levels[@]}"; do
    printf '%-4s %-26s %-10s %-26s %-10s %s\n' "$p" "$(stats ${N[$p]})" \
        "$(awk -v x="$(med ${N[$p]})" -v y="$n1" 'BEGIN{printf "%.2f", x/y}')" "$(stats ${L[$p]})" \
        "$(awk -v x="$(med ${L[$p]})" -v y="$l1" 'BEGIN{printf "%.2f", x/y}')" "$(stats ${R[$p]})"
done

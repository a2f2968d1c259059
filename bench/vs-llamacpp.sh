#!/usr/bin/env bash
# vs-llamacpp.sh MODEL...: nook and llama.cpp side by side on the same files.
#
# For each model, REPS rounds (default 3) alternate `nook bench` and the reference
# tool's `bench` (llama.cpp through node-llama-cpp) with the same settings, so both see
# the same machine load; each round's pp and tg medians are divided (nook / llama.cpp)
# and the ratios' min, median and max are printed, with both runtimes' figures.
#
# Environment: NOOK (the nook binary, default build/nook), THREADS (2), PP (512),
# TG (64), DEPTH (tokens already in the cache, llama-bench's -d; 0), REPS (rounds, 3), INNER (repetitions inside each bench call, 3),
# REF_BATCH (the reference tool's n_batch: PP, or 512 when PP is 0, so a DEPTH fill is batched),
# LLAMACPP_REF (required: the node-llama-cpp install, see ../shared/tools/ref/README.md), REF_TOOL (default ../shared/tools/ref/llamacpp.mjs
# relative to the repository root). Output: a table on stdout; raw JSON lines in
# $OUT_JSONL when set. Needs node (it parses the JSON).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NOOK=${NOOK:-$ROOT/build/nook}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-64}
DEPTH=${DEPTH:-0}
REPS=${REPS:-3}
INNER=${INNER:-3}
# the reference tool's n_batch (= n_ubatch): the prompt in one batch as before; with no
# prompt (-p 0) it would default to 1 and fill a DEPTH-token cache one token at a time
REF_BATCH=${REF_BATCH:-$(( PP > 0 ? PP : 512 ))}
export LLAMACPP_REF=${LLAMACPP_REF:?set LLAMACPP_REF to the node-llama-cpp install (../shared/tools/ref/README.md)}
REF_TOOL=${REF_TOOL:-$ROOT/../shared/tools/ref/llamacpp.mjs}
[ $# -ge 1 ] || { echo "usage: $0 MODEL.gguf..." >&2; exit 2; }
[ -x "$NOOK" ] || { echo "nook binary not found at $NOOK (set NOOK=)" >&2; exit 2; }

source "$ROOT/bench/lib.sh"   # field, stats, ratio

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$DEPTH" -gt 0 ]; then echo "depth $DEPTH: every figure measured with $DEPTH tokens already in the cache"; fi
printf '%-28s %-4s %-26s %-26s %s\n' model test "nook t/s (min med max)" "llama.cpp t/s (min med max)" "ratio (min med max)"
for model in "$@"; do
    name=$(basename "$model")
    np=(); nt=(); lp=(); lt=(); rp=(); rt=()
    for r in $(seq 1 "$REPS"); do
        "$NOOK" bench "$model" -p "$PP" -n "$TG" -d "$DEPTH" -t "$THREADS" -r "$INNER" --json > "$tmp/n.json"
        node "$REF_TOOL" bench -m "$model" --threads "$THREADS" --pp "$PP" --tg "$TG" --depth "$DEPTH" --batch "$REF_BATCH" --reps "$INNER" --json \
            > "$tmp/l.json" 2> "$tmp/l.err" || { cat "$tmp/l.err" >&2; exit 1; }
        if [ -n "${OUT_JSONL:-}" ]; then cat "$tmp/n.json" >> "$OUT_JSONL"; tail -n1 "$tmp/l.json" >> "$OUT_JSONL"; fi
        a=$(field "$tmp/n.json" pp_tps); b=$(field "$tmp/n.json" tg_tps)
        c=$(field "$tmp/l.json" pp_tps_median); d=$(field "$tmp/l.json" tg_tps_median)
        np+=("$a"); nt+=("$b"); lp+=("$c"); lt+=("$d")
        rp+=("$(ratio "$a" "$c")")
        rt+=("$(ratio "$b" "$d")")
        echo "$name round $r/$REPS: nook pp$PP $a tg$TG $b | llama.cpp pp$PP $c tg$TG $d (load $(uptime | sed 's/.*average: //'))" >&2
    done
    printf '%-28s %-4s %-26s %-26s %s\n' "$name" "pp$PP" "$(stats "${np[@]}")" "$(stats "${lp[@]}")" "$(stats "${rp[@]}")"
    printf '%-28s %-4s %-26s %-26s %s\n' "$name" "tg$TG" "$(stats "${nt[@]}")" "$(stats "${lt[@]}")" "$(stats "${rt[@]}")"
done

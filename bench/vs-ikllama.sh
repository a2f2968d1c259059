#!/usr/bin/env bash
# vs-ikllama.sh MODEL...: nook and ik_llama.cpp side by side on the same files, at depth.
#
# ik_llama.cpp is built from source here (it is not packaged): fetch its repository and
#   cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
#   cmake --build build -j2 --target llama-bench
# then point IK_BENCH at build/bin/llama-bench.
#
# Two figures per model, as issue 17 states them:
#   ppPP       prompt processing of PP tokens into an empty cache
#              (nook bench -p PP -n 0; ik: llama-bench -p PP -n 0)
#   tgTG@dD    TG tokens decoded one at a time with DEPTH tokens already in the cache
#              (nook bench -p 0 -n TG -d DEPTH; ik: llama-bench -gp DEPTH,TG, which times
#              only the generation, as nook's -d does)
# REPS rounds (default 2) alternate the two runtimes so both see the same load; each
# round's ratio nook/ik is printed with min, median and max over rounds.
#
# Environment: IK_BENCH (required), NOOK (default build/nook), THREADS (2), PP (4096),
# TG (64), DEPTH (4096), REPS (2), INNER (repetitions inside each call, 1),
# KV (cache type for both: f16 or q8_0; default f16). Needs node to read JSON.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NOOK=${NOOK:-$ROOT/build/nook}
IK_BENCH=${IK_BENCH:?set IK_BENCH to ik_llama.cpp's llama-bench (see this script's header)}
THREADS=${THREADS:-2}; PP=${PP:-4096}; TG=${TG:-64}; DEPTH=${DEPTH:-4096}
REPS=${REPS:-2}; INNER=${INNER:-1}; KV=${KV:-f16}
[ $# -ge 1 ] || { echo "usage: $0 MODEL.gguf..." >&2; exit 2; }
[ -x "$NOOK" ] || { echo "nook binary not found at $NOOK (set NOOK=)" >&2; exit 2; }
[ -x "$IK_BENCH" ] || { echo "IK_BENCH=$IK_BENCH is not executable" >&2; exit 2; }

source "$ROOT/bench/lib.sh"   # field, stats, ratio
# ik_ts FILE: avg_ts of llama-bench's one JSON test
ik_ts() { node -e 'const a=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(a.length?a[a.length-1].avg_ts:"nan")' "$1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "threads $THREADS, cache $KV; pp$PP from an empty cache, tg$TG with $DEPTH tokens in the cache"
printf '%-28s %-12s %-26s %-26s %s\n' model test "nook t/s (min med max)" "ik_llama.cpp (min med max)" "ratio (min med max)"
for model in "$@"; do
    name=$(basename "$model")
    np=(); nt=(); ip=(); it=(); rp=(); rt=()
    for r in $(seq 1 "$REPS"); do
        "$NOOK" bench "$model" -p "$PP" -n 0 -t "$THREADS" -r "$INNER" --kv-cache-type "$KV" --json > "$tmp/np.json"
        "$IK_BENCH" -m "$model" -p "$PP" -n 0 -t "$THREADS" -r "$INNER" -ctk "$KV" -ctv "$KV" -o json > "$tmp/ip.json" 2> "$tmp/ik.err" \
            || { cat "$tmp/ik.err" >&2; exit 1; }
        "$NOOK" bench "$model" -p 0 -n "$TG" -d "$DEPTH" -t "$THREADS" -r "$INNER" --kv-cache-type "$KV" --json > "$tmp/nt.json"
        "$IK_BENCH" -m "$model" -p 0 -n 0 -gp "$DEPTH,$TG" -t "$THREADS" -r "$INNER" -ctk "$KV" -ctv "$KV" -o json > "$tmp/it.json" 2> "$tmp/ik.err" \
            || { cat "$tmp/ik.err" >&2; exit 1; }
        a=$(field "$tmp/np.json" pp_tps); b=$(field "$tmp/nt.json" tg_tps)
        c=$(ik_ts "$tmp/ip.json"); d=$(ik_ts "$tmp/it.json")
        np+=("$a"); nt+=("$b"); ip+=("$c"); it+=("$d"); rp+=("$(ratio "$a" "$c")"); rt+=("$(ratio "$b" "$d")")
        echo "$name round $r/$REPS: nook pp$PP $a tg$TG@d$DEPTH $b | ik pp$PP $c tg$TG@d$DEPTH $d (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    done
    printf '%-28s %-12s %-26s %-26s %s\n' "$name" "pp$PP" "$(stats "${np[@]}")" "$(stats "${ip[@]}")" "$(stats "${rp[@]}")"
    printf '%-28s %-12s %-26s %-26s %s\n' "$name" "tg$TG@d$DEPTH" "$(stats "${nt[@]}")" "$(stats "${it[@]}")" "$(stats "${rt[@]}")"
done

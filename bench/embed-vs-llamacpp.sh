#!/usr/bin/env bash
# embed-vs-llamacpp.sh MODEL.gguf [TEXTS]: embedding throughput (texts per second),
# nook and llama.cpp side by side on the same file and texts (issue 9).
#
# Each of REPS rounds (default 3) runs `engine_bench embed` (nook_session_embed, the
# call `nook embed` makes: up to 16 texts per forward pass) and then
# `bench/llamacpp_ext.mjs embed` (node-llama-cpp 3.21.1's createEmbeddingContext,
# one getEmbeddingFor per text) on the lines of TEXTS (default
# bench/data/embed_texts.txt, 64 sentences), each the best of INNER calls after a
# warm-up, model load excluded. Prints each runtime's texts/s (min med max over
# rounds) and the per-round ratio nook / llama.cpp; the load average of each round
# goes to stderr.
#
# Environment: ENGINE_BENCH (default build/engine_bench), THREADS (2), REPS (3),
# INNER (3), LLAMACPP_REF (required). Needs node.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EB=${ENGINE_BENCH:-$ROOT/build/engine_bench}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
INNER=${INNER:-3}
export LLAMACPP_REF=${LLAMACPP_REF:?set LLAMACPP_REF to the node-llama-cpp install (../shared/tools/ref/README.md)}
[ $# -ge 1 ] || { echo "usage: $0 MODEL.gguf [TEXTS]" >&2; exit 2; }
[ -x "$EB" ] || { echo "engine_bench not found at $EB (set ENGINE_BENCH=)" >&2; exit 2; }
model=$1
texts=${2:-$ROOT/bench/data/embed_texts.txt}

source "$ROOT/bench/lib.sh"   # field, stats, ratio

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=(); l=(); r=()
for i in $(seq 1 "$REPS"); do
    "$EB" embed "$model" --texts "$texts" --threads "$THREADS" --reps "$INNER" --json > "$tmp/n.json"
    node "$ROOT/bench/llamacpp_ext.mjs" embed -m "$model" --texts "$texts" --threads "$THREADS" --reps "$INNER" \
        > "$tmp/l.json" 2> "$tmp/l.err" || { cat "$tmp/l.err" >&2; exit 1; }
    a=$(field "$tmp/n.json" texts_per_s); b=$(field "$tmp/l.json" texts_per_s)
    n+=("$a"); l+=("$b"); r+=("$(ratio "$a" "$b")")
    echo "round $i/$REPS: nook $a texts/s, llama.cpp $b texts/s (load $(uptime | sed 's/.*average: //'))" >&2
done
echo "$(basename "$model"), $(grep -c . "$texts") texts, $THREADS threads, $REPS rounds (min med max)"
printf '%-26s %-26s %s\n' "nook texts/s" "llama.cpp texts/s" "nook/llama.cpp"
printf '%-26s %-26s %s\n' "$(stats "${n[@]}")" "$(stats "${l[@]}")" "$(stats "${r[@]}")"

#!/usr/bin/env bash
# grammar_speed.sh: what a JSON schema costs in generation speed, nook vs llama.cpp,
# on the same model, machine and run.
#
#   bench/grammar_speed.sh [MODEL.gguf] [SCHEMA.json] [REPS]
#
# Defaults: bench/data/grammar_schema.json, 3.
# Per rep, interleaved: nook unconstrained, nook with --schema (eval rate from
# --verbose), then llama.cpp (bench/grammar_speed.mjs, node-llama-cpp at
# $LLAMACPP_REF) unconstrained, with the same GBNF nook compiles the schema to, and
# with the schema through node-llama-cpp's own converter. 2 threads, Ollama's
# sampling defaults (temperature 0.8, top-k 40, top-p 0.9), the same seed and
# prompt (rendered by nook's chat template, thinking off). Prints medians and the
# ratio constrained/unconstrained for each engine.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:?usage: $0 MODEL.gguf (e.g. from build/mkmodel qwen3-0.6b Q4_K_M OUT.gguf)}"
SCHEMA="${2:-bench/data/grammar_schema.json}"
REPS="${3:-3}"
N=96
NOOK=build/nook
PROMPT='Describe a cat as a JSON object with a name, a color, an age in years, three tags and whether it likes water.'
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
build/grammar_bench --print --schema "$SCHEMA" >"$TMP/schema.gbnf"
"$NOOK" run "$MODEL" --no-think --show-prompt "$PROMPT" >"$TMP/prompt.txt"

rate() { sed -n 's/^eval rate: *\([0-9.]*\) tokens\/s/\1/p' "$1"; }
: >"$TMP/nook_plain"; : >"$TMP/nook_schema"
for r in $(seq 1 "$REPS"); do
    "$NOOK" run "$MODEL" -t 2 -n $N --seed $r --no-think --verbose "$PROMPT" >/dev/null 2>"$TMP/e1"
    rate "$TMP/e1" >>"$TMP/nook_plain"
    "$NOOK" run "$MODEL" -t 2 -n $N --seed $r --no-think --verbose --schema "$SCHEMA" "$PROMPT" >"$TMP/out" 2>"$TMP/e2"
    rate "$TMP/e2" >>"$TMP/nook_schema"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/out" || echo "nook output is not JSON: $(cat "$TMP/out")"
    node bench/grammar_speed.mjs -m "$MODEL" --prompt "$(cat "$TMP/prompt.txt")" --gbnf "$TMP/schema.gbnf" \
        --schema "$SCHEMA" --threads 2 -n $N --seed $r --reps 1 >>"$TMP/llama.jsonl"
done
python3 - "$TMP" <<'PY'
import json, statistics, sys, os
t = sys.argv[1]
rd = lambda f: [float(x) for x in open(os.path.join(t, f)).read().split()]
np, ns = statistics.median(rd("nook_plain")), statistics.median(rd("nook_schema"))
runs = [json.loads(l) for l in open(os.path.join(t, "llama.jsonl"))]
med = lambda m: statistics.median([r["tps"] for r in runs if r["mode"] == m])
lp, lg, ls = med("plain"), med("gbnf"), med("schema")
print("nook      unconstrained %6.2f tok/s   schema %6.2f tok/s   ratio %.3f   (runs: %s / %s)" % (np, ns, ns / np, rd("nook_plain"), rd("nook_schema")))
print("llama.cpp unconstrained %6.2f tok/s   same GBNF %6.2f tok/s ratio %.3f   node-llama-cpp schema %6.2f tok/s ratio %.3f" % (lp, lg, lg / lp, ls, ls / lp))
for r in runs: print("  llama.cpp", r["mode"], r["tokens"], "tokens", r["tps"], "tok/s", repr(r["text"][:60]))
PY

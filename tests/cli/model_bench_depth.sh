#!/usr/bin/env bash
# model_bench_depth.sh: `nook bench -d LIST` (llama-bench's -d): one JSON object per
# depth with a "depth" key, the context sized to hold depth + pp + tg, bad lists refused.
source "$(dirname "$0")/lib.bash"
need_model stories260K.gguf

run_cmd "$NOOK" bench "$MODELS/stories260K.gguf" -p 32 -n 8 -r 1 -t 1 -d 0,300 --json
check_eq "exit status" "$rc" 0
check_eq "one object per depth" "$(printf '%s\n' "$out" | wc -l)" 2
depths=$(printf '%s\n' "$out" | python3 -c 'import sys,json; print(",".join(str(json.loads(l)["depth"]) for l in sys.stdin))')
check_eq "depth keys" "$depths" "0,300"
pos=$(printf '%s\n' "$out" | python3 -c 'import sys,json; print(all(json.loads(l)["pp_tps"] > 0 and json.loads(l)["tg_tps"] > 0 for l in sys.stdin))')
check_eq "positive rates" "$pos" "True"
# text output names the depth
run_cmd "$NOOK" bench "$MODELS/stories260K.gguf" -p 16 -n 4 -r 1 -t 1 -d 100
check_contains "text output" "$out" "depth 100:"
# a depth past the model's usable context is an error from the session, not a crash
run_cmd "$NOOK" bench "$MODELS/stories260K.gguf" -p 16 -n 4 -r 1 -d 0,x
check_eq "bad list: usage error" "$rc" 2
check_contains "bad list: message" "$err" "-d wants a list"
finish

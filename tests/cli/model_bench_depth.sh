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
# the fill is timed: fill_tps > 0 with its batch at a depth, 0 at depth 0
fills=$(printf '%s\n' "$out" | python3 -c 'import sys,json; print(",".join("%d:%s" % (json.loads(l)["fill_batch"], json.loads(l)["fill_tps"] > 0) for l in sys.stdin))')
check_eq "fill figures" "$fills" "0:False,300:True"
run_cmd "$NOOK" bench "$MODELS/stories260K.gguf" -p 0 -n 4 -r 1 -t 1 -d 200 --fill-batch 64 --json
fb=$(printf '%s\n' "$out" | python3 -c 'import sys,json; o=json.loads(sys.stdin.read()); print(o["fill_batch"], o["fill_tps"] > 0, o["pp_tps"])')
check_eq "fill in passes of --fill-batch" "$fb" "64 True 0.0"
# text output names the depth
run_cmd "$NOOK" bench "$MODELS/stories260K.gguf" -p 16 -n 4 -r 1 -t 1 -d 100
check_contains "text output" "$out" "depth 100:"
# a depth past the model's usable context is an error from the session, not a crash
run_cmd "$NOOK" bench "$MODELS/stories260K.gguf" -p 16 -n 4 -r 1 -d 0,x
check_eq "bad list: usage error" "$rc" 2
check_contains "bad list: message" "$err" "-d wants a list"
finish

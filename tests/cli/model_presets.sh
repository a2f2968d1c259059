#!/usr/bin/env bash
# model_presets.sh: the built-in writing tasks, mechanically (stories260K is far too
# small to summarize; their quality needs real models): `nook summarize/tighten/name`
# refuse to start without a general model the first time, then create their preset in
# the store (a Modelfile: SYSTEM + PARAMETERs) and run it on TEXT or stdin; the preset
# is editable (show --modelfile, create -f) and the edit is what runs next; `nook split`
# trains nook/split from the built-in examples on first use and labels TEXT or stdin;
# the server runs the presets by name (/api/chat nook/summarize, /api/classify nook/split).
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
M="$MODELS/stories260K.gguf"
export NOOK_HOME="$TMP/home"
unset NOOK_MODELS NOOK_WRITER_MODEL NOOK_ROUTE

expect_fail "summarize without a model" "$NOOK" summarize "Once upon a time"
check_contains "says how" "$err" "--model MODEL"
run_cmd "$NOOK" summarize --model "$M" "Once upon a time there was a cat."
check_eq "summarize exit" "$rc" 0
[ -n "$out" ] && ok || bad "summarize printed nothing"
check_contains "summarize created the preset" "$err" "created the preset nook/summarize"
out=$(echo "The dog ran home." | "$NOOK" tighten --model "$M" 2>/dev/null)
check_eq "tighten from stdin exit" "$?" 0
[ -n "$out" ] && ok || bad "tighten printed nothing"
NOOK_WRITER_MODEL="$M" run_cmd "$NOOK" name "def f(x): return x * 2"
check_eq "name exit" "$rc" 0
run_cmd "$NOOK" list
for p in summarize tighten name; do check_contains "list has nook/$p" "$out" "nook/$p:latest"; done

# editable: the stored Modelfile, changed and created again, is what runs
run_cmd "$NOOK" show nook/summarize --modelfile
check_contains "modelfile system" "$out" "You summarize the user's text."
check_contains "modelfile params" "$out" "num_predict"
printf 'FROM %s\nSYSTEM """Summarize like a pirate."""\nPARAMETER num_predict 8\n' "$M" > "$TMP/Modelfile"
run_cmd "$NOOK" create nook/summarize -f "$TMP/Modelfile"
check_eq "create edited exit" "$rc" 0
run_cmd "$NOOK" show nook/summarize --system
check_eq "edited system" "$out" "Summarize like a pirate."
run_cmd "$NOOK" summarize "Once upon a time"   # now without --model: the stored preset
check_eq "edited preset runs" "$rc" 0

# split: a specialist from the built-in examples
run_cmd "$NOOK" split "Fix the flaky test and then book the flights for the team."
check_eq "split exit" "$rc" 0
check_eq "split label" "$out" "two"
check_contains "split trained" "$err" "trained nook/split from 48 built-in examples"
out=$(echo "The build is green." | "$NOOK" split 2>/dev/null)
check_eq "split from stdin" "$out" "one"
run_cmd "$NOOK" show nook/split
check_contains "split is a specialist" "$out" "Specialist"

# the server runs them by name
serve_start NOOK_HOME="$NOOK_HOME"
r=$(curl -s "$BASE/api/chat" -d '{"model":"nook/summarize","stream":false,"messages":[{"role":"user","content":"Once upon a time"}]}')
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["done"] and r["message"]["role"]=="assistant" and r["eval_count"]>0, r' "$r" \
    && ok || bad "server summarize [$r]"
r=$(curl -s "$BASE/api/classify" -d '{"model":"nook/split","input":["The build is green.","Fix the flaky test and then book the flights for the team."]}')
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert [x["label"] for x in r["results"]]==["one","two"], r' "$r" \
    && ok || bad "server split [$r]"
serve_stop
finish

#!/usr/bin/env bash
# model_specialist_from.sh: `nook specialize --from MODEL`: a model's pooled embedding as
# features (alone and with the text features), stored in the file with the base model,
# and used again by `nook classify` and `--eval`.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
M="$MODELS/stories260K.gguf"
DATA=tests/data/specialist/split.jsonl

run_cmd "$NOOK" specialize split --data "$DATA" --output "$TMP/f.gguf" --from "$M" --json --c 10
check_eq "from exit" "$rc" 0
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["embed_dim"]==64 and r["columns"]>64, r' "$out" \
    && ok || bad "from report: $out"
run_cmd "$NOOK" specialize split --data "$DATA" --output "$TMP/e.gguf" --from "$M" --no-text --json --c 10
check_eq "embedding-only exit" "$rc" 0
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["embed_dim"]==64 and r["columns"]==64, r' "$out" \
    && ok || bad "embedding-only report: $out"
for f in f e; do
    printf '%s\n' '{"text":"The build is green."}' '{"text":"Fix it and then call Bob."}' \
        | "$NOOK" classify "$TMP/$f.gguf" --jsonl > "$TMP/o.jsonl"
    check_eq "classify $f exit" "$?" 0
    python3 - "$TMP/o.jsonl" <<'PY' && ok || bad "classify $f output"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all(r["label"] in ("one", "two") and abs(sum(r["probabilities"].values()) - 1) < 1e-9 for r in rows), rows
PY
done
run_cmd "$NOOK" specialize "$TMP/f.gguf" --eval "$DATA"
check_eq "eval exit" "$rc" 0
check_contains "eval speed with embeddings" "$out" "with the embeddings of"
run_cmd "$NOOK" specialize x --data "$DATA" --output "$TMP/x.gguf" --no-text
check_eq "no-text without from" "$rc" 2
run_cmd "$NOOK" specialize x --data "$DATA" --output "$TMP/x.gguf" --from "$TMP/missing.gguf"
check_eq "missing model" "$rc" 1

# the zero-shot comparison (the learning curve's): every text classified, deterministic
run_cmd "$NOOK" specialize zs --zero-shot "$M" --eval "$DATA" --json
check_eq "zero-shot exit" "$rc" 0
zs1="$out"
python3 -c 'import json,sys; z=json.loads(sys.argv[1])["zero_shot"]; c=z["confusion"]; assert z["n"]==48 and sum(sum(r.values()) for r in c.values())==48 and set(c)=={"one","two"} and 0<=z["macro_f1"]<=1, z' "$out" \
    && ok || bad "zero-shot report [$out]"
run_cmd "$NOOK" specialize zs --zero-shot "$M" --eval "$DATA" --json
python3 -c 'import json,sys; a,b=(json.loads(x)["zero_shot"] for x in sys.argv[1:]); assert a["confusion"]==b["confusion"]' "$zs1" "$out" \
    && ok || bad "zero-shot not deterministic"
run_cmd "$NOOK" specialize zs --zero-shot "$M" --data "$DATA"
check_eq "zero-shot needs --eval" "$rc" 2

# abstaining with a local general model (--local-model): the case goes to it, prompted
# with the labels; nothing is written to the egress ledger
NOOK_HOME="$TMP/lhome" run_cmd "$NOOK" specialize unsure --data "$DATA" --threshold 0.99
NOOK_HOME="$TMP/lhome" run_cmd "$NOOK" classify unsure --local-model "$M" --json "The build is green."
check_eq "local model exit" "$rc" 0
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); e=r["escalation"]; assert r["abstain"] and e["escalated"] and e["general"]=="local" and e["label"] in ("one","two") and e["route"]["target"]=="local", r' "$out" \
    && ok || bad "local model escalation [$out]"
[ ! -s "$TMP/lhome/egress.jsonl" ] && ok || bad "a local escalation wrote to the egress ledger"

# a stored specialist with a base model through the server: the embeddings come from the
# server's model residency, and the probabilities equal the CLI's
. "$(dirname "$0")/serve_lib.bash"
export NOOK_HOME="$TMP/home"
unset NOOK_MODELS
run_cmd "$NOOK" specialize sf --data "$DATA" --from "$M"
check_eq "stored --from exit" "$rc" 0
printf '{"text":"The build is green."}\n{"text":"Fix the flaky test and then book the flights."}\n' > "$TMP/two.jsonl"
cli=$("$NOOK" classify sf --jsonl < "$TMP/two.jsonl")
serve_start NOOK_HOME="$NOOK_HOME"
srv=$(curl -s "$BASE/api/classify" -d '{"model":"sf","input":["The build is green.","Fix the flaky test and then book the flights."]}')
serve_stop
python3 - "$cli" "$srv" <<'PY' && ok || bad "server and CLI differ: [$cli] [$srv]"
import json, sys
cli = [json.loads(l) for l in sys.argv[1].splitlines()]
srv = json.loads(sys.argv[2])["results"]
assert len(cli) == len(srv) == 2
for a, b in zip(cli, srv):
    assert a["label"] == b["label"] and all(abs(a["probabilities"][k] - b["probabilities"][k]) < 1e-6 for k in a["probabilities"]), (a, b)
PY
finish

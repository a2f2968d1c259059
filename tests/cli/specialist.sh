#!/usr/bin/env bash
# specialist.sh: `nook specialize` and `nook classify` end to end without a model:
# training report, the --jsonl contract (order, fields, errors per line), the abstain
# path, determinism for a seed, evaluation, and malformed training files.
. "$(dirname "$0")/lib.bash"
DATA=tests/data/specialist/split.jsonl
SPEC="$TMP/split.gguf"

run_cmd "$NOOK" specialize split --data "$DATA" --output "$SPEC"
check_eq "specialize exit" "$rc" 0
check_contains "report: cv" "$out" "out-of-fold macro-F1"
check_contains "report: confusion" "$out" "confusion (rows: true label"
check_contains "report: calibration" "$out" "expected calibration error"
check_contains "report: wrote" "$out" "wrote $SPEC"
[ -s "$SPEC" ] && ok || bad "no specialist file"

# determinism: the same seed writes the same bytes; another seed may differ but works
run_cmd "$NOOK" specialize split --data "$DATA" --output "$TMP/again.gguf"
cmp -s "$SPEC" "$TMP/again.gguf" && ok || bad "two trainings with one seed differ"

# one text
run_cmd "$NOOK" classify "$SPEC" "The build is green."
check_eq "classify exit" "$rc" 0
case "$out" in one|two) ok ;; *) bad "classify printed [$out]" ;; esac
label1="$out"
out2=$(echo "The build is green." | "$NOOK" classify "$SPEC")
check_eq "classify from stdin" "$out2" "$label1"

# --jsonl: one object per input line, in order; a bad line gets an error object
printf '%s\n' '{"text": "The build is green."}' '{"text": 5}' '' \
    '{"text": "Fix the test and then book the flights for the team."}' 'not json' \
    '{"text": "The cache is cleared nightly.", "id": 7}' > "$TMP/in.jsonl"
"$NOOK" classify "$SPEC" --jsonl < "$TMP/in.jsonl" > "$TMP/out.jsonl" 2> "$TMP/err"
check_eq "jsonl exit with bad lines" "$?" 1
check_contains "jsonl stderr" "$(cat "$TMP/err")" "2 of 6 lines could not be classified"
python3 - "$TMP/out.jsonl" "$label1" <<'PY' && ok || bad "jsonl contract"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 5, rows
assert rows[1] == {"error": rows[1]["error"]} and rows[1]["error"].startswith("line 2:"), rows[1]
assert rows[3]["error"].startswith("line 5: invalid JSON"), rows[3]
for r in (rows[0], rows[2], rows[4]):
    assert list(r) == ["label", "confidence", "probabilities", "abstain"], r
    assert set(r["probabilities"]) == {"one", "two"}, r
    assert abs(sum(r["probabilities"].values()) - 1) < 1e-9, r
    assert r["confidence"] == max(r["probabilities"].values()), r
    assert r["label"] == max(r["probabilities"], key=r["probabilities"].get), r
    assert r["abstain"] == (r["confidence"] < 0.5), r
assert rows[0]["label"] == sys.argv[2], (rows[0], sys.argv[2])
PY

# abstain: above every confidence, each result abstains and still carries its label
printf '%s\n' '{"text": "The build is green."}' '{"text": "Ship it and also rename the repo."}' \
    | "$NOOK" classify "$SPEC" --jsonl --threshold 1 > "$TMP/abs.jsonl"
check_eq "abstain exit" "$?" 0
python3 - "$TMP/abs.jsonl" <<'PY' && ok || bad "abstain results"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all(r["abstain"] is True and r["label"] in ("one", "two") for r in rows), rows
PY
run_cmd "$NOOK" classify "$SPEC" --threshold 1 "The build is green."
check_eq "abstain plain exit" "$rc" 0
check_eq "abstain plain label" "$out" "$label1"
check_contains "abstain plain note" "$err" "abstained"

# evaluation of a stored file, and the JSON report
run_cmd "$NOOK" specialize "$SPEC" --eval "$DATA"
check_eq "eval exit" "$rc" 0
check_contains "eval report" "$out" "evaluation on $DATA (48 examples): macro-F1"
run_cmd "$NOOK" specialize split --data "$DATA" --output "$TMP/j.gguf" --eval "$DATA" --json --seed 7
check_eq "json report exit" "$rc" 0
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["examples"]==48 and r["labels"]==["one","two"] and 0<=r["cv_macro_f1"]<=1 and r["eval"]["n"]==48 and "ece_calibrated" in r' "$out" \
    && ok || bad "json report: $out"

# malformed training files: a clear error naming file and line
bad_case() {  # NAME CONTENT WANT
    printf '%b' "$2" > "$TMP/bad.jsonl"
    run_cmd "$NOOK" specialize x --data "$TMP/bad.jsonl" --output "$TMP/x.gguf"
    check_eq "$1 exit" "$rc" 1
    check_contains "$1 message" "$err" "$3"
}
bad_case "invalid JSON" '{"text":"a","label":"x"}\n{"text": "b", "label": }\n' "bad.jsonl:2: invalid JSON"
bad_case "missing text" '{"text":"a","label":"x"}\n{"label":"y"}\n' "bad.jsonl:2: missing \"text\""
bad_case "missing label" '{"text":"a","label":"x"}\n\n{"text":"b"}\n' "bad.jsonl:3: missing \"label\""
bad_case "empty text" '{"text":"a","label":"x"}\n{"text":"   ","label":"y"}\n' "bad.jsonl:2: \"text\" is empty"
bad_case "one label" '{"text":"a","label":"x"}\n{"text":"b","label":"x"}\n' "bad.jsonl: all 2 examples have the label 'x' (line 1); a classifier needs at least two labels"
bad_case "invalid UTF-8" '{"text":"a\xff","label":"x"}\n' "bad.jsonl:1: invalid JSON"
# a 1 GB line (a sparse file: no disk used; the reader stops after 1 MiB)
printf '{"text":"a","label":"x"}\n{"text":"' > "$TMP/huge.jsonl"
truncate -s 1G "$TMP/huge.jsonl"
run_cmd "$NOOK" specialize x --data "$TMP/huge.jsonl" --output "$TMP/x.gguf"
check_eq "1 GB line exit" "$rc" 1
check_contains "1 GB line message" "$err" "huge.jsonl:2: line is longer than 1048576 bytes"
rm -f "$TMP/huge.jsonl"
run_cmd "$NOOK" classify "$TMP/nope.gguf" "x"
check_eq "unknown specialist exit" "$rc" 1
check_contains "unknown specialist message" "$err" "not found"
run_cmd "$NOOK" classify "$DATA" "x"
check_eq "not a specialist exit" "$rc" 1
NOOK_HOME="$TMP/home" run_cmd "$NOOK" specialize x --data "$DATA"   # no --output: stored (specialist_store.sh)
check_eq "no output: stored exit" "$rc" 0

finish

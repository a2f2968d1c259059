#!/usr/bin/env bash
# model_schema.sh: structured output from random-weight models of real vocabularies
# (qwen3-tiny: Qwen3's 151,669-token tokenizer, llama3-tiny: Llama 3's; made by the
# mkmodel tool), whose unconstrained output is noise. For each schema in
# tests/data/grammar/schemas (bounded: every string has a maxLength or a pattern,
# every array a maxItems) and several seeds, `nook run --schema` must stop by itself
# and print JSON that an independent validator (Python's jsonschema, Draft 2020-12,
# with format checks; time and date-time also parsed by Python's datetime) accepts:
# 100%, no exceptions. Also: --format json gives parseable JSON, --grammar
# constrains to a GBNF file, and bad grammars/schemas fail with one clear line.
. "$(dirname "$0")/lib.bash"
MK="${NOOK_BUILD:-}/mkmodel"
if [ -z "${NOOK_BUILD:-}" ] || [ ! -x "$MK" ]; then echo "SKIP: mkmodel tool not built"; exit 77; fi
if ! python3 -c 'import jsonschema' 2>/dev/null; then echo "SKIP: python3-jsonschema not installed"; exit 77; fi
for preset in qwen3-tiny llama3-tiny; do
    if ! "$MK" "$preset" Q8_0 "$TMP/$preset.gguf" --models "$MODELS" >"$TMP/mk.log" 2>&1; then
        echo "SKIP: mkmodel $preset failed (fixture tokenizer missing?): $(tail -1 "$TMP/mk.log")"
        exit 77
    fi
done
SCHEMAS="$(cd "$(dirname "$0")/../data/grammar/schemas" && pwd)"

n=0
for preset in qwen3-tiny llama3-tiny; do
    for s in "$SCHEMAS"/*.json; do
        for seed in 1 2; do
            name="$preset-$(basename "$s" .json)-$seed"
            "$NOOK" run "$TMP/$preset.gguf" --schema "$s" --seed "$seed" -n 1500 -t 2 \
                "Reply with JSON." </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
            r=$?
            check_eq "$name exit ($(head -c 300 "$TMP/$name.err"))" "$r" 0
            echo "$s" >"$TMP/$name.schema"
            n=$((n + 1))
        done
    done
done

# The validator: one Python process over every output.
python3 - "$TMP" <<'PY' >"$TMP/validate.log" 2>&1
import datetime, glob, json, os, re, sys
import jsonschema
tmp = sys.argv[1]

TIME = re.compile(r'^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$')
def check_formats(schema, value):
    # python's checker skips time/date-time without optional packages: check them here
    if isinstance(schema, dict):
        if schema.get("format") == "time":
            assert TIME.match(value), "time %r" % value
        if schema.get("format") == "date-time":
            d, t = value.split("T")
            datetime.date.fromisoformat(d)
            assert TIME.match(t), "date-time %r" % value
        if schema.get("type") == "object" and isinstance(value, dict):
            for k, v in value.items():
                check_formats(schema.get("properties", {}).get(k), v)
bad = 0
outs = sorted(glob.glob(os.path.join(tmp, "*.out")))
for out in outs:
    name = os.path.basename(out)[:-4]
    schema = json.load(open(open(os.path.join(tmp, name + ".schema")).read().strip()))
    text = open(out, encoding="utf-8").read()
    try:
        value = json.loads(text)
        jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        check_formats(schema, value)
    except Exception as e:
        bad += 1
        print("INVALID %s: %s\n%s" % (name, str(e)[:300], text[:500]))
print("validated %d outputs, %d invalid" % (len(outs), bad))
sys.exit(1 if bad or not outs else 0)
PY
vr=$?
check_eq "jsonschema validation ($(tail -5 "$TMP/validate.log"))" "$vr" 0
check_contains "validator count" "$(tail -1 "$TMP/validate.log")" "validated $n outputs, 0 invalid"

# --format json: any JSON value, parseable
for seed in 1 2; do
    run_cmd "$NOOK" run "$TMP/qwen3-tiny.gguf" --format json --seed "$seed" -n 40 -t 2 "JSON please"
    check_eq "format json exit" "$rc" 0
done
# --grammar: a GBNF file
printf 'root ::= ("yes" | "no") ", " [0-9]{2} "."\n' >"$TMP/yn.gbnf"
run_cmd "$NOOK" run "$TMP/llama3-tiny.gguf" --grammar "$TMP/yn.gbnf" --seed 3 -t 2 "Answer"
check_eq "grammar exit" "$rc" 0
if [[ "$out" =~ ^(yes|no),\ [0-9]{2}\.$ ]]; then ok; else bad "grammar output [$out]"; fi

# refusals: one line, naming the problem
printf 'root ::= "a" |\nx ::= [b-\n' >"$TMP/bad.gbnf"
expect_fail "bad grammar" "$NOOK" run "$TMP/qwen3-tiny.gguf" --grammar "$TMP/bad.gbnf" hi
check_contains "bad grammar message" "$err" "bad.gbnf: grammar: line 2, column"
printf '{"type":"object","not":{}}' >"$TMP/bad.json"
expect_fail "unsupported keyword" "$NOOK" run "$TMP/qwen3-tiny.gguf" --schema "$TMP/bad.json" hi
check_contains "unsupported keyword message" "$err" "keyword 'not' is not supported"
expect_fail "two constraints" "$NOOK" run "$TMP/qwen3-tiny.gguf" --schema "$TMP/bad.json" --format json hi
expect_fail "missing schema file" "$NOOK" run "$TMP/qwen3-tiny.gguf" --schema "$TMP/nope.json" hi
finish

#!/usr/bin/env bash
# store_create.sh: nook create from Modelfiles (FROM a path, a folder, a store name;
# SYSTEM, PARAMETER, MESSAGE, LICENSE, TEMPLATE; --quantize), show --modelfile, run by
# name equal to run by path with the same settings, clear refusals (ADAPTER, templates
# nook cannot translate, missing files, hostile GGUFs), and an Ollama store made by this
# test from the documented layout, listed and run in place without copying anything.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/store"
unset NOOK_OLLAMA_STORE
GGUF="$MODELS/stories260K.gguf"

cat >"$TMP/Modelfile" <<EOF
# a story model
FROM $GGUF
PARAMETER temperature 0
PARAMETER num_predict 6
SYSTEM """Tell stories."""
LICENSE MIT
EOF
run_cmd "$NOOK" create story -f "$TMP/Modelfile"
check_eq "create exit" "$rc" 0
run_cmd "$NOOK" list
check_contains "create listed" "$out" "story:latest"
run_cmd "$NOOK" show story --modelfile
check_contains "show --modelfile FROM" "$out" "FROM $NOOK_MODELS/blobs/sha256-"
check_contains "show --modelfile PARAMETER" "$out" "PARAMETER num_predict 6"
check_contains "show --modelfile SYSTEM" "$out" 'SYSTEM """Tell stories."""'
run_cmd "$NOOK" show story --license
check_eq "show --license" "$out" "MIT"
a=$("$NOOK" run story "Once upon a time" 2>/dev/null)
b=$("$NOOK" run "$GGUF" --temperature 0 -n 6 "Once upon a time" 2>/dev/null)
check_eq "run NAME = run PATH with the Modelfile's parameters" "$a" "$b"
c=$("$NOOK" run story -n 3 "Once upon a time" 2>/dev/null)
check_eq "the command line overrides the Modelfile" "$c" "$("$NOOK" run "$GGUF" --temperature 0 -n 3 "Once upon a time" 2>/dev/null)"

# FROM a store name: layers reused, settings replaced; the same blob, no copy
printf 'FROM story\nSYSTEM Short ones.\nPARAMETER num_predict 2\n' >"$TMP/Modelfile2"
run_cmd "$NOOK" create story2 -f "$TMP/Modelfile2"
check_eq "create FROM name" "$rc" 0
run_cmd "$NOOK" show story2 --system
check_eq "FROM name: new system" "$out" "Short ones."
run_cmd "$NOOK" show story2 --parameters
check_contains "FROM name: parameters merged" "$out" "temperature"
check_eq "one model blob for both" "$(ls "$NOOK_MODELS/blobs" | grep -c .)" "$(ls "$NOOK_MODELS/blobs" | sort -u | grep -c .)"

# FROM a folder, relative to the Modelfile
mkdir -p "$TMP/dir/weights"
cp "$GGUF" "$TMP/dir/weights/m.gguf"
printf 'FROM ./weights\n' >"$TMP/dir/Modelfile"
run_cmd "$NOOK" create fromdir -f "$TMP/dir/Modelfile"
check_eq "create FROM folder" "$rc" 0

# --quantize through the quantizer
run_cmd "$NOOK" create storyq8 -f "$TMP/Modelfile" --quantize q8_0
check_eq "create --quantize q8_0" "$rc" 0
run_cmd "$NOOK" show storyq8
check_contains "quantized model is Q8_0" "$out" "Q8_0"
run_cmd "$NOOK" run storyq8 "Once"
check_eq "run quantized" "$rc" 0

# a TEMPLATE in Ollama's Go syntax, translated
cat >"$TMP/Modelfile3" <<EOF
FROM $GGUF
TEMPLATE """{{ if .System }}[S]{{ .System }}{{ end }}[U]{{ .Prompt }}[A]"""
SYSTEM sys
EOF
run_cmd "$NOOK" create tmpl -f "$TMP/Modelfile3"
check_eq "create with a Go template" "$rc" 0
run_cmd "$NOOK" run tmpl --show-prompt "hello"
check_eq "translated template renders" "$out" "[S]sys[U]hello[A]"

# refusals
printf 'FROM %s\nADAPTER ./lora.gguf\n' "$GGUF" >"$TMP/Mbad1"
expect_fail "ADAPTER refused" "$NOOK" create x -f "$TMP/Mbad1"
check_contains "ADAPTER message" "$err" "ADAPTER"
printf 'FROM %s\nTEMPLATE "{{ range .Tools }}{{ json . }}{{ end }}"\n' "$GGUF" >"$TMP/Mbad2"
expect_fail "untranslatable TEMPLATE refused" "$NOOK" create x -f "$TMP/Mbad2"
check_contains "TEMPLATE message names the construct" "$err" ".Tools"
printf 'FROM ./nope.gguf\n' >"$TMP/Mbad3"
expect_fail "FROM a missing file" "$NOOK" create x -f "$TMP/Mbad3"
head -c 200000 "$GGUF" >"$TMP/trunc.gguf"
printf 'FROM %s\n' "$TMP/trunc.gguf" >"$TMP/Mbad4"
expect_fail "FROM a GGUF whose tensors lie outside the file" "$NOOK" create x -f "$TMP/Mbad4"
check_contains "hostile GGUF message" "$err" "outside"
printf 'FROM x\nPARAMETER temperature hot\n' >"$TMP/Mbad5"
expect_fail "bad PARAMETER" "$NOOK" create x -f "$TMP/Mbad5"
check_contains "bad PARAMETER names the line" "$err" "line 2"
expect_fail "invalid NAME" "$NOOK" create ../evil -f "$TMP/Modelfile"
run_cmd "$NOOK" list
check_eq "refusals registered nothing" "$(printf '%s\n' "$out" | grep -c 'x:latest')" 0

# rm and cp
run_cmd "$NOOK" cp story story-copy
check_eq "cp" "$rc" 0
run_cmd "$NOOK" rm story story2 storyq8 fromdir tmpl
check_eq "rm several" "$rc" 0
run_cmd "$NOOK" run story-copy "Once"
check_eq "copy still runs after rm of the original" "$rc" 0
"$NOOK" rm story-copy >/dev/null
check_eq "all blobs collected" "$(ls "$NOOK_MODELS/blobs" | wc -l)" 0

# ---- an Ollama store, written here from the documented layout, used in place ----
OH="$TMP/home/.ollama/models"
python3 - "$OH" "$GGUF" <<'EOF'
import hashlib, json, os, sys
root, gguf = sys.argv[1], sys.argv[2]
os.makedirs(root + "/blobs"); os.makedirs(root + "/manifests/registry.ollama.ai/library/tiny")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(root + "/blobs/sha256-" + d, "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
m = dict(mediaType="application/vnd.ollama.image.model", **blob(open(gguf, "rb").read()))
p = dict(mediaType="application/vnd.ollama.image.params", **blob(b'{"num_predict":3,"temperature":0}'))
c = dict(mediaType="application/vnd.docker.container.image.v1+json", **blob(b'{"model_format":"gguf","model_family":"llama"}'))
man = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": c, "layers": [m, p]}
open(root + "/manifests/registry.ollama.ai/library/tiny/1b", "w").write(json.dumps(man))
EOF
before=$(find "$TMP/home" "$NOOK_MODELS" -type f | sort | xargs -r stat -c '%n %s %Y')
run_cmd env HOME="$TMP/home" NOOK_OLLAMA_STORE=1 "$NOOK" list
check_contains "Ollama store listed" "$out" "tiny:1b"
run_cmd env HOME="$TMP/home" "$NOOK" list --ollama-store
check_contains "--ollama-store" "$out" "tiny:1b"
run_cmd env HOME="$TMP/home" NOOK_OLLAMA_STORE=1 "$NOOK" run tiny:1b "Once upon a time"
check_eq "Ollama store model runs" "$rc" 0
check_eq "run uses its params" "$out" "$("$NOOK" run "$GGUF" --temperature 0 -n 3 "Once upon a time" 2>/dev/null)"
after=$(find "$TMP/home" "$NOOK_MODELS" -type f | sort | xargs -r stat -c '%n %s %Y')
check_eq "nothing copied or changed (only the lock file may appear)" "$(diff <(echo "$before") <(echo "$after") | grep '^>' | grep -vc nook-lock)" 0
finish

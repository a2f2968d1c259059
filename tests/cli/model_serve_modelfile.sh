#!/usr/bin/env bash
# model_serve_modelfile.sh: `nook serve` applies a store model's Modelfile settings as
# defaults under the request, as Ollama does: PARAMETER under `options` (the request's
# own options win), SYSTEM as the system prompt when the conversation has none, TEMPLATE
# (translated to Jinja) when the request gives none; a GGUF path has no settings. Each
# reply by name must equal the reply by path with the same settings given explicitly.
# stories260K has no chat template, so a chat is plain completion of the messages'
# text: the SYSTEM line is visible in what the model continues.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/store"
unset NOOK_OLLAMA_STORE
GGUF="$(cd "$MODELS" && pwd)/stories260K.gguf"

cat >"$TMP/Modelfile" <<EOF2
FROM $GGUF
PARAMETER temperature 0
PARAMETER num_predict 6
SYSTEM """Lily and Ben went to the park."""
EOF2
run_cmd "$NOOK" create story -f "$TMP/Modelfile"
check_eq "create ($err)" "$rc" 0
printf 'FROM %s\nTEMPLATE """{{ .System }} Once upon a time, {{ .Prompt }}"""\nPARAMETER temperature 0\nPARAMETER num_predict 5\n' "$GGUF" >"$TMP/Modelfile2"
run_cmd "$NOOK" create tmpl -f "$TMP/Modelfile2"
check_eq "create tmpl ($err)" "$rc" 0

serve_start
post() { req POST "$1" -H 'Content-Type: application/json' -d "$2"; }
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>&1; }

# generate: PARAMETER as defaults; the request's options win
post /api/generate '{"model":"story","prompt":"Once upon a time","stream":false}'
check_eq "generate by name status ($body)" "$code" 200
by_name="$(field "$body" 'd["response"]')"; n_name="$(field "$body" 'd["eval_count"]')"
post /api/generate '{"model":"'"$GGUF"'","prompt":"Once upon a time","stream":false,"options":{"temperature":0,"num_predict":6}}'
check_eq "generate: name = path with the Modelfile's options" "$by_name" "$(field "$body" 'd["response"]')"
check_eq "generate: num_predict 6 from the Modelfile" "$n_name" "6"
post /api/generate '{"model":"story","prompt":"Once upon a time","stream":false,"options":{"num_predict":3}}'
check_eq "generate: the request's num_predict wins" "$(field "$body" 'd["eval_count"]')" "3"
post /api/generate '{"model":"'"$GGUF"'","prompt":"Once upon a time","stream":false,"options":{"num_predict":12,"seed":1}}'
check_eq "generate by path: no Modelfile (sampled at the default temperature)" "$(field "$body" 'd["eval_count"] == 12 and d["response"] != "'"$by_name"'"')" "True"

# chat: SYSTEM put first when the conversation has none
post /api/chat '{"model":"story","messages":[{"role":"user","content":"He was"}],"stream":false,"options":{"num_predict":12}}'
check_eq "chat by name status ($body)" "$code" 200
c_name="$(field "$body" 'd["message"]["content"]')"
post /api/chat '{"model":"'"$GGUF"'","messages":[{"role":"system","content":"Lily and Ben went to the park."},{"role":"user","content":"He was"}],"stream":false,"options":{"temperature":0,"num_predict":12}}'
check_eq "chat: name = path with the SYSTEM message" "$c_name" "$(field "$body" 'd["message"]["content"]')"
post /api/chat '{"model":"'"$GGUF"'","messages":[{"role":"user","content":"He was"}],"stream":false,"options":{"temperature":0,"num_predict":12}}'
c_plain="$(field "$body" 'd["message"]["content"]')"
if [ "$c_name" != "$c_plain" ]; then ok; else bad "chat: the SYSTEM made no difference [$c_name]"; fi
post /api/chat '{"model":"story","messages":[{"role":"system","content":"Sue had a cat."},{"role":"user","content":"He was"}],"stream":false,"options":{"num_predict":12}}'
c_own="$(field "$body" 'd["message"]["content"]')"
post /api/chat '{"model":"'"$GGUF"'","messages":[{"role":"system","content":"Sue had a cat."},{"role":"user","content":"He was"}],"stream":false,"options":{"temperature":0,"num_predict":12}}'
check_eq "chat: the request's own system message wins" "$c_own" "$(field "$body" 'd["message"]["content"]')"
# OpenAI too (the same defaults; temperature given: OpenAI's default is 1, as Ollama's)
post /v1/chat/completions '{"model":"story","messages":[{"role":"user","content":"He was"}],"max_tokens":12,"temperature":0}'
check_eq "openai chat by name = ollama chat by name" "$(field "$body" 'd["choices"][0]["message"]["content"]')" "$c_name"

# TEMPLATE: the Go template translated to Jinja renders the prompt
post /api/generate '{"model":"tmpl","prompt":"there was","stream":false}'
check_eq "template by name status ($body)" "$code" 200
t_name="$(field "$body" 'd["response"]')"
post /api/generate '{"model":"'"$GGUF"'","prompt":" Once upon a time, there was","raw":true,"stream":false,"options":{"temperature":0,"num_predict":5}}'
check_eq "template: name = path with the rendered prompt (raw)" "$t_name" "$(field "$body" 'd["response"]')"

# /api/show of a store model: the store's settings and what its GGUF says
post /api/show '{"model":"story"}'
check_eq "show by name" "$(field "$body" 'd["details"]["family"], "quantization_level" in d["details"], d["model_info"]["llama.block_count"] > 0, d["capabilities"], d["system"]')" \
    "('llama', True, True, ['completion'], 'Lily and Ben went to the park.')"
post /api/show '{"model":"'"$GGUF"'"}'
check_eq "show by path" "$(field "$body" 'd["details"]["format"], d["details"]["family"], d["model_info"]["general.architecture"]')" "('gguf', 'llama', 'llama')"

# an empty chat stays a preload (no SYSTEM message added)
post /api/chat '{"model":"story","messages":[]}'
check_eq "preload by name" "$(field "$body" 'd["done_reason"]')" "load"
serve_stop
finish

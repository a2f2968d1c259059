#!/usr/bin/env bash
# model_serve.sh: `nook serve` with stories260K through curl: Ollama's native API
# (generate and chat, streamed and whole, preload/unload, show, ps, tags), the OpenAI
# API (chat completions with SSE and usage, completions, models), a disconnect that
# cancels at once, and hostile requests (each a clear 4xx, the server still serving).
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
need_model stories260K.gguf
M="$(cd "$MODELS" && pwd)/stories260K.gguf"

serve_start NOOK_KEEP_ALIVE=10m
post() { req POST "$1" -d "$2"; }

# generate, whole: Ollama's fields; the same request twice at temperature 0 is the same
G="{\"model\":\"$M\",\"prompt\":\"Once upon a time\",\"stream\":false,\"options\":{\"num_predict\":12,\"temperature\":0}}"
post /api/generate "$G"
check_eq "generate status" "$code" 200
first="$body"
for f in '"response":", there was a little girl' '"done":true' '"done_reason":"length"' '"context":[' \
         '"total_duration":' '"load_duration":' '"prompt_eval_count":' '"eval_count":12' '"eval_duration":'; do
    check_contains "generate has $f" "$body" "$f"
done
post /api/generate "$G"
# timings and prompt_eval_count (only the tokens decoded after a reused prefix) vary
strip() { sed -e 's/"created_at":"[^"]*"//' -e 's/"[a-z_]*duration":[0-9]*//g' -e 's/"prompt_eval_count":[0-9]*//' <<<"$1"; }
check_eq "generate repeatable at temperature 0" "$(strip "$body")" "$(strip "$first")"

# generate, streamed: NDJSON lines whose text joins to the whole answer
out=$(curl -sN "$BASE/api/generate" -d "{\"model\":\"$M\",\"prompt\":\"Once upon a time\",\"options\":{\"num_predict\":12,\"temperature\":0}}")
n=$(grep -c '"done":false' <<<"$out")
check_eq "streamed lines" "$n" 12
check_contains "stream ends done" "$(tail -1 <<<"$out")" '"done":true'
joined=$(grep '"done":false' <<<"$out" | sed 's/.*"response":"\([^"]*\)".*/\1/' | tr -d '\n')
check_eq "stream text = whole text" "$joined" ", there was a little girl named Lily. She"

# chat (stories260K has no chat template: plain completion of the messages' text)
post /api/chat "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"stream\":false,\"options\":{\"num_predict\":12,\"temperature\":0}}"
check_eq "chat status" "$code" 200
check_contains "chat message" "$body" '"message":{"role":"assistant","content":", there was a little girl named Lily. She"}'
out=$(curl -sN "$BASE/api/chat" -d "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"options\":{\"num_predict\":3}}")
check_eq "chat stream lines" "$(wc -l <<<"$out")" 4

# OpenAI
post /v1/chat/completions "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0}"
check_eq "openai chat status" "$code" 200
check_contains "openai chat object" "$body" '"object":"chat.completion"'
check_contains "openai chat content" "$body" '"content":", there was a little girl named Lily. She"'
check_contains "openai usage" "$body" '"usage":{"prompt_tokens":5,"completion_tokens":12,"total_tokens":17}'
out=$(curl -sN "$BASE/v1/chat/completions" -d "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true}}")
check_eq "SSE ends with [DONE]" "$(grep -v '^$' <<<"$out" | tail -1)" "data: [DONE]"
check_contains "SSE usage chunk" "$out" '"choices":[],"usage":{'
check_contains "SSE finish_reason" "$out" '"finish_reason":"length"'
post /v1/completions "{\"model\":\"$M\",\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0}"
check_contains "openai completion" "$body" '"text":", there was a little girl named Lily. She"'
req GET /v1/models
check_contains "v1 models lists the loaded model" "$body" "\"id\":\"$M\""
req GET "/v1/models/$M"
check_eq "v1 model by id" "$code" 200
req GET /v1/models/nope.gguf
check_eq "v1 unknown model 404" "$code" 404
check_contains "v1 404 OpenAI shape" "$body" '"type":"not_found_error"'

# embeddings: Ollama's normalised batch, the legacy raw vector, OpenAI's list
post /api/embed "{\"model\":\"$M\",\"input\":[\"hello\",\"world\"]}"
check_eq "embed status" "$code" 200
check_contains "embed shape" "$body" '"embeddings":[['
check_contains "embed count" "$body" '"prompt_eval_count":'
post /api/embeddings "{\"model\":\"$M\",\"prompt\":\"hello\"}"
check_contains "legacy embeddings" "$body" '{"embedding":['
post /v1/embeddings "{\"model\":\"$M\",\"input\":\"hello\",\"dimensions\":4}"
check_contains "openai embeddings" "$body" '"object":"embedding"'
post /api/embed "{\"model\":\"$M\",\"input\":\"$(printf 'word %.0s' $(seq 1 3000))\",\"truncate\":false}"
check_eq "embed too long, truncate false: 400" "$code" 400

# show, ps, tags, preload and unload
post /api/show "{\"model\":\"$M\"}"
check_eq "show status (the store's /api/show)" "$code" 200
check_contains "show capabilities" "$body" '"capabilities":["completion"'
req GET /api/ps
check_contains "ps lists the model" "$body" "\"name\":\"$M\""
check_contains "ps expires_at" "$body" '"expires_at":'
req GET /api/tags
check_contains "tags answers (the store's list)" "$body" '{"models":['
post /api/generate "{\"model\":\"$M\",\"keep_alive\":0}"
check_contains "unload" "$body" '"done_reason":"unload"'
req GET /api/ps
check_eq "ps empty after unload" "$body" '{"models":[]}'
post /api/chat "{\"model\":\"$M\"}"
check_contains "preload" "$body" '"done_reason":"load"'
req GET /api/ps
check_contains "ps after preload" "$body" "\"name\":\"$M\""

# a client that disconnects mid-stream cancels its generation at once
curl -sN --max-time 0.5 "$BASE/api/generate" \
    -d "{\"model\":\"$M\",\"prompt\":\"Once\",\"options\":{\"num_predict\":1000000,\"num_ctx\":64}}" >/dev/null
sleep 0.3
req GET /metrics
check_contains "no active sequence after the disconnect" "$body" "nook_active_sequences 0"
check_contains "the disconnect counted" "$body" "nook_cancelled_total 1"
# the scheduler's own counters, one series per loaded model: steps, and where its time went
check_contains "scheduler steps counted" "$body" "nook_sched_steps_total{model=\"$M\",num_ctx=\"64\"}"
sched_val() { printf '%s\n' "$body" | grep -F "$1{model=\"$M\",num_ctx=\"64\"} " | awk '{ print $2 }'; }
steps=$(sched_val nook_sched_steps_total)
check_eq "scheduler steps > 0 ($steps)" "$([ "${steps:-0}" -gt 0 ] && echo yes)" yes
dec=$(sched_val nook_sched_decode_seconds_total)
check_eq "decode seconds > 0 ($dec)" "$(awk -v d="${dec:-0}" 'BEGIN { print (d > 0) ? "yes" : "no" }')" yes
check_contains "handoff seconds" "$body" "# TYPE nook_sched_handoff_seconds_total counter"
check_contains "idle seconds" "$body" "nook_sched_idle_seconds_total{model="

# hostile requests: each a clear 4xx, and the server goes on
post /api/generate '{"model": "x", '
check_eq "invalid JSON 400" "$code" 400
check_contains "invalid JSON message" "$body" "invalid JSON"
post /api/generate '[1,2]'
check_eq "non-object 400" "$code" 400
post /api/generate "{\"model\":\"$M\",\"prompt\":42}"
check_eq "wrong type 400" "$code" 400
post /api/generate "{\"model\":\"$M\",\"options\":{\"temperature\":\"hot\"}}"
check_eq "wrong option type 400" "$code" 400
post /api/generate "{\"model\":\"$M\",\"prompt\":\"x\",\"unknown\":[{\"a\":1}],\"stream\":false,\"options\":{\"num_predict\":1,\"bogus\":{}}}"
check_eq "unknown fields ignored" "$code" 200
deep=$(printf '%.0s[' $(seq 1 10000))
post /api/generate "{\"model\":$deep"
check_eq "10,000-deep JSON 400" "$code" 400
check_contains "depth message" "$body" "nested deeper"
printf '{"model":"%s","prompt":"\xff\xfe bad"}' "$M" >"$TMP/bad_utf8"
req POST /api/generate --data-binary @"$TMP/bad_utf8"
check_eq "invalid UTF-8 400" "$code" 400
post /api/generate '{"model":"no-such-model.gguf","prompt":"x"}'
check_eq "unknown model 404" "$code" 404
post /v1/chat/completions '{"model":"no-such-model.gguf","messages":[{"role":"user","content":"x"}]}'
check_eq "unknown model 404 (OpenAI)" "$code" 404
check_contains "OpenAI error shape" "$body" '"error":{"message":"model '"'"'no-such-model.gguf'"'"' not found"'
for o in '"num_ctx":-1' '"num_ctx":1000000000000' '"num_predict":-7' '"num_predict":1e300' '"top_k":"all"'; do
    post /api/generate "{\"model\":\"$M\",\"prompt\":\"x\",\"options\":{$o}}"
    check_eq "absurd option $o 400" "$code" 400
done
long=$(printf 'word %.0s' $(seq 1 200))
post /api/generate "{\"model\":\"$M\",\"prompt\":\"$long\",\"stream\":false,\"options\":{\"num_ctx\":32}}"
check_eq "prompt longer than the context 400" "$code" 400
check_contains "context message" "$body" "context"
post /api/chat "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}"
check_eq "images 400" "$code" 400
head -c 100000000 /dev/zero | tr '\0' ' ' >"$TMP/big"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 20 -X POST --data-binary @"$TMP/big" "$BASE/api/generate")
check_eq "100 MB body 413" "$code" 413
rm -f "$TMP/big"
post /api/generate "$G"
check_eq "still serving" "$code" 200
check_eq "still the same answer" "$(strip "$body")" "$(strip "$first")"
serve_stop
finish

#!/usr/bin/env bash
# store_api.sh: the store's Ollama endpoints on `nook serve`, driven with curl the way
# Ollama's clients call them: /api/pull (NDJSON progress from the loopback mock
# registry), /api/blobs HEAD/POST (digest-checked upload), /api/create (JSON form: files
# by digest, system, parameters, messages), /api/tags, /api/show, /api/copy, /api/delete.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
need_model stories260K.gguf
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
export NOOK_OFFLINE=1 NOOK_MODELS="$TMP/store" NOOK_PULL_MIN_PART=65536
unset NOOK_OLLAMA_STORE
GGUF="$MODELS/stories260K.gguf"
SHA=$(sha256sum "$GGUF" | cut -d' ' -f1)

python3 "$(dirname "$0")/../fixtures/registry.py" --port-file "$TMP/port" --ttl 120 --model "library/tiny:latest=$GGUF" &
REG=$!
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
R="127.0.0.1:$(cat "$TMP/port")"
serve_start
trap 'kill $REG 2>/dev/null; kill $SRV_PID 2>/dev/null; rm -rf "$TMP"' EXIT

# pull with NDJSON progress
req POST /api/pull -d "{\"model\":\"$R/library/tiny\",\"insecure\":true}"
check_eq "pull status" "$code" 200
check_contains "pull streams the manifest step" "$body" '{"status":"pulling manifest"}'
check_contains "pull streams layer progress" "$body" "\"digest\":\"sha256:$SHA\""
check_contains "pull streams completed bytes" "$body" "\"completed\":$(stat -c %s "$GGUF")"
check_eq "pull ends with success" "$(printf '%s\n' "$body" | tail -1)" '{"status":"success"}'
req POST /api/pull -d "{\"name\":\"$R/library/nosuch\",\"insecure\":true,\"stream\":false}"
check_eq "pull unknown: 404" "$code" 404
check_contains "pull unknown: Ollama's error shape" "$body" '"error":'
req POST /api/pull -d "{\"model\":\"$R/library/traverse\",\"insecure\":true}"
check_contains "pull malicious: error line" "$(printf '%s\n' "$body" | tail -1)" '"error":'

# tags and show
req GET /api/tags
check_eq "tags" "$code" 200
check_contains "tags lists the pull" "$body" "\"name\":\"$R/library/tiny:latest\""
check_contains "tags details" "$body" '"format":"gguf"'
req POST /api/show -d "{\"model\":\"$R/library/tiny\"}"
check_eq "show" "$code" 200
check_contains "show system" "$body" '"system":"You are a test."'
check_contains "show modelfile" "$body" 'PARAMETER num_predict 4'
check_contains "show parameters" "$body" 'temperature'
req POST /api/show -d '{"model":"nosuch"}'
check_eq "show unknown: 404" "$code" 404

# blobs: HEAD, a wrong upload refused, a right one accepted
req HEAD "/api/blobs/sha256:$SHA"
check_eq "blob present" "$code" 200
req HEAD /api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000
check_eq "blob absent" "$code" 404
req POST /api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000 --data-binary "wrong bytes"
check_eq "upload with the wrong digest: 400" "$code" 400
req POST "/api/blobs/sha256:..%2F..%2Fx" --data-binary "x"
check_eq "upload with a bad digest: refused (400/404)" "$((code == 400 || code == 404))" 1
req POST "/api/blobs/sha256:ABC" --data-binary "x"
check_eq "upload with a malformed digest: 400" "$code" 400
OTHER=$(printf 'hello blob' | sha256sum | cut -d' ' -f1)
req POST "/api/blobs/sha256:$OTHER" --data-binary "hello blob"
check_eq "upload: 201" "$code" 201
check_eq "uploaded bytes stored" "$(cat "$NOOK_MODELS/blobs/sha256-$OTHER")" "hello blob"

# create (Ollama's JSON form) from an uploaded GGUF
req POST /api/create -d "{\"model\":\"made\",\"files\":{\"m.gguf\":\"sha256:$SHA\"},\"system\":\"Be short.\",\"parameters\":{\"temperature\":0,\"stop\":[\"x\"]},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
check_eq "create" "$code" 200
check_eq "create ends with success" "$(printf '%s\n' "$body" | tail -1)" '{"status":"success"}'
req POST /api/show -d '{"model":"made"}'
check_contains "created system" "$body" '"system":"Be short."'
check_contains "created messages" "$body" '"messages":[{"role":"user","content":"hi"}]'
req POST /api/create -d "{\"model\":\"made2\",\"from\":\"made\",\"system\":\"Other.\",\"stream\":false}"
check_eq "create from a name" "$code" 200
req POST /api/create -d '{"model":"bad","from":"/etc/passwd","stream":false}'
check_eq "create from a server path: refused" "$code" 400
req POST /api/create -d "{\"model\":\"bad\",\"files\":{\"m.gguf\":\"sha256:$SHA\"},\"adapters\":{\"a.gguf\":\"sha256:$SHA\"},\"stream\":false}"
check_eq "adapters refused" "$code" 400
req POST /api/create -d "{\"model\":\"bad\",\"files\":{\"m.gguf\":\"sha256:$OTHER\"},\"stream\":false}"
check_eq "create from a blob that is not a GGUF: refused" "$code" 400

# tensor data outside the file, through /api/create (issue 16): the GGUF cut short by 4 KiB
# uploads (its digest is right) but is refused as a model, and no model is registered
head -c $(( $(stat -c %s "$GGUF") - 4096 )) "$GGUF" >"$TMP/cut.gguf"
CUT=$(sha256sum "$TMP/cut.gguf" | cut -d' ' -f1)
req POST "/api/blobs/sha256:$CUT" --data-binary "@$TMP/cut.gguf"
check_eq "upload of a GGUF whose tensors lie outside it: stored as bytes (201)" "$code" 201
req POST /api/create -d "{\"model\":\"cut\",\"files\":{\"m.gguf\":\"sha256:$CUT\"},\"stream\":false}"
check_eq "create from it: refused (400)" "$code" 400
check_contains "create from it: names the tensor outside the file" "$body" "outside the file"
req POST /api/show -d '{"model":"cut"}'
check_eq "create from it: no model registered" "$code" 404

# push to a registry the user never chose (issue 16: Probllama-style exfiltration): off in
# the server unless NOOK_ALLOW_PUSH=1, and a web page cannot ask (foreign Origin or Host)
pushes0=$(curl -s --noproxy '*' "http://$R/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['pushed_blobs'])")
req POST /api/push -d "{\"model\":\"$R/library/tiny\",\"insecure\":true,\"stream\":false}"
check_eq "push while off: refused (4xx)" "$((code >= 400 && code < 500))" 1
check_contains "push while off: says how to enable it" "$body" "NOOK_ALLOW_PUSH=1"
req POST /api/push -H "Origin: https://evil.example" -d "{\"model\":\"$R/library/tiny\",\"insecure\":true,\"stream\":false}"
check_eq "push from a foreign origin: 403" "$code" 403
req POST /api/push -H "Host: evil.example" -d "{\"model\":\"$R/library/tiny\",\"insecure\":true,\"stream\":false}"
check_eq "push through DNS rebinding (foreign Host): 403" "$code" 403
check_eq "nothing was pushed" "$(curl -s --noproxy '*' "http://$R/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['pushed_blobs'])")" "$pushes0"

# copy and delete
req POST /api/copy -d '{"source":"made","destination":"made-copy"}'
check_eq "copy" "$code" 200
req POST /api/copy -d '{"source":"nosuch","destination":"x"}'
check_eq "copy unknown: 404" "$code" 404
req DELETE /api/delete -d '{"model":"made-copy"}'
check_eq "delete" "$code" 200
req DELETE /api/delete -d '{"model":"made-copy"}'
check_eq "delete again: 404" "$code" 404
req GET /api/tags
check_eq "tags after delete" "$(printf '%s' "$body" | grep -o '"name":' | wc -l)" 3
serve_stop
finish

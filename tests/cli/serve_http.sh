#!/usr/bin/env bash
# serve_http.sh: `nook serve`'s HTTP layer with curl, no model needed: the probes tools
# use (/, HEAD /, /api/version, /health, /metrics), keep-alive, errors in Ollama's and
# OpenAI's shapes, the Host-header (DNS rebinding) and CORS checks, the API key,
# oversized headers, slow clients, the connection limit, and a clean SIGTERM.
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/serve_lib.bash"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

serve_start NOOK_HTTP_TIMEOUT=1

req GET /
check_eq "GET / status" "$code" 200
check_eq "GET / text" "$body" "nook is running"
code=$(curl -s -I -o "$TMP/head" -w '%{http_code}' "$BASE/")
check_eq "HEAD / status" "$code" 200
req GET /api/version
check_eq "version status" "$code" 200
check_contains "version body" "$body" '"version":'
req GET /health
check_eq "health" "$body" '{"status":"ok"}'
req GET /metrics
check_eq "metrics status" "$code" 200
check_contains "metrics requests" "$body" "nook_http_requests_total "
check_contains "metrics queue" "$body" "# TYPE nook_queue_length gauge"

# keep-alive: two requests on one connection
out=$(curl -sv "$BASE/" "$BASE/api/version" 2>&1)
check_contains "keep-alive reuse" "$out" "Re-using existing connection"

# unknown endpoints and methods; error shapes
req GET /api/nothing
check_eq "unknown path 404" "$code" 404
check_contains "404 Ollama shape" "$body" '{"error":"'
req GET /v1/nothing
check_eq "unknown /v1 path 404" "$code" 404
check_contains "404 OpenAI shape" "$body" '{"error":{"message":'
req POST /api/version
check_eq "wrong method 405" "$code" 405

# DNS rebinding: a foreign Host header is refused; loopback names pass
req GET /api/version -H "Host: evil.example.com"
check_eq "foreign Host 403" "$code" 403
req GET /api/version -H "Host: localhost:$PORT"
check_eq "Host localhost" "$code" 200
req GET /api/version -H "Host: [::1]:$PORT"
check_eq "Host [::1]" "$code" 200

# CORS
req GET /api/version -H "Origin: http://evil.example.com"
check_eq "bad Origin 403" "$code" 403
hdrs=$(curl -s -D - -o /dev/null -H "Origin: http://localhost:5173" "$BASE/api/version")
check_contains "allowed Origin echoed" "$hdrs" "Access-Control-Allow-Origin: http://localhost:5173"
hdrs=$(curl -s -D - -o /dev/null -X OPTIONS -H "Origin: vscode-webview://abc" \
       -H "Access-Control-Request-Method: POST" "$BASE/api/chat")
check_contains "preflight 204" "$hdrs" "204"
check_contains "preflight headers" "$hdrs" "Access-Control-Allow-Headers: Authorization, Content-Type"

# an oversized header block: refused, the server goes on
big=$(head -c 100000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$BASE/api/version")
case "$code" in 413|431) ok ;; *) bad "100 KB header: status $code, want 413 or 431" ;; esac
req GET /
check_eq "still serving after big header" "$code" 200

# slow client: a request that never completes is dropped after NOOK_HTTP_TIMEOUT (1 s)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET / HTTP/1.1\r\nHost: localhost\r\n' >&3
t0=$(date +%s%N)
cat <&3 >/dev/null   # returns when the server closes the connection
t1=$(date +%s%N)
exec 3<&-
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -ge 500 ] && [ "$ms" -lt 5000 ]; then ok; else bad "slow client dropped after $ms ms, want ~1000"; fi

serve_stop

serve_start NOOK_MAX_CONNECTIONS=8
# connection limit (the default 30 s timeout, so idle connections stay): 8 idle connections fill it; the next is turned away; then served again
for fd in 10 11 12 13 14 15 16 17; do eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"; done
sleep 0.3   # let the server accept all eight first
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$BASE/")
check_eq "over the connection limit" "$code" 000
for fd in 10 11 12 13 14 15 16 17; do eval "exec $fd<&-"; done
sleep 0.2
req GET /
check_eq "served again under the limit" "$code" 200
serve_stop

# API key
serve_start NOOK_API_KEY=s3cret-key
req GET /metrics
check_eq "no key 401" "$code" 401
req GET /metrics -H "Authorization: Bearer wrong"
check_eq "wrong key 401" "$code" 401
req GET /v1/nothing -H "Authorization: Bearer wrong"
check_contains "401 OpenAI shape" "$body" '"code":"invalid_api_key"'
req GET /metrics -H "Authorization: Bearer s3cret-key"
check_eq "right key 200" "$code" 200
req GET /
check_eq "/ needs no key" "$code" 200
serve_stop

# a bad configuration is one clear line, no server
expect_fail "bad NOOK_MAX_QUEUE" env NOOK_HOST=127.0.0.1:0 NOOK_MAX_QUEUE=lots "$NOOK" serve
expect_fail "bad NOOK_KEEP_ALIVE" env NOOK_HOST=127.0.0.1:0 NOOK_KEEP_ALIVE=soon "$NOOK" serve
finish

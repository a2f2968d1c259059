#!/usr/bin/env bash
# egress_scan.sh: only src/net/ may open outbound connections. Scans every C source
# outside src/net/ for sockets, connect(), name resolution and libcurl; the documented
# exceptions (docs/privacy.md) are the server's listening socket (libmicrohttpd, and the
# passive getaddrinfo of its bind address). A planted violation must be caught, so the
# scan itself is tested.
. "$(dirname "$0")/lib.bash"

PATTERN='\bconnect[[:space:]]*\(|\bsocket[[:space:]]*\(|getaddrinfo[[:space:]]*\(|gethostbyname|res_query|curl_easy_|curl_multi_|curl_global_|<curl/curl\.h>|\bsendto[[:space:]]*\(|MHD_start_daemon'
# file:regex of allowed uses, one per line
ALLOW='src/server/http.c:getaddrinfo\(c->host, port, &hints, &ai\)
src/server/http.c:MHD_start_daemon'

# scan DIR: prints offending "file:line: text" relative to DIR, outside src/net/
scan() {
    (cd "$1" && grep -rnE "$PATTERN" src --include='*.c' --include='*.h' 2>/dev/null) | while IFS= read -r hit; do
        file="${hit%%:*}"
        case "$file" in src/net/*) continue ;; esac
        allowed=0
        while IFS= read -r a; do
            af="${a%%:*}"; ar="${a#*:}"
            if [ "$file" = "$af" ] && echo "$hit" | grep -qE "$ar"; then allowed=1; fi
        done <<<"$ALLOW"
        [ "$allowed" = 1 ] || echo "$hit"
    done
}

offending="$(scan .)"
check_eq "no outbound connections outside src/net" "$offending" ""
# the scan finds a planted connect() and curl use outside src/net, and allows src/net
mkdir -p "$TMP/t/src/router" "$TMP/t/src/net" "$TMP/t/src/server"
printf 'int f(int s){ return connect(s, 0, 0); }\n' >"$TMP/t/src/router/bad.c"
printf '#include <curl/curl.h>\nvoid g(void){ curl_easy_init(); }\n' >"$TMP/t/src/server/bad2.c"
printf 'int h(int s){ return connect(s, 0, 0); }\n' >"$TMP/t/src/net/ok.c"
planted="$(scan "$TMP/t")"
check_contains "planted connect found" "$planted" "src/router/bad.c:1:"
check_contains "planted curl found" "$planted" "src/server/bad2.c:2:"
case "$planted" in *src/net/*) bad "src/net flagged" ;; *) ok ;; esac
finish

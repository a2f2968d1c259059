#!/usr/bin/env bash
# model_long_prompt.sh: a prompt far beyond the context (1 MB, ~300k tokens, into a
# 256-token context) is refused with one line that gives both sizes and what to do, in
# seconds and without holding more than a few tens of MB (docs/security.md).
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
S="$MODELS/stories260K.gguf"
python3 -c "print('Once upon a time there was a little girl. ' * 25000)" >"$TMP/long.txt"
for mode in --raw ""; do
    start=$(date +%s)
    : >"$TMP/rss"
    if [ -x /usr/bin/time ]; then   # GNU time for the peak RSS (Debian package "time"), when present
        /usr/bin/time -f "%M" -o "$TMP/rss" "$NOOK" run "$S" $mode --ctx 256 <"$TMP/long.txt" >"$TMP/out" 2>"$TMP/err"
    else
        "$NOOK" run "$S" $mode --ctx 256 <"$TMP/long.txt" >"$TMP/out" 2>"$TMP/err"
    fi
    rc=$?
    err=$(cat "$TMP/err")
    check_eq "long prompt ${mode:-chat} exit" "$rc" 1
    check_contains "long prompt ${mode:-chat} says why" "$err" "longer than the context (256)"
    check_contains "long prompt ${mode:-chat} says what to do" "$err" "raise --ctx"
    [ -s "$TMP/out" ] && bad "long prompt ${mode:-chat}: printed text" || ok
    [ $(( $(date +%s) - start )) -lt 60 ] && ok || bad "long prompt ${mode:-chat}: took over a minute"
    rss=$(tail -1 "$TMP/rss")
    [ "${rss:-0}" -lt 400000 ] && ok || bad "long prompt ${mode:-chat}: peak RSS ${rss} kB"
done
finish

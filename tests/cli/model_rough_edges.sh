#!/usr/bin/env bash
# model_rough_edges.sh: the command-line rough edges of issue 15 ("Why" and item 3):
#  - quantize shows progress (percent, rate, time left) on a terminal and none in a pipe;
#  - an interrupted quantize (SIGINT, SIGTERM) leaves no OUT.tmp and no OUT behind;
#  - re-quantizing an already quantized model needs --allow-requantize;
#  - --threads above the cores and --ctx above the trained context warn, naming the flag;
#  - --verbose timings start on their own line when stdout and stderr are one pipe;
#  - a missing model path says what to do; no error repeats its prefix.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
S="$MODELS/stories260K.gguf"

# progress on a terminal (script(1) gives the command a pty), none in a pipe
if command -v script >/dev/null; then
    tty_out=$(script -qfec "'$NOOK' quantize '$S' '$TMP/q8.gguf' Q8_0" /dev/null 2>&1)
    check_contains "quantize progress on a tty" "$tty_out" "quantizing 100%"
    check_contains "quantize progress has a rate" "$tty_out" "/s"
    rm -f "$TMP/q8.gguf"
fi
run_cmd "$NOOK" quantize "$S" "$TMP/q8.gguf" Q8_0
check_eq "quantize exit" "$rc" 0
case "$err" in *quantizing*) bad "progress printed into a pipe: [$err]" ;; *) ok ;; esac

# re-quantizing needs --allow-requantize
expect_fail "requantize refused" "$NOOK" quantize "$TMP/q8.gguf" "$TMP/q4.gguf" Q4_0
check_contains "requantize names the flag" "$err" "--allow-requantize"
check_contains "requantize names the type" "$err" "Q8_0"
[ ! -e "$TMP/q4.gguf" ] && [ ! -e "$TMP/q4.gguf.tmp" ] && ok || bad "refused requantize left a file"
run_cmd "$NOOK" quantize "$TMP/q8.gguf" "$TMP/q4.gguf" Q4_0 --allow-requantize
check_eq "requantize allowed" "$rc" 0

# interrupted quantize: needs a model that takes seconds (the 0.6B fixture of lib.bash)
BIG=$(big_model)
if [ -n "$BIG" ] && [ -z "${ASAN_OPTIONS:-}" ]; then
    for sig in INT TERM; do
        "$NOOK" quantize "$BIG" "$TMP/big.gguf" Q8_0 --allow-requantize >/dev/null 2>"$TMP/qerr" &
        pid=$!
        for _ in $(seq 1 200); do [ -e "$TMP/big.gguf.tmp" ] && break; sleep 0.05; done
        [ -e "$TMP/big.gguf.tmp" ] && ok || bad "SIG$sig: no OUT.tmp appeared"
        kill -s "$sig" "$pid"
        wait "$pid"
        qrc=$?
        [ "$qrc" -eq 130 ] || [ "$qrc" -eq 143 ] && ok || bad "SIG$sig: exit $qrc, want 130/143"
        [ ! -e "$TMP/big.gguf.tmp" ] && ok || bad "SIG$sig: OUT.tmp left behind"
        [ ! -e "$TMP/big.gguf" ] && ok || bad "SIG$sig: a partial OUT left behind"
    done
fi

# create: a progress bar with rate and time left on a terminal, nothing in a pipe; an
# interrupted create (SIGINT, SIGTERM) exits 130/143 and leaves nothing in the store
H="$TMP/create-home"
printf 'FROM %s\n' "$S" > "$TMP/Modelfile"
if command -v script >/dev/null; then
    tty_out=$(NOOK_HOME="$H" script -qfec "'$NOOK' create small -f '$TMP/Modelfile' --quantize q8_0" /dev/null 2>&1)
    check_contains "create progress on a tty" "$tty_out" "quantizing to q8_0: 100%"
    check_contains "create copy progress" "$tty_out" "copying the quantized model into the store: 100%"
    check_contains "create success" "$tty_out" "success"
fi
NOOK_HOME="$H" run_cmd "$NOOK" create small2 -f "$TMP/Modelfile"
check_eq "create in a pipe" "$rc" 0
check_eq "create in a pipe is quiet" "$err" ""
if [ -n "$BIG" ] && [ -z "${ASAN_OPTIONS:-}" ]; then
    printf 'FROM %s\n' "$BIG" > "$TMP/Modelfile.big"
    for sig in INT TERM; do
        before=$(find "$H/models" -type f | sort)
        NOOK_HOME="$H" "$NOOK" create big -f "$TMP/Modelfile.big" --quantize q8_0 >/dev/null 2>"$TMP/cerr" &
        pid=$!
        for _ in $(seq 1 200); do ls -A "$H/models/blobs/" | grep -q "tmp" && break; sleep 0.05; done
        sleep 0.3
        kill -s "$sig" "$pid"
        wait "$pid"
        crc=$?
        [ "$crc" -eq 130 ] || [ "$crc" -eq 143 ] && ok || bad "create SIG$sig: exit $crc, want 130/143 ($(cat "$TMP/cerr"))"
        check_contains "create SIG$sig message" "$(cat "$TMP/cerr")" "interrupted; nothing was left behind"
        check_eq "create SIG$sig left nothing" "$(find "$H/models" -type f | sort)" "$before"
        NOOK_HOME="$H" run_cmd "$NOOK" show big
        check_eq "create SIG$sig made no model" "$rc" 1
    done
fi

# warnings: threads above the cores, ctx above the trained context (stories260K: 2048)
many=$(( $(nproc) + 1 ))
run_cmd "$NOOK" run "$S" "Once upon a time" --raw -n 2 --threads "$many" --ctx 4096
check_eq "warned run still runs" "$rc" 0
check_contains "threads warning" "$err" "--threads $many exceeds the $(nproc) cores"
check_contains "ctx warning" "$err" "--ctx 4096 exceeds the 2048 tokens"
run_cmd "$NOOK" run "$S" "Once upon a time" --raw -n 2 --threads 1 --ctx 512
case "$err" in *warning*) bad "warned without cause: [$err]" ;; *) ok ;; esac

# --verbose into the same pipe as the text: the timings start on a line of their own
both=$("$NOOK" run "$S" "Once upon a time" --raw -n 6 --temperature 0 --verbose 2>&1 </dev/null | cat)
if printf '%s\n' "$both" | grep -qx "done reason: length"; then ok; else bad "timings glued to the text: [$both]"; fi
first=$(printf '%s\n' "$both" | grep -v "^nook: " | head -1)   # log lines (nook: ...) are on lines of their own
check_eq "text line is the text" "$first" "$("$NOOK" run "$S" "Once upon a time" --raw -n 6 --temperature 0 2>/dev/null)"

# a missing path: says what to do, names what was typed
expect_fail "missing model path" "$NOOK" run ./no-such-model.gguf hi
check_contains "missing path named" "$err" "./no-such-model.gguf"
check_contains "missing path: what to do" "$err" "give the path of a .gguf file"
expect_fail "missing show path" "$NOOK" show "$TMP/none.gguf"
check_contains "missing show: what to do" "$err" "nook list"

# no doubled prefixes ("nook: quantize: quantize: ...") on any of these failures
for args in "quantize $S $S Q8_0" "quantize $S $TMP/x.gguf Q9_9" "run $TMP/none.gguf hi" "show $TMP" \
            "tokenize $TMP/none.gguf hi" "quantize $TMP/none.gguf $TMP/x.gguf Q8_0" "run $S hi --ctx 4 --raw"; do
    run_cmd "$NOOK" $args
    if printf '%s' "$err" | grep -Eq '^nook: ([^:]+: )\1'; then bad "doubled prefix: [$err]"; else ok; fi
    if printf '%s' "$err" | grep -Eq '^nook: nook:'; then bad "doubled nook: [$err]"; else ok; fi
done
finish

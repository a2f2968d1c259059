#!/usr/bin/env bash
# hostile_paths.sh: a FIFO, directory, device or socket given where a model file goes
# is refused at once with one line naming the path and what it is (issue 16): no verb
# blocks in open() waiting for a writer (each command runs under a 10 s timeout).
. "$(dirname "$0")/lib.bash"

mkfifo "$TMP/model.gguf"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TMP/sock.gguf"
mkdir "$TMP/dir.gguf"

for spec in "model.gguf:named pipe" "sock.gguf:socket" "dir.gguf:directory"; do
    p="$TMP/${spec%%:*}"; what="${spec#*:}"
    for verb in run show tokenize bench; do
        args=("$verb" "$p")
        [ "$verb" = run ] && args+=(hi)
        [ "$verb" = tokenize ] && args+=(hi)
        expect_fail "$verb $what" timeout 10 "$NOOK" "${args[@]}"
        check_contains "$verb $what names the path" "$err" "$p"
        check_contains "$verb $what says what it is" "$err" "$what"
    done
    expect_fail "quantize from $what" timeout 10 "$NOOK" quantize "$p" "$TMP/out.gguf" Q8_0
    check_contains "quantize $what says what it is" "$err" "$what"
done
expect_fail "run /dev/zero" timeout 10 "$NOOK" run /dev/zero hi
check_contains "run /dev/zero says device" "$err" "character device"
# a FIFO with a writer waiting must not be read either (no blocking, no partial parse)
( exec 3>"$TMP/model.gguf"; sleep 3 ) &
expect_fail "run FIFO with a writer" timeout 10 "$NOOK" run "$TMP/model.gguf" hi
check_contains "run FIFO with a writer" "$err" "named pipe"
kill %1 2>/dev/null; wait 2>/dev/null
finish

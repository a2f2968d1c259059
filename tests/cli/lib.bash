# lib.bash: helpers shared by the tests/cli/*.sh scripts (sourced; not a test itself).
# Each script counts checks and ends with `finish`, which prints "N passed, M failed".
set -u
: "${NOOK:?set NOOK to the path of the nook binary}"
MODELS="${NOOK_TEST_MODELS:-../shared/models}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# need_model FILE: skip the whole script (exit 77) when a fixture is absent.
need_model() {
    if [ ! -r "$MODELS/$1" ]; then
        echo "SKIP: fixture $MODELS/$1 not found (set NOOK_TEST_MODELS)"
        exit 77
    fi
}

# check_eq NAME GOT WANT
check_eq() {
    if [ "$2" == "$3" ]; then ok; else bad "$1: got [$2], want [$3]"; fi
}

# check_contains NAME HAYSTACK NEEDLE
check_contains() {
    case "$2" in
        *"$3"*) ok ;;
        *) bad "$1: [$3] not found in output: [${2:0:400}]" ;;
    esac
}

# run_cmd CMD...: runs it with stdin from /dev/null; sets $out, $err, $rc.
run_cmd() {
    "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
    rc=$?
    out="$(cat "$TMP/out")"
    err="$(cat "$TMP/err")"
}

# expect_fail NAME CMD...: the command must exit non-zero without a crash (exit code
# below 128, i.e. no signal), print nothing on stdout, and exactly one line on stderr
# of the form "nook: <message>".
expect_fail() {
    local name="$1"; shift
    run_cmd "$@"
    if [ "$rc" -eq 0 ]; then bad "$name: exit 0, want failure"; return; fi
    if [ "$rc" -ge 128 ]; then bad "$name: crashed (exit $rc): $err"; return; fi
    local lines
    lines=$(printf '%s\n' "$err" | wc -l)
    if [ -z "$err" ] || [ "$lines" -ne 1 ]; then bad "$name: want one stderr line, got [$err]"; return; fi
    case "$err" in
        "nook: "*) ok ;;
        *) bad "$name: stderr does not start with 'nook: ': [$err]" ;;
    esac
    if [ -n "$out" ]; then bad "$name: unexpected stdout [$out]"; fi
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

# big_model: prints the path of a random-weight qwen3-0.6b Q4_K_M file (tests that need
# seconds of work per call), made once into the build folder with mkmodel; prints nothing
# when it cannot be made. Concurrent callers each write their own temporary file and
# rename it into place, so no one reads a half-written model.
big_model() {
    local big="${NOOK_BUILD:-build}/fixtures/qwen3-0.6b-Q4_K_M.gguf"
    if [ ! -r "$big" ] && [ -x "${NOOK_BUILD:-build}/mkmodel" ]; then
        mkdir -p "$(dirname "$big")"
        "${NOOK_BUILD:-build}/mkmodel" qwen3-0.6b Q4_K_M "$big.$$.tmp" >/dev/null 2>&1 && mv "$big.$$.tmp" "$big"
        rm -f "$big.$$.tmp"
    fi
    [ -r "$big" ] && echo "$big"
}

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

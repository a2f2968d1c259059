#!/usr/bin/env bash
# run.sh: run every libFuzzer target of a fuzz build for a set time and report, per
# target, executions, coverage, corpus size and crashes (issue 16).
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]      (all fuzz_* in BUILD_DIR by default)
# Each target starts from a copy of its committed corpus (tests/fuzz/corpus/<name>/) and
# uses tests/fuzz/<name>.dict when there is one. A crash, leak, timeout or out-of-memory
# input is kept under $FUZZ_OUT/<name>/ (default build-dir/fuzz-findings); once fixed,
# copy it into tests/fuzz/corpus/<name>/ so that it stays a regression input. With
# FUZZ_KEEP_CORPUS=1 the grown corpus is kept there too (to pick new seeds from).
# Exit status: 0 when no target found anything, 1 otherwise.
set -u
cd "$(dirname "$0")/../.."
build="${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}"
secs="${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}"
shift 2
out="${FUZZ_OUT:-$build/fuzz-findings}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$build"/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f")"); done
fi
[ -n "${NOOK_TEST_MODELS:-}" ] || { [ -d ../shared/models ] && export NOOK_TEST_MODELS="$(cd ../shared/models && pwd)"; }
found=0
printf '%-16s %8s %12s %10s %8s %8s %8s\n' target seconds executions exec/s cov features findings
for name in "${targets[@]}"; do
    exe="$build/$name"
    [ -x "$exe" ] || { echo "$name: not built in $build" >&2; found=1; continue; }
    short="${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "tests/fuzz/corpus/$short" ] && cp -r "tests/fuzz/corpus/$short"/. "$work"/
    mkdir -p "$out/$name"
    args=(-max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
          -artifact_prefix="$out/$name/")
    [ -f "tests/fuzz/$short.dict" ] && args+=(-dict="tests/fuzz/$short.dict")
    log="$out/$name.log"
    "$exe" "${args[@]}" "$work" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    n_found=$(find "$out/$name" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    if [ "$rc" -ne 0 ] || [ "$n_found" -gt 0 ]; then
        found=1
        echo "$name: exit $rc, findings in $out/$name/ (log: $log):" >&2
        grep -m3 -E 'ERROR|SUMMARY|Test unit written' "$log" >&2
    fi
    printf '%-16s %8s %12s %10s %8s %8s %8s\n' "$name" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$n_found"
    if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then rm -rf "$out/$name/corpus"; mv "$work" "$out/$name/corpus"; else rm -rf "$work"; fi
done
exit $found

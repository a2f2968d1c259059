#!/usr/bin/env bash
# tests/arm/run-qemu.sh: cross-compile the tensor layer and its tests for AArch64 and
# run them under qemu-user, so the NEON kernels (src/tensor/arch/arm) are checked
# against the plain-C references on an x86 machine.
#
# Why not the CMake build: a full cross build needs arm64 pcre2/utf8proc/jansson;
# the tensor layer needs none of them, so this script compiles src/base, src/tensor
# and src/tensor/arch/*/ directly (the x86 files compile to empty kernel sets there).
# Everything is built for baseline Armv8-A (as CMake would build it on an AArch64
# host): the dotprod kernels carry their own target attributes and run only when
# getauxval(AT_HWCAP) reports dotprod.
#
# Runs:
#   1. test_simd  -cpu max          NEON and NEON-dotprod levels (must both run)
#   2. test_simd  -cpu cortex-a53   no dotprod: the level is skipped, init falls back to NEON
#   3. test_simd  NOOK_NO_SIMD=1    init keeps the reference kernels
#   4. test_quants -cpu max         formats, references, round trips on AArch64
#   5. if clang is installed: test_simd built by clang with -march=armv8.2-a+dotprod
#
# Usage: tests/arm/run-qemu.sh (from anywhere). Exit 0: all passed; 1: a build or
# test failed; 77: the cross compiler or qemu-aarch64 is missing (Debian:
# apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user).
# Environment: AARCH64_CC (default aarch64-linux-gnu-gcc), QEMU_AARCH64 (default
# qemu-aarch64), CLANG (default clang; "none" skips run 5), NOOK_ARM_BUILD (build
# folder, default a temporary one that is removed afterwards).
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
clang=${CLANG:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run-qemu.sh: skipped: no AArch64 cross compiler ($cc); apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    exit 77
fi
if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "run-qemu.sh: skipped: no $qemu; apt-get install qemu-user"
    exit 77
fi

if [ -n "${NOOK_ARM_BUILD:-}" ]; then
    out=$NOOK_ARM_BUILD
    mkdir -p "$out" || exit 1
else
    out=$(mktemp -d "${TMPDIR:-/tmp}/nook-arm.XXXXXX") || exit 1
    trap 'rm -rf "$out"' EXIT
fi

flags=(-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror -static
       -I"$root/include" -I"$root/src" -I"$root/tests")
lib_srcs=("$root"/src/base/*.c "$root"/src/tensor/*.c "$root"/src/tensor/arch/*/*.c)
failed=0

# build NAME COMPILER EXTRA_FLAGS... : the tensor layer + tests/tensor/NAME.c -> $out/NAME
build() {
    local name=$1 comp=$2 exe=$out/$1${suffix:-}
    shift 2
    echo "== build $name ($comp $*)"
    if ! "$comp" "${flags[@]}" "$@" "${lib_srcs[@]}" "$root/tests/tensor/$name.c" -o "$exe" -lm -lpthread; then
        echo "FAIL: build of $name"
        failed=1
        return 1
    fi
}

# run LABEL EXE [grep pattern the output must contain] -- qemu args...
run() {
    local label=$1 exe=$2 want=$3
    shift 3
    echo "== run $label"
    local log=$out/run.log rc
    (cd "$root" && "$@" "$exe") >"$log" 2>&1
    rc=$?
    cat "$log"
    if [ $rc -ne 0 ]; then
        echo "FAIL: $label (exit $rc)"
        failed=1
    elif [ -n "$want" ] && ! grep -q -- "$want" "$log"; then
        echo "FAIL: $label: output lacks '$want' (the level under test did not run as expected)"
        failed=1
    fi
}

if build test_simd "$cc"; then
    run "test_simd, -cpu max (neon + neon-dotprod)" "$out/test_simd" "neon-dotprod Q4_K" \
        "$qemu" -cpu max
    run "test_simd, -cpu cortex-a53 (neon, no dotprod)" "$out/test_simd" "neon-dotprod: not supported" \
        "$qemu" -cpu cortex-a53
    run "test_simd, NOOK_NO_SIMD=1" "$out/test_simd" "" env NOOK_NO_SIMD=1 "$qemu" -cpu max
fi
if build test_quants "$cc"; then
    run "test_quants, -cpu max" "$out/test_quants" "" "$qemu" -cpu max
fi

if [ "$clang" != none ] && command -v "$clang" >/dev/null 2>&1; then
    if "$clang" --target=aarch64-linux-gnu -x c -c /dev/null -o "$out/probe.o" >/dev/null 2>&1; then
        suffix=_clang
        if build test_simd "$clang" --target=aarch64-linux-gnu -march=armv8.2-a+dotprod; then
            run "test_simd (clang, -march=armv8.2-a+dotprod), -cpu max" "$out/test_simd_clang" \
                "neon-dotprod Q4_K" "$qemu" -cpu max
        fi
        unset suffix
    else
        echo "== clang cannot target aarch64 here: clang run skipped"
    fi
fi

if [ $failed -ne 0 ]; then
    echo "run-qemu.sh: FAILED"
    exit 1
fi
echo "run-qemu.sh: all AArch64 runs passed"

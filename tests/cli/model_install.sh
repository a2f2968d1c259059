#!/usr/bin/env bash
# model_install.sh: `make install` into a scratch root (issue 15 item 4). The installed
# nook runs stories260K with no LD_LIBRARY_PATH and a bare environment, and prints the same
# text as the build's binary; a C program built against the installed libnook through
# pkg-config (static and shared) runs stories260K too; the man page has every command; the
# completions load and complete; the systemd unit runs the installed `nook serve`.
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
S="$MODELS/stories260K.gguf"
: "${NOOK_BUILD:?set NOOK_BUILD to the build directory}"
if grep -q '^NOOK_SANITIZE:BOOL=ON' "$NOOK_BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "SKIP: a sanitizer build is not for installing"; exit 77
fi
root="$TMP/root"
prefix=/opt/nook-test
DESTDIR="$root" cmake --install "$NOOK_BUILD" --prefix "$prefix" >"$TMP/install.log" 2>&1
check_eq "install exit" "$?" 0
P="$root$prefix"
for f in bin/nook lib/libnook.a lib/libnook.so include/nook.h lib/pkgconfig/nook.pc share/man/man1/nook.1 \
         share/bash-completion/completions/nook share/zsh/site-functions/_nook lib/systemd/user/nook.service; do
    [ -e "$P/$f" ] && ok || bad "not installed: $f"
done

want=$("$NOOK" run "$S" "Once upon a time" --raw --temperature 0 -n 12 2>/dev/null)
run_cmd env -i "$P/bin/nook" run "$S" "Once upon a time" --raw --temperature 0 -n 12
check_eq "installed nook runs" "$rc" 0
check_eq "installed nook output" "$out" "$want"
run_cmd env -i "$P/bin/nook" --version
check_contains "installed --version" "$out" "nook version 0.1.0"
ldd "$P/bin/nook" | grep -q "libnook" && bad "nook links libnook.so (must run without LD_LIBRARY_PATH)" || ok

# a C program against the installed library, through pkg-config
pc() { PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --define-variable=prefix="$P" "$@" nook; }
check_eq "pkg-config version" "$(pc --modversion)" "0.1.0"
# static libnook with the system libraries shared: libnook.a, then what nook.pc requires
deps=$(pc --print-requires-private | awk '{print $1}')
cc -o "$TMP/embed_static" tests/data/install/embed.c $(pc --cflags) "$P/lib/libnook.a" \
   $(pkg-config --libs $deps) -lpthread -lm 2>"$TMP/cc.log"
check_eq "embed (static) builds" "$?" 0
run_cmd env -i "$TMP/embed_static" "$S" "Once upon a time" 12
check_eq "embed (static) runs" "$rc" 0
[ -n "$out" ] && ok || bad "embed (static) printed nothing: $err"
static_out="$out"
cc -o "$TMP/embed_shared" tests/data/install/embed.c $(pc --cflags --libs) 2>>"$TMP/cc.log"
check_eq "embed (shared) builds" "$?" 0
run_cmd env -i LD_LIBRARY_PATH="$P/lib" "$TMP/embed_shared" "$S" "Once upon a time" 12
check_eq "embed (shared) runs" "$rc" 0
check_eq "static and shared agree" "$out" "$static_out"
ldd "$TMP/embed_shared" | grep -q "$P/lib/libnook.so" 2>/dev/null || LD_LIBRARY_PATH="$P/lib" ldd "$TMP/embed_shared" | grep -q "libnook.so.0" && ok || bad "embed_shared does not use libnook.so"
# libnook.so exports the public API only
n_priv=$(nm -D --defined-only "$P/lib/libnook.so" | awk '{print $3}' | grep -vc '^nook_')
check_eq "libnook.so exports only nook_*" "$n_priv" 0

# man page: every command of --help has a section
for v in $("$NOOK" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' | grep -v '^help$'); do
    u=$(echo "$v" | tr a-z A-Z)
    grep -q "^.SH \"NOOK $u\"" "$P/share/man/man1/nook.1" && ok || bad "man page lacks $v"
done
if command -v man >/dev/null; then
    run_cmd man -l "$P/share/man/man1/nook.1"
    check_contains "man renders" "$out" "NAME"
fi
# completion: bash completes verbs and a verb's options from the installed binary
comp=$(PATH="$P/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(nook qu); COMP_CWORD=1; _nook; echo "${COMPREPLY[*]}"
        COMP_WORDS=(nook run --tem); COMP_CWORD=2; _nook; echo "${COMPREPLY[*]}"' _ "$P/share/bash-completion/completions/nook" 2>&1)
check_contains "bash completes verbs" "$comp" "quantize"
check_contains "bash completes options" "$comp" "--temperature"
if command -v zsh >/dev/null; then zsh -n "$P/share/zsh/site-functions/_nook" && ok || bad "zsh completion syntax"; fi
check_contains "unit runs nook serve" "$(cat "$P/lib/systemd/user/nook.service")" "ExecStart=$prefix/bin/nook serve"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify --user "$P/lib/systemd/user/nook.service" >/dev/null 2>"$TMP/unit.log" || true
fi
finish

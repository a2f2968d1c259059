#!/usr/bin/env bash
# model_deb.sh: the Debian package (issue 15 item 4). packaging/deb/build.sh makes
# nook_VERSION_ARCH.deb from the build; its control data names the shared-library
# dependencies; it installs into a scratch dpkg root (dpkg --root, its own database),
# the installed nook runs stories260K, and `dpkg --purge` leaves no file behind.
# (.ci/run also installs it into the CI machine itself with dpkg -i and removes it.)
. "$(dirname "$0")/lib.bash"
need_model stories260K.gguf
S="$MODELS/stories260K.gguf"
: "${NOOK_BUILD:?set NOOK_BUILD to the build directory}"
command -v dpkg-deb >/dev/null || { echo "SKIP: no dpkg-deb"; exit 77; }
if grep -q '^NOOK_SANITIZE:BOOL=ON' "$NOOK_BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "SKIP: a sanitizer build is not for packaging"; exit 77
fi
deb=$(packaging/deb/build.sh "$NOOK_BUILD" "$TMP" 2>"$TMP/build.log")
check_eq "build.sh exit" "$?" 0
[ -f "$deb" ] && ok || { bad "no .deb: $(cat "$TMP/build.log")"; finish; exit 1; }
info=$(dpkg-deb -I "$deb")
check_contains "package name" "$info" "Package: nook"
check_contains "version" "$info" "Version: 0.1.0"
check_contains "depends on libc" "$info" "libc6"
check_contains "depends on jansson" "$info" "libjansson"
list=$(dpkg-deb -c "$deb")
for f in ./usr/bin/nook ./usr/lib/libnook.a ./usr/include/nook.h ./usr/lib/pkgconfig/nook.pc \
         ./usr/share/man/man1/nook.1.gz ./usr/lib/systemd/user/nook.service; do
    check_contains "package has $f" "$list" "$f"
done
case "$list" in *"root/root"*) ok ;; *) bad "files not owned by root" ;; esac

# install into a scratch root with its own dpkg database
R="$TMP/dpkgroot"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
: >"$R/var/lib/dpkg/status"
dp() { dpkg --root="$R" --force-depends --force-not-root --force-script-chrootless --log=/dev/null "$@"; }
dp -i "$deb" >"$TMP/dpkg.log" 2>&1
check_eq "dpkg -i exit" "$?" 0
run_cmd env -i "$R/usr/bin/nook" run "$S" "Once upon a time" --raw --temperature 0 -n 8
check_eq "packaged nook runs" "$rc" 0
check_eq "packaged nook output" "$out" "$("$NOOK" run "$S" "Once upon a time" --raw --temperature 0 -n 8 2>/dev/null)"
check_contains "unit path" "$(cat "$R/usr/lib/systemd/user/nook.service")" "ExecStart=/usr/bin/nook serve"
check_eq "dpkg status" "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status}' nook)" "install ok installed"
dp --purge nook >>"$TMP/dpkg.log" 2>&1
check_eq "dpkg --purge exit" "$?" 0
left=$(find "$R/usr" -type f 2>/dev/null | head -5)
check_eq "nothing left after purge" "$left" ""
finish

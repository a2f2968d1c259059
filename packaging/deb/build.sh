#!/usr/bin/env bash
# build.sh [BUILD_DIR] [OUT_DIR]: the Debian package nook_VERSION_ARCH.deb from a built tree
# (issue 15 item 4). It installs the tree into a staging root with prefix /usr (the same
# `cmake --install` as `make install`), computes Depends with dpkg-shlibdeps from the
# binaries' own shared-library needs, and packs it with dpkg-deb. Prints the .deb's path.
#   make && packaging/deb/build.sh build .     (or: make deb)
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$src/build}" && pwd)"
out="$(cd "${2:-.}" && pwd)"
[ -x "$build/nook" ] || { echo "build.sh: $build/nook is not built (run make)" >&2; exit 1; }
version=$("$build/nook" --version | awk '{print $3}')
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
DESTDIR="$root" cmake --install "$build" --prefix /usr >/dev/null
strip --strip-unneeded "$root/usr/lib/libnook.so".* 2>/dev/null || true
strip "$root/usr/bin/nook"
gzip -9n "$root/usr/share/man/man1/nook.1"

# Depends from what the binaries link to (dpkg-shlibdeps wants a debian/control to read)
mkdir -p "$work/src/debian"
printf 'Source: nook\n\nPackage: nook\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/nook" "$root"/usr/lib/libnook.so.*.*.* 2>/dev/null |
         sed -n 's/^shlibs:Depends=//p')

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOT
Package: nook
Version: $version
Architecture: $arch
Maintainer: nook developers <nook@localhost>
Depends: $shlibs
Section: utils
Priority: optional
Installed-Size: $(du -sk "$root/usr" | cut -f1)
Homepage: https://localhost/nook
Description: local-first language-model runtime
 nook runs GGUF language models on the local machine with llama.cpp's numerics,
 an Ollama-compatible command line and server, and a C library (libnook, nook.h,
 pkg-config nook) for programs that embed it.
EOT
deb="$out/nook_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"

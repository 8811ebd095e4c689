#!/usr/bin/env bash
# Rebuilds prebuilds/ebpf-linux-x64/: the eBPF driver's two parts, made once here and committed, so
# that `npm ci && npm run build` gives the eBPF driver on a host with no clang, bpftool or
# libbpf-dev (the README's first command):
#
#   minewatch.bpf.o       the CO-RE object (clang -target bpf; it relocates itself on any kernel
#                         with BTF, so one object serves every host)
#   minewatch_ebpf.node   the loader addon with libbpf linked in statically. Debian's libbpf.a is
#                         not position-independent, so libbpf is compiled here from its Debian
#                         source package with -fPIC. libelf.so.1 and libz.so.1 stay dynamic: every
#                         Debian and Ubuntu image has them (libelf's static archive is not PIC either).
#   SOURCES.sha256        the sources both were built from. The agent uses the prebuilt parts only
#                         while native/ebpf/ still hashes to this, and test/ebpf-prebuilt checks it,
#                         so a change to the C that is not followed by this script fails CI.
#
# Run after any change to native/ebpf/{minewatch.bpf.c,minewatch.h,addon.c}, as root on x86-64
# with clang, bpftool, libelf-dev, zlib1g-dev, Node's headers (/usr/include/node) and either
#   LIBBPF_SRC=/path/to/libbpf-source   or deb-src lines in APT's sources (apt-get source libbpf).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/prebuilds/ebpf-linux-x64
SRC=$ROOT/native/ebpf
[ "$(uname -m)" = x86_64 ] || { echo "prebuild-ebpf: the prebuilt parts are for x86-64 (this is $(uname -m))" >&2; exit 1; }
for tool in clang bpftool gcc make; do
  command -v "$tool" >/dev/null || { echo "prebuild-ebpf: $tool is missing (apt-get install clang bpftool gcc make)" >&2; exit 1; }
done
[ -f /usr/include/node/node_api.h ] || { echo "prebuild-ebpf: Node's headers are missing (/usr/include/node/node_api.h)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${LIBBPF_SRC:-}" ]; then
  echo "prebuild-ebpf: fetching libbpf's Debian source package"
  (cd "$work" && apt-get source --download-only libbpf >/dev/null 2>&1) || {
    echo "prebuild-ebpf: apt-get source libbpf failed: add deb-src lines to APT's sources, or set LIBBPF_SRC" >&2
    exit 1
  }
  tar -xzf "$work"/libbpf_*.orig.tar.gz -C "$work"
  LIBBPF_SRC=$(find "$work" -maxdepth 1 -type d -name 'libbpf-*' | head -n 1)
fi
[ -f "$LIBBPF_SRC/src/libbpf.c" ] || { echo "prebuild-ebpf: $LIBBPF_SRC is not a libbpf source tree (no src/libbpf.c)" >&2; exit 1; }

echo "prebuild-ebpf: libbpf $(grep -m1 -o 'LIBBPF_[0-9.]*' "$LIBBPF_SRC/src/libbpf.map" | tail -n1) from $LIBBPF_SRC, position-independent"
mkdir -p "$work/obj" "$work/inst"
make -s -C "$LIBBPF_SRC/src" -j"$(nproc)" BUILD_STATIC_ONLY=1 OBJDIR="$work/obj" EXTRA_CFLAGS='-fPIC -O2' >/dev/null
make -s -C "$LIBBPF_SRC/src" install_headers DESTDIR="$work/inst" PREFIX=/usr >/dev/null
INC=$work/inst/usr/include

echo "prebuild-ebpf: the CO-RE object"
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$work/vmlinux.h"
mkdir -p "$OUT"
clang -target bpf -D__TARGET_ARCH_x86 -g -O2 -Wall -Wno-unused-function \
  -I"$work" -I"$SRC" -I"$INC" -c "$SRC/minewatch.bpf.c" -o "$work/minewatch.bpf.o"
# The object carries no host paths worth keeping: strip DWARF but keep BTF (CO-RE needs it).
llvm-strip -g "$work/minewatch.bpf.o" 2>/dev/null || true

echo "prebuild-ebpf: the loader addon, libbpf linked statically"
gcc -std=gnu11 -O2 -fPIC -shared -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
  -I/usr/include/node -I"$INC" -DNODE_GYP_MODULE_NAME=minewatch_ebpf \
  "$SRC/addon.c" "$work/obj/libbpf.a" -lelf -lz -lpthread \
  -Wl,--exclude-libs,ALL -Wl,--as-needed -s -o "$work/minewatch_ebpf.node"
if ldd "$work/minewatch_ebpf.node" | grep -q libbpf; then
  echo "prebuild-ebpf: the addon still links libbpf.so" >&2
  exit 1
fi

cp "$work/minewatch.bpf.o" "$work/minewatch_ebpf.node" "$OUT/"
(cd "$ROOT" && sha256sum native/ebpf/minewatch.bpf.c native/ebpf/minewatch.h native/ebpf/addon.c) >"$OUT/SOURCES.sha256"
cat >"$OUT/NOTICE" <<EOF
minewatch_ebpf.node contains libbpf ($(basename "$LIBBPF_SRC")), linked statically, used under its
BSD-2-Clause licence (libbpf is dual-licensed LGPL-2.1 OR BSD-2-Clause). It needs libelf.so.1,
libz.so.1 and glibc at run time. Rebuild both files with scripts/prebuild-ebpf.sh.
EOF
echo "prebuild-ebpf: wrote $OUT"
ls -l "$OUT"

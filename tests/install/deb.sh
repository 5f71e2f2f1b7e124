#!/usr/bin/env bash
# The Debian package (issue 10): cpack -G DEB in the build tree, then unpacked into a fresh root
# and used from there: the CLI runs a program under the packaged interposer, a program preloads
# it by its installed path, the man pages and the completion are in place, and dpkg's metadata
# names the shared libraries it needs. Usage: deb.sh BUILD_DIR SRC_DIR. Exit 77 (skipped) when
# cpack or dpkg-deb is missing.
set -euo pipefail
build=$1 src=$2
for tool in cpack dpkg-deb python3; do
  command -v "$tool" >/dev/null || { echo "package_deb: SKIP: no $tool here"; exit 77; }
done
tmp=$(mktemp -d /var/tmp/mmvec-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
(cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) ||
  { cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/out/mmvec_*.deb)
echo "package_deb: built $(basename "$deb")"
dpkg-deb -I "$deb" >"$tmp/info"
grep -q '^ Package: mmvec$' "$tmp/info"
grep -Eq '^ Depends: .*libuuid1' "$tmp/info" || { cat "$tmp/info"; echo "no libuuid1 in Depends"; exit 1; }
root="$tmp/root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/mmvec usr/include/mmvec.h usr/lib/pkgconfig/mmvec.pc \
         usr/lib/cmake/mmvec/mmvecConfig.cmake usr/share/man/man1/mmvec.1 \
         usr/share/man/man7/mmvec.7 usr/share/bash-completion/completions/mmvec; do
  [ -e "$root/$f" ] || { echo "package_deb: $f missing"; dpkg-deb -c "$deb"; exit 1; }
done
preload=$(ls "$root"/usr/lib/libmmvec_preload.so.[0-9]* | head -n 1)
[ -e "$preload" ] || { echo "package_deb: no libmmvec_preload.so in the package"; exit 1; }
# The man pages name every variable the library reads.
for v in $("$root/usr/bin/mmvec" config | sed -n 's/^\(MMVEC_[A-Z_]*\)=.*/\1/p'); do
  grep -q "^\.B $v\$" "$root/usr/share/man/man7/mmvec.7" || { echo "mmvec(7) lacks $v"; exit 1; }
done
man -l "$root/usr/share/man/man1/mmvec.1" >/dev/null 2>&1 || command -v man >/dev/null ||
  true
# The CLI from the package finds the packaged interposer ($ORIGIN/../lib) and blocks are made.
seg="$tmp/seg"
"$root/usr/bin/mmvec" run -t 1M -d "$seg" --stats -- \
  python3 -c 'b = bytearray(16 << 20); b[-1] = 7; assert b[-1] == 7' 2>"$tmp/stats"
grep -Eq 'blocks made +[1-9]' "$tmp/stats" || { cat "$tmp/stats"; echo "no block made"; exit 1; }
# A program preloading the installed path: a 16 MiB bytearray is mmvec's.
LD_PRELOAD="$preload" MMVEC_DIR="$seg" MMVEC_THRESHOLD=1M python3 -c '
import ctypes
b = bytearray(16 << 20)
lib = ctypes.CDLL(None)
lib.mmv_owns.restype = ctypes.c_int
lib.mmv_owns.argtypes = [ctypes.c_void_p]
addr = ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))
assert lib.mmv_owns(addr), "the bytearray is not an mmvec block"
'
# The completion loads and completes the commands.
bash -c "source '$root/usr/share/bash-completion/completions/mmvec'
COMP_WORDS=(mmvec co); COMP_CWORD=1; _mmvec; [ \"\${COMPREPLY[*]}\" = config ]"
echo "package_deb: $(basename "$deb") unpacked into a fresh root: the CLI, the preload by its installed path, man pages, completion"

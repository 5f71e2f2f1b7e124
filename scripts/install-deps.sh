#!/usr/bin/env bash
# Installs, with apt-get, whatever of mmvec's build and test dependencies is missing.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds the competitors)
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libjemalloc-dev uuid-dev libcriterion-dev
      libclang-rt-14-dev python3 perl xz-utils sqlite3 coreutils)
pkgs+=(gnuplot-nox) # mmvec plot draws with it (and the benchmarks' figures)
pkgs+=(python3.11 libpython3.11-testsuite) # tests/test_cpython.c: CPython's own tests, preloaded
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(libmimalloc-dev libtcmalloc-minimal4 libmemkind-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

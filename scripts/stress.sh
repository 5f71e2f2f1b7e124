#!/usr/bin/env bash
# Runs the allocator stress program (tests/helpers/stress.c) under the interposer, bounded by an
# operation count and a time budget, then checks that no file was left behind.
#
# Usage: scripts/stress.sh [--seconds N] [--ops N] [--threads N] [--threshold SIZE]
#                          [--max-live SIZE] [--max-size SIZE] [--seed N] [--api] [--no-build]
#   defaults: 120 s, 1000000 operations, 8 threads, threshold 64K, 1G live, sizes up to 64M.
#   An hour:  scripts/stress.sh --seconds 3600 --ops 100000000000
#   --api calls mmv_malloc & co directly (no preload), e.g. in a sanitizer build.
# Environment: MMVEC_BUILD (build directory, default build-stress in the source tree),
#   MMVEC_STRESS_DIR (where the segment directory is made, default /var/tmp: a disk, not tmpfs).
# Prints the program's summary line and "stress: leaked_files=N"; exit 0 only when corruptions=0,
# failures=0 and no file remains.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${MMVEC_BUILD:-$src/build-stress}
seconds=120 ops=1000000 threads=8 threshold=64K max_live=1G max_size=64M seed=1 api=0 do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --ops) ops=$2; shift ;;
    --threads) threads=$2; shift ;;
    --threshold) threshold=$2; shift ;;
    --max-live) max_live=$2; shift ;;
    --max-size) max_size=$2; shift ;;
    --seed) seed=$2; shift ;;
    --api) api=1 ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "stress.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ $do_build -eq 1 ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMVEC_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build" -j2 --target helper_stress mmvec_preload >/dev/null
fi
prog=$build/tests/helpers/stress
preload=$(ls "$build"/libmmvec_preload.so 2>/dev/null || true)
[ -x "$prog" ] || { echo "stress.sh: $prog not built" >&2; exit 2; }

base=${MMVEC_STRESS_DIR:-/var/tmp}
mkdir -p "$base"
work=$(mktemp -d "$base/mmvec-stress-XXXXXX")
trap 'rm -rf "$work"' EXIT
args=(--threads "$threads" --ops "$ops" --seconds "$seconds" --max-live "$max_live"
      --max-size "$max_size" --seed "$seed")
envs=(MMVEC_DIR="$work/seg" MMVEC_THRESHOLD="$threshold" MMVEC_STATS=1)
if [ $api -eq 1 ]; then
  args+=(--api)
else
  [ -n "$preload" ] || { echo "stress.sh: libmmvec_preload.so not built" >&2; exit 2; }
  envs+=(LD_PRELOAD="$preload")
fi

echo "stress: env ${envs[*]} $prog ${args[*]}"
rc=0
env "${envs[@]}" "$prog" "${args[@]}" >"$work/out" 2>"$work/err" || rc=$?
cat "$work/out"
grep -vE '^mmvec-stress:' "$work/err" | grep -E 'blocks made|fallback|cache hits|warning|fatal' || true
grep -E '^mmvec-stress:' "$work/err" | head -20 || true
# Everything under the segment directory: segment files, locks, folders of this process.
leaked=$(find "$work/seg" -mindepth 1 -not -type d 2>/dev/null | wc -l)
echo "stress: exit=$rc leaked_files=$leaked"
[ "$rc" -eq 0 ] && [ "$leaked" -eq 0 ]

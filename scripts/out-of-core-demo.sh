#!/usr/bin/env bash
# The main job of mmvec, in one command: a program whose heap is 4x its memory limit is killed
# without mmvec and finishes, every byte checked, with it. Nothing in the program changes.
#
#   scripts/out-of-core-demo.sh
#
# The program (tests/helpers/heapfill.c) mallocs 2 GiB in 64 MiB blocks, writes a pseudo-random
# stream into all of it, then reads it all back, compares and checksums it. It runs twice in a
# 512 MiB memory limit (no swap) made by `mmvec run --memory 512M` (a memory cgroup of its own,
# v1 or v2, or systemd-run): plainly (--without-mmvec), then under mmvec with `-t 1M`.
# Needs root (or a delegated cgroup, or systemd-run --user); builds what it needs.
#
# Environment (all optional):
#   MMVEC_BUILD_DIR   build directory (default: <repo>/build; configured and built if needed)
#   DEMO_HEAP_MIB     heap to fill, MiB (default 2048)
#   DEMO_LIMIT_MIB    the memory limit, MiB (default 512)
#   DEMO_BLOCK_MIB    size of each malloc, MiB (default 64)
#   DEMO_THRESHOLD    mmvec's threshold (default 1M)
#   DEMO_SEG_DIR      where the block files go (default: a new directory under /var/tmp);
#                     must be a disk, not a tmpfs (a tmpfs is RAM, charged to the cgroup)
# Exit status: 0 when the plain run is killed and the mmvec run finishes, 1 otherwise,
# 2 when the demo cannot run here (it says why).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MMVEC_BUILD_DIR:-$repo/build}
heap=${DEMO_HEAP_MIB:-2048}
limit=${DEMO_LIMIT_MIB:-512}
block=${DEMO_BLOCK_MIB:-64}
threshold=${DEMO_THRESHOLD:-1M}

seg_dir=""
made_seg_dir=0
work=""

say() { printf '%s\n' "$*"; }
cannot() { say "out-of-core demo: cannot run here: $*" >&2; exit 2; }

cleanup() {
  if [ "$made_seg_dir" = 1 ] && [ -n "$seg_dir" ]; then rm -rf -- "$seg_dir"; fi
  if [ -n "$work" ]; then rm -rf -- "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------------------------

build_if_needed() {
  local log="$work/build.log"
  bash "$repo/scripts/install-deps.sh" || cannot "could not install the build dependencies"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    say "configuring $build ..."
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$log" 2>&1 ||
      { cat "$log" >&2; exit 1; }
  fi
  # Incremental: a no-op when everything is up to date.
  cmake --build "$build" -j"$(nproc)" --target mmvec_cli mmvec_preload helper_heapfill \
    >"$log" 2>&1 || { tail -n 30 "$log" >&2; say "out-of-core demo: build failed" >&2; exit 1; }
  mmvec="$build/mmvec"
  heapfill="$build/tests/helpers/heapfill"
  if [ ! -x "$mmvec" ] || [ ! -x "$heapfill" ]; then
    cannot "no mmvec or tests/helpers/heapfill in $build (configured with MMVEC_BUILD_TESTS=OFF?)"
  fi
}

# ---- checks ---------------------------------------------------------------------------------

check_seg_dir() {
  if [ -n "${DEMO_SEG_DIR:-}" ]; then
    seg_dir=$DEMO_SEG_DIR
    mkdir -p -- "$seg_dir"
  else
    seg_dir=$(mktemp -d /var/tmp/mmvec-demo.XXXXXX)
    made_seg_dir=1
  fi
  local fs
  fs=$(stat -f -c %T -- "$seg_dir")
  [ "$fs" != tmpfs ] ||
    cannot "$seg_dir is a tmpfs (RAM, charged to the cgroup): set DEMO_SEG_DIR to a disk"
  local free_mib
  free_mib=$(( $(stat -f -c '%a * %S' -- "$seg_dir") / 1048576 ))
  [ "$free_mib" -ge $((heap + 256)) ] ||
    cannot "only $free_mib MiB free in $seg_dir; the block files need $heap MiB"
  seg_fs=$fs
}

# ---- one run ----------------------------------------------------------------------------------

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f s", ns / 1e9 }'; }

# run NAME COMMAND...: runs the command under `mmvec run --memory`, which makes a memory cgroup
# of its own (v1 or v2) or asks systemd-run, and sets r_status, r_time, r_peak, r_ooms, r_out,
# r_err.
run_limited() {
  local name=$1 t0 t1 line
  shift
  r_out="$work/$name.out"
  r_err="$work/$name.err"
  t0=$(now_ns)
  set +e
  # In a subshell whose stderr is muted, which waits itself (hence the explicit exit): bash's
  # own "Killed" notice would otherwise land in the middle of the report.
  (
    "$mmvec" run --memory "${limit}M" --stats "$@" >"$r_out" 2>"$r_err"
    exit $?
  ) 2>/dev/null
  r_status=$?
  set -e
  t1=$(now_ns)
  r_time=$(secs $((t1 - t0)))
  line=$(grep '^mmvec run: peak memory' "$r_err" | tail -n 1 || true)
  r_peak=$(sed -n 's/^mmvec run: peak memory \([0-9]*\) MiB.*/\1 MiB/p' <<<"$line")
  r_peak=${r_peak:-?}
  r_ooms=$(sed -n 's/.*limit, \([0-9]*\) OOM kill.*/\1/p' <<<"$line")
  if grep -q '^mmvec: cannot set a memory limit here' "$r_err"; then
    cannot "$(grep '^mmvec: cannot set a memory limit here' "$r_err")"
  fi
}

describe() { # a one-line verdict of the last run
  if [ "$r_status" = 0 ]; then
    local line checksum
    line=$(grep '^heapfill:' "$r_out" || true)
    checksum=$(sed -n 's/.*checksum \([0-9a-f]*\).*/\1/p' "$r_out")
    r_verdict=finished
    r_checksum=${checksum:--}
    say "      -> FINISHED in $r_time; ${line#heapfill: }"
  elif [ "$r_status" -gt 128 ]; then
    local sig last
    sig=$(kill -l $((r_status - 128)) 2>/dev/null || echo $((r_status - 128)))
    last=$(grep 'written' "$r_err" | tail -n 1 | sed 's/^heapfill: written //')
    r_verdict=killed
    r_checksum=-
    say "      -> KILLED by SIG$sig after $r_time (${r_ooms:-?} OOM kill(s) in its memory limit);" \
      "it had written ${last:-0 MiB} of $heap MiB"
  else
    r_verdict="failed ($r_status)"
    r_checksum=-
    say "      -> FAILED with exit status $r_status after $r_time:"
    sed 's/^/         /' "$r_err" | tail -n 5
  fi
  say "         peak memory: $r_peak (limit $limit MiB)"
}

# ---- main -----------------------------------------------------------------------------------

main() {
  work=$(mktemp -d /tmp/mmvec-demo-out.XXXXXX)
  [ "$(id -u)" = 0 ] || say "(not root: mmvec run --memory needs a delegated cgroup or systemd-run --user)"
  check_seg_dir
  build_if_needed
  say ""
  say "mmvec out-of-core demo"
  say "  program: heapfill $heap $block -- mallocs $heap MiB in $block MiB blocks, writes all"
  say "           of it, then reads it all back, compares every word and checksums it"
  say "  limit:   $limit MiB of memory, no swap: mmvec run --memory ${limit}M (a memory cgroup of"
  say "           its own, v1 or v2, or systemd-run)"
  say "  files:   $seg_dir ($seg_fs)"
  say ""
  say "[1/2] without mmvec:  mmvec run --memory ${limit}M --without-mmvec -- heapfill $heap $block"
  run_limited plain --without-mmvec -- "$heapfill" "$heap" "$block"
  describe
  local v1=$r_verdict t1=$r_time p1=$r_peak c1=$r_checksum
  say ""
  say "[2/2] with mmvec:     mmvec run --memory ${limit}M -t $threshold -d $seg_dir --stats -- heapfill $heap $block"
  run_limited mmvec -t "$threshold" -d "$seg_dir" -- "$heapfill" "$heap" "$block"
  describe
  if grep -q '^mmvec stats' "$r_err"; then
    sed -n '/^mmvec stats/,$p' "$r_err" | sed 's/^/         /'
  fi
  local left
  left=$(find "$seg_dir" -name '*.seg' | wc -l)
  say ""
  say "Summary"
  printf '  %-14s %-10s %-9s %-14s %s\n' run result time "peak memory" checksum
  printf '  %-14s %-10s %-9s %-14s %s\n' "without mmvec" "$v1" "$t1" "$p1" "$c1"
  printf '  %-14s %-10s %-9s %-14s %s\n' "with mmvec" "$r_verdict" "$r_time" "$r_peak" "$r_checksum"
  say "  block files left in $seg_dir: $left"
  if [ "$v1" = killed ] && [ "$r_verdict" = finished ] && [ "$left" = 0 ]; then
    say "  => the same unmodified program, $heap MiB of heap in $limit MiB of memory: killed" \
      "without mmvec, finished with it."
    return 0
  fi
  say "  => UNEXPECTED: see above." >&2
  return 1
}

main "$@"

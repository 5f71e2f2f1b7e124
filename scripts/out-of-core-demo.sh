#!/usr/bin/env bash
# The main job of mmvec, in one command: a program whose heap is 4x its memory limit is killed
# without mmvec and finishes, every byte checked, with it. Nothing in the program changes.
#
#   scripts/out-of-core-demo.sh
#
# The program (tests/helpers/heapfill.c) mallocs 2 GiB in 64 MiB blocks, writes a pseudo-random
# stream into all of it, then reads it all back, compares and checksums it. It runs twice in a
# fresh 512 MiB memory cgroup (no swap): plainly, then under `mmvec run -t 1M`.
# Needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory; builds what it needs.
#
# Environment (all optional):
#   MMVEC_BUILD_DIR   build directory (default: <repo>/build; configured and built if needed)
#   DEMO_HEAP_MIB     heap to fill, MiB (default 2048)
#   DEMO_LIMIT_MIB    memory limit of the cgroup, MiB (default 512)
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
memcg_root=/sys/fs/cgroup/memory

cgroups=()
seg_dir=""
made_seg_dir=0
work=""

say() { printf '%s\n' "$*"; }
cannot() { say "out-of-core demo: cannot run here: $*" >&2; exit 2; }

cleanup() {
  local cg
  for cg in "${cgroups[@]}"; do remove_cgroup "$cg"; done
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

check_cgroup() {
  [ -f "$memcg_root/memory.limit_in_bytes" ] ||
    cannot "no cgroup v1 memory controller at $memcg_root"
  [ "$(id -u)" = 0 ] || cannot "creating a memory cgroup needs root"
  # Our groups nest inside the one we run in, so the caller's own limits still apply.
  local own
  own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
  memcg_parent="$memcg_root${own%/}"
  [ -w "$memcg_parent" ] || cannot "$memcg_parent is not writable"
}

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

# ---- cgroups ------------------------------------------------------------------------------------

make_cgroup() { # NAME: sets cg_path to a new group limited to $limit MiB, no swap
  local cg="$memcg_parent/mmvec-demo-$$-$1"
  mkdir "$cg" || cannot "cannot create the cgroup $cg"
  cgroups+=("$cg")
  echo $((limit << 20)) >"$cg/memory.limit_in_bytes"
  # Where swap is accounted, forbid it too: over the limit must mean killed, not swapped.
  if [ -f "$cg/memory.memsw.limit_in_bytes" ]; then
    echo $((limit << 20)) >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
  fi
  cg_path=$cg
}

remove_cgroup() { # kills what is left in it (only ours can be), then removes it
  local cg=$1 _ pid
  for _ in $(seq 50); do
    [ -d "$cg" ] || return 0
    rmdir "$cg" 2>/dev/null && return 0
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$cg/cgroup.procs"
    sleep 0.1
  done
  say "warning: could not remove $cg" >&2
}

# ---- one run ----------------------------------------------------------------------------------

now_ns() { date +%s%N; }
mib() { awk -v b="$1" 'BEGIN { printf "%d MiB", b / 1048576 }'; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f s", ns / 1e9 }'; }

# run NAME COMMAND...: runs the command inside a new cgroup (the shell joins it, then execs),
# and sets r_status, r_time, r_peak, r_ooms, r_out, r_err.
run_in_cgroup() {
  local name=$1 cg t0 t1
  shift
  make_cgroup "$name"
  cg=$cg_path
  r_out="$work/$name.out"
  r_err="$work/$name.err"
  t0=$(now_ns)
  set +e
  # In a subshell whose stderr is muted, which waits itself (hence the explicit exit): bash's
  # own "Killed" notice would otherwise land in the middle of the report.
  (
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@" >"$r_out" 2>"$r_err"
    exit $?
  ) 2>/dev/null
  r_status=$?
  set -e
  t1=$(now_ns)
  r_time=$(secs $((t1 - t0)))
  r_peak=$(mib "$(cat "$cg/memory.max_usage_in_bytes")")
  r_ooms=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control")
  remove_cgroup "$cg"
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
    say "      -> KILLED by SIG$sig after $r_time (${r_ooms:-?} OOM kill(s) in its cgroup);" \
      "it had written ${last:-0 MiB} of $heap MiB"
  else
    r_verdict="failed ($r_status)"
    r_checksum=-
    say "      -> FAILED with exit status $r_status after $r_time:"
    sed 's/^/         /' "$r_err" | tail -n 5
  fi
  say "         peak memory charged to the cgroup: $r_peak (limit $limit MiB)"
}

# ---- main -----------------------------------------------------------------------------------

main() {
  work=$(mktemp -d /tmp/mmvec-demo-out.XXXXXX)
  check_cgroup
  check_seg_dir
  build_if_needed
  say ""
  say "mmvec out-of-core demo"
  say "  program: heapfill $heap $block -- mallocs $heap MiB in $block MiB blocks, writes all"
  say "           of it, then reads it all back, compares every word and checksums it"
  say "  limit:   a $limit MiB memory cgroup, no swap"
  say "  files:   $seg_dir ($seg_fs)"
  say ""
  say "[1/2] without mmvec:  heapfill $heap $block"
  run_in_cgroup plain "$heapfill" "$heap" "$block"
  describe
  local v1=$r_verdict t1=$r_time p1=$r_peak c1=$r_checksum
  say ""
  say "[2/2] with mmvec:     mmvec run -t $threshold -d $seg_dir --stats -- heapfill $heap $block"
  run_in_cgroup mmvec "$mmvec" run -t "$threshold" -d "$seg_dir" --stats -- \
    "$heapfill" "$heap" "$block"
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

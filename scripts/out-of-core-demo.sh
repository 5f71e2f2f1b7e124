#!/usr/bin/env bash
# The main job of mmvec, in one command: a program whose heap is 4x its memory limit is killed
# without mmvec and finishes, every byte checked, with it. Nothing in the program changes.
#
#   scripts/out-of-core-demo.sh
#
# Two programs, each run twice in a 512 MiB memory limit (no swap) made by `mmvec run --memory
# 512M` (a memory cgroup of its own, v1 or v2, or systemd-run): plainly (--without-mmvec), then
# under mmvec with `-t 1M`:
#   1. tests/helpers/heapfill.c mallocs 2 GiB in 64 MiB blocks, writes a pseudo-random stream
#      into all of it, then reads it all back, compares and checksums it;
#   2. python3, a program users know (tests/helpers/bytearray.py): builds a 2 GiB bytearray by
#      appending 1 MiB chunks (the array grows by realloc: the interposer's realloc path), then
#      reads it all back: sha256 over it, and a sum of one 8-byte word per 4 KiB page through a
#      memoryview. The result expected comes from the same chunks hashed one at a time, in a
#      few MiB, outside the limit.
# Needs root (or a delegated cgroup, or systemd-run --user); builds what it needs.
#
# Environment (all optional):
#   MMVEC_BUILD_DIR   build directory (default: <repo>/build; configured and built if needed)
#   DEMO_HEAP_MIB     heap to fill, MiB (default 2048; the bytearray's size too)
#   DEMO_LIMIT_MIB    the memory limit, MiB (default 512)
#   DEMO_BLOCK_MIB    size of each malloc, MiB (default 64)
#   DEMO_THRESHOLD    mmvec's threshold (default 1M)
#   DEMO_SEG_DIR      where the block files go (default: a new directory under /var/tmp);
#                     must be a disk, not a tmpfs (a tmpfs is RAM, charged to the cgroup)
# Exit status: 0 when both plain runs are killed and both mmvec runs finish with the right
# result, 1 otherwise, 2 when the demo cannot run here (it says why).
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

# ---- python3 ------------------------------------------------------------------------------------

# The interpreter itself, not a launcher: pyenv's python3 is a shell script that would run (and
# have preloaded) a dozen processes before python3 starts. The result expected of the run comes
# from the same chunks, one at a time, outside the limit.
find_python() {
  command -v python3 >/dev/null || cannot "no python3 (apt-get install python3)"
  python=$(python3 -c 'import sys; print(sys.executable)')
  [ -x "$python" ] || cannot "python3 does not say where its executable is"
  pyprog="$repo/tests/helpers/bytearray.py"
  py_expected=$("$python" "$pyprog" expect "$heap") ||
    { say "out-of-core demo: $python $pyprog expect $heap failed" >&2; exit 1; }
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

# describe NAME VERB [EXPECTED]: a one-line verdict of the last run. The program's result line
# on stdout starts with "NAME: ", its progress lines on stderr are "NAME: VERB N MiB"; with
# EXPECTED, it finished right only when its result line is that one. Sets r_verdict and
# r_checksum (the first 16 hex digits of the result's checksum or sha256).
describe() {
  local name=$1 verb=$2 expected=${3:-}
  if [ "$r_status" = 0 ]; then
    local line checksum
    line=$(grep "^$name:" "$r_out" | tail -n 1 || true)
    checksum=$(sed -n 's/.*\(checksum\|sha256\) \([0-9a-f]*\).*/\2/p' <<<"$line")
    r_checksum=${checksum:0:16}
    r_checksum=${r_checksum:--}
    if [ -n "$expected" ] && [ "$line" != "$expected" ]; then
      r_verdict="wrong result"
      say "      -> FINISHED in $r_time, but WRONG: ${line#"$name: "}"
      say "         expected: ${expected#"$name: "}"
    else
      r_verdict=finished
      say "      -> FINISHED in $r_time; ${line#"$name: "}${expected:+ (as expected)}"
    fi
  elif [ "$r_status" -gt 128 ]; then
    local sig last
    sig=$(kill -l $((r_status - 128)) 2>/dev/null || echo $((r_status - 128)))
    last=$(grep "^$name: $verb " "$r_err" | tail -n 1 | sed "s/^$name: $verb //")
    r_verdict=killed
    r_checksum=-
    say "      -> KILLED by SIG$sig after $r_time (${r_ooms:-?} OOM kill(s) in its memory limit);" \
      "it had $verb ${last:-0 MiB} of $heap MiB"
  else
    r_verdict="failed ($r_status)"
    r_checksum=-
    say "      -> FAILED with exit status $r_status after $r_time:"
    sed 's/^/         /' "$r_err" | tail -n 5
  fi
  say "         peak memory: $r_peak (limit $limit MiB)"
}

# The last run's own mmvec stats table, indented: the last one on its stderr (a program that
# runs others prints theirs first).
show_stats() {
  awk '/^mmvec stats/ { n = 1; t[1] = $0; open = 1; next }
       open && /^  / { t[++n] = $0; next }
       { open = 0 }
       END { for (i = 1; i <= n; i++) print "         " t[i] }' "$r_err"
}

row() { # one row of the summary: PROGRAM RUN RESULT TIME PEAK CHECKSUM
  printf '  %-9s %-14s %-13s %-9s %-14s %s\n' "$@"
}

# ---- main -----------------------------------------------------------------------------------

main() {
  work=$(mktemp -d /tmp/mmvec-demo-out.XXXXXX)
  [ "$(id -u)" = 0 ] || say "(not root: mmvec run --memory needs a delegated cgroup or systemd-run --user)"
  check_seg_dir
  build_if_needed
  find_python
  local pyrun="python3 bytearray.py build $heap" py_sha=${py_expected#*sha256 }
  py_sha=${py_sha%%,*}
  say ""
  say "mmvec out-of-core demo"
  say "  program 1: heapfill $heap $block -- mallocs $heap MiB in $block MiB blocks, writes all"
  say "             of it, then reads it all back, compares every word and checksums it"
  say "  program 2: $pyrun -- appends $heap chunks of 1 MiB to a bytearray"
  say "             (realloc), then sha256 over it and a sum of one word per page; expected"
  say "             (the same chunks one at a time): sha256 ${py_sha:0:16}..., page sum ${py_expected##* }"
  say "  limit:     $limit MiB of memory, no swap: mmvec run --memory ${limit}M (a memory cgroup"
  say "             of its own, v1 or v2, or systemd-run)"
  say "  files:     $seg_dir ($seg_fs)"
  say ""
  say "[1/4] without mmvec:  mmvec run --memory ${limit}M --without-mmvec -- heapfill $heap $block"
  run_limited heap-plain --without-mmvec -- "$heapfill" "$heap" "$block"
  describe heapfill written
  local v1=$r_verdict t1=$r_time p1=$r_peak c1=$r_checksum
  say ""
  say "[2/4] with mmvec:     mmvec run --memory ${limit}M -t $threshold -d $seg_dir --stats -- heapfill $heap $block"
  run_limited heap-mmvec -t "$threshold" -d "$seg_dir" -- "$heapfill" "$heap" "$block"
  describe heapfill written
  show_stats
  local v2=$r_verdict t2=$r_time p2=$r_peak c2=$r_checksum
  say ""
  say "[3/4] without mmvec:  mmvec run --memory ${limit}M --without-mmvec -- $pyrun"
  run_limited py-plain --without-mmvec -- "$python" "$pyprog" build "$heap"
  describe python3 appended "$py_expected"
  local v3=$r_verdict t3=$r_time p3=$r_peak c3=$r_checksum
  say ""
  say "[4/4] with mmvec:     mmvec run --memory ${limit}M -t $threshold -d $seg_dir --stats -- $pyrun"
  run_limited py-mmvec -t "$threshold" -d "$seg_dir" -- "$python" "$pyprog" build "$heap"
  describe python3 appended "$py_expected"
  show_stats
  local v4=$r_verdict t4=$r_time p4=$r_peak c4=$r_checksum
  local left
  left=$(find "$seg_dir" -name '*.seg' | wc -l)
  say ""
  say "Summary"
  row program run result time "peak memory" checksum
  row heapfill "without mmvec" "$v1" "$t1" "$p1" "$c1"
  row heapfill "with mmvec" "$v2" "$t2" "$p2" "$c2"
  row python3 "without mmvec" "$v3" "$t3" "$p3" "$c3"
  row python3 "with mmvec" "$v4" "$t4" "$p4" "$c4"
  say "  block files left in $seg_dir: $left"
  if [ "$v1" = killed ] && [ "$v2" = finished ] && [ "$v3" = killed ] && [ "$v4" = finished ] &&
    [ "$left" = 0 ]; then
    say "  => the same unmodified programs, $heap MiB of heap in $limit MiB of memory: killed" \
      "without mmvec, finished with it."
    return 0
  fi
  say "  => UNEXPECTED: see above." >&2
  return 1
}

main "$@"

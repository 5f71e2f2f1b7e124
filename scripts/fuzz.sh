#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a short while, starting from
# the seed corpus kept in fuzz/corpus/<target>/ (every seed is replayed first: old crashes stay
# fixed). New inputs go to a work corpus in the build directory, never into the tree.
#
# Usage: scripts/fuzz.sh [--seconds N] [--no-build] [target...]
#   targets: fuzz_parse fuzz_vec fuzz_alloc (default: all); --seconds per target (default 10).
#   Longer:  scripts/fuzz.sh --seconds 3600 fuzz_vec
#   Add what a long run found to the seeds: fuzz/<build>/fuzz_vec -merge=1 fuzz/corpus/fuzz_vec <work corpus>
# Environment: MMVEC_FUZZ_BUILD (build directory, default build-fuzz in the source tree),
#   FUZZ_ARGS (more libFuzzer flags, e.g. "-jobs=2 -workers=2").
# Prints one line per target: executions, seconds, crashes, leaked files. Exit 0 when no target
# crashed and none left a file behind.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${MMVEC_FUZZ_BUILD:-$src/build-fuzz}
seconds=10 do_build=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    fuzz_*) targets+=("$1") ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_parse fuzz_vec fuzz_alloc)

if [ $do_build -eq 1 ]; then
  CC=${CC_FUZZ:-clang} CXX=${CXX_FUZZ:-clang++} cmake -S "$src" -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMVEC_BUILD_FUZZ=ON -DMMVEC_BUILD_TESTS=OFF \
    -DMMVEC_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  bin=$build/fuzz/$t
  [ -x "$bin" ] || { echo "fuzz.sh: $bin not built" >&2; exit 2; }
  work=$build/fuzz-work/$t
  art=$build/fuzz-artifacts
  tmp=$(mktemp -d "/tmp/mmvec-fuzz-$t-XXXXXX")
  mkdir -p "$work" "$art" "$src/fuzz/corpus/$t"
  log=$build/fuzz-$t.log
  rc=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a word list by design
  MMVEC_FUZZ_TMP=$tmp "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$art/$t-" ${FUZZ_ARGS:-} \
    "$work" "$src/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  leaked=$(find "$tmp" -mindepth 1 -not -type d 2>/dev/null | wc -l)
  rm -rf "$tmp"
  printf 'fuzz: %-11s seconds=%s execs=%s exit=%s leaked_files=%s\n' "$t" "$seconds" \
    "${execs:-?}" "$rc" "$leaked"
  if [ "$rc" -ne 0 ] || [ "$leaked" -ne 0 ]; then
    status=1
    grep -E '^fuzz_[a-z]+:|ERROR:|runtime error|SUMMARY|Test unit written' "$log" | head -10
    echo "fuzz: $t FAILED (log: $log)"
  fi
done
exit $status

#!/usr/bin/env bash
# Builds mmvec with sanitizers and runs the tests in those builds:
#   ASan+UBSan: the whole Criterion suite (ctest).
#   TSan:       the threaded workloads. Criterion itself cannot start under TSan ("Could not
#               initialize inheritable arena", Snaipe/Criterion#274), so the TSan build runs the
#               threaded helper programs directly: every tests/helpers/* source with a line
#               " * tsan-args: ARGS" is run as `helper ARGS` (MMVEC_THRESHOLD=64K, its own
#               MMVEC_DIR), and must exit 0 with no report and no file left behind.
# Tests that LD_PRELOAD the interposer into children skip themselves in sanitizer builds (the
# sanitizer runtime must come first); the skipped tests are listed in the summary.
#
# Usage: scripts/sanitize.sh [--asan-only | --tsan-only] [--jobs N]
# Environment: MMVEC_ASAN_BUILD, MMVEC_TSAN_BUILD (build directories; default build-asan and
# build-tsan in the source tree), CC/CXX (default: the system compiler), CTEST_ARGS (more
# arguments for ctest, e.g. "-R test_alloc"), SANITIZE_EXCLUDE (ctest -E regex of tests not to
# run under ASan; default ^install_check$).
# Exit status: 0 when every test run passed (or skipped itself) with no sanitizer report.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
asan_dir=${MMVEC_ASAN_BUILD:-$src/build-asan}
tsan_dir=${MMVEC_TSAN_BUILD:-$src/build-tsan}
jobs=2 do_asan=1 do_tsan=1
while [ $# -gt 0 ]; do
  case "$1" in
    --asan-only) do_tsan=0 ;;
    --tsan-only) do_asan=0 ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# A report stops the test (and so fails it) instead of scrolling past; leaks count too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4}
export CRITERION_VERBOSITY_LEVEL=1 # [RUN]/[PASS]/[SKIP] lines in the log, for the summary
unset LD_PRELOAD # the sanitizer runtime must be first; tests set up their own children

# Helper programs that declare how TSan should run them: "<name>\t<args>" lines.
tsan_programs() {
  local h args
  for h in "$src"/tests/helpers/*.c "$src"/tests/helpers/*.cpp; do
    [ -e "$h" ] || continue
    args=$(sed -n 's/^ \* tsan-args: *//p' "$h" | head -1)
    [ -n "$args" ] && printf '%s\t%s\n' "$(basename "${h%.*}")" "$args"
  done
  return 0
}

build() { # dir sanitizers
  cmake -S "$src" -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMVEC_SANITIZE="$2" \
    -DMMVEC_BUILD_TESTS=ON -DMMVEC_BUILD_BENCH=OFF -DMMVEC_BUILD_FUZZ=OFF >/dev/null
  if ! cmake --build "$1" -j"$jobs" >"$1/sanitize-build.log" 2>&1; then
    tail -40 "$1/sanitize-build.log"
    echo "sanitize.sh: build failed in $1" >&2
    exit 1
  fi
}

# Runs ctest in dir with the given extra arguments; keeps the full log; prints a summary.
run_suite() { # name dir ctest-args...
  local name=$1 dir=$2 log rc=0
  shift 2
  log="$dir/sanitize-$name.log"
  echo "== $name: ctest $* ${CTEST_ARGS:-}"
  # shellcheck disable=SC2086 # CTEST_ARGS is a word list by design
  (cd "$dir" && ctest --output-on-failure -V "$@" ${CTEST_ARGS:-}) >"$log" 2>&1 || rc=$?
  grep -E '(Test +#[0-9]+:.*(Passed|Failed|\*\*\*)|tests passed|tests failed)' "$log" || true
  local skipped passed
  skipped=$(grep -oE '\[SKIP\] [^ ]+' "$log" | sed 's/\[SKIP\] //; s/:$//' | sort -u || true)
  passed=$(grep -oE '\[PASS\] [^ ]+' "$log" | sort -u | wc -l)
  echo "-- $name: $passed test cases passed, $(echo "$skipped" | grep -c . || true) skipped"
  echo "-- $name: skipped tests: ${skipped:-none}" | tr '\n' ' '; echo
  if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$log"; then
    echo "-- $name: SANITIZER REPORTS in $log:"
    grep -E 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$log" | head -20
    rc=1
  fi
  echo "-- $name: $( [ $rc -eq 0 ] && echo OK || echo FAILED ) (full log: $log)"
  return $rc
}

# Runs each declared helper of the TSan build; prints one line each.
run_tsan_programs() { # dir
  local dir=$1 rc=0 name args work st leaked
  while IFS=$'\t' read -r name args; do
    work=$(mktemp -d /tmp/mmvec-tsan-XXXXXX)
    st=0
    # shellcheck disable=SC2086 # args is a word list by design
    MMVEC_DIR=$work/seg MMVEC_THRESHOLD=64K "$dir/tests/helpers/$name" $args \
      >"$dir/tsan-$name.log" 2>&1 || st=$?
    leaked=$(find "$work" -mindepth 1 -not -type d | wc -l)
    rm -rf "$work"
    echo "tsan: $name $args: exit=$st leaked_files=$leaked"
    grep -E '^mmvec-stress: mode' "$dir/tsan-$name.log" || true
    if [ $st -ne 0 ] || [ "$leaked" -ne 0 ] || grep -q 'ThreadSanitizer' "$dir/tsan-$name.log"; then
      grep -E 'WARNING: ThreadSanitizer|SUMMARY|ERROR' "$dir/tsan-$name.log" | head -20
      echo "tsan: $name FAILED (log: $dir/tsan-$name.log)"
      rc=1
    fi
  done < <(tsan_programs)
  return $rc
}

status=0
if [ $do_asan -eq 1 ]; then
  build "$asan_dir" address,undefined
  # install_check builds consumer programs without sanitizer flags, which cannot link an
  # instrumented libmmvec.a; packaging is checked by the plain build.
  run_suite asan+ubsan "$asan_dir" -E "${SANITIZE_EXCLUDE:-^install_check\$}" || status=1
fi
if [ $do_tsan -eq 1 ]; then
  if [ -z "$(tsan_programs)" ]; then
    echo "== tsan: no helper declares tsan-args"
  else
    build "$tsan_dir" thread
    echo "== tsan: threaded helper programs"
    run_tsan_programs "$tsan_dir" || status=1
    echo "-- tsan: $( [ $status -eq 0 ] && echo OK || echo FAILED )"
  fi
fi
exit $status

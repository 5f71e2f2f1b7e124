#!/usr/bin/env bash
# Installs what is missing, builds from nothing into build/, and runs the whole test suite.
# Tests that cannot run here (no root, no cgroup, no tmpfs mount) skip themselves with the
# reason; the list of skips is printed at the end, so no skip passes unnoticed.
# Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
export CRITERION_VERBOSITY_LEVEL=1 # [SKIP] lines, with their reasons, in ctest's log
status=0
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@" || status=$?
log=build/Testing/Temporary/LastTest.log
if [ -f "$log" ]; then
  skips=$(grep -h '^\[SKIP\]' "$log" || true)
  if [ -n "$skips" ]; then
    echo "Skipped test cases ($(printf '%s\n' "$skips" | wc -l)), with their reasons:"
    printf '  %s\n' "$skips"
  else
    echo "Skipped test cases: none."
  fi
fi
exit "$status"

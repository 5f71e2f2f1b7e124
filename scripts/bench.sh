#!/usr/bin/env bash
# The allocator benchmark suite (issue 4) in one command: builds what it needs, then runs every
# workload against glibc, jemalloc, mimalloc, tcmalloc, memkind's PMEM kind, naive per-block
# files and mmvec's interposer, and writes bench/results/<UTC time>/ (results.csv, results.md,
# PNG plots, machine.txt), copied to bench/results/latest/ (latest-quick/ for --quick).
#
# Usage: scripts/bench.sh [--quick] [--build DIR] [--deps] [options of bench/suite.py]
#   --quick    small sizes, under 2 minutes
#   --build    build directory (default: build-bench in the repository)
#   --deps     first install the competitors and gnuplot (scripts/install-deps.sh --bench)
#   see `bench/suite.py --help` for --rounds, --only, --allocs, --sweep, --preload, --dir, --out
# The run needs about 10 GB free on the segment directory's disk (default /var/tmp) and, for the
# out-of-core workload, root with a writable cgroup v1 memory controller (else it is skipped).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-bench"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --build=*) build=${1#--build=}; shift ;;
        --deps) "$repo/scripts/install-deps.sh" --bench; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# The driver must build; mmvec's own targets may be broken while it is being worked on, and
# the suite then records mmvec as unavailable instead of stopping.
cmake --build "$build" -j"$(nproc)" --target alloc_workloads
for t in mmvec_preload vec_workload; do
    if ! cmake --build "$build" -j"$(nproc)" --target "$t" >"$build/bench-$t.log" 2>&1; then
        echo "bench.sh: $t does not build (see $build/bench-$t.log); measuring without it" >&2
        rm -f "$build/bench/$t"
    fi
done
exec python3 "$repo/bench/suite.py" --build "$build" ${args[@]+"${args[@]}"}

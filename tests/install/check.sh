#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a consumer three ways:
# CMake's find_package (shared and static targets) and pkg-config. Usage: check.sh BUILD_DIR SRC_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export MMVEC_DIR="$tmp/seg"
mkdir -p "$tmp/consumer"
cp "$src/tests/install/consumer.c" "$tmp/consumer/main.c"
cat > "$tmp/consumer/CMakeLists.txt" <<'CMK'
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(mmvec REQUIRED)
add_executable(app main.c)
target_link_libraries(app mmvec::mmvec)
add_executable(app_static main.c)
target_link_libraries(app_static mmvec::mmvec_static)
CMK
cmake -S "$tmp/consumer" -B "$tmp/consumer/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/b" >/dev/null
"$tmp/consumer/b/app"
"$tmp/consumer/b/app_static"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/$(gcc -print-multiarch)/pkgconfig"
# shellcheck disable=SC2046
cc -o "$tmp/pc" "$tmp/consumer/main.c" $(pkg-config --cflags --libs mmvec) \
   -Wl,-rpath,"$(pkg-config --variable=libdir mmvec)"
"$tmp/pc"
"$tmp/prefix/bin/mmvec" --version >/dev/null
echo "install check: find_package (shared, static), pkg-config and the CLI work from $tmp/prefix"

#!/usr/bin/env bash
# Configures and builds gatewayz with CMake + Ninja.
#
#   scripts/build.sh [asan]    -> build/          Debug -O1 -g, ASan+UBSan, tests on (default)
#   scripts/build.sh release   -> build-release/  RelWithDebInfo -O2, no sanitizers, no tests
#
# Extra arguments after the mode are passed to `cmake --build` (e.g. a target:
# `scripts/build.sh release --target gatewayz`). JOBS overrides -j (default: nproc).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

mode="${1:-asan}"
if [[ $# -gt 0 ]]; then shift; fi
jobs="${JOBS:-$(nproc)}"

case "$mode" in
  asan|debug)
    build_dir=build
    cmake_args=(
      -DCMAKE_BUILD_TYPE=Debug
      "-DCMAKE_CXX_FLAGS=-O1 -g"  # + Debug's own -g
      "-DCMAKE_CXX_FLAGS_DEBUG=-g"
      -DGATEWAYZ_SANITIZE=ON
      -DGATEWAYZ_TESTS=ON
    )
    ;;
  release)
    build_dir=build-release
    cmake_args=(
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
      -DCMAKE_CXX_FLAGS=
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g -DNDEBUG"
      -DGATEWAYZ_SANITIZE=OFF
      -DGATEWAYZ_TESTS=OFF
    )
    ;;
  *)
    echo "usage: $0 [release|asan] [cmake --build args...]" >&2
    exit 2
    ;;
esac

cmake -S . -B "$build_dir" -G Ninja "${cmake_args[@]}"
cmake --build "$build_dir" -j "$jobs" "$@"

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

# The settings live in CMakePresets.json (presets asan and release); this
# script only maps its modes onto them.
case "$mode" in
  asan|debug) preset=asan ;;
  release) preset=release ;;
  *)
    echo "usage: $0 [release|asan] [cmake --build args...]" >&2
    exit 2
    ;;
esac

cmake --preset "$preset"
cmake --build --preset "$preset" -j "$jobs" "$@"

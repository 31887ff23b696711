#!/usr/bin/env bash
# Builds the sanitizer build (build/: Debug -O1, ASan + UBSan, tests on) and
# runs every CTest test: the GoogleTest suites and the Node `openai` client
# test (tests/node, registered in tests/integration/CMakeLists.txt).
#
# Extra arguments go to ctest, e.g. `scripts/test.sh -L integration` or
# `scripts/test.sh -R json_scan`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

./scripts/build.sh asan

# The Node client test needs its npm packages (install-deps.sh installs them;
# this covers a tree where only the build was refreshed).
if [[ ! -d tests/node/node_modules/openai ]]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

ctest --test-dir build --output-on-failure -j2 --timeout 300 --no-tests=error "$@"

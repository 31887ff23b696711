#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz (clang, ASan+UBSan) and runs each
# for the given number of seconds, starting from the committed seeds in
# fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh [seconds-per-target [target...]]   (default 30, every target)
#
# Needs clang and its libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev).
# New interesting inputs go to build-fuzz/corpus/<target>/ so the committed
# seeds stay small; crashes land in build-fuzz/artifacts/<target>/ and make
# the script exit non-zero.
set -euo pipefail

seconds="${1:-30}"
[[ $# -gt 0 ]] && shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
# The build lock every build script takes (scripts/tsan.sh, the CONTRIBUTING
# commands): builds share two cores.
lock="${GATEWAYZ_BUILD_LOCK:-/tmp/gw-build.lock}"
targets=(fuzz_json_scan fuzz_base_url fuzz_sse fuzz_http_request fuzz_accounting_inputs fuzz_redact
  fuzz_anthropic_request fuzz_provider_stream fuzz_upstream_response fuzz_config fuzz_otlp fuzz_loki_push
  fuzz_fast_gzip)
if [[ $# -gt 0 ]]; then targets=("$@"); fi

# Builds share the machine with other work; the lock keeps them serial.
# Configure output (mostly FindBoost noise) is shown only when it fails.
mkdir -p "$build"
if ! flock "$lock" env CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGATEWAYZ_FUZZ=ON -DGATEWAYZ_TESTS=OFF \
  >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  exit 1
fi
flock "$lock" cmake --build "$build" --target "${targets[@]}" -j2

for target in "${targets[@]}"; do
  work="$build/corpus/$target"
  artifacts="$build/artifacts/$target/"
  mkdir -p "$work" "$artifacts"
  echo "== $target for ${seconds}s"
  "$build/fuzz/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$root/fuzz/$target.dict" -artifact_prefix="$artifacts" \
    "$work" "$root/fuzz/corpus/$target"
done

#!/usr/bin/env bash
# Builds the concurrency test suites with ThreadSanitizer (preset tsan:
# build-tsan/, Debug -O1) and runs them: the server and its connection
# limits, the ledger writer, the health monitor and breakers, the API-key
# cache and credit balances, the metric registry, the logger, the trace
# exporter, the Redis client, the response cache, and the whole gateway
# over loopback (every request path, failover, limits). Their threads share
# atomics, seqlocks, per-shard queues and pools; TSan reports any pair of
# accesses without a happens-before edge, and a report fails the run.
#
#   scripts/tsan.sh                      # build and run every suite
#   scripts/tsan.sh gw_ledger_test ...   # only these
#
# Not part of scripts/test.sh (CI keeps the ASan+UBSan build): a TSan build
# of these suites takes 10 to 20 minutes on two cores. Builds take the
# shared build lock. The Redis and health suites start a real redis-server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  suites=(gw_server_test gw_ledger_test gw_health_test gw_auth_test gw_balances_test gw_telemetry_test
    gw_logging_test gw_tracing_test gw_redis_test gw_cache_test gw_gateway_test)
fi
lock="${GATEWAYZ_BUILD_LOCK:-/tmp/gw-build.lock}"

export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
log="$(mktemp)"
flock "$lock" cmake --preset tsan >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
rm -f "$log"
flock "$lock" cmake --build build-tsan -j"${JOBS:-$(nproc)}" --target "${suites[@]}"

# halt_on_error: the first report fails the suite; second_deadlock_stack:
# both stacks of a lock-order report.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
failed=()
for suite in "${suites[@]}"; do
  binary="$(find build-tsan/tests -type f -name "$suite" -perm -u+x | head -n 1)"
  [[ -n "$binary" ]] || { echo "tsan: $suite was not built" >&2; failed+=("$suite"); continue; }
  echo "tsan: $suite" >&2
  if ! (cd "$(dirname "$binary")" && "./$suite" --gtest_brief=1); then failed+=("$suite"); fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "tsan: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "tsan: all ${#suites[@]} suites passed" >&2

#!/usr/bin/env bash
# Writes docs/metrics.md, the metrics reference, from the metric registry:
# every family gatewayz declares (name as scraped, type, labels, help), as
# printed by the hidden `gatewayz metrics-catalog` command.
#
#   scripts/metrics-reference.sh           # builds the release binary, rewrites docs/metrics.md
#   scripts/metrics-reference.sh --check   # exit 1 when docs/metrics.md is not what it would write
#   GATEWAYZ_BIN=path scripts/metrics-reference.sh [--check]   # use this binary, build nothing
#
# Run it after adding or changing a metric family and commit docs/metrics.md;
# CTest's metrics_reference runs --check, and deploy_stack checks the file
# against a live /metrics.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

check=0
[[ "${1:-}" == "--check" ]] && check=1

bin="${GATEWAYZ_BIN:-}"
if [[ -z "$bin" ]]; then
  ./scripts/build.sh release --target gatewayz >&2
  bin="$repo_root/build-release/src/app/gatewayz"
fi

catalog="$(ASAN_OPTIONS=detect_leaks=0 "$bin" metrics-catalog --config config/gatewayz.yaml)"

render() {
  cat <<'HEAD'
# Metrics reference

Every metric family `GET /metrics` exposes, from the registry
(`src/telemetry/catalog.hpp` and the parts that register their own). Generated
by `scripts/metrics-reference.sh`; do not edit by hand. CTest checks it
against the registry (`metrics_reference`) and against a live scrape
(`deploy_stack`).

- Names are as scraped in Prometheus text format: counters end in `_total`
  (OpenMetrics names the family without it); a histogram `x` is scraped as
  `x_bucket{le}`, `x_sum` and `x_count`.
- Every series also gets Prometheus' `job` and `instance` labels.
- A family with labels has no series until its first label set is used; one
  without labels is always present.
- Units are in the names (`_seconds`, `_bytes`); money is USD; ratios and
  scores are 0..1, not percentages.

| name | type | labels | help |
|---|---|---|---|
HEAD
  awk -F'\t' '{
    labels = $3
    if (labels == "") labels = "–"
    else { gsub(/,/, "`, `", labels); labels = "`" labels "`" }
    help = $4
    gsub(/\|/, "\\|", help)
    printf "| `%s` | %s | %s | %s |\n", $1, $2, labels, help
  }' <<<"$catalog"
}

if [[ $check -eq 1 ]]; then
  if ! diff -u docs/metrics.md <(render); then
    echo "docs/metrics.md is stale: run scripts/metrics-reference.sh and commit it" >&2
    exit 1
  fi
  echo "docs/metrics.md matches the registry ($(wc -l <<<"$catalog") families)"
else
  render >docs/metrics.md
  echo "wrote docs/metrics.md ($(wc -l <<<"$catalog") families)"
fi

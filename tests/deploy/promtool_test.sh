#!/usr/bin/env bash
# The shipped Prometheus config and alert rules, checked by promtool:
#   promtool check config deploy/prometheus/prometheus.yml   (loads alerts.yml too)
#   promtool check rules  deploy/prometheus/alerts.yml
#   promtool test rules   deploy/prometheus/alerts_test.yml  (each alert fires / stays silent)
# and every alert of alerts.yml has at least one test case that expects it to fire.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROMTOOL="${PROMTOOL:-/usr/bin/promtool}"
command -v "$PROMTOOL" >/dev/null || { echo "FAIL - $PROMTOOL not found: run scripts/install-deps.sh"; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/gatewayz-promtool.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/integration/lib.sh
source "$repo/tests/integration/lib.sh"

cd "$repo/deploy/prometheus" || exit 1
out="$("$PROMTOOL" check config prometheus.yml 2>&1)"; check "promtool check config prometheus.yml" $? "$out"
out="$("$PROMTOOL" check rules alerts.yml 2>&1)"; check "promtool check rules alerts.yml" $? "$out"
out="$("$PROMTOOL" test rules alerts_test.yml 2>&1)"; check "promtool test rules alerts_test.yml" $? "$out"

# Each alert must be expected to fire somewhere in alerts_test.yml.
mapfile -t alerts < <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' alerts.yml)
(( ${#alerts[@]} >= 10 )); check "alerts.yml has at least 10 alerts" $? "${#alerts[*]}"
for a in "${alerts[@]}"; do
  # a test case names the alert, then (before the next alertname) a non-empty exp_alerts list
  awk -v a="$a" '
    /alertname:/ { cur = $2 }
    cur == a && /exp_alerts:/ && $0 !~ /\[\]/ { found = 1 }
    END { exit !found }' alerts_test.yml
  check "alerts_test.yml has a firing case for $a" $?
done

echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]

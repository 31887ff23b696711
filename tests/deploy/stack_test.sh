#!/usr/bin/env bash
# The shipped stack's pieces against real processes, without Docker:
#   - `gatewayz serve --config deploy/gatewayz.yaml`, configured only through
#     the environment as the compose file does (API keys on, a SQLite store,
#     health every second), in front of two mock providers: `mock` (healthy)
#     serving gpt-4o-mini and mock-large, `mock-anthropic` (every request a
#     500, so its breaker opens) serving claude-sonnet-4.5;
#   - redis-server (GATEWAYZ_REDIS_URL), which the gateway pings;
#   - /usr/bin/prometheus with deploy/prometheus/prometheus.yml (its gatewayz
#     job pointed at that gateway, intervals shortened to 1 s) and the shipped
#     deploy/prometheus/alerts.yml.
# Generated traffic: plain and streamed chats, failing and breaker-rejected
# requests, a 400, a 404, 401s (unknown key) and 402s (a customer without
# credit; enough for GatewayzCreditsExhaustedSpike to fire). Then checks:
#   - Prometheus loaded every shipped rule and evaluates it without error;
#     GatewayzCreditsExhaustedSpike fires and GatewayzDown does not;
#   - every dashboard expression returns data (dashboards_check.py);
#   - docs/metrics.md matches the live /metrics (metrics_doc_check.py).
#
# Usage: stack_test.sh /path/to/gatewayz
set -uo pipefail

bin="${1:?usage: stack_test.sh /path/to/gatewayz}"
if [[ -z "${GATEWAYZ_STACK_TEST_TIMED:-}" ]]; then
  GATEWAYZ_STACK_TEST_TIMED=1 exec timeout -k 5 100 bash "$0" "$@"
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROMETHEUS="${PROMETHEUS:-/usr/bin/prometheus}"
PYTHON="${PYTHON:-python3}"
for tool in "$PROMETHEUS" curl jq "$PYTHON" redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL - $tool not found: run scripts/install-deps.sh" >&2; exit 1; }
done
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

work="$(mktemp -d "${TMPDIR:-/tmp}/gatewayz-stack.XXXXXX")"
pids=()
extra_logs=()
# shellcheck source=tests/integration/lib.sh
source "$repo/tests/integration/lib.sh"
trap 'stop_all; rm -rf "$work"' EXIT
trap 'echo "FAIL - interrupted (or over the 100 s bound)" >&2; exit 1' INT TERM
started=$SECONDS

# --- the mock providers -----------------------------------------------------------
"$bin" mock-provider --listen 127.0.0.1:0 --port-file "$work/ok.port" --threads 1 --ttft-ms 5 >"$work/mock-ok.log" 2>&1 &
pids+=($!)
"$bin" mock-provider --listen 127.0.0.1:0 --port-file "$work/bad.port" --threads 1 --error-rate 1 --failure 500 \
  >"$work/mock-bad.log" 2>&1 &
pids+=($!)
wait_for_file "$work/ok.port" && wait_for_file "$work/bad.port" || die "mock providers did not start"

# --- Redis (the compose file's redis service): the gateway's pinger feeds the Redis families
redis_up() { [[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" == PONG ]]; }
for _ in 1 2 3 4 5; do  # another port when that one was taken meanwhile
  redis_port="$(random_port)" || die "no free port for redis-server"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_until 10 redis_up && break
  kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null
  redis_pid=
done
[[ -n "$redis_pid" ]] || die "redis-server did not start: $(cat "$work/redis.log")"
pids+=("$redis_pid")

# --- gatewayz from deploy/gatewayz.yaml, configured through the environment -------------
config="$repo/deploy/gatewayz.yaml"
export GATEWAYZ_THREADS=2 GATEWAYZ_AUTH_MODE=keys GATEWAYZ_ADMIN_KEY=stack-test-admin
export GATEWAYZ_DATABASE_URL="sqlite://$work/gatewayz.db" GATEWAYZ_SPILL_PATH="$work/ledger.spill"
export GATEWAYZ_HEALTH_INTERVAL_S=1 GATEWAYZ_SHUTDOWN_GRACE_S=1
export GATEWAYZ_REDIS_URL="redis://127.0.0.1:${redis_port}/0" GATEWAYZ_CACHE_MODE=redis
export GATEWAYZ_OPENAI_BASE_URL="http://127.0.0.1:$(cat "$work/ok.port")/v1"
export GATEWAYZ_ANTHROPIC_BASE_URL="http://127.0.0.1:$(cat "$work/bad.port")/v1"
key_of() {  # key_of CUSTOMER CREDITS: a new key, printed alone on the last line
  "$bin" keys create --customer "$1" --credits "$2" --config "$config" 2>>"$work/keys.log" | tail -n 1
}
rich="$(key_of rich 100)"; poor="$(key_of poor 0)"
[[ -n "$rich" && -n "$poor" && "$rich" != *" "* ]] || die "keys create failed: $(cat "$work/keys.log")"

# deploy/gatewayz.yaml reads the listen address from GATEWAYZ_LISTEN.
start_on_free_port "$work/gateway.log" metrics \
  env 'GATEWAYZ_LISTEN=127.0.0.1:{port}' "$bin" serve --config "$config" ||
  die "gatewayz did not start from deploy/gatewayz.yaml"
gw_port=$started_port
gw="http://127.0.0.1:${gw_port}"

# --- Prometheus: the shipped config and rules, the gatewayz job pointed here -------------
"$PYTHON" - "$repo/deploy/prometheus" "127.0.0.1:${gw_port}" >"$work/prometheus.yml" <<'PY' || die "cannot derive the Prometheus config"
import os, sys, yaml
src, target = sys.argv[1], sys.argv[2]
with open(os.path.join(src, "prometheus.yml")) as f:
    cfg = yaml.safe_load(f)
cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
cfg["rule_files"] = [os.path.join(src, r) for r in cfg["rule_files"]]
jobs = [j for j in cfg["scrape_configs"] if j["job_name"] == "gatewayz"]
assert len(jobs) == 1 and jobs[0]["static_configs"][0]["targets"] == ["gatewayz:8080"]
jobs[0]["static_configs"][0]["targets"] = [target]
cfg["scrape_configs"] = jobs  # Tempo, Loki and Prometheus itself are not running here
yaml.safe_dump(cfg, sys.stdout, sort_keys=False)
PY
out="$(promtool check config "$work/prometheus.yml" 2>&1)"; check "promtool accepts the derived config" $? "$out"

start_on_free_port "$work/prometheus.log" -/ready \
  "$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address='127.0.0.1:{port}' --log.level=warn ||
  die "prometheus did not become ready"
prom_port=$started_port
prom="http://127.0.0.1:${prom_port}"

query() {
  curl -fsS -m 3 -G "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    jq -r 'if .status == "success" then (.data.result[0].value[1] // "") else "" end' 2>/dev/null
}
target_up() { [[ "$(query 'up{job="gatewayz"}')" == 1 ]]; }
scraped_after() { awk -v a="$(query 'timestamp(up{job="gatewayz"})')" -v b="$1" 'BEGIN { exit !(a != "" && a + 0 > b + 0) }'; }
wait_until 20 target_up || die "Prometheus does not scrape gatewayz: $(curl -sS "$prom/api/v1/targets")"
echo "# started in $((SECONDS - started)) s"

# --- traffic ------------------------------------------------------------------------
codes=()
call() {  # call KEY BODY [extra curl args]: records the HTTP status
  local key="$1" body="$2"; shift 2
  codes+=("$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$gw/v1/chat/completions" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" "$@")")
}
chat() { call "$rich" "{\"model\":\"$1\",\"max_tokens\":$2,\"messages\":[{\"role\":\"user\",\"content\":\"hello $2\"}]}"; }
stream() {
  call "$rich" "{\"model\":\"$1\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":$2,\"messages\":[{\"role\":\"user\",\"content\":\"stream $2\"}]}" -N
}
phase() {
  local k
  for k in 1 2 3 4; do chat gpt-4o-mini $((4 + k)); done
  for k in 1 2; do chat mock-large $((3 + k)); done
  for k in 1 2 3; do stream gpt-4o-mini $((5 + k)); done
  for k in 1 2 3 4; do chat claude-sonnet-4.5 $((2 + k)); done  # 500 upstream, then breaker open
  for k in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
    call "$poor" '{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"no credit"}]}'
  done
  call "sk-not-a-key" '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"who am I"}]}'
  call "$rich" '{not json'
  codes+=("$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$gw/nope")")
}
phase
t1="$(date +%s.%N)"
wait_until 15 scraped_after "$t1" || die "no scrape after the first phase"
sleep 2
phase
t2="$(date +%s.%N)"
wait_until 15 scraped_after "$t2" || die "no scrape after the second phase"
# A second scrape after the traffic: increase() and rate() need two samples of
# a series, and a series born late in the second phase has only one so far.
t3="$(date +%s.%N)"
wait_until 15 scraped_after "$t3" || die "no second scrape after the second phase"
summary="$(printf '%s\n' "${codes[@]}" | sort | uniq -c | awk '{printf "%s x %s, ", $1, $2}')"
echo "# traffic: $summary"
for want in 200 400 401 402 404; do
  printf '%s\n' "${codes[@]}" | grep -qx "$want"; check "traffic produced HTTP $want" $? "$summary"
done
printf '%s\n' "${codes[@]}" | grep -q '^5'; check "traffic produced 5xx (failing provider, open breaker)" $? "$summary"

# --- the shipped rules, loaded and evaluated ---------------------------------------------
rule_count="$(grep -c '^ *- alert:' "$repo/deploy/prometheus/alerts.yml")"
rules_ok() {
  [[ "$(curl -fsS -m 3 "$prom/api/v1/rules" | jq '[.data.groups[].rules[] | select(.health == "ok" and (.lastError // "") == "")] | length')" == "$rule_count" ]]
}
wait_until 10 rules_ok
check "Prometheus loaded all $rule_count shipped rules and evaluates them without error" $? \
  "$(curl -fsS -m 3 "$prom/api/v1/rules" | jq -c '[.data.groups[].rules[] | {name, health, lastError}]')"
firing() { curl -fsS -m 3 "$prom/api/v1/alerts" | jq -e --arg a "$1" '[.data.alerts[] | select(.labels.alertname == $a and .state == "firing")] | length > 0' >/dev/null; }
wait_until 10 firing GatewayzCreditsExhaustedSpike
check "GatewayzCreditsExhaustedSpike fires on the 402s" $? "$(curl -fsS -m 3 "$prom/api/v1/alerts" | jq -c '.data.alerts')"
! firing GatewayzDown; check "GatewayzDown does not fire while gatewayz is scraped" $?

# --- every dashboard expression returns data --------------------------------------------
"$PYTHON" "$repo/tests/deploy/dashboards_check.py" "$prom" >"$work/dashboards.out" 2>&1
rc=$?
grep -E '^(FAIL|skip|#)' "$work/dashboards.out"
check "every dashboard expression returns data ($(tail -n 1 "$work/dashboards.out"))" $rc

# --- docs/metrics.md against the live /metrics ---------------------------------------------
curl -fsS -m 5 -H 'Accept: text/plain;version=0.0.4' "$gw/metrics" >"$work/scrape.txt"
out="$("$PYTHON" "$repo/tests/deploy/metrics_doc_check.py" "$work/scrape.txt" 2>&1)"; rc=$?
echo "$out" | grep -E '^(FAIL|#)'
check "docs/metrics.md matches the live /metrics" $rc "$(echo "$out" | tail -n 1)"

check_prometheus_log "$work/prometheus.log"
echo "# runtime $((SECONDS - started)) s"
echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]] || { show_logs; exit 1; }

#!/usr/bin/env bash
# Compares what two gatewayz binaries put on /metrics for the same traffic.
#
#   scripts/metrics-diff.sh BIN_A BIN_B
#
# For each binary: starts `BIN mock-provider` and `BIN serve` on 127.0.0.1
# (ports chosen by the OS) with a generated config, sends one fixed sequence of
# requests with curl, one at a time, then scrapes /metrics and normalises it:
# every series is kept (so a series or family that appears or disappears is a
# difference), counter and gauge values are compared exactly, and the values
# that depend on time or on the process are replaced by "~" (normalise() lists
# them). The HTTP statuses of the requests are compared too.
#
# Prints the unified diff A -> B and exits 1 when they differ, 0 when they are
# identical, 2 on a usage or startup error. KEEP=1 keeps the work directory
# (configs, logs, raw and normalised scrapes) and prints its path.
#
# METRICS_ENABLED=false compares the gateways with metrics.enabled false (the
# series created up front must still be there).
#
# Needs curl. Runs nothing but the two binaries and curl, on 127.0.0.1 only;
# everything started is stopped on exit.
set -euo pipefail

usage() {
  echo "usage: $0 BIN_A BIN_B" >&2
  exit 2
}
[[ $# -eq 2 ]] || usage
for bin in "$1" "$2"; do
  if [[ ! -x "$bin" ]]; then
    echo "metrics-diff: $bin is not an executable" >&2
    exit 2
  fi
done
bin_a="$(realpath "$1")"
bin_b="$(realpath "$2")"

work="$(mktemp -d -t gatewayz-metrics-diff.XXXXXX)"
pids=()

# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_all
  if [[ "${KEEP:-0}" == "1" ]]; then
    echo "metrics-diff: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops every process this script started (the gateway first: it drains).
stop_all() {
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[i]}"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      # A gateway that does not drain within 10 s is killed.
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

# wait_for_port FILE PID WHAT: waits until FILE holds a port, prints it.
wait_for_port() {
  local file="$1" pid="$2" what="$3"
  for _ in $(seq 1 200); do
    if [[ -s "$file" ]]; then
      tr -d '[:space:]' <"$file"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "metrics-diff: $what exited before listening; its log:" >&2
      cat "$(dirname "$file")/$what.log" >&2 || true
      exit 2
    fi
    sleep 0.05
  done
  echo "metrics-diff: $what did not write $file within 10 s" >&2
  exit 2
}

# A port on 127.0.0.1 where nothing listens: the "down" provider's. Port 1
# (tcpmux) is never served on a test machine; connecting is refused at once.
closed_port=1

write_config() {
  local dir="$1" mock_port="$2"
  local mock="http://127.0.0.1:$mock_port/v1"
  cat >"$dir/gatewayz.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  port_file: "$dir/gateway.port"
  threads: 2
auth:
  mode: none
metrics:
  enabled: ${METRICS_ENABLED:-true}
storage:
  url: "sqlite://$dir/db"
# No monitor pass, no breaker cool-down and no cache expiry can fall inside a
# run: the gauges and caches then depend on the requests alone.
health:
  interval_s: 3600
  dashboard_cache_s: 3600
circuit_breaker:
  open_s: 3600
  max_open_s: 3600
providers:
  # Tried first for "shared-model": every attempt is refused (failover).
  - name: down
    kind: openai
    base_url: "http://127.0.0.1:$closed_port/v1"
    api_key: k
    connect_timeout_s: 5
    models:
      - id: shared-model
      - id: down-only
  # Answers 500 to everything (the mock obeys x-mock-failure).
  - name: failing
    kind: openai
    base_url: "$mock"
    api_key: k
    headers:
      x-mock-failure: "500"
    models:
      - id: failing-only
        input_per_million: 1
        output_per_million: 2
  - name: mock-openai
    kind: openai
    base_url: "$mock"
    api_key: k
    models:
      - id: gpt-4o-mini
        input_per_million: 0.15
        output_per_million: 0.60
      - id: shared-model
        input_per_million: 1
        output_per_million: 2
      - id: text-embedding-3-small
        input_per_million: 0.02
        output_per_million: 0
  - name: mock-anthropic
    kind: anthropic
    base_url: "$mock"
    api_key: k
    models:
      - id: claude-sonnet-4.5
        upstream: claude-sonnet-4-5
        input_per_million: 3
        output_per_million: 15
EOF
}

# The fixed request sequence. Each line of requests.log: the step's name and
# the HTTP status the gateway answered.
send_requests() {
  local base="$1" log="$2" bodies="$3"
  : >"$log"
  # step NAME METHOD PATH [JSON-BODY]
  step() {
    local name="$1" method="$2" path="$3" body="${4-}"
    local args=(-s -o "$bodies/$name" -w '%{http_code}' -X "$method" --max-time 30)
    if [[ -n "$body" ]]; then
      args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    local status
    status="$(curl "${args[@]}" "$base$path" || echo "curl-exit-$?")"
    echo "$name $method $path -> $status" >>"$log"
  }
  local hello='"messages":[{"role":"user","content":"Hello!"}]'
  local i
  step chat POST /v1/chat/completions "{\"model\":\"gpt-4o-mini\",$hello}"
  step chat-stream POST /v1/chat/completions \
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},$hello}"
  step chat-stream-no-usage POST /v1/chat/completions "{\"model\":\"gpt-4o-mini\",\"stream\":true,$hello}"
  step chat-anthropic POST /v1/chat/completions "{\"model\":\"claude-sonnet-4.5\",\"max_tokens\":16,$hello}"
  step chat-anthropic-stream POST /v1/chat/completions \
    "{\"model\":\"claude-sonnet-4.5\",\"max_tokens\":16,\"stream\":true,\"stream_options\":{\"include_usage\":true},$hello}"
  # Two providers: "down" refuses, "mock-openai" answers (failover).
  step chat-failover POST /v1/chat/completions "{\"model\":\"shared-model\",$hello}"
  step chat-failover-stream POST /v1/chat/completions \
    "{\"model\":\"shared-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},$hello}"
  step chat-down POST /v1/chat/completions "{\"model\":\"down-only\",$hello}"
  # Six 500s in a row: the fifth opens "failing"'s breaker, the sixth is rejected.
  for i in 1 2 3 4 5 6; do
    step "chat-failing-$i" POST /v1/chat/completions "{\"model\":\"failing-only\",$hello}"
  done
  step completions POST /v1/completions '{"model":"gpt-4o-mini","prompt":"Say hi","max_tokens":8}'
  step embeddings POST /v1/embeddings '{"model":"text-embedding-3-small","input":["one","two"]}'
  step models GET /v1/models
  step unknown-model POST /v1/chat/completions "{\"model\":\"no-such-model\",$hello}"
  step malformed-json POST /v1/chat/completions '{"model": "gpt-4o-mini", "messages": ['
  step missing-messages POST /v1/chat/completions '{"model":"gpt-4o-mini"}'
  step wrong-method GET /v1/chat/completions
  step wrong-method-models POST /v1/models '{}'
  step not-found GET /no/such/path
  step health GET /health
  step health-dashboard GET /health/dashboard
  step models-stats GET '/models/stats?time_window=1h'
  step circuit-breakers GET /admin/circuit-breakers
}

# Normalises a Prometheus text scrape: HELP and TYPE lines and every series
# stay; the value becomes "~" where it measures time or the process rather
# than the requests:
#   - histogram buckets and sums of timing families (durations, latencies,
#     TTFB, overhead; their _count is the number of requests and stays);
#   - gatewayz_provider_health_score (its latency term);
#   - fastapi_response_size_bytes buckets and sums: a streamed answer is
#     relayed as the upstream's writes arrive, so its chunked framing depends
#     on timing, and /models/stats and /health/dashboard carry measurements;
#   - database write_ledger and ping counts: the ledger is written in batches
#     every 200 ms and the database pinged every 5 s, so both follow the clock;
#   - process_*, *start_time*, *uptime*, and python_ / go_ runtime families.
# Fractional values are compared to 12 significant digits: each server thread
# sums its own requests (costs in USD), and which thread serves which request
# changes the order of the floating-point additions, e.g. 0.00010039 against
# 0.00010038999999999999.
normalise() {
  awk '
    function timed(name) {
      return name ~ /(duration|seconds|latency|time_to_first|ttfb|overhead|_time$|_time_)/
    }
    function masked(name, series) {
      if (name ~ /^(process_|python_|go_)/ || name ~ /(start_time|uptime)/) return 1
      if (name == "gatewayz_provider_health_score") return 1
      if (name ~ /_(bucket|sum)$/ && (timed(name) || name ~ /^fastapi_response_size_bytes_/)) return 1
      if (name ~ /^database_quer/ && series ~ /operation="(write_ledger|ping)"/) return 1
      return 0
    }
    /^# / { print; next }
    /^$/ { next }
    {
      # name{labels} value [timestamp]; label values may hold spaces and braces.
      line = $0
      brace = index(line, "{")
      space = index(line, " ")
      if (brace > 0 && brace < space) {
        close_at = 0
        for (i = length(line); i > brace; i--) if (substr(line, i, 1) == "}") { close_at = i; break }
        series = substr(line, 1, close_at)
        name = substr(line, 1, brace - 1)
        rest = substr(line, close_at + 2)
      } else {
        series = substr(line, 1, space - 1)
        name = series
        rest = substr(line, space + 1)
      }
      split(rest, parts, " ")
      value = parts[1]
      if (masked(name, series)) value = "~"
      else if (value ~ /^-?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/ && value ~ /[.eE]/) value = sprintf("%.12g", value)
      print series " " value
    }
  ' "$1"
}

run_one() {
  local bin="$1" label="$2"
  local dir="$work/$label"
  mkdir -p "$dir/bodies"

  "$bin" mock-provider --listen 127.0.0.1:0 --port-file "$dir/mock.port" >"$dir/mock.log" 2>&1 &
  pids+=($!)
  local mock_port
  mock_port="$(wait_for_port "$dir/mock.port" "${pids[-1]}" mock)"

  write_config "$dir" "$mock_port"
  "$bin" serve --config "$dir/gatewayz.yaml" >"$dir/gateway.log" 2>&1 &
  pids+=($!)
  local port
  port="$(wait_for_port "$dir/gateway.port" "${pids[-1]}" gateway)"
  local base="http://127.0.0.1:$port"

  send_requests "$base" "$dir/requests.log" "$dir/bodies"
  # A request's metrics are recorded after its last byte is sent, on its own
  # server thread; let the last ones (and the ledger's batch) land first.
  sleep 1
  curl -s --max-time 30 -o "$dir/metrics.raw" "$base/metrics"
  stop_all

  {
    echo "### requests"
    cat "$dir/requests.log"
    echo "### metrics"
    normalise "$dir/metrics.raw"
  } >"$dir/result"
}

command -v curl >/dev/null || { echo "metrics-diff: needs curl" >&2; exit 2; }
run_one "$bin_a" a
run_one "$bin_b" b

if diff -u --label "A $bin_a" --label "B $bin_b" "$work/a/result" "$work/b/result"; then
  samples="$(grep -vc '^#' "$work/a/metrics.raw")"
  masked="$(grep -c ' ~$' "$work/a/result")"
  echo "metrics-diff: identical: $(wc -l <"$work/a/requests.log") request statuses," \
    "$samples samples ($((samples - masked)) by value, $masked by series only)" >&2
  exit 0
fi
exit 1

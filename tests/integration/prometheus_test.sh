#!/usr/bin/env bash
# A real Prometheus server scraping a real gatewayz, checked through
# Prometheus' HTTP query API.
#
# Starts, all on 127.0.0.1 and all in one temp dir:
#   - `gatewayz mock-provider` (the upstream),
#   - `gatewayz serve` with two providers on that mock: `primary` always gets a
#     500 (an x-mock-failure header from its config), so every request fails
#     over to `secondary`; both priced, so cost is non-zero,
#   - /usr/bin/prometheus scraping the gateway every second with two jobs:
#       gatewayz       OpenMetrics 1.0.0 (what Prometheus negotiates by default)
#       gatewayz_text  Prometheus text 0.0.4: with `scrape_protocols` where
#                      Prometheus has it (>= 2.49), otherwise through an nginx
#                      that only rewrites the scrape's Accept header
#                      (Prometheus picks its parser from the response's
#                      Content-Type, so both parsers are exercised).
# Then sends known traffic with curl (plain chats, streamed chats with
# include_usage, 400s, 404s) in two phases with a scrape between them, waits
# until both jobs have scraped after it, and compares what Prometheus stores
# with what the responses reported. Tracing is on (spans go to a closed port
# and are dropped) and Prometheus stores exemplars: a request sent with a
# known traceparent must come back from /api/v1/query_exemplars.
#
# Usage: prometheus_test.sh /path/to/gatewayz
set -uo pipefail  # no -e: every check runs and is counted

bin="${1:?usage: prometheus_test.sh /path/to/gatewayz}"
# Hard bound on the whole run, whatever hangs: timeout's SIGTERM runs the
# cleanup trap below (ctest's TIMEOUT is the backstop).
if [[ -z "${GATEWAYZ_PROM_TEST_TIMED:-}" ]]; then
  GATEWAYZ_PROM_TEST_TIMED=1 exec timeout -k 5 55 bash "$0" "$@"
fi
PROMETHEUS="${PROMETHEUS:-/usr/bin/prometheus}"
NGINX="${NGINX:-/usr/sbin/nginx}"
for tool in "$PROMETHEUS" curl jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL - $tool not found: run scripts/install-deps.sh" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/gatewayz-prom.XXXXXX")"
pids=()
trap 'stop_all; rm -rf "$work"' EXIT  # stop_all: tests/integration/lib.sh
trap 'echo "FAIL - interrupted (or over the 55 s bound)" >&2; exit 1' INT TERM
started=$SECONDS

extra_logs=()
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Numeric comparisons of Prometheus' values ("12", "0.000128", "NaN", "+Inf").
num_eq() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 == b + 0) }'; }
num_gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 > b + 0) }'; }
num_near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-9 + 1e-9 * b) }'; }
is_number() { [[ "$1" =~ ^[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]]; }

# --- the mock provider and the gateway ----------------------------------------
"$bin" mock-provider --listen 127.0.0.1:0 --port-file "$work/mock.port" --threads 1 \
  >"$work/mock.log" 2>&1 &
pids+=($!)
wait_for_file "$work/mock.port" || die "mock provider did not start"
mock_port="$(cat "$work/mock.port")"
collector_port="$(random_port)" || die "no free port"

cat >"$work/gatewayz.yaml" <<YAML
server:
  listen: "127.0.0.1:0"
  threads: 2
  port_file: "$work/gw.port"
  shutdown_grace_s: 1
# Every request must fail over from primary, whatever the test's timing: the
# breaker never opens, and the health monitor, which ranks providers by score,
# evaluates only once (at start, when both are idle and keep config order).
health:
  interval_s: 3600
circuit_breaker:
  failure_threshold: 1000000
  min_requests: 1000000
storage:
  url: "sqlite://$work/gatewayz.db"
  spill_path: "$work/ledger.spill"
# Sampled traces give the latency histograms their exemplars; the spans
# themselves go nowhere (nothing listens there) and are counted as dropped.
tracing:
  enabled: true
  otlp_endpoint: "http://127.0.0.1:${collector_port}"
providers:
  - name: primary
    kind: openai
    base_url: "http://127.0.0.1:${mock_port}/v1"
    headers:
      x-mock-failure: "500"
    models:
      - id: gpt-4o-mini
        input_per_million: 2.0
        output_per_million: 8.0
  - name: secondary
    kind: openai
    base_url: "http://127.0.0.1:${mock_port}/v1"
    models:
      - id: gpt-4o-mini
        input_per_million: 2.0
        output_per_million: 8.0
YAML
out="$("$bin" check-config "$work/gatewayz.yaml" 2>&1)"; rc=$?
check "check-config accepts the test config" $rc "$out"
[[ $rc -eq 0 ]] || die "invalid test config"

"$bin" serve --config "$work/gatewayz.yaml" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_for_file "$work/gw.port" || die "gateway did not start"
gw_port="$(cat "$work/gw.port")"
gw="http://127.0.0.1:${gw_port}"
version="$("$bin" version | awk '{print $2}')"

# --- Prometheus (and, before 2.49, the Accept-rewriting nginx) -----------------
prom_version="$("$PROMETHEUS" --version 2>&1 | sed -n 's/^prometheus, version \([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p')"
[[ -n "$prom_version" ]] || die "cannot read the version of $PROMETHEUS"
IFS=. read -r prom_major prom_minor _ <<<"$prom_version"
has_scrape_protocols=0
if (( prom_major > 2 || (prom_major == 2 && prom_minor >= 49) )); then has_scrape_protocols=1; fi
echo "# prometheus $prom_version, scrape_protocols supported: $has_scrape_protocols"

# Prometheus 2.x's default Accept header (OpenMetrics first), to see what the
# gateway answers a default scrape with.
prom_accept='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
text_accept='text/plain;version=0.0.4;q=1,*/*;q=0.1'

text_target="127.0.0.1:${gw_port}"
if [[ $has_scrape_protocols -eq 0 ]]; then
  [[ -x "$NGINX" ]] || die "$NGINX not found (nginx-light): run scripts/install-deps.sh"
  mkdir -p "$work/nginx"
  nginx_up=0
  for _ in 1 2 3 4 5; do
    nginx_port="$(random_port)" || die "no free port for nginx"
    cat >"$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:${nginx_port};
    location / {
      proxy_pass http://127.0.0.1:${gw_port};
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_set_header Accept "${text_accept}";
    }
  }
}
NGINX
    "$NGINX" -p "$work/nginx" -e "$work/nginx.log" -c "$work/nginx/nginx.conf" >>"$work/nginx.log" 2>&1 &
    nginx_pid=$!
    pids+=("$nginx_pid")
    for _ in $(seq 1 100); do
      if curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${nginx_port}/metrics" 2>/dev/null; then nginx_up=1; break; fi
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.05
    done
    [[ $nginx_up -eq 1 ]] && break
    kill -TERM "$nginx_pid" 2>/dev/null
  done
  [[ $nginx_up -eq 1 ]] || die "nginx (Accept rewriter) did not start"
  text_target="127.0.0.1:${nginx_port}"
fi

{
  cat <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gatewayz
YAML
  [[ $has_scrape_protocols -eq 1 ]] && echo "    scrape_protocols: [OpenMetricsText1.0.0]"
  cat <<YAML
    static_configs:
      - targets: ["127.0.0.1:${gw_port}"]
  - job_name: gatewayz_text
YAML
  [[ $has_scrape_protocols -eq 1 ]] && echo "    scrape_protocols: [PrometheusText0.0.4]"
  cat <<YAML
    static_configs:
      - targets: ["${text_target}"]
YAML
} >"$work/prometheus.yml"

prom_up=0
for _ in 1 2 3 4 5; do
  prom_port="$(random_port)" || die "no free port for prometheus"
  rm -rf "$work/tsdb"
  "$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:${prom_port}" --log.level=warn --enable-feature=exemplar-storage \
    >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  pids+=("$prom_pid")
  for _ in $(seq 1 300); do
    if curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${prom_port}/-/ready" 2>/dev/null; then prom_up=1; break; fi
    kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.05
  done
  [[ $prom_up -eq 1 ]] && break
  kill -TERM "$prom_pid" 2>/dev/null
  grep -q 'address already in use' "$work/prometheus.log" || break
done
[[ $prom_up -eq 1 ]] || die "prometheus did not become ready"
prom="http://127.0.0.1:${prom_port}"

# query EXPR: the first result's value ("" when the result is empty).
query() {
  curl -fsS -m 3 -G "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    jq -r 'if .status == "success" then (.data.result[0].value[1] // "") else "" end' 2>/dev/null
}
# Both jobs have a scrape that started after epoch second $1 (fractional).
scraped_after() {
  local j v
  for j in gatewayz gatewayz_text; do
    v="$(query "timestamp(up{job=\"$j\"})")"
    num_gt "$v" "$1" || return 1
  done
}
targets_up() {
  [[ "$(curl -fsS -m 3 "$prom/api/v1/targets" |
        jq '[.data.activeTargets[] | select(.health == "up")] | length' 2>/dev/null)" == 2 ]]
}

wait_until 20 targets_up || die "the two scrape targets did not come up: $(curl -sS "$prom/api/v1/targets")"
echo "# started in $((SECONDS - started)) s"

# --- what each job receives -----------------------------------------------------
ct="$(curl -sS -o /dev/null -w '%{content_type}' -H "Accept: $prom_accept" "$gw/metrics")"
[[ "$ct" == application/openmetrics-text*version=1.0.0* ]]
check "a default Prometheus scrape gets OpenMetrics 1.0.0" $? "content-type '$ct'"
# Through nginx the scrape's own Accept is replaced; with scrape_protocols
# Prometheus itself sends a text-only Accept.
text_job_accept="$prom_accept"
[[ $has_scrape_protocols -eq 1 ]] && text_job_accept="$text_accept"
ct="$(curl -sS -o /dev/null -w '%{content_type}' -H "Accept: $text_job_accept" "http://${text_target}/metrics")"
[[ "$ct" == text/plain*version=0.0.4* ]]
check "the gatewayz_text job gets Prometheus text 0.0.4" $? "content-type '$ct'"

# --- gzip: Prometheus sends Accept-Encoding: gzip with every scrape ---------------
curl -sS -o "$work/scrape.gz" -D "$work/scrape.headers" -H 'Accept-Encoding: gzip' -H "Accept: $prom_accept" "$gw/metrics"
grep -qi '^content-encoding: gzip' "$work/scrape.headers" && grep -qi '^vary: accept-encoding' "$work/scrape.headers" &&
  gzip -dc <"$work/scrape.gz" >"$work/scrape.gunzipped" && grep -q '^# EOF' "$work/scrape.gunzipped"
check "a scrape accepting gzip gets a valid gzip body (Content-Encoding, Vary)" $? "$(tr -d '\r' <"$work/scrape.headers" | tr '\n' ' ')"
plain_size="$(curl -sS -D "$work/plain.headers" -H "Accept: $prom_accept" "$gw/metrics" | wc -c)"
! grep -qi '^content-encoding' "$work/plain.headers" && (( plain_size > 0 ))
check "a plain scrape stays uncompressed" $? "$(tr -d '\r' <"$work/plain.headers" | tr '\n' ' ')"

# --- known traffic ----------------------------------------------------------------
tokens_expected=0
input_expected=0
output_expected=0
chat() {  # chat MAX_TOKENS: one plain chat; adds its usage to the expectations
  local body i o t
  body="$(curl -sS -m 10 -w '\n%{http_code}' "$gw/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"gpt-4o-mini\",\"max_tokens\":$1,\"messages\":[{\"role\":\"user\",\"content\":\"say $1 things\"}]}")"
  [[ "${body##*$'\n'}" == 200 ]] || { echo "chat: HTTP ${body##*$'\n'}: ${body%$'\n'*}" >&2; return 1; }
  read -r i o t < <(jq -r '.usage | "\(.prompt_tokens) \(.completion_tokens) \(.total_tokens)"' <<<"${body%$'\n'*}")
  [[ "$t" =~ ^[0-9]+$ && $t -gt 0 && $((i + o)) -eq $t ]] || { echo "chat: bad usage: ${body%$'\n'*}" >&2; return 1; }
  input_expected=$((input_expected + i)); output_expected=$((output_expected + o)); tokens_expected=$((tokens_expected + t))
}
stream_chat() {  # stream_chat MAX_TOKENS: streamed with include_usage; adds its usage
  local out i o t
  out="$(curl -sS -m 10 -N "$gw/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":$1,\"messages\":[{\"role\":\"user\",\"content\":\"stream $1 things\"}]}")"
  grep -q '^data: \[DONE\]' <<<"$out" || { echo "stream: no [DONE]: $out" >&2; return 1; }
  read -r i o t < <(sed -n 's/^data: \({.*}\)\r\{0,1\}$/\1/p' <<<"$out" |
    jq -rs 'map(select(.usage != null) | .usage) | if length == 1 then "\(.[0].prompt_tokens) \(.[0].completion_tokens) \(.[0].total_tokens)" else "x x x" end')
  [[ "$t" =~ ^[0-9]+$ && $t -gt 0 && $((i + o)) -eq $t ]] || { echo "stream: no single usage chunk: $out" >&2; return 1; }
  input_expected=$((input_expected + i)); output_expected=$((output_expected + o)); tokens_expected=$((tokens_expected + t))
}
bad_request() {  # malformed JSON: the gateway answers 400 itself
  [[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$gw/v1/chat/completions" \
        -H 'Content-Type: application/json' -d "{not json $1")" == 400 ]]
}
not_found() {
  [[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$gw/nope/$1/wp-admin.php?x=$1")" == 404 ]]
}

N=0 M=0 K=0 L=0
traffic_ok=0
phase() {  # phase PLAIN STREAMED BAD NOTFOUND
  local k
  for k in $(seq 1 "$1"); do chat $((3 + k)) && N=$((N + 1)) || traffic_ok=1; done
  for k in $(seq 1 "$2"); do stream_chat $((2 + k)) && M=$((M + 1)) || traffic_ok=1; done
  for k in $(seq 1 "$3"); do bad_request "$k" && K=$((K + 1)) || traffic_ok=1; done
  for k in $(seq 1 "$4"); do not_found "$k" && L=$((L + 1)) || traffic_ok=1; done
}
# Two phases with a scrape of both jobs between them, so rate() over the chat
# route's buckets has an increase to work with.
phase 3 2 2 2
t1="$(date +%s.%N)"
wait_until 15 scraped_after "$t1" || die "no scrape after the first phase of traffic"
phase 4 3 1 3
check "traffic answered as expected (plain 200, streamed with one usage chunk, 400, 404)" $traffic_ok
t2="$(date +%s.%N)"
# A scrape that starts after the last response was read; polling below covers
# the moment between a response and its recording on its server thread.
wait_until 15 scraped_after "$t2" || die "no scrape after the traffic"
echo "# traffic: $N plain, $M streamed ($tokens_expected tokens: $input_expected in, $output_expected out), $K x 400, $L x 404"

# expect_value NAME EXPR CMP EXPECTED: polls until `CMP value EXPECTED` holds.
# All checks share one 5 s budget for that (a passing run needs none of it), so
# a run with many failures still ends quickly.
settle_until=$((SECONDS + 5))
last=""
value_matches() { last="$(query "$1")"; "$2" "$last" "$3"; }
expect_value() {
  local left=$((settle_until - SECONDS))
  wait_until $((left > 0 ? left : 0)) value_matches "$2" "$3" "$4"
  check "$1" $? "$2 = '${last}', expected ${3#num_} $4"
}
cost_expected="$(awk -v i="$input_expected" -v o="$output_expected" 'BEGIN { printf "%.9f", (i * 2.0 + o * 8.0) / 1e6 }')"

for job in gatewayz gatewayz_text; do
  sel="job=\"$job\""
  echo "# job $job"
  expect_value "$job: up == 1" "up{$sel}" num_eq 1
  expect_value "$job: gatewayz_build_info{version=\"$version\"} == 1" "gatewayz_build_info{$sel,version=\"$version\"}" num_eq 1
  # model_inference_requests_total counts attempts: two per request here.
  expect_value "$job: sum(model_inference_requests_total) == 2 attempts x (plain + streamed)" \
    "sum(model_inference_requests_total{$sel})" num_eq $((2 * (N + M)))
  expect_value "$job: every request failed on primary, counted against it" \
    "sum(model_inference_requests_total{$sel,provider=\"primary\",status=\"error\"})" num_eq $((N + M))
  expect_value "$job: every request succeeded on secondary" \
    "sum(model_inference_requests_total{$sel,provider=\"secondary\",status=\"success\"})" num_eq $((N + M))
  expect_value "$job: every request failed over from primary" \
    "sum(gatewayz_failovers_total{$sel,from_provider=\"primary\"})" num_eq $((N + M))
  expect_value "$job: attempts - failovers == requests (plain + streamed)" \
    "sum(model_inference_requests_total{$sel}) - sum(gatewayz_failovers_total{$sel})" num_eq $((N + M))
  expect_value "$job: fastapi_requests_total 400 == bad requests sent" \
    "sum(fastapi_requests_total{$sel,status_code=\"400\"})" num_eq "$K"
  expect_value "$job: fastapi_requests_total 404 == unknown paths, under path=\"unmatched\"" \
    "sum(fastapi_requests_total{$sel,path=\"unmatched\",status_code=\"404\"})" num_eq "$L"
  expect_value "$job: fastapi_requests_total 200 on the chat route == plain + streamed" \
    "sum(fastapi_requests_total{$sel,path=\"/v1/chat/completions\",status_code=\"200\"})" num_eq $((N + M))
  expect_value "$job: sum(tokens_used_total) == the usage the responses reported" \
    "sum(tokens_used_total{$sel})" num_eq "$tokens_expected"
  expect_value "$job: input tokens == the responses' prompt_tokens" \
    "sum(tokens_used_total{$sel,token_type=\"input\"})" num_eq "$input_expected"
  expect_value "$job: output tokens == the responses' completion_tokens" \
    "sum(tokens_used_total{$sel,token_type=\"output\"})" num_eq "$output_expected"
  expect_value "$job: tokens_used_total summed over token_type per model == the usage reported" \
    "sum by (model) (tokens_used_total{$sel})" num_eq "$tokens_expected"
  expect_value "$job: gatewayz_cost_by_provider_total > 0" \
    "sum(gatewayz_cost_by_provider_total{$sel})" num_gt 0
  expect_value "$job: cost == usage x prices (\$$cost_expected)" \
    "sum(gatewayz_cost_by_provider_total{$sel,provider=\"secondary\"})" num_near "$cost_expected"
  expect_value "$job: credits_used_total == cost" "sum(credits_used_total{$sel})" num_near "$cost_expected"
  expect_value "$job: time_to_first_chunk_seconds_count == streamed" \
    "sum(time_to_first_chunk_seconds_count{$sel})" num_eq "$M"
  expect_value "$job: provider_response_time_seconds_count{provider=\"primary\"} == its failed attempts" \
    "sum(provider_response_time_seconds_count{$sel,provider=\"primary\"})" num_eq $((N + M))
  expect_value "$job: gatewayz_circuit_breaker_state closed == 1 for both providers" \
    "sum(gatewayz_circuit_breaker_state{$sel,state=\"closed\"})" num_eq 2

  q="histogram_quantile(0.95, sum by (le) (rate(fastapi_requests_duration_seconds_bucket{$sel}[1m])))"
  v="$(query "$q")"; is_number "$v"
  check "$job: p95 over all routes is a number" $? "$q = '$v'"
  q="histogram_quantile(0.95, sum by (le) (rate(fastapi_requests_duration_seconds_bucket{$sel,path=\"/v1/chat/completions\"}[1m])))"
  v="$(query "$q")"; is_number "$v" && num_gt "$v" 0
  check "$job: p95 of the chat route is a positive number" $? "$q = '$v'"
  q="histogram_quantile(0.5, sum by (le) (rate(model_inference_duration_seconds_bucket{$sel}[1m])))"
  v="$(query "$q")"; is_number "$v" && num_gt "$v" 0
  check "$job: median inference duration is a positive number" $? "$q = '$v'"

  v="$(query "count({$sel,path=~\".*(nope|wp-admin).*\"}) or vector(0)")"
  num_eq "$v" 0; check "$job: no raw request path became a label value" $? "count = '$v'"

  v="$(curl -fsS -m 3 "$prom/api/v1/targets" |
       jq -r --arg j "$job" '.data.activeTargets[] | select(.labels.job == $j) | "\(.health)|\(.lastError)"')"
  [[ "$v" == "up|" ]]; check "$job: target healthy, lastError empty" $? "'$v'"
  v="$(query "scrape_samples_scraped{$sel}")"; num_gt "$v" 100
  check "$job: scrape_samples_scraped > 100" $? "'$v'"
done

# --- Prometheus' own scrapes came compressed --------------------------------------
# fastapi_response_size_bytes counts the bytes the gateway sent. Between two
# plain scrapes of ours, every other /metrics answer is one of Prometheus'
# scrapes (both jobs; nginx passes Accept-Encoding on): their mean size must
# be a fraction of a plain scrape's.
metrics_bytes() {  # prints "SUM COUNT BYTES": the /metrics answers so far, and the wire size of this one
  local sent
  sent="$(curl -sS -o "$work/plain.txt" -w '%{size_header} %{size_download}' -H "Accept: $text_accept" "$gw/metrics")"
  awk -v sent="$sent" '
    $1 == "fastapi_response_size_bytes_sum{method=\"GET\",path=\"/metrics\"}" { s = $2 }
    $1 == "fastapi_response_size_bytes_count{method=\"GET\",path=\"/metrics\"}" { c = $2 }
    END { split(sent, b, " "); printf "%d %d %d\n", s, c, b[1] + b[2] }' "$work/plain.txt"
}
read -r sum1 count1 bytes1 < <(metrics_bytes)
t3="$(date +%s.%N)"
wait_until 15 scraped_after "$t3" && sleep 2 && t4="$(date +%s.%N)" && wait_until 15 scraped_after "$t4"
read -r sum2 count2 _ < <(metrics_bytes)
scrapes=$((count2 - count1 - 1))
mean=$(( scrapes > 0 ? (sum2 - sum1 - bytes1) / scrapes : 0 ))
(( scrapes >= 4 && mean > 0 && mean * 3 < bytes1 ))
check "Prometheus' scrapes were gzipped (their mean answer < 1/3 of a plain one)" $? \
  "$scrapes scrapes, mean $mean bytes; a plain scrape $bytes1 bytes"

# --- both parsers stored the same thing -----------------------------------------
names() {
  curl -fsS -m 3 -G "$prom/api/v1/label/__name__/values" --data-urlencode "match[]={job=\"$1\"}" |
    jq -r '.data[]' | grep -Ev '^(up|scrape_.*)$' | sort
}
names gatewayz >"$work/names.om"
names gatewayz_text >"$work/names.text"
n_om="$(wc -l <"$work/names.om")"
n_text="$(wc -l <"$work/names.text")"
(( n_om > 50 && n_text > 50 ))
check "both jobs stored over 50 metric names" $? "OpenMetrics $n_om, text $n_text"
d="$(diff "$work/names.om" "$work/names.text" | grep '^[<>]' | tr '\n' ' ')"
[[ -z "$d" ]]; check "OpenMetrics and text jobs store the same metric names" $? "differences (< OpenMetrics, > text): $d"
for m in model_inference_requests_total tokens_used_total gatewayz_cost_by_provider_total \
         fastapi_requests_duration_seconds_count model_inference_duration_seconds_bucket; do
  a="$(query "sum(${m}{job=\"gatewayz\",path!=\"/metrics\"})")"
  b="$(query "sum(${m}{job=\"gatewayz_text\",path!=\"/metrics\"})")"
  num_eq "$a" "$b"; check "$m: same total from both jobs" $? "OpenMetrics '$a', text '$b'"
done

# --- exemplars: a sampled request's trace id, stored by Prometheus -----------------
# After every count above (this request would change them): one chat in a
# trace of our own, sampled; the OpenMetrics job must store its trace id as an
# exemplar of the latency histograms. The text job gets none (0.0.4 has none).
trace_id="4bf92f3577b34da6a3ce929d0e0e4736"
t5="$(date +%s.%N)"
code="$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$gw/v1/chat/completions" -H 'Content-Type: application/json' \
  -H "traceparent: 00-${trace_id}-00f067aa0ba902b7-01" \
  -d '{"model":"gpt-4o-mini","max_tokens":3,"messages":[{"role":"user","content":"traced"}]}')"
[[ "$code" == 200 ]]; check "the traced chat is answered" $? "HTTP $code"
exemplar_traces() {  # exemplar_traces SELECTOR: the trace_id labels of its exemplars since t5 - 60 s
  curl -fsS -m 3 -G "$prom/api/v1/query_exemplars" --data-urlencode "query=$1" \
    --data-urlencode "start=$(awk -v t="$t5" 'BEGIN { printf "%.3f", t - 60 }')" \
    --data-urlencode "end=$(date +%s.%N)" 2>/dev/null |
    jq -r '.data[]?.exemplars[]?.labels.trace_id' 2>/dev/null
}
has_trace() { exemplar_traces "$1" | grep -qx "$trace_id"; }
for m in model_inference_duration_seconds_bucket fastapi_requests_duration_seconds_bucket \
         gen_ai_client_operation_duration_seconds_bucket; do
  wait_until 10 has_trace "${m}{job=\"gatewayz\"}"
  check "exemplar: $m has the traced request's trace_id" $? "$(exemplar_traces "${m}{job=\"gatewayz\"}" | sort -u | head -5 | tr '\n' ' ')"
done
v="$(exemplar_traces "model_inference_duration_seconds_bucket{job=\"gatewayz_text\"}" | wc -l)"
[[ "$v" == 0 ]]; check "exemplar: none through text 0.0.4" $? "$v exemplars"

# --- Prometheus' own view of the scrapes ------------------------------------------
# Duplicate or out-of-order samples within one scrape mean a malformed exposition.
prom_self="$(curl -fsS -m 3 "$prom/metrics")"
for c in prometheus_target_scrapes_sample_duplicate_timestamp_total prometheus_target_scrapes_sample_out_of_order_total \
         prometheus_target_scrapes_sample_out_of_bounds_total prometheus_target_scrapes_exceeded_sample_limit_total; do
  v="$(awk -v n="$c" '$1 == n { print $2 }' <<<"$prom_self")"
  num_eq "${v:-missing}" 0; check "prometheus: $c == 0" $? "'${v:-missing}'"
done
check_prometheus_log "$work/prometheus.log"

echo "# runtime $((SECONDS - started)) s"
echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]] || { show_logs; exit 1; }

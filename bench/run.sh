#!/usr/bin/env bash
# Loopback benchmark of gatewayz against nginx (see bench/README.md).
#
# Rows, each measured with wrk (POST /v1/chat/completions, --latency):
#   nginx-direct     (a) nginx answering a fixed chat.completion body
#   nginx-proxy      (b) nginx reverse proxy (keep-alive upstream) -> (a)
#   nginx-proxy-log  (b') as (b) with nginx's default access log (a line per request,
#                        unbuffered): like gatewayz's ledger, it records every request,
#                        so (c), the default config, is judged against it
#   gatewayz         (c) gatewayz serve (threads: 1)               -> (a)
#   gatewayz-nometrics (c') as (c) with metrics.enabled: false     -> (a)
#   gatewayz-noledger (c*) as (c) with storage.url: none (no store, no ledger) -> (a)
#   gatewayz-keys    (c'') as (c) with auth.mode: keys, a key made by
#                        `gatewayz keys create`, priced model      -> (a)
#   gatewayz-nologs  (c0) as (c) with logging.level: error (no line per request) -> (a)
#   gatewayz-loki    (cL) as (c) with its lines also shipped to Loki (logging.loki.url: (a),
#                        whose 2xx stands in for Loki's 204)       -> (a)
#   gatewayz-cache-hit (cH) as (c) with cache.mode: memory: every request after the
#                        first is answered from the response cache  -> (a)
#   gatewayz-cache-miss (cM) as (cH) with cache.max_entry_bytes below the answer's size:
#                        every request looks the cache up, misses and is proxied -> (a)
#   gatewayz-redis-hit (cRH) as (cH) with cache.mode: redis (a redis-server on $LOAD_CPU),
#                        default local tier: repeated hits are served in-process
#   gatewayz-redis-remote-hit (cRR) as (cRH) with cache.local_max_bytes: 0: every hit a Redis GET
#   gatewayz-redis-miss (cRM) as (cM) with cache.mode: redis: a Redis GET per request -> (a)
#   mock-stream      (d) gatewayz mock-provider, stream:true, 32 tokens, direct
#   gatewayz-stream  (e) gatewayz serve                            -> (d)'s mock
# Every gatewayz but (c*) keeps its SQLite store (the ledger: one row per
# request) in the temp dir.
# The proxy under test (b, c, e) runs on CPU $PROXY_CPU; wrk and the upstream
# (nginx (a), the mock) on CPU $LOAD_CPU.
#
# Environment:
#   DURATION=15      seconds per row       WARMUP=1   seconds of unrecorded load first
#   CONNECTIONS=64   THREADS=2             wrk settings
#   ROWS=nginx-direct,nginx-proxy,nginx-proxy-log,gatewayz,gatewayz-nometrics,gatewayz-noledger,gatewayz-keys,
#        gatewayz-nologs,gatewayz-loki,gatewayz-cache-hit,gatewayz-cache-miss,gatewayz-redis-hit,
#        gatewayz-redis-remote-hit,gatewayz-redis-miss,mock-stream,gatewayz-stream
#   ROUNDS=1         measure every row this many times (interleaved); the table shows medians
#   GATEWAYZ_BIN=build-release/src/app/gatewayz   SKIP_BUILD=1: do not build it
#   BASE_PORT=18480  nginx ports are BASE_PORT to BASE_PORT+2 (gatewayz/mock pick their own)
#   PROXY_CPU=0 LOAD_CPU=1
#   BENCH_STRICT=1   exit 1 when a target is missed
#   KEEP_TMP=1       keep the temp dir (configs, logs)
# Output: the table on stdout and in bench/results/<timestamp>.md; raw wrk
# output in bench/results/<timestamp>-wrk.log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/bench"
cd "$repo_root"

duration="${DURATION:-15}"
warmup="${WARMUP:-1}"
connections="${CONNECTIONS:-64}"
wrk_threads="${THREADS:-2}"
all_rows="nginx-direct,nginx-proxy,nginx-proxy-log,gatewayz,gatewayz-nometrics,gatewayz-noledger,gatewayz-keys,gatewayz-nologs,gatewayz-loki,gatewayz-cache-hit,gatewayz-cache-miss,gatewayz-redis-hit,gatewayz-redis-remote-hit,gatewayz-redis-miss,mock-stream,gatewayz-stream"
rows="${ROWS:-$all_rows}"
rounds="${ROUNDS:-1}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench: ROUNDS must be a positive integer" >&2; exit 1; }
base_port="${BASE_PORT:-18480}"
proxy_cpu="${PROXY_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
bin="${GATEWAYZ_BIN:-$repo_root/build-release/src/app/gatewayz}"

nginx_direct_port="$base_port"
nginx_proxy_port="$((base_port + 1))"
nginx_proxy_log_port="$((base_port + 2))"

chat_body='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, benchmark"}]}'
stream_body_mock='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, benchmark"}],"stream":true}'
stream_body_gateway='{"model":"mock-stream","messages":[{"role":"user","content":"Hello, benchmark"}],"stream":true}'

want_row() { [[ ",$rows," == *",$1,"* ]]; }
need_gatewayz() {
  want_row gatewayz || want_row gatewayz-nometrics || want_row gatewayz-noledger || want_row gatewayz-keys ||
    want_row mock-stream || want_row gatewayz-stream
}
need_nginx_direct() {
  want_row nginx-direct || want_row nginx-proxy || want_row nginx-proxy-log || want_row gatewayz ||
    want_row gatewayz-nometrics ||
    want_row gatewayz-noledger || want_row gatewayz-keys || want_row gatewayz-nologs || want_row gatewayz-loki ||
    want_row gatewayz-cache-hit || want_row gatewayz-cache-miss || want_row gatewayz-redis-hit ||
    want_row gatewayz-redis-remote-hit || want_row gatewayz-redis-miss
}

die() { echo "bench: $*" >&2; exit 1; }

for tool in wrk nginx taskset setsid curl awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/install-deps.sh)"
done
nginx_bin="$(command -v nginx)"

pin_proxy=()
pin_load=()
if [[ "$(nproc)" -ge 2 ]]; then
  pin_proxy=(taskset -c "$proxy_cpu")
  pin_load=(taskset -c "$load_cpu")
else
  echo "bench: only one CPU: nothing is pinned, numbers are not comparable" >&2
fi

if need_gatewayz; then
  if [[ "${SKIP_BUILD:-0}" != "1" && -z "${GATEWAYZ_BIN:-}" ]]; then
    ./scripts/build.sh release --target gatewayz >&2
  fi
  [[ -x "$bin" ]] || die "no gatewayz binary at $bin (build it: scripts/build.sh release)"
fi

tmp_dir="$(mktemp -d -t gatewayz-bench.XXXXXX)"
pids=()

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true  # one stopped by pause_other_gatewayz
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP_TMP:-0}" == "1" ]]; then
    echo "bench: temp files kept in $tmp_dir" >&2
  else
    rm -rf "$tmp_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for_port_file FILE PID NAME -> prints the port
wait_for_port_file() {
  local file="$1" pid="$2" name="$3"
  for _ in $(seq 1 200); do
    if [[ -s "$file" ]]; then cat "$file"; return 0; fi
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    sleep 0.05
  done
  die "$name wrote no port file"
}

# check_target NAME URL BODY [BEARER]: one request must answer 200 before measuring.
check_target() {
  local name="$1" url="$2" body="$3" bearer="${4:-}" code=""
  local auth=()
  [[ -n "$bearer" ]] && auth=(-H "Authorization: Bearer $bearer")
  for _ in $(seq 1 100); do
    code="$(curl -s -o "$tmp_dir/check.out" -w '%{http_code}' -H 'Content-Type: application/json' \
      "${auth[@]}" --data-binary "$body" --max-time 5 "$url" || true)"
    [[ "$code" == "200" ]] && return 0
    sleep 0.1
  done
  echo "bench: $name at $url answered ${code:-nothing}:" >&2
  head -c 2000 "$tmp_dir/check.out" >&2 || true
  die "$name is not ready"
}

# start_nginx NAME TEMPLATE PORT [UPSTREAM_PORT [ACCESS_LOG]]: ACCESS_LOG "on" logs every request
# to NAME/access.log in nginx's default (combined, unbuffered) format; otherwise no access log.
start_nginx() {
  local name="$1" template="$2" port="$3" upstream_port="${4:-0}" access_log="off"
  local prefix="$tmp_dir/$name" body
  [[ "${5:-off}" == on ]] && access_log="$prefix/access.log"
  port_in_use "$port" && die "port $port is in use (set BASE_PORT)"
  mkdir -p "$prefix"
  body="$(tr -d '\n' <"$bench_dir/chat-response.json")"
  # The body goes in with awk: it contains characters sed would interpret.
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$upstream_port|g" \
    -e "s|@ACCESS_LOG@|$access_log|g" "$template" |
    BODY="$body" awk '{ gsub(/@BODY@/, ENVIRON["BODY"]); print }' >"$prefix/nginx.conf"
  local pin=("${pin_load[@]}")
  [[ "$name" == nginx-proxy* ]] && pin=("${pin_proxy[@]}")
  "${pin[@]}" "$nginx_bin" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
    >"$prefix/stdout.log" 2>&1 &
  pids+=("$!")
  nginx_pids[$name]="$!"
}

# cpu_ticks PID: user + system clock ticks of PID (all its threads) and of its
# children (nginx's workers), as /proc counts them.
cpu_ticks() {
  local total=0 p t
  for p in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
    t="$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)" || continue
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
clk_tck="$(getconf CLK_TCK)"
declare -A nginx_pids

results_dir="$bench_dir/results"
mkdir -p "$results_dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
result_md="$results_dir/$stamp.md"
wrk_log="$results_dir/$stamp-wrk.log"
: >"$wrk_log"

declare -A rps p50 p99 errs desc cpu
# Per-round values (space-separated) when ROUNDS > 1; the table shows their medians.
declare -A rps_all p50_all p99_all cpu_all

# Only the proxy under test may run on the proxy core during a row: the other
# gatewayz instances are stopped (SIGSTOP) while it is measured and continued
# afterwards. Idle, they would still do background work there (ledger
# flushes, the SQLite checkpoints left from their own rows, health
# sweeps), which lands in whichever row runs next; stopped, that work waits
# for the instance's own next row, where it belongs.
# gatewayz_of_row ROW -> the gatewayz instance a row measures (none for the others)
gatewayz_of_row() {
  case "$1" in
    gatewayz-stream) echo gatewayz ;;
    gatewayz*) echo "$1" ;;
    *) echo "" ;;
  esac
}
pause_other_gatewayz() {
  local keep="$1" name
  for name in "${!gw_pids[@]}"; do
    [[ "$name" == "$keep" ]] || kill -STOP "${gw_pids[$name]}" 2>/dev/null || true
  done
}
resume_all_gatewayz() {
  local name
  for name in "${!gw_pids[@]}"; do kill -CONT "${gw_pids[$name]}" 2>/dev/null || true; done
}

# measure ROW DESCRIPTION URL BODY [BEARER]
measure() {
  local row="$1" description="$2" url="$3" body="$4" bearer="${5:-}" out line
  desc[$row]="$description"
  echo "bench: $row: $description (${duration}s, round $round/$rounds)" >&2
  pause_other_gatewayz "$(gatewayz_of_row "$row")"
  if [[ "$warmup" != "0" ]]; then
    BENCH_BODY="$body" BENCH_BEARER="$bearer" "${pin_load[@]}" wrk -t"$wrk_threads" -c"$connections" \
      -d"${warmup}s" -s "$bench_dir/chat.lua" "$url" >/dev/null 2>&1 || true
  fi
  # The process under test, for its CPU time per request (every thread: the
  # ledger writer and checkpointer too; nginx's workers).
  local proxy_pid="" ticks_before=0 ticks_after=0
  case "$row" in
    nginx-proxy | nginx-proxy-log) proxy_pid="${nginx_pids[$row]:-}" ;;
    gatewayz*) proxy_pid="${gw_pids[$(gatewayz_of_row "$row")]:-}" ;;
  esac
  [[ -n "$proxy_pid" ]] && ticks_before="$(cpu_ticks "$proxy_pid")"
  out="$(BENCH_BODY="$body" BENCH_BEARER="$bearer" "${pin_load[@]}" wrk -t"$wrk_threads" -c"$connections" \
    -d"${duration}s" --latency -s "$bench_dir/chat.lua" "$url" 2>&1)" || die "wrk failed for $row: $out"
  [[ -n "$proxy_pid" ]] && ticks_after="$(cpu_ticks "$proxy_pid")"
  resume_all_gatewayz
  # Failed requests from a gatewayz: keep what its /metrics says about them
  # (requests by status, ledger backlog refusals, breakers, the store's checkpoint timings), since
  # the instance and its temp dir are gone once the run ends.
  local instance
  instance="$(gatewayz_of_row "$row")"
  if [[ -n "$instance" ]] && grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    { echo "--- $instance /metrics after the failures:"
      curl -s --max-time 5 "http://127.0.0.1:${gw_ports[$instance]}/metrics" |
        grep -E '^(fastapi_requests_total|gatewayz_ledger_backlog|gatewayz_circuit_breaker_state|circuit_breaker_rejected|gatewayz_telemetry_dropped|database_query_duration_seconds_(count|sum))' |
        grep -v ' 0$' || true
      echo; } >>"$wrk_log"
  fi
  { echo "=== $row (round $round): $description"; echo "$out"; echo; } >>"$wrk_log"
  line="$(grep '^BENCH_RESULT ' <<<"$out" | tail -n 1)"
  [[ -n "$line" ]] || die "no result line from wrk for $row: $out"
  local requests duration_us p50_us p99_us e
  requests="$(field requests "$line")"
  duration_us="$(field duration_us "$line")"
  p50_us="$(field p50_us "$line")"
  p99_us="$(field p99_us "$line")"
  e=$(( $(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") \
        + $(field status_errors "$line") + $(field timeouts "$line") ))
  rps_all[$row]+="$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", (d > 0 ? r / (d / 1e6) : 0) }') "
  p50_all[$row]+="$p50_us "
  p99_all[$row]+="$p99_us "
  if [[ -n "$proxy_pid" ]]; then
    cpu_all[$row]+="$(awk -v t=$((ticks_after - ticks_before)) -v hz="$clk_tck" -v r="$requests" \
      'BEGIN { printf "%.2f", (r > 0 ? t * 1e6 / hz / r : 0) }') "
    cpu[$row]="$(median "${cpu_all[$row]}")"
  fi
  rps[$row]="$(median "${rps_all[$row]}")"
  p50[$row]="$(median "${p50_all[$row]}")"
  p99[$row]="$(median "${p99_all[$row]}")"
  errs[$row]=$(( ${errs[$row]:-0} + e ))
}

# median "V V ...": the middle value (the lower middle one of an even count).
median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }

ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# --- upstreams and proxies ---------------------------------------------------

if need_nginx_direct; then
  start_nginx nginx-direct "$bench_dir/nginx-upstream.conf" "$nginx_direct_port"
  check_target nginx-direct "http://127.0.0.1:$nginx_direct_port/v1/chat/completions" "$chat_body"
fi
if want_row nginx-proxy; then
  start_nginx nginx-proxy "$bench_dir/nginx-proxy.conf" "$nginx_proxy_port" "$nginx_direct_port"
  check_target nginx-proxy "http://127.0.0.1:$nginx_proxy_port/v1/chat/completions" "$chat_body"
fi
if want_row nginx-proxy-log; then
  start_nginx nginx-proxy-log "$bench_dir/nginx-proxy.conf" "$nginx_proxy_log_port" "$nginx_direct_port" on
  check_target nginx-proxy-log "http://127.0.0.1:$nginx_proxy_log_port/v1/chat/completions" "$chat_body"
fi

mock_port=""
if want_row mock-stream || want_row gatewayz-stream; then
  "${pin_load[@]}" "$bin" mock-provider --listen 127.0.0.1:0 --port-file "$tmp_dir/mock.port" \
    --threads 1 --tokens-per-s 0 --output-tokens 32 >"$tmp_dir/mock.log" 2>&1 &
  mock_pid=$!
  pids+=("$mock_pid")
  mock_port="$(wait_for_port_file "$tmp_dir/mock.port" "$mock_pid" mock-provider)"
  check_target mock-provider "http://127.0.0.1:$mock_port/v1/chat/completions" "$stream_body_mock"
fi

# write_gatewayz_config NAME WITH_NGINX WITH_MOCK [EXTRA_YAML [PRICED [STORE]]]: $tmp_dir/NAME.yaml,
# with the store (the ledger) in $tmp_dir/NAME.db, or with STORE=none no store at all (no ledger).
# PRICED=1 prices gpt-4o-mini (so requests are charged).
write_gatewayz_config() {
  local name="$1" with_nginx="$2" with_mock="$3" extra="${4:-}" priced="${5:-0}" store="${6:-sqlite}"
  {
    echo "server:"
    echo "  listen: \"127.0.0.1:0\""
    echo "  port_file: \"$tmp_dir/$name.port\""
    echo "  threads: 1"
    echo "storage:"
    if [[ "$store" == none ]]; then
      echo "  url: none"
    else
      echo "  url: \"sqlite://$tmp_dir/$name.db\""
      echo "  spill_path: \"$tmp_dir/$name.spill\""
    fi
    [[ -n "$extra" ]] && printf '%s\n' "$extra"
    echo "providers:"
    if [[ "$with_nginx" == 1 ]]; then
      echo "  - name: nginx"
      echo "    kind: openai"
      echo "    base_url: \"http://127.0.0.1:$nginx_direct_port/v1\""
      echo "    models:"
      echo "      - id: gpt-4o-mini"
      if [[ "$priced" == 1 ]]; then
        echo "        input_per_million: 0.15"
        echo "        output_per_million: 0.60"
      fi
    fi
    if [[ "$with_mock" == 1 ]]; then
      echo "  - name: mock"
      echo "    kind: openai"
      echo "    base_url: \"http://127.0.0.1:$mock_port/v1\""
      echo "    models:"
      echo "      - id: mock-stream"
      echo "        upstream: gpt-4o-mini"
    fi
  } >"$tmp_dir/$name.yaml"
}

declare -A gw_pids gw_ports
# start_gatewayz NAME: serves $tmp_dir/NAME.yaml on CPU $PROXY_CPU.
start_gatewayz() {
  local name="$1"
  # In a session of its own: pause_other_gatewayz stops instances, and the
  # kernel hangs up (SIGHUP) the stopped members of an orphaned process group
  # whenever a process of that group exits, as each wrk does when the bench
  # runs without a controlling terminal. (setsid does not fork here, so $! is
  # the server's pid.)
  setsid "${pin_proxy[@]}" "$bin" serve --config "$tmp_dir/$name.yaml" >"$tmp_dir/$name.log" 2>&1 &
  gw_pids[$name]=$!
  pids+=("$!")
  gw_ports[$name]="$(wait_for_port_file "$tmp_dir/$name.port" "$!" "gatewayz serve ($name)")"
}

gw_pid=""
gw_port=""
if want_row gatewayz || want_row gatewayz-stream; then
  with_nginx=0; want_row gatewayz && with_nginx=1
  with_mock=0; [[ -n "$mock_port" ]] && with_mock=1
  write_gatewayz_config gatewayz "$with_nginx" "$with_mock"
  start_gatewayz gatewayz
  gw_pid="${gw_pids[gatewayz]}"
  gw_port="${gw_ports[gatewayz]}"
  want_row gatewayz &&
    check_target gatewayz "http://127.0.0.1:$gw_port/v1/chat/completions" "$chat_body"
  want_row gatewayz-stream &&
    check_target gatewayz-stream "http://127.0.0.1:$gw_port/v1/chat/completions" "$stream_body_gateway"
fi
if want_row gatewayz-nometrics; then
  write_gatewayz_config gatewayz-nometrics 1 0 $'metrics:\n  enabled: false'
  start_gatewayz gatewayz-nometrics
  check_target gatewayz-nometrics "http://127.0.0.1:${gw_ports[gatewayz-nometrics]}/v1/chat/completions" "$chat_body"
fi
if want_row gatewayz-noledger; then
  write_gatewayz_config gatewayz-noledger 1 0 "" 0 none
  start_gatewayz gatewayz-noledger
  check_target gatewayz-noledger "http://127.0.0.1:${gw_ports[gatewayz-noledger]}/v1/chat/completions" "$chat_body"
fi
if want_row gatewayz-nologs; then
  write_gatewayz_config gatewayz-nologs 1 0 $'logging:\n  level: error'
  start_gatewayz gatewayz-nologs
  check_target gatewayz-nologs "http://127.0.0.1:${gw_ports[gatewayz-nologs]}/v1/chat/completions" "$chat_body"
fi
if want_row gatewayz-loki; then
  write_gatewayz_config gatewayz-loki 1 0 \
    "$(printf 'logging:\n  loki:\n    url: "http://127.0.0.1:%s/loki/api/v1/push"' "$nginx_direct_port")"
  start_gatewayz gatewayz-loki
  check_target gatewayz-loki "http://127.0.0.1:${gw_ports[gatewayz-loki]}/v1/chat/completions" "$chat_body"
fi
if want_row gatewayz-cache-hit; then
  write_gatewayz_config gatewayz-cache-hit 1 0 $'cache:\n  mode: memory'
  start_gatewayz gatewayz-cache-hit
  check_target gatewayz-cache-hit "http://127.0.0.1:${gw_ports[gatewayz-cache-hit]}/v1/chat/completions" "$chat_body"
fi
if want_row gatewayz-cache-miss; then
  write_gatewayz_config gatewayz-cache-miss 1 0 $'cache:\n  mode: memory\n  max_entry_bytes: 256'
  start_gatewayz gatewayz-cache-miss
  check_target gatewayz-cache-miss "http://127.0.0.1:${gw_ports[gatewayz-cache-miss]}/v1/chat/completions" "$chat_body"
fi
if want_row gatewayz-redis-hit || want_row gatewayz-redis-remote-hit || want_row gatewayz-redis-miss; then
  command -v redis-server >/dev/null 2>&1 || die "'redis-server' not found (run scripts/install-deps.sh)"
  redis_port="$((base_port + 3))"
  "${pin_load[@]}" redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$tmp_dir" >"$tmp_dir/redis.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do
    [[ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" == PONG ]] && break
    sleep 0.05
  done
  [[ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" == PONG ]] || die "redis-server did not start: $(cat "$tmp_dir/redis.log")"
  redis_yaml="$(printf 'redis:\n  url: "redis://127.0.0.1:%s/0"\ncache:\n  mode: redis' "$redis_port")"
  if want_row gatewayz-redis-hit; then
    write_gatewayz_config gatewayz-redis-hit 1 0 "$redis_yaml"
    start_gatewayz gatewayz-redis-hit
    check_target gatewayz-redis-hit "http://127.0.0.1:${gw_ports[gatewayz-redis-hit]}/v1/chat/completions" "$chat_body"
  fi
  if want_row gatewayz-redis-remote-hit; then
    write_gatewayz_config gatewayz-redis-remote-hit 1 0 "$redis_yaml"$'\n  local_max_bytes: 0'
    start_gatewayz gatewayz-redis-remote-hit
    check_target gatewayz-redis-remote-hit \
      "http://127.0.0.1:${gw_ports[gatewayz-redis-remote-hit]}/v1/chat/completions" "$chat_body"
  fi
  if want_row gatewayz-redis-miss; then
    # Its own database: the hit rows store this very request's answer in db 0.
    write_gatewayz_config gatewayz-redis-miss 1 0 "${redis_yaml/\/0\"/\/1\"}"$'\n  max_entry_bytes: 256'
    start_gatewayz gatewayz-redis-miss
    check_target gatewayz-redis-miss "http://127.0.0.1:${gw_ports[gatewayz-redis-miss]}/v1/chat/completions" "$chat_body"
  fi
fi
bench_key=""
if want_row gatewayz-keys; then
  write_gatewayz_config gatewayz-keys 1 0 $'auth:\n  mode: keys\n  admin_key: "bench-admin-key-not-secret"' 1
  # The last stdout line of `keys create` is the key; credit enough for any run.
  bench_key="$("$bin" keys create --customer bench --credits 1000000 --config "$tmp_dir/gatewayz-keys.yaml" \
    2>"$tmp_dir/keys-create.log" | tail -n 1)" || die "gatewayz keys create failed: $(cat "$tmp_dir/keys-create.log")"
  [[ "$bench_key" == gwz_* ]] || die "gatewayz keys create printed no key (got '$bench_key')"
  start_gatewayz gatewayz-keys
  check_target gatewayz-keys "http://127.0.0.1:${gw_ports[gatewayz-keys]}/v1/chat/completions" "$chat_body" \
    "$bench_key"
fi

# --- measurements ----------------------------------------------------------

for ((round = 1; round <= rounds; round++)); do
  want_row nginx-direct && measure nginx-direct "(a) nginx, fixed chat.completion body" \
    "http://127.0.0.1:$nginx_direct_port/v1/chat/completions" "$chat_body"
  want_row nginx-proxy && measure nginx-proxy "(b) nginx reverse proxy -> (a)" \
    "http://127.0.0.1:$nginx_proxy_port/v1/chat/completions" "$chat_body"
  want_row nginx-proxy-log && measure nginx-proxy-log "(b') nginx reverse proxy with its default access log -> (a)" \
    "http://127.0.0.1:$nginx_proxy_log_port/v1/chat/completions" "$chat_body"
  want_row gatewayz && measure gatewayz "(c) gatewayz -> (a)" \
    "http://127.0.0.1:$gw_port/v1/chat/completions" "$chat_body"
  want_row gatewayz-nometrics && measure gatewayz-nometrics "(c') gatewayz, metrics.enabled false -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-nometrics]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-noledger && measure gatewayz-noledger "(c*) gatewayz, storage.url none (no ledger) -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-noledger]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-keys && measure gatewayz-keys "(c'') gatewayz, auth.mode keys, priced -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-keys]}/v1/chat/completions" "$chat_body" "$bench_key"
  want_row gatewayz-nologs && measure gatewayz-nologs "(c0) gatewayz, logging.level error (no request lines) -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-nologs]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-loki && measure gatewayz-loki "(cL) gatewayz, request lines to stdout and Loki -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-loki]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-cache-hit && measure gatewayz-cache-hit "(cH) gatewayz, response cache hits (memory)" \
    "http://127.0.0.1:${gw_ports[gatewayz-cache-hit]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-cache-miss && measure gatewayz-cache-miss "(cM) gatewayz, response cache misses (memory) -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-cache-miss]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-redis-hit && measure gatewayz-redis-hit "(cRH) gatewayz, response cache hits (Redis)" \
    "http://127.0.0.1:${gw_ports[gatewayz-redis-hit]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-redis-remote-hit && measure gatewayz-redis-remote-hit \
    "(cRR) gatewayz, response cache hits (Redis, no local tier: a GET each)" \
    "http://127.0.0.1:${gw_ports[gatewayz-redis-remote-hit]}/v1/chat/completions" "$chat_body"
  want_row gatewayz-redis-miss && measure gatewayz-redis-miss "(cRM) gatewayz, response cache misses (Redis) -> (a)" \
    "http://127.0.0.1:${gw_ports[gatewayz-redis-miss]}/v1/chat/completions" "$chat_body"
  want_row mock-stream && measure mock-stream "(d) mock-provider direct, SSE 32 tokens" \
    "http://127.0.0.1:$mock_port/v1/chat/completions" "$stream_body_mock"
  want_row gatewayz-stream && measure gatewayz-stream "(e) gatewayz -> mock-provider, SSE 32 tokens" \
    "http://127.0.0.1:$gw_port/v1/chat/completions" "$stream_body_gateway"
done

rss_kb=""
hwm_kb=""
for name in "${!gw_pids[@]}"; do
  kill -0 "${gw_pids[$name]}" 2>/dev/null || die "gatewayz ($name) died during the run (log: $tmp_dir/$name.log)"
done
# A ledger that kept up: a writer that fell behind would drop rows (and look
# cheaper than it is). Read from each ledger-writing gatewayz that serves /metrics.
ledger_dropped=""
for name in gatewayz gatewayz-keys; do
  [[ -n "${gw_ports[$name]:-}" ]] || continue
  dropped="$(curl -sf "http://127.0.0.1:${gw_ports[$name]}/metrics" |
    awk '/^gatewayz_telemetry_dropped_total\{pipeline="ledger"\}/ { print $2 }')"
  ledger_dropped=$(( ${ledger_dropped:-0} + ${dropped:-0} ))
done
if [[ -n "$gw_pid" ]]; then
  rss_kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$gw_pid/status")"
  hwm_kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$gw_pid/status")"
fi

# --- report ------------------------------------------------------------------

misses=0
# judge VALUE OP LIMIT: sets $verdict to "met" or "MISSED" (and counts misses).
judge() {
  if awk -v v="$1" -v op="$2" -v l="$3" \
      'BEGIN { ok = (op == ">=") ? v >= l : (op == "<=") ? v <= l : v < l; exit !ok }'; then
    verdict="met"
  else
    verdict="MISSED"
    misses=$((misses + 1))
  fi
}

# The targets (issue 16, part 3): the default config (c), which records every
# request, against nginx with its access log (b'), which does too; the proxy
# path alone (c*) against nginx (b); auth and charging (c'') against (c).
r_rps="" r_p99="" r_cpu="" v_rps="" v_p99="" v_cpu="" rss_mb="" hwm_mb="" v_rss=""
if [[ -n "${rps[gatewayz]:-}" && -n "${rps[nginx-proxy-log]:-}" ]]; then
  r_rps="$(ratio "${rps[gatewayz]}" "${rps[nginx-proxy-log]}")"
  r_p99="$(ratio "${p99[gatewayz]}" "${p99[nginx-proxy-log]}")"
  judge "$r_rps" ">=" 0.8; v_rps="$verdict"
  judge "$r_p99" "<=" 1.5; v_p99="$verdict"
  if [[ -n "${cpu[gatewayz]:-}" && -n "${cpu[nginx-proxy-log]:-}" ]]; then
    r_cpu="$(ratio "${cpu[gatewayz]}" "${cpu[nginx-proxy-log]}")"
    judge "$r_cpu" "<=" 1.25; v_cpu="$verdict"
  fi
fi
r_path_rps="" v_path=""
if [[ -n "${rps[gatewayz-noledger]:-}" && -n "${rps[nginx-proxy]:-}" ]]; then
  r_path_rps="$(ratio "${rps[gatewayz-noledger]}" "${rps[nginx-proxy]}")"
  judge "$r_path_rps" ">=" 0.9; v_path="$verdict"
fi
# Relative costs: metrics (c vs c'), auth + charging (c'' vs c; the ledger is on in both), the
# ledger (c vs c*) and auth + charging + ledger together (c'' vs c*, informational).
r_metrics_rps="" r_metrics_p99="" v_metrics="" r_keys_rps="" r_keys_p99="" v_keys=""
if [[ -n "${rps[gatewayz]:-}" && -n "${rps[gatewayz-nometrics]:-}" ]]; then
  r_metrics_rps="$(ratio "${rps[gatewayz]}" "${rps[gatewayz-nometrics]}")"
  r_metrics_p99="$(ratio "${p99[gatewayz]}" "${p99[gatewayz-nometrics]}")"
  judge "$r_metrics_rps" ">=" 0.95; v_metrics="$verdict"
fi
if [[ -n "${rps[gatewayz]:-}" && -n "${rps[gatewayz-keys]:-}" ]]; then
  r_keys_rps="$(ratio "${rps[gatewayz-keys]}" "${rps[gatewayz]}")"
  r_keys_p99="$(ratio "${p99[gatewayz-keys]}" "${p99[gatewayz]}")"
  judge "$r_keys_rps" ">=" 0.90; v_keys="$verdict"
fi
# Logs (issue 17): lines to stdout and Loki (cL) against no request lines (c0).
r_logs_rps="" r_logs_p99="" v_logs=""
if [[ -n "${rps[gatewayz-loki]:-}" && -n "${rps[gatewayz-nologs]:-}" ]]; then
  r_logs_rps="$(ratio "${rps[gatewayz-loki]}" "${rps[gatewayz-nologs]}")"
  r_logs_p99="$(ratio "${p99[gatewayz-loki]}" "${p99[gatewayz-nologs]}")"
  judge "$r_logs_rps" ">=" 0.95; v_logs="$verdict"
fi
# The response cache (issue 19): hits (cH) against the proxied path (c); the
# cost of a lookup that misses (cM) against no cache (c).
r_hit_rps="" r_hit_p99="" v_hit="" r_miss_rps="" r_miss_p99=""
if [[ -n "${rps[gatewayz-cache-hit]:-}" && -n "${rps[gatewayz]:-}" ]]; then
  r_hit_rps="$(ratio "${rps[gatewayz-cache-hit]}" "${rps[gatewayz]}")"
  r_hit_p99="$(ratio "${p99[gatewayz-cache-hit]}" "${p99[gatewayz]}")"
  judge "$r_hit_rps" ">=" 1.5; v_hit="$verdict"
fi
if [[ -n "${rps[gatewayz-cache-miss]:-}" && -n "${rps[gatewayz]:-}" ]]; then
  r_miss_rps="$(ratio "${rps[gatewayz-cache-miss]}" "${rps[gatewayz]}")"
  r_miss_p99="$(ratio "${p99[gatewayz-cache-miss]}" "${p99[gatewayz]}")"
fi
r_rhit_rps="" v_rhit="" r_rremote_rps="" r_rmiss_rps="" r_rmiss_p99=""
if [[ -n "${rps[gatewayz-redis-hit]:-}" && -n "${rps[gatewayz]:-}" ]]; then
  r_rhit_rps="$(ratio "${rps[gatewayz-redis-hit]}" "${rps[gatewayz]}")"
  judge "$r_rhit_rps" ">=" 1.5; v_rhit="$verdict"
fi
if [[ -n "${rps[gatewayz-redis-remote-hit]:-}" && -n "${rps[gatewayz]:-}" ]]; then
  r_rremote_rps="$(ratio "${rps[gatewayz-redis-remote-hit]}" "${rps[gatewayz]}")"
fi
if [[ -n "${rps[gatewayz-redis-miss]:-}" && -n "${rps[gatewayz]:-}" ]]; then
  r_rmiss_rps="$(ratio "${rps[gatewayz-redis-miss]}" "${rps[gatewayz]}")"
  r_rmiss_p99="$(ratio "${p99[gatewayz-redis-miss]}" "${p99[gatewayz]}")"
fi
v_dropped=""
if [[ -n "$ledger_dropped" ]]; then
  judge "$ledger_dropped" "<=" 0; v_dropped="$verdict"
fi
if [[ -n "$rss_kb" ]]; then
  rss_mb="$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
  hwm_mb="$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
  judge "$rss_mb" "<" 50; v_rss="$verdict"
fi
total_errors=0
for row in "${!errs[@]}"; do total_errors=$((total_errors + errs[$row])); done

{
  echo "# gatewayz benchmark $stamp"
  echo
  echo "- commit: $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo_root" diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "- cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) x $(nproc)"
  echo "- wrk: $wrk_threads threads, $connections connections, ${duration}s per row (after ${warmup}s warm-up), POST /v1/chat/completions"
  if [[ -n "$gw_pid" || -n "$mock_port" ]]; then
    if grep -qa __asan_init "$bin"; then
      echo "- binary: $bin (**sanitizer build: these numbers say nothing about gatewayz's speed**)"
    else
      echo "- binary: $bin"
    fi
  fi
  [[ "$rounds" != 1 ]] && echo "- rounds: $rounds per row, interleaved; RPS, p50 and p99 are the medians of the rounds"
  if [[ -n "${gw_pids[*]:-}" ]]; then
    echo "- every gatewayz but gatewayz-noledger (storage.url: none) writes its ledger (one row per request)" \
      "to its own SQLite file in the temp dir; all run with auth.mode none but gatewayz-keys"
  fi
  echo "- pinning: proxy under test on CPU $proxy_cpu; wrk and upstreams on CPU $load_cpu$([[ ${#pin_proxy[@]} -eq 0 ]] && echo ' (NOT pinned: one CPU)')"
  echo
  echo "| row | RPS | p50 | p99 | CPU µs/request | errors |"
  echo "|---|---:|---:|---:|---:|---:|"
  for row in nginx-direct nginx-proxy nginx-proxy-log gatewayz gatewayz-nometrics gatewayz-noledger gatewayz-keys \
    gatewayz-nologs gatewayz-loki gatewayz-cache-hit gatewayz-cache-miss gatewayz-redis-hit \
    gatewayz-redis-remote-hit gatewayz-redis-miss mock-stream gatewayz-stream; do
    [[ -n "${rps[$row]:-}" ]] || continue
    echo "| ${desc[$row]} | ${rps[$row]} | $(ms "${p50[$row]}") | $(ms "${p99[$row]}") | ${cpu[$row]:-} | ${errs[$row]} |"
  done
  if [[ -n "$r_rps" || -n "$rss_mb" || -n "${rps[gatewayz-stream]:-}" || -n "$r_metrics_rps" || -n "$r_keys_rps" ||
        -n "${rps[gatewayz-noledger]:-}" || -n "$r_logs_rps" || -n "$r_hit_rps" || -n "$r_miss_rps" ||
        -n "$r_rhit_rps" || -n "$r_rremote_rps" || -n "$r_rmiss_rps" ]]; then
    echo
    echo "| comparison | value | target | |"
    echo "|---|---:|---:|---|"
  fi
  if [[ -n "$r_rps" ]]; then
    echo "| RPS gatewayz (c) / nginx proxy with access log (b') | ${r_rps}x | >= 0.80x | $v_rps |"
    echo "| p99 gatewayz (c) / nginx proxy with access log (b') | ${r_p99}x | <= 1.50x | $v_p99 |"
    [[ -n "$r_cpu" ]] && echo "| CPU per request gatewayz (c) / nginx proxy with access log (b') | ${r_cpu}x | <= 1.25x | $v_cpu |"
  fi
  if [[ -n "$r_path_rps" ]]; then
    echo "| RPS gatewayz-noledger (c*) / nginx proxy (b): the proxy path | ${r_path_rps}x | >= 0.90x | $v_path |"
  fi
  if [[ -n "$r_metrics_rps" ]]; then
    echo "| RPS gatewayz / gatewayz-nometrics (metrics cost) | ${r_metrics_rps}x | >= 0.95x | $v_metrics |"
    echo "| p99 gatewayz / gatewayz-nometrics | ${r_metrics_p99}x | | |"
  fi
  if [[ -n "$r_keys_rps" ]]; then
    echo "| RPS gatewayz-keys / gatewayz (auth + charging cost) | ${r_keys_rps}x | >= 0.90x | $v_keys |"
    echo "| p99 gatewayz-keys / gatewayz | ${r_keys_p99}x | | |"
  fi
  if [[ -n "$r_logs_rps" ]]; then
    echo "| RPS gatewayz-loki (cL) / gatewayz-nologs (c0): logging to stdout and Loki | ${r_logs_rps}x | >= 0.95x | $v_logs |"
    echo "| p99 gatewayz-loki (cL) / gatewayz-nologs (c0) | ${r_logs_p99}x | | |"
    [[ -n "${rps[gatewayz]:-}" ]] &&
      echo "| RPS gatewayz (c) / gatewayz-nologs (c0): logging to stdout | $(ratio "${rps[gatewayz]}" "${rps[gatewayz-nologs]}")x | | |"
  fi
  if [[ -n "$r_hit_rps" ]]; then
    echo "| RPS gatewayz-cache-hit (cH) / gatewayz (c): cache hits vs the proxied path | ${r_hit_rps}x | >= 1.50x | $v_hit |"
    echo "| p99 gatewayz-cache-hit (cH) / gatewayz (c) | ${r_hit_p99}x | | |"
  fi
  if [[ -n "$r_miss_rps" ]]; then
    echo "| RPS gatewayz-cache-miss (cM) / gatewayz (c): cost of a lookup that misses | ${r_miss_rps}x | | |"
    echo "| p99 gatewayz-cache-miss (cM) / gatewayz (c) | ${r_miss_p99}x | | |"
  fi
  if [[ -n "$r_rhit_rps" ]]; then
    echo "| RPS gatewayz-redis-hit (cRH) / gatewayz (c): Redis cache hits vs the proxied path | ${r_rhit_rps}x | >= 1.50x | $v_rhit |"
  fi
  if [[ -n "$r_rremote_rps" ]]; then
    echo "| RPS gatewayz-redis-remote-hit (cRR) / gatewayz (c): every hit a Redis GET | ${r_rremote_rps}x | | |"
  fi
  if [[ -n "$r_rmiss_rps" ]]; then
    echo "| RPS gatewayz-redis-miss (cRM) / gatewayz (c): cost of a Redis lookup that misses | ${r_rmiss_rps}x | | |"
    echo "| p99 gatewayz-redis-miss (cRM) / gatewayz (c) | ${r_rmiss_p99}x | | |"
  fi
  if [[ -n "${rps[gatewayz-noledger]:-}" ]]; then
    for row in gatewayz gatewayz-keys; do
      [[ -n "${rps[$row]:-}" ]] || continue
      target="| | |"
      echo "| RPS $row / gatewayz-noledger (ledger$([[ $row == gatewayz-keys ]] && echo ' + auth + charging') cost) |" \
        "$(ratio "${rps[$row]}" "${rps[gatewayz-noledger]}")x $target"
      echo "| p99 $row / gatewayz-noledger | $(ratio "${p99[$row]}" "${p99[gatewayz-noledger]}")x | | |"
    done
  fi
  if [[ -n "${rps[nginx-proxy]:-}" ]]; then
    for row in gatewayz-nometrics gatewayz-noledger gatewayz-keys; do
      [[ -n "${rps[$row]:-}" ]] || continue
      echo "| RPS $row / nginx proxy | $(ratio "${rps[$row]}" "${rps[nginx-proxy]}")x | | |"
      echo "| p99 $row / nginx proxy | $(ratio "${p99[$row]}" "${p99[nginx-proxy]}")x | | |"
    done
  fi
  if [[ -n "${rps[nginx-proxy-log]:-}" ]]; then
    # Like for like: both record every request (nginx a log line, gatewayz a ledger row).
    for row in gatewayz-keys; do
      [[ -n "${rps[$row]:-}" ]] || continue
      echo "| RPS $row / nginx proxy with access log (both record every request) |" \
        "$(ratio "${rps[$row]}" "${rps[nginx-proxy-log]}")x | | |"
      echo "| p99 $row / nginx proxy with access log | $(ratio "${p99[$row]}" "${p99[nginx-proxy-log]}")x | | |"
    done
    if [[ -n "${rps[nginx-proxy]:-}" ]]; then
      echo "| RPS nginx proxy with access log / without (cost of nginx's log) |" \
        "$(ratio "${rps[nginx-proxy-log]}" "${rps[nginx-proxy]}")x | | |"
    fi
  fi
  if [[ -n "${rps[gatewayz-stream]:-}" && -n "${rps[mock-stream]:-}" ]]; then
    echo "| stream RPS gatewayz / mock direct | $(ratio "${rps[gatewayz-stream]}" "${rps[mock-stream]}")x | | |"
    echo "| stream p99 gatewayz / mock direct | $(ratio "${p99[gatewayz-stream]}" "${p99[mock-stream]}")x | | |"
  fi
  if [[ -n "$ledger_dropped" ]]; then
    echo "| ledger rows dropped (gatewayz, gatewayz-keys) | ${ledger_dropped} | 0 | $v_dropped |"
  fi
  if [[ -n "$rss_mb" ]]; then
    echo "| gatewayz RSS after the run (VmRSS) | ${rss_mb} MB | < 50 MB | $v_rss |"
    echo "| gatewayz peak RSS (VmHWM) | ${hwm_mb} MB | | |"
  fi
  if [[ "$total_errors" -ne 0 ]]; then
    echo
    echo "**$total_errors requests failed** (non-2xx, socket errors or timeouts): see $(basename "$wrk_log")"
  fi
} >"$result_md"

cat "$result_md"
echo
echo "bench: written $result_md (raw wrk output: $wrk_log)" >&2

if [[ "${BENCH_STRICT:-0}" == "1" ]] && { [[ "$misses" -ne 0 ]] || [[ "$total_errors" -ne 0 ]]; }; then
  exit 1
fi

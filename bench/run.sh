#!/usr/bin/env bash
# Loopback benchmark of gatewayz against nginx (see bench/README.md).
#
# Rows, each measured with wrk (POST /v1/chat/completions, --latency):
#   nginx-direct     (a) nginx answering a fixed chat.completion body
#   nginx-proxy      (b) nginx reverse proxy (keep-alive upstream) -> (a)
#   gatewayz         (c) gatewayz serve (threads: 1)               -> (a)
#   mock-stream      (d) gatewayz mock-provider, stream:true, 32 tokens, direct
#   gatewayz-stream  (e) gatewayz serve                            -> (d)'s mock
# The proxy under test (b, c, e) runs on CPU $PROXY_CPU; wrk and the upstream
# (nginx (a), the mock) on CPU $LOAD_CPU.
#
# Environment:
#   DURATION=15      seconds per row       WARMUP=1   seconds of unrecorded load first
#   CONNECTIONS=64   THREADS=2             wrk settings
#   ROWS=nginx-direct,nginx-proxy,gatewayz,mock-stream,gatewayz-stream
#   GATEWAYZ_BIN=build-release/src/app/gatewayz   SKIP_BUILD=1: do not build it
#   BASE_PORT=18480  nginx ports are BASE_PORT and BASE_PORT+1 (gatewayz/mock pick their own)
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
rows="${ROWS:-nginx-direct,nginx-proxy,gatewayz,mock-stream,gatewayz-stream}"
base_port="${BASE_PORT:-18480}"
proxy_cpu="${PROXY_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
bin="${GATEWAYZ_BIN:-$repo_root/build-release/src/app/gatewayz}"

nginx_direct_port="$base_port"
nginx_proxy_port="$((base_port + 1))"

chat_body='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, benchmark"}]}'
stream_body_mock='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, benchmark"}],"stream":true}'
stream_body_gateway='{"model":"mock-stream","messages":[{"role":"user","content":"Hello, benchmark"}],"stream":true}'

want_row() { [[ ",$rows," == *",$1,"* ]]; }
need_gatewayz() { want_row gatewayz || want_row mock-stream || want_row gatewayz-stream; }
need_nginx_direct() { want_row nginx-direct || want_row nginx-proxy || want_row gatewayz; }

die() { echo "bench: $*" >&2; exit 1; }

for tool in wrk nginx taskset curl awk; do
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

# check_target NAME URL BODY: one request must answer 200 before measuring.
check_target() {
  local name="$1" url="$2" body="$3" code=""
  for _ in $(seq 1 100); do
    code="$(curl -s -o "$tmp_dir/check.out" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary "$body" --max-time 5 "$url" || true)"
    [[ "$code" == "200" ]] && return 0
    sleep 0.1
  done
  echo "bench: $name at $url answered ${code:-nothing}:" >&2
  head -c 2000 "$tmp_dir/check.out" >&2 || true
  die "$name is not ready"
}

# start_nginx NAME TEMPLATE PORT [UPSTREAM_PORT]
start_nginx() {
  local name="$1" template="$2" port="$3" upstream_port="${4:-0}"
  local prefix="$tmp_dir/$name" body
  port_in_use "$port" && die "port $port is in use (set BASE_PORT)"
  mkdir -p "$prefix"
  body="$(tr -d '\n' <"$bench_dir/chat-response.json")"
  # The body goes in with awk: it contains characters sed would interpret.
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$upstream_port|g" "$template" |
    BODY="$body" awk '{ gsub(/@BODY@/, ENVIRON["BODY"]); print }' >"$prefix/nginx.conf"
  local pin=("${pin_load[@]}")
  [[ "$name" == nginx-proxy ]] && pin=("${pin_proxy[@]}")
  "${pin[@]}" "$nginx_bin" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
    >"$prefix/stdout.log" 2>&1 &
  pids+=("$!")
}

results_dir="$bench_dir/results"
mkdir -p "$results_dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
result_md="$results_dir/$stamp.md"
wrk_log="$results_dir/$stamp-wrk.log"
: >"$wrk_log"

declare -A rps p50 p99 errs desc

# measure ROW DESCRIPTION URL BODY
measure() {
  local row="$1" description="$2" url="$3" body="$4" out line
  desc[$row]="$description"
  echo "bench: $row: $description (${duration}s)" >&2
  if [[ "$warmup" != "0" ]]; then
    BENCH_BODY="$body" "${pin_load[@]}" wrk -t"$wrk_threads" -c"$connections" -d"${warmup}s" \
      -s "$bench_dir/chat.lua" "$url" >/dev/null 2>&1 || true
  fi
  out="$(BENCH_BODY="$body" "${pin_load[@]}" wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" \
    --latency -s "$bench_dir/chat.lua" "$url" 2>&1)" || die "wrk failed for $row: $out"
  { echo "=== $row: $description"; echo "$out"; echo; } >>"$wrk_log"
  line="$(grep '^BENCH_RESULT ' <<<"$out" | tail -n 1)"
  [[ -n "$line" ]] || die "no result line from wrk for $row: $out"
  local requests duration_us p50_us p99_us e
  requests="$(field requests "$line")"
  duration_us="$(field duration_us "$line")"
  p50_us="$(field p50_us "$line")"
  p99_us="$(field p99_us "$line")"
  e=$(( $(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") \
        + $(field status_errors "$line") + $(field timeouts "$line") ))
  rps[$row]="$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", (d > 0 ? r / (d / 1e6) : 0) }')"
  p50[$row]="$p50_us"
  p99[$row]="$p99_us"
  errs[$row]="$e"
}

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

mock_port=""
if want_row mock-stream || want_row gatewayz-stream; then
  "${pin_load[@]}" "$bin" mock-provider --listen 127.0.0.1:0 --port-file "$tmp_dir/mock.port" \
    --threads 1 --tokens-per-s 0 --output-tokens 32 >"$tmp_dir/mock.log" 2>&1 &
  mock_pid=$!
  pids+=("$mock_pid")
  mock_port="$(wait_for_port_file "$tmp_dir/mock.port" "$mock_pid" mock-provider)"
  check_target mock-provider "http://127.0.0.1:$mock_port/v1/chat/completions" "$stream_body_mock"
fi

gw_pid=""
gw_port=""
if want_row gatewayz || want_row gatewayz-stream; then
  {
    echo "server:"
    echo "  listen: \"127.0.0.1:0\""
    echo "  port_file: \"$tmp_dir/gatewayz.port\""
    echo "  threads: 1"
    echo "providers:"
    if want_row gatewayz; then
      echo "  - name: nginx"
      echo "    kind: openai"
      echo "    base_url: \"http://127.0.0.1:$nginx_direct_port/v1\""
      echo "    models:"
      echo "      - id: gpt-4o-mini"
    fi
    if [[ -n "$mock_port" ]]; then
      echo "  - name: mock"
      echo "    kind: openai"
      echo "    base_url: \"http://127.0.0.1:$mock_port/v1\""
      echo "    models:"
      echo "      - id: mock-stream"
      echo "        upstream: gpt-4o-mini"
    fi
  } >"$tmp_dir/gatewayz.yaml"
  "${pin_proxy[@]}" "$bin" serve --config "$tmp_dir/gatewayz.yaml" >"$tmp_dir/gatewayz.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
  gw_port="$(wait_for_port_file "$tmp_dir/gatewayz.port" "$gw_pid" "gatewayz serve")"
  want_row gatewayz &&
    check_target gatewayz "http://127.0.0.1:$gw_port/v1/chat/completions" "$chat_body"
  want_row gatewayz-stream &&
    check_target gatewayz-stream "http://127.0.0.1:$gw_port/v1/chat/completions" "$stream_body_gateway"
fi

# --- measurements ----------------------------------------------------------

want_row nginx-direct && measure nginx-direct "(a) nginx, fixed chat.completion body" \
  "http://127.0.0.1:$nginx_direct_port/v1/chat/completions" "$chat_body"
want_row nginx-proxy && measure nginx-proxy "(b) nginx reverse proxy -> (a)" \
  "http://127.0.0.1:$nginx_proxy_port/v1/chat/completions" "$chat_body"
want_row gatewayz && measure gatewayz "(c) gatewayz -> (a)" \
  "http://127.0.0.1:$gw_port/v1/chat/completions" "$chat_body"
want_row mock-stream && measure mock-stream "(d) mock-provider direct, SSE 32 tokens" \
  "http://127.0.0.1:$mock_port/v1/chat/completions" "$stream_body_mock"
want_row gatewayz-stream && measure gatewayz-stream "(e) gatewayz -> mock-provider, SSE 32 tokens" \
  "http://127.0.0.1:$gw_port/v1/chat/completions" "$stream_body_gateway"

rss_kb=""
hwm_kb=""
if [[ -n "$gw_pid" ]]; then
  kill -0 "$gw_pid" 2>/dev/null || die "gatewayz died during the run (log: $tmp_dir/gatewayz.log)"
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

r_rps="" r_p99="" v_rps="" v_p99="" rss_mb="" hwm_mb="" v_rss=""
if [[ -n "${rps[gatewayz]:-}" && -n "${rps[nginx-proxy]:-}" ]]; then
  r_rps="$(ratio "${rps[gatewayz]}" "${rps[nginx-proxy]}")"
  r_p99="$(ratio "${p99[gatewayz]}" "${p99[nginx-proxy]}")"
  judge "$r_rps" ">=" 0.8; v_rps="$verdict"
  judge "$r_p99" "<=" 1.5; v_p99="$verdict"
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
  echo "- pinning: proxy under test on CPU $proxy_cpu; wrk and upstreams on CPU $load_cpu$([[ ${#pin_proxy[@]} -eq 0 ]] && echo ' (NOT pinned: one CPU)')"
  echo
  echo "| row | RPS | p50 | p99 | errors |"
  echo "|---|---:|---:|---:|---:|"
  for row in nginx-direct nginx-proxy gatewayz mock-stream gatewayz-stream; do
    [[ -n "${rps[$row]:-}" ]] || continue
    echo "| ${desc[$row]} | ${rps[$row]} | $(ms "${p50[$row]}") | $(ms "${p99[$row]}") | ${errs[$row]} |"
  done
  if [[ -n "$r_rps" || -n "$rss_mb" || -n "${rps[gatewayz-stream]:-}" ]]; then
    echo
    echo "| comparison | value | target | |"
    echo "|---|---:|---:|---|"
  fi
  if [[ -n "$r_rps" ]]; then
    echo "| RPS gatewayz / nginx proxy | ${r_rps}x | >= 0.80x | $v_rps |"
    echo "| p99 gatewayz / nginx proxy | ${r_p99}x | <= 1.50x | $v_p99 |"
  fi
  if [[ -n "${rps[gatewayz-stream]:-}" && -n "${rps[mock-stream]:-}" ]]; then
    echo "| stream RPS gatewayz / mock direct | $(ratio "${rps[gatewayz-stream]}" "${rps[mock-stream]}")x | | |"
    echo "| stream p99 gatewayz / mock direct | $(ratio "${p99[gatewayz-stream]}" "${p99[mock-stream]}")x | | |"
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

#!/usr/bin/env bash
# Connection load: does a normal load keep its latency while 10,000 idle
# keep-alive connections and slowloris clients are held open against the
# same gateway, and what do they cost in memory?
#
# Setup as bench/run.sh row (c): gatewayz (one shard, SQLite ledger) alone on
# CPU $PROXY_CPU; wrk, an nginx upstream answering a fixed chat completion and
# the connection holder (bench/hold-connections.mjs) on CPU $LOAD_CPU. Rounds
# alternate: the load alone (A), then the load with the connections held (B).
# Everything is on loopback; the holder spreads its idle connections over
# several 127.0.0.x source addresses so the per-address cap does not refuse
# them, and server.max_connections is raised above the number held.
#
#   bench/connections.sh
#   IDLE=10000 SLOWLORIS=200 ROUNDS=2 DURATION=8 bench/connections.sh
#
# Environment: IDLE=10000 SLOWLORIS=200 ROUNDS=2 DURATION=8 CONNECTIONS=64
# THREADS=2 PROXY_CPU=0 LOAD_CPU=1 BASE_PORT=18680 GATEWAYZ_BIN (default
# build-release/src/app/gatewayz, built unless SKIP_BUILD=1) KEEP_TMP=1.
# Targets: p99 under B <= 1.5x p99 under A; RSS stays bounded (reported as
# the growth per held connection).
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$bench_dir/.." && pwd)"
tag=connections
idle="${IDLE:-10000}"
slowloris="${SLOWLORIS:-200}"
rounds="${ROUNDS:-2}"
duration="${DURATION:-8}"
connections="${CONNECTIONS:-64}"
wrk_threads="${THREADS:-2}"
base_port="${BASE_PORT:-18680}"
# shellcheck source=bench/lib.sh
source "$bench_dir/lib.sh"

require wrk nginx node taskset curl awk
build_unless_given
[[ "$(ulimit -n)" -ge $((idle + slowloris + 1000)) ]] ||
  ulimit -n $((idle + slowloris + 4096)) 2>/dev/null ||
  die "open files limit $(ulimit -n) is below IDLE + SLOWLORIS + 1000"

start_upstream "$base_port"
start_gatewayz "  max_connections: $((idle + slowloris + 1000))"

# load LABEL -> appends RPS, p99 (us) and errors of one wrk run to the label's lists
declare -A rps_all p99_all errors
load() {
  local label="$1" out line requests duration_us
  out="$(BENCH_BODY="$chat_body" "${pin_load[@]}" wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" \
    --latency -s "$bench_dir/chat.lua" "$url" 2>&1)" || die "wrk failed: $out"
  line="$(grep '^BENCH_RESULT ' <<<"$out" | tail -n 1)"
  requests="$(field requests "$line")"
  duration_us="$(field duration_us "$line")"
  rps_all[$label]+="$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }') "
  p99_all[$label]+="$(field p99_us "$line") "
  errors[$label]=$(( ${errors[$label]:-0} + $(field connect_errors "$line") + $(field read_errors "$line") \
    + $(field write_errors "$line") + $(field status_errors "$line") + $(field timeouts "$line") ))
}

sources="127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9"
rss_before="" rss_held="" fds_held="" holder_final="" rss_after_all=""
BENCH_BODY="$chat_body" "${pin_load[@]}" wrk -t"$wrk_threads" -c"$connections" -d1s -s "$bench_dir/chat.lua" \
  "$url" >/dev/null 2>&1 || true
for round in $(seq 1 "$rounds"); do
  echo "connections: round $round/$rounds: load alone" >&2
  load alone
  [[ -z "$rss_before" ]] && rss_before="$(rss_kb)"
  echo "connections: round $round/$rounds: holding $idle idle + $slowloris slowloris connections" >&2
  "${pin_load[@]}" node "$bench_dir/hold-connections.mjs" --port "$gw_port" --idle "$idle" \
    --slowloris "$slowloris" --sources "$sources" >"$tmp_dir/holder.$round.log" 2>&1 &
  holder=$!
  for _ in $(seq 1 600); do
    grep -q '"phase":"ready"' "$tmp_dir/holder.$round.log" && break
    kill -0 "$holder" 2>/dev/null || die "the holder exited: $(tail -3 "$tmp_dir/holder.$round.log")"
    sleep 0.1
  done
  grep -q '"phase":"ready"' "$tmp_dir/holder.$round.log" || die "the holder did not get its connections up"
  rss_held="$(rss_kb)"
  fds_held="$(open_files)"
  # HOLDER_STOPPED=1: the holder is stopped (SIGSTOP) while the load runs:
  # its connections stay open in the kernel but it takes no CPU from wrk.
  [[ "${HOLDER_STOPPED:-0}" == 1 ]] && kill -STOP "$holder"
  load held
  [[ "${HOLDER_STOPPED:-0}" == 1 ]] && kill -CONT "$holder"
  kill -TERM "$holder"
  wait "$holder" 2>/dev/null || true
  holder_final="$(grep '"phase":"final"' "$tmp_dir/holder.$round.log" | tail -n 1)"
  echo "connections: holder: $holder_final" >&2
done
sleep 1
rss_after_all="$(rss_kb)"

p99_alone="$(median "${p99_all[alone]}")"
p99_held="$(median "${p99_all[held]}")"
rps_alone="$(median "${rps_all[alone]}")"
rps_held="$(median "${rps_all[held]}")"
json_num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$holder_final"; }
idle_open="$(json_num idle_open)"
held_total=$((idle + slowloris))
per_conn_kb="$(awk -v a="$rss_held" -v b="$rss_before" -v n="$held_total" 'BEGIN { printf "%.1f", (a - b) / n }')"
verdict="$(awk -v r="$(ratio "$p99_held" "$p99_alone")" 'BEGIN { print (r <= 1.5 ? "met" : "MISSED") }')"

results_dir="$bench_dir/results"
mkdir -p "$results_dir"
result_md="$results_dir/$(date -u +%Y%m%dT%H%M%SZ)-connections.md"
{
  echo "# bench/connections.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- gatewayz: $bin ($("$bin" version 2>/dev/null | head -n 1))"
  echo "- held: $idle idle keep-alive (over ${sources//,/ }) + $slowloris slowloris; load: wrk -t$wrk_threads -c$connections, ${duration}s x $rounds rounds (medians)"
  echo "- pinning: gatewayz on CPU $proxy_cpu; wrk, nginx and the holder on CPU $load_cpu"
  echo
  echo "| | RPS | p99 | errors |"
  echo "|---|---:|---:|---:|"
  echo "| (A) load alone | $rps_alone | $(awk -v u="$p99_alone" 'BEGIN { printf "%.2f ms", u / 1000 }') | ${errors[alone]} |"
  echo "| (B) load + held connections | $rps_held | $(awk -v u="$p99_held" 'BEGIN { printf "%.2f ms", u / 1000 }') | ${errors[held]} |"
  echo
  echo "| comparison | value | target | |"
  echo "|---|---:|---:|---|"
  echo "| p99 (B) / (A) | $(ratio "$p99_held" "$p99_alone")x | <= 1.50x | $verdict |"
  echo "| RPS (B) / (A) | $(ratio "$rps_held" "$rps_alone")x | | |"
  echo "| RSS before holding / while holding / at the end | $((rss_before / 1024)) / $((rss_held / 1024)) / $((rss_after_all / 1024)) MB | | |"
  echo "| RSS per held connection | $per_conn_kb KB | | |"
  echo "| open files while holding | $fds_held | | |"
  echo "| idle connections still open after the load (last round) | ${idle_open:-?} of $idle | | |"
  echo
  echo "Holder, last round: \`$holder_final\`"
} | tee "$result_md"
echo "connections: written to $result_md" >&2

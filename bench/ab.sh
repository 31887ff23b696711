#!/usr/bin/env bash
# A/B comparison of two gatewayz binaries (or two configs) in interleaved pairs,
# on the setup of bench/run.sh row (c): the gateway pinned alone to CPU 0, wrk
# and an nginx upstream (a fixed chat.completion body) on CPU 1.
#
# Each run starts a fresh gatewayz (a new SQLite ledger file unless
# AB_STORE=none), loads it with wrk for DURATION seconds and reports, besides
# RPS and p99, the CPU time of every gatewayz thread per request, read from
# /proc/<pid>/task/*/stat: on a noisy machine CPU per request moves far less
# between runs than RPS does, so small changes show there first. It also
# checks that every request answered 200 has its ledger row, and reports the
# spans and log lines the run dropped (gatewayz_spans_dropped_total,
# gatewayz_log_records_dropped_total).
#
#   bench/ab.sh OLD_BINARY NEW_BINARY
#   PAIRS=5 DURATION=8 bench/ab.sh /tmp/gatewayz-before build-release/src/app/gatewayz
#   AB_EXTRA=$'storage:\n  flush_interval_ms: 50' ...   # yaml merged into B's config only
#   AB_EXTRA_A=$'logging:\n  level: error' ...             # and into A's
#
# Environment: PAIRS=3 DURATION=8 CONNECTIONS=64 THREADS=2 PROXY_CPU=0 LOAD_CPU=1
# BASE_PORT=18490 (the upstream nginx; also a stand-in Loki or OTLP receiver)
# AB_STORE=sqlite|none AB_EXTRA (B only) AB_EXTRA_A (A only) KEEP_TMP=1.
# Compare binaries built from the same source tree only when you mean to:
# each reads its config as its own version understands it.
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_a="$(realpath "$1")"
bin_b="$(realpath "$2")"
pairs="${PAIRS:-3}"
duration="${DURATION:-8}"
connections="${CONNECTIONS:-64}"
wrk_threads="${THREADS:-2}"
proxy_cpu="${PROXY_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
base_port="${BASE_PORT:-18490}"
store="${AB_STORE:-sqlite}"
extra_b="${AB_EXTRA:-}"
extra_a="${AB_EXTRA_A:-}"

die() { echo "ab: $*" >&2; exit 1; }
for tool in wrk nginx taskset curl awk sqlite3; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/install-deps.sh)"
done
[[ -x "$bin_a" && -x "$bin_b" ]] || die "both arguments must be gatewayz binaries"

tmp_dir="$(mktemp -d -t gatewayz-ab.XXXXXX)"
pids=()
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${KEEP_TMP:-0}" == "1" ]]; then echo "ab: temp files kept in $tmp_dir" >&2; else rm -rf "$tmp_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The upstream: bench/run.sh's row (a).
upstream_port="$base_port"
prefix="$tmp_dir/upstream"
mkdir -p "$prefix"
body="$(tr -d '\n' <"$bench_dir/chat-response.json")"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$upstream_port|g" "$bench_dir/nginx-upstream.conf" |
  BODY="$body" awk '{ gsub(/@BODY@/, ENVIRON["BODY"]); print }' >"$prefix/nginx.conf"
taskset -c "$load_cpu" nginx -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" >"$prefix/out.log" 2>&1 &
pids+=("$!")
chat_body='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, benchmark"}]}'
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$upstream_port/" && break
  sleep 0.05
done

# run LABEL BINARY EXTRA_YAML: sets `result` to one line (wrk's BENCH_RESULT, CPU per thread, ledger rows)
run() {
  local label="$1" bin="$2" extra="$3"
  local dir="$tmp_dir/$label-$RANDOM"
  mkdir -p "$dir"
  {
    echo "server:"
    echo "  listen: \"127.0.0.1:0\""
    echo "  port_file: \"$dir/port\""
    echo "  threads: 1"
    echo "storage:"
    if [[ "$store" == none ]]; then echo "  url: none"; else
      echo "  url: \"sqlite://$dir/ledger.db\""
      echo "  spill_path: \"$dir/ledger.spill\""
    fi
    echo "providers:"
    echo "  - name: nginx"
    echo "    kind: openai"
    echo "    base_url: \"http://127.0.0.1:$upstream_port/v1\""
    echo "    models:"
    echo "      - id: gpt-4o-mini"
  } >"$dir/config.yaml"
  if [[ -n "$extra" ]]; then
    # Merge EXTRA's top-level sections into the generated ones (yaml has no
    # duplicate keys): a section already present gets EXTRA's lines appended.
    awk -v extra="$extra" 'BEGIN {
        n = split(extra, lines, "\n"); section = ""
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^[a-z_]+:/) { section = lines[i]; order[++sections] = section; continue }
          add[section] = add[section] lines[i] "\n"
        }
      }
      { print }
      /^[a-z_]+:/ && ($0 in add) { printf "%s", add[$0]; done[$0] = 1 }
      END { for (i = 1; i <= sections; i++) if (!(order[i] in done)) { print order[i]; printf "%s", add[order[i]] } }' \
      "$dir/config.yaml" >"$dir/merged.yaml"
    mv "$dir/merged.yaml" "$dir/config.yaml"
  fi
  taskset -c "$proxy_cpu" "$bin" serve --config "$dir/config.yaml" >"$dir/gatewayz.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do [[ -s "$dir/port" ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  [[ -s "$dir/port" ]] || die "$label did not start: $(tail -n 5 "$dir/gatewayz.log")"
  local port url out line
  port="$(cat "$dir/port")"
  url="http://127.0.0.1:$port/v1/chat/completions"
  curl -sf -o /dev/null -H 'Content-Type: application/json' -d "$chat_body" "$url" || die "$label does not answer 200"
  out="$(BENCH_BODY="$chat_body" taskset -c "$load_cpu" wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" \
    --latency -s "$bench_dir/chat.lua" "$url" 2>&1)"
  line="$(grep '^BENCH_RESULT ' <<<"$out" | tail -n 1)"
  [[ -n "$line" ]] || die "no wrk result for $label: $out"
  # CPU seconds per thread name, summed over threads of that name.
  local tck cpu
  tck="$(getconf CLK_TCK)"
  cpu="$(for t in /proc/"$pid"/task/*; do
           read -r -a f <"$t/stat" || continue
           name="$(cat "$t/comm")"
           # The main thread is a server thread, whatever the binary is called.
           [[ "${t##*/}" == "$pid" ]] && name=main
           printf '%s %s\n' "$name" "$((f[13] + f[14]))"
         done | awk -v tck="$tck" '{ c[$1] += $2 } END { for (k in c) if (c[k] > 0) printf "%s=%.2f ", k, c[k] / tck }')"
  # Telemetry the run dropped: spans (tracing on) and log lines (Loki on).
  local drops
  drops="$(curl -s "http://127.0.0.1:$port/metrics" | awk '
      /^gatewayz_spans_dropped_total/ { s += $NF } /^gatewayz_log_records_dropped_total/ { l += $NF }
      END { printf "%d/%d", s, l }')"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  local rows="-"
  [[ "$store" != none ]] && rows="$(sqlite3 "$dir/ledger.db" 'SELECT COUNT(*) FROM ledger')"
  result="$label $line cpu: $cpu drops=$drops rows=$rows"
}

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }

printf '| pair | run | RPS | p99 | CPU µs / request (all threads) | of which background threads (gw-ledger, gw-checkpoint, ...) | ledger rows / requests | dropped spans / log lines |\n'
printf '|---:|---|---:|---:|---:|---:|---:|---:|\n'
declare -a rps_a rps_b p99_a p99_b cpu_a cpu_b
for ((pair = 1; pair <= pairs; pair++)); do
  for side in A B; do
    if [[ "$side" == A ]]; then run A "$bin_a" "$extra_a"; else run B "$bin_b" "$extra_b"; fi
    requests="$(field requests "$result")"
    duration_us="$(field duration_us "$result")"
    p99_us="$(field p99_us "$result")"
    # The curl check and the final request of wrk add a few requests outside
    # the count: compare rows with the requests wrk saw.
    rows="${result##*rows=}"
    dropped="${result##*drops=}"
    dropped="${dropped%% *}"
    read -r total other < <(awk -v s="${result#*cpu: }" 'BEGIN {
        n = split(s, kv, " "); t = 0; o = 0
        for (i = 1; i <= n; i++) { split(kv[i], p, "="); if (p[1] == "rows" || p[1] == "drops") continue
          t += p[2]; if (p[1] ~ /^gw-/ && p[1] !~ /^gw-shard/) o += p[2] }
        print t, o }')
    rps="$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
    cpu_us="$(awk -v t="$total" -v r="$requests" 'BEGIN { printf "%.2f", t * 1e6 / r }')"
    other_us="$(awk -v t="$other" -v r="$requests" 'BEGIN { printf "%.2f", t * 1e6 / r }')"
    printf '| %d | %s | %s | %.2f ms | %s | %s | %s / %s | %s |\n' "$pair" "$side" "$rps" \
      "$(awk -v u="$p99_us" 'BEGIN { print u / 1000 }')" "$cpu_us" "$other_us" "$rows" "$requests" "${dropped/\// \/ }"
    if [[ "$side" == A ]]; then rps_a+=("$rps"); p99_a+=("$p99_us"); cpu_a+=("$cpu_us")
    else rps_b+=("$rps"); p99_b+=("$p99_us"); cpu_b+=("$cpu_us"); fi
  done
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
printf 'medians  A: %s RPS, p99 %s us, %s us CPU/request   B: %s RPS, p99 %s us, %s us CPU/request\n' \
  "$(median "${rps_a[@]}")" "$(median "${p99_a[@]}")" "$(median "${cpu_a[@]}")" \
  "$(median "${rps_b[@]}")" "$(median "${p99_b[@]}")" "$(median "${cpu_b[@]}")"
printf 'B / A    RPS %s   p99 %s   CPU per request %s\n' \
  "$(awk -v b="$(median "${rps_b[@]}")" -v a="$(median "${rps_a[@]}")" 'BEGIN { printf "%.3f", b / a }')" \
  "$(awk -v b="$(median "${p99_b[@]}")" -v a="$(median "${p99_a[@]}")" 'BEGIN { printf "%.3f", b / a }')" \
  "$(awk -v b="$(median "${cpu_b[@]}")" -v a="$(median "${cpu_a[@]}")" 'BEGIN { printf "%.3f", b / a }')"

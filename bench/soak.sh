#!/usr/bin/env bash
# Soak: a steady load for an hour (SOAK_S) against one gatewayz, sampling its
# RSS, open files and threads every SAMPLE_S; reports the least-squares slope
# of each over the run after the first WARM_S (memory that keeps growing
# under a constant load is a leak), and checks at the end that every request
# answered 200 has its ledger row.
#
# Setup as bench/connections.sh (bench/lib.sh): gatewayz on CPU $PROXY_CPU,
# wrk and an nginx upstream on CPU $LOAD_CPU. The rate is steady, not
# saturating: CONNECTIONS wrk connections, each pausing DELAY_MS between
# requests (bench/steady.lua), about CONNECTIONS * 1000 / DELAY_MS requests/s.
#
#   bench/soak.sh                     # one hour
#   SOAK_S=600 bench/soak.sh          # ten minutes
#
# Environment: SOAK_S=3600 WARM_S=60 SAMPLE_S=10 CONNECTIONS=16 DELAY_MS=10
# PROXY_CPU=0 LOAD_CPU=1 BASE_PORT=18780 GATEWAYZ_BIN SKIP_BUILD=1 KEEP_TMP=1.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$bench_dir/.." && pwd)"
tag=soak
soak_s="${SOAK_S:-3600}"
warm_s="${WARM_S:-60}"
sample_s="${SAMPLE_S:-10}"
connections="${CONNECTIONS:-16}"
delay_ms="${DELAY_MS:-10}"
base_port="${BASE_PORT:-18780}"
# shellcheck source=bench/lib.sh
source "$bench_dir/lib.sh"

require wrk nginx taskset curl awk sqlite3
build_unless_given
start_upstream "$base_port"
start_gatewayz

samples="$tmp_dir/samples.tsv"  # seconds, RSS KB, open files, threads
BENCH_BODY="$chat_body" BENCH_DIR="$bench_dir" BENCH_DELAY_MS="$delay_ms" "${pin_load[@]}" wrk -t2 -c"$connections" -d"${soak_s}s" \
  --latency -s "$bench_dir/steady.lua" "$url" >"$tmp_dir/wrk.out" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
start="$(date +%s)"
echo "$tag: ${soak_s}s at ~$((connections * 1000 / delay_ms)) requests/s; sampling every ${sample_s}s" >&2
while kill -0 "$wrk_pid" 2>/dev/null; do
  now=$(($(date +%s) - start))
  printf '%s\t%s\t%s\t%s\n' "$now" "$(rss_kb)" "$(open_files)" \
    "$(find "/proc/$gw_pid/task" -mindepth 1 -maxdepth 1 | wc -l)" >>"$samples"
  sleep "$sample_s"
done
wait "$wrk_pid" || die "wrk failed: $(tail -5 "$tmp_dir/wrk.out")"
line="$(grep '^BENCH_RESULT ' "$tmp_dir/wrk.out" | tail -n 1)"
requests="$(field requests "$line")"
errors=$(( $(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") \
  + $(field status_errors "$line") + $(field timeouts "$line") ))

# The ledger: every answered request has its row once the writer has flushed.
sleep 2
ledger_rows="$(sqlite3 "$tmp_dir/gatewayz.db" 'SELECT count(*) FROM ledger' 2>/dev/null || echo "?")"

# slope COLUMN -> least-squares slope per minute over the samples after WARM_S
slope() {
  awk -v c="$1" -v warm="$warm_s" '$1 >= warm { n++; x = $1 / 60; y = $c; sx += x; sy += y; sxx += x * x; sxy += x * y }
    END { d = n * sxx - sx * sx; if (n < 3 || d == 0) print "n/a"; else printf "%.3f", (n * sxy - sx * sy) / d }' \
    "$samples"
}
first_after_warm() { awk -v c="$1" -v warm="$warm_s" '$1 >= warm { print $c; exit }' "$samples"; }
last_sample() { tail -n 1 "$samples" | cut -f "$1"; }

results_dir="$bench_dir/results"
mkdir -p "$results_dir"
result_md="$results_dir/$(date -u +%Y%m%dT%H%M%SZ)-soak.md"
{
  echo "# bench/soak.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- gatewayz: $bin ($("$bin" version 2>/dev/null | head -n 1))"
  echo "- ${soak_s}s, wrk -c$connections with ${delay_ms} ms between requests per connection; samples every ${sample_s}s, slopes after the first ${warm_s}s"
  echo "- requests: $requests ($(awk -v r="$requests" -v s="$soak_s" 'BEGIN { printf "%.0f", r / s }')/s), errors: $errors, ledger rows: $ledger_rows (wrk's requests + 1 start-up check)"
  echo
  echo "| | after warm-up | at the end | slope per minute |"
  echo "|---|---:|---:|---:|"
  echo "| RSS (KB) | $(first_after_warm 2) | $(last_sample 2) | $(slope 2) KB |"
  echo "| open files | $(first_after_warm 3) | $(last_sample 3) | $(slope 3) |"
  echo "| threads | $(first_after_warm 4) | $(last_sample 4) | $(slope 4) |"
} | tee "$result_md"
cp "$samples" "${result_md%.md}.tsv"
echo "$tag: written to $result_md (samples beside it)" >&2

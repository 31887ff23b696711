#!/usr/bin/env bash
# Instructions per request of two gatewayz binaries (or two configs), counted
# by callgrind: unlike timings on a shared machine, the count barely moves
# between runs, so a change of a few percent shows. It counts user-space
# instructions only (no kernel time, no cache misses): a companion to
# bench/ab.sh, not a replacement.
#
#   bench/instructions.sh OLD NEW
#   AB_EXTRA=$'tracing:\n  enabled: true\n  otlp_endpoint: "http://127.0.0.1:18590"' \
#     bench/instructions.sh BIN BIN          # the cost of a config, same binary
#
# Each side: one gatewayz (one shard, SQLite ledger) under valgrind
# --tool=callgrind in front of the bench's nginx (which also takes OTLP
# POSTs), warmed up with WARMUP seconds of wrk (-c4), then counted over
# DURATION seconds. Prints instructions per request for each thread and in
# all, and B / A. AB_EXTRA_A / AB_EXTRA are YAML appended to A's / B's
# config: whole sections other than server, storage and providers.
#
# Environment: DURATION=10 WARMUP=3 BASE_PORT=18590 KEEP_TMP=1.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$bench_dir/.." && pwd)"
tag=instructions
[[ $# -eq 2 ]] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
# shellcheck source=bench/lib.sh
source "$bench_dir/lib.sh"
require valgrind callgrind_control wrk nginx curl
duration="${DURATION:-10}"
warmup="${WARMUP:-3}"
start_upstream "${BASE_PORT:-18590}"

# count LABEL BIN EXTRA: prints "LABEL thread=instructions/request ... total=N requests=R"
count() {
  local label="$1" side_bin="$2" extra="$3" dir="$tmp_dir/$1"
  mkdir -p "$dir"
  cat >"$dir/config.yaml" <<YAML
server:
  listen: "127.0.0.1:0"
  port_file: "$dir/port"
  threads: 1
storage:
  url: "sqlite://$dir/ledger.db"
  spill_path: "$dir/ledger.spill"
providers:
  - name: nginx
    kind: openai
    base_url: "http://127.0.0.1:$upstream_port/v1"
    models:
      - id: gpt-4o-mini
$extra
YAML
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/callgrind.out" \
    "$side_bin" serve --config "$dir/config.yaml" >"$dir/gatewayz.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 600); do [[ -s "$dir/port" ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [[ -s "$dir/port" ]] || die "$label did not start: $(tail -n 5 "$dir/gatewayz.log")"
  local target
  target="http://127.0.0.1:$(cat "$dir/port")/v1/chat/completions"
  # Counting errors would measure the wrong path: the chat must answer 200.
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$chat_body" \
    --max-time 30 "$target" || true)"
  [[ "$code" == 200 ]] || die "$label answered $code (is the upstream on port $upstream_port up?)"
  printf "wrk.method='POST'; wrk.body='%s'; wrk.headers['Content-Type']='application/json'\n" "$chat_body" >"$dir/post.lua"
  wrk -t1 -c4 -d"${warmup}s" -s "$dir/post.lua" "$target" >/dev/null
  callgrind_control --zero "$pid" >"$dir/control.log" 2>&1 || die "$label: callgrind_control --zero failed: $(cat "$dir/control.log")"
  local out requests
  out="$(wrk -t1 -c4 -d"${duration}s" -s "$dir/post.lua" "$target")"
  callgrind_control --dump=measured "$pid" >"$dir/control.log" 2>&1 ||
    die "$label: callgrind_control --dump failed: $(cat "$dir/control.log")"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  ! grep -q 'Non-2xx' <<<"$out" || die "$label answered errors while counted: $(grep 'Non-2xx' <<<"$out")"
  requests="$(awk '/requests in/ { print $1 }' <<<"$out")"
  [[ "${requests:-0}" -gt 0 ]] || die "$label served no request"
  compgen -G "$dir/callgrind.out.1-*" >/dev/null || die "$label: no measured dump in $dir"
  # The measured dump, one file per thread (.1-NN); thread 01 is the main
  # (serving) thread, the others in order of creation.
  local f line="" total=0 ir
  for f in "$dir"/callgrind.out.1-*; do
    ir="$(awk '/^summary:/ { print $2; exit }' "$f")"
    [[ "${ir:-0}" -gt 0 ]] || continue
    total=$((total + ir))
    [[ $((ir / requests)) -gt 0 ]] && line+="thread${f##*-}=$((ir / requests)) "
  done
  result="$label ${line}total=$((total / requests)) requests=$requests"
}

count A "$1" "${AB_EXTRA_A:-}"
echo "$result"
a_total="$(field total "$result")"
count B "$2" "${AB_EXTRA:-}"
echo "$result"
b_total="$(field total "$result")"
echo "B / A instructions per request: $(awk -v a="$a_total" -v b="$b_total" 'BEGIN { printf "%.3f", b / a }')"

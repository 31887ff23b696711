# Shared by bench/connections.sh and bench/soak.sh (sourced, not run): a
# temp dir cleaned up on exit, an nginx upstream answering the bench's fixed
# chat completion on CPU $LOAD_CPU, and one gatewayz (one shard, SQLite
# ledger) on CPU $PROXY_CPU in front of it.
#
# The sourcing script sets bench_dir, repo_root and `tag` (for messages and
# the temp dir's name) first. After start_gatewayz: gw_pid, gw_port, url,
# chat_body, tmp_dir.

proxy_cpu="${PROXY_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
bin="${GATEWAYZ_BIN:-$repo_root/build-release/src/app/gatewayz}"
pin_proxy=(taskset -c "$proxy_cpu")
pin_load=(taskset -c "$load_cpu")
chat_body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, benchmark"}]}'

die() { echo "$tag: $*" >&2; exit 1; }

# require TOOL...: each must be on PATH.
require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/install-deps.sh)"
  done
}

# build_unless_given: builds the release gatewayz unless GATEWAYZ_BIN or SKIP_BUILD=1.
build_unless_given() {
  if [[ "${SKIP_BUILD:-0}" != "1" && -z "${GATEWAYZ_BIN:-}" ]]; then
    (cd "$repo_root" && ./scripts/build.sh release --target gatewayz >&2)
  fi
  [[ -x "$bin" ]] || die "no gatewayz binary at $bin"
}

tmp_dir="$(mktemp -d -t "gatewayz-$tag.XXXXXX")"
pids=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${KEEP_TMP:-0}" == "1" ]]; then echo "$tag: temp files kept in $tmp_dir" >&2; else rm -rf "$tmp_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_upstream PORT: nginx (bench/nginx-upstream.conf) on CPU $LOAD_CPU.
start_upstream() {
  local port="$1" body
  upstream_port="$port"
  mkdir -p "$tmp_dir/nginx"
  body="$(tr -d '\n' <"$bench_dir/chat-response.json")"
  sed -e "s|@PREFIX@|$tmp_dir/nginx|g" -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|0|g" \
    -e "s|@ACCESS_LOG@|off|g" "$bench_dir/nginx-upstream.conf" |
    BODY="$body" awk '{ gsub(/@BODY@/, ENVIRON["BODY"]); print }' >"$tmp_dir/nginx/nginx.conf"
  "${pin_load[@]}" "$(command -v nginx)" -p "$tmp_dir/nginx" -e "$tmp_dir/nginx/error.log" \
    -c "$tmp_dir/nginx/nginx.conf" >"$tmp_dir/nginx/stdout.log" 2>&1 &
  pids+=("$!")
}

# start_gatewayz [SERVER_YAML_LINES]: gatewayz in front of the upstream, on
# CPU $PROXY_CPU; returns once it answers a chat completion.
start_gatewayz() {
  local server_extra="${1:-}" code=""
  {
    echo "server:"
    echo "  listen: \"127.0.0.1:0\""
    echo "  port_file: \"$tmp_dir/gatewayz.port\""
    echo "  threads: 1"
    [[ -n "$server_extra" ]] && printf '%s\n' "$server_extra"
    echo "storage:"
    echo "  url: \"sqlite://$tmp_dir/gatewayz.db\""
    echo "  spill_path: \"$tmp_dir/gatewayz.spill\""
    echo "providers:"
    echo "  - name: nginx"
    echo "    kind: openai"
    echo "    base_url: \"http://127.0.0.1:$upstream_port/v1\""
    echo "    models:"
    echo "      - id: gpt-4o-mini"
  } >"$tmp_dir/gatewayz.yaml"
  # A session of its own, as in bench/run.sh.
  setsid "${pin_proxy[@]}" "$bin" serve --config "$tmp_dir/gatewayz.yaml" >"$tmp_dir/gatewayz.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
  for _ in $(seq 1 200); do [[ -s "$tmp_dir/gatewayz.port" ]] && break; sleep 0.05; done
  [[ -s "$tmp_dir/gatewayz.port" ]] || die "gatewayz did not start: $(tail -5 "$tmp_dir/gatewayz.log")"
  gw_port="$(cat "$tmp_dir/gatewayz.port")"
  url="http://127.0.0.1:$gw_port/v1/chat/completions"
  for _ in $(seq 1 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$chat_body" \
      --max-time 5 "$url" || true)"
    [[ "$code" == 200 ]] && return 0
    sleep 0.1
  done
  die "gatewayz answered $code"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$gw_pid/status"; }
open_files() { find "/proc/$gw_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }
median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

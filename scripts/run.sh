#!/usr/bin/env bash
# Builds the release binary and runs the demo: a mock provider on
# 127.0.0.1:9100 (what config/gatewayz.yaml points at) and the gateway on the
# address of the config (127.0.0.1:8080 by default).
#
#   scripts/run.sh                  # config/gatewayz.yaml
#   CONFIG=my.yaml scripts/run.sh   # another config
#   MOCK_LISTEN=127.0.0.1:9200 ...  # mock elsewhere (set SKIP_MOCK=1 for none)
#   GATEWAYZ_BIN=path ...           # use this binary, build nothing
#
# Ctrl-C or SIGTERM stops the gateway (which drains) and then the mock.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

config="${CONFIG:-config/gatewayz.yaml}"
mock_listen="${MOCK_LISTEN:-127.0.0.1:9100}"
bin="${GATEWAYZ_BIN:-$repo_root/build-release/src/app/gatewayz}"

if [[ "${SKIP_BUILD:-0}" != "1" && -z "${GATEWAYZ_BIN:-}" ]]; then
  ./scripts/build.sh release --target gatewayz
fi

tmp_dir="$(mktemp -d -t gatewayz-run.XXXXXX)"
mock_pid=""
serve_pid=""

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$serve_pid" ]] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  if [[ -n "$mock_pid" ]] && kill -0 "$mock_pid" 2>/dev/null; then
    kill -TERM "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp_dir"
}
trap cleanup EXIT
# On a signal, stop the gateway first (it drains) and let the script end after it.
trap 'if [[ -n "$serve_pid" ]]; then kill -TERM "$serve_pid" 2>/dev/null || true; fi' INT TERM

if [[ "${SKIP_MOCK:-0}" != "1" ]]; then
  "$bin" mock-provider --listen "$mock_listen" --port-file "$tmp_dir/mock.port" &
  mock_pid=$!
  for _ in $(seq 1 100); do
    [[ -s "$tmp_dir/mock.port" ]] && break
    if ! kill -0 "$mock_pid" 2>/dev/null; then
      echo "run.sh: mock provider failed to start on $mock_listen" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "run.sh: mock provider listening on $mock_listen (pid $mock_pid)"
fi

# The gateway runs as a child (not exec'd) so that the traps above still fire.
"$bin" serve --config "$config" &
serve_pid=$!
status=0
# `wait` returns early when a trapped signal arrives; keep waiting for the gateway.
while kill -0 "$serve_pid" 2>/dev/null; do
  wait "$serve_pid" && status=0 || status=$?
done
serve_pid=""
exit "$status"

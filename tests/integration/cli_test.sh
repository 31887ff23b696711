#!/usr/bin/env bash
# Process-level tests of the gatewayz binary: the CLI contract (version, help,
# check-config and its error paths) and SIGTERM draining an in-flight stream.
# Usage: cli_test.sh /path/to/gatewayz
set -uo pipefail  # no -e: every check runs and is counted

bin="$1"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [[ "$2" == 0 ]]; then passed=$((passed + 1)); echo "ok   - $1"
  else failed=$((failed + 1)); echo "FAIL - $1"; fi
}

wait_for_file() {
  for _ in $(seq 1 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done
  return 1
}

# --- CLI contract -----------------------------------------------------------
"$bin" version | grep -Eq '^gatewayz [0-9]+\.[0-9]+\.[0-9]+$'; check "version prints the version" $?
"$bin" --help | grep -q 'check-config'; check "--help lists the subcommands" $?

cat > "$work/bad.yaml" <<'YAML'
server:
  listen: "127.0.0.1:0"
  threadz: 2
providers:
  - name: p
    kind: grpc
    base_url: "http://127.0.0.1:1/v1"
    api_key: "${GATEWAYZ_TEST_UNSET_VARIABLE}"
    models:
      - id: m
YAML
out="$("$bin" check-config "$work/bad.yaml" 2>&1)"; rc=$?
[[ $rc -ne 0 ]]; check "check-config exits non-zero on an invalid file" $?
grep -q 'server.threadz' <<<"$out"; check "unknown key named by its YAML path" $?
grep -q 'providers\[0\].kind' <<<"$out"; check "bad value named by its YAML path" $?
grep -q 'providers\[0\].api_key' <<<"$out"; check "unset env var named by its YAML path" $?

"$bin" serve --config "$work/bad.yaml" >/dev/null 2>&1; rc=$?
[[ $rc -ne 0 ]]; check "serve refuses an invalid config" $?

# A database that refuses connections: exit 1 with the cause, not the URL's
# password, and a clean exit (the logger thread once outlived the metrics).
cat > "$work/nodb.yaml" <<'YAML'
server:
  listen: "127.0.0.1:0"
storage:
  url: "postgres://gw:pw-Zr8sQ2vX@127.0.0.1:1/gatewayz"
providers:
  - name: p
    kind: openai
    base_url: "http://127.0.0.1:1/v1"
    api_key: k
    models:
      - id: m
YAML
out="$("$bin" serve --config "$work/nodb.yaml" 2>&1)"; rc=$?
[[ $rc -eq 1 ]]; check "serve exits 1 when the store cannot open (got $rc)" $?
grep -q 'cannot open the store' <<<"$out"; check "the store error is logged" $?
! grep -q 'pw-Zr8sQ2vX' <<<"$out"; check "the database password is not printed" $?
! grep -q 'Sanitizer' <<<"$out"; check "no sanitizer report on a failed start" $?

# --- SIGTERM drains an in-flight stream ---------------------------------------
"$bin" mock-provider --listen 127.0.0.1:0 --port-file "$work/mock.port" --tokens-per-s 10 --output-tokens 20 >"$work/mock.log" 2>&1 &
pids+=($!)
wait_for_file "$work/mock.port" || { echo "mock did not start"; exit 1; }
mock_port="$(cat "$work/mock.port")"

cat > "$work/good.yaml" <<YAML
server:
  listen: "127.0.0.1:0"
  threads: 2
  port_file: "$work/gw.port"
  shutdown_grace_s: 10
providers:
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:${mock_port}/v1"
    models:
      - id: gpt-4o-mini
YAML
"$bin" check-config "$work/good.yaml" >/dev/null 2>"$work/check.err"; check "check-config accepts a valid file" $?
! grep -q WARNING "$work/check.err"; check "no open-gateway warning on loopback" $?

# auth.mode none off loopback: valid, but loudly warned about (not served here:
# tests listen on loopback only).
sed 's/listen: "127.0.0.1:0"/listen: "0.0.0.0:0"/' "$work/good.yaml" >"$work/open.yaml"
"$bin" check-config "$work/open.yaml" >/dev/null 2>"$work/open.err"; check "an open gateway is still a valid config" $?
grep -q 'WARNING: auth.mode is none and the gateway listens on 0.0.0.0' "$work/open.err"
check "check-config warns that the gateway and its admin API are open" $?
grep -q '/admin/' "$work/open.err"; check "the warning names the admin API" $?

"$bin" serve --config "$work/good.yaml" >"$work/gw.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
wait_for_file "$work/gw.port" || { echo "gateway did not start"; cat "$work/gw.log"; exit 1; }
gw_port="$(cat "$work/gw.port")"

# A 20-token stream at 10 tokens/s takes about 2 s; SIGTERM arrives after 0.5 s.
curl -sS -N "http://127.0.0.1:${gw_port}/v1/chat/completions" \
  -d '{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hi"}]}' \
  >"$work/stream.out" 2>"$work/curl.err" &
curl_pid=$!
sleep 0.5
kill -TERM "$gw_pid"
sleep 0.2
curl -sS -m 2 "http://127.0.0.1:${gw_port}/v1/models" >/dev/null 2>&1; late_rc=$?
wait "$curl_pid"; curl_rc=$?
wait "$gw_pid"; gw_rc=$?
[[ $late_rc -ne 0 ]]; check "no new connections after SIGTERM" $?
[[ $curl_rc -eq 0 ]]; check "in-flight stream completed" $?
grep -q 'data: \[DONE\]' "$work/stream.out"; check "stream ended with [DONE]" $?
[[ "$(grep -c '"content":"' "$work/stream.out")" -ge 20 ]]; check "all 20 tokens arrived" $?
[[ $gw_rc -eq 0 ]]; check "gateway exited 0 after draining" $?

echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]

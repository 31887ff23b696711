# Shared helpers of the process-level test scripts (sourced, not run).
# Callers set `work` (their temp dir) and may list more log files to show on
# failure in the array `extra_logs`.

show_logs() {
  local f
  for f in "$work"/*.log "${extra_logs[@]}"; do
    [[ -s "$f" ]] || continue
    echo "--- tail of $(basename "$f") ---" >&2
    tail -n 25 "$f" >&2
  done
}
die() {  # setup failures: nothing later can be checked
  echo "FAIL - $*" >&2
  show_logs
  exit 1
}

passed=0
failed=0
check() {  # check NAME CONDITION-EXIT-CODE [DETAIL]
  if [[ "$2" == 0 ]]; then passed=$((passed + 1)); echo "ok   - $1"
  else failed=$((failed + 1)); echo "FAIL - $1${3:+: $3}"; fi
}

wait_for_file() {
  for _ in $(seq 1 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done
  return 1
}

# --- processes and ports (tests/deploy/stack_test.sh) ----------------------------
# Callers keep the pids they start in the array `pids`; stop_all (for their
# EXIT trap) sends SIGTERM, allows 3 s, then SIGKILLs what is left.
running() {  # a child that has exited but not been waited for is a zombie: not running
  [[ -r "/proc/$1/stat" ]] && [[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]]
}
stop_all() {
  local p alive
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 60); do
    alive=0
    for p in "${pids[@]}"; do running "$p" && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.05
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
random_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}
wait_until() {  # wait_until SECONDS CMD...: polls CMD every 0.2 s
  local until=$((SECONDS + $1)); shift
  while ! "$@"; do
    (( SECONDS >= until )) && return 1
    sleep 0.2
  done
}
# start_on_free_port LOG PATH CMD...: runs CMD (in the background, output to
# LOG) with every "{port}" in its arguments replaced by a free port, until
# http://127.0.0.1:PORT/PATH answers; another port when that one was taken
# meanwhile (up to 5 tries). Sets started_port; adds the pid to `pids`.
start_on_free_port() {
  local log="$1" path="$2" pid up arg
  shift 2
  for _ in 1 2 3 4 5; do
    started_port="$(random_port)" || return 1
    local args=()
    for arg in "$@"; do args+=("${arg//\{port\}/$started_port}"); done
    "${args[@]}" >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    up=0
    for _ in $(seq 1 300); do
      if curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${started_port}/${path}" 2>/dev/null; then up=1; break; fi
      running "$pid" || break
      sleep 0.05
    done
    [[ $up -eq 1 ]] && return 0
    kill -TERM "$pid" 2>/dev/null
    grep -Eqi 'address already in use|cannot listen' "$log" || return 1
  done
  return 1
}
check_prometheus_log() {  # check_prometheus_log FILE: Prometheus logged no warning or error
  if grep -Eiq 'level=(warn|error)' "$1"; then
    check "prometheus logged no warnings or errors" 1 "$(grep -Ei 'level=(warn|error)' "$1" | head -5)"
  else
    check "prometheus logged no warnings or errors" 0
  fi
}

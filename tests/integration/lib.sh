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

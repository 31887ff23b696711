-- wrk script: POSTs one chat completion body on every request and prints a
-- machine-readable summary line that bench/run.sh parses.
--   BENCH_BODY    the JSON request body (default: a small non-streaming chat)
--   BENCH_BEARER  if set and non-empty, sent as "Authorization: Bearer <value>"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bearer = os.getenv("BENCH_BEARER")
if bearer and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end
wrk.body = os.getenv("BENCH_BODY")
  or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, benchmark"}]}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%.0f duration_us=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f" ..
    " connect_errors=%.0f read_errors=%.0f write_errors=%.0f status_errors=%.0f timeouts=%.0f\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end

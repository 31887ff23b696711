#include "telemetry/catalog.hpp"

#include <utility>

namespace gatewayz::telemetry {

namespace buckets {

const std::vector<double>& prometheus_default() {
  static const std::vector<double> b{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
  return b;
}
const std::vector<double>& provider_response_time() {
  static const std::vector<double> b{0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0};
  return b;
}
const std::vector<double>& gen_ai_duration() {
  static const std::vector<double> b{0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                     1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
  return b;
}
const std::vector<double>& gen_ai_tokens() {
  static const std::vector<double> b{1,     4,     16,     64,      256,     1024,     4096,
                                     16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
  return b;
}
const std::vector<double>& sizes_bytes() {
  static const std::vector<double> b{100, 1000, 10'000, 100'000, 1'000'000, 10'000'000};
  return b;
}
const std::vector<double>& fast_operations() {
  static const std::vector<double> b{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    5.0};
  return b;
}

}  // namespace buckets

namespace {
using labels = std::vector<std::string>;
}

catalog::catalog(registry& r, std::string version)
    : reg(r),
      http_requests(r.counter("fastapi_requests_total", "Total HTTP requests by method, route and status code.",
                              labels{"method", "path", "status_code"})),
      http_duration(r.histogram("fastapi_requests_duration_seconds", "HTTP request duration in seconds.",
                                buckets::prometheus_default(), labels{"method", "path"}, true)),
      http_in_progress(
          r.gauge("fastapi_requests_in_progress", "HTTP requests being served right now.", labels{"method", "path"})),
      http_request_size(r.histogram("fastapi_request_size_bytes", "HTTP request body size in bytes.",
                                    buckets::sizes_bytes(), labels{"method", "path"})),
      http_response_size(r.histogram("fastapi_response_size_bytes", "HTTP response size in bytes.",
                                     buckets::sizes_bytes(), labels{"method", "path"})),
      inference_requests(r.counter("model_inference_requests_total",
                                   "Inference attempts by model, provider and outcome (success or error): one per "
                                   "upstream attempt, under the provider tried.",
                                   labels{"model", "provider", "status"})),
      inference_duration(r.histogram("model_inference_duration_seconds",
                                     "Inference duration in seconds, from request to the last byte.",
                                     buckets::prometheus_default(), labels{"model", "provider"}, true)),
      tokens_used(r.counter("tokens_used_total",
                            "Tokens used by model, provider and token_type (input or output); the sum over "
                            "token_type is the total.",
                            labels{"model", "provider", "token_type"})),
      credits_used(r.counter("credits_used_total", "Credits charged to customers in USD by model and provider.",
                             labels{"model", "provider"})),
      provider_availability(r.gauge("provider_availability",
                                    "1 when the provider is available (monitor verdict), else 0.", labels{"provider"})),
      provider_error_rate(r.gauge("provider_error_rate",
                                  "Share of failed provider calls over the health window (0..1).", labels{"provider"})),
      provider_response_time(r.histogram("provider_response_time_seconds",
                                         "Duration of each upstream provider call in seconds.",
                                         buckets::provider_response_time(), labels{"provider"}, true)),
      provider_health_score(r.gauge("gatewayz_provider_health_score",
                                    "Provider health score 0..1: 0.4 availability + 0.3 (1 - error rate) + "
                                    "0.3 latency score.",
                                    labels{"provider"})),
      circuit_breaker_state(r.gauge("gatewayz_circuit_breaker_state",
                                    "Circuit breaker state per provider: 1 for the current state, else 0.",
                                    labels{"provider", "state"})),
      circuit_breaker_transitions(r.counter("circuit_breaker_state_transitions_total",
                                            "Circuit breaker state transitions.",
                                            labels{"provider", "from_state", "to_state"})),
      circuit_breaker_rejected(r.counter("circuit_breaker_rejected_requests_total",
                                         "Requests not sent to a provider because its circuit breaker was open.",
                                         labels{"provider"})),
      cost_by_provider(r.counter("gatewayz_cost_by_provider", "Total cost by provider in USD.", labels{"provider"})),
      database_queries(r.counter("database_queries_total", "Database queries by operation.", labels{"operation"})),
      database_query_duration(r.histogram("database_query_duration_seconds",
                                          "Database query duration in seconds by operation.",
                                          buckets::fast_operations(), labels{"operation"})),
      cache_hits(r.counter("cache_hits_total", "Response cache hits.")),
      cache_misses(r.counter("cache_misses_total", "Response cache misses (lookups not answered from the cache).")),
      cache_size(r.gauge("cache_size_bytes", "Bytes held by the response cache (memory mode).")),
      api_key_cache_hits(
          r.counter("gatewayz_api_key_cache_hits_total", "API-key checks answered from the per-thread key cache.")),
      api_key_cache_misses(
          r.counter("gatewayz_api_key_cache_misses_total", "API-key checks that looked the key up in the store.")),
      backend_ttfb(r.histogram("backend_ttfb_seconds",
                               "Time from sending a request upstream to the first response byte.",
                               buckets::prometheus_default())),
      streaming_duration(r.histogram("streaming_duration_seconds",
                                     "Duration of streamed responses, first byte to last, in seconds.",
                                     buckets::prometheus_default())),
      time_to_first_chunk(r.histogram("time_to_first_chunk_seconds",
                                      "Time from request arrival to the first streamed chunk sent to the client.",
                                      buckets::prometheus_default(), labels{"model", "provider"}, true)),
      redis_operations(
          r.counter("gatewayz_redis_operations_total", "Total Redis operations.", labels{"operation", "status"})),
      redis_operation_duration(r.histogram("gatewayz_redis_operation_duration_seconds", "Redis operation duration.",
                                           buckets::fast_operations(), labels{"operation"})),
      redis_pool_connections(
          r.gauge("gatewayz_redis_pool_connections", "Redis connection pool status.", labels{"state"})),
      redis_get_operations(r.counter("redis_get_operations_total", "Redis GET operations.", labels{"status"})),
      redis_set_operations(r.counter("redis_set_operations_total", "Redis SET operations.", labels{"status"})),
      redis_del_operations(r.counter("redis_del_operations_total", "Redis DEL operations.", labels{"status"})),
      redis_hget_operations(r.counter("redis_hget_operations_total", "Redis HGET operations.", labels{"status"})),
      redis_hset_operations(r.counter("redis_hset_operations_total", "Redis HSET operations.", labels{"status"})),
      redis_duration_plain(r.histogram("redis_operation_duration_seconds", "Redis operation duration.",
                                       buckets::fast_operations(), labels{"operation"})),
      redis_pool_current(
          r.gauge("redis_pool_connections_current", "Redis pool connections by state.", labels{"state"})),
      redis_pool_max(r.gauge("redis_pool_connections_max", "Redis pool size limit.")),
      gen_ai_operation_duration(r.histogram(
          "gen_ai_client_operation_duration_seconds", "GenAI operation duration (OpenTelemetry semantic conventions).",
          buckets::gen_ai_duration(),
          labels{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"}, true)),
      gen_ai_token_usage(r.histogram(
          "gen_ai_client_token_usage", "Tokens used per GenAI operation (OpenTelemetry semantic conventions).",
          buckets::gen_ai_tokens(),
          labels{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"})),
      gen_ai_time_to_first_chunk(r.histogram(
          "gen_ai_client_operation_time_to_first_chunk_seconds",
          "Time to the first streamed chunk (OpenTelemetry semantic conventions).", buckets::gen_ai_duration(),
          labels{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"}, true)),
      overhead(r.histogram("gatewayz_overhead_seconds",
                           "Time a request spends in the gateway itself: total minus time waiting on providers.",
                           buckets::fast_operations(), labels{"path"}, true)),
      failovers(r.counter("gatewayz_failovers_total",
                          "Attempts that failed before any byte reached the client and moved to another provider.",
                          labels{"model", "from_provider"})),
      telemetry_dropped(r.counter("gatewayz_telemetry_dropped_total",
                                  "Telemetry records dropped because a bounded queue was full.", labels{"pipeline"})),
      ledger_backlog_rejected(
          r.counter("gatewayz_ledger_backlog_rejected_requests_total",
                    "Requests refused with 503 because the usage ledger's queue was full (the database is behind).")),
      requests_rejected(r.counter("gatewayz_requests_rejected_total",
                                  "Requests refused before any provider was tried, by reason (insufficient_quota: "
                                  "the customer's credit does not cover the request's reservation).",
                                  labels{"reason"})),
      spans_dropped(r.counter("gatewayz_spans_dropped_total",
                              "Trace spans dropped before reaching the collector, by reason (queue_full: the "
                              "exporter's bounded queue was full; export_failed: the collector refused or could not "
                              "be reached within the export timeout).",
                              labels{"reason"})),
      log_records_sent(r.counter("gatewayz_log_records_sent_total", "Log lines Loki accepted.")),
      log_records_dropped(r.counter("gatewayz_log_records_dropped_total",
                                    "Log lines dropped before reaching Loki or stdout, by reason (queue_full: a "
                                    "bounded queue overflowed and its oldest lines went; rejected: Loki refused the "
                                    "push; shutdown: still queued when the stop grace ran out).",
                                    labels{"reason"})),
      loki_queue_size(r.gauge("loki_log_queue_size", "Log lines waiting to be pushed to Loki.")),
      build_info(r.gauge("gatewayz_build_info", "Build information; the value is always 1.", labels{"version"})),
      process(r) {
  build_info.series({version}).set(1.0);
}

}  // namespace gatewayz::telemetry

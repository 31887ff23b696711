#pragma once
// Every metric family gatewayz exposes, declared in one place. Metric names,
// label names and bucket boundaries are a stable contract with existing
// Grafana dashboards and alerts, which query them by name: a rename breaks
// them silently.
//
// Subsystems receive a `catalog&` and resolve their label sets to handles
// once (at start or on first use), then update per shard on the hot path.
//
// Counter names are given as prometheus_client code declares them (some
// without `_total`); registry::counter appends `_total` to a name that lacks
// it, exactly as prometheus_client does, so `gatewayz_cost_by_provider` is
// scraped as `gatewayz_cost_by_provider_total`.

#include <string>
#include <vector>

#include "telemetry/metrics.hpp"

namespace gatewayz::telemetry {

// Bucket boundaries (seconds unless named otherwise).
namespace buckets {
// prometheus_client's default Histogram buckets (the FastAPI-named HTTP
// histograms and the inference histograms use them).
const std::vector<double>& prometheus_default();
// provider_response_time_seconds: 0.1 s .. 30 s.
const std::vector<double>& provider_response_time();
// OpenTelemetry GenAI v1.41.0 advice: operation duration / time to first chunk.
const std::vector<double>& gen_ai_duration();
// OpenTelemetry GenAI v1.41.0 advice: token usage (in tokens).
const std::vector<double>& gen_ai_tokens();
// Request/response sizes in bytes: 100 B .. 10 MB.
const std::vector<double>& sizes_bytes();
// Fast operations (database, Redis, gateway overhead): 50 µs .. 5 s.
const std::vector<double>& fast_operations();
}  // namespace buckets

struct catalog {
  explicit catalog(registry& reg, std::string version);

  registry& reg;

  // HTTP (the names of FastAPI's Prometheus instrumentation, kept).
  // path = route template; every unmatched path is one value.
  counter_family& http_requests;         // fastapi_requests_total{method,path,status_code}
  histogram_family& http_duration;       // fastapi_requests_duration_seconds{method,path}
  gauge_family& http_in_progress;        // fastapi_requests_in_progress{method,path}
  histogram_family& http_request_size;   // fastapi_request_size_bytes{method,path}
  histogram_family& http_response_size;  // fastapi_response_size_bytes{method,path}

  // Inference. status = success | error.
  // One per upstream attempt, under the attempt's provider (a request that
  // failed over counts once per provider tried).
  counter_family& inference_requests;    // model_inference_requests_total{model,provider,status}
  histogram_family& inference_duration;  // model_inference_duration_seconds{model,provider}
  // token_type = input | output; sum over it for the total tokens.
  counter_family& tokens_used;   // tokens_used_total{model,provider,token_type}
  counter_family& credits_used;  // credits_used_total{model,provider}  (USD charged)

  // Provider health (gauges set by the health monitor).
  gauge_family& provider_availability;       // provider_availability{provider}
  gauge_family& provider_error_rate;         // provider_error_rate{provider}
  histogram_family& provider_response_time;  // provider_response_time_seconds{provider}
  gauge_family& provider_health_score;       // gatewayz_provider_health_score{provider}

  // Circuit breakers.
  gauge_family& circuit_breaker_state;          // gatewayz_circuit_breaker_state{provider,state}
  counter_family& circuit_breaker_transitions;  // circuit_breaker_state_transitions_total{provider,from_state,to_state}
  counter_family& circuit_breaker_rejected;     // circuit_breaker_rejected_requests_total{provider}

  // Cost.
  counter_family& cost_by_provider;  // gatewayz_cost_by_provider_total{provider}

  // Database.
  counter_family& database_queries;           // database_queries_total{operation}
  histogram_family& database_query_duration;  // database_query_duration_seconds{operation}

  // Cache: the response cache (cache/), and the API-key cache apart, so
  // the key lookups of every request do not drown the response hit rate.
  counter_family& cache_hits;            // cache_hits_total
  counter_family& cache_misses;          // cache_misses_total
  gauge_family& cache_size;              // cache_size_bytes
  counter_family& api_key_cache_hits;    // gatewayz_api_key_cache_hits_total
  counter_family& api_key_cache_misses;  // gatewayz_api_key_cache_misses_total

  // Performance.
  histogram_family& backend_ttfb;         // backend_ttfb_seconds
  histogram_family& streaming_duration;   // streaming_duration_seconds
  histogram_family& time_to_first_chunk;  // time_to_first_chunk_seconds{model,provider}

  // Redis.
  counter_family& redis_operations;            // gatewayz_redis_operations_total{operation,status}
  histogram_family& redis_operation_duration;  // gatewayz_redis_operation_duration_seconds{operation}
  gauge_family& redis_pool_connections;        // gatewayz_redis_pool_connections{state}
  // Redis, under the second set of names the dashboards also query.
  counter_family& redis_get_operations;    // redis_get_operations_total{status}
  counter_family& redis_set_operations;    // redis_set_operations_total{status}
  counter_family& redis_del_operations;    // redis_del_operations_total{status}
  counter_family& redis_hget_operations;   // redis_hget_operations_total{status}
  counter_family& redis_hset_operations;   // redis_hset_operations_total{status}
  histogram_family& redis_duration_plain;  // redis_operation_duration_seconds{operation}
  gauge_family& redis_pool_current;        // redis_pool_connections_current{state}
  gauge_family& redis_pool_max;            // redis_pool_connections_max

  // OpenTelemetry GenAI client metrics in Prometheus naming.
  histogram_family& gen_ai_operation_duration;   // gen_ai_client_operation_duration_seconds
  histogram_family& gen_ai_token_usage;          // gen_ai_client_token_usage
  histogram_family& gen_ai_time_to_first_chunk;  // gen_ai_client_operation_time_to_first_chunk_seconds
  // Time spent in the gateway itself: total minus upstream time.
  histogram_family& overhead;  // gatewayz_overhead_seconds{path}
  // Failover and telemetry-pipeline health.
  counter_family& failovers;                // gatewayz_failovers_total{model,from_provider}
  counter_family& telemetry_dropped;        // gatewayz_telemetry_dropped_total{pipeline}
  counter_family& ledger_backlog_rejected;  // gatewayz_ledger_backlog_rejected_requests_total
  // Requests refused before any provider was tried, by why (e.g. insufficient_quota).
  counter_family& requests_rejected;  // gatewayz_requests_rejected_total{reason}
  // Trace spans lost on the way to the collector, by reason (queue_full | export_failed).
  counter_family& spans_dropped;  // gatewayz_spans_dropped_total{reason}

  // Logs (logging/log.hpp), set by the logger's writer thread.
  counter_family& log_records_sent;     // gatewayz_log_records_sent_total
  counter_family& log_records_dropped;  // gatewayz_log_records_dropped_total{reason}
  gauge_family& loki_queue_size;        // loki_log_queue_size

  gauge_family& build_info;  // gatewayz_build_info{version}
  process_collector process;
};

}  // namespace gatewayz::telemetry

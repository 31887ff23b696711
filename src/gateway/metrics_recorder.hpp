#pragma once
// The request observer that turns request and attempt records into the
// inference metrics: model_inference_requests_total, durations, tokens,
// credits, time to first chunk, failovers, provider response time and cost,
// the gateway's own overhead, and the OpenTelemetry gen_ai_* histograms.
//
// model_inference_requests_total counts attempts: one per upstream attempt,
// under that attempt's provider, with its own status (on_attempt), so a
// failure another provider then absorbed still counts against the provider
// that failed. Everything else here is per request, under the provider of
// the request's last attempt (on_request).
//
// Series of a (provider, model) pair are created the first time a shard
// serves it (models without traffic create none) and kept per shard, so the
// steady state takes no lock and builds no string. A pair's histograms are
// created on their first observation, not with its counters: a histogram
// series at 0 has no average (0/0 = NaN), and one such series (a pair that
// never streams, never succeeds, never answers last) turns an avg() over all
// pairs NaN. The per-provider and
// per-operation series are created by the constructor, so /metrics shows
// them (at 0) before any traffic and also with metrics.enabled false, when
// the recorder is built but not installed as an observer.

#include <array>
#include <cstddef>
#include <map>
#include <string_view>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "gateway/request_record.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::gateway {

class metrics_recorder final : public request_observer {
 public:
  // `providers` must outlive the recorder; `target_count` is model_routes::target_count().
  metrics_recorder(telemetry::catalog& metrics, const std::vector<config::provider_config>& providers,
                   std::size_t target_count, std::size_t shards);

  void on_attempt(std::size_t shard, const request_record& request, const attempt_record& attempt) noexcept override;
  void on_request(std::size_t shard, const request_record& request) noexcept override;

 private:
  // A histogram series created by its first observation.
  struct lazy_histogram {
    telemetry::histogram_handle handle;
    bool created = false;
  };
  // Handles of one (provider, model) pair and operation.
  struct target_metrics {
    bool resolved = false;                       // the counters
    telemetry::counter_handle requests_success;  // attempts
    telemetry::counter_handle requests_error;
    telemetry::counter_handle input_tokens;  // tokens_used_total{token_type}
    telemetry::counter_handle output_tokens;
    telemetry::counter_handle credits;
    telemetry::counter_handle failovers;
    lazy_histogram duration;
    lazy_histogram time_to_first_chunk;
    lazy_histogram gen_ai_duration_ok;
    lazy_histogram gen_ai_input_tokens;
    lazy_histogram gen_ai_output_tokens;
    lazy_histogram gen_ai_time_to_first_chunk;
  };
  struct shard_state {
    std::vector<std::array<target_metrics, 3>> targets;  // [target_index][operation]
    // gen_ai_client_operation_duration_seconds of failed calls, by (target, op, error.type).
    std::map<std::tuple<std::size_t, int, std::string_view>, telemetry::histogram_handle> failed_calls;
  };
  struct provider_metrics {
    telemetry::histogram_handle response_time;
    telemetry::counter_handle cost;
  };

  target_metrics& handles(shard_state& shard, providers::operation op, const route_target& target);
  // Observes `value` in `h`, creating its series in `family` with `labels`
  // first if needed; `trace_id` (the request's, when its trace is sampled)
  // becomes the bucket's exemplar in families declared with exemplars.
  static void observe(std::size_t shard, lazy_histogram& h, telemetry::histogram_family& family,
                      std::initializer_list<std::string_view> labels, double value, std::string_view trace_id);

  telemetry::catalog& metrics_;
  const std::vector<config::provider_config>& providers_;
  std::vector<provider_metrics> provider_handles_;       // per provider
  std::array<telemetry::histogram_handle, 3> overhead_;  // per operation
  telemetry::histogram_handle backend_ttfb_;
  telemetry::histogram_handle streaming_duration_;
  std::vector<shard_state> shards_;
};

}  // namespace gatewayz::gateway

#include "gateway/metrics_recorder.hpp"

#include <algorithm>

#include "gateway/route_table.hpp"

namespace gatewayz::gateway {

using providers::operation;

namespace {

// An attempt's status label: "success" when it gave the client a 2xx answer
// (for a stream, one without an in-band error). For the request's last
// attempt this is the request's own success (accounting.hpp), so a request
// served by its first attempt counts exactly as before attempts were counted.
bool attempt_succeeded(const attempt_record& attempt) {
  return attempt.outcome == attempt_outcome::served && attempt.client_status >= 200 && attempt.client_status < 300 &&
         !attempt.in_band_error;
}

}  // namespace

metrics_recorder::metrics_recorder(telemetry::catalog& metrics, const std::vector<config::provider_config>& providers,
                                   std::size_t target_count, std::size_t shards)
    : metrics_(metrics), providers_(providers), shards_(shards) {
  backend_ttfb_ = metrics.backend_ttfb.series();
  streaming_duration_ = metrics.streaming_duration.series();
  // The overhead histogram's `endpoint` label is the route template of the
  // operation's endpoint (the first three routes, in operation order).
  for (const auto op : {operation::chat_completions, operation::completions, operation::embeddings}) {
    const auto i = static_cast<std::size_t>(op);
    overhead_[i] = metrics.overhead.series({route_specs[i].path_template});
  }
  for (const auto& provider : providers) {
    provider_handles_.push_back(provider_metrics{metrics.provider_response_time.series({provider.name}),
                                                 metrics.cost_by_provider.series({provider.name})});
  }
  for (auto& shard : shards_) shard.targets.resize(target_count);
}

metrics_recorder::target_metrics& metrics_recorder::handles(shard_state& shard, operation op,
                                                            const route_target& target) {
  auto& t = shard.targets[target.target_index][static_cast<std::size_t>(op)];
  if (t.resolved) return t;
  auto& m = metrics_;
  const std::string_view mid = target.model->id;
  const std::string_view pid = providers_[target.provider_index].name;
  t.requests_success = m.inference_requests.series({mid, pid, "success"});
  t.requests_error = m.inference_requests.series({mid, pid, "error"});
  t.input_tokens = m.tokens_used.series({mid, pid, "input"});
  t.output_tokens = m.tokens_used.series({mid, pid, "output"});
  t.credits = m.credits_used.series({mid, pid});
  t.failovers = m.failovers.series({mid, pid});
  t.resolved = true;
  return t;
}

namespace {

// An unsampled request has no trace to point at: no exemplar.
void observe_traced(const telemetry::histogram_handle& h, std::size_t shard, double value, std::string_view trace_id) {
  if (trace_id.empty()) {
    h.observe(shard, value);
  } else {
    h.observe(shard, value, trace_id);
  }
}

}  // namespace

void metrics_recorder::observe(std::size_t shard, lazy_histogram& h, telemetry::histogram_family& family,
                               std::initializer_list<std::string_view> labels, double value,
                               std::string_view trace_id) {
  if (!h.created) {
    h.handle = family.series(labels);
    h.created = true;
  }
  observe_traced(h.handle, shard, value, trace_id);
}

void metrics_recorder::on_attempt(std::size_t shard, const request_record& request,
                                  const attempt_record& attempt) noexcept {
  auto& state = shards_[shard];
  const auto& target = *attempt.target;
  auto& t = handles(state, request.op, target);
  auto& provider = provider_handles_[target.provider_index];
  if (attempt.sent_at != steady_clock::time_point{}) {
    const double call_s = std::chrono::duration<double>(attempt.finished - attempt.sent_at).count();
    observe_traced(provider.response_time, shard, call_s, request.trace_id);
    if (attempt.ttfb) backend_ttfb_.observe(shard, std::chrono::duration<double>(*attempt.ttfb).count());
    if (attempt.error_type.empty()) {
      observe(shard, t.gen_ai_duration_ok, metrics_.gen_ai_operation_duration,
              {providers::operation_name(request.op), providers_[target.provider_index].name, target.model->id, ""},
              call_s, request.trace_id);
    } else {
      const auto key = std::make_tuple(target.target_index, static_cast<int>(request.op), attempt.error_type);
      auto it = state.failed_calls.find(key);
      if (it == state.failed_calls.end()) {
        it = state.failed_calls
                 .emplace(key, metrics_.gen_ai_operation_duration.series({providers::operation_name(request.op),
                                                                          providers_[target.provider_index].name,
                                                                          target.model->id, attempt.error_type}))
                 .first;
      }
      observe_traced(it->second, shard, call_s, request.trace_id);
    }
  }
  // One count per attempt under the attempt's own provider: a failure that
  // failover absorbed still counts against the provider that failed.
  (attempt_succeeded(attempt) ? t.requests_success : t.requests_error).inc(shard);
  // A failover is a move to another provider: counted with the attempt it
  // moved to, against the provider it left, so a failure with nowhere to go
  // (a model's only provider, the last of max_attempts) is not one.
  if (attempt.failed_over_from != nullptr) {
    const auto& from = *attempt.failed_over_from;
    handles(state, request.op, from).failovers.inc(shard);
  }
}

void metrics_recorder::on_request(std::size_t shard, const request_record& request) noexcept {
  if (request.last_attempt == nullptr) return;  // no provider was tried: nothing to attribute
  const auto& attempt = *request.last_attempt;
  const auto& target = *attempt.target;
  auto& t = handles(shards_[shard], request.op, target);
  auto& m = metrics_;
  const std::string_view mid = target.model->id;
  const std::string_view pid = providers_[target.provider_index].name;
  const std::string_view op_name = providers::operation_name(request.op);
  const std::string_view trace = request.trace_id;
  observe(shard, t.duration, m.inference_duration, {mid, pid}, request.latency_s, trace);
  const auto& usage = attempt.usage;
  if (usage.input_tokens > 0) t.input_tokens.inc(shard, static_cast<double>(usage.input_tokens));
  if (usage.output_tokens > 0) t.output_tokens.inc(shard, static_cast<double>(usage.output_tokens));
  if (usage.reported) {
    observe(shard, t.gen_ai_input_tokens, m.gen_ai_token_usage, {op_name, pid, mid, "input"},
            static_cast<double>(usage.input_tokens), {});
    if (request.op != operation::embeddings) {
      observe(shard, t.gen_ai_output_tokens, m.gen_ai_token_usage, {op_name, pid, mid, "output"},
              static_cast<double>(usage.output_tokens), {});
    }
  }
  if (request.cost_nanos > 0) {
    const double usd = static_cast<double>(request.cost_nanos) / 1e9;
    t.credits.inc(shard, usd);
    provider_handles_[target.provider_index].cost.inc(shard, usd);
  }
  if (request.time_to_first_chunk_s) {
    observe(shard, t.time_to_first_chunk, m.time_to_first_chunk, {mid, pid}, *request.time_to_first_chunk_s, trace);
    observe(shard, t.gen_ai_time_to_first_chunk, m.gen_ai_time_to_first_chunk, {op_name, pid, mid},
            *request.time_to_first_chunk_s, trace);
  }
  if (attempt.first_chunk_at && attempt.last_chunk_at) {
    streaming_duration_.observe(
        shard, std::chrono::duration<double>(*attempt.last_chunk_at - *attempt.first_chunk_at).count());
  }
  const double overhead_s =
      std::max(0.0, request.latency_s - std::chrono::duration<double>(request.upstream_wait).count());
  observe_traced(overhead_[static_cast<std::size_t>(request.op)], shard, overhead_s, trace);
}

}  // namespace gatewayz::gateway

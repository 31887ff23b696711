#include "gateway/trace_recorder.hpp"

#include <chrono>
#include <optional>

#include "core/json_scan.hpp"

namespace gatewayz::gateway {

namespace {

// Maps steady-clock instants of this request onto the wall clock with one
// reading of each clock, so a request's spans keep their true order.
class wall_clock_map {
 public:
  wall_clock_map()
      : steady_now_(steady_clock::now()),
        wall_now_ns_(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count()) {}
  std::uint64_t unix_nanos(steady_clock::time_point t) const {
    const auto back = std::chrono::duration_cast<std::chrono::nanoseconds>(steady_now_ - t).count();
    return static_cast<std::uint64_t>(wall_now_ns_ - back);
  }

 private:
  steady_clock::time_point steady_now_;
  std::int64_t wall_now_ns_;
};

std::string_view route_of(providers::operation op) {
  switch (op) {
    case providers::operation::completions: return "/v1/completions";
    case providers::operation::embeddings: return "/v1/embeddings";
    default: return "/v1/chat/completions";
  }
}

// The request parameters the conventions recommend, read from the client's
// body (numbers only; nothing of the prompt).
void set_request_parameters(tracing::span& s, const providers::inbound_request& inbound) {
  if (inbound.scan == nullptr) return;
  const auto number = [&](std::string_view key) -> const json_scan::member* {
    const auto* m = inbound.scan->find(key);
    return m != nullptr && m->kind == json_scan::value_kind::number ? m : nullptr;
  };
  const auto text = [&](const json_scan::member& m) {
    return inbound.body.substr(m.value_span.begin, m.value_span.size());
  };
  const auto* max_tokens = number("max_tokens");
  if (max_tokens == nullptr) max_tokens = number("max_completion_tokens");
  if (max_tokens != nullptr) {
    if (auto v = json_scan::to_int64(text(*max_tokens))) s.set("gen_ai.request.max_tokens", *v);
  }
  for (const auto& [key, attr] :
       {std::pair<std::string_view, std::string_view>{"temperature", "gen_ai.request.temperature"},
        {"top_p", "gen_ai.request.top_p"}}) {
    if (const auto* m = number(key)) {
      const std::string token(text(*m));
      char* end = nullptr;
      const double v = std::strtod(token.c_str(), &end);
      if (end == token.c_str() + token.size()) s.set(attr, v);
    }
  }
}

void set_common(tracing::span& s, const request_record& request) {
  s.set("gen_ai.operation.name", providers::operation_name(request.op));
  s.set("gen_ai.request.model", request.model);
  if (request.customer_id) {
    const auto id = std::to_string(*request.customer_id);
    s.set("customer.id", id);
    s.set("gatewayz.customer.id", id);
  }
  s.set("gatewayz.request.id", request.request_id);
}

// The spans a shard fills, one for the span being built and one for the
// cache steps' spans built meanwhile. They keep their capacity (submit()
// encodes them), so once warm a span costs no allocation.
tracing::span& scratch_span(bool child) {
  thread_local tracing::span spans[2];
  auto& s = spans[child ? 1 : 0];
  s.clear();
  return s;
}

// A span for one step of the response cache, a child of the server span:
// INTERNAL for the in-process cache, CLIENT (with the database conventions'
// db.system.name and db.operation.name) for Redis.
void cache_span(tracing::span& s, const tracing::request_trace& trace, const request_record& request,
                const cache_step& step, bool lookup, const wall_clock_map& clock) {
  s.trace = trace.trace;
  s.id = tracing::new_span_id();
  s.parent = trace.server_span;
  s.trace_state = trace.tracestate;
  s.flags = trace.flags | tracing::flags_has_is_remote;  // its parent is local
  const bool remote = request.cache_backend == "redis";
  s.kind = remote ? tracing::span_kind::client : tracing::span_kind::internal;
  s.name = lookup ? "cache lookup" : "cache store";
  s.start_unix_nano = clock.unix_nanos(step.started);
  s.end_unix_nano = clock.unix_nanos(step.finished);
  s.set("gatewayz.cache.backend", request.cache_backend);
  s.set("gatewayz.request.id", request.request_id);
  if (remote) {
    s.set("db.system.name", "redis");
    s.set("db.operation.name", lookup ? "GET" : "SET");
  }
  if (lookup) {
    s.set("gatewayz.cache.result", step.outcome);
    if (step.outcome == "unavailable") {
      s.set("error.type", "unavailable");
      s.status = tracing::status_code::error;
    }
  }
}

}  // namespace

trace_recorder::trace_recorder(tracing::batch_exporter& exporter,
                               std::span<const providers::provider_runtime> providers)
    : exporter_(exporter) {
  for (const auto& p : providers) {
    provider_info info;
    info.name = p.config->name;
    info.system = p.config->kind == config::provider_kind::anthropic ? "anthropic" : "openai";
    info.address = p.endpoint.host;
    info.port = p.endpoint.port;
    providers_.push_back(std::move(info));
  }
}

void trace_recorder::on_attempt(std::size_t shard, const request_record& request,
                                const attempt_record& attempt) noexcept {
  const auto* trace = request.trace;
  if (trace == nullptr || !trace->sampled() || !attempt.span.valid()) return;
  try {
    const wall_clock_map clock;
    const auto& provider = providers_[attempt.target->provider_index];
    auto& s = scratch_span(false);
    s.trace = trace->trace;
    s.id = attempt.span;
    s.parent = trace->server_span;
    s.trace_state = trace->tracestate;
    s.flags = trace->flags | tracing::flags_has_is_remote;  // its parent is local
    s.kind = tracing::span_kind::client;
    s.name.append(providers::operation_name(request.op)).append(" ").append(request.model);
    s.start_unix_nano = clock.unix_nanos(attempt.started);
    s.end_unix_nano = clock.unix_nanos(attempt.finished);
    set_common(s, request);
    s.set("gen_ai.system", provider.system);
    s.set("gen_ai.provider.name", provider.system);
    s.set("gatewayz.provider.name", provider.name);
    s.set("gatewayz.upstream.model", attempt.target->model->upstream);
    s.set("gatewayz.attempt", static_cast<std::int64_t>(attempt.number));
    s.set("server.address", provider.address);
    s.set("server.port", provider.port);
    if (request.streamed) s.set("gen_ai.request.stream", true);
    if (request.inbound != nullptr) set_request_parameters(s, *request.inbound);
    if (attempt.upstream_status != 0) {
      s.set("http.response.status_code", static_cast<std::int64_t>(attempt.upstream_status));
      s.set("http.status_code", static_cast<std::int64_t>(attempt.upstream_status));
    }
    const auto& response = attempt.response;
    if (!response.id.empty()) s.set("gen_ai.response.id", response.id);
    if (!response.model.empty()) s.set("gen_ai.response.model", response.model);
    if (!response.finish_reasons.empty()) {
      s.set("gen_ai.response.finish_reason", response.finish_reasons.front());
      s.set("gen_ai.response.finish_reasons", response.finish_reasons);
    }
    if (attempt.usage.reported) {
      s.set("gen_ai.usage.input_tokens", attempt.usage.input_tokens);
      s.set("gen_ai.usage.output_tokens", attempt.usage.output_tokens);
    }
    if (attempt.first_chunk_at && attempt.sent_at != steady_clock::time_point{}) {
      const double ttfc = std::chrono::duration<double>(*attempt.first_chunk_at - attempt.sent_at).count();
      s.set("gen_ai.response.time_to_first_chunk", ttfc);
      auto& first = s.events.emplace_back();
      first.name = "gen_ai.first_chunk";
      first.time_unix_nano = clock.unix_nanos(*attempt.first_chunk_at);
      first.attributes.push_back({"gen_ai.response.time_to_first_chunk", ttfc});
    }
    const bool failed = attempt.outcome == attempt_outcome::retryable || attempt.in_band_error ||
                        attempt.upstream_status >= 400 || !attempt.error_type.empty();
    if (attempt.outcome == attempt_outcome::client_gone) {
      s.set("error.type", "client_gone");
    } else if (failed) {
      s.set("error.type", attempt.error_type.empty() ? std::string_view("_OTHER") : attempt.error_type);
      s.status = tracing::status_code::error;
      if (attempt.outcome == attempt_outcome::retryable) s.status_message = "failed over to the next provider";
    }
    exporter_.submit(shard, s);
  } catch (...) {
    // Out of memory building a span: the trace loses it, the request does not.
  }
}

void trace_recorder::on_request(std::size_t shard, const request_record& request) noexcept {
  const auto* trace = request.trace;
  if (trace == nullptr || !trace->sampled()) return;
  try {
    const wall_clock_map clock;
    const auto route = route_of(request.op);
    auto& s = scratch_span(false);
    s.trace = trace->trace;
    s.id = trace->server_span;
    s.parent = trace->remote_parent;
    s.trace_state = trace->tracestate;
    s.flags = trace->flags | tracing::flags_has_is_remote | (trace->continued() ? tracing::flags_is_remote : 0);
    s.kind = tracing::span_kind::server;
    s.name.append("POST ").append(route);
    s.start_unix_nano = clock.unix_nanos(request.received_at);
    s.end_unix_nano = clock.unix_nanos(steady_clock::now());
    s.set("http.request.method", "POST");
    s.set("http.route", route);
    s.set("url.path", request.path.empty() ? route : request.path);
    s.set("http.response.status_code", static_cast<std::int64_t>(request.http_status));
    s.set("http.status_code", static_cast<std::int64_t>(request.http_status));
    set_common(s, request);
    if (request.streamed) s.set("gen_ai.request.stream", true);
    s.set("gatewayz.attempts", static_cast<std::int64_t>(request.attempts));
    if (const auto* last = request.last_attempt) {
      const auto& provider = providers_[last->target->provider_index];
      s.set("gen_ai.system", provider.system);
      s.set("gen_ai.provider.name", provider.system);
      s.set("gatewayz.provider.name", provider.name);
      if (!last->response.model.empty()) s.set("gen_ai.response.model", last->response.model);
      if (!last->response.finish_reasons.empty()) {
        s.set("gen_ai.response.finish_reason", last->response.finish_reasons.front());
      }
      if (last->usage.reported) {
        s.set("gen_ai.usage.input_tokens", last->usage.input_tokens);
        s.set("gen_ai.usage.output_tokens", last->usage.output_tokens);
      }
    }
    if (request.cache != cache_result::none) s.set("gatewayz.cache.result", to_string(request.cache));
    if (request.cache_lookup.happened()) {
      auto& child = scratch_span(true);
      cache_span(child, *trace, request, request.cache_lookup, true, clock);
      exporter_.submit(shard, child);
    }
    if (request.cache_store.happened()) {
      auto& child = scratch_span(true);
      cache_span(child, *trace, request, request.cache_store, false, clock);
      exporter_.submit(shard, child);
    }
    if (request.cache == cache_result::hit) {
      s.set("gatewayz.provider.name", request.provider);
      s.set("gen_ai.usage.input_tokens", request.usage.input_tokens);
      s.set("gen_ai.usage.output_tokens", request.usage.output_tokens);
    }
    if (request.time_to_first_chunk_s) s.set("gen_ai.response.time_to_first_chunk", *request.time_to_first_chunk_s);
    if (!request.success) {
      std::string_view type = "_OTHER";
      if (request.http_status == 499) {
        type = "client_gone";
      } else if (request.last_attempt != nullptr && !request.last_attempt->error_type.empty()) {
        type = request.last_attempt->error_type;
      } else if (request.http_status >= 400) {
        type = "";  // set from the status below
      }
      if (type.empty()) {
        s.set("error.type", std::to_string(request.http_status));
      } else {
        s.set("error.type", type);
      }
      // HTTP server spans: 5xx is an error, 4xx is the client's (status unset).
      if (request.http_status >= 500 || (request.last_attempt != nullptr && request.last_attempt->in_band_error)) {
        s.status = tracing::status_code::error;
      }
    }
    exporter_.submit(shard, s);
  } catch (...) {
  }
}

}  // namespace gatewayz::gateway

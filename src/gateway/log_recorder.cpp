#include "gateway/log_recorder.hpp"

#include <chrono>
#include <string>

#include <fmt/format.h>

namespace gatewayz::gateway {

namespace {

using logging::level;

double milliseconds(steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Millisecond values rounded to 0.001 ms: enough for latency, short lines.
double rounded_ms(double ms) { return static_cast<double>(static_cast<std::int64_t>(ms * 1000.0 + 0.5)) / 1000.0; }

std::string_view route_of(providers::operation op) {
  switch (op) {
    case providers::operation::chat_completions: return "/v1/chat/completions";
    case providers::operation::completions: return "/v1/completions";
    case providers::operation::embeddings: return "/v1/embeddings";
  }
  return "/v1/chat/completions";
}

void add_trace(logging::event& e, const request_record& r) {
  if (!r.trace_id.empty()) e.text("trace_id", r.trace_id);
  if (!r.span_id.empty()) e.text("span_id", r.span_id);
}

// Cuts at `limit` bytes without splitting a UTF-8 sequence.
std::string_view truncated(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0u) == 0x80u) --end;
  return text.substr(0, end);
}

}  // namespace

std::string_view log_recorder::log_error_type(const attempt_record& attempt) {
  const auto type = attempt.error_type;
  if (type == "timeout") return "timeout";
  if (type == "connection_error") return "connection";
  if (type == "invalid_response" || type == "response_too_large" || type == "stream_error") return "malformed";
  if (attempt.upstream_status == 429) return "rate_limited";
  if (attempt.upstream_status >= 500) return "upstream_5xx";
  if (attempt.upstream_status >= 400) return "upstream_4xx";
  return type.empty() ? std::string_view("unknown") : type;
}

void log_recorder::on_attempt(std::size_t shard, const request_record& request,
                              const attempt_record& attempt) noexcept {
  const std::string_view provider = providers_[attempt.target->provider_index].name;
  if (attempt.failed_over_from != nullptr && log_.enabled(level::warning)) {
    logging::event e{level::warning, "request failed over to another provider"};
    e.text("request_id", request.request_id);
    add_trace(e, request);
    e.text("model", request.model)
        .text("from_provider", providers_[attempt.failed_over_from->provider_index].name)
        .text("provider", provider)
        .integer("attempt", attempt.number);
    log_.write(e, shard);
  }
  if (attempt.outcome == attempt_outcome::client_gone || attempt.error_type.empty()) return;
  const bool provider_fault = attempt.provider_failure || attempt.outcome == attempt_outcome::retryable ||
                              attempt.upstream_status == 429 || attempt.upstream_status >= 500 || attempt.in_band_error;
  const level severity = provider_fault ? level::error : level::warning;
  if (!log_.enabled(severity)) return;
  logging::event e{severity, provider_fault ? "provider error" : "provider refused the request"};
  e.text("request_id", request.request_id);
  add_trace(e, request);
  e.text("model", request.model)
      .text("provider", provider)
      .integer("attempt", attempt.number)
      .text("error_type", log_error_type(attempt))
      .text("error", attempt.error_type);
  if (attempt.upstream_status != 0) e.integer("status_code", attempt.upstream_status);
  e.boolean("will_fail_over", attempt.outcome == attempt_outcome::retryable);
  if (attempt.sent_at != steady_clock::time_point{}) {
    e.number("duration_ms", rounded_ms(milliseconds(attempt.finished - attempt.sent_at)));
  }
  log_.write(e, shard);
}

void log_recorder::on_request(std::size_t shard, const request_record& r) noexcept {
  if (!log_.enabled(level::info)) return;
  const bool cancelled = r.http_status == 499;
  logging::event e{level::info, r.success ? "request completed" : cancelled ? "request cancelled" : "request failed"};
  e.text("request_id", r.request_id);
  add_trace(e, r);
  e.text("method", "POST").text("route", route_of(r.op)).text("model", r.model);
  if (!r.provider.empty()) e.text("provider", r.provider);
  e.integer("attempts", r.attempts)
      .text("status", r.success   ? "success"
                      : cancelled ? "cancelled"
                                  : "error")
      .integer("http_status", r.http_status)
      .number("duration_ms", rounded_ms(r.latency_s * 1000.0));
  if (r.time_to_first_chunk_s) e.number("ttft_ms", rounded_ms(*r.time_to_first_chunk_s * 1000.0));
  e.number("upstream_ms", rounded_ms(milliseconds(r.upstream_wait)));
  const std::int64_t input = r.usage.input_tokens;
  const std::int64_t output = r.usage.output_tokens;
  e.integer("tokens_used", input + output).integer("input_tokens", input).integer("output_tokens", output);
  e.number("cost_usd", static_cast<double>(r.cost_nanos) / 1e9);
  e.boolean("stream", r.streamed);
  if (r.cache != cache_result::none) e.text("cache", to_string(r.cache));
  // The customer id is the gateway's own number, not personal data.
  char user[24];
  if (r.customer_id) {
    const auto end = fmt::format_to_n(user, sizeof user, "{}", *r.customer_id).out;
    e.integer("customer_id", *r.customer_id)
        .text("user_id", std::string_view(user, static_cast<std::size_t>(end - user)));
  }
  if (r.key_id) e.integer("key_id", *r.key_id);
  if (log_content_) e.text("prompt", truncated(r.body, content_bytes));
  log_.write(e, shard);
}

void log_recorder::on_exchange(std::size_t shard, const exchange_record& x) noexcept {
  level severity = level::debug;
  std::string_view message = "request served";
  if (x.http_status >= 500) {
    severity = level::warning;
    message = "request refused";
  } else if (x.http_status >= 400) {
    severity = level::info;
    message = "request refused";
  } else if (x.route.starts_with("/admin/")) {
    severity = level::info;
    message = "admin request served";
  }
  if (!log_.enabled(severity)) return;
  logging::event e{severity, message};
  e.text("request_id", x.request_id).text("method", x.method).text("route", x.route);
  e.integer("http_status", x.http_status);
  e.text("status", x.http_status < 400 ? "success" : "error");
  if (!x.error_type.empty()) e.text("error_type", x.error_type);
  if (!x.error_code.empty()) e.text("error_code", x.error_code);
  if (!x.model.empty()) e.text("model", x.model);
  if (x.customer_id) e.integer("customer_id", *x.customer_id);
  e.number("duration_ms", rounded_ms(milliseconds(steady_clock::now() - x.received_at)));
  log_.write(e, shard);
}

}  // namespace gatewayz::gateway

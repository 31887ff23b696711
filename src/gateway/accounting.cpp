#include "gateway/accounting.hpp"

#include <cmath>
#include <string>

#include "core/request_id.hpp"
#include "core/text.hpp"

namespace gatewayz::gateway {

std::string_view to_string(cache_result result) {
  switch (result) {
    case cache_result::none: return "none";
    case cache_result::miss: return "miss";
    case cache_result::hit: return "hit";
    case cache_result::refresh: return "refresh";
  }
  return "none";
}

std::int64_t attempt_cost_nanos(const attempt_record& attempt) {
  // Price (USD per million tokens) * tokens * 1000.
  const auto& model = *attempt.target->model;
  const auto& usage = attempt.usage;
  return std::llround(static_cast<double>(usage.input_tokens) * model.input_per_million * 1000.0 +
                      static_cast<double>(usage.output_tokens) * model.output_per_million * 1000.0);
}

void request_accounting::record_cache_hit(const cache::cached_response& entry, std::int64_t cost) {
  record_.cache = cache_result::hit;
  cache_hit_ = &entry;
  cache_hit_cost_ = cost;
}

request_accounting::request_accounting(const accounting_services& services, std::size_t shard,
                                       std::size_t& rows_pending, const providers::inbound_request& request,
                                       std::string_view request_id, bool client_chose_id,
                                       steady_clock::time_point received_at)
    : services_(services), shard_(shard), rows_pending_(rows_pending), client_chose_id_(client_chose_id) {
  ++rows_pending_;
  record_.request_id = request_id;
  record_.op = request.op;
  record_.model = request.model;
  record_.body = request.body;
  record_.streamed = request.stream;
  record_.received_at = received_at;
  record_.inbound = &request;
}

const tracing::request_trace* request_accounting::start_trace(const http::request& req) {
  if (services_.tracing == nullptr) return nullptr;
  // One traceparent, or none usable (two make the request's context invalid);
  // tracestate headers combine as one list.
  std::optional<std::string_view> traceparent;
  unsigned traceparents = 0;
  std::string_view first_state;
  std::string joined_state;
  unsigned states = 0;
  for (const auto& field : req) {
    const auto name = field.name_string();
    if (name.size() == 11 && text::iequals(name, "traceparent")) {
      ++traceparents;
      traceparent = field.value();
    } else if (name.size() == 10 && text::iequals(name, "tracestate")) {
      if (++states == 1) {
        first_state = field.value();
      } else {
        if (states == 2) joined_state.assign(first_state);
        joined_state.push_back(',');
        joined_state.append(field.value());
      }
    }
  }
  if (traceparents != 1) traceparent.reset();
  const auto target = req.target();
  record_.path = target.substr(0, target.find('?'));
  auto& trace = trace_.emplace();
  tracing::start_trace(*services_.tracing, traceparent, states > 1 ? std::string_view(joined_state) : first_state,
                       trace);
  record_.trace = &trace;
  if (trace.sampled()) {
    record_.trace_id = trace.trace_id_hex();
    record_.span_id = trace.span_id_hex();
  }
  return &trace;
}

request_accounting::~request_accounting() {
  finish();
  --rows_pending_;
}

void request_accounting::set_caller(std::int64_t customer_id, std::int64_t key_id,
                                    auth::customer_balances::account* account, store::nanos_usd reserved) {
  record_.customer_id = customer_id;
  record_.key_id = key_id;
  account_ = account;
  reserved_ = reserved;
}

void request_accounting::record_attempt(const attempt_record& attempt) {
  ++record_.attempts;
  last_attempt_ = attempt;
  last_outcome_ = attempt.outcome;
  record_.upstream_wait += attempt.upstream_wait;
  for (auto* observer : services_.observers) observer->on_attempt(shard_, record_, attempt);
}

void request_accounting::finish() noexcept {
  const auto now = steady_clock::now();
  auto& r = record_;
  r.latency_s = std::chrono::duration<double>(now - r.received_at).count();
  if (cache_hit_ != nullptr) {
    // Served from the cache: the ledger shows provider "cache", the answer's
    // tokens and what the hit was charged.
    r.provider = "cache";
    r.http_status = client_status_ == 0 ? 200 : client_status_;
    r.success = r.http_status == 200;
    r.usage = {cache_hit_->input_tokens, cache_hit_->output_tokens, true};
    r.cost_nanos = r.success ? cache_hit_cost_ : 0;
  } else if (!last_outcome_) {
    // Accepted, but no provider was tried (every breaker open, or no
    // provider supports the endpoint): still one ledger row.
    r.http_status = client_status_ == 0 ? 499 : client_status_;
  } else {
    const auto& attempt = last_attempt_;
    r.last_attempt = &last_attempt_;
    r.provider = (*services_.providers)[attempt.target->provider_index].name;
    unsigned status = client_status_;
    if (status == 0) status = attempt.client_status;
    if (attempt.outcome == attempt_outcome::client_gone && attempt.client_status == 0) status = 499;
    r.http_status = status;
    r.success = status >= 200 && status < 300 && !attempt.in_band_error &&
                attempt.outcome != attempt_outcome::client_gone;
    r.usage = attempt.usage;
    r.cost_nanos = attempt_cost_nanos(attempt);
    if (attempt.first_chunk_at) {
      r.time_to_first_chunk_s = std::chrono::duration<double>(*attempt.first_chunk_at - r.received_at).count();
    }
  }

  // The reservation becomes the real cost (the ledger row's), or is released.
  if (account_ != nullptr) auth::customer_balances::settle(*account_, reserved_, r.cost_nanos);

  // Built only when an observer reads them, so a gateway without a ledger or
  // sink pays nothing for them.
  std::string ledger_id;
  if (services_.observers_want_identity) {
    r.received_wall = std::chrono::system_clock::now() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(now - r.received_at);
    if (client_chose_id_) {
      ledger_id = std::string(r.request_id) + "#" + make_request_id();
      r.ledger_id = ledger_id;
    } else {
      r.ledger_id = r.request_id;
    }
  }
  for (auto* observer : services_.observers) observer->on_request(shard_, r);
}

}  // namespace gatewayz::gateway

#pragma once
// Accounting for one proxied request: owns its request_record, takes each
// attempt as it ends, and when the request ends (the destructor, whichever
// way the failover loop returns, client disconnects included) fills the
// outcome once: status, success, cost from the config's prices, latency. It
// then settles the customer's credit reservation to that cost (released in
// full when nothing was served) and hands the record to every request observer
// (metrics, ledger, and later sinks), in order.
//
// Lives on the request's coroutine frame on its shard thread. While it
// exists the request holds a place in its shard's ledger queue
// (`rows_pending`), so a request admitted by the ledger's backpressure check
// always has room for its row.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "cache/cache.hpp"
#include "config/config.hpp"
#include "gateway/request_record.hpp"
#include "http/request.hpp"
#include "tracing/request_trace.hpp"

namespace gatewayz::gateway {

// The gateway-wide parts accounting uses; owned by the gateway.
struct accounting_services {
  const std::vector<config::provider_config>* providers = nullptr;
  std::span<request_observer* const> observers;
  bool observers_want_identity = false;  // some observer's wants_identity()
  // Tracing on: every accepted request gets a trace context, sampled by this.
  const tracing::sampler* tracing = nullptr;
};

// Tells every observer about a request the gateway answered itself
// (exchange_record); on the shard's thread, like the rest.
inline void report_exchange(const accounting_services& services, std::size_t shard, const exchange_record& exchange) {
  for (auto* observer : services.observers) observer->on_exchange(shard, exchange);
}

class request_accounting {
 public:
  request_accounting(const accounting_services& services, std::size_t shard, std::size_t& rows_pending,
                     const providers::inbound_request& request, std::string_view request_id, bool client_chose_id,
                     steady_clock::time_point received_at);
  request_accounting(const request_accounting&) = delete;
  request_accounting& operator=(const request_accounting&) = delete;
  ~request_accounting();

  // The customer's request, holding `reserved` nano-USD of its credit on
  // `account` (may be null) until it ends; then the real cost is settled.
  void set_caller(std::int64_t customer_id, std::int64_t key_id, auth::customer_balances::account* account,
                  store::nanos_usd reserved);
  // With tracing on, starts the request's trace from its traceparent and
  // tracestate headers (record.trace_id / span_id set when sampled); returns
  // it, or null with tracing off. Call before the first attempt.
  const tracing::request_trace* start_trace(const http::request& req);
  // An attempt ended; `attempt.finished` is when.
  void record_attempt(const attempt_record& attempt);
  // The gateway itself answered the client with `status` (an error).
  void set_client_status(unsigned status) { client_status_ = status; }
  // How the response cache took part (response_caching.hpp): the backend
  // and its lookup (not happened() for a refresh).
  void set_cache(cache_result result, std::string_view backend, const cache_step& lookup) {
    record_.cache = result;
    record_.cache_backend = backend;
    record_.cache_lookup = lookup;
  }
  // The answer was handed to the cache.
  void set_cache_store(const cache_step& store) { record_.cache_store = store; }
  // The request was answered from the cache with `entry` (which outlives
  // this object), charged `cost` nano-USD; no provider was called. Call
  // after set_cache().
  void record_cache_hit(const cache::cached_response& entry, std::int64_t cost);

 private:
  void finish() noexcept;

  const accounting_services& services_;
  std::size_t shard_;
  std::size_t& rows_pending_;
  bool client_chose_id_;
  unsigned client_status_ = 0;
  auth::customer_balances::account* account_ = nullptr;
  store::nanos_usd reserved_ = 0;
  request_record record_;
  std::optional<tracing::request_trace> trace_;
  attempt_record last_attempt_;
  std::optional<attempt_outcome> last_outcome_;
  const cache::cached_response* cache_hit_ = nullptr;
  std::int64_t cache_hit_cost_ = 0;
};

// What an attempt's answer cost at its model's prices, in nano-USD.
std::int64_t attempt_cost_nanos(const attempt_record& attempt);

}  // namespace gatewayz::gateway

#pragma once
// The failover loop: serves one inference request (chat, completions,
// embeddings) by trying the providers of its model until one serves it.
//
// Order: a model's providers are tried healthiest first (the monitor's
// latest scores; equal scores keep config order). A provider is skipped
// while its circuit breaker refuses it. A failure before anything reached
// the client (connection error, timeout, 5xx, 429, a malformed answer)
// moves on to the next provider, up to server.max_attempts attempts and
// within server.request_timeout_s; once bytes reached the client the
// attempt's answer stands.
//
// Every accepted request (valid body, known model) is accounted for exactly
// once (accounting.hpp); while the shard's ledger queue is full it is
// refused with 503 instead, so no request is served unrecorded. A customer's
// request first reserves its worst-case cost (credit_estimate.hpp) against
// the customer's balance and is refused with 402 when that does not fit;
// accounting settles the reservation to the real cost.
//
// Shared by all shards; each call runs on its request's shard thread with
// that shard's pools.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/authenticator.hpp"
#include "cache/cache.hpp"
#include "config/config.hpp"
#include "core/api_error.hpp"
#include "core/json_scan.hpp"
#include "gateway/accounting.hpp"
#include "gateway/model_routes.hpp"
#include "gateway/response_caching.hpp"
#include "health/health.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "ledger/ledger_writer.hpp"
#include "providers/runtime.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::gateway {

// The state of one shard the loop uses; owned by that shard.
struct proxy_shard {
  std::size_t index = 0;
  std::vector<std::shared_ptr<http::upstream_pool>> pools;  // per provider
  // Accepted requests whose ledger row is not queued yet: the ledger queue
  // must have room for all of them.
  std::size_t ledger_rows_pending = 0;
  // This shard's view of the response cache; null when cache.mode is off.
  std::unique_ptr<cache::shard_cache> cache;
};

// Requests refused before any provider is tried, counted by reason in
// gatewayz_requests_rejected_total{reason}; empty handles when metrics are off.
struct rejection_counters {
  std::optional<telemetry::counter_handle> insufficient_quota;
  std::optional<telemetry::counter_handle> invalid_api_key;
  std::optional<telemetry::counter_handle> auth_unavailable;

  // Creates the series (at 0, also with metrics off); counts only when `enabled`.
  rejection_counters(telemetry::catalog& metrics, bool enabled);
  void count(auth::auth_status refusal, std::size_t shard) const;
};

struct failover_parts {
  const config::server_config* server = nullptr;  // max_attempts, request_timeout_s
  const model_routes* routes = nullptr;
  std::span<const providers::provider_runtime> providers;
  health::monitor* health = nullptr;
  ledger::ledger_writer* ledger = nullptr;                   // null: no ledger, no backpressure
  std::optional<telemetry::counter_handle> backlog_refused;  // counts 503 ledger_backlog; none when metrics are off
  const accounting_services* accounting = nullptr;
  const rejection_counters* rejections = nullptr;
  std::uint32_t reserve_output_tokens = 4096;  // auth.reserve_output_tokens
  const response_caching* cache = nullptr;     // null: cache.mode off
};

class failover_proxy {
 public:
  explicit failover_proxy(failover_parts parts) : parts_(parts) {}

  // `route`: the route template the request matched (for its log line).
  boost::asio::awaitable<void> serve(proxy_shard& shard, http::request_context& ctx, providers::operation op,
                                     std::string_view route, std::string_view request_id,
                                     const auth::auth_result& caller) const;

 private:
  // Sends a refusal made before accounting and reports it to the observers.
  boost::asio::awaitable<void> refuse(const proxy_shard& shard, http::request_context& ctx, std::string_view route,
                                      std::string_view request_id, const auth::auth_result& caller,
                                      std::string_view model, const api_error& error) const;
  // Answers the request with a cached `entry` (a hit): charged
  // cache.hit_cost_fraction of its cost, replayed as SSE when streamed.
  // False, with nothing sent, when the entry cannot answer it (a streamed
  // request for an answer that is not a chat completion).
  boost::asio::awaitable<bool> serve_cached(proxy_shard& shard, http::request_context& ctx, std::string_view route,
                                            std::string_view request_id, const auth::auth_result& caller,
                                            const providers::inbound_request& request,
                                            const cache::cached_response& entry, const cache_step& lookup) const;
  // The store that answered `lookup`, or the configured backend when none
  // did (a refresh, or a backend that does not say).
  std::string_view cache_backend(const cache_step& lookup) const {
    return lookup.backend.empty() ? parts_.cache->backend() : lookup.backend;
  }
  // Keeps a copy of an answer about to be served in the cache when the plan
  // allows it; returns the step (not happened() when nothing was stored).
  cache_step store_answer(proxy_shard& shard, const cache_plan& plan, const attempt_record& record,
                          std::string_view answer) const;
  // Checks before anything is proxied or accounted: a valid body, a known
  // model, room in the shard's ledger queue. Returns the refusal, or fills
  // scan, request and targets.
  std::optional<api_error> admit(proxy_shard& shard, std::string_view body, providers::operation op,
                                 json_scan::object_scan& scan, providers::inbound_request& request,
                                 const std::vector<route_target>*& targets) const;
  // Reserves the request's worst-case cost against the caller's credit (none
  // without a customer). Returns the refusal, or sets `reserved`.
  std::optional<api_error> reserve_credit(const proxy_shard& shard, const auth::auth_result& caller,
                                          const providers::inbound_request& request,
                                          const std::vector<route_target>& targets, store::nanos_usd& reserved) const;
  // The error a request gets when no attempt served it.
  api_error final_error(std::string_view model, const std::vector<route_target>& targets, unsigned supported,
                        unsigned attempts, unsigned refused_by_breaker, std::optional<api_error> last_error,
                        steady_clock::time_point deadline) const;

  failover_parts parts_;
};

}  // namespace gatewayz::gateway

#pragma once
// The gateway: OpenAI-compatible endpoints in front of many providers.
//
// The router of the request path. Built once at start by the composition
// root (app/), which owns every part it is handed (the config included) and
// keeps them alive longer than the gateway; immutable afterwards. Each server shard gets its
// own handler with its own upstream connection pools (make_shard_handler),
// so the request path takes no locks.
//
// A request is matched against the route table once (route_table.hpp),
// checked for method and access, and dispatched: inference routes to the
// failover loop (failover.hpp), the rest to handlers that return a response
// (health_api, metrics_api, store_api). What a proxied request came to flows
// one way, to the request observers (request_record.hpp).

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "auth/authenticator.hpp"
#include "cache/cache.hpp"
#include "config/config.hpp"
#include "gateway/request_record.hpp"
#include "health/health.hpp"
#include "health/render.hpp"
#include "http/server.hpp"
#include "ledger/ledger_writer.hpp"
#include "providers/runtime.hpp"
#include "store/store.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::gateway {

// What the gateway uses but does not own.
struct gateway_parts {
  telemetry::catalog* metrics = nullptr;                   // required; one shard per server thread plus one
  health::monitor* health = nullptr;                       // required
  std::span<const providers::provider_runtime> providers;  // required: one per config provider, in order
  // Customers, keys and /models/stats. Without a store, /models/stats and
  // the customer/key admin API answer 503 and auth.mode must be none.
  store::store* store = nullptr;
  auth::authenticator* auth = nullptr;      // API-key checks; required when auth.mode is keys
  ledger::ledger_writer* ledger = nullptr;  // one row per accepted request
  // The database's latest known state for GET /health (not_configured when unset).
  std::function<health::dependency_state()> database_state;
  // Redis's latest known state for GET /health (not_configured when unset).
  std::function<health::dependency_state()> redis_state;
  // Sinks after the built-in metrics and ledger recorders (logs, traces, ...).
  std::vector<request_observer*> observers;
  // Tracing on: each accepted request gets a trace context sampled by this,
  // and its upstream calls carry traceparent. Null: tracing off.
  const tracing::sampler* tracing = nullptr;
  // The response cache's backend (config.cache); null: no response cache.
  cache::response_cache* cache = nullptr;
};

class gateway {
 public:
  // Throws std::invalid_argument when the parts do not fit the config (a
  // registry or ledger with fewer shards than server threads).
  gateway(const config::gateway_config& config, gateway_parts parts);
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  // Builds the request handler of one server shard (called on start-up, once per shard).
  http::request_handler make_shard_handler(std::size_t shard, boost::asio::io_context& io);

  // Server threads: config.server.threads, or one per core when that is 0.
  unsigned shard_count() const;
  // The server settings from config.server, with the HTTP metrics observer
  // attached and, as after_run, the wait for background work (the gateway
  // must outlive the server's run()).
  http::server_options server_options() const;

  // Providers serving `model`, in config order; empty if none.
  const std::vector<route_target>& routes(std::string_view model) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Server threads for a configured count: the count, or one per core when 0.
unsigned resolve_threads(unsigned configured);

}  // namespace gatewayz::gateway

#pragma once
// The composition root: builds every part of a gateway from its config, in
// dependency order, and owns them all: the metrics registry and catalog, the
// store (storage.url), the ledger writer, the authenticator, the provider
// runtimes, the health monitor with its prober, the database pinger, the
// Redis clients and pinger (redis.url) and the gateway. `gatewayz serve`, `gatewayz check-config` and the tests build a
// gateway through this one function; nothing else wires modules together.
//
// Lifetime: parts are destroyed in reverse order of construction, the
// gateway first. The server that runs the gateway's handlers must be
// stopped before this object is destroyed. Construction throws
// store_open_error when the store cannot be opened or migrated, and
// std::invalid_argument for a config the parts reject.

#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "cache/cache.hpp"
#include "cache/memory_cache.hpp"
#include "config/config.hpp"
#include "gateway/gateway.hpp"
#include "gateway/log_recorder.hpp"
#include "health/health.hpp"
#include "http/server.hpp"
#include "ledger/ledger_writer.hpp"
#include "logging/log.hpp"
#include "providers/runtime.hpp"
#include "redis/client_set.hpp"
#include "store/store.hpp"
#include "telemetry/catalog.hpp"
#include "tracing/exporter.hpp"
#include "tracing/sampler.hpp"

namespace gatewayz::app {

// The store named by storage.url could not be opened; what() names the
// cause, never the URL (it may hold a password).
struct store_open_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct compose_options {
  // false: no store is opened whatever storage.url says (check-config).
  bool open_store = true;
  // false: providers' probe_interval_s is ignored (passive health only).
  bool active_probes = true;
  // false: background threads (health monitor, database pinger) are not
  // started: the parts are built to validate the config, not to serve.
  bool start = true;
  // Where the parts' events (breaker transitions, ledger and key-lookup
  // failures) and the request path's lines go (gateway/log_recorder.hpp);
  // null: nowhere. Publishes its counters in this gateway's metrics while
  // the gateway lives; must outlive it.
  logging::logger* logger = nullptr;
  // Sinks that see every proxied request after the metrics and before the ledger.
  std::vector<gateway::request_observer*> observers;
};

class gateway_app {
 public:
  explicit gateway_app(config::gateway_config config, compose_options options = {});
  ~gateway_app();
  gateway_app(const gateway_app&) = delete;
  gateway_app& operator=(const gateway_app&) = delete;

  const config::gateway_config& config() const { return config_; }
  unsigned threads() const { return threads_; }
  telemetry::catalog& metrics() { return *catalog_; }
  store::store* store() { return store_.get(); }  // null with storage.url none
  ledger::ledger_writer* ledger() { return ledger_.get(); }
  auth::authenticator* auth() { return auth_.get(); }
  health::monitor& health() { return *monitor_; }
  std::span<const providers::provider_runtime> providers() const { return runtimes_; }
  gateway::gateway& gateway() { return *gateway_; }
  // One Redis client per server shard (redis/client_set.hpp), created as the
  // server builds each shard's handler; null without redis.url.
  redis::client_set* redis() { return redis_clients_.get(); }

  // The server settings and the per-shard handler factory of the gateway.
  http::server_options server_options() const { return gateway_->server_options(); }
  http::handler_factory handler_factory();

  // Once the server has stopped: writes (or spills) every queued ledger row.
  // Idempotent; the destructor calls it too.
  void stop_ledger();

 private:
  class database_pinger;
  class redis_pinger;

  config::gateway_config config_;
  unsigned threads_;
  std::unique_ptr<telemetry::registry> registry_;
  std::unique_ptr<telemetry::catalog> catalog_;
  std::unique_ptr<store::store> store_;
  // Before the ledger: its writer thread reports committed rows to it.
  std::unique_ptr<auth::customer_balances> balances_;
  std::unique_ptr<ledger::ledger_writer> ledger_;
  std::unique_ptr<auth::authenticator> auth_;
  std::vector<providers::provider_runtime> runtimes_;
  std::unique_ptr<health::monitor> monitor_;
  std::unique_ptr<database_pinger> pinger_;
  std::unique_ptr<redis::client_set> redis_clients_;
  std::unique_ptr<redis_pinger> redis_pinger_;
  logging::logger* logger_ = nullptr;
  std::unique_ptr<gateway::log_recorder> log_recorder_;
  // Tracing (config.tracing.enabled): the sampler every request consults,
  // the exporter thread and the observer that feeds it.
  std::optional<tracing::sampler> sampler_;
  std::unique_ptr<tracing::batch_exporter> exporter_;
  std::unique_ptr<gateway::request_observer> trace_recorder_;
  // In redis mode with a local tier: the two tiers, which response_cache_
  // (a tiered_cache) uses; before it, so they outlive it.
  std::unique_ptr<cache::memory_cache> local_cache_;
  std::unique_ptr<cache::response_cache> shared_cache_;
  // The response cache's backend (cache.mode memory or redis); null: off.
  std::unique_ptr<cache::response_cache> response_cache_;
  std::unique_ptr<gateway::gateway> gateway_;
};

}  // namespace gatewayz::app

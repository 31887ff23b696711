#pragma once
// The gateway: OpenAI-compatible endpoints in front of many providers.
//
// One `gateway` is built from the config at start and is immutable; it owns
// the routing table (model id -> providers serving it, in config order) and
// the provider adapters. Each server shard gets its own handler with its own
// upstream connection pools (see make_shard_handler), so the request path
// takes no locks.
//
// The life of a request is described in ARCHITECTURE.md.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "config/config.hpp"
#include "health/health.hpp"
#include "health/render.hpp"
#include "http/server.hpp"
#include "ledger/ledger_writer.hpp"
#include "providers/provider.hpp"
#include "store/store.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::gateway {

// What one accepted inference request came to: the ledger's row, the
// request log line and the trace's attributes are all built from it.
struct request_summary {
  std::string_view request_id;  // as in x-request-id (the client's own when it sent one)
  // The ledger's key: unique per request even when a client reuses its
  // X-Request-ID ("<client id>#<gateway id>" then), so no request can
  // shadow another's row and go unbilled.
  std::string_view ledger_id;
  std::chrono::system_clock::time_point received_wall;
  std::string_view model;     // as the client asked
  std::string_view provider;  // that served it (or was tried last); empty if none was tried
  std::optional<std::int64_t> customer_id;  // with auth.mode keys
  std::optional<std::int64_t> key_id;
  providers::operation op = providers::operation::chat_completions;
  unsigned attempts = 0;
  bool success = false;       // a 2xx answer, and for streams no in-band error
  unsigned http_status = 0;   // what the client got (499: client went away)
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cost_nanos = 0;  // 1e-9 USD, from the config's prices
  double latency_s = 0.0;
  std::optional<double> time_to_first_chunk_s;  // streams only
  bool streamed = false;
};

// Receives every request summary on the shard thread that served it. Must
// not block: implementations queue the work for a background thread.
class request_sink {
 public:
  virtual ~request_sink() = default;
  virtual void on_request(std::size_t shard, const request_summary& summary) noexcept = 0;
};

// The parts the gateway uses but does not own; all optional.
struct gateway_services {
  // Where metrics go. Without it the gateway keeps a registry of its own
  // (sized for config.server.threads shards plus one background shard).
  telemetry::catalog* metrics = nullptr;
  std::vector<request_sink*> sinks;
  // Customers, keys, ledger and /models/stats. Without a store, /models/stats
  // and the customer/key admin API answer 503 and auth.mode must be none.
  store::store* store = nullptr;
  // API-key checks; required when auth.mode is keys.
  auth::authenticator* auth = nullptr;
  // One row per accepted request (authenticated, valid body, known model).
  ledger::ledger_writer* ledger = nullptr;
  // Called on every circuit breaker transition (to log it); outside locks.
  std::function<void(const health::transition&)> on_breaker_transition;
  // Active provider probes (providers with probe_interval_s > 0) over HTTP.
  bool active_probes = true;
};

// Shard index reserved in every registry for background threads (the last one).
inline std::size_t background_shard(const telemetry::registry& reg) { return reg.shards() - 1; }

// One provider able to serve a model.
struct route_target {
  std::size_t provider_index;         // into gateway_config::providers
  const config::model_config* model;  // that provider's entry for the model
  std::size_t target_index;           // dense id of this (provider, model) pair
  std::size_t model_slot;             // index of `model` in its provider's model list
};

class gateway {
 public:
  explicit gateway(config::gateway_config config, gateway_services services = {});
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  // Builds the request handler of one server shard (called on start-up, once per shard).
  http::request_handler make_shard_handler(std::size_t shard, boost::asio::io_context& io);

  const config::gateway_config& config() const { return config_; }

  // Server threads: config.server.threads, or one per core when that is 0.
  unsigned shard_count() const;
  // The server settings from config.server, with the HTTP metrics observer
  // attached and, as after_run, the wait for background work (the gateway
  // must outlive the server's run()).
  http::server_options server_options() const;

  telemetry::catalog& metrics();
  // Provider health: windows, breakers, scores (the gateway owns and runs it).
  health::monitor& health();

  // Providers serving `model`, in config order; empty if none.
  const std::vector<route_target>& routes(std::string_view model) const;

 private:
  struct shard_state;
  struct impl;
  config::gateway_config config_;
  std::unique_ptr<impl> impl_;
};

}  // namespace gatewayz::gateway

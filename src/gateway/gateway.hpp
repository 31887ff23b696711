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

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "http/server.hpp"
#include "providers/provider.hpp"

namespace gatewayz::gateway {

// One provider able to serve a model.
struct route_target {
  std::size_t provider_index;         // into gateway_config::providers
  const config::model_config* model;  // that provider's entry for the model
};

class gateway {
 public:
  explicit gateway(config::gateway_config config);
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  // Builds the request handler of one server shard (called on start-up, once per shard).
  http::request_handler make_shard_handler(std::size_t shard, boost::asio::io_context& io);

  const config::gateway_config& config() const { return config_; }

  // Providers serving `model`, in config order; empty if none.
  const std::vector<route_target>& routes(std::string_view model) const;

 private:
  struct shard_state;
  struct impl;
  config::gateway_config config_;
  std::unique_ptr<impl> impl_;
};

}  // namespace gatewayz::gateway

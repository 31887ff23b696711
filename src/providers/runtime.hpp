#pragma once
// What one configured provider needs at run time, built once at start from
// its config: the parsed upstream endpoint, the upstream client's settings
// and the adapter. Every shard's connection pool and the active prober share
// these (read-only; no locks), so a base URL is parsed and an adapter built
// exactly once per provider.
//
// Owned by the composition root (app/), which outlives the gateway and the
// prober that hold references to it.

#include <memory>
#include <vector>

#include "config/config.hpp"
#include "http/client.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers {

struct provider_runtime {
  const config::provider_config* config = nullptr;  // the gateway_config this was built from
  http::upstream_endpoint endpoint;
  http::client_settings client;  // from timeout_s, connect_timeout_s, max_idle_connections, TLS settings
  std::unique_ptr<provider_adapter> adapter;
};

// One runtime per provider, in config order; they point into `providers`,
// which must outlive them. Throws std::invalid_argument naming
// "providers[i].base_url" when a base URL cannot be used.
std::vector<provider_runtime> build_runtimes(const std::vector<config::provider_config>& providers);

}  // namespace gatewayz::providers

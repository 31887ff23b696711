#include "providers/runtime.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "config/durations.hpp"

namespace gatewayz::providers {

std::vector<provider_runtime> build_runtimes(const std::vector<config::provider_config>& providers) {
  std::vector<provider_runtime> out;
  out.reserve(providers.size());
  for (std::size_t i = 0; i < providers.size(); ++i) {
    const auto& provider = providers[i];
    provider_runtime runtime;
    runtime.config = &provider;
    std::string error;
    if (!http::parse_base_url(provider.base_url, runtime.endpoint, error)) {
      throw std::invalid_argument(fmt::format("providers[{}].base_url: {}", i, error));
    }
    runtime.client.connect_timeout = config::to_milliseconds(provider.connect_timeout_s);
    runtime.client.read_timeout = config::to_milliseconds(provider.timeout_s);
    runtime.client.max_idle_connections = provider.max_idle_connections;
    runtime.client.verify_tls = provider.verify_tls;
    runtime.client.ca_file = provider.ca_file;
    runtime.adapter = make_adapter(provider);
    out.push_back(std::move(runtime));
  }
  return out;
}

}  // namespace gatewayz::providers

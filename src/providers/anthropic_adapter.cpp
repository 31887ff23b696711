#include "providers/anthropic_adapter.hpp"

#include <utility>
#include <vector>

#include "providers/adapter_common.hpp"

namespace gatewayz::providers {

namespace {

std::vector<header> anthropic_headers(const config::provider_config& provider, bool streaming) {
  std::vector<header> credentials;
  if (!provider.api_key.empty()) credentials.push_back({"x-api-key", provider.api_key});
  credentials.push_back({"anthropic-version", provider.anthropic_version});
  return detail::request_headers(std::move(credentials), provider, streaming);
}

}  // namespace

anthropic_adapter::anthropic_adapter(const config::provider_config& provider)
    : api_key_(provider.api_key),
      json_headers_(anthropic_headers(provider, false)),
      stream_headers_(anthropic_headers(provider, true)) {}

bool anthropic_adapter::supports(operation op) const { return op == operation::chat_completions; }

std::string anthropic_adapter::error_message(std::string_view upstream_body) const {
  return detail::upstream_error_message(upstream_body, api_key_);
}

}  // namespace gatewayz::providers

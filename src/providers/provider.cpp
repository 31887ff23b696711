#include "providers/provider.hpp"

#include <stdexcept>

#include "providers/anthropic_adapter.hpp"
#include "providers/openai_adapter.hpp"

namespace gatewayz::providers {

std::string_view operation_name(operation op) {
  switch (op) {
    case operation::chat_completions: return "chat";
    case operation::completions: return "text_completion";
    case operation::embeddings: return "embeddings";
  }
  return "unknown";
}

std::unique_ptr<provider_adapter> make_adapter(const config::provider_config& provider) {
  switch (provider.kind) {
    case config::provider_kind::openai: return std::make_unique<openai_adapter>(provider);
    case config::provider_kind::anthropic: return std::make_unique<anthropic_adapter>(provider);
  }
  // Only reachable with a value outside the enum (memory corruption or a bad cast).
  throw std::invalid_argument("make_adapter: unknown provider kind");
}

}  // namespace gatewayz::providers

#pragma once
// Adapter for OpenAI-compatible APIs (OpenAI, OpenRouter, Groq, Cerebras, ...).
//
// The client already speaks this format, so the adapter forwards the client's
// bytes and the provider's bytes as they are, splicing only what the gateway
// must change: `model` (when the configured upstream name differs) and
// `stream_options.include_usage` (so every stream reports token usage). Usage
// is read with json_scan; no DOM is built for bodies or stream chunks.
//
// Thread safety: immutable after construction; translators are per stream.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers {

class openai_adapter final : public provider_adapter {
 public:
  explicit openai_adapter(const config::provider_config& provider);

  bool supports(operation op) const override;
  bool build_request(const inbound_request& request, const config::model_config& model, upstream_request& out,
                     std::string& error) const override;
  bool translate_response(const inbound_request& request, std::string& body, token_usage& usage,
                          response_summary* summary, std::string& error) const override;
  std::string error_message(std::string_view upstream_body) const override;
  std::unique_ptr<stream_translator> make_stream_translator(const inbound_request& request) const override;

 private:
  std::string api_key_;
  // Sent upstream: auth, content type, accept, then the configured headers
  // (which replace defaults of the same name).
  std::vector<header> json_headers_;
  std::vector<header> stream_headers_;
};

}  // namespace gatewayz::providers

#pragma once
// Adapter for Anthropic's Messages API (POST {base_url}/messages).
//
// Clients speak OpenAI's chat completions format; this adapter rewrites the
// request into a Messages request (Boost.JSON DOM: the shapes differ too much
// for splicing), the response into a chat.completion, and the event stream
// (message_start, content_block_*, message_delta, message_stop) into
// chat.completion.chunk events. Only chat completions can be expressed.
//
// Requests that cannot be expressed faithfully (audio parts, n > 1, JSON
// response formats, ...) are refused with a message for the client rather
// than silently changed.
//
// Thread safety: immutable after construction; translators are per stream.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers {

class anthropic_adapter final : public provider_adapter {
 public:
  // Anthropic's default when neither max_tokens nor max_completion_tokens is
  // given (the Messages API requires the field; OpenAI's does not).
  static constexpr std::int64_t default_max_tokens = 4096;

  explicit anthropic_adapter(const config::provider_config& provider);

  bool supports(operation op) const override;
  bool build_request(const inbound_request& request, const config::model_config& model, upstream_request& out,
                     std::string& error) const override;
  bool translate_response(const inbound_request& request, std::string& body, token_usage& usage,
                          response_summary* summary, std::string& error) const override;
  std::string error_message(std::string_view upstream_body) const override;
  std::unique_ptr<stream_translator> make_stream_translator(const inbound_request& request) const override;

 private:
  std::string api_key_;
  // Sent upstream: x-api-key, anthropic-version, content type, accept, then
  // the configured headers (which replace defaults of the same name).
  std::vector<header> json_headers_;
  std::vector<header> stream_headers_;
};

}  // namespace gatewayz::providers

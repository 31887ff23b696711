// Fuzzes the Anthropic request translator (anthropic_adapter::build_request)
// behind the gateway's own inbound parsing (gateway::parse_inbound), with the
// OpenAI adapter on the same input as a second subject.
//
// Input: a client's chat completions body.
//
// Invariants:
//  - no crash or sanitizer report; a refusal always says why;
//  - an accepted request is one JSON object with the upstream model name,
//    a messages array whose roles are user/assistant, a positive integer
//    max_tokens and "stream" exactly when the client streams;
//  - differential: the same body re-serialized by Boost.JSON (other
//    whitespace, escapes, number spelling) translates to the same JSON value,
//    or is refused in both spellings -- the translator works on values, not
//    on their spelling;
//  - the OpenAI adapter's payload is valid JSON whose "model" is the
//    upstream name.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "config/config.hpp"
#include "core/json_scan.hpp"
#include "gateway/inbound.hpp"
#include "providers/anthropic_adapter.hpp"
#include "providers/openai_adapter.hpp"

#include "fuzz_check.hpp"

namespace {

namespace json = boost::json;
using namespace gatewayz;

config::provider_config provider(config::provider_kind kind) {
  config::provider_config p;
  p.name = "fuzz";
  p.kind = kind;
  p.base_url = "http://127.0.0.1:1/v1";
  p.api_key = "sk-fuzz-0123456789abcdef";
  return p;
}

const config::model_config& model() {
  static const config::model_config m{"claude", "claude-upstream-1", 1, 2, 0};
  return m;
}

json::value parse(std::string_view text) {
  json::parse_options options;
  options.max_depth = 4096;
  json::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  FUZZ_CHECK(!ec);
  return v;
}

struct outcome {
  bool inbound_ok = false;  // parse_inbound accepted the body
  bool built = false;       // build_request accepted it
  json::value request;      // the upstream body when built
};

outcome translate(std::string_view body) {
  static const providers::anthropic_adapter anthropic(provider(config::provider_kind::anthropic));
  static const providers::openai_adapter openai(provider(config::provider_kind::openai));
  outcome out;
  json_scan::object_scan scan;
  providers::inbound_request request;
  if (gateway::parse_inbound(body, providers::operation::chat_completions, scan, request)) return out;
  out.inbound_ok = true;

  providers::upstream_request upstream;
  std::string error;
  out.built = anthropic.build_request(request, model(), upstream, error);
  if (!out.built) {
    FUZZ_CHECK(!error.empty());
    return out;
  }
  FUZZ_CHECK(error.empty());
  FUZZ_CHECK(upstream.path == "/messages");
  out.request = parse(upstream.payload());
  const json::object* object = out.request.if_object();
  FUZZ_CHECK(object != nullptr);
  const json::value* name = object->if_contains("model");
  FUZZ_CHECK(name != nullptr && name->is_string() && name->get_string() == model().upstream);
  const json::value* messages = object->if_contains("messages");
  FUZZ_CHECK(messages != nullptr && messages->is_array());
  for (const json::value& m : messages->get_array()) {
    const json::object* message = m.if_object();
    FUZZ_CHECK(message != nullptr);
    const json::value* role = message->if_contains("role");
    FUZZ_CHECK(role != nullptr && role->is_string());
    FUZZ_CHECK(role->get_string() == "user" || role->get_string() == "assistant");
    FUZZ_CHECK(message->contains("content"));
  }
  const json::value* max_tokens = object->if_contains("max_tokens");
  FUZZ_CHECK(max_tokens != nullptr && max_tokens->is_int64() && max_tokens->get_int64() > 0);
  const json::value* stream = object->if_contains("stream");
  FUZZ_CHECK(request.stream == (stream != nullptr && stream->is_bool() && stream->get_bool()));

  providers::upstream_request plain;
  std::string plain_error;
  if (openai.build_request(request, model(), plain, plain_error)) {
    const json::value forwarded = parse(plain.payload());
    const json::value* forwarded_model = forwarded.as_object().if_contains("model");
    FUZZ_CHECK(forwarded_model != nullptr && forwarded_model->is_string());
    FUZZ_CHECK(forwarded_model->get_string() == model().upstream);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const outcome original = translate(body);
  if (!original.inbound_ok) return 0;

  // Re-spell the body. Skipped where the spelling carries meaning the value
  // does not: duplicate members (Boost.JSON keeps one of them).
  json::parse_options options;
  options.max_depth = 4096;
  json::error_code ec;
  const json::value value = json::parse(body, ec, {}, options);
  if (ec) return 0;  // json_scan and Boost.JSON differ on limits (depth, number range)
  const std::string respelled = json::serialize(value);
  // Boost.JSON 1.81 does not always read back the double it wrote (e.g.
  // 9223372036854775105.87 -> 9.223372036854775E18 -> 2^63, no longer an
  // int64): then the re-spelling is another request.
  if (json::parse(respelled, ec, {}, options) != value || ec) return 0;
  const outcome again = translate(respelled);
  if (!again.inbound_ok) return 0;  // e.g. a duplicate "model" resolved differently
  FUZZ_CHECK(original.built == again.built);
  if (original.built) FUZZ_CHECK(original.request == again.request);
  return 0;
}

// Fuzzes what the gateway reads from a provider's non-streamed answers: the
// response translators (Anthropic message => chat.completion, OpenAI's usage
// extraction), the upstream error-message extraction and the response
// summary that feeds gen_ai.response.* trace attributes.
//
// Input: the upstream response body, given to every reader.
//
// Invariants:
//  - no crash or sanitizer report (UBSan traps on token-sum overflow);
//  - usage is never negative, and a translated Anthropic answer is one JSON
//    chat.completion whose usage totals add up;
//  - an error message is never empty and never holds the provider's key;
//    the excerpt of a body that is no JSON error is printable ASCII, capped;
//  - summaries do not depend on how the body is spelled: the OpenAI summary
//    of the body equals the summary of its Boost.JSON re-serialization.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "config/config.hpp"
#include "providers/anthropic_adapter.hpp"
#include "providers/openai_adapter.hpp"

#include "fuzz_check.hpp"

namespace {

namespace json = boost::json;
using namespace gatewayz;

constexpr std::string_view api_key = "sk-fuzz-upstream-0123456789";

config::provider_config provider(config::provider_kind kind) {
  config::provider_config p;
  p.name = "fuzz";
  p.kind = kind;
  p.base_url = "http://127.0.0.1:1/v1";
  p.api_key = std::string(api_key);
  return p;
}

void check_usage(const providers::token_usage& u) {
  FUZZ_CHECK(u.input_tokens >= 0 && u.output_tokens >= 0);
  FUZZ_CHECK(u.input_tokens <= std::numeric_limits<std::int64_t>::max() - u.output_tokens);
  if (!u.reported) FUZZ_CHECK(u.input_tokens == 0 && u.output_tokens == 0);
}

std::int64_t member_int(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  FUZZ_CHECK(v != nullptr && v->is_int64());
  return v->get_int64();
}

void check_anthropic(std::string_view body, const providers::inbound_request& request) {
  static const providers::anthropic_adapter adapter(provider(config::provider_kind::anthropic));
  std::string translated(body);
  providers::token_usage usage;
  std::string error;
  if (!adapter.translate_response(request, translated, usage, nullptr, error)) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  check_usage(usage);
  json::parse_options options;
  options.max_depth = 4096;
  json::error_code ec;
  const json::value v = json::parse(translated, ec, {}, options);
  FUZZ_CHECK(!ec && v.is_object());
  const json::object& completion = v.get_object();
  FUZZ_CHECK(completion.at("object") == "chat.completion");
  FUZZ_CHECK(completion.at("model") == "fuzz-model");
  const json::array& choices = completion.at("choices").as_array();
  FUZZ_CHECK(choices.size() == 1);
  FUZZ_CHECK(choices[0].at("message").at("role") == "assistant");
  const json::object& u = completion.at("usage").as_object();
  FUZZ_CHECK(member_int(u, "prompt_tokens") == usage.input_tokens);
  FUZZ_CHECK(member_int(u, "completion_tokens") == usage.output_tokens);
  FUZZ_CHECK(member_int(u, "total_tokens") == usage.input_tokens + usage.output_tokens);
}

void check_openai(std::string_view body, const providers::inbound_request& request) {
  static const providers::openai_adapter adapter(provider(config::provider_kind::openai));
  std::string translated(body);
  providers::token_usage usage;
  std::string error;
  providers::response_summary summary;
  if (adapter.translate_response(request, translated, usage, &summary, error)) {
    check_usage(usage);
    // The summary from the adapter's own scan equals a separate scan's.
    providers::response_summary separate;
    providers::summarize_openai_json(body, separate);
    FUZZ_CHECK(summary.id == separate.id);
    FUZZ_CHECK(summary.model == separate.model);
    FUZZ_CHECK(summary.finish_reasons == separate.finish_reasons);
  } else {
    FUZZ_CHECK(!error.empty());
  }
}

void check_error_message(std::string_view body) {
  static const providers::anthropic_adapter anthropic(provider(config::provider_kind::anthropic));
  static const providers::openai_adapter openai(provider(config::provider_kind::openai));
  for (const providers::provider_adapter* adapter : {static_cast<const providers::provider_adapter*>(&anthropic),
                                                     static_cast<const providers::provider_adapter*>(&openai)}) {
    const std::string message = adapter->error_message(body);
    FUZZ_CHECK(!message.empty());
    FUZZ_CHECK(message.find(api_key) == std::string::npos);
  }
}

void check_summary(std::string_view body) {
  providers::response_summary plain;
  providers::summarize_openai_json(body, plain);
  json::parse_options options;
  options.max_depth = 4096;
  json::error_code ec;
  const json::value v = json::parse(body, ec, {}, options);
  if (ec) return;
  // Boost.JSON 1.81 writes an overflowed number as Infinity, which is no
  // JSON: such a body has no re-spelling to compare with.
  const std::string text = json::serialize(v);
  json::parse(text, ec, {}, options);
  if (ec) return;
  providers::response_summary respelled;
  providers::summarize_openai_json(text, respelled);
  FUZZ_CHECK(plain.id == respelled.id && plain.model == respelled.model);
  FUZZ_CHECK(plain.finish_reasons == respelled.finish_reasons);

  providers::response_summary from_sse;
  providers::summarize_openai_sse("data: " + text + "\n\ndata: [DONE]\n\n", from_sse);
  if (v.is_object()) {
    FUZZ_CHECK(from_sse.id == respelled.id && from_sse.model == respelled.model);
    FUZZ_CHECK(from_sse.finish_reasons == respelled.finish_reasons);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  providers::inbound_request request;
  request.model = "fuzz-model";
  check_anthropic(body, request);
  check_openai(body, request);
  check_error_message(body);
  check_summary(body);
  return 0;
}

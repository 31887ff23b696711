// Response: Anthropic message => OpenAI chat.completion (anthropic_adapter::translate_response).
#include "providers/anthropic_adapter.hpp"

#include <boost/json.hpp>
#include <string>
#include <utility>

#include "providers/adapter_common.hpp"
#include "providers/anthropic_common.hpp"

namespace gatewayz::providers {

namespace {

namespace json = boost::json;
using anthropic::find;
using anthropic::find_string;
using anthropic::finish_reason_for;
using anthropic::jstr;
using anthropic::parse_json;
using anthropic::view;

std::int64_t int_or_zero(const json::object& object, std::string_view key) {
  const json::value* v = find(object, key);
  if (v == nullptr) return 0;
  json::error_code ec;
  const auto n = v->to_number<std::int64_t>(ec);
  return ec ? 0 : detail::token_count(n);
}

}  // namespace

bool anthropic_adapter::translate_response(const inbound_request& request, std::string& body, token_usage& usage,
                                           response_summary* summary, std::string& error) const {
  json::error_code ec;
  const json::value parsed = parse_json(body, ec);
  const json::object* message = ec ? nullptr : parsed.if_object();
  const json::value* content = message != nullptr ? find(*message, "content") : nullptr;
  if (content == nullptr || !content->is_array()) {
    error = "The provider returned a response that is not an Anthropic message";
    return false;
  }

  std::string text;
  bool has_text = false;
  json::array tool_calls;
  for (const json::value& block : content->get_array()) {
    const json::object* object = block.if_object();
    const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
    if (type == nullptr) continue;
    if (*type == "text") {
      if (const json::string* part = find_string(*object, "text")) {
        text += view(*part);
        has_text = true;
      }
    } else if (*type == "tool_use") {
      const json::string* id = find_string(*object, "id");
      const json::string* name = find_string(*object, "name");
      if (id == nullptr || name == nullptr) {
        error = "The provider returned a tool_use block without id or name";
        return false;
      }
      const json::value* input = find(*object, "input");
      tool_calls.push_back(json::object{
          {"id", *id},
          {"type", "function"},
          {"function", json::object{{"name", *name},
                                    {"arguments", input != nullptr ? json::serialize(*input) : std::string("{}")}}}});
    }
    // thinking and other block kinds have no chat.completion equivalent.
  }

  json::object reply{{"role", "assistant"}};
  reply["content"] = has_text ? json::value(jstr(text)) : json::value(nullptr);
  if (!tool_calls.empty()) reply["tool_calls"] = std::move(tool_calls);

  const json::string* stop_reason = find_string(*message, "stop_reason");
  const std::string_view finish = stop_reason != nullptr ? finish_reason_for(view(*stop_reason)) : "stop";

  usage = token_usage{};
  if (const json::value* reported = find(*message, "usage"); reported != nullptr && reported->is_object()) {
    const json::object& counts = reported->get_object();
    usage.input_tokens = int_or_zero(counts, "input_tokens") + int_or_zero(counts, "cache_read_input_tokens") +
                         int_or_zero(counts, "cache_creation_input_tokens");
    usage.output_tokens = int_or_zero(counts, "output_tokens");
    usage.reported = true;
  }

  const json::string* id = find_string(*message, "id");
  json::object result;
  result["id"] = id != nullptr ? "chatcmpl-" + std::string(view(*id)) : detail::make_id("chatcmpl-");
  result["object"] = "chat.completion";
  result["created"] = detail::unix_now();
  result["model"] = jstr(request.model);
  result["choices"] =
      json::array{json::object{{"index", 0}, {"message", std::move(reply)}, {"finish_reason", jstr(finish)}}};
  result["usage"] = json::object{{"prompt_tokens", usage.input_tokens},
                                 {"completion_tokens", usage.output_tokens},
                                 {"total_tokens", usage.input_tokens + usage.output_tokens}};
  body = json::serialize(result);
  // What a client of the translated answer sees (its id and model as sent).
  if (summary != nullptr) summarize_openai_json(body, *summary);
  return true;
}

}  // namespace gatewayz::providers

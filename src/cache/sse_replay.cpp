#include "cache/sse_replay.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace gatewayz::cache {

namespace json = boost::json;

namespace {

// A chunk with the completion's identity and `choices`.
json::object chunk_of(const json::object& completion, json::array choices) {
  json::object chunk;
  for (const auto* name : {"id", "created", "model", "system_fingerprint"}) {
    if (const auto* v = completion.if_contains(name)) chunk[name] = *v;
  }
  chunk["object"] = "chat.completion.chunk";
  chunk["choices"] = std::move(choices);
  return chunk;
}

void append_event(const json::object& chunk, std::string& out) {
  out += "data: ";
  out += json::serialize(chunk);
  out += "\n\n";
}

}  // namespace

bool completion_to_sse(std::string_view completion, bool include_usage, std::string& out) {
  std::error_code ec;
  const auto doc = json::parse(json::string_view(completion.data(), completion.size()), ec);
  if (ec || !doc.is_object()) return false;
  const auto& c = doc.get_object();
  const auto* choices = c.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) return false;

  std::string events;
  for (std::size_t i = 0; i < choices->get_array().size(); ++i) {
    const auto& choice = choices->get_array()[i];
    if (!choice.is_object()) return false;
    const auto& ch = choice.get_object();
    const json::value index = ch.if_contains("index") ? ch.at("index") : json::value(i);
    json::object delta;
    delta["role"] = "assistant";
    if (const auto* message = ch.if_contains("message"); message != nullptr && message->is_object()) {
      const auto& m = message->get_object();
      if (const auto* role = m.if_contains("role")) delta["role"] = *role;
      if (const auto* content = m.if_contains("content")) delta["content"] = *content;
      if (const auto* refusal = m.if_contains("refusal"); refusal != nullptr && !refusal->is_null()) {
        delta["refusal"] = *refusal;
      }
      if (const auto* calls = m.if_contains("tool_calls"); calls != nullptr && calls->is_array()) {
        json::array indexed;
        std::size_t k = 0;
        for (const auto& call : calls->get_array()) {
          if (!call.is_object()) return false;
          json::object with_index = call.get_object();
          with_index["index"] = k++;
          indexed.push_back(std::move(with_index));
        }
        delta["tool_calls"] = std::move(indexed);
      }
    }
    json::object first;
    first["index"] = index;
    first["delta"] = std::move(delta);
    first["finish_reason"] = nullptr;
    append_event(chunk_of(c, json::array{std::move(first)}), events);

    json::object last;
    last["index"] = index;
    last["delta"] = json::object{};
    const auto* reason = ch.if_contains("finish_reason");
    last["finish_reason"] = reason != nullptr ? *reason : json::value("stop");
    append_event(chunk_of(c, json::array{std::move(last)}), events);
  }
  if (include_usage) {
    auto chunk = chunk_of(c, json::array{});
    if (const auto* usage = c.if_contains("usage")) chunk["usage"] = *usage;
    append_event(chunk, events);
  }
  events += "data: [DONE]\n\n";
  out += events;
  return true;
}

}  // namespace gatewayz::cache

#pragma once
// Helpers shared by the Anthropic translators (internal to src/providers;
// the adapter's interface is anthropic_adapter.hpp). The adapter's members
// are defined by direction:
//   anthropic_adapter.cpp   construction, headers, error messages
//   anthropic_request.cpp   OpenAI chat completion => Anthropic Messages (DOM)
//   anthropic_response.cpp  Anthropic message => chat.completion (DOM)
//   anthropic_stream.cpp    Anthropic events => chat.completion.chunk events
//                           (json_scan, no DOM)
//
// Everything here is inline: the translators are on the request path and
// these were file-local helpers the compiler inlined. Stateless, so safe on
// any thread. Pointers and views returned borrow from their arguments.

#include <boost/json.hpp>

#include <cmath>
#include <string_view>
#include <vector>

namespace gatewayz::providers::anthropic {

namespace json = boost::json;

// Whether every number in `v` is finite. Boost.JSON 1.81 parses a number
// beyond double's range (1e400, which RFC 8259 and json_scan accept) as
// infinity and serializes it as `Infinity`, which is not JSON.
inline bool all_numbers_finite(const json::value& root) {
  std::vector<const json::value*> pending{&root};
  while (!pending.empty()) {
    const json::value* v = pending.back();
    pending.pop_back();
    if (v->is_double() && !std::isfinite(v->get_double())) return false;
    if (const json::array* a = v->if_array()) {
      for (const json::value& item : *a) pending.push_back(&item);
    } else if (const json::object* o = v->if_object()) {
      for (const auto& member : *o) pending.push_back(&member.value());
    }
  }
  return true;
}

// Boost.JSON's default depth limit (32) is below what the gateway accepts
// (json_scan's 128), and deep tool schemas are legitimate. A number out of
// double's range is refused (exponent_overflow): translated, it would send
// `Infinity` upstream or to the client.
inline json::value parse_json(std::string_view text, json::error_code& ec) {
  json::parse_options options;
  options.max_depth = 128;
  json::value v = json::parse(text, ec, {}, options);
  if (!ec && !all_numbers_finite(v)) {
    ec = json::error::exponent_overflow;
    return nullptr;
  }
  return v;
}

inline std::string_view view(const json::string& s) { return {s.data(), s.size()}; }
inline json::string jstr(std::string_view s) { return json::string(s.data(), s.size()); }

inline std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// OpenAI clients send explicit nulls for "not set"; treat them as absent.
inline const json::value* find(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

inline const json::string* find_string(const json::object& object, std::string_view key) {
  const json::value* v = find(object, key);
  return (v != nullptr && v->is_string()) ? &v->get_string() : nullptr;
}

// Anthropic stop_reason => OpenAI finish_reason. Unknown (newer) reasons map
// to "stop": the turn did end, and clients only branch on the known values.
inline std::string_view finish_reason_for(std::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

}  // namespace gatewayz::providers::anthropic

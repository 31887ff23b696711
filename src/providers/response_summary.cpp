#include <array>

#include <boost/json.hpp>

#include "providers/provider.hpp"

namespace gatewayz::providers {

namespace json = boost::json;

void summarize_openai_json(std::string_view body, response_summary& out) {
  // Parsed into a stack buffer first: a typical answer needs no heap for its DOM.
  std::array<unsigned char, 4096> buffer;
  json::monotonic_resource memory(buffer.data(), buffer.size());
  boost::system::error_code ec;
  const json::value doc = json::parse(body, ec, &memory);
  if (ec || !doc.is_object()) return;
  const auto& object = doc.get_object();
  if (out.id.empty()) {
    if (const auto* id = object.if_contains("id"); id != nullptr && id->is_string()) out.id = id->get_string();
  }
  if (out.model.empty()) {
    if (const auto* model = object.if_contains("model"); model != nullptr && model->is_string()) {
      out.model = model->get_string();
    }
  }
  const auto* choices = object.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) return;
  for (const auto& choice : choices->get_array()) {
    if (!choice.is_object()) continue;
    const auto* reason = choice.get_object().if_contains("finish_reason");
    if (reason != nullptr && reason->is_string()) out.finish_reasons.emplace_back(reason->get_string());
  }
}

void summarize_openai_sse(std::string_view events, response_summary& out) {
  constexpr std::string_view prefix = "data: ";
  std::size_t at = 0;
  while (at < events.size()) {
    const auto end = events.find('\n', at);
    const auto line = events.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.starts_with(prefix) && line.size() > prefix.size() + 1 && line[prefix.size()] == '{') {
      summarize_openai_json(line.substr(prefix.size()), out);
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
}

}  // namespace gatewayz::providers

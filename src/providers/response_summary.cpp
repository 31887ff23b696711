#include "core/json_scan.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers {

namespace {

// The decoded value of a top-level string member, or nullopt.
std::optional<std::string> string_member(std::string_view text, const json_scan::object_scan& scan,
                                         std::string_view key) {
  const auto* m = scan.find(key);
  if (m == nullptr || m->kind != json_scan::value_kind::string) return std::nullopt;
  return json_scan::decode_string(text.substr(m->value_span.begin, m->value_span.size()));
}

}  // namespace

void summarize_openai_json(std::string_view body, response_summary& out) {
  // json_scan validates the whole object and records its top-level members
  // without allocating.
  json_scan::object_scan scan;
  json_scan::scan_error error;
  if (!json_scan::scan_object(body, scan, error)) return;
  summarize_openai_json(body, scan, out);
}

void summarize_openai_json(std::string_view body, const json_scan::object_scan& scan, response_summary& out) {
  // The choices are scanned again, as an array and then one at a time.
  json_scan::scan_error error;
  if (out.id.empty()) {
    if (auto id = string_member(body, scan, "id")) out.id = std::move(*id);
  }
  if (out.model.empty()) {
    if (auto model = string_member(body, scan, "model")) out.model = std::move(*model);
  }
  const auto* choices = scan.find("choices");
  if (choices == nullptr || choices->kind != json_scan::value_kind::array) return;
  const auto list = body.substr(choices->value_span.begin, choices->value_span.size());
  json_scan::array_scan elements;
  if (!json_scan::scan_array(list, elements, error)) return;
  json_scan::object_scan choice;
  for (const auto& e : elements.elements) {
    if (e.kind != json_scan::value_kind::object) continue;
    const auto item = list.substr(e.value_span.begin, e.value_span.size());
    if (!json_scan::scan_object(item, choice, error)) continue;
    if (auto reason = string_member(item, choice, "finish_reason")) out.finish_reasons.push_back(std::move(*reason));
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

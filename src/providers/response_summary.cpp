#include "core/json_scan.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers {

namespace {

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Calls f(element text) for each element of `array`, the text of a JSON
// array that json_scan has validated (so strings and brackets balance).
template <typename F>
void for_each_element(std::string_view array, F&& f) {
  const std::size_t end = array.size() - 1;  // the closing ']'
  std::size_t i = 1;
  while (i < end) {
    while (i < end && (space(array[i]) || array[i] == ',')) ++i;
    if (i >= end) break;
    const std::size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < end; ++i) {
      const char c = array[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    std::size_t stop = i;
    while (stop > start && space(array[stop - 1])) --stop;
    f(array.substr(start, stop - start));
  }
}

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
  // without allocating; only the choices are scanned again, one at a time.
  json_scan::object_scan scan;
  json_scan::scan_error error;
  if (!json_scan::scan_object(body, scan, error)) return;
  if (out.id.empty()) {
    if (auto id = string_member(body, scan, "id")) out.id = std::move(*id);
  }
  if (out.model.empty()) {
    if (auto model = string_member(body, scan, "model")) out.model = std::move(*model);
  }
  const auto* choices = scan.find("choices");
  if (choices == nullptr || choices->kind != json_scan::value_kind::array) return;
  json_scan::object_scan choice;
  for_each_element(body.substr(choices->value_span.begin, choices->value_span.size()), [&](std::string_view item) {
    if (item.empty() || item.front() != '{' || !json_scan::scan_object(item, choice, error)) return;
    if (auto reason = string_member(item, choice, "finish_reason")) out.finish_reasons.push_back(std::move(*reason));
  });
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

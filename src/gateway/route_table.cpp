#include "gateway/route_table.hpp"

#include <algorithm>

namespace gatewayz::gateway {

namespace bhttp = boost::beast::http;

namespace {

bool is_parameter(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// Segment-by-segment match where "{x}" in the template matches one non-empty
// segment. Calls on_parameter(value) for each parameter segment matched.
template <class OnParameter>
bool match(std::string_view templ, std::string_view path, OnParameter on_parameter) {
  while (!templ.empty() && !path.empty()) {
    if (templ.front() != '/' || path.front() != '/') return false;
    templ.remove_prefix(1);
    path.remove_prefix(1);
    const auto t_end = std::min(templ.find('/'), templ.size());
    const auto p_end = std::min(path.find('/'), path.size());
    const auto t_seg = templ.substr(0, t_end);
    const auto p_seg = path.substr(0, p_end);
    const bool param = is_parameter(t_seg);
    if (param ? p_seg.empty() : t_seg != p_seg) return false;
    if (param) on_parameter(p_seg);
    templ.remove_prefix(t_end);
    path.remove_prefix(p_end);
  }
  return templ.empty() && path.empty();
}

}  // namespace

std::size_t match_route(std::string_view path) {
  for (std::size_t i = 0; i < route_count; ++i) {
    if (match(route_specs[i].path_template, path, [](std::string_view) {})) return i;
  }
  return route_count;
}

bool allows(method_set set, bhttp::verb method) {
  const auto bits = static_cast<std::uint8_t>(set);
  switch (method) {
    case bhttp::verb::get: return (bits & static_cast<std::uint8_t>(method_set::get)) != 0;
    case bhttp::verb::post: return (bits & static_cast<std::uint8_t>(method_set::post)) != 0;
    default: return false;
  }
}

std::string_view allow_header(method_set set) {
  switch (set) {
    case method_set::get: return "GET";
    case method_set::post: return "POST";
    case method_set::get_post: return "GET, POST";
  }
  return "GET";
}

std::string_view path_parameter(std::string_view path_template, std::string_view path) {
  std::string_view value;
  match(path_template, path, [&value](std::string_view v) { value = v; });
  return value;
}

}  // namespace gatewayz::gateway

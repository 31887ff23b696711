// Message helpers and the loader's scalar readers: every value in the schema
// goes through scalar() (and so through "${VAR}" expansion) before its check.
#include "config/loader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <utility>

namespace gatewayz::config::detail {
namespace {

// Durations are later converted to integral chrono types; a bound keeps huge
// values from overflowing there, and nothing sensible needs more than a week.
constexpr double max_seconds = 7 * 24 * 3600.0;

}  // namespace

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(const std::string& parent, std::size_t index) { return fmt::format("{}[{}]", parent, index); }

// A non-secret user value quoted for an error message, with control
// characters escaped so the message stays on one line.
std::string shown(std::string_view value, std::size_t max_chars) {
  std::string out = "\"";
  const std::size_t limit = std::min(value.size(), max_chars);
  for (std::size_t i = 0; i < limit; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > limit) out += "...";
  out += '"';
  return out;
}

std::optional<std::string> loader::scalar(const YAML::Node& node, const std::string& path) {
  if (node.IsNull()) {
    fail(path, "has no value (write \"\" for an empty string, or remove the key for the default)");
    return std::nullopt;
  }
  if (node.IsMap()) {
    fail(path, "must be a single value, not a mapping");
    return std::nullopt;
  }
  if (node.IsSequence()) {
    fail(path, "must be a single value, not a list");
    return std::nullopt;
  }
  return expand(node.Scalar(), path);
}

bool loader::read_string(const YAML::Node& node, const std::string& path, std::string& out) {
  auto value = scalar(node, path);
  if (!value) return false;
  out = std::move(*value);
  return true;
}

bool loader::read_nonempty(const YAML::Node& node, const std::string& path, std::string& out) {
  auto value = scalar(node, path);
  if (!value) return false;
  if (value->empty()) {
    fail(path, "must not be empty");
    return false;
  }
  out = std::move(*value);
  return true;
}

bool loader::read_seconds(const YAML::Node& node, const std::string& path, double& out, bool allow_zero) {
  const auto value = scalar(node, path);
  if (!value) return false;
  const char* first = value->data();
  const char* last = first + value->size();
  double parsed = 0;
  const auto [end, ec] = std::from_chars(first, last, parsed);
  const bool number = !value->empty() && ec == std::errc{} && end == last && std::isfinite(parsed);
  if (!number || parsed < 0 || (!allow_zero && parsed == 0)) {
    fail(path, fmt::format("must be a number of seconds {} 0 (got {})", allow_zero ? ">=" : ">", shown(*value)));
    return false;
  }
  if (parsed > max_seconds) {
    fail(path, fmt::format("must be at most {} seconds (got {})", max_seconds, shown(*value)));
    return false;
  }
  out = parsed;
  return true;
}

bool loader::read_price(const YAML::Node& node, const std::string& path, double& out) {
  const auto value = scalar(node, path);
  if (!value) return false;
  const char* first = value->data();
  const char* last = first + value->size();
  double parsed = 0;
  const auto [end, ec] = std::from_chars(first, last, parsed);
  if (value->empty() || ec != std::errc{} || end != last || !std::isfinite(parsed) || parsed < 0) {
    fail(path, fmt::format("must be a price in USD >= 0 (got {})", shown(*value)));
    return false;
  }
  out = parsed;
  return true;
}

// YAML 1.2 core-schema booleans only: the 1.1 spellings (yes/no/on/off) are a
// classic source of surprises, e.g. a country code "no" turning into false.
bool loader::read_bool(const YAML::Node& node, const std::string& path, bool& out) {
  const auto value = scalar(node, path);
  if (!value) return false;
  if (*value == "true" || *value == "True" || *value == "TRUE") {
    out = true;
    return true;
  }
  if (*value == "false" || *value == "False" || *value == "FALSE") {
    out = false;
    return true;
  }
  fail(path, fmt::format("must be true or false (got {})", shown(*value)));
  return false;
}

bool loader::read_ratio(const YAML::Node& node, const std::string& path, double& out) {
  const auto value = scalar(node, path);
  if (!value) return false;
  const char* first = value->data();
  const char* last = first + value->size();
  double parsed = 0;
  const auto [end, ec] = std::from_chars(first, last, parsed);
  if (value->empty() || ec != std::errc{} || end != last || !(parsed > 0.0 && parsed <= 1.0)) {
    fail(path, fmt::format("must be a number in (0, 1] (got {})", shown(*value)));
    return false;
  }
  out = parsed;
  return true;
}

}  // namespace gatewayz::config::detail

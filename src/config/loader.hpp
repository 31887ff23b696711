#pragma once
// The YAML schema walk behind load_config_string (internal to src/config; not
// part of config.hpp).
//
// A loader walks one YAML document against the schema of config.hpp and
// records every problem in its error list instead of stopping, so one run
// shows the user all of them. Its members are defined by concern:
//   loader_values.cpp     scalars and their checks (integers, seconds, ...)
//   env_expand.cpp        "${VAR}" / "${VAR:-default}" expansion of scalars
//   loader_sections.cpp   the document root and the server .. metrics sections
//   loader_logging.cpp    the logging section and its loki subsection
//   loader_cache.cpp      the cache section
//   loader_providers.cpp  providers[], their models and headers
// listen_address.cpp (set_listen) shares the message helpers below.
//
// Ownership: a loader borrows the env_lookup it is built with, which must
// outlive it. Thread safety: one loader per load; the helpers are stateless.
// Failure: nothing throws except yaml-cpp's YAML::Exception out of the YAML
// parser, which load() catches and reports as a syntax error.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace gatewayz::config::detail {

// Values echoed in messages are cut so a pasted blob cannot flood the log.
// File paths are shown whole: a cut path would not tell the user which file.
inline constexpr std::size_t max_shown_chars = 64;
inline constexpr std::size_t no_limit = std::string_view::npos;

// "parent.key", or "key" at the document root.
std::string child_path(const std::string& parent, std::string_view key);

// "parent[index]".
std::string index_path(const std::string& parent, std::size_t index);

// A non-secret user value quoted for an error message, with control
// characters escaped so the message stays on one line.
std::string shown(std::string_view value, std::size_t max_chars = max_shown_chars);

inline bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// Walks the YAML tree against the schema of config.hpp, recording every
// problem instead of stopping, so one run shows the user all of them.
class loader {
 public:
  explicit loader(const env_lookup& env) : env_(env) {}

  load_result load(std::string_view yaml);

 private:
  void fail(std::string path, std::string message) { errors_.push_back({std::move(path), std::move(message)}); }

  std::optional<std::string> lookup(std::string_view name) const {
    if (!env_) return std::nullopt;
    return env_(name);
  }

  std::optional<std::string> expand(std::string_view text, const std::string& path);
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& path);

  bool read_string(const YAML::Node& node, const std::string& path, std::string& out);
  bool read_nonempty(const YAML::Node& node, const std::string& path, std::string& out);
  template <class T>
  bool read_integer(const YAML::Node& node, const std::string& path, T& out, T minimum);
  bool read_seconds(const YAML::Node& node, const std::string& path, double& out, bool allow_zero);
  bool read_price(const YAML::Node& node, const std::string& path, double& out);
  bool read_bool(const YAML::Node& node, const std::string& path, bool& out);
  bool read_ratio(const YAML::Node& node, const std::string& path, double& out);

  template <class Visit>
  std::set<std::string> each_entry(const YAML::Node& node, const std::string& path, Visit visit);
  template <class Visit>
  bool each_item(const YAML::Node& node, const std::string& path, Visit visit);

  void load_server(const YAML::Node& node, const std::string& path, server_config& out);
  void load_auth(const YAML::Node& node, const std::string& path, auth_config& out);
  void load_health(const YAML::Node& node, const std::string& path, health_config& out);
  void load_breaker(const YAML::Node& node, const std::string& path, circuit_breaker_config& out);
  void load_storage(const YAML::Node& node, const std::string& path, storage_config& out);
  void load_redis(const YAML::Node& node, const std::string& path, redis_config& out);
  void load_metrics(const YAML::Node& node, const std::string& path, metrics_config& out);
  void load_logging(const YAML::Node& node, const std::string& path, logging_config& out);
  void load_loki(const YAML::Node& node, const std::string& path, loki_config& out);
  void load_tracing(const YAML::Node& node, const std::string& path, tracing_config& out);
  void load_cache(const YAML::Node& node, const std::string& path, cache_config& out);
  // The OTEL_* environment variables over the tracing section (loader_tracing.cpp).
  void apply_otel_environment(tracing_config& out);
  void load_provider(const YAML::Node& node, const std::string& path, provider_config& out);
  // One key of a provider entry each; false for a key the step does not know.
  bool load_provider_identity(const std::string& key, const YAML::Node& value, const std::string& at,
                              provider_config& out);
  bool load_provider_connection(const std::string& key, const YAML::Node& value, const std::string& at,
                                provider_config& out);
  void load_ca_file(const YAML::Node& node, const std::string& path, std::string& out);
  void load_models(const YAML::Node& node, const std::string& path, std::vector<model_config>& out);
  void load_headers(const YAML::Node& node, const std::string& path, std::map<std::string, std::string>& out);
  void load_model(const YAML::Node& node, const std::string& path, model_config& out);
  void load_root(const YAML::Node& root, gateway_config& out);

  const env_lookup& env_;
  std::vector<config_error> errors_;
};

template <class T>
bool loader::read_integer(const YAML::Node& node, const std::string& path, T& out, T minimum) {
  const auto value = scalar(node, path);
  if (!value) return false;
  const char* first = value->data();
  const char* last = first + value->size();
  unsigned long long parsed = 0;
  const auto [end, ec] = std::from_chars(first, last, parsed);
  const auto kind = minimum > 0 ? "a positive integer" : "a non-negative integer";
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc{} && end == last && parsed > std::numeric_limits<T>::max())) {
    fail(path, fmt::format("must be at most {} (got {})", std::numeric_limits<T>::max(), shown(*value)));
    return false;
  }
  if (value->empty() || ec != std::errc{} || end != last || parsed < minimum) {
    fail(path, fmt::format("must be {} (got {})", kind, shown(*value)));
    return false;
  }
  out = static_cast<T>(parsed);
  return true;
}

// Calls visit(key, value, path) per entry; visit returns false for a key it
// does not know. Returns the keys present, for "is required" checks.
template <class Visit>
std::set<std::string> loader::each_entry(const YAML::Node& node, const std::string& path, Visit visit) {
  std::set<std::string> seen;
  if (node.IsNull()) return seen;
  if (!node.IsMap()) {
    fail(path, "must be a mapping");
    return seen;
  }
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      fail(path, "keys must be plain strings");
      continue;
    }
    const std::string& key = entry.first.Scalar();
    const std::string at = child_path(path, key);
    // yaml-cpp keeps both entries of a repeated key; silently using one would
    // hide the user's mistake.
    if (!seen.insert(key).second) {
      fail(at, "duplicate key");
      continue;
    }
    if (!visit(key, entry.second, at)) fail(at, "unknown key");
  }
  return seen;
}

// Calls visit(item, path) per list item. Returns false when `node` is not a
// list, so callers do not add a second error about it being empty.
template <class Visit>
bool loader::each_item(const YAML::Node& node, const std::string& path, Visit visit) {
  if (node.IsNull()) return true;
  if (!node.IsSequence()) {
    fail(path, "must be a list");
    return false;
  }
  std::size_t index = 0;
  for (const auto& item : node) {
    visit(item, index_path(path, index));
    ++index;
  }
  return true;
}

}  // namespace gatewayz::config::detail

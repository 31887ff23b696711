#include "config/config.hpp"

#include <boost/url.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>
#include <variant>

#include "core/base_url.hpp"

namespace gatewayz::config {
namespace {

// Durations are later converted to integral chrono types; a bound keeps huge
// values from overflowing there, and nothing sensible needs more than a week.
constexpr double max_seconds = 7 * 24 * 3600.0;

// Values echoed in messages are cut so a pasted blob cannot flood the log.
// File paths are shown whole: a cut path would not tell the user which file.
constexpr std::size_t max_shown_chars = 64;
constexpr std::size_t no_limit = std::string_view::npos;

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(const std::string& parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

// A non-secret user value quoted for an error message, with control
// characters escaped so the message stays on one line.
std::string shown(std::string_view value, std::size_t max_chars = max_shown_chars) {
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

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

bool valid_env_name(std::string_view name) {
  if (name.empty() || is_ascii_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_ascii_alpha(c) || is_ascii_digit(c) || c == '_'; });
}

// Provider names become Prometheus label values and log fields, so they are
// kept to a set that never needs quoting or escaping anywhere.
bool valid_provider_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || is_ascii_digit(c) || c == '_' || c == '.' || c == '-';
  });
}

// RFC 9110 token: anything else would corrupt the upstream request head.
bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return is_ascii_alpha(c) || is_ascii_digit(c) || extra.find(c) != std::string_view::npos;
  });
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The HTTP client owns message framing and routing; letting config override
// these would produce requests the client itself cannot parse responses for.
bool reserved_header(std::string_view name) {
  const std::string lower = lowercase(name);
  return lower == "host" || lower == "content-length" || lower == "transfer-encoding" ||
         lower == "connection";
}

struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Host must be an IP literal because the server binds it directly, without
// name resolution; IPv6 needs brackets so its colons are not read as the port.
std::variant<listen_address, std::string> parse_listen(std::string_view text) {
  const std::string usage = fmt::format(
      "must be host:port with an IP address host, e.g. 127.0.0.1:8080 or [::1]:8080 (got {})",
      shown(text));
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return usage;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (!boost::urls::parse_ipv6_address(host)) {
      return fmt::format("{} is not a valid IPv6 address", shown(host));
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return usage;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fmt::format("IPv6 addresses must be in brackets, e.g. [::1]:8080 (got {})",
                         shown(text));
    }
    if (host.empty() || !boost::urls::parse_ipv4_address(host)) return usage;
  }
  const auto port = parse_port(port_text);
  if (!port) return fmt::format("port must be a number from 0 to 65535 (got {})", shown(port_text));
  return listen_address{std::string(host), *port};
}

// Walks the YAML tree against the schema of config.hpp, recording every
// problem instead of stopping, so one run shows the user all of them.
class loader {
 public:
  explicit loader(const env_lookup& env) : env_(env) {}

  load_result load(std::string_view yaml);

 private:
  void fail(std::string path, std::string message) {
    errors_.push_back({std::move(path), std::move(message)});
  }

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
  bool read_seconds(const YAML::Node& node, const std::string& path, double& out,
                    bool allow_zero);
  bool read_price(const YAML::Node& node, const std::string& path, double& out);
  bool read_bool(const YAML::Node& node, const std::string& path, bool& out);

  template <class Visit>
  std::set<std::string> each_entry(const YAML::Node& node, const std::string& path, Visit visit);
  template <class Visit>
  bool each_item(const YAML::Node& node, const std::string& path, Visit visit);

  void load_server(const YAML::Node& node, const std::string& path, server_config& out);
  void load_auth(const YAML::Node& node, const std::string& path, auth_config& out);
  void load_health(const YAML::Node& node, const std::string& path, health_config& out);
  void load_breaker(const YAML::Node& node, const std::string& path, circuit_breaker_config& out);
  void load_storage(const YAML::Node& node, const std::string& path, storage_config& out);
  void load_metrics(const YAML::Node& node, const std::string& path, metrics_config& out);
  bool read_ratio(const YAML::Node& node, const std::string& path, double& out);
  void load_provider(const YAML::Node& node, const std::string& path, provider_config& out);
  void load_headers(const YAML::Node& node, const std::string& path,
                    std::map<std::string, std::string>& out);
  void load_model(const YAML::Node& node, const std::string& path, model_config& out);
  void load_root(const YAML::Node& root, gateway_config& out);

  const env_lookup& env_;
  std::vector<config_error> errors_;
};

std::optional<std::string> loader::expand(std::string_view text, const std::string& path) {
  std::string out;
  out.reserve(text.size());
  bool ok = true;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
      out += text[i];
      ++i;
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      fail(path, "unterminated \"${\": write ${NAME} or ${NAME:-default}");
      return std::nullopt;
    }
    const std::string_view body = text.substr(i + 2, close - i - 2);
    const auto separator = body.find(":-");
    const std::string_view name = body.substr(0, separator);
    std::optional<std::string_view> fallback;
    if (separator != std::string_view::npos) fallback = body.substr(separator + 2);
    i = close + 1;
    // Neither the name nor the default is echoed: either may be a pasted secret.
    if (!valid_env_name(name)) {
      fail(path,
           "invalid environment variable reference: names are letters, digits and '_', "
           "not starting with a digit");
      ok = false;
      continue;
    }
    if (fallback && fallback->find("${") != std::string_view::npos) {
      fail(path, fmt::format("nested ${{...}} in the default of ${{{}}} is not supported", name));
      ok = false;
      continue;
    }
    const auto value = lookup(name);
    if (value && !value->empty()) {
      out += *value;
    } else if (fallback) {
      out += *fallback;
    } else if (!value) {
      fail(path, fmt::format("environment variable {} is not set", name));
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
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
    fail(path, fmt::format("must be at most {} (got {})", std::numeric_limits<T>::max(),
                           shown(*value)));
    return false;
  }
  if (value->empty() || ec != std::errc{} || end != last || parsed < minimum) {
    fail(path, fmt::format("must be {} (got {})", kind, shown(*value)));
    return false;
  }
  out = static_cast<T>(parsed);
  return true;
}

bool loader::read_seconds(const YAML::Node& node, const std::string& path, double& out,
                          bool allow_zero) {
  const auto value = scalar(node, path);
  if (!value) return false;
  const char* first = value->data();
  const char* last = first + value->size();
  double parsed = 0;
  const auto [end, ec] = std::from_chars(first, last, parsed);
  const bool number = !value->empty() && ec == std::errc{} && end == last && std::isfinite(parsed);
  if (!number || parsed < 0 || (!allow_zero && parsed == 0)) {
    fail(path, fmt::format("must be a number of seconds {} 0 (got {})", allow_zero ? ">=" : ">",
                           shown(*value)));
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

// Calls visit(key, value, path) per entry; visit returns false for a key it
// does not know. Returns the keys present, for "is required" checks.
template <class Visit>
std::set<std::string> loader::each_entry(const YAML::Node& node, const std::string& path,
                                         Visit visit) {
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

void loader::load_server(const YAML::Node& node, const std::string& path, server_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value,
                             const std::string& at) {
    if (key == "listen") {
      std::string text;
      if (!read_string(value, at, text)) return true;
      if (auto problem = set_listen(out, text)) fail(at, std::move(*problem));
    } else if (key == "threads") {
      read_integer(value, at, out.threads, 0U);
    } else if (key == "max_body_bytes") {
      read_integer<std::size_t>(value, at, out.max_body_bytes, 1);
    } else if (key == "max_header_bytes") {
      read_integer<std::size_t>(value, at, out.max_header_bytes, 1);
    } else if (key == "max_connections") {
      read_integer<std::size_t>(value, at, out.max_connections, 1);
    } else if (key == "header_timeout_s") {
      read_seconds(value, at, out.header_timeout_s, false);
    } else if (key == "body_timeout_s") {
      read_seconds(value, at, out.body_timeout_s, false);
    } else if (key == "idle_timeout_s") {
      read_seconds(value, at, out.idle_timeout_s, false);
    } else if (key == "request_timeout_s") {
      read_seconds(value, at, out.request_timeout_s, false);
    } else if (key == "shutdown_grace_s") {
      read_seconds(value, at, out.shutdown_grace_s, true);
    } else if (key == "max_attempts") {
      read_integer(value, at, out.max_attempts, 1U);
    } else if (key == "port_file") {
      std::string file;
      if (read_nonempty(value, at, file)) out.port_file = std::move(file);
    } else {
      return false;
    }
    return true;
  });
}

void loader::load_auth(const YAML::Node& node, const std::string& path, auth_config& out) {
  bool mode_ok = true;
  bool admin_key_ok = true;
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value,
                             const std::string& at) {
    if (key == "mode") {
      std::string mode;
      mode_ok = read_string(value, at, mode);
      if (mode_ok && mode != "none" && mode != "keys") {
        fail(at, fmt::format("must be one of none, keys (got {})", shown(mode)));
        mode_ok = false;
      }
      if (mode_ok) out.mode = std::move(mode);
    } else if (key == "admin_key") {
      admin_key_ok = read_string(value, at, out.admin_key);
    } else if (key == "key_cache_ttl_s") {
      read_seconds(value, at, out.key_cache_ttl_s, true);
    } else {
      return false;
    }
    return true;
  });
  if (mode_ok && admin_key_ok && out.mode == "keys" && out.admin_key.empty()) {
    fail(child_path(path, "admin_key"), "is required when auth.mode is keys");
  }
}

void loader::load_headers(const YAML::Node& node, const std::string& path,
                          std::map<std::string, std::string>& out) {
  std::map<std::string, std::string> lowercase_seen;
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value,
                             const std::string& at) {
    if (!valid_header_name(key)) {
      fail(at, "is not a valid HTTP header name");
      return true;
    }
    if (reserved_header(key)) {
      fail(at, "is managed by the gateway and cannot be set");
      return true;
    }
    // HTTP header names are case-insensitive, so "X-A" and "x-a" collide.
    const auto [previous, inserted] = lowercase_seen.emplace(lowercase(key), key);
    if (!inserted) {
      fail(at, fmt::format("repeats header {} (names are case-insensitive)", previous->second));
      return true;
    }
    std::string text;
    if (!read_string(value, at, text)) return true;
    // Values may be secrets, so the message says what is wrong, not what it is.
    if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      fail(at, "header value must not contain CR, LF or NUL");
      return true;
    }
    out.emplace(key, std::move(text));
    return true;
  });
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

void loader::load_health(const YAML::Node& node, const std::string& path, health_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "window_s") {
      read_seconds(value, at, out.window_s, false);
    } else if (key == "interval_s") {
      read_seconds(value, at, out.interval_s, false);
    } else if (key == "dashboard_cache_s") {
      read_seconds(value, at, out.dashboard_cache_s, true);
    } else {
      return false;
    }
    return true;
  });
}

void loader::load_breaker(const YAML::Node& node, const std::string& path, circuit_breaker_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "failure_threshold") {
      read_integer(value, at, out.failure_threshold, 1U);
    } else if (key == "error_rate_threshold") {
      read_ratio(value, at, out.error_rate_threshold);
    } else if (key == "min_requests") {
      read_integer(value, at, out.min_requests, 1U);
    } else if (key == "open_s") {
      read_seconds(value, at, out.open_s, false);
    } else if (key == "half_open_requests") {
      read_integer(value, at, out.half_open_requests, 1U);
    } else if (key == "max_open_s") {
      read_seconds(value, at, out.max_open_s, false);
    } else {
      return false;
    }
    return true;
  });
  if (out.max_open_s < out.open_s) fail(child_path(path, "max_open_s"), "must be at least open_s");
}

void loader::load_storage(const YAML::Node& node, const std::string& path, storage_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "url") {
      std::string url;
      if (!read_nonempty(value, at, url)) return true;
      // The URL may carry a password: it is never echoed.
      if (url != "none" && !url.starts_with("sqlite://") && !url.starts_with("postgres://") &&
          !url.starts_with("postgresql://")) {
        fail(at, "must be none or start with sqlite://, postgres:// or postgresql://");
        return true;
      }
      out.url = std::move(url);
    } else if (key == "flush_interval_ms") {
      read_integer(value, at, out.flush_interval_ms, 1U);
    } else if (key == "spill_path") {
      read_nonempty(value, at, out.spill_path);
    } else if (key == "queue_capacity") {
      read_integer<std::size_t>(value, at, out.queue_capacity, 1);
    } else if (key == "stats_cache_s") {
      read_seconds(value, at, out.stats_cache_s, true);
    } else {
      return false;
    }
    return true;
  });
}

void loader::load_metrics(const YAML::Node& node, const std::string& path, metrics_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "enabled") {
      read_bool(value, at, out.enabled);
    } else if (key == "bearer_token") {
      read_string(value, at, out.bearer_token);
    } else {
      return false;
    }
    return true;
  });
}

void loader::load_model(const YAML::Node& node, const std::string& path, model_config& out) {
  bool upstream_set = false;
  const auto keys = each_entry(node, path, [&](const std::string& key, const YAML::Node& value,
                                               const std::string& at) {
    if (key == "id") {
      read_nonempty(value, at, out.id);
    } else if (key == "upstream") {
      upstream_set = read_nonempty(value, at, out.upstream);
    } else if (key == "input_per_million") {
      read_price(value, at, out.input_per_million);
    } else if (key == "output_per_million") {
      read_price(value, at, out.output_per_million);
    } else {
      return false;
    }
    return true;
  });
  if (node.IsMap() && !keys.contains("id")) fail(child_path(path, "id"), "is required");
  if (node.IsNull()) fail(path, "must be a mapping with at least an id");
  if (!upstream_set) out.upstream = out.id;
}

void loader::load_provider(const YAML::Node& node, const std::string& path,
                           provider_config& out) {
  const auto keys = each_entry(node, path, [&](const std::string& key, const YAML::Node& value,
                                               const std::string& at) {
    if (key == "name") {
      std::string name;
      if (!read_string(value, at, name)) return true;
      if (!valid_provider_name(name)) {
        fail(at, fmt::format("must be non-empty and use only a-z, 0-9, '_', '.', '-' "
                             "(it is a metrics label) (got {})",
                             shown(name)));
        return true;
      }
      out.name = std::move(name);
    } else if (key == "kind") {
      std::string kind;
      if (!read_string(value, at, kind)) return true;
      if (kind == "openai") {
        out.kind = provider_kind::openai;
      } else if (kind == "anthropic") {
        out.kind = provider_kind::anthropic;
      } else {
        fail(at, fmt::format("must be one of openai, anthropic (got {})", shown(kind)));
      }
    } else if (key == "base_url") {
      std::string url;
      if (!read_string(value, at, url)) return true;
      std::string problem;
      if (!parse_base_url(url, problem)) {
        fail(at, std::move(problem));
        return true;
      }
      out.base_url = std::move(url);
    } else if (key == "api_key") {
      read_string(value, at, out.api_key);
    } else if (key == "timeout_s") {
      read_seconds(value, at, out.timeout_s, false);
    } else if (key == "connect_timeout_s") {
      read_seconds(value, at, out.connect_timeout_s, false);
    } else if (key == "max_idle_connections") {
      read_integer<std::size_t>(value, at, out.max_idle_connections, 0);
    } else if (key == "max_response_bytes") {
      read_integer<std::size_t>(value, at, out.max_response_bytes, 1);
    } else if (key == "verify_tls") {
      read_bool(value, at, out.verify_tls);
    } else if (key == "ca_file") {
      std::string file;
      if (!read_string(value, at, file)) return true;
      if (!file.empty()) {
        std::error_code ec;
        const auto status = std::filesystem::status(file, ec);
        if (!std::filesystem::exists(status)) {
          fail(at, fmt::format("file {} does not exist", shown(file, no_limit)));
          return true;
        }
        if (!std::filesystem::is_regular_file(status)) {
          fail(at, fmt::format("{} is not a regular file", shown(file, no_limit)));
          return true;
        }
      }
      out.ca_file = std::move(file);
    } else if (key == "anthropic_version") {
      read_nonempty(value, at, out.anthropic_version);
    } else if (key == "headers") {
      load_headers(value, at, out.headers);
    } else if (key == "probe_interval_s") {
      read_seconds(value, at, out.probe_interval_s, true);
    } else if (key == "probe_path") {
      std::string probe;
      if (!read_nonempty(value, at, probe)) return true;
      if (probe.front() != '/') {
        fail(at, fmt::format("must start with '/' (got {})", shown(probe)));
        return true;
      }
      out.probe_path = std::move(probe);
    } else if (key == "models") {
      std::map<std::string, std::string> first_path_of_id;
      const bool is_list = each_item(value, at, [&](const YAML::Node& item, const std::string& item_at) {
        model_config model;
        load_model(item, item_at, model);
        if (!model.id.empty()) {
          const auto [previous, inserted] = first_path_of_id.emplace(model.id, item_at);
          if (!inserted) {
            fail(child_path(item_at, "id"),
                 fmt::format("duplicate model id {} (also {})", shown(model.id), previous->second));
          }
        }
        out.models.push_back(std::move(model));
      });
      if (is_list && out.models.empty()) fail(at, "must list at least one model");
    } else {
      return false;
    }
    return true;
  });
  if (node.IsNull()) {
    fail(path, "must be a mapping with at least name, base_url and models");
    return;
  }
  if (!node.IsMap()) return;
  for (const char* required : {"name", "base_url", "models"}) {
    if (!keys.contains(required)) fail(child_path(path, required), "is required");
  }
}

void loader::load_root(const YAML::Node& root, gateway_config& out) {
  if (!root.IsNull() && !root.IsMap()) {
    fail("", "the configuration must be a mapping with server, auth and providers keys");
    return;
  }
  bool providers_listed = true;
  const auto keys = each_entry(root, "", [&](const std::string& key, const YAML::Node& value,
                                             const std::string& at) {
    if (key == "server") {
      load_server(value, at, out.server);
    } else if (key == "auth") {
      load_auth(value, at, out.auth);
    } else if (key == "health") {
      load_health(value, at, out.health);
    } else if (key == "circuit_breaker") {
      load_breaker(value, at, out.circuit_breaker);
    } else if (key == "storage") {
      load_storage(value, at, out.storage);
    } else if (key == "metrics") {
      load_metrics(value, at, out.metrics);
    } else if (key == "providers") {
      std::map<std::string, std::string> first_path_of_name;
      providers_listed = each_item(value, at, [&](const YAML::Node& item, const std::string& item_at) {
        provider_config provider;
        load_provider(item, item_at, provider);
        if (!provider.name.empty()) {
          const auto [previous, inserted] = first_path_of_name.emplace(provider.name, item_at);
          if (!inserted) {
            fail(child_path(item_at, "name"),
                 fmt::format("duplicate provider name {} (also {})", shown(provider.name),
                             previous->second));
          }
        }
        out.providers.push_back(std::move(provider));
      });
    } else {
      return false;
    }
    return true;
  });
  if (out.storage.url != "none" && out.storage.queue_capacity < out.server.max_connections) {
    // Every request in progress holds a place in its thread's ledger queue
    // (the gateway answers 503 when there is none), so a smaller queue would
    // refuse requests on a healthy database.
    fail("storage.queue_capacity",
         fmt::format("must be at least server.max_connections ({}): every request in progress holds a place "
                     "in the ledger queue (got {})",
                     out.server.max_connections, out.storage.queue_capacity));
  }
  if (out.storage.url == "none" && out.auth.mode == "keys") {
    fail("storage.url", "none leaves nowhere to keep API keys: auth.mode keys needs a store");
  }
  if (providers_listed && out.providers.empty()) {
    fail("providers", keys.contains("providers") ? "must list at least one provider"
                                                 : "is required (at least one provider)");
  }
}

load_result loader::load(std::string_view yaml) {
  load_result result;
  try {
    const auto documents = YAML::LoadAll(std::string(yaml));
    if (documents.size() > 1) {
      fail("", fmt::format("expected one YAML document, found {}", documents.size()));
    }
    gateway_config config;
    load_root(documents.empty() ? YAML::Node() : documents.front(), config);
    if (errors_.empty()) result.config = std::move(config);
  } catch (const YAML::Exception& e) {
    // yaml-cpp marks are 0-based; editors count from 1.
    if (e.mark.is_null()) {
      fail("", fmt::format("YAML syntax error: {}", e.msg));
    } else {
      fail("", fmt::format("YAML syntax error at line {}, column {}: {}", e.mark.line + 1,
                           e.mark.column + 1, e.msg));
    }
  }
  result.errors = std::move(errors_);
  return result;
}

}  // namespace

env_lookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);
    // getenv is only unsafe against concurrent setenv, which the gateway never calls.
    const char* value = std::getenv(key.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

load_result load_config_string(std::string_view yaml, const env_lookup& env) {
  return loader(env).load(yaml);
}

load_result load_config_file(const std::string& path, const env_lookup& env) {
  const auto file_error = [&](std::string message) {
    load_result result;
    result.errors.push_back({"", fmt::format("config file {}: {}", path, message)});
    return result;
  };
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) return file_error("not found");
  if (std::filesystem::is_directory(status)) return file_error("is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return file_error("cannot be opened for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return file_error("read failed");
  return load_config_string(text.str(), env);
}

std::optional<std::string> set_listen(server_config& server, std::string_view listen) {
  auto parsed = parse_listen(listen);
  if (auto* problem = std::get_if<std::string>(&parsed)) return std::move(*problem);
  auto& address = std::get<listen_address>(parsed);
  server.listen = std::string(listen);
  server.host = std::move(address.host);
  server.port = address.port;
  return std::nullopt;
}

std::string format_errors(const std::vector<config_error>& errors) {
  std::string out;
  for (const auto& error : errors) {
    if (!error.path.empty()) {
      out += error.path;
      out += ": ";
    }
    out += error.message;
    out += '\n';
  }
  return out;
}

}  // namespace gatewayz::config

// The logging section and its loki subsection.
#include <string>

#include "config/loader.hpp"
#include "core/base_url.hpp"

namespace gatewayz::config::detail {

namespace {

bool one_of(std::string_view value, std::initializer_list<std::string_view> allowed) {
  for (const auto candidate : allowed) {
    if (value == candidate) return true;
  }
  return false;
}

// Loki's label values must be non-empty; the three stream labels are also
// the only labels, so an empty one would make every stream invalid.
bool valid_label_value(std::string_view value) { return !value.empty() && value.size() <= 2048; }

}  // namespace

void loader::load_loki(const YAML::Node& node, const std::string& path, loki_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "url") {
      std::string url;
      if (!read_string(value, at, url)) return true;
      // The URL may carry credentials: the message never echoes it.
      std::string problem;
      if (!url.empty() && !parse_base_url(url, problem)) {
        fail(at, problem + " (or leave it empty: no shipping)");
        return true;
      }
      out.url = std::move(url);
    } else if (key == "tenant_id") {
      std::string tenant;
      if (!read_string(value, at, tenant)) return true;
      // Loki's tenant ids: <= 150 bytes of letters, digits and ! - _ . * ' ( ).
      const bool valid =
          tenant.size() <= 150 && tenant != "." && tenant != ".." &&
          tenant.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()") ==
              std::string::npos;
      if (!valid) {
        fail(at, fmt::format("must be at most 150 letters, digits or !-_.*'() (got {})", shown(tenant)));
        return true;
      }
      out.tenant_id = std::move(tenant);
    } else if (key == "headers") {
      load_headers(value, at, out.headers);
    } else if (key == "batch_max_bytes") {
      read_integer<std::size_t>(value, at, out.batch_max_bytes, 1024);
    } else if (key == "flush_interval_ms") {
      read_integer(value, at, out.flush_interval_ms, 1U);
    } else if (key == "queue_max_records") {
      read_integer<std::size_t>(value, at, out.queue_max_records, 1);
    } else {
      return false;
    }
    return true;
  });
}

void loader::load_logging(const YAML::Node& node, const std::string& path, logging_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "level") {
      std::string level;
      if (!read_string(value, at, level)) return true;
      if (!one_of(level, {"debug", "info", "warning", "error"})) {
        fail(at, fmt::format("must be one of debug, info, warning, error (got {})", shown(level)));
        return true;
      }
      out.level = std::move(level);
    } else if (key == "format") {
      std::string format;
      if (!read_string(value, at, format)) return true;
      if (!one_of(format, {"json", "text"})) {
        fail(at, fmt::format("must be one of json, text (got {})", shown(format)));
        return true;
      }
      out.format = std::move(format);
    } else if (key == "app" || key == "env" || key == "service") {
      std::string label;
      if (!read_string(value, at, label)) return true;
      if (!valid_label_value(label)) {
        fail(at, "must be 1 to 2048 characters (it is a Loki stream label)");
        return true;
      }
      (key == "app" ? out.app : key == "env" ? out.env : out.service) = std::move(label);
    } else if (key == "log_content") {
      read_bool(value, at, out.log_content);
    } else if (key == "log_emails") {
      read_bool(value, at, out.log_emails);
    } else if (key == "loki") {
      load_loki(value, at, out.loki);
    } else {
      return false;
    }
    return true;
  });
}

}  // namespace gatewayz::config::detail

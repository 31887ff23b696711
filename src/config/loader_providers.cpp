// providers[]: one entry's keys, its models and its extra headers.
#include "config/loader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/base_url.hpp"

namespace gatewayz::config::detail {
namespace {

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
  return lower == "host" || lower == "content-length" || lower == "transfer-encoding" || lower == "connection";
}

}  // namespace

void loader::load_headers(const YAML::Node& node, const std::string& path, std::map<std::string, std::string>& out) {
  std::map<std::string, std::string> lowercase_seen;
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
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

void loader::load_model(const YAML::Node& node, const std::string& path, model_config& out) {
  bool upstream_set = false;
  const auto keys = each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "id") {
      read_nonempty(value, at, out.id);
    } else if (key == "upstream") {
      upstream_set = read_nonempty(value, at, out.upstream);
    } else if (key == "input_per_million") {
      read_price(value, at, out.input_per_million);
    } else if (key == "output_per_million") {
      read_price(value, at, out.output_per_million);
    } else if (key == "reserve_output_tokens") {
      read_integer(value, at, out.reserve_output_tokens, std::uint32_t{1});
    } else {
      return false;
    }
    return true;
  });
  if (node.IsMap() && !keys.contains("id")) fail(child_path(path, "id"), "is required");
  if (node.IsNull()) fail(path, "must be a mapping with at least an id");
  if (!upstream_set) out.upstream = out.id;
}

void loader::load_provider(const YAML::Node& node, const std::string& path, provider_config& out) {
  const auto keys = each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "headers") {
      load_headers(value, at, out.headers);
    } else if (key == "models") {
      load_models(value, at, out.models);
    } else {
      return load_provider_identity(key, value, at, out) || load_provider_connection(key, value, at, out);
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

// Which upstream this is and how it is addressed: name, kind, base_url,
// api_key, anthropic_version.
bool loader::load_provider_identity(const std::string& key, const YAML::Node& value, const std::string& at,
                                    provider_config& out) {
  if (key == "name") {
    std::string name;
    if (!read_string(value, at, name)) return true;
    if (!valid_provider_name(name)) {
      fail(at, fmt::format("must be non-empty and use only a-z, 0-9, '_', '.', '-' "
                           "(it is a metrics label) (got {})",
                           shown(name)));
      return true;
    }
    if (name == "none") {
      fail(at, "none is reserved: /models/stats names requests no provider was tried for that way");
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
  } else if (key == "anthropic_version") {
    read_nonempty(value, at, out.anthropic_version);
  } else {
    return false;
  }
  return true;
}

// How the gateway talks to it: timeouts, pool, TLS and the health probe.
bool loader::load_provider_connection(const std::string& key, const YAML::Node& value, const std::string& at,
                                      provider_config& out) {
  if (key == "timeout_s") {
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
    load_ca_file(value, at, out.ca_file);
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
  } else {
    return false;
  }
  return true;
}

void loader::load_ca_file(const YAML::Node& node, const std::string& path, std::string& out) {
  std::string file;
  if (!read_string(node, path, file)) return;
  if (!file.empty()) {
    std::error_code ec;
    const auto status = std::filesystem::status(file, ec);
    if (!std::filesystem::exists(status)) {
      fail(path, fmt::format("file {} does not exist", shown(file, no_limit)));
      return;
    }
    if (!std::filesystem::is_regular_file(status)) {
      fail(path, fmt::format("{} is not a regular file", shown(file, no_limit)));
      return;
    }
  }
  out = std::move(file);
}

void loader::load_models(const YAML::Node& node, const std::string& path, std::vector<model_config>& out) {
  std::map<std::string, std::string> first_path_of_id;
  const bool is_list = each_item(node, path, [&](const YAML::Node& item, const std::string& item_at) {
    model_config model;
    load_model(item, item_at, model);
    if (!model.id.empty()) {
      const auto [previous, inserted] = first_path_of_id.emplace(model.id, item_at);
      if (!inserted) {
        fail(child_path(item_at, "id"),
             fmt::format("duplicate model id {} (also {})", shown(model.id), previous->second));
      }
    }
    out.push_back(std::move(model));
  });
  if (is_list && out.empty()) fail(path, "must list at least one model");
}

}  // namespace gatewayz::config::detail

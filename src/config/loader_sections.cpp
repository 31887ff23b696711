// The document root and its sections other than providers (server, auth,
// health, circuit_breaker, storage, redis, metrics), and loader::load itself.
#include "config/loader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "redis/url.hpp"

namespace gatewayz::config::detail {

namespace {

// Counts a YAML stream's documents without building them. yaml-cpp 0.7's
// LoadAll never returns on some invalid input (a lone ",": its parser
// reports an empty document without consuming the token, again and again,
// growing memory; jbeder/yaml-cpp#1040): a document that starts where the
// previous one did is that loop, reported as a syntax error at its mark.
class document_counter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start = YAML::Mark::null_mark();
};

struct document_count {
  std::size_t documents = 0;
  std::optional<YAML::Mark> stuck_at;  // where the parser stopped making progress
};

document_count count_documents(std::string_view yaml) {
  std::istringstream in{std::string(yaml)};
  YAML::Parser parser(in);
  document_counter counter;
  document_count out;
  std::optional<int> previous_start;
  while (parser.HandleNextDocument(counter)) {
    if (previous_start && *previous_start == counter.start.pos) {
      out.stuck_at = counter.start;
      break;
    }
    previous_start = counter.start.pos;
    ++out.documents;
  }
  return out;
}

}  // namespace

void loader::load_server(const YAML::Node& node, const std::string& path, server_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
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
    } else if (key == "max_connections_per_ip") {
      read_integer<std::size_t>(value, at, out.max_connections_per_ip, 0);
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
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
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
    } else if (key == "read_token") {
      read_string(value, at, out.read_token);
    } else if (key == "key_cache_ttl_s") {
      read_seconds(value, at, out.key_cache_ttl_s, true);
    } else if (key == "reserve_output_tokens") {
      read_integer(value, at, out.reserve_output_tokens, std::uint32_t{1});
    } else {
      return false;
    }
    return true;
  });
  if (mode_ok && admin_key_ok && out.mode == "keys" && out.admin_key.empty()) {
    fail(child_path(path, "admin_key"), "is required when auth.mode is keys");
  }
}

void loader::load_health(const YAML::Node& node, const std::string& path, health_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "window_s") {
      read_seconds(value, at, out.window_s, false);
    } else if (key == "interval_s") {
      read_seconds(value, at, out.interval_s, false);
    } else if (key == "dashboard_cache_s") {
      read_seconds(value, at, out.dashboard_cache_s, true);
    } else if (key == "shared") {
      read_bool(value, at, out.shared);
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

void loader::load_redis(const YAML::Node& node, const std::string& path, redis_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "url") {
      std::string url;
      if (!read_string(value, at, url)) return true;
      // Empty (e.g. an unset ${GATEWAYZ_REDIS_URL:-}) means no Redis. The
      // URL may carry a password: parse_url's messages never echo it.
      redis::endpoint parsed;
      std::string error;
      if (!url.empty() && !redis::parse_url(url, parsed, error)) {
        fail(at, error);
        return true;
      }
      out.url = std::move(url);
    } else if (key == "timeout_ms") {
      unsigned ms = 0;
      if (read_integer(value, at, ms, 1U)) {
        if (ms > 60000) {
          fail(at, fmt::format("must be at most 60000 (got {})", ms));
        } else {
          out.timeout_ms = static_cast<int>(ms);
        }
      }
    } else if (key == "pool_size") {
      unsigned size = 0;
      if (read_integer(value, at, size, 1U)) {
        if (size > 64) {
          fail(at, fmt::format("must be at most 64 connections per server thread (got {})", size));
        } else {
          out.pool_size = static_cast<int>(size);
        }
      }
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

void loader::load_root(const YAML::Node& root, gateway_config& out) {
  if (!root.IsNull() && !root.IsMap()) {
    fail("", "the configuration must be a mapping with server, auth and providers keys");
    return;
  }
  bool providers_listed = true;
  const auto keys = each_entry(root, "", [&](const std::string& key, const YAML::Node& value, const std::string& at) {
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
    } else if (key == "redis") {
      load_redis(value, at, out.redis);
    } else if (key == "metrics") {
      load_metrics(value, at, out.metrics);
    } else if (key == "logging") {
      load_logging(value, at, out.logging);
    } else if (key == "tracing") {
      load_tracing(value, at, out.tracing);
    } else if (key == "cache") {
      load_cache(value, at, out.cache);
    } else if (key == "providers") {
      std::map<std::string, std::string> first_path_of_name;
      providers_listed = each_item(value, at, [&](const YAML::Node& item, const std::string& item_at) {
        provider_config provider;
        load_provider(item, item_at, provider);
        if (!provider.name.empty()) {
          const auto [previous, inserted] = first_path_of_name.emplace(provider.name, item_at);
          if (!inserted) {
            fail(child_path(item_at, "name"),
                 fmt::format("duplicate provider name {} (also {})", shown(provider.name), previous->second));
          }
        }
        out.providers.push_back(std::move(provider));
      });
    } else {
      return false;
    }
    return true;
  });
  apply_otel_environment(out.tracing);
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
  if (out.cache.mode == "redis" && out.redis.url.empty()) {
    fail("cache.mode", "redis needs redis.url: the shared cache lives in Redis");
  }
  if (out.health.shared && out.redis.url.empty()) {
    fail("health.shared", "true needs redis.url: instances share health through Redis");
  }
  if (providers_listed && out.providers.empty()) {
    fail("providers",
         keys.contains("providers") ? "must list at least one provider" : "is required (at least one provider)");
  }
}

load_result loader::load(std::string_view yaml) {
  load_result result;
  try {
    const document_count count = count_documents(yaml);
    if (count.stuck_at) {
      const YAML::Mark& at = *count.stuck_at;
      const auto pos = static_cast<std::size_t>(at.pos);
      fail("", fmt::format("YAML syntax error at line {}, column {}: unexpected {}", at.line + 1, at.column + 1,
                           pos < yaml.size() ? shown(yaml.substr(pos, 1)) : std::string("end of input")));
      result.errors = std::move(errors_);
      return result;
    }
    if (count.documents > 1) fail("", fmt::format("expected one YAML document, found {}", count.documents));
    gateway_config config;
    load_root(count.documents == 0 ? YAML::Node() : YAML::Load(std::string(yaml)), config);
    if (errors_.empty()) result.config = std::move(config);
  } catch (const YAML::Exception& e) {
    // yaml-cpp quotes the offending character raw ("unknown escape
    // character: <LF>"): escaped, so every error stays on its line.
    std::string msg;
    for (const char ch : e.msg) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7f) {
        msg += fmt::format("\\x{:02x}", c);
      } else {
        msg += ch;
      }
    }
    // yaml-cpp marks are 0-based; editors count from 1.
    if (e.mark.is_null()) {
      fail("", fmt::format("YAML syntax error: {}", msg));
    } else {
      fail("", fmt::format("YAML syntax error at line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, msg));
    }
  }
  result.errors = std::move(errors_);
  return result;
}

}  // namespace gatewayz::config::detail

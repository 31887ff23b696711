#include "app/options.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

namespace gatewayz::app {

health::options health_options(const config::gateway_config& cfg, bool active_probes) {
  health::options out;
  out.window_s = cfg.health.window_s;
  out.interval_s = cfg.health.interval_s;
  out.dashboard_cache_s = cfg.health.dashboard_cache_s;
  const auto& cb = cfg.circuit_breaker;
  out.breaker.failure_threshold = cb.failure_threshold;
  out.breaker.error_rate_threshold = cb.error_rate_threshold;
  out.breaker.min_requests = cb.min_requests;
  out.breaker.open_s = cb.open_s;
  out.breaker.max_open_s = cb.max_open_s;
  out.breaker.half_open_requests = cb.half_open_requests;
  for (const auto& provider : cfg.providers) {
    health::provider_info info;
    info.name = provider.name;
    for (const auto& model : provider.models) info.models.push_back(model.id);
    info.probe_interval_s = active_probes ? provider.probe_interval_s : 0;
    info.probe_path = provider.probe_path;
    // A probe is a cheap GET: it never waits as long as a generation may.
    info.probe_timeout_s = std::min(provider.timeout_s, 10.0);
    out.providers.push_back(std::move(info));
  }
  return out;
}

ledger::writer_options ledger_options(const config::storage_config& storage) {
  ledger::writer_options out;
  out.flush_interval_ms = storage.flush_interval_ms;
  out.queue_capacity = storage.queue_capacity;
  out.spill_path = storage.spill_path.empty() ? ledger::default_spill_path(storage.url) : storage.spill_path;
  return out;
}

redis::client_options redis_options(const config::redis_config& redis) {
  redis::client_options out;
  std::string error;
  if (!redis::parse_url(redis.url, out.server, error)) throw std::invalid_argument("redis.url: " + error);
  out.timeout = std::chrono::milliseconds(redis.timeout_ms);
  out.pool_size = static_cast<std::size_t>(redis.pool_size);
  return out;
}

auth::auth_options auth_options(const config::auth_config& auth) {
  auth::auth_options out;
  out.cache_ttl_s = auth.key_cache_ttl_s;
  return out;
}

logging::logger_options logger_options(const config::logging_config& logging, std::size_t shards) {
  logging::logger_options out;
  out.min_level = logging::parse_level(logging.level).value_or(logging::level::info);
  out.format = logging.format == "text" ? logging::line_format::text : logging::line_format::json;
  out.redact_emails = !logging.log_emails;
  out.shards = shards;
  if (!logging.loki.url.empty()) {
    logging::loki_options loki;
    loki.url = logging.loki.url;
    loki.tenant_id = logging.loki.tenant_id;
    loki.headers = logging.loki.headers;
    loki.batch_max_bytes = logging.loki.batch_max_bytes;
    loki.flush_interval = std::chrono::milliseconds(logging.loki.flush_interval_ms);
    loki.queue_max_records = logging.loki.queue_max_records;
    loki.app = logging.app;
    loki.env = logging.env;
    loki.service = logging.service;
    out.loki = std::move(loki);
  }
  return out;
}

std::optional<std::string> open_gateway_warning(const config::gateway_config& cfg) {
  if (cfg.auth.mode != "none") return std::nullopt;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(cfg.server.host, ec);
  if (!ec && address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  if (!ec && address.is_loopback()) return std::nullopt;
  return fmt::format(
      "WARNING: auth.mode is none and the gateway listens on {} (not loopback): anyone who can reach it may use "
      "every provider at your cost and the admin API (/admin/: customers, credits, keys, circuit breakers). Set "
      "auth.mode: keys with auth.admin_key, or listen on 127.0.0.1.",
      cfg.server.host);
}

tracing::exporter_options tracing_options(const config::tracing_config& tracing, unsigned threads,
                                          std::string_view version) {
  tracing::exporter_options o;
  o.url = tracing.traces_endpoint.empty() ? tracing::traces_url(tracing.otlp_endpoint, false)
                                          : tracing::traces_url(tracing.traces_endpoint, true);
  o.encoding = tracing.protocol == "http/json" ? tracing::otlp_encoding::json : tracing::otlp_encoding::protobuf;
  o.gzip = tracing.gzip;
  for (const auto& [name, value] : tracing.headers) o.headers.emplace_back(name, value);
  o.resource.attributes.emplace_back("service.name", tracing.service_name);
  o.resource.attributes.emplace_back("service.version", std::string(version));
  if (!tracing.environment.empty()) o.resource.attributes.emplace_back("deployment.environment", tracing.environment);
  for (const auto& [key, value] : tracing.resource_attributes) o.resource.attributes.emplace_back(key, value);
  o.resource.scope_name = "gatewayz";
  o.resource.scope_version = std::string(version);
  o.producers = threads + 1;
  o.max_queue_size = tracing.max_queue_size;
  o.schedule_delay = std::chrono::milliseconds(tracing.schedule_delay_ms);
  o.max_export_batch_size = tracing.max_export_batch_size;
  o.export_timeout = std::chrono::milliseconds(tracing.export_timeout_ms);
  o.user_agent = "gatewayz/" + std::string(version);
  return o;
}

tracing::sampler tracing_sampler(const config::tracing_config& tracing) {
  // The loader accepts only the names from_name knows.
  return tracing::sampler::from_name(tracing.sampler, tracing.sample_ratio).value_or(tracing::sampler{});
}

}  // namespace gatewayz::app

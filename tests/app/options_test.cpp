// Each default is written once, in config.hpp: a default config must map to
// exactly the defaults the modules have when used without a config, so a
// module built in a test or a tool behaves as a configured gateway does.

#include <gtest/gtest.h>

#include "app/options.hpp"
#include "config/config.hpp"
#include "gateway/gateway.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "providers/runtime.hpp"

namespace gatewayz::app {
namespace {

TEST(OptionsTest, DefaultConfigMapsToTheHealthModulesDefaults) {
  const health::options defaults;
  const auto mapped = health_options(config::gateway_config{}, true);
  EXPECT_EQ(mapped.window_s, defaults.window_s);
  EXPECT_EQ(mapped.interval_s, defaults.interval_s);
  EXPECT_EQ(mapped.dashboard_cache_s, defaults.dashboard_cache_s);
  EXPECT_EQ(mapped.breaker.failure_threshold, defaults.breaker.failure_threshold);
  EXPECT_EQ(mapped.breaker.error_rate_threshold, defaults.breaker.error_rate_threshold);
  EXPECT_EQ(mapped.breaker.min_requests, defaults.breaker.min_requests);
  EXPECT_EQ(mapped.breaker.open_s, defaults.breaker.open_s);
  EXPECT_EQ(mapped.breaker.max_open_s, defaults.breaker.max_open_s);
  EXPECT_EQ(mapped.breaker.half_open_requests, defaults.breaker.half_open_requests);
}

TEST(OptionsTest, DefaultProviderMapsToTheProbesDefaults) {
  config::gateway_config cfg;
  config::provider_config provider;
  provider.name = "p";
  provider.base_url = "http://127.0.0.1:9/v1";
  cfg.providers.push_back(provider);
  const health::provider_info defaults;
  const auto mapped = health_options(cfg, true);
  ASSERT_EQ(mapped.providers.size(), 1U);
  EXPECT_EQ(mapped.providers[0].probe_interval_s, defaults.probe_interval_s);
  EXPECT_EQ(mapped.providers[0].probe_path, defaults.probe_path);
  EXPECT_EQ(mapped.providers[0].probe_timeout_s, defaults.probe_timeout_s);
}

TEST(OptionsTest, ProbesAreOffWhenActiveProbesAre) {
  config::gateway_config cfg;
  config::provider_config provider;
  provider.name = "p";
  provider.probe_interval_s = 5;
  cfg.providers.push_back(provider);
  EXPECT_EQ(health_options(cfg, true).providers[0].probe_interval_s, 5);
  EXPECT_EQ(health_options(cfg, false).providers[0].probe_interval_s, 0);
}

TEST(OptionsTest, DefaultStorageMapsToTheLedgerWritersDefaults) {
  const ledger::writer_options defaults;
  const config::storage_config storage;
  const auto mapped = ledger_options(storage);
  EXPECT_EQ(mapped.flush_interval_ms, defaults.flush_interval_ms);
  EXPECT_EQ(mapped.queue_capacity, defaults.queue_capacity);
  EXPECT_EQ(mapped.spill_path, ledger::default_spill_path(storage.url));
}

TEST(OptionsTest, DefaultAuthMapsToTheAuthenticatorsDefaults) {
  const auth::auth_options defaults;
  EXPECT_EQ(auth_options(config::auth_config{}).cache_ttl_s, defaults.cache_ttl_s);
}

TEST(OptionsTest, DefaultServerConfigMapsToTheServersDefaults) {
  config::gateway_config cfg;
  cfg.storage.url = "none";
  const http::server_options defaults;
  // The gateway maps config.server to the server's options (no parts needed
  // beyond what it checks, so build the smallest gateway there is).
  telemetry::registry registry{gateway::resolve_threads(0) + 1};
  telemetry::catalog catalog{registry, "test"};
  health::monitor monitor{health_options(cfg, false), catalog};
  gateway::gateway_parts parts;
  parts.metrics = &catalog;
  parts.health = &monitor;
  const gateway::gateway gw{cfg, parts};
  const auto mapped = gw.server_options();
  EXPECT_EQ(mapped.max_body_bytes, defaults.max_body_bytes);
  EXPECT_EQ(mapped.max_header_bytes, defaults.max_header_bytes);
  EXPECT_EQ(mapped.max_connections, defaults.max_connections);
  EXPECT_EQ(mapped.max_connections_per_ip, defaults.max_connections_per_ip);
  EXPECT_EQ(mapped.header_timeout, defaults.header_timeout);
  EXPECT_EQ(mapped.body_timeout, defaults.body_timeout);
  EXPECT_EQ(mapped.idle_timeout, defaults.idle_timeout);
}

TEST(OptionsTest, DefaultProviderMapsToTheUpstreamClientsDefaults) {
  config::provider_config provider;
  provider.name = "p";
  provider.base_url = "http://127.0.0.1:9/v1";
  const std::vector<config::provider_config> providers{provider};
  const auto runtimes = providers::build_runtimes(providers);
  const http::client_settings defaults;
  ASSERT_EQ(runtimes.size(), 1U);
  EXPECT_EQ(runtimes[0].client.connect_timeout, defaults.connect_timeout);
  EXPECT_EQ(runtimes[0].client.read_timeout, defaults.read_timeout);
  EXPECT_EQ(runtimes[0].client.max_idle_connections, defaults.max_idle_connections);
  EXPECT_EQ(runtimes[0].client.verify_tls, defaults.verify_tls);
}

TEST(OptionsTest, DefaultTracingMapsToTheExportersDefaults) {
  const tracing::exporter_options defaults;
  const config::tracing_config tracing;
  const auto mapped = tracing_options(tracing, 4, "1.2.3");
  EXPECT_EQ(mapped.url, "http://localhost:4318/v1/traces");
  EXPECT_EQ(mapped.encoding, defaults.encoding);
  EXPECT_EQ(mapped.gzip, defaults.gzip);
  EXPECT_EQ(mapped.max_queue_size, defaults.max_queue_size);
  EXPECT_EQ(mapped.schedule_delay, defaults.schedule_delay);
  EXPECT_EQ(mapped.max_export_batch_size, defaults.max_export_batch_size);
  EXPECT_EQ(mapped.export_timeout, defaults.export_timeout);
  EXPECT_EQ(mapped.producers, 5U);  // one per server thread, one for background threads
  ASSERT_GE(mapped.resource.attributes.size(), 2U);
  EXPECT_EQ(mapped.resource.attributes[0], (std::pair<std::string, std::string>{"service.name", "gatewayz-api"}));
  EXPECT_EQ(mapped.resource.attributes[1], (std::pair<std::string, std::string>{"service.version", "1.2.3"}));
  // A traces endpoint is used as is.
  config::tracing_config custom;
  custom.traces_endpoint = "https://otlp.example/api/traces";
  EXPECT_EQ(tracing_options(custom, 1, "x").url, "https://otlp.example/api/traces");
}

TEST(OptionsTest, AnOpenGatewayOffLoopbackIsWarnedAbout) {
  config::gateway_config cfg;  // auth.mode none on 127.0.0.1
  EXPECT_FALSE(open_gateway_warning(cfg));
  for (const char* host : {"127.0.0.2", "::1"}) {
    cfg.server.host = host;
    EXPECT_FALSE(open_gateway_warning(cfg)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.1.2.3", "::ffff:10.1.2.3"}) {
    cfg.server.host = host;
    const auto warning = open_gateway_warning(cfg);
    ASSERT_TRUE(warning) << host;
    EXPECT_NE(warning->find("auth.mode is none"), std::string::npos) << *warning;
    EXPECT_NE(warning->find("/admin/"), std::string::npos) << *warning;
    EXPECT_NE(warning->find(host), std::string::npos) << *warning;
  }
  cfg.auth.mode = "keys";
  EXPECT_FALSE(open_gateway_warning(cfg));
}

}  // namespace
}  // namespace gatewayz::app

namespace gatewayz::app {
namespace {

TEST(OptionsTest, DefaultLoggingMapsToTheLoggersDefaults) {
  const logging::logger_options defaults;
  const auto mapped = logger_options(config::logging_config{}, 3);
  EXPECT_EQ(mapped.min_level, defaults.min_level);
  EXPECT_EQ(mapped.format, defaults.format);
  EXPECT_EQ(mapped.redact_emails, defaults.redact_emails);
  EXPECT_EQ(mapped.shards, 3U);
  EXPECT_FALSE(mapped.loki.has_value());
}

TEST(OptionsTest, LokiSettingsAndStreamLabelsCarryOver) {
  config::logging_config cfg;
  cfg.app = "a";
  cfg.env = "e";
  cfg.service = "s";
  cfg.loki.url = "http://127.0.0.1:3100/loki/api/v1/push";
  cfg.loki.flush_interval_ms = 123;
  const logging::loki_options defaults;
  const auto mapped = logger_options(cfg, 1);
  ASSERT_TRUE(mapped.loki.has_value());
  EXPECT_EQ(mapped.loki->url, cfg.loki.url);
  EXPECT_EQ(mapped.loki->flush_interval.count(), 123);
  EXPECT_EQ(mapped.loki->batch_max_bytes, defaults.batch_max_bytes);
  EXPECT_EQ(mapped.loki->queue_max_records, defaults.queue_max_records);
  EXPECT_EQ(mapped.loki->app + mapped.loki->env + mapped.loki->service, "aes");
}

}  // namespace
}  // namespace gatewayz::app

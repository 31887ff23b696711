#pragma once
// The one mapping from the typed config to the modules' option structs. Each
// default is written once, in config.hpp; tests/app/options_test.cpp proves
// that a default config maps to the modules' own defaults, so a module used
// without a config behaves as a configured gateway does.

#include <optional>
#include <string>

#include "auth/authenticator.hpp"
#include "config/config.hpp"
#include "health/health.hpp"
#include "ledger/ledger_writer.hpp"
#include "logging/log.hpp"
#include "redis/client.hpp"
#include "tracing/exporter.hpp"
#include "tracing/sampler.hpp"

namespace gatewayz::app {

// Health windows, breakers and one provider_info per configured provider
// (probe intervals kept only when `active_probes`).
health::options health_options(const config::gateway_config& cfg, bool active_probes);
ledger::writer_options ledger_options(const config::storage_config& storage);

// redis: → the client's options (the URL was validated when the config loaded;
// throws std::invalid_argument, without the URL, if it does not parse).
redis::client_options redis_options(const config::redis_config& redis);
auth::auth_options auth_options(const config::auth_config& auth);
// The logger of `gatewayz serve`; `shards`: the server threads.
logging::logger_options logger_options(const config::logging_config& logging, std::size_t shards);
// The exporter's settings: URL (traces_endpoint as is, else otlp_endpoint +
// /v1/traces), encoding, batching, and the resource (service.name,
// service.version = `version`, deployment.environment, the rest). One
// producer per server thread plus one for background threads.
tracing::exporter_options tracing_options(const config::tracing_config& tracing, unsigned threads,
                                          std::string_view version);
tracing::sampler tracing_sampler(const config::tracing_config& tracing);

// The warning `gatewayz serve` and `check-config` print when anyone who can
// reach the listen address may use the gateway and its admin API: auth.mode
// none on an address that is not loopback. nullopt otherwise.
std::optional<std::string> open_gateway_warning(const config::gateway_config& cfg);

}  // namespace gatewayz::app

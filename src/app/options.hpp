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

namespace gatewayz::app {

// Health windows, breakers and one provider_info per configured provider
// (probe intervals kept only when `active_probes`).
health::options health_options(const config::gateway_config& cfg, bool active_probes);
ledger::writer_options ledger_options(const config::storage_config& storage);
auth::auth_options auth_options(const config::auth_config& auth);
// The logger of `gatewayz serve`; `shards`: the server threads.
logging::logger_options logger_options(const config::logging_config& logging, std::size_t shards);

// The warning `gatewayz serve` and `check-config` print when anyone who can
// reach the listen address may use the gateway and its admin API: auth.mode
// none on an address that is not loopback. nullopt otherwise.
std::optional<std::string> open_gateway_warning(const config::gateway_config& cfg);

}  // namespace gatewayz::app

#pragma once
// Operator commands that manage customers, credits and API keys in the store
// named by a config file's storage.url:
//
//   gatewayz keys create --customer NAME [--credits USD] --config FILE
//   gatewayz keys list --config FILE
//   gatewayz keys revoke ID --config FILE
//   gatewayz customers credit NAME USD --config FILE
//
// `keys create` prints the new key alone on the last line of stdout (scripts
// take `tail -n 1`); it is shown once and stored only as a hash. No command
// ever prints a key afterwards: listings show the display prefix.
//
// Amounts are decimal USD parsed exactly into integer nano-dollars (at most 9
// decimals), never through a float.
//
// Exit codes: 0 done, 1 the operation failed (store error, unknown customer or
// key), 2 invalid config or amount.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "store/money.hpp"
#include "store/store.hpp"

namespace gatewayz::app {

struct admin_cli_state {
  std::string config_path;
  std::string customer;
  std::string credits = "0";
  std::int64_t key_id = 0;
  std::string amount;

  CLI::App* keys_create = nullptr;
  CLI::App* keys_list = nullptr;
  CLI::App* keys_revoke = nullptr;
  CLI::App* customers_credit = nullptr;
};

// Adds the `keys` and `customers` subcommands to `app`; `state` receives
// their arguments and must outlive parsing and run_admin_commands.
void add_admin_commands(CLI::App& app, admin_cli_state& state);

// After parsing: runs the admin command that was given and returns its exit
// code, or nullopt when none was (the caller goes on with its own commands).
std::optional<int> run_admin_commands(const admin_cli_state& state);

using store::format_usd;
using store::nanos_usd;
using store::parse_usd;

}  // namespace gatewayz::app

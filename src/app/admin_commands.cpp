#include "app/admin_commands.hpp"

#include <algorithm>
#include <ctime>
#include <iostream>
#include <limits>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "config/config.hpp"
#include "store/open_store.hpp"

namespace gatewayz::app {

namespace {

// Opens (and migrates) the store named by the config, or explains why not.
std::unique_ptr<store::store> open_configured_store(const std::string& config_path) {
  auto loaded = config::load_config_file(config_path, config::process_env());
  if (!loaded.errors.empty()) {
    std::cerr << fmt::format("{}: invalid configuration\n{}", config_path, config::format_errors(loaded.errors));
    return nullptr;
  }
  // open_store's errors never contain the URL (it may carry a password).
  auto opened = store::open_store(loaded.config->storage.url, nullptr);
  opened->migrate();
  return opened;
}

std::string format_time(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  if (gmtime_r(&seconds, &utc) == nullptr) return std::to_string(unix_ms);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(text, n);
}

// Adds `amount` to the customer's balance and returns the new balance, or
// reports a result outside the store's range against `option` (exit 2).
std::optional<nanos_usd> credit_in_range(store::store& db, std::int64_t customer_id, nanos_usd amount,
                                         std::string_view option) {
  try {
    return db.credit(customer_id, amount);
  } catch (const store::balance_out_of_range& e) {
    std::cerr << fmt::format("{}: {}\n", option, e.what());
    return std::nullopt;
  }
}

int keys_create(const admin_cli_state& state) {
  if (state.customer.empty()) {
    std::cerr << "--customer: must not be empty\n";
    return 2;
  }
  std::string why;
  const auto credits = parse_usd(state.credits, false, why);
  if (!credits) {
    std::cerr << fmt::format("--credits: {}\n", why);
    return 2;
  }
  auto db = open_configured_store(state.config_path);
  if (!db) return 2;
  auto customer = db->find_customer(state.customer);
  if (!customer) {
    try {
      customer = db->create_customer(state.customer, *credits);
    } catch (const store::balance_out_of_range& e) {
      std::cerr << fmt::format("--credits: {}\n", e.what());
      return 2;
    }
    std::cout << fmt::format("created customer {} (id {}) with balance {} USD\n", customer->name, customer->id,
                             format_usd(customer->balance));
  } else if (*credits != 0) {
    const auto balance = credit_in_range(*db, customer->id, *credits, "--credits");
    if (!balance) return 2;
    std::cout << fmt::format("customer {} (id {}): credited {} USD, balance {} USD\n", customer->name, customer->id,
                             format_usd(*credits), format_usd(*balance));
  } else {
    std::cout << fmt::format("customer {} (id {}): balance {} USD\n", customer->name, customer->id,
                             format_usd(customer->balance));
  }
  const auto key = db->create_key(customer->id);
  std::cout << fmt::format("created key {} ({}) for {}; it is shown only once, on the next line:\n", key.info.id,
                           key.info.prefix, customer->name);
  std::cout << key.secret << '\n' << std::flush;
  return 0;
}

int keys_list(const admin_cli_state& state) {
  auto db = open_configured_store(state.config_path);
  if (!db) return 2;
  const auto keys = db->list_keys();
  struct line {
    std::string id, customer, prefix, revoked, created;
  };
  std::vector<line> lines{{"ID", "CUSTOMER", "PREFIX", "REVOKED", "CREATED"}};
  for (const auto& k : keys) {
    lines.push_back(
        {std::to_string(k.id), k.customer_name, k.prefix, k.revoked ? "yes" : "no", format_time(k.created_unix_ms)});
  }
  std::size_t w_id = 0, w_customer = 0, w_prefix = 0, w_revoked = 0;
  for (const auto& l : lines) {
    w_id = std::max(w_id, l.id.size());
    w_customer = std::max(w_customer, l.customer.size());
    w_prefix = std::max(w_prefix, l.prefix.size());
    w_revoked = std::max(w_revoked, l.revoked.size());
  }
  for (const auto& l : lines) {
    std::cout << fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", l.id, w_id, l.customer, w_customer, l.prefix,
                             w_prefix, l.revoked, w_revoked, l.created);
  }
  return 0;
}

int keys_revoke(const admin_cli_state& state) {
  auto db = open_configured_store(state.config_path);
  if (!db) return 2;
  if (!db->revoke_key(state.key_id)) {
    std::cerr << fmt::format("no active key with id {} (unknown or already revoked)\n", state.key_id);
    return 1;
  }
  std::cout << fmt::format("revoked key {}\n", state.key_id);
  return 0;
}

int customers_credit(const admin_cli_state& state) {
  std::string why;
  const auto amount = parse_usd(state.amount, true, why);
  if (!amount) {
    std::cerr << fmt::format("USD: {}\n", why);
    return 2;
  }
  auto db = open_configured_store(state.config_path);
  if (!db) return 2;
  const auto customer = db->find_customer(state.customer);
  if (!customer) {
    std::cerr << fmt::format("no customer named {}\n", state.customer);
    return 1;
  }
  const auto balance = credit_in_range(*db, customer->id, *amount, "USD");
  if (!balance) return 2;
  std::cout << fmt::format("{}: balance {} USD\n", customer->name, format_usd(*balance));
  return 0;
}

}  // namespace

void add_admin_commands(CLI::App& app, admin_cli_state& state) {
  auto* keys = app.add_subcommand("keys", "Create, list and revoke API keys");
  keys->require_subcommand(1);

  state.keys_create = keys->add_subcommand("create", "Create an API key (and the customer if new)");
  state.keys_create->add_option("--customer", state.customer, "customer name")->required();
  state.keys_create->add_option("--credits", state.credits, "USD to add to the customer's balance")
      ->capture_default_str();
  state.keys_create->add_option("-c,--config", state.config_path, "YAML config file (storage.url)")->required();

  state.keys_list = keys->add_subcommand("list", "List API keys (never the keys themselves)");
  state.keys_list->add_option("-c,--config", state.config_path, "YAML config file (storage.url)")->required();

  state.keys_revoke = keys->add_subcommand("revoke", "Revoke an API key");
  state.keys_revoke->add_option("id", state.key_id, "key id (from keys list)")->required();
  state.keys_revoke->add_option("-c,--config", state.config_path, "YAML config file (storage.url)")->required();

  auto* customers = app.add_subcommand("customers", "Manage customers' credit");
  customers->require_subcommand(1);
  state.customers_credit =
      customers->add_subcommand("credit", "Add USD to a customer's balance (negative removes) and print it");
  state.customers_credit->add_option("name", state.customer, "customer name")->required();
  state.customers_credit->add_option("usd", state.amount, "amount in USD, up to 9 decimals")->required();
  state.customers_credit->add_option("-c,--config", state.config_path, "YAML config file (storage.url)")->required();
}

std::optional<int> run_admin_commands(const admin_cli_state& state) {
  try {
    if (state.keys_create != nullptr && state.keys_create->parsed()) return keys_create(state);
    if (state.keys_list != nullptr && state.keys_list->parsed()) return keys_list(state);
    if (state.keys_revoke != nullptr && state.keys_revoke->parsed()) return keys_revoke(state);
    if (state.customers_credit != nullptr && state.customers_credit->parsed()) return customers_credit(state);
  } catch (const store::store_error& e) {
    std::cerr << "gatewayz: " << e.what() << '\n';
    return 1;
  }
  return std::nullopt;
}

}  // namespace gatewayz::app

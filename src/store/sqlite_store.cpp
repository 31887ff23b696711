// SQLite backend (store/sqlite_store.hpp): the embedded default for a single
// gateway instance.
//
// This file: the store's construction, its customer, key and stats queries,
// and open_sqlite_store. sqlite_internal.hpp lists the other files and states
// the backend's thread, checkpoint and failure contracts.

#include "store/sqlite_store.hpp"

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite_internal.hpp"
#include "store/store_common.hpp"

namespace gatewayz::store::detail::sqlite {

sqlite_store::sqlite_store(std::string path, telemetry::catalog* metrics, const sqlite_options& options)
    : metrics_(metrics),
      checkpoints_(has_wal_file(path) ? std::make_unique<wal_checkpointer>(path, options, metrics_) : nullptr),
      pool_(std::move(path), checkpoints_.get()) {
  // Opening once here reports a bad path at start rather than on first use.
  auto conn = pool_.acquire();
}

bool sqlite_store::ping() noexcept {
  try {
    query_timer timer(metrics_, "ping");
    auto conn = pool_.acquire();
    auto st = conn->prepare("SELECT 1");
    return st.step() && st.int64(0) == 1;
  } catch (...) {
    return false;
  }
}

customer sqlite_store::create_customer(std::string_view name, nanos_usd initial_credit) {
  query_timer timer(metrics_, "create_customer");
  check_credit_amount(initial_credit);
  auto conn = pool_.acquire();
  customer c{0, std::string(name), initial_credit, now_unix_ms()};
  auto st = conn->prepare(
      "INSERT INTO customers (name, balance_nanos, created_unix_ms) VALUES (?1, ?2, ?3)"
      " ON CONFLICT (name) DO NOTHING RETURNING id");
  st.bind(1, name).bind(2, initial_credit).bind(3, c.created_unix_ms);
  if (!st.step()) throw store_error(fmt::format("sqlite: customer '{}' already exists", name));
  c.id = st.int64(0);
  return c;
}

std::optional<customer> sqlite_store::find_customer(std::string_view name) {
  query_timer timer(metrics_, "find_customer");
  auto conn = pool_.acquire();
  auto st = conn->prepare("SELECT id, name, balance_nanos, created_unix_ms FROM customers WHERE name = ?1");
  st.bind(1, name);
  if (!st.step()) return std::nullopt;
  return customer{st.int64(0), st.text(1), st.int64(2), st.int64(3)};
}

std::vector<customer> sqlite_store::list_customers() {
  query_timer timer(metrics_, "list_customers");
  auto conn = pool_.acquire();
  auto st = conn->prepare("SELECT id, name, balance_nanos, created_unix_ms FROM customers ORDER BY id");
  std::vector<customer> out;
  while (st.step()) out.push_back(customer{st.int64(0), st.text(1), st.int64(2), st.int64(3)});
  return out;
}

nanos_usd sqlite_store::credit(std::int64_t customer_id, nanos_usd amount) {
  query_timer timer(metrics_, "credit");
  check_credit_amount(amount);
  auto conn = pool_.acquire();
  // The range check is in the update's own statement (one transaction), so
  // concurrent credits are checked against each other's results. Both terms
  // are within ±1e18, so the sum cannot overflow into a REAL.
  auto st = conn->prepare(
      "UPDATE customers SET balance_nanos = balance_nanos + ?1"
      " WHERE id = ?2 AND balance_nanos + ?1 BETWEEN ?3 AND ?4 RETURNING balance_nanos");
  st.bind(1, amount).bind(2, customer_id).bind(3, -max_balance_nanos).bind(4, max_balance_nanos);
  if (st.step()) return st.int64(0);
  // Nothing changed: find out why, for the message.
  auto current = conn->prepare("SELECT balance_nanos FROM customers WHERE id = ?1");
  current.bind(1, customer_id);
  if (!current.step()) throw store_error(fmt::format("sqlite: no customer with id {}", customer_id));
  throw balance_range_error(current.int64(0), amount);
}

created_key sqlite_store::create_key(std::int64_t customer_id) {
  query_timer timer(metrics_, "create_key");
  auto conn = pool_.acquire();
  created_key key;
  key.secret = generate_key_secret();
  key.info.customer_id = customer_id;
  key.info.prefix = key_display_prefix(key.secret);
  key.info.created_unix_ms = now_unix_ms();
  // One statement: the key is created only if the customer exists.
  auto st = conn->prepare(
      "INSERT INTO api_keys (customer_id, key_hash, prefix, revoked, created_unix_ms)"
      " SELECT id, ?2, ?3, 0, ?4 FROM customers WHERE id = ?1"
      " RETURNING id, (SELECT name FROM customers WHERE id = ?1)");
  st.bind(1, customer_id).bind(2, sha256_hex(key.secret)).bind(3, key.info.prefix).bind(4, key.info.created_unix_ms);
  if (!st.step()) throw store_error(fmt::format("sqlite: no customer with id {}", customer_id));
  key.info.id = st.int64(0);
  key.info.customer_name = st.text(1);
  return key;
}

std::vector<api_key_info> sqlite_store::list_keys() {
  query_timer timer(metrics_, "list_keys");
  auto conn = pool_.acquire();
  auto st = conn->prepare(
      "SELECT k.id, k.customer_id, c.name, k.prefix, k.revoked, k.created_unix_ms"
      " FROM api_keys k JOIN customers c ON c.id = k.customer_id ORDER BY k.id");
  std::vector<api_key_info> out;
  while (st.step()) {
    out.push_back(api_key_info{st.int64(0), st.int64(1), st.text(2), st.text(3), st.int64(4) != 0, st.int64(5)});
  }
  return out;
}

bool sqlite_store::revoke_key(std::int64_t key_id) {
  query_timer timer(metrics_, "revoke_key");
  auto conn = pool_.acquire();
  conn->prepare("UPDATE api_keys SET revoked = 1 WHERE id = ?1 AND revoked = 0").bind(1, key_id).run();
  return conn->changes() > 0;
}

std::optional<key_lookup> sqlite_store::find_key(std::string_view secret) {
  query_timer timer(metrics_, "find_key");
  auto conn = pool_.acquire();
  auto st = conn->prepare(
      "SELECT k.id, k.customer_id, k.revoked, c.balance_nanos"
      " FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE k.key_hash = ?1");
  st.bind(1, sha256_hex(secret));
  if (!st.step()) return std::nullopt;
  return key_lookup{st.int64(0), st.int64(1), st.int64(2) != 0, st.int64(3)};
}

std::vector<model_stats> sqlite_store::stats(std::chrono::seconds window) {
  query_timer timer(metrics_, "stats");
  const std::int64_t first_minute = first_minute_of_window(now_unix_ms(), window);
  auto conn = pool_.acquire();
  // One read transaction: sums and buckets come from the same snapshot.
  transaction tx(*conn, transaction::kind::read);
  stats_by_model merged;
  {
    auto st = conn->prepare(
        "SELECT model, provider, SUM(requests), SUM(successes), SUM(failures), SUM(latency_sum_ms), SUM(tokens),"
        " SUM(cost_nanos) FROM rollup_minutes WHERE minute >= ?1 GROUP BY model, provider");
    st.bind(1, first_minute);
    while (st.step()) {
      auto& acc = merged[{st.text(0), st.text(1)}];
      acc.sums = rollup_sums{st.int64(2), st.int64(3), st.int64(4), st.real(5), st.int64(6), st.int64(7)};
    }
  }
  {
    auto st = conn->prepare(
        "SELECT model, provider, bucket, SUM(count) FROM rollup_latency_buckets WHERE minute >= ?1"
        " GROUP BY model, provider, bucket");
    st.bind(1, first_minute);
    while (st.step()) merged[{st.text(0), st.text(1)}].buckets[static_cast<int>(st.int64(2))] += st.int64(3);
  }
  tx.commit();
  return finish_stats(merged);
}

}  // namespace gatewayz::store::detail::sqlite

namespace gatewayz::store {

std::unique_ptr<store> open_sqlite_store(std::string_view url, telemetry::catalog* metrics,
                                         const sqlite_options& options) {
  constexpr std::string_view scheme = "sqlite://";
  std::string path(url.substr(scheme.size()));
  if (path.empty())
    throw store_error("sqlite: the URL names no database file (sqlite:///abs/path.db or sqlite://./rel.db)");
  return std::make_unique<detail::sqlite::sqlite_store>(std::move(path), metrics, options);
}

}  // namespace gatewayz::store

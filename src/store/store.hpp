#pragma once
// The persistent store: customers, API keys, credits, the usage ledger and
// per-minute rollups behind GET /models/stats.
//
// One interface, two backends, each in its own library so that code written
// against this interface links neither SQLite nor libpq; open_store
// (store/open_store.hpp) picks one by URL:
//   sqlite:///abs/path.db  or  sqlite://./relative.db   (embedded default, WAL mode)
//   postgres://user:pass@host:port/db                   (shared by several gateway instances)
//
// Money is integer nano-dollars (1e-9 USD) everywhere, so sums are exact and
// a balance never drifts by float rounding: with prices in USD per million
// tokens, cost_nanos = tokens * price_per_million * 1000.
//
// Thread safety: every method may be called from any thread, concurrently.
// Methods do blocking I/O: call them from background threads, the CLI, or
// (for lookups on a cache miss) sparingly. Failures throw store_error.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gatewayz::store {

using nanos_usd = std::int64_t;

inline constexpr nanos_usd nanos_per_usd = 1'000'000'000;

// The range of a credit amount and of the balance a credit leaves: at most
// one billion USD either way (1e18 nano-USD). Far inside int64's ±9.2e18, so
// neither the sum of a balance and an amount nor the usage debited from a
// balance later can overflow (SQLite would store an overflowing sum as a
// float, PostgreSQL would fail the statement).
inline constexpr nanos_usd max_balance_usd = 1'000'000'000;
inline constexpr nanos_usd max_balance_nanos = max_balance_usd * nanos_per_usd;

class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A credit (or a new customer's initial credit) refused because the amount
// or the balance it would leave is outside ±max_balance_nanos. Nothing was
// changed.
class balance_out_of_range : public store_error {
 public:
  using store_error::store_error;
};

struct customer {
  std::int64_t id = 0;
  std::string name;
  nanos_usd balance = 0;
  std::int64_t created_unix_ms = 0;
};

struct api_key_info {
  std::int64_t id = 0;
  std::int64_t customer_id = 0;
  std::string customer_name;
  std::string prefix;  // the first characters of the key, safe to display ("gwz_ab12")
  bool revoked = false;
  std::int64_t created_unix_ms = 0;
};

// What authentication needs about a key, found by the key's hash.
struct key_lookup {
  std::int64_t key_id = 0;
  std::int64_t customer_id = 0;
  bool revoked = false;
  nanos_usd balance = 0;  // the customer's balance at lookup time
};

// A newly created key: `secret` is shown once and never stored.
struct created_key {
  api_key_info info;
  std::string secret;
};

// One row per accepted request.
struct ledger_row {
  std::string request_id;
  std::int64_t unix_ms = 0;                 // when the request arrived
  std::optional<std::int64_t> customer_id;  // empty with auth.mode none
  std::optional<std::int64_t> key_id;
  std::string model;
  std::string provider;  // the provider that served it (last tried if none did)
  std::uint32_t attempts = 0;
  std::string status;  // "success" | "error"
  std::uint32_t http_status = 0;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  nanos_usd cost = 0;  // debited from the customer when customer_id is set
  double latency_ms = 0.0;
  std::optional<double> ttft_ms;  // streams only
  bool streamed = false;
};

// One (model, provider) line of GET /models/stats.
struct model_stats {
  std::string model;
  std::string provider;
  std::int64_t total_requests = 0;
  std::int64_t successful_requests = 0;
  std::int64_t failed_requests = 0;
  double avg_latency_ms = 0.0;
  double p95_latency_ms = 0.0;
  double p99_latency_ms = 0.0;
  std::int64_t total_tokens = 0;
  nanos_usd total_cost = 0;
  double uptime_percentage = 100.0;
};

class store {
 public:
  virtual ~store() = default;

  // "sqlite" or "postgres".
  virtual std::string_view backend() const = 0;

  // Creates the schema or migrates it to the current version (idempotent,
  // safe when several instances start at once).
  virtual void migrate() = 0;
  // A cheap round trip, for /health. Never throws.
  virtual bool ping() noexcept = 0;

  // Customers and credits. Both throw balance_out_of_range when the amount
  // or the resulting balance is outside ±max_balance_nanos; the check is part
  // of the same statement as the update, so concurrent credits cannot pass it
  // together.
  virtual customer create_customer(std::string_view name, nanos_usd initial_credit) = 0;
  virtual std::optional<customer> find_customer(std::string_view name) = 0;
  virtual std::vector<customer> list_customers() = 0;
  // Adds (or with a negative amount removes) credit atomically; returns the new balance.
  virtual nanos_usd credit(std::int64_t customer_id, nanos_usd amount) = 0;

  // API keys. Keys are stored only as SHA-256 hashes.
  virtual created_key create_key(std::int64_t customer_id) = 0;
  virtual std::vector<api_key_info> list_keys() = 0;
  // True if the key existed and was not already revoked.
  virtual bool revoke_key(std::int64_t key_id) = 0;
  virtual std::optional<key_lookup> find_key(std::string_view secret) = 0;

  // Writes a batch of ledger rows in one transaction: inserts each row
  // (a request id already present is skipped, so replaying a batch is
  // harmless), debits each customer by the cost of its newly inserted rows,
  // and adds the new rows to the per-minute rollups. All or nothing.
  // Returns how many rows were new.
  //
  // `pause` (may be empty) is called between groups of rows inside the
  // transaction, with the number of rows written so far; the caller may give
  // its core away for a moment there. The ledger writer shares cores with
  // request serving, and one long transaction costs less per row than many
  // short ones (WAL frames and rollup upserts per commit). A backend whose
  // work runs elsewhere (the PostgreSQL server) need not call it. The write
  // lock is held through the pauses, and the write_ledger query duration
  // (database_query_duration_seconds) includes them.
  using ledger_pause = std::function<void(std::size_t rows_written)>;
  std::size_t write_ledger(const std::vector<ledger_row>& rows) {
    return write_ledger(std::span<const ledger_row>(rows), ledger_pause{});
  }
  virtual std::size_t write_ledger(std::span<const ledger_row> rows, const ledger_pause& pause) = 0;

  // Ledger rows of one request, for tests and audits.
  virtual std::optional<ledger_row> find_ledger_row(std::string_view request_id) = 0;
  virtual std::int64_t count_ledger_rows() = 0;

  // Aggregates over the rollups of the last `window` (whole minutes).
  virtual std::vector<model_stats> stats(std::chrono::seconds window) = 0;
};

}  // namespace gatewayz::store

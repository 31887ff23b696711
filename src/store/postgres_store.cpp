// PostgreSQL backend: one database shared by several gateway instances.
//
// Connections come from a small pool (its mutex is held only to take or
// return one). A connection is checked when taken: an idle connection that
// has anything to read was closed or told to go away by the server (a
// restart sends a termination notice and closes the socket), so it is
// replaced by a new one instead of failing the caller's first query. A
// connection that broke during a call is dropped when returned. Nothing
// hangs forever: connect_timeout bounds connecting, statement_timeout and
// lock_timeout bound statements, TCP keepalives and tcp_user_timeout bound a
// silent network, and waiting for a free pooled connection is bounded too.
// Every failure becomes store_error.
//
// Concurrency between instances is left to SQL: balances and rollups change
// only through `x = x + delta` statements, and a write_ledger transaction
// touches customers and rollup rows in sorted order, so two instances
// writing at once neither lose updates nor deadlock each other (a deadlock or
// serialization failure that still happens is retried).

#include "store/postgres_store.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <mutex>
#include <unordered_map>

#include "store/postgres_migrations.hpp"
#include "store/store_common.hpp"

namespace gatewayz::store::detail {
namespace {

constexpr std::size_t max_connections = 8;
constexpr auto pool_wait_limit = std::chrono::seconds(20);
constexpr int write_attempts = 4;
// Any constant: instances take this advisory lock around each migration.
constexpr std::int64_t migration_lock_id = 0x67617465'77617a31;  // "gatewaz1"

// A failed query or connection. sqlstate is empty for connection failures.
class pg_error : public store_error {
 public:
  pg_error(const std::string& message, std::string sqlstate) : store_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// The password of a postgres:// URL, so it can be cut out of any message.
std::string password_of(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  const auto at = rest.rfind('@');
  if (at == std::string_view::npos) return {};
  const std::string_view userinfo = rest.substr(0, at);
  const auto colon = userinfo.find(':');
  return colon == std::string_view::npos ? std::string{} : std::string(userinfo.substr(colon + 1));
}

std::string scrubbed(std::string message, const std::string& password) {
  if (!password.empty()) {
    for (auto pos = message.find(password); pos != std::string::npos; pos = message.find(password, pos)) {
      message.replace(pos, password.size(), "***");
    }
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

struct result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

// A query result with typed accessors over libpq's text format.
class result {
 public:
  explicit result(result_ptr r) : r_(std::move(r)) {}
  int rows() const { return PQntuples(r_.get()); }
  bool is_null(int row, int column) const { return PQgetisnull(r_.get(), row, column) != 0; }
  std::string text(int row, int column) const {
    return std::string(PQgetvalue(r_.get(), row, column), static_cast<std::size_t>(PQgetlength(r_.get(), row, column)));
  }
  // Valid while this result lives.
  std::string_view view(int row, int column) const {
    return {PQgetvalue(r_.get(), row, column), static_cast<std::size_t>(PQgetlength(r_.get(), row, column))};
  }
  std::int64_t int64(int row, int column) const { return std::strtoll(PQgetvalue(r_.get(), row, column), nullptr, 10); }
  double real(int row, int column) const { return std::strtod(PQgetvalue(r_.get(), row, column), nullptr); }
  bool boolean(int row, int column) const { return PQgetvalue(r_.get(), row, column)[0] == 't'; }

 private:
  result_ptr r_;
};

// Text-format parameters for one statement.
class params {
 public:
  params& add(std::int64_t v) { return add_text(std::to_string(v)); }
  params& add(std::string_view v) { return add_text(std::string(v)); }
  params& add_text(std::string v) {
    values_.emplace_back(std::move(v));
    return *this;
  }
  std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }
  int size() const { return static_cast<int>(values_.size()); }

 private:
  std::vector<std::optional<std::string>> values_;
};

// Builders for PostgreSQL array literals, so a whole batch travels as one
// parameter per column and is expanded with unnest() in one round trip.
class array_literal {
 public:
  // Elements are formatted straight into the literal: a batch has thousands
  // of rows, and the writer thread's CPU is shared with request serving.
  void add(std::int64_t v) {
    separate();
    fmt::format_to(std::back_inserter(body_), "{}", v);
  }
  void add(double v) {
    separate();
    fmt::format_to(std::back_inserter(body_), "{}", v);
  }
  void add(bool v) {
    separate();
    body_ += v ? 't' : 'f';
  }
  void add(std::string_view v) {
    separate();
    body_ += '"';
    for (const char c : v) {
      if (c == '"' || c == '\\') body_ += '\\';
      body_ += c;
    }
    body_ += '"';
  }
  template <typename T>
  void add(const std::optional<T>& v) {
    if (v) {
      add(*v);
    } else {
      separate();
      body_ += "NULL";
    }
  }
  std::string finish() {
    body_ += '}';
    return std::move(body_);
  }

 private:
  void separate() {
    if (body_.size() > 1) body_ += ',';  // past the opening brace
  }
  std::string body_ = "{";
};

class connection {
 public:
  connection(PGconn* conn, const std::string& password) : conn_(conn), password_(password) {}
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() { PQfinish(conn_); }

  // Runs a statement prepared once per connection (keyed by the SQL
  // literal's address).
  result exec(const char* sql, const params& p = {}) {
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
      std::string name = "gwz_" + std::to_string(prepared_.size());
      check(result_ptr(PQprepare(conn_, name.c_str(), sql, 0, nullptr)), "prepare");
      it = prepared_.emplace(sql, std::move(name)).first;
    }
    const auto values = p.pointers();
    return check(result_ptr(PQexecPrepared(conn_, it->second.c_str(), p.size(), values.data(), nullptr, nullptr, 0)),
                 "query");
  }

  // Runs SQL text without parameters (transaction control, migrations).
  result exec_text(const char* sql) { return check(result_ptr(PQexec(conn_, sql)), "query"); }

  // True when the connection looks usable: open, outside any transaction,
  // and with nothing unsolicited waiting to be read (an idle connection
  // that is readable was closed or terminated by the server).
  bool looks_healthy() const {
    if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 0);
    return ready == 0;
  }
  bool reusable() const { return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

 private:
  result check(result_ptr r, std::string_view what) {
    const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result(std::move(r));
    std::string sqlstate;
    if (r) {
      const char* code = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
      if (code != nullptr) sqlstate = code;
    }
    const char* message = r ? PQresultErrorMessage(r.get()) : "";
    if (message == nullptr || *message == '\0') message = PQerrorMessage(conn_);
    throw pg_error(fmt::format("postgres: {} failed: {}", what, scrubbed(message, password_)), sqlstate);
  }

  PGconn* conn_;
  const std::string& password_;
  std::unordered_map<const char*, std::string> prepared_;
};

class connection_pool {
 public:
  explicit connection_pool(std::string url) : url_(std::move(url)), password_(password_of(url_)) {}

  class lease {
   public:
    lease(connection_pool& pool, std::unique_ptr<connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { pool_.give_back(std::move(conn_)); }
    connection* operator->() { return conn_.get(); }
    connection& operator*() { return *conn_; }

   private:
    connection_pool& pool_;
    std::unique_ptr<connection> conn_;
  };

  lease acquire() {
    std::unique_lock lock(mu_);
    const bool got_slot =
        available_.wait_for(lock, pool_wait_limit, [&] { return !idle_.empty() || open_ < max_connections; });
    if (!got_slot) throw store_error("postgres: no free pooled connection within 20 s");
    while (!idle_.empty()) {
      auto conn = std::move(idle_.front());
      idle_.pop_front();
      if (conn->looks_healthy()) return lease(*this, std::move(conn));
      --open_;  // dropped: the server restarted or closed it
    }
    ++open_;  // reserve the slot, then connect without holding the lock
    lock.unlock();
    try {
      return lease(*this, connect());
    } catch (...) {
      lock.lock();
      --open_;
      available_.notify_one();
      throw;
    }
  }

  const std::string& password() const { return password_; }

 private:
  std::unique_ptr<connection> connect() {
    // Defaults first: parameters in the URL's query string override them.
    const char* keywords[] = {
        "connect_timeout",     "application_name", "options",          "keepalives", "keepalives_idle",
        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname",     nullptr};
    const char* values[] = {"5",
                            "gatewayz",
                            "-c statement_timeout=15000 -c lock_timeout=10000 "
                            "-c idle_in_transaction_session_timeout=60000 -c client_min_messages=warning",
                            "1",
                            "10",
                            "3",
                            "3",
                            "15000",
                            url_.c_str(),
                            nullptr};
    PGconn* raw = PQconnectdbParams(keywords, values, 1);
    if (raw == nullptr) throw store_error("postgres: out of memory while connecting");
    if (PQstatus(raw) != CONNECTION_OK) {
      const std::string message = scrubbed(PQerrorMessage(raw), password_);
      PQfinish(raw);
      throw pg_error("postgres: cannot connect: " + message, {});
    }
    return std::make_unique<connection>(raw, password_);
  }

  void give_back(std::unique_ptr<connection> conn) {
    std::lock_guard lock(mu_);
    if (conn->reusable()) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    available_.notify_one();
  }

  std::string url_;
  std::string password_;
  std::mutex mu_;
  std::condition_variable available_;
  std::deque<std::unique_ptr<connection>> idle_;
  std::size_t open_ = 0;  // idle + leased
};

// BEGIN on construction; ROLLBACK unless commit() was reached.
class transaction {
 public:
  transaction(connection& conn, const char* begin_sql = "BEGIN") : conn_(conn) { conn_.exec_text(begin_sql); }
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction() {
    if (!done_) {
      try {
        conn_.exec_text("ROLLBACK");
      } catch (const store_error&) {
        // A broken connection: the pool drops it when it is returned.
      }
    }
  }
  void commit() {
    conn_.exec_text("COMMIT");
    done_ = true;
  }

 private:
  connection& conn_;
  bool done_ = false;
};

bool is_retryable(const pg_error& e) {
  return e.sqlstate() == "40P01" /* deadlock */ || e.sqlstate() == "40001" /* serialization */;
}

class postgres_store final : public store {
 public:
  postgres_store(std::string url, telemetry::catalog* metrics) : pool_(std::move(url)), metrics_(metrics) {
    // Connecting once here reports a wrong URL or credentials at start.
    auto conn = pool_.acquire();
  }

  std::string_view backend() const override { return "postgres"; }

  void migrate() override {
    query_timer timer(metrics_, "migrate");
    auto conn = pool_.acquire();
    for (const pg::migration& m : pg::migrations()) {
      // The advisory lock serializes instances starting at once; each then
      // re-reads the version inside the lock, so every step runs once.
      transaction tx(*conn);
      conn->exec("SELECT pg_advisory_xact_lock($1)", params().add(migration_lock_id));
      conn->exec_text(
          "CREATE TABLE IF NOT EXISTS schema_version ("
          " version INTEGER PRIMARY KEY, applied_unix_ms BIGINT NOT NULL)");
      const result current = conn->exec("SELECT COALESCE(MAX(version), 0) FROM schema_version");
      if (current.int64(0, 0) >= m.version) {
        tx.commit();
        continue;
      }
      conn->exec_text(m.sql);
      conn->exec("INSERT INTO schema_version (version, applied_unix_ms) VALUES ($1, $2)",
                 params().add(std::int64_t{m.version}).add(now_unix_ms()));
      tx.commit();
    }
  }

  bool ping() noexcept override {
    try {
      query_timer timer(metrics_, "ping");
      auto conn = pool_.acquire();
      return conn->exec("SELECT 1").int64(0, 0) == 1;
    } catch (...) {
      return false;
    }
  }

  customer create_customer(std::string_view name, nanos_usd initial_credit) override {
    query_timer timer(metrics_, "create_customer");
    check_credit_amount(initial_credit);
    auto conn = pool_.acquire();
    customer c{0, std::string(name), initial_credit, now_unix_ms()};
    const result r = conn->exec(
        "INSERT INTO customers (name, balance_nanos, created_unix_ms) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO NOTHING RETURNING id",
        params().add(name).add(initial_credit).add(c.created_unix_ms));
    if (r.rows() == 0) throw store_error(fmt::format("postgres: customer '{}' already exists", name));
    c.id = r.int64(0, 0);
    return c;
  }

  std::optional<customer> find_customer(std::string_view name) override {
    query_timer timer(metrics_, "find_customer");
    auto conn = pool_.acquire();
    const result r = conn->exec("SELECT id, name, balance_nanos, created_unix_ms FROM customers WHERE name = $1",
                                params().add(name));
    if (r.rows() == 0) return std::nullopt;
    return customer{r.int64(0, 0), r.text(0, 1), r.int64(0, 2), r.int64(0, 3)};
  }

  std::vector<customer> list_customers() override {
    query_timer timer(metrics_, "list_customers");
    auto conn = pool_.acquire();
    const result r = conn->exec("SELECT id, name, balance_nanos, created_unix_ms FROM customers ORDER BY id");
    std::vector<customer> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back(customer{r.int64(i, 0), r.text(i, 1), r.int64(i, 2), r.int64(i, 3)});
    return out;
  }

  nanos_usd credit(std::int64_t customer_id, nanos_usd amount) override {
    query_timer timer(metrics_, "credit");
    check_credit_amount(amount);
    auto conn = pool_.acquire();
    // The range check is in the update's own statement (one transaction; the
    // row lock makes a concurrent credit re-check against this result), and
    // both terms are within ±1e18, so the bigint sum cannot overflow.
    const result r = conn->exec(
        "UPDATE customers SET balance_nanos = balance_nanos + $1"
        " WHERE id = $2 AND balance_nanos + $1 BETWEEN $3 AND $4 RETURNING balance_nanos",
        params().add(amount).add(customer_id).add(-max_balance_nanos).add(max_balance_nanos));
    if (r.rows() == 1) return r.int64(0, 0);
    // Nothing changed: find out why, for the message.
    const result current = conn->exec("SELECT balance_nanos FROM customers WHERE id = $1", params().add(customer_id));
    if (current.rows() == 0) throw store_error(fmt::format("postgres: no customer with id {}", customer_id));
    throw balance_range_error(current.int64(0, 0), amount);
  }

  created_key create_key(std::int64_t customer_id) override {
    query_timer timer(metrics_, "create_key");
    auto conn = pool_.acquire();
    created_key key;
    key.secret = generate_key_secret();
    key.info.customer_id = customer_id;
    key.info.prefix = key_display_prefix(key.secret);
    key.info.created_unix_ms = now_unix_ms();
    // One statement: the key is created only if the customer exists.
    const result r = conn->exec(
        "INSERT INTO api_keys (customer_id, key_hash, prefix, revoked, created_unix_ms)"
        " SELECT id, $2, $3, false, $4 FROM customers WHERE id = $1"
        " RETURNING id, (SELECT name FROM customers WHERE id = $1)",
        params().add(customer_id).add(sha256_hex(key.secret)).add(key.info.prefix).add(key.info.created_unix_ms));
    if (r.rows() == 0) throw store_error(fmt::format("postgres: no customer with id {}", customer_id));
    key.info.id = r.int64(0, 0);
    key.info.customer_name = r.text(0, 1);
    return key;
  }

  std::vector<api_key_info> list_keys() override {
    query_timer timer(metrics_, "list_keys");
    auto conn = pool_.acquire();
    const result r = conn->exec(
        "SELECT k.id, k.customer_id, c.name, k.prefix, k.revoked, k.created_unix_ms"
        " FROM api_keys k JOIN customers c ON c.id = k.customer_id ORDER BY k.id");
    std::vector<api_key_info> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(
          api_key_info{r.int64(i, 0), r.int64(i, 1), r.text(i, 2), r.text(i, 3), r.boolean(i, 4), r.int64(i, 5)});
    }
    return out;
  }

  bool revoke_key(std::int64_t key_id) override {
    query_timer timer(metrics_, "revoke_key");
    auto conn = pool_.acquire();
    const result r = conn->exec("UPDATE api_keys SET revoked = true WHERE id = $1 AND NOT revoked RETURNING id",
                                params().add(key_id));
    return r.rows() > 0;
  }

  std::optional<key_lookup> find_key(std::string_view secret) override {
    query_timer timer(metrics_, "find_key");
    auto conn = pool_.acquire();
    const result r = conn->exec(
        "SELECT k.id, k.customer_id, k.revoked, c.balance_nanos"
        " FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE k.key_hash = $1",
        params().add(sha256_hex(secret)));
    if (r.rows() == 0) return std::nullopt;
    return key_lookup{r.int64(0, 0), r.int64(0, 1), r.boolean(0, 2), r.int64(0, 3)};
  }

  std::size_t write_ledger(std::span<const ledger_row> rows, const ledger_pause& /*pause*/) override {
    // One statement: the rows are inserted by the server, not on this thread.
    query_timer timer(metrics_, "write_ledger");
    if (rows.empty()) return 0;
    const params ledger_columns = ledger_arrays(rows);
    for (int attempt = 1;; ++attempt) {
      try {
        return write_ledger_once(rows, ledger_columns);
      } catch (const pg_error& e) {
        // Deadlocks (two instances replaying the same request ids in
        // different orders) and serialization failures are transient; the
        // whole transaction rolled back, so running it again is exact.
        if (!is_retryable(e) || attempt == write_attempts) throw;
      }
    }
  }

  std::optional<ledger_row> find_ledger_row(std::string_view request_id) override {
    query_timer timer(metrics_, "find_ledger_row");
    auto conn = pool_.acquire();
    const result r = conn->exec(
        "SELECT request_id, unix_ms, customer_id, key_id, model, provider, attempts, status, http_status,"
        " input_tokens, output_tokens, cost_nanos, latency_ms, ttft_ms, streamed FROM ledger WHERE request_id = $1",
        params().add(request_id));
    if (r.rows() == 0) return std::nullopt;
    ledger_row row;
    row.request_id = r.text(0, 0);
    row.unix_ms = r.int64(0, 1);
    if (!r.is_null(0, 2)) row.customer_id = r.int64(0, 2);
    if (!r.is_null(0, 3)) row.key_id = r.int64(0, 3);
    row.model = r.text(0, 4);
    row.provider = r.text(0, 5);
    row.attempts = static_cast<std::uint32_t>(r.int64(0, 6));
    row.status = r.text(0, 7);
    row.http_status = static_cast<std::uint32_t>(r.int64(0, 8));
    row.input_tokens = r.int64(0, 9);
    row.output_tokens = r.int64(0, 10);
    row.cost = r.int64(0, 11);
    row.latency_ms = r.real(0, 12);
    if (!r.is_null(0, 13)) row.ttft_ms = r.real(0, 13);
    row.streamed = r.boolean(0, 14);
    return row;
  }

  std::int64_t count_ledger_rows() override {
    query_timer timer(metrics_, "count_ledger_rows");
    auto conn = pool_.acquire();
    return conn->exec("SELECT COUNT(*) FROM ledger").int64(0, 0);
  }

  std::vector<model_stats> stats(std::chrono::seconds window) override {
    query_timer timer(metrics_, "stats");
    const std::int64_t first_minute = first_minute_of_window(now_unix_ms(), window);
    auto conn = pool_.acquire();
    // One snapshot for sums and buckets.
    transaction tx(*conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    stats_by_model merged;
    const result sums = conn->exec(
        "SELECT model, provider, SUM(requests), SUM(successes), SUM(failures), SUM(latency_sum_ms), SUM(tokens),"
        " SUM(cost_nanos) FROM rollup_minutes WHERE minute >= $1 GROUP BY model, provider",
        params().add(first_minute));
    for (int i = 0; i < sums.rows(); ++i) {
      merged[{sums.text(i, 0), sums.text(i, 1)}].sums = rollup_sums{
          sums.int64(i, 2), sums.int64(i, 3), sums.int64(i, 4), sums.real(i, 5), sums.int64(i, 6), sums.int64(i, 7)};
    }
    const result buckets = conn->exec(
        "SELECT model, provider, bucket, SUM(count) FROM rollup_latency_buckets WHERE minute >= $1"
        " GROUP BY model, provider, bucket",
        params().add(first_minute));
    for (int i = 0; i < buckets.rows(); ++i) {
      merged[{buckets.text(i, 0), buckets.text(i, 1)}].buckets[static_cast<int>(buckets.int64(i, 2))] +=
          buckets.int64(i, 3);
    }
    tx.commit();
    return finish_stats(merged);
  }

 private:
  // The batch as one array literal per ledger column.
  static params ledger_arrays(std::span<const ledger_row> rows) {
    // In request-id order: neighbouring inserts share index pages, and two
    // instances replaying the same rows lock them in the same order.
    const std::vector<const ledger_row*> order = rows_in_key_order(rows);
    std::vector<array_literal> columns(15);
    for (const ledger_row* row_ptr : order) {
      const ledger_row& row = *row_ptr;
      columns[0].add(std::string_view(row.request_id));
      columns[1].add(row.unix_ms);
      columns[2].add(row.customer_id);
      columns[3].add(row.key_id);
      columns[4].add(std::string_view(row.model));
      columns[5].add(std::string_view(row.provider));
      columns[6].add(std::int64_t{row.attempts});
      columns[7].add(std::string_view(row.status));
      columns[8].add(std::int64_t{row.http_status});
      columns[9].add(row.input_tokens);
      columns[10].add(row.output_tokens);
      columns[11].add(row.cost);
      columns[12].add(storable_ms(row.latency_ms));
      columns[13].add(row.ttft_ms ? std::optional<double>(storable_ms(*row.ttft_ms)) : std::nullopt);
      columns[14].add(row.streamed);
    }
    params p;
    for (auto& column : columns) p.add_text(column.finish());
    return p;
  }

  std::size_t write_ledger_once(std::span<const ledger_row> rows, const params& ledger_columns) {
    auto conn = pool_.acquire();
    transaction tx(*conn);
    // RETURNING names exactly the rows this transaction inserted; replayed
    // request ids are skipped by ON CONFLICT and change nothing else.
    const result inserted = conn->exec(
        "INSERT INTO ledger (request_id, unix_ms, customer_id, key_id, model, provider, attempts, status,"
        " http_status, input_tokens, output_tokens, cost_nanos, latency_ms, ttft_ms, streamed)"
        " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],"
        " $7::integer[], $8::text[], $9::integer[], $10::bigint[], $11::bigint[], $12::bigint[],"
        " $13::double precision[], $14::double precision[], $15::boolean[])"
        " ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
        ledger_columns);
    std::unordered_map<std::string_view, const ledger_row*> by_request_id;
    for (const ledger_row& row : rows) by_request_id.emplace(row.request_id, &row);  // first occurrence wins
    batch_effects effects;
    for (int i = 0; i < inserted.rows(); ++i) {
      const auto it = by_request_id.find(inserted.view(i, 0));
      if (it != by_request_id.end()) effects.add(*it->second);
    }

    effects.finish();

    // One statement per customer in id order: every instance locks
    // customers in the same order, and the debit is computed by the server.
    for (const auto& debit : effects.debits()) {
      conn->exec("UPDATE customers SET balance_nanos = balance_nanos - $1 WHERE id = $2",
                 params().add(debit.cost).add(debit.customer_id));
    }
    if (!effects.rollups().empty()) {
      std::vector<array_literal> columns(9);
      for (const auto& rollup : effects.rollups()) {  // sorted by key
        columns[0].add(rollup.minute);
        columns[1].add(rollup.model);
        columns[2].add(rollup.provider);
        columns[3].add(rollup.sums.requests);
        columns[4].add(rollup.sums.successes);
        columns[5].add(rollup.sums.failures);
        columns[6].add(rollup.sums.latency_sum_ms);
        columns[7].add(rollup.sums.tokens);
        columns[8].add(rollup.sums.cost);
      }
      params p;
      for (auto& column : columns) p.add_text(column.finish());
      conn->exec(
          "INSERT INTO rollup_minutes AS r (minute, model, provider, requests, successes, failures, latency_sum_ms,"
          " tokens, cost_nanos)"
          " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],"
          " $7::double precision[], $8::bigint[], $9::bigint[])"
          " ON CONFLICT (minute, model, provider) DO UPDATE SET"
          " requests = r.requests + excluded.requests, successes = r.successes + excluded.successes,"
          " failures = r.failures + excluded.failures, latency_sum_ms = r.latency_sum_ms + excluded.latency_sum_ms,"
          " tokens = r.tokens + excluded.tokens, cost_nanos = r.cost_nanos + excluded.cost_nanos",
          p);
    }
    if (!effects.buckets().empty()) {
      std::vector<array_literal> columns(5);
      for (const auto& b : effects.buckets()) {  // sorted by key, bucket
        const auto& rollup = effects.rollups()[b.rollup];
        columns[0].add(rollup.minute);
        columns[1].add(rollup.model);
        columns[2].add(rollup.provider);
        columns[3].add(std::int64_t{b.bucket});
        columns[4].add(b.count);
      }
      params p;
      for (auto& column : columns) p.add_text(column.finish());
      conn->exec(
          "INSERT INTO rollup_latency_buckets AS b (minute, model, provider, bucket, count)"
          " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::bigint[])"
          " ON CONFLICT (minute, model, provider, bucket) DO UPDATE SET count = b.count + excluded.count",
          p);
    }
    tx.commit();
    return static_cast<std::size_t>(inserted.rows());
  }

  connection_pool pool_;
  query_metrics metrics_;
};

}  // namespace
}  // namespace gatewayz::store::detail

namespace gatewayz::store {

std::unique_ptr<store> open_postgres_store(std::string_view url, telemetry::catalog* metrics) {
  return std::make_unique<detail::postgres_store>(std::string(url), metrics);
}

}  // namespace gatewayz::store

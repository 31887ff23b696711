// SQLite backend (store/sqlite_store.hpp): the embedded default for a single
// gateway instance.
//
// Threads: every method may be called from any thread, concurrently. A small
// pool of connections serves the callers, one per concurrently calling thread
// (the pool's mutex is held only to take or return a connection). WAL mode
// lets readers run alongside the single writer; write transactions start with
// BEGIN IMMEDIATE so they queue on the write lock through busy_timeout instead
// of failing when a read transaction tries to upgrade. Every connection caches
// its prepared statements.
//
// WAL checkpoints (copying committed pages from the WAL into the database
// file) do not run on the committing connection, as SQLite's autocheckpoint
// would: the ledger writer commits, and it shares its core with request
// serving. Instead every commit's WAL hook wakes wal_checkpointer, a thread
// the store owns with its own connection, running at the lowest priority
// (SCHED_BATCH, nice 19), which runs passive checkpoints (they neither take
// nor wait for the write lock). A commit that leaves more than
// sqlite_options::backstop_checkpoint_pages in the WAL checkpoints inline, so
// the WAL stays bounded when the thread falls behind. The bound is soft: while
// the thread is part-way through a checkpoint the inline one finds the
// checkpoint lock taken and the WAL grows until that checkpoint ends. Request
// threads share no lock with the checkpointer except on an API-key cache miss
// (SQLite's short shared-memory mutex, and query_metrics' mutex).
// docs/decisions/store-sqlite-ledger.md has the measurements behind this.
//
// Failures: every SQLite error a caller meets becomes store_error. A failed
// checkpoint reaches no caller; a later commit tries again.

#include "store/sqlite_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/threads.hpp"
#include "store/store_common.hpp"

namespace gatewayz::store::detail {
namespace {

constexpr int busy_timeout_ms = 10'000;
constexpr std::size_t max_idle_connections = 8;

// Ordered migrations; each is applied once, in its own transaction, and
// recorded in schema_version. Never edit a released entry: append a new one.
struct migration {
  int version;
  std::vector<const char*> statements;
};

const std::vector<migration>& migrations() {
  static const std::vector<migration> list{
      {1,
       {
           R"sql(CREATE TABLE customers (
                   id INTEGER PRIMARY KEY,
                   name TEXT NOT NULL UNIQUE,
                   balance_nanos INTEGER NOT NULL,
                   created_unix_ms INTEGER NOT NULL))sql",
           R"sql(CREATE TABLE api_keys (
                   id INTEGER PRIMARY KEY,
                   customer_id INTEGER NOT NULL REFERENCES customers(id),
                   key_hash TEXT NOT NULL UNIQUE,
                   prefix TEXT NOT NULL,
                   revoked INTEGER NOT NULL DEFAULT 0,
                   created_unix_ms INTEGER NOT NULL))sql",
           // No foreign key to customers: a row naming an unknown customer
           // must not make its whole batch fail forever.
           R"sql(CREATE TABLE ledger (
                   request_id TEXT PRIMARY KEY,
                   unix_ms INTEGER NOT NULL,
                   customer_id INTEGER,
                   key_id INTEGER,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   attempts INTEGER NOT NULL,
                   status TEXT NOT NULL,
                   http_status INTEGER NOT NULL,
                   input_tokens INTEGER NOT NULL,
                   output_tokens INTEGER NOT NULL,
                   cost_nanos INTEGER NOT NULL,
                   latency_ms REAL NOT NULL,
                   ttft_ms REAL,
                   streamed INTEGER NOT NULL))sql",
           "CREATE INDEX ledger_customer_time ON ledger (customer_id, unix_ms)",
           R"sql(CREATE TABLE rollup_minutes (
                   minute INTEGER NOT NULL,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   requests INTEGER NOT NULL,
                   successes INTEGER NOT NULL,
                   failures INTEGER NOT NULL,
                   latency_sum_ms REAL NOT NULL,
                   tokens INTEGER NOT NULL,
                   cost_nanos INTEGER NOT NULL,
                   PRIMARY KEY (minute, model, provider)))sql",
           R"sql(CREATE TABLE rollup_latency_buckets (
                   minute INTEGER NOT NULL,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   bucket INTEGER NOT NULL,
                   count INTEGER NOT NULL,
                   PRIMARY KEY (minute, model, provider, bucket)))sql",
       }},
      // No query reads the ledger by customer and time (stats come from the
      // rollups), and every index costs each ledger insert a B-tree update on
      // the writer thread, which shares a core with request serving.
      {2, {"DROP INDEX IF EXISTS ledger_customer_time"}},
      // The ledger keyed by request id alone (WITHOUT ROWID): one B-tree per
      // insert instead of the rowid table plus the primary-key index. The
      // column list restates migration 1's on purpose: released migrations
      // are frozen history, not shared definitions.
      {3,
       {
           R"sql(CREATE TABLE ledger_keyed (
                   request_id TEXT PRIMARY KEY,
                   unix_ms INTEGER NOT NULL,
                   customer_id INTEGER,
                   key_id INTEGER,
                   model TEXT NOT NULL,
                   provider TEXT NOT NULL,
                   attempts INTEGER NOT NULL,
                   status TEXT NOT NULL,
                   http_status INTEGER NOT NULL,
                   input_tokens INTEGER NOT NULL,
                   output_tokens INTEGER NOT NULL,
                   cost_nanos INTEGER NOT NULL,
                   latency_ms REAL NOT NULL,
                   ttft_ms REAL,
                   streamed INTEGER NOT NULL) WITHOUT ROWID)sql",
           "INSERT INTO ledger_keyed SELECT request_id, unix_ms, customer_id, key_id, model, provider, attempts,"
           " status, http_status, input_tokens, output_tokens, cost_nanos, latency_ms, ttft_ms, streamed FROM ledger",
           "DROP TABLE ledger",
           "ALTER TABLE ledger_keyed RENAME TO ledger",
       }},
  };
  return list;
}

// Ledger inserts: one row, or ledger_group_rows rows in one statement.
constexpr std::size_t ledger_columns = 15;
constexpr std::size_t ledger_group_rows = 64;  // 960 parameters; 8% less writer CPU than 16
#define GW_LEDGER_COLUMNS                                                                               \
  "request_id, unix_ms, customer_id, key_id, model, provider, attempts, status, http_status, input_tokens," \
  " output_tokens, cost_nanos, latency_ms, ttft_ms, streamed"
constexpr const char* ledger_insert_one =
    "INSERT INTO ledger (" GW_LEDGER_COLUMNS ")"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    " ON CONFLICT (request_id) DO NOTHING";

// Without ON CONFLICT: a duplicate must fail the whole group (see write_ledger).
const std::string& ledger_insert_group() {
  static const std::string sql = [] {
    std::string text = "INSERT INTO ledger (" GW_LEDGER_COLUMNS ") VALUES ";
    for (std::size_t row = 0; row < ledger_group_rows; ++row) {
      text += row == 0 ? "(" : ", (";
      for (std::size_t column = 0; column < ledger_columns; ++column) {
        if (column > 0) text += ", ";
        text += "?" + std::to_string(row * ledger_columns + column + 1);
      }
      text += ")";
    }
    return text;
  }();
  return sql;
}
#undef GW_LEDGER_COLUMNS

class connection;

// A prepared statement borrowed from a connection's cache; reset on release
// so the next user starts clean and no read transaction is left open.
class statement {
 public:
  statement(connection& conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  statement& bind(int index, std::int64_t value) { return check(sqlite3_bind_int64(stmt_, index, value)); }
  statement& bind(int index, double value) { return check(sqlite3_bind_double(stmt_, index, value)); }
  statement& bind(int index, std::string_view value) {
    return check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
  }
  // Binds without copying: `value` must stay alive until reset() or the
  // statement's release.
  statement& bind_static(int index, std::string_view value) {
    return check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC));
  }
  // Ready to run again with new bindings (every parameter is rebound).
  void reset() { sqlite3_reset(stmt_); }
  template <typename T>
  statement& bind(int index, const std::optional<T>& value) {
    if (!value) return check(sqlite3_bind_null(stmt_, index));
    return bind(index, *value);
  }

  // True while a row is available.
  bool step();
  // Runs a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }
  // Runs a row-less statement; false when it broke a primary-key or
  // uniqueness constraint, in which case SQLite backed out all its changes
  // (the transaction stays open). Other failures throw, as run() does.
  bool run_unless_conflict() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_DONE) return true;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
      sqlite3_reset(stmt_);
      return false;
    }
    return step_failed();
  }

  std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) const {
    const auto* data = sqlite3_column_text(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string{}
                           : std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  }

 private:
  statement& check(int rc);
  [[noreturn]] bool step_failed();

  connection& conn_;
  sqlite3_stmt* stmt_;
};

// SQLite's memory statistics take a global mutex on every allocation, and
// nothing here reads them; they can only be switched off before SQLite
// initialises, so this runs ahead of the first open (later calls are refused
// by SQLite and change nothing).
void configure_sqlite_once() {
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)configured;
}

class wal_checkpointer;

class connection {
 public:
  // `checkpoints` (may be null: SQLite's autocheckpoint then applies) is
  // told about every commit and must outlive the connection.
  connection(const std::string& path, wal_checkpointer* checkpoints) {
    configure_sqlite_once();
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw store_error(fmt::format("sqlite: cannot open '{}': {}", path, message));
    }
    sqlite3_busy_timeout(db_, busy_timeout_ms);
    sqlite3_extended_result_codes(db_, 1);
    try {
      exec("PRAGMA foreign_keys = ON");
      // WAL: readers never block the writer. synchronous=NORMAL is durable
      // against process crashes; a power loss may drop the last commits.
      exec("PRAGMA journal_mode = WAL");
      exec("PRAGMA synchronous = NORMAL");
      if (checkpoints != nullptr) {
        // Replaces the autocheckpoint hook (see wal_checkpointer).
        sqlite3_wal_hook(db_, &connection::on_commit, checkpoints);
        // A WAL that grew past this (4x its usual ~4 MB) is cut back to it
        // when it next starts again from the beginning.
        exec("PRAGMA journal_size_limit = 16777216");
      }
    } catch (const store_error&) {
      sqlite3_close(db_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }
  sqlite3* handle() const { return db_; }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  statement prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) fail("prepare");
      it = cache_.emplace(sql, stmt).first;
    }
    return statement(*this, it->second);
  }

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error != nullptr ? error : sqlite3_errmsg(db_);
      sqlite3_free(error);
      throw store_error("sqlite: " + message);
    }
  }

  int changes() const { return sqlite3_changes(db_); }
  // False while a transaction is open (one whose ROLLBACK failed, say).
  bool outside_transaction() const { return sqlite3_get_autocommit(db_) != 0; }

  [[noreturn]] void fail(std::string_view what) const {
    throw store_error(fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db_)));
  }

 private:
  static int on_commit(void* checkpoints, sqlite3* db, const char* schema, int wal_pages);

  sqlite3* db_ = nullptr;
  // Keyed by the SQL text's address: every statement is a string literal.
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

bool statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return step_failed();
}

bool statement::step_failed() { conn_.fail("step"); }

statement& statement::check(int rc) {
  if (rc != SQLITE_OK) conn_.fail("bind");
  return *this;
}

// Runs WAL checkpoints off the committing connections (see the top of this
// file). One per file-backed store.
class wal_checkpointer {
 public:
  wal_checkpointer(std::string path, const sqlite_options& options, query_metrics& metrics)
      : path_(std::move(path)), options_(options), metrics_(metrics) {
    if (options_.thread_checkpoint_pages > 0) thread_ = std::thread([this] { run(); });
  }
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;
  ~wal_checkpointer() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    // Closed here, on the stopping thread: when it is the database's last
    // connection its close runs a full checkpoint, which must not wait at
    // the lowest priority.
    conn_.reset();
  }

  // The WAL hook of every pool connection: `wal_pages` is the WAL's length
  // after a commit on `db` (it starts again from zero once a checkpoint has
  // copied all of it and a writer comes by).
  void committed(sqlite3* db, const char* schema, int wal_pages) {
    const auto pages = static_cast<std::size_t>(wal_pages);
    if (options_.backstop_checkpoint_pages > 0 && pages >= options_.backstop_checkpoint_pages) {
      checkpoint(db, schema, "wal_checkpoint_backstop");
      return;
    }
    if (!thread_.joinable() || pages < options_.thread_checkpoint_pages) return;
    // One wake-up per checkpoint: commits while one is pending cost an
    // atomic exchange, not a lock.
    if (wanted_.exchange(true, std::memory_order_acq_rel)) return;
    {
      std::lock_guard lock(mu_);
      signalled_ = true;
    }
    wake_.notify_one();
  }

 private:
  // A passive checkpoint: copies what no reader still needs, never waits for
  // the write lock. SQLITE_BUSY (another checkpoint is running, e.g. the
  // thread's) only means a later commit tries again, so only checkpoints
  // that ran are timed, as `operation`.
  void checkpoint(sqlite3* db, const char* schema, std::string_view operation) {
    const auto start = std::chrono::steady_clock::now();
    if (sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) == SQLITE_OK) {
      metrics_.record(operation, std::chrono::steady_clock::now() - start);
    }
  }

  void run() {
    name_this_thread("gw-checkpoint");
    lower_thread_priority(19);
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return signalled_ || stopping_; });
      if (stopping_) return;
      signalled_ = false;
      lock.unlock();
      // Cleared first, so a commit during the checkpoint asks for another.
      wanted_.store(false, std::memory_order_release);
      try {
        if (!conn_) conn_ = std::make_unique<connection>(path_, nullptr);
        checkpoint(conn_->handle(), nullptr, "wal_checkpoint");
      } catch (const store_error&) {
        // The database cannot be opened right now; the next commit retries,
        // and the backstop still bounds the WAL.
      }
      lock.lock();
    }
  }

  const std::string path_;
  const sqlite_options options_;
  query_metrics& metrics_;
  std::atomic<bool> wanted_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  bool signalled_ = false;
  bool stopping_ = false;
  std::unique_ptr<connection> conn_;  // the thread's own, opened on first use
  std::thread thread_;                // last: starts once everything above is set up
};

int connection::on_commit(void* checkpoints, sqlite3* db, const char* schema, int wal_pages) {
  static_cast<wal_checkpointer*>(checkpoints)->committed(db, schema, wal_pages);
  return SQLITE_OK;
}

// BEGIN on construction; ROLLBACK unless commit() was reached.
class transaction {
 public:
  enum class kind { read, write };
  transaction(connection& conn, kind k) : conn_(conn) {
    conn_.exec(k == kind::write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction() {
    if (!done_) {
      try {
        conn_.exec("ROLLBACK");
      } catch (const store_error&) {
        // The transaction is already gone (SQLite rolls back on some errors).
      }
    }
  }
  void commit() {
    conn_.exec("COMMIT");
    done_ = true;
  }

 private:
  connection& conn_;
  bool done_ = false;
};

class connection_pool {
 public:
  connection_pool(std::string path, wal_checkpointer* checkpoints)
      : path_(std::move(path)), in_memory_(path_ == ":memory:"), checkpoints_(checkpoints) {}

  // A connection for the caller's exclusive use until the lease ends.
  class lease {
   public:
    lease(connection_pool& pool, std::unique_ptr<connection> conn, std::unique_lock<std::mutex> memory_lock)
        : pool_(pool), conn_(std::move(conn)), memory_lock_(std::move(memory_lock)) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { pool_.give_back(std::move(conn_)); }
    connection& operator*() { return *conn_; }
    connection* operator->() { return conn_.get(); }

   private:
    connection_pool& pool_;
    std::unique_ptr<connection> conn_;
    std::unique_lock<std::mutex> memory_lock_;
  };

  lease acquire() {
    // An in-memory database exists only inside its one connection, so all
    // callers share it in turn (meant for tests and throwaway runs).
    std::unique_lock<std::mutex> memory_lock;
    if (in_memory_) memory_lock = std::unique_lock(memory_mu_);
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return lease(*this, std::move(conn), std::move(memory_lock));
      }
    }
    return lease(*this, std::make_unique<connection>(path_, checkpoints_), std::move(memory_lock));
  }

 private:
  void give_back(std::unique_ptr<connection> conn) {
    std::lock_guard lock(mu_);
    // A connection stuck inside a transaction would hold the write lock
    // forever; close it (an in-memory database has only this connection).
    if (in_memory_ || (idle_.size() < max_idle_connections && conn->outside_transaction())) {
      idle_.push_back(std::move(conn));
    }
  }

  std::string path_;
  bool in_memory_;
  wal_checkpointer* checkpoints_;
  std::mutex mu_;
  std::vector<std::unique_ptr<connection>> idle_;
  std::mutex memory_mu_;
};

class sqlite_store final : public store {
 public:
  sqlite_store(std::string path, telemetry::catalog* metrics, const sqlite_options& options)
      : metrics_(metrics),
        checkpoints_(has_wal_file(path) ? std::make_unique<wal_checkpointer>(path, options, metrics_) : nullptr),
        pool_(std::move(path), checkpoints_.get()) {
    // Opening once here reports a bad path at start rather than on first use.
    auto conn = pool_.acquire();
  }

  std::string_view backend() const override { return "sqlite"; }

  // An in-memory database has no WAL to checkpoint.
  static bool has_wal_file(const std::string& path) {
    return path != ":memory:" && path.rfind("file::memory:", 0) != 0 && path.find("mode=memory") == std::string::npos;
  }

  void migrate() override {
    query_timer timer(metrics_, "migrate");
    auto conn = pool_.acquire();
    conn->exec(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, applied_unix_ms INTEGER NOT NULL)");
    for (const migration& m : migrations()) {
      // The version is re-read inside the write transaction, so two
      // processes migrating at once apply each step exactly once.
      transaction tx(*conn, transaction::kind::write);
      std::int64_t current = 0;
      {
        auto st = conn->prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
        if (st.step()) current = st.int64(0);
      }
      if (current >= m.version) {
        tx.commit();
        continue;
      }
      for (const char* sql : m.statements) conn->exec(sql);
      conn->prepare("INSERT INTO schema_version (version, applied_unix_ms) VALUES (?1, ?2)")
          .bind(1, std::int64_t{m.version})
          .bind(2, now_unix_ms())
          .run();
      tx.commit();
    }
  }

  bool ping() noexcept override {
    try {
      query_timer timer(metrics_, "ping");
      auto conn = pool_.acquire();
      auto st = conn->prepare("SELECT 1");
      return st.step() && st.int64(0) == 1;
    } catch (...) {
      return false;
    }
  }

  customer create_customer(std::string_view name, nanos_usd initial_credit) override {
    query_timer timer(metrics_, "create_customer");
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

  std::optional<customer> find_customer(std::string_view name) override {
    query_timer timer(metrics_, "find_customer");
    auto conn = pool_.acquire();
    auto st = conn->prepare("SELECT id, name, balance_nanos, created_unix_ms FROM customers WHERE name = ?1");
    st.bind(1, name);
    if (!st.step()) return std::nullopt;
    return customer{st.int64(0), st.text(1), st.int64(2), st.int64(3)};
  }

  std::vector<customer> list_customers() override {
    query_timer timer(metrics_, "list_customers");
    auto conn = pool_.acquire();
    auto st = conn->prepare("SELECT id, name, balance_nanos, created_unix_ms FROM customers ORDER BY id");
    std::vector<customer> out;
    while (st.step()) out.push_back(customer{st.int64(0), st.text(1), st.int64(2), st.int64(3)});
    return out;
  }

  nanos_usd credit(std::int64_t customer_id, nanos_usd amount) override {
    query_timer timer(metrics_, "credit");
    auto conn = pool_.acquire();
    auto st =
        conn->prepare("UPDATE customers SET balance_nanos = balance_nanos + ?1 WHERE id = ?2 RETURNING balance_nanos");
    st.bind(1, amount).bind(2, customer_id);
    if (!st.step()) throw store_error(fmt::format("sqlite: no customer with id {}", customer_id));
    return st.int64(0);
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

  std::vector<api_key_info> list_keys() override {
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

  bool revoke_key(std::int64_t key_id) override {
    query_timer timer(metrics_, "revoke_key");
    auto conn = pool_.acquire();
    conn->prepare("UPDATE api_keys SET revoked = 1 WHERE id = ?1 AND revoked = 0").bind(1, key_id).run();
    return conn->changes() > 0;
  }

  std::optional<key_lookup> find_key(std::string_view secret) override {
    query_timer timer(metrics_, "find_key");
    auto conn = pool_.acquire();
    auto st = conn->prepare(
        "SELECT k.id, k.customer_id, k.revoked, c.balance_nanos"
        " FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE k.key_hash = ?1");
    st.bind(1, sha256_hex(secret));
    if (!st.step()) return std::nullopt;
    return key_lookup{st.int64(0), st.int64(1), st.int64(2) != 0, st.int64(3)};
  }

  std::size_t write_ledger(std::span<const ledger_row> rows, const ledger_pause& pause) override {
    query_timer timer(metrics_, "write_ledger");
    if (rows.empty()) return 0;
    auto conn = pool_.acquire();
    transaction tx(*conn, transaction::kind::write);
    // In key order, consecutive inserts land on neighbouring pages of the
    // request-id index, which with ids in no order is most of a row's cost.
    const std::vector<const ledger_row*> order = rows_in_key_order(rows);
    batch_effects effects;
    std::size_t inserted = 0;
    {
      const auto bind_row = [](statement& st, int first, const ledger_row& row) {
        st.bind_static(first + 1, row.request_id)
            .bind(first + 2, row.unix_ms)
            .bind(first + 3, row.customer_id)
            .bind(first + 4, row.key_id)
            .bind_static(first + 5, row.model)
            .bind_static(first + 6, row.provider)
            .bind(first + 7, std::int64_t{row.attempts})
            .bind_static(first + 8, row.status)
            .bind(first + 9, std::int64_t{row.http_status})
            .bind(first + 10, row.input_tokens)
            .bind(first + 11, row.output_tokens)
            .bind(first + 12, row.cost)
            .bind(first + 13, storable_ms(row.latency_ms))
            .bind(first + 14, row.ttft_ms ? std::optional<double>(storable_ms(*row.ttft_ms)) : std::nullopt)
            .bind(first + 15, std::int64_t{row.streamed ? 1 : 0});
      };
      auto single = conn->prepare(ledger_insert_one);
      const auto insert_one = [&](const ledger_row& row) {
        single.reset();
        bind_row(single, 0, row);
        single.run();
        // Only a newly inserted row changes balances and rollups: a replayed
        // batch (the writer retrying after an unclear failure) is a no-op.
        if (conn->changes() == 1) {
          effects.add(row);
          ++inserted;
        }
      };
      // Rows go in groups of ledger_group_rows per statement, which spares
      // SQLite a statement's set-up and tear-down per row. A group holding a
      // row that exists already (a replayed batch) fails as a whole, changes
      // nothing, and is then inserted row by row.
      auto group = conn->prepare(ledger_insert_group().c_str());
      std::size_t next = 0;
      for (; next + ledger_group_rows <= order.size(); next += ledger_group_rows) {
        group.reset();
        for (std::size_t k = 0; k < ledger_group_rows; ++k) {
          bind_row(group, static_cast<int>(k * ledger_columns), *order[next + k]);
        }
        if (group.run_unless_conflict()) {
          for (std::size_t k = 0; k < ledger_group_rows; ++k) effects.add(*order[next + k]);
          inserted += ledger_group_rows;
        } else {
          for (std::size_t k = 0; k < ledger_group_rows; ++k) insert_one(*order[next + k]);
        }
        if (pause) pause(next + ledger_group_rows);
      }
      for (; next < order.size(); ++next) insert_one(*order[next]);
    }
    effects.finish();
    for (const auto& debit : effects.debits()) {
      conn->prepare("UPDATE customers SET balance_nanos = balance_nanos - ?1 WHERE id = ?2")
          .bind(1, debit.cost)
          .bind(2, debit.customer_id)
          .run();
    }
    for (const auto& rollup : effects.rollups()) {
      conn->prepare(
              "INSERT INTO rollup_minutes (minute, model, provider, requests, successes, failures, latency_sum_ms,"
              " tokens, cost_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
              " ON CONFLICT (minute, model, provider) DO UPDATE SET"
              " requests = requests + excluded.requests, successes = successes + excluded.successes,"
              " failures = failures + excluded.failures, latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms,"
              " tokens = tokens + excluded.tokens, cost_nanos = cost_nanos + excluded.cost_nanos")
          .bind(1, rollup.minute)
          .bind_static(2, rollup.model)
          .bind_static(3, rollup.provider)
          .bind(4, rollup.sums.requests)
          .bind(5, rollup.sums.successes)
          .bind(6, rollup.sums.failures)
          .bind(7, rollup.sums.latency_sum_ms)
          .bind(8, rollup.sums.tokens)
          .bind(9, rollup.sums.cost)
          .run();
    }
    for (const auto& b : effects.buckets()) {
      const auto& rollup = effects.rollups()[b.rollup];
      conn->prepare(
              "INSERT INTO rollup_latency_buckets (minute, model, provider, bucket, count)"
              " VALUES (?1, ?2, ?3, ?4, ?5)"
              " ON CONFLICT (minute, model, provider, bucket) DO UPDATE SET count = count + excluded.count")
          .bind(1, rollup.minute)
          .bind_static(2, rollup.model)
          .bind_static(3, rollup.provider)
          .bind(4, std::int64_t{b.bucket})
          .bind(5, b.count)
          .run();
    }
    tx.commit();
    return inserted;
  }

  std::optional<ledger_row> find_ledger_row(std::string_view request_id) override {
    query_timer timer(metrics_, "find_ledger_row");
    auto conn = pool_.acquire();
    auto st = conn->prepare(
        "SELECT request_id, unix_ms, customer_id, key_id, model, provider, attempts, status, http_status,"
        " input_tokens, output_tokens, cost_nanos, latency_ms, ttft_ms, streamed FROM ledger WHERE request_id = ?1");
    st.bind(1, request_id);
    if (!st.step()) return std::nullopt;
    ledger_row row;
    row.request_id = st.text(0);
    row.unix_ms = st.int64(1);
    if (!st.is_null(2)) row.customer_id = st.int64(2);
    if (!st.is_null(3)) row.key_id = st.int64(3);
    row.model = st.text(4);
    row.provider = st.text(5);
    row.attempts = static_cast<std::uint32_t>(st.int64(6));
    row.status = st.text(7);
    row.http_status = static_cast<std::uint32_t>(st.int64(8));
    row.input_tokens = st.int64(9);
    row.output_tokens = st.int64(10);
    row.cost = st.int64(11);
    row.latency_ms = st.real(12);
    if (!st.is_null(13)) row.ttft_ms = st.real(13);
    row.streamed = st.int64(14) != 0;
    return row;
  }

  std::int64_t count_ledger_rows() override {
    query_timer timer(metrics_, "count_ledger_rows");
    auto conn = pool_.acquire();
    auto st = conn->prepare("SELECT COUNT(*) FROM ledger");
    return st.step() ? st.int64(0) : 0;
  }

  std::vector<model_stats> stats(std::chrono::seconds window) override {
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

 private:
  // In this order: connections (pool_) report commits to checkpoints_, which
  // records into metrics_, so they go first.
  query_metrics metrics_;
  std::unique_ptr<wal_checkpointer> checkpoints_;  // null for an in-memory database
  connection_pool pool_;
};

}  // namespace
}  // namespace gatewayz::store::detail

namespace gatewayz::store {

std::unique_ptr<store> open_sqlite_store(std::string_view url, telemetry::catalog* metrics,
                                         const sqlite_options& options) {
  constexpr std::string_view scheme = "sqlite://";
  std::string path(url.substr(scheme.size()));
  if (path.empty())
    throw store_error("sqlite: the URL names no database file (sqlite:///abs/path.db or sqlite://./rel.db)");
  return std::make_unique<detail::sqlite_store>(std::move(path), metrics, options);
}

}  // namespace gatewayz::store

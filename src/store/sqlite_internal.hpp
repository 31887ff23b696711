#pragma once
// Internals of the SQLite backend (store/sqlite_store.hpp), shared by the
// source files of gw_store_sqlite and included by nothing else:
//   sqlite_store.cpp         the store: customers, keys, stats; open_sqlite_store
//   sqlite_connection.cpp    opening a connection
//   sqlite_checkpointer.cpp  wal_checkpointer, the WAL checkpoint thread
//   sqlite_migrations.cpp    the schema and migrate()
//   sqlite_ledger.cpp        writing and reading the ledger
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

#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/sqlite_store.hpp"
#include "store/store_common.hpp"

namespace gatewayz::store::detail::sqlite {

inline constexpr std::size_t max_idle_connections = 8;

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

class wal_checkpointer;

class connection {
 public:
  // `checkpoints` (may be null: SQLite's autocheckpoint then applies) is
  // told about every commit and must outlive the connection.
  // Throws store_error when the database cannot be opened (sqlite_connection.cpp).
  connection(const std::string& path, wal_checkpointer* checkpoints);
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

// Inline, as the rest of statement: the ledger writer binds every column of
// every row through check().
inline bool statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return step_failed();
}

inline bool statement::step_failed() { conn_.fail("step"); }

inline statement& statement::check(int rc) {
  if (rc != SQLITE_OK) conn_.fail("bind");
  return *this;
}

// Runs WAL checkpoints off the committing connections (see the top of this
// file). One per file-backed store; sqlite_checkpointer.cpp.
class wal_checkpointer {
 public:
  // Starts the thread unless options.thread_checkpoint_pages is 0.
  wal_checkpointer(std::string path, const sqlite_options& options, query_metrics& metrics);
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;
  // Stops the thread and closes its connection.
  ~wal_checkpointer();

  // The WAL hook of every pool connection: `wal_pages` is the WAL's length
  // after a commit on `db` (it starts again from zero once a checkpoint has
  // copied all of it and a writer comes by).
  void committed(sqlite3* db, const char* schema, int wal_pages);

 private:
  // A passive checkpoint: copies what no reader still needs, never waits for
  // the write lock. SQLITE_BUSY (another checkpoint is running, e.g. the
  // thread's) only means a later commit tries again, so only checkpoints
  // that ran are timed, as `operation`.
  void checkpoint(sqlite3* db, const char* schema, std::string_view operation);
  void run();

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

// The store; store.hpp states each method's contract.
class sqlite_store final : public store {
 public:
  sqlite_store(std::string path, telemetry::catalog* metrics, const sqlite_options& options);

  std::string_view backend() const override { return "sqlite"; }

  // An in-memory database has no WAL to checkpoint.
  static bool has_wal_file(const std::string& path) {
    return path != ":memory:" && path.rfind("file::memory:", 0) != 0 && path.find("mode=memory") == std::string::npos;
  }

  // sqlite_migrations.cpp
  void migrate() override;

  // sqlite_store.cpp
  bool ping() noexcept override;
  customer create_customer(std::string_view name, nanos_usd initial_credit) override;
  std::optional<customer> find_customer(std::string_view name) override;
  std::vector<customer> list_customers() override;
  nanos_usd credit(std::int64_t customer_id, nanos_usd amount) override;
  created_key create_key(std::int64_t customer_id) override;
  std::vector<api_key_info> list_keys() override;
  bool revoke_key(std::int64_t key_id) override;
  std::optional<key_lookup> find_key(std::string_view secret) override;
  std::vector<model_stats> stats(std::chrono::seconds window) override;

  // sqlite_ledger.cpp
  std::size_t write_ledger(std::span<const ledger_row> rows, const ledger_pause& pause) override;
  std::optional<ledger_row> find_ledger_row(std::string_view request_id) override;
  std::int64_t count_ledger_rows() override;

 private:
  // In this order: connections (pool_) report commits to checkpoints_, which
  // records into metrics_, so they go first.
  query_metrics metrics_;
  std::unique_ptr<wal_checkpointer> checkpoints_;  // null for an in-memory database
  connection_pool pool_;
};

}  // namespace gatewayz::store::detail::sqlite

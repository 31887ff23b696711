// Opening a SQLite connection (sqlite_internal.hpp): its settings and the
// process-wide SQLite configuration done before the first open.

#include <fmt/format.h>
#include <sqlite3.h>

#include <string>

#include "store/sqlite_internal.hpp"

namespace gatewayz::store::detail::sqlite {
namespace {

constexpr int busy_timeout_ms = 10'000;

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

}  // namespace

connection::connection(const std::string& path, wal_checkpointer* checkpoints) {
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

}  // namespace gatewayz::store::detail::sqlite

#pragma once
// The SQLite backend (library gw_store_sqlite): the embedded default for a
// single gateway instance, one database file in WAL mode.

#include <cstddef>
#include <memory>
#include <string_view>

#include "store/store.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::store {

// When a file-backed SQLite store checkpoints its WAL (copies committed pages
// into the database file).
struct sqlite_options {
  // WAL length (pages) at which a commit wakes the low-priority
  // checkpointer thread; 0: no checkpointer thread. 1000 is SQLite's
  // autocheckpoint default.
  std::size_t thread_checkpoint_pages = 1000;
  // WAL length at which the committing connection checkpoints itself
  // because the thread did not keep up (16 MB of 4 KB pages, small enough
  // that one such checkpoint stays far shorter than the slack of the ledger
  // queue); 0: never.
  std::size_t backstop_checkpoint_pages = 4096;
};

// Opens sqlite:///abs/path.db, sqlite://./relative.db or sqlite://:memory:.
// The caller owns the result and calls migrate() before use; it is safe to
// call from any thread (see store.hpp). `metrics` (optional) must outlive the
// store. Throws store_error when the URL names no file or the database cannot
// be opened.
std::unique_ptr<store> open_sqlite_store(std::string_view url, telemetry::catalog* metrics,
                                         const sqlite_options& options = {});

}  // namespace gatewayz::store

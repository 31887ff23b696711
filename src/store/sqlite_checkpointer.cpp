// wal_checkpointer (sqlite_internal.hpp): the low-priority thread that runs
// WAL checkpoints, and the WAL hook through which commits reach it.

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "core/threads.hpp"
#include "store/sqlite_internal.hpp"

namespace gatewayz::store::detail::sqlite {

wal_checkpointer::wal_checkpointer(std::string path, const sqlite_options& options, query_metrics& metrics)
    : path_(std::move(path)), options_(options), metrics_(metrics) {
  if (options_.thread_checkpoint_pages > 0) thread_ = std::thread([this] { run(); });
}

wal_checkpointer::~wal_checkpointer() {
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

void wal_checkpointer::committed(sqlite3* db, const char* schema, int wal_pages) {
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

void wal_checkpointer::checkpoint(sqlite3* db, const char* schema, std::string_view operation) {
  const auto start = std::chrono::steady_clock::now();
  if (sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) == SQLITE_OK) {
    metrics_.record(operation, std::chrono::steady_clock::now() - start);
  }
}

void wal_checkpointer::run() {
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

int connection::on_commit(void* checkpoints, sqlite3* db, const char* schema, int wal_pages) {
  static_cast<wal_checkpointer*>(checkpoints)->committed(db, schema, wal_pages);
  return SQLITE_OK;
}

}  // namespace gatewayz::store::detail::sqlite

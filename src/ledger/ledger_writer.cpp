#include "ledger/ledger_writer.hpp"

#include <algorithm>
#include <bit>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "core/threads.hpp"

namespace gatewayz::ledger {

namespace {

constexpr std::string_view default_spill_file = "./gatewayz-ledger.spill";

template <typename It>
void append_moved(std::vector<store::ledger_row>& to, It first, It last) {
  to.insert(to.end(), std::make_move_iterator(first), std::make_move_iterator(last));
}

}  // namespace

std::string default_spill_path(std::string_view store_url) {
  constexpr std::string_view sqlite_scheme = "sqlite://";
  if (store_url.starts_with(sqlite_scheme)) {
    std::string_view db = store_url.substr(sqlite_scheme.size());
    db = db.substr(0, db.find('?'));
    if (!db.empty() && db != ":memory:") return std::string(db) + "-ledger.spill";
  }
  return std::string(default_spill_file);
}

ledger_writer::ledger_writer(store::store& store, writer_options options, std::size_t shard_count,
                             telemetry::catalog* metrics, error_callback on_error)
    : store_(store),
      options_(std::move(options)),
      spill_(options_.spill_path.empty() ? std::string(default_spill_file) : options_.spill_path,
             options_.spill_segment_bytes),
      rejected_(spill_.path() + ".rejected", 0),  // only appended to: never sealed
      on_error_(std::move(on_error)),
      shard_count_(shard_count) {
  if (shard_count == 0) throw std::invalid_argument("ledger writer: shard_count must be at least 1");
  if (options_.queue_capacity == 0) throw std::invalid_argument("ledger writer: queue_capacity must be at least 1");
  if (options_.batch_max == 0) throw std::invalid_argument("ledger writer: batch_max must be at least 1");
  if (options_.flush_interval_ms == 0) {
    throw std::invalid_argument("ledger writer: flush_interval_ms must be at least 1");
  }
  if (metrics != nullptr) {
    if (metrics->reg.shards() <= shard_count) {
      throw std::invalid_argument(
          fmt::format("ledger writer: the metric registry needs one shard more than the {} server shard(s) "
                      "for background threads (has {})",
                      shard_count, metrics->reg.shards()));
    }
    dropped_metric_ = metrics->telemetry_dropped.series({"ledger"});
    background_shard_ = metrics->reg.shards() - 1;
    has_metrics_ = true;
  }
  queues_ = std::make_unique<shard_queue[]>(shard_count);
  drained_ = std::make_unique<row_buffer[]>(shard_count);
  pause_ = [this](std::size_t rows_written) { pace(rows_written); };
  thread_ = std::thread([this] { run(); });
}

ledger_writer::~ledger_writer() { stop(); }

bool ledger_writer::enqueue(std::size_t shard, store::ledger_row row) noexcept {
  return enqueue_with(shard, [&row](store::ledger_row& slot) { slot = std::move(row); });
}

bool ledger_writer::has_room(std::size_t shard, std::size_t reserved) const noexcept {
  if (shard >= shard_count_) return false;
  return queues_[shard].queued.load(std::memory_order_relaxed) + reserved < options_.queue_capacity;
}

bool ledger_writer::enqueue_fill(std::size_t shard, fill_function fill, const void* context) noexcept {
  if (shard >= shard_count_) return false;
  shard_queue& queue = queues_[shard];
  bool accepted = false;
  bool wake_writer = false;
  {
    std::lock_guard lock{queue.mu};
    row_buffer& buffer = queue.rows;
    if (queue.accepting && buffer.used < options_.queue_capacity) {
      try {
        if (buffer.used == buffer.slots.size()) buffer.slots.emplace_back();
        fill(buffer.slots[buffer.used], context);
        ++buffer.used;
        queue.queued.store(buffer.used, std::memory_order_relaxed);
        accepted = true;
      } catch (const std::bad_alloc&) {
        // Out of memory: the row is dropped and counted like an overflow.
      }
    }
    if (accepted) {
      ++queue.enqueued;
      if (!queue.wake_sent && buffer.used * 2 >= options_.queue_capacity) {
        queue.wake_sent = true;
        wake_writer = true;
      }
    } else {
      ++queue.dropped;
    }
  }
  if (!accepted) {
    if (has_metrics_) dropped_metric_.inc(shard);
    return false;
  }
  if (wake_writer) {
    // Rare (once per half-filled queue), so sharing the writer's mutex here is cheap.
    {
      std::lock_guard lock{wake_mu_};
      wake_requested_ = true;
    }
    wake_cv_.notify_one();
  }
  return true;
}

void ledger_writer::stop() {
  std::lock_guard stop_lock{stop_mu_};
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock{wake_mu_};
    stop_requested_ = true;
  }
  wake_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

writer_stats ledger_writer::stats() const {
  writer_stats s;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock{queues_[i].mu};
    s.enqueued += queues_[i].enqueued;
    s.dropped += queues_[i].dropped;
  }
  s.dropped += background_dropped_.load(std::memory_order_relaxed);
  s.written = written_.load(std::memory_order_relaxed);
  s.spilled = spilled_.load(std::memory_order_relaxed);
  s.replayed = replayed_.load(std::memory_order_relaxed);
  s.rejected = rejected_count_.load(std::memory_order_relaxed);
  s.flushes = flushes_.load(std::memory_order_relaxed);
  return s;
}

void ledger_writer::run() {
  name_this_thread("gw-ledger");
  // No wake-up preemption of the shards, and nice +5: the scheduler then
  // hands a busy shard its core back after a shorter stretch of writing.
  // The share the writer still gets on a saturated core, about a quarter,
  // is several times what it needs at full load; it must not fall behind,
  // since a full queue refuses requests (docs/decisions/ledger-writer-pacing.md).
  lower_thread_priority(5);
  const auto interval = std::chrono::milliseconds(options_.flush_interval_ms);
  // The first flush replays a spill file left by an earlier run.
  guarded_flush(false);
  auto next_flush = std::chrono::steady_clock::now() + interval;
  for (;;) {
    {
      std::unique_lock lock{wake_mu_};
      wake_cv_.wait_until(lock, next_flush, [this] { return stop_requested_ || wake_requested_; });
      if (stop_requested_) break;
      wake_requested_ = false;
    }
    // Measured from the start of a flush, so a row waits at most one
    // interval plus the duration of the flush in progress.
    next_flush = std::chrono::steady_clock::now() + interval;
    guarded_flush(false);
  }
  guarded_flush(true);
}

void ledger_writer::pace(std::size_t rows_written) {
  const auto now = std::chrono::steady_clock::now();
  const auto turn = now - turn_start_;
  if (turn < options_.writer_turn) return;
  if (turn < 4 * options_.writer_turn) {
    // Behind when done / total < elapsed / interval: this call's rows would
    // not be written by the time the next flush is due.
    const auto interval =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::milliseconds(options_.flush_interval_ms));
    const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - pace_start_);
    const std::size_t done = pace_rows_done_ + rows_written;
    const bool behind = static_cast<double>(done) * static_cast<double>(interval.count()) <
                        static_cast<double>(pace_rows_total_) * static_cast<double>(elapsed.count());
    if (behind) return;
  }
  std::this_thread::yield();
  turn_start_ = std::chrono::steady_clock::now();
}

void ledger_writer::guarded_flush(bool final) {
  try {
    flush(final);
  } catch (const std::exception& e) {
    // Only allocation failures get here (store and file errors are handled
    // inside); the thread must survive them to keep draining the queues.
    report(fmt::format("ledger: flush failed: {}", e.what()));
  }
}

void ledger_writer::drain_queues(bool final) {
  for (std::size_t i = 0; i < shard_count_; ++i) {
    shard_queue& queue = queues_[i];
    row_buffer& drained = drained_[i];
    drained.used = 0;  // its rows were written (or spilled) by the last flush
    std::lock_guard lock{queue.mu};
    if (final) queue.accepting = false;
    std::swap(drained, queue.rows);
    // A stopped queue takes nothing more: has_room() says so from now on.
    queue.queued.store(final ? options_.queue_capacity : queue.rows.used, std::memory_order_relaxed);
    queue.wake_sent = false;
  }
}

void ledger_writer::release_drained() noexcept {
  // A burst (a store outage filling the queues) must not pin its memory for
  // good: buffers beyond a few flushes' worth of rows are given back.
  // Only a buffer far larger than this flush needed goes: one that merely
  // crossed a power of two at full load would otherwise be freed and
  // regrown by its shard every flush.
  constexpr std::size_t keep_rows = 16 * 1024;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    row_buffer& drained = drained_[i];
    const std::size_t capacity = drained.slots.capacity();
    if (capacity > keep_rows && capacity > 4 * drained.used) std::vector<store::ledger_row>().swap(drained.slots);
    drained.used = 0;
  }
}

void ledger_writer::flush(bool final) {
  wrote_last_flush_ = wrote_this_flush_;
  wrote_this_flush_ = false;
  failed_writes_this_flush_ = 0;
  unreachable_this_flush_ = false;
  gave_up_this_flush_ = false;

  // Emptied on every exit: a flush that throws (out of memory) loses its
  // batch as it always did, and never hands its rows to the next one.
  struct release_on_exit {
    ledger_writer& w;
    ~release_on_exit() { w.release_drained(); }
  } release{*this};
  drain_queues(final);
  const bool spill_pending = spill_.has_data();
  // With rows spilled, the store was down recently: a ping first, so an
  // outage costs one round trip per flush, not a failing write of every chunk.
  if (spill_pending && !store_.ping()) {
    unreachable_this_flush_ = true;
    last_error_ = "the store does not answer";
  }
  // Each shard's rows go in as their own transactions: they are nearly in
  // id order already, and the writer never moves rows between buffers. One pacing
  // schedule covers the whole flush.
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) total += drained_[i].used;
  begin_pacing(total);
  std::vector<store::ledger_row> unwritten;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    const auto rows = drained_[i].rows();
    if (rows.empty()) continue;
    if (unreachable_this_flush_) {
      spill(rows);  // straight from the buffer: an outage copies nothing
      continue;
    }
    auto left = write_rows(rows, written_);
    if (unwritten.empty()) {
      unwritten = std::move(left);
    } else {
      append_moved(unwritten, left.begin(), left.end());
    }
  }
  // Replayed after the new rows, so their success tells a poison row in the
  // spill file from a store that refuses everything.
  if (spill_pending && !unreachable_this_flush_) {
    try {
      const std::size_t torn = spill_.replay([&](std::vector<store::ledger_row> spilled) {
        begin_pacing(spilled.size());
        return write_rows(spilled, replayed_);
      });
      if (torn > 0) {
        report(fmt::format("ledger: discarded {} unreadable line(s) of spill file {} (torn by a crash)", torn,
                           spill_.path()));
      }
    } catch (const std::exception& e) {
      report(fmt::format("ledger: cannot replay spill file: {}", e.what()));
    }
  }
  if (!unwritten.empty()) spill(unwritten);
  flushes_.fetch_add(1, std::memory_order_relaxed);
}

void ledger_writer::begin_pacing(std::size_t total_rows) {
  pace_start_ = std::chrono::steady_clock::now();
  pace_rows_total_ = total_rows;
  pace_rows_done_ = 0;
  turn_start_ = pace_start_;  // just woken, or after a flush's other work
}

std::vector<store::ledger_row> ledger_writer::write_rows(std::span<const store::ledger_row> rows,
                                                         std::atomic<std::uint64_t>& committed) {
  std::vector<store::ledger_row> unwritten;
  for (std::size_t start = 0; start < rows.size(); start += options_.batch_max) {
    const auto chunk = rows.subspan(start, std::min(options_.batch_max, rows.size() - start));
    if (!write_chunk(chunk, committed, unwritten)) {
      // Unreachable: everything after this chunk stays unwritten too.
      const auto rest = rows.subspan(start + chunk.size());
      unwritten.insert(unwritten.end(), rest.begin(), rest.end());
      break;
    }
    pace_rows_done_ += chunk.size();
    pace(0);  // between chunks, and between shards
  }
  return unwritten;
}

bool ledger_writer::write_chunk(std::span<const store::ledger_row> chunk, std::atomic<std::uint64_t>& committed,
                                std::vector<store::ledger_row>& unwritten) {
  // Bounds the time one flush spends on a store that refuses writes while
  // answering pings: each failure may have waited for a lock timeout. Enough
  // to bisect one chunk down to its bad row and retry that row once.
  const unsigned failed_write_budget = static_cast<unsigned>(std::bit_width(options_.batch_max)) + 2;
  const auto keep = [&] { unwritten.insert(unwritten.end(), chunk.begin(), chunk.end()); };
  const auto try_write = [&] {
    try {
      store_.write_ledger(chunk, pause_);
      committed.fetch_add(chunk.size(), std::memory_order_relaxed);
      if (options_.on_committed) options_.on_committed(chunk);
      return true;
    } catch (const std::exception& e) {
      last_error_ = e.what();
      return false;
    }
  };
  if (unreachable_this_flush_) {
    keep();
    return false;
  }
  if (failed_writes_this_flush_ >= failed_write_budget) {
    // Budget spent (a bad row was being isolated): the remaining chunks are
    // still tried whole, since a bad row spoils only its own chunk, until
    // one more fails; then the rest waits in the spill file for later.
    if (wrote_this_flush_ && !gave_up_this_flush_ && try_write()) return true;
    if (wrote_this_flush_) gave_up_this_flush_ = true;
    keep();
    return true;
  }
  if (try_write()) {
    wrote_this_flush_ = true;
    return true;
  }
  ++failed_writes_this_flush_;
  if (!store_.ping()) {
    unreachable_this_flush_ = true;
    keep();
    return false;
  }
  // The store answers but refused the chunk. Look for the rows it refuses
  // only when it has been taking other rows; otherwise keep them for later.
  if (!(wrote_this_flush_ || wrote_last_flush_) || failed_writes_this_flush_ >= failed_write_budget) {
    keep();
    return true;
  }
  if (chunk.size() == 1) {
    if (!wrote_this_flush_) {
      keep();
      return true;
    }
    // Once more, in case the failure was transient after all.
    if (!try_write()) {
      ++failed_writes_this_flush_;
      reject(chunk.front(), last_error_);
    }
    return true;
  }
  const auto front = chunk.first(chunk.size() / 2);
  const auto back = chunk.subspan(front.size());
  if (!write_chunk(front, committed, unwritten)) {
    unwritten.insert(unwritten.end(), back.begin(), back.end());
    return false;
  }
  return write_chunk(back, committed, unwritten);
}

void ledger_writer::spill(std::span<const store::ledger_row> rows) {
  try {
    spill_.append(rows);
    spilled_.fetch_add(rows.size(), std::memory_order_relaxed);
    report(fmt::format("ledger: the store did not take {} row(s); spilled to {}: {}", rows.size(), spill_.path(),
                       last_error_));
  } catch (const std::exception& e) {
    count_background_drop(rows.size());
    report(fmt::format("ledger: {} row(s) lost: the store did not take them ({}) and cannot spill: {}", rows.size(),
                       last_error_, e.what()));
  }
}

void ledger_writer::reject(const store::ledger_row& row, std::string_view why) {
  try {
    rejected_.append(std::span<const store::ledger_row>(&row, 1));
    rejected_count_.fetch_add(1, std::memory_order_relaxed);
    report(fmt::format("ledger: the store refused row {}; moved to {}: {}", row.request_id, rejected_.path(), why));
  } catch (const std::exception& e) {
    count_background_drop(1);
    report(
        fmt::format("ledger: the store refused row {} ({}) and it cannot be kept: {}", row.request_id, why, e.what()));
  }
}

void ledger_writer::count_background_drop(std::size_t rows) {
  background_dropped_.fetch_add(rows, std::memory_order_relaxed);
  // Only this writer thread writes the ledger series on the background shard.
  if (has_metrics_) dropped_metric_.inc(background_shard_, static_cast<double>(rows));
}

void ledger_writer::report(std::string_view message) const {
  if (!on_error_) return;
  try {
    on_error_(message);
  } catch (...) {
    // A failing error sink must not stop the ledger.
  }
}

}  // namespace gatewayz::ledger

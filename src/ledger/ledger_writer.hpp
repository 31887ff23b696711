#pragma once
// The usage-ledger writer: server shards hand over one ledger row per
// accepted request; a background thread ("gw-ledger") writes them to the
// store in transactions of up to batch_max rows, every flush_interval_ms or
// as soon as a shard's queue is half full. The app owns it; the store must
// outlive it.
//
// Threads: enqueue(), enqueue_with() and has_room() are called by server
// shard `shard` only, on its own thread. They never block on I/O, never
// throw, and lock only that shard's queue (no lock is shared between shards).
// stop() and stats() may be called from any thread.
//
// Failure: a full queue (the store accepting rows slower than they arrive, or
// stuck on a lock) makes enqueue return false and counts the row in
// gatewayz_telemetry_dropped_total{pipeline="ledger"}; the gateway asks
// has_room() before it accepts a request and answers 503 instead, so a
// request is refused rather than served unrecorded. Rows the store cannot
// take while unreachable are spilled (spill_file.hpp, fsync'd) and replayed
// oldest first once it answers ping() again, also after a restart. A row the
// store refuses twice while accepting others goes to "<spill_path>.rejected"
// for an operator; every other refusal is spilled and retried. kill -9 loses
// only the rows still queued (about one flush interval's worth); stop()
// writes or spills everything queued.
//
// Metrics: a shard counts its own drops on its own metric shard; the writer
// thread counts rows it could neither write nor spill on the registry's
// background shard, reg.shards() - 1, so reg.shards() must exceed
// shard_count. Measurements and history: docs/decisions/ledger-*.md.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "ledger/spill_file.hpp"
#include "store/store.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::ledger {

struct writer_options {
  unsigned flush_interval_ms = 200;
  std::size_t queue_capacity = 64 * 1024;  // rows per shard
  // Rows per write_ledger call (one transaction). Each commit costs WAL
  // frames for the pages it touched and one upsert per rollup it changed, so
  // a flush's rows go in as few transactions as possible. How long the
  // writer holds its core at a time is paced separately (see
  // ledger_writer::pace).
  std::size_t batch_max = 4096;
  // How long the writer runs before it yields its core (see pace_*).
  std::chrono::microseconds writer_turn{300};
  std::string spill_path;  // empty = "./gatewayz-ledger.spill"
  // Size at which the spill file is sealed into a segment (a replay piece).
  std::size_t spill_segment_bytes = spill_file::default_segment_bytes;
  // Called on the writer thread with every batch of rows once the store has
  // committed them (queued rows and replayed spill rows, including an
  // earlier run's). It must not throw or block for long: customer balances
  // learn here which charges the database now holds.
  std::function<void(std::span<const store::ledger_row>)> on_committed;
};

// The spill path for a store URL when the config names none: next to an
// SQLite database ("<db>-ledger.spill", like SQLite's own -wal file), else
// "./gatewayz-ledger.spill".
std::string default_spill_path(std::string_view store_url);

struct writer_stats {
  std::uint64_t enqueued = 0;  // rows accepted by enqueue
  std::uint64_t dropped = 0;   // rows lost: queue full, enqueue after stop, or spill I/O failure
  std::uint64_t written = 0;   // queued rows committed directly
  std::uint64_t spilled = 0;   // rows appended to the spill file
  std::uint64_t replayed = 0;  // spilled rows committed on replay (a row replayed by an
                               // interrupted replay may be counted again next time)
  std::uint64_t rejected = 0;  // rows the store refused while healthy, moved to <spill>.rejected
  std::uint64_t flushes = 0;   // completed flush cycles
};

class ledger_writer {
 public:
  // Called on the writer thread with a description of a failure (never
  // holding secrets: store errors name no password, rows hold no keys).
  using error_callback = std::function<void(std::string_view message)>;

  // Starts the writer thread, which first replays any spill file left by an
  // earlier run. `metrics` may be null. Throws std::invalid_argument on
  // zero shards, capacity, batch size or interval, or when `metrics` has no
  // spare background shard.
  ledger_writer(store::store& store, writer_options options, std::size_t shard_count, telemetry::catalog* metrics,
                error_callback on_error = {});
  ~ledger_writer();
  ledger_writer(const ledger_writer&) = delete;
  ledger_writer& operator=(const ledger_writer&) = delete;

  // Called by server shard `shard` (< shard_count) once per accepted request.
  // Never blocks on I/O and never throws; false when the row was dropped
  // (queue full, writer stopped) or `shard` is out of range.
  bool enqueue(std::size_t shard, store::ledger_row row) noexcept;
  // The same, writing the row straight into its queue slot: `fill(row)`
  // must set every field, since the slot holds a row of an earlier flush
  // (whose string buffers are then reused: no allocation per row). The
  // writer only reads rows and never frees one, so a row's memory is
  // allocated and freed on its shard's thread alone. Called
  // under the shard's queue lock; it must not throw (std::bad_alloc aside,
  // which drops the row) and must not enqueue.
  template <typename Fill>
  bool enqueue_with(std::size_t shard, Fill&& fill) noexcept {
    return enqueue_fill(
        shard,
        [](store::ledger_row& row, const void* f) { (*static_cast<const std::remove_reference_t<Fill>*>(f))(row); },
        &fill);
  }

  // Whether shard `shard`'s queue has room for one more row once `reserved`
  // rows (requests in progress whose rows are not queued yet) are added to
  // those queued now. Lock-free (a relaxed read of the count), so a shard can
  // ask before it accepts a request: a billing gateway refuses a request
  // (503) rather than serve one whose row it would have to drop. False for an
  // unknown shard and after stop().
  bool has_room(std::size_t shard, std::size_t reserved) const noexcept;
  std::size_t shard_count() const noexcept { return shard_count_; }

  // Stops accepting rows, writes everything queued (then replays a piece of
  // the spill file), spills whatever the store does not take, and joins the
  // thread.
  // Idempotent; the destructor calls it.
  void stop();

  writer_stats stats() const;
  const std::string& spill_path() const { return spill_.path(); }

 private:
  // Rows [0, used) are queued (or being written); slots past `used` hold
  // rows written earlier, overwritten in place by later enqueues.
  struct row_buffer {
    std::vector<store::ledger_row> slots;
    std::size_t used = 0;
    std::span<const store::ledger_row> rows() const { return {slots.data(), used}; }
  };
  struct alignas(64) shard_queue {
    std::mutex mu;
    row_buffer rows;
    // rows.used (queue_capacity once stopped), for has_room() without the lock.
    std::atomic<std::size_t> queued{0};
    bool accepting = true;
    bool wake_sent = false;  // one early wake-up per fill
    std::uint64_t enqueued = 0;
    std::uint64_t dropped = 0;
  };

  using fill_function = void (*)(store::ledger_row& row, const void* context);
  bool enqueue_fill(std::size_t shard, fill_function fill, const void* context) noexcept;
  void run();
  // The store's pause inside a long write, and the writer's between chunks.
  // See pace_* below.
  void pace(std::size_t rows_written);
  // Starts a pacing schedule for `total_rows` rows (a flush, or a replay).
  void begin_pacing(std::size_t total_rows);
  // One cycle: write (or spill) the queued rows, then replay a piece of the
  // spill file, whose rows are removed only once committed (write_ledger
  // skips request ids it already has, so a replay after a partial success
  // is harmless). `final` also stops the queues from accepting more.
  void flush(bool final);
  void guarded_flush(bool final);
  // Swaps every shard's queued rows into drained_[shard].
  void drain_queues(bool final);
  void release_drained() noexcept;
  // Writes `rows` in chunks; returns the rows still unwritten (the store is
  // unreachable or refused them; see the header). Adds committed rows to
  // `committed`.
  std::vector<store::ledger_row> write_rows(std::span<const store::ledger_row> rows,
                                            std::atomic<std::uint64_t>& committed);
  // Writes one chunk, bisecting it when the store is up but refuses it, to
  // find a row it can never store (PostgreSQL refuses a NUL byte in text).
  // It bisects only when the store accepted other rows in this flush or the
  // previous one, and a flush spends at most log2(batch_max) + 2 failed
  // writes on it (each may have waited for a lock timeout); after that the
  // flush's other chunks are still tried whole until one more fails.
  // Rows of `chunk` neither committed nor rejected go to `unwritten`.
  // Returns false when the store is unreachable (stop writing this flush).
  bool write_chunk(std::span<const store::ledger_row> chunk, std::atomic<std::uint64_t>& committed,
                   std::vector<store::ledger_row>& unwritten);
  void spill(std::span<const store::ledger_row> rows);
  void reject(const store::ledger_row& row, std::string_view why);
  void report(std::string_view message) const;
  void count_background_drop(std::size_t rows);

  store::store& store_;
  writer_options options_;
  spill_file spill_;
  spill_file rejected_;
  error_callback on_error_;
  std::unique_ptr<shard_queue[]> queues_;
  std::size_t shard_count_;

  telemetry::counter_handle dropped_metric_;
  bool has_metrics_ = false;
  std::size_t background_shard_ = 0;

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_requested_ = false;
  bool stop_requested_ = false;

  // Writer thread only.
  // Pacing. The writer shares cores with the shards, and a shard waits for
  // whatever the writer runs without a break. But a core the writer yields
  // comes back only when the shard blocks or the scheduler's next tick ends
  // the shard's turn (4 ms at HZ=250), so yielding too often starves the
  // writer. A turn lasts options_.writer_turn, or up to four times that
  // while the writer is behind a schedule that spreads a flush's rows (or a
  // replay's) over one flush interval: it always gets at least a quarter of
  // a busy core when it needs it. See docs/decisions/ledger-writer-pacing.md.
  store::store::ledger_pause pause_;
  std::chrono::steady_clock::time_point pace_start_{};
  std::chrono::steady_clock::time_point turn_start_{};
  std::size_t pace_rows_total_ = 0;
  std::size_t pace_rows_done_ = 0;         // in chunks written since begin_pacing
  std::unique_ptr<row_buffer[]> drained_;  // per shard: the rows of the flush in progress
  std::string last_error_;                 // why the store last failed
  bool wrote_this_flush_ = false;
  bool wrote_last_flush_ = false;
  unsigned failed_writes_this_flush_ = 0;
  bool unreachable_this_flush_ = false;
  bool gave_up_this_flush_ = false;  // the budget was spent and one more chunk failed

  std::mutex stop_mu_;  // serialises stop() callers
  bool stopped_ = false;

  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> spilled_{0};
  std::atomic<std::uint64_t> replayed_{0};
  std::atomic<std::uint64_t> rejected_count_{0};
  std::atomic<std::uint64_t> background_dropped_{0};
  std::atomic<std::uint64_t> flushes_{0};

  std::thread thread_;
};

}  // namespace gatewayz::ledger

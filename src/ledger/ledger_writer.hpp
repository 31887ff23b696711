#pragma once
// The usage-ledger writer: shard threads hand over one ledger row per
// accepted request, a background thread writes them to the store in batches.
//
// Request path (enqueue): one short critical section on the shard's own
// mutex (no lock is shared between shards; a shard only touches the writer's
// wake-up mutex when its queue passes half full, so the writer flushes early).
// No I/O, no waiting on the writer, and no heap traffic between threads: the
// row is written into a slot of the shard's buffer over a row of an earlier
// flush, reusing its string buffers (enqueue_with), on the thread that
// allocated them. The writer only reads rows; it never frees one. (Rows
// freed by the writer, 14k per flush at full load, cost the shard 3%
// throughput and 0.5 ms of p99: the frees ran in one burst on its core, and
// the allocator then collected them on the shard's own allocations.) When a
// shard's queue is full the row is counted in gatewayz_telemetry_dropped_total{pipeline="ledger"} and enqueue
// returns false. A full queue means the store has taken longer than
// capacity / request rate (64k rows per shard by default) to accept the
// rows: a database slower than the traffic, or one stuck on a lock (an
// unreachable one is spilled, which keeps the queues moving). The gateway
// therefore asks has_room() before it accepts a request and answers 503
// while the queue is full, so requests are refused rather than served
// unrecorded; the request thread deliberately does no file I/O to save a row.
//
// Writer thread: every flush_interval_ms (or as soon as a queue is half full)
// it swaps out every shard's queue and calls store.write_ledger in chunks of
// batch_max (one transaction each), yielding the CPU every writer_turn, also
// inside a transaction (see pace_*). When the store fails (database
// unreachable) the rows are appended to the spill file (JSON lines, fsync'd) and the writer carries on;
// each later flush, once the store answers ping() again, also replays a
// piece of the spill file (write_ledger skips request ids it already has, so
// replaying after a partial success is harmless) and removes the replayed
// rows only once they are committed. A writer started on an existing spill file replays
// it first, so spilled rows survive restarts.
//
// Poison rows: a chunk can fail while the store answers ping(), either
// because the store is briefly refusing everything (lock timeouts) or because
// one row can never be stored (PostgreSQL refuses a NUL byte in text). The
// writer bisects such a chunk only when the store accepted other rows in this
// flush or the previous one, and spends at most log2(batch_max) + 2 failed
// attempts per flush on it (each may have waited for a lock timeout); after
// that the flush's other chunks are still tried whole until one more fails. A single row is set aside to
// "<spill_path>.rejected" (kept for an operator, never retried) only when it
// failed twice while other rows of the same flush were accepted. Everything
// else the store refuses is spilled and retried, so a transient refusal never
// discards a row, and one bad row cannot block the ledger.
//
// Loss bound: a kill -9 loses only the rows still queued, i.e. at most one
// flush interval's worth (plus the write in progress, which the store commits
// atomically or not at all). stop() (the SIGTERM path) writes or spills
// everything queued. Replay goes a piece per flush (the spill file is sealed
// into segments of about 60k rows, see spill_file.hpp), so a spill of hours
// of outage is replayed oldest first without holding it all in memory.
//
// Metrics: the enqueuing shard counts its own drops on its own metric shard.
// The writer thread counts rows it could neither write nor spill on metric
// shard reg.shards() - 1, the registry's extra shard for background threads;
// that requires reg.shards() > shard_count. Only this writer thread updates
// the ledger's series on that shard.

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
  // a flush's rows go in as few transactions as possible: SQLite writer CPU
  // was 1.25 us/row at 4096 rows against 1.5 at 256, at full load on one
  // core (bench/run.sh setup). How long the writer holds its core at a time
  // is paced separately (see ledger_writer::pace).
  std::size_t batch_max = 4096;
  // How long the writer runs before it yields its core (see pace_*).
  std::chrono::microseconds writer_turn{300};
  std::string spill_path;                  // empty = "./gatewayz-ledger.spill"
  // Size at which the spill file is sealed into a segment (a replay piece).
  std::size_t spill_segment_bytes = spill_file::default_segment_bytes;
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
  ledger_writer(store::store& store, writer_options options, std::size_t shard_count,
                telemetry::catalog* metrics, error_callback on_error = {});
  ~ledger_writer();
  ledger_writer(const ledger_writer&) = delete;
  ledger_writer& operator=(const ledger_writer&) = delete;

  // Called by server shard `shard` (< shard_count) once per accepted request.
  // Never blocks on I/O and never throws; false when the row was dropped
  // (queue full, writer stopped) or `shard` is out of range.
  bool enqueue(std::size_t shard, store::ledger_row row) noexcept;
  // The same, writing the row straight into its queue slot: `fill(row)`
  // must set every field, since the slot holds a row of an earlier flush
  // (whose string buffers are then reused: no allocation per row). Called
  // under the shard's queue lock; it must not throw (std::bad_alloc aside,
  // which drops the row) and must not enqueue.
  template <typename Fill>
  bool enqueue_with(std::size_t shard, Fill&& fill) noexcept {
    return enqueue_fill(
        shard, [](store::ledger_row& row, const void* f) { (*static_cast<const std::remove_reference_t<Fill>*>(f))(row); },
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

  // Stops accepting rows, writes everything queued (replaying the spill file
  // first), spills whatever the store does not take, and joins the thread.
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
  // One cycle: replay the spill file, then write (or spill) the queued rows.
  // `final` also stops the queues from accepting more.
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
  // Writes one chunk, bisecting it when the store is up but refuses it.
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
  // the shard's turn (4 ms at HZ=250): yielding after every 64-row group
  // starved the writer at full load (half the rows dropped), and yielding
  // only while ahead of schedule made turns long after each wait (p99 3.0
  // against 2.5 ms). So a turn lasts options_.writer_turn, or up to four
  // times that while the writer is behind a schedule that spreads a
  // flush's rows (or a replay's) over one flush interval: it always gets at least
  // a quarter of a busy core when it needs it.
  store::store::ledger_pause pause_;
  std::chrono::steady_clock::time_point pace_start_{};
  std::chrono::steady_clock::time_point turn_start_{};
  std::size_t pace_rows_total_ = 0;
  std::size_t pace_rows_done_ = 0;  // in chunks written since begin_pacing
  std::unique_ptr<row_buffer[]> drained_;  // per shard: the rows of the flush in progress
  std::string last_error_;  // why the store last failed
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

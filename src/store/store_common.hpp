#pragma once
// Pieces both backends share, so their semantics cannot drift apart: key
// generation and hashing, the aggregation of newly inserted ledger rows into
// debits and rollups, turning rollup sums into model_stats, and the
// database_* metrics.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/latency_histogram.hpp"
#include "store/store.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::store::detail {

std::int64_t now_unix_ms();

// A new API key: "gwz_" + 43 base64url characters of 32 random bytes.
std::string generate_key_secret();
// The part of a key that is safe to show in listings ("gwz_" + 8 characters).
std::string key_display_prefix(std::string_view secret);
// Lower-case hex SHA-256, the only form in which a key is stored.
std::string sha256_hex(std::string_view data);

// Credits (store.hpp, max_balance_nanos): throws balance_out_of_range
// unless |amount| is within the range.
void check_credit_amount(nanos_usd amount);
// The error for a credit of `amount` refused because it would take
// `balance` out of the range.
balance_out_of_range balance_range_error(nanos_usd balance, nanos_usd amount);

// Latencies as stored: NaN and infinities cannot be stored by both
// backends, and a latency is never negative, so those become 0.
inline double storable_ms(double ms) { return ms > 0.0 && ms < 1e300 ? ms : 0.0; }

// The rows in request-id order (stable: of two rows with one id the first
// stays first). Inserts in key order land on neighbouring index pages.
// With fast upstreams a shard's rows arrive nearly sorted (ids start with
// the time and a per-thread count; only requests that finish out of order
// move), so this is an insertion sort, one comparison per row plus one per
// place a row moves, that hands rows far from order to a merge sort early.
std::vector<const ledger_row*> rows_in_key_order(std::span<const ledger_row> rows);

// Minute of a timestamp, the rollup key's time part.
inline std::int64_t minute_of(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / 60'000 : -((-unix_ms + 59'999) / 60'000);
}

// First minute a stats() window includes, given the current time.
std::int64_t first_minute_of_window(std::int64_t now_ms, std::chrono::seconds window);

struct rollup_sums {
  std::int64_t requests = 0;
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  double latency_sum_ms = 0.0;
  std::int64_t tokens = 0;
  nanos_usd cost = 0;
};

// What a batch's newly inserted rows change: debits per customer, rollup
// sums per (minute, model, provider) and latency-bucket counts per rollup.
//
// add() runs once per inserted row on the ledger writer's thread, which in
// production shares a core with request serving, so it neither copies
// strings nor allocates per row: keys are views into the rows (which must
// outlive this object) and bucket hits are packed integers, counted by one
// sort in finish(). Allocation happens per distinct key, not per row.
//
// finish() sorts every list (customer id; minute, model, provider; bucket),
// so every writer touches rows in the same order, which keeps concurrent
// PostgreSQL transactions from deadlocking.
class batch_effects {
 public:
  struct debit {
    std::int64_t customer_id = 0;
    nanos_usd cost = 0;
  };
  struct rollup {
    std::int64_t minute = 0;
    std::string_view model;
    std::string_view provider;
    rollup_sums sums;
  };
  struct bucket_count {
    std::size_t rollup = 0;  // index into rollups()
    int bucket = 0;
    std::int64_t count = 0;
  };

  void add(const ledger_row& row);
  // Once, after the last add().
  void finish();

  // Valid after finish(), in the order described above.
  const std::vector<debit>& debits() const { return debits_; }
  const std::vector<rollup>& rollups() const { return rollups_; }
  const std::vector<bucket_count>& buckets() const { return buckets_; }

 private:
  struct key {
    std::int64_t minute;
    std::string_view model;
    std::string_view provider;
    bool operator==(const key&) const = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };

  std::unordered_map<std::int64_t, nanos_usd> debit_sums_;
  std::unordered_map<key, std::uint32_t, key_hash> rollup_index_;
  std::vector<std::uint64_t> bucket_hits_;  // rollup index << 16 | bucket, one per row
  std::vector<debit> debits_;
  std::vector<rollup> rollups_;
  std::vector<bucket_count> buckets_;
};

// Rollup sums of one (model, provider) over a window, plus merged buckets.
struct stats_accumulator {
  rollup_sums sums;
  latency_histogram::counts buckets;
};
using stats_by_model = std::map<std::pair<std::string, std::string>, stats_accumulator>;

// Final rows, sorted by total_requests desc, then model, then provider.
std::vector<model_stats> finish_stats(const stats_by_model& merged);

// database_queries_total / database_query_duration_seconds per operation.
// The store runs on background threads (and, for find_key on a cache miss,
// occasionally elsewhere), so it writes only the registry's last shard,
// which the composition root reserves for background threads. Several
// threads can use one store at once and a shard cell is single-writer, so
// updates go through a mutex here; that lock is never on the request path
// (the caller is already doing blocking database I/O).
class query_metrics {
 public:
  explicit query_metrics(telemetry::catalog* catalog) : catalog_(catalog) {}
  void record(std::string_view operation, std::chrono::steady_clock::duration elapsed);

 private:
  struct handles {
    telemetry::counter_handle queries;
    telemetry::histogram_handle duration;
  };
  telemetry::catalog* catalog_;
  std::mutex mu_;
  std::map<std::string, handles, std::less<>> resolved_;
};

// Times one operation and records it when it ends (success or failure).
class query_timer {
 public:
  query_timer(query_metrics& metrics, std::string_view operation)
      : metrics_(metrics), operation_(operation), start_(std::chrono::steady_clock::now()) {}
  query_timer(const query_timer&) = delete;
  query_timer& operator=(const query_timer&) = delete;
  ~query_timer() { metrics_.record(operation_, std::chrono::steady_clock::now() - start_); }

 private:
  query_metrics& metrics_;
  std::string_view operation_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace gatewayz::store::detail

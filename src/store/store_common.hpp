#pragma once
// Pieces both backends share, so their semantics cannot drift apart: key
// generation and hashing, the aggregation of newly inserted ledger rows into
// debits and rollups, turning rollup sums into model_stats, and the
// database_* metrics.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "store/latency_histogram.hpp"
#include "store/store.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::store::detail {

std::int64_t now_unix_ms();

// A new API key: "gwz_" + 43 base64url characters of 32 random bytes.
std::string generate_key_secret();
// The part of a key that is safe to show in listings ("gwz_" + 8 characters).
std::string key_display_prefix(std::string_view secret);
// Lower-case hex SHA-256, the only form in which a key is stored.
std::string sha256_hex(std::string_view data);

// Latencies as stored: NaN and infinities cannot be stored by both
// backends, and a latency is never negative, so those become 0.
inline double storable_ms(double ms) { return ms > 0.0 && ms < 1e300 ? ms : 0.0; }

// Minute of a timestamp, the rollup key's time part.
inline std::int64_t minute_of(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / 60'000 : -((-unix_ms + 59'999) / 60'000);
}

// First minute a stats() window includes, given the current time.
std::int64_t first_minute_of_window(std::int64_t now_ms, std::chrono::seconds window);

struct rollup_key {
  std::int64_t minute = 0;
  std::string model;
  std::string provider;
  auto operator<=>(const rollup_key&) const = default;
};

struct rollup_sums {
  std::int64_t requests = 0;
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  double latency_sum_ms = 0.0;
  std::int64_t tokens = 0;
  nanos_usd cost = 0;
};

// What a batch's newly inserted rows change. Maps are ordered so every
// writer touches rows in the same order (customer id, then rollup key),
// which keeps concurrent PostgreSQL transactions from deadlocking.
struct batch_effects {
  std::map<std::int64_t, nanos_usd> debits;  // customer id → total cost
  std::map<rollup_key, rollup_sums> rollups;
  std::map<std::tuple<rollup_key, int>, std::int64_t> buckets;  // (key, bucket) → count

  void add(const ledger_row& row);
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

std::unique_ptr<store> open_sqlite_store(std::string_view url, telemetry::catalog* metrics);
std::unique_ptr<store> open_postgres_store(std::string_view url, telemetry::catalog* metrics);

}  // namespace gatewayz::store::detail

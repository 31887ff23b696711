#pragma once
// Rolling windows of upstream attempts, per provider and per provider+model.
//
// window_store is the storage interface: in memory by default; a Redis or
// PostgreSQL backend shared by several gateway instances could implement it.
// memory_window_store is the default and the only implementation here.
// Writers are shard threads, each with its own shard index; readers (the
// monitor) may be any thread.
//
// A window "ending at now" covers the buckets from the one holding
// now − window to the one holding now: at least the window, at most one
// bucket more.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "health/attempt.hpp"

namespace gatewayz::health {

// Latency histogram with 6 bins per doubling from 1 ms to 65.5 s (bin 0:
// below 1 ms; the last bin: 65.5 s and above). A quantile is reported as the
// geometric middle of its bin, so it is within ±6 % of the exact sample
// quantile for values inside that range; the health score only needs
// p95 between 2 s and 10 s.
class latency_histogram {
 public:
  static constexpr std::size_t bins_per_doubling = 6;
  static constexpr std::size_t bin_count = 98;

  static std::size_t bin_of(double seconds);
  static double bin_lower_seconds(std::size_t bin);  // bin 0: 0

  void add(std::size_t bin, std::uint64_t count = 1) { bins[bin] += count; }
  std::uint64_t count() const;
  // Nearest-rank quantile (the ceil(q·n)-th smallest sample); 0 when empty.
  double quantile(double q) const;

  std::array<std::uint64_t, bin_count> bins{};
};

struct window_totals {
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::uint64_t client_errors = 0;
  double success_latency_sum_s = 0;
  latency_histogram success_latency;  // provider level only

  // Attempts that count for the provider: successes and failures.
  std::uint64_t requests() const { return successes + failures; }
};

struct hour_totals {
  std::uint64_t requests = 0;  // successes + failures
  std::uint64_t failures = 0;
};

class window_store {
 public:
  virtual ~window_store() = default;

  // Called by shard `shard`'s thread for each finished attempt (only that
  // thread uses that shard index). Must not block: a remote backend queues.
  virtual void record(std::size_t shard, std::size_t provider, const attempt_result& attempt) = 0;

  // Any thread; sums all shards. The histogram is filled here only.
  virtual window_totals provider_window(std::size_t provider, steady_time now) const = 0;
  // The same, counting only the buckets that begin after `after` (so no
  // attempt that finished at or before `after` is in it; later attempts in
  // the bucket holding `after` are left out too); the whole window when
  // `after` is older than the window.
  virtual window_totals provider_window_after(std::size_t provider, steady_time now, steady_time after) const = 0;
  virtual window_totals model_window(std::size_t provider, std::size_t model, steady_time now) const = 0;
  // The last 60 minutes (60–61 one-minute buckets).
  virtual hour_totals last_hour(std::size_t provider, steady_time now) const = 0;
};

// Layout: every shard (server thread) owns its own cells, so record() is
// single-writer: plain relaxed loads and stores, no lock and no
// read-modify-write shared with another thread. Readers sum all shards with
// relaxed loads. Cells live in rings of time buckets stamped with their
// bucket number; a writer entering a new bucket clears the slot under a
// sequence stamp, and readers skip a slot whose stamp changed while they
// read it. Reads cost the same whatever the traffic.
//
//   per provider  counts (successes, failures, client errors, latency sum)
//                 in buckets of window/30; a log-scale latency histogram (p95)
//                 in buckets of window/10; hour counts in 1-minute buckets
//   per model     successes, failures, latency sum in buckets of window/10,
//                 allocated by the shard on its first attempt for that model
//
// Memory: about 7 KB per provider per shard, plus 8 bytes per configured
// model per shard and 216 bytes per model a shard has actually served within
// the process's life (50 providers × 200 models × 4 shards: under 2 MB idle,
// under 3 MB when each shard serves 10 models per provider, about 10 MB in
// the worst case of every shard serving all 10,000 models). memory_bytes()
// reports it.
class memory_window_store final : public window_store {
 public:
  // models_per_provider[p]: number of model slots of provider p.
  memory_window_store(std::size_t shards, std::chrono::nanoseconds window,
                      const std::vector<std::size_t>& models_per_provider);
  ~memory_window_store() override;
  memory_window_store(const memory_window_store&) = delete;
  memory_window_store& operator=(const memory_window_store&) = delete;

  void record(std::size_t shard, std::size_t provider, const attempt_result& attempt) override;
  window_totals provider_window(std::size_t provider, steady_time now) const override;
  window_totals provider_window_after(std::size_t provider, steady_time now, steady_time after) const override;
  window_totals model_window(std::size_t provider, std::size_t model, steady_time now) const override;
  hour_totals last_hour(std::size_t provider, steady_time now) const override;

  // Bytes of cells currently allocated (grows as shards first serve models).
  std::size_t memory_bytes() const;

 private:
  struct shard_cells;
  std::size_t shards_;
  std::chrono::nanoseconds window_;
  std::vector<std::size_t> models_per_provider_;
  std::vector<std::unique_ptr<shard_cells>> cells_;  // one per shard
};

}  // namespace gatewayz::health

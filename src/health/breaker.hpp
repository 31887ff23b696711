#pragma once
// Internal to src/health: one provider's circuit breaker (the state machine
// is documented in health.hpp).
//
// The state and its episode number share one atomic word, so admit() in the
// closed state is a single acquire load. Consecutive failures are one shared
// counter: a success stores 0 only when it is not 0 already (no
// read-modify-write on the success path); a failure increments it. The
// error-rate rule reads per-shard bucket rings of successes and failures.
// Every transition happens under the breaker's mutex; so do all updates of
// its transition counters (on shard 0's cell, safe because they are
// serialised by that mutex).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "health/health.hpp"
#include "health/ring.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::health::detail {

class breaker {
 public:
  breaker(std::size_t index, std::string name, const breaker_options& options, std::chrono::nanoseconds window,
          std::size_t shards, const clock_source& clock, telemetry::catalog& metrics,
          const std::function<void(const transition&)>& on_transition);
  ~breaker();
  breaker(const breaker&) = delete;
  breaker& operator=(const breaker&) = delete;

  admission admit(std::size_t shard) {
    const std::uint64_t word = word_.load(std::memory_order_acquire);
    if (state_of(word) == breaker_state::closed) return {index_, true, false, word >> 2};
    return admit_slow(shard);
  }
  void on_result(std::size_t shard, const admission& a, outcome o, steady_time finished);
  // Monitor: turns an expired open state half-open and writes off stale trials.
  void maintain();
  void reset();
  // Shared health: the episode number (changes on every transition) ...
  std::uint64_t generation() const { return word_.load(std::memory_order_acquire) >> 2; }
  // ... and, while open, when its cool-down ends.
  std::optional<wall_time> open_until() const;
  // Another instance opened this provider's breaker until `until`: opens
  // this one too (reason "shared_open") unless it is open already or
  // `until` has passed.
  void adopt_open(wall_time until);

  breaker_state state() const { return state_of(word_.load(std::memory_order_acquire)); }
  // Whether admit() would now grant a half-open trial: half-open with a free
  // trial slot, or open with its cool-down over. One atomic load while closed.
  bool wants_trial() const {
    if (state() == breaker_state::closed) return false;
    return wants_trial_slow();
  }
  // When it last closed after successful trials or a manual reset; nullopt
  // if it never did.
  std::optional<steady_time> recovered_at() const;
  breaker_info info() const;

 private:
  struct shard_counts;

  static breaker_state state_of(std::uint64_t word) { return static_cast<breaker_state>(word & 3); }

  admission admit_slow(std::size_t shard);
  bool wants_trial_slow() const;
  void on_trial_result(const admission& a, outcome o);
  void on_closed_failure(steady_time finished);
  wall_time wall_of(steady_time t) const;
  // Under mu_: switches state, updates metrics; returns the event to report
  // once mu_ is released.
  transition move_to(breaker_state to, steady_time now, const char* reason);
  void expire_trials(steady_time now);
  std::chrono::nanoseconds open_duration() const;
  void notify(const std::optional<transition>& event) const;

  std::size_t index_;
  std::string name_;
  breaker_options options_;
  std::chrono::nanoseconds bucket_width_;
  std::chrono::nanoseconds window_;
  const clock_source& clock_;
  telemetry::catalog& metrics_;
  const std::function<void(const transition&)>& on_transition_;

  // (generation << 2) | state
  std::atomic<std::uint64_t> word_{0};
  std::atomic<std::uint32_t> consecutive_failures_{0};
  std::atomic<std::int64_t> closed_since_ns_{0};
  std::vector<std::unique_ptr<shard_counts>> shards_;

  telemetry::gauge_handle state_gauges_[3];
  telemetry::counter_handle rejected_;

  mutable std::mutex mu_;  // guards everything below and all transitions
  steady_time open_until_{};
  unsigned reopen_count_ = 0;
  unsigned trials_in_flight_ = 0;
  unsigned trial_successes_ = 0;
  steady_time last_trial_admitted_{};
  std::optional<steady_time> last_transition_;
  std::optional<steady_time> recovered_at_;
};

}  // namespace gatewayz::health::detail

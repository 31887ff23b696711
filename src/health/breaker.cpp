#include "health/breaker.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace gatewayz::health::detail {

namespace {

using std::chrono::nanoseconds;

// The error-rate rule reads the window in buckets of window/30.
constexpr std::size_t buckets_per_window = 30;
constexpr std::size_t ring_slack = 3;

nanoseconds seconds_ns(double s) { return std::chrono::duration_cast<nanoseconds>(std::chrono::duration<double>(s)); }

struct counts {
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  counts& operator+=(const counts& o) {
    successes += o.successes;
    failures += o.failures;
    return *this;
  }
};

struct count_cells {
  std::atomic<std::uint32_t> successes{0};
  std::atomic<std::uint32_t> failures{0};
  void clear() {
    successes.store(0, std::memory_order_relaxed);
    failures.store(0, std::memory_order_relaxed);
  }
  void read_into(counts& c) const {
    c.successes += successes.load(std::memory_order_relaxed);
    c.failures += failures.load(std::memory_order_relaxed);
  }
};

}  // namespace

struct breaker::shard_counts {
  shard_counts() : ring(buckets_per_window + ring_slack) {}
  bucket_ring<count_cells> ring;
};

breaker::breaker(std::size_t index, std::string name, const breaker_options& options, nanoseconds window,
                 std::size_t shards, const clock_source& clock, telemetry::catalog& metrics,
                 const std::function<void(const transition&)>& on_transition)
    : index_(index),
      name_(std::move(name)),
      options_(options),
      bucket_width_(window / buckets_per_window),
      window_(window),
      clock_(clock),
      metrics_(metrics),
      on_transition_(on_transition) {
  closed_since_ns_.store(clock_.steady().time_since_epoch().count(), std::memory_order_relaxed);
  shards_.reserve(shards);
  for (std::size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<shard_counts>());
  for (auto s : {breaker_state::closed, breaker_state::open, breaker_state::half_open}) {
    state_gauges_[static_cast<int>(s)] = metrics_.circuit_breaker_state.series({name_, to_string(s)});
    state_gauges_[static_cast<int>(s)].set(s == breaker_state::closed ? 1 : 0);
  }
  rejected_ = metrics_.circuit_breaker_rejected.series({name_});
  // Every transition the breaker can make is exported at 0 from the start, so
  // increase() over the first real one sees 0 -> 1 rather than a lone sample
  // (Prometheus returns nothing for a series born with its first increment).
  using enum breaker_state;
  for (auto [from, to] : {std::pair{closed, open}, std::pair{open, half_open}, std::pair{half_open, closed},
                          std::pair{half_open, open}, std::pair{open, closed}}) {
    metrics_.circuit_breaker_transitions.series({name_, to_string(from), to_string(to)});
  }
}

breaker::~breaker() = default;

wall_time breaker::wall_of(steady_time t) const {
  return clock_.wall() + std::chrono::duration_cast<wall_time::duration>(t - clock_.steady());
}

nanoseconds breaker::open_duration() const {
  const double seconds = std::min(options_.max_open_s, options_.open_s * std::exp2(static_cast<double>(reopen_count_)));
  return seconds_ns(seconds);
}

void breaker::notify(const std::optional<transition>& event) const {
  if (event && on_transition_) on_transition_(*event);
}

transition breaker::move_to(breaker_state to, steady_time now, const char* reason) {
  const std::uint64_t word = word_.load(std::memory_order_relaxed);
  const breaker_state from = state_of(word);
  consecutive_failures_.store(0, std::memory_order_relaxed);
  trials_in_flight_ = 0;
  trial_successes_ = 0;
  switch (to) {
    case breaker_state::open:
      reopen_count_ = from == breaker_state::half_open ? reopen_count_ + 1 : 0;
      open_until_ = now + open_duration();
      break;
    case breaker_state::half_open: break;
    case breaker_state::closed:
      reopen_count_ = 0;
      recovered_at_ = now;
      closed_since_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
      break;
  }
  // Release: a shard that sees the new state also sees closed_since and the
  // reset failure streak.
  word_.store((((word >> 2) + 1) << 2) | static_cast<std::uint64_t>(to), std::memory_order_release);
  state_gauges_[static_cast<int>(from)].set(0);
  state_gauges_[static_cast<int>(to)].set(1);
  metrics_.circuit_breaker_transitions.series({name_, to_string(from), to_string(to)}).inc(0);
  last_transition_ = now;
  return transition{index_, name_, from, to, reason, wall_of(now)};
}

void breaker::expire_trials(steady_time now) {
  if (trials_in_flight_ == 0 || now - last_trial_admitted_ < seconds_ns(options_.trial_timeout_s)) return;
  // Write the outstanding trials off: a new episode starts, and reports of the
  // old one (should they still come) are ignored by their generation.
  trials_in_flight_ = 0;
  trial_successes_ = 0;
  const std::uint64_t word = word_.load(std::memory_order_relaxed);
  word_.store((((word >> 2) + 1) << 2) | (word & 3), std::memory_order_release);
}

admission breaker::admit_slow(std::size_t shard) {
  std::optional<transition> event;
  admission result{index_, false, false, 0};
  {
    std::lock_guard lock(mu_);
    const steady_time now = clock_.steady();
    if (state() == breaker_state::closed) {  // it closed while we were getting here
      return {index_, true, false, word_.load(std::memory_order_relaxed) >> 2};
    }
    if (state() == breaker_state::open && now >= open_until_) {
      event = move_to(breaker_state::half_open, now, "cool_down_elapsed");
    }
    if (state() == breaker_state::half_open) {
      expire_trials(now);
      if (trial_successes_ + trials_in_flight_ < options_.half_open_requests) {
        ++trials_in_flight_;
        last_trial_admitted_ = now;
        result = {index_, true, true, word_.load(std::memory_order_relaxed) >> 2};
      }
    }
  }
  notify(event);
  if (!result.admitted) rejected_.inc(shard);
  return result;
}

bool breaker::wants_trial_slow() const {
  std::lock_guard lock(mu_);
  const steady_time now = clock_.steady();
  switch (state()) {
    case breaker_state::closed: return false;
    case breaker_state::open: return now >= open_until_;
    case breaker_state::half_open: {
      // Trials past trial_timeout_s are written off at the next admit().
      const bool stale = trials_in_flight_ > 0 && now - last_trial_admitted_ >= seconds_ns(options_.trial_timeout_s);
      return stale || trial_successes_ + trials_in_flight_ < options_.half_open_requests;
    }
  }
  return false;
}

std::optional<steady_time> breaker::recovered_at() const {
  std::lock_guard lock(mu_);
  return recovered_at_;
}

void breaker::on_result(std::size_t shard, const admission& a, outcome o, steady_time finished) {
  if (o == outcome::success || o == outcome::failure) {
    if (count_cells* c = shards_[shard]->ring.writable(bucket_of(finished, bucket_width_))) {
      single_writer_add(o == outcome::success ? c->successes : c->failures, 1u);
    }
  }
  if (a.trial) {
    on_trial_result(a, o);
    return;
  }
  if (o == outcome::success) {
    if (consecutive_failures_.load(std::memory_order_relaxed) != 0) {
      consecutive_failures_.store(0, std::memory_order_relaxed);
    }
  } else if (o == outcome::failure) {
    on_closed_failure(finished);
  }
}

void breaker::on_trial_result(const admission& a, outcome o) {
  std::optional<transition> event;
  {
    std::lock_guard lock(mu_);
    const std::uint64_t word = word_.load(std::memory_order_relaxed);
    if (state_of(word) != breaker_state::half_open || (word >> 2) != a.generation) return;  // stale trial
    if (trials_in_flight_ > 0) --trials_in_flight_;
    if (o == outcome::success) {
      if (++trial_successes_ >= options_.half_open_requests) {
        event = move_to(breaker_state::closed, clock_.steady(), "trials_succeeded");
      }
    } else if (o == outcome::failure) {
      event = move_to(breaker_state::open, clock_.steady(), "trial_failed");
    }
    // client_error and cancelled only free the slot.
  }
  notify(event);
}

void breaker::on_closed_failure(steady_time finished) {
  // Attempts admitted before the breaker opened may finish afterwards: they
  // say nothing new.
  if (state() != breaker_state::closed) return;
  const unsigned streak = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  const char* reason = nullptr;
  if (streak >= options_.failure_threshold) {
    reason = "consecutive_failures";
  } else {
    // Only attempts since the breaker last closed (to bucket precision): the
    // failures that opened it before must not reopen it.
    const steady_time closed_since{nanoseconds(closed_since_ns_.load(std::memory_order_relaxed))};
    const steady_time window_start = finished.time_since_epoch() > window_ ? finished - window_ : steady_time{};
    const std::uint32_t first = bucket_of(std::max(closed_since, window_start), bucket_width_);
    const std::uint32_t last = bucket_of(finished, bucket_width_);
    counts total;
    for (const auto& s : shards_) s->ring.sum(first, last, total);
    const std::uint64_t requests = total.successes + total.failures;
    if (requests >= options_.min_requests && requests > 0 &&
        static_cast<double>(total.failures) >= options_.error_rate_threshold * static_cast<double>(requests)) {
      reason = "error_rate";
    }
  }
  if (reason == nullptr) return;
  std::optional<transition> event;
  {
    std::lock_guard lock(mu_);
    if (state() == breaker_state::closed) event = move_to(breaker_state::open, clock_.steady(), reason);
  }
  notify(event);
}

void breaker::maintain() {
  std::optional<transition> event;
  {
    std::lock_guard lock(mu_);
    const steady_time now = clock_.steady();
    if (state() == breaker_state::open && now >= open_until_) {
      event = move_to(breaker_state::half_open, now, "cool_down_elapsed");
    }
    if (state() == breaker_state::half_open) expire_trials(now);
  }
  notify(event);
}

std::optional<wall_time> breaker::open_until() const {
  std::lock_guard lock(mu_);
  if (state() != breaker_state::open) return std::nullopt;
  return wall_of(open_until_);
}

void breaker::adopt_open(wall_time until) {
  std::optional<transition> event;
  {
    std::lock_guard lock(mu_);
    const steady_time now = clock_.steady();
    const auto left = until - clock_.wall();
    if (state() == breaker_state::open || left <= wall_time::duration::zero()) return;
    event = move_to(breaker_state::open, now, "shared_open");
    open_until_ = now + std::chrono::duration_cast<nanoseconds>(left);
  }
  notify(event);
}

void breaker::reset() {
  std::optional<transition> event;
  {
    std::lock_guard lock(mu_);
    const steady_time now = clock_.steady();
    if (state() != breaker_state::closed) {
      event = move_to(breaker_state::closed, now, "manual_reset");
    } else {
      consecutive_failures_.store(0, std::memory_order_relaxed);
      reopen_count_ = 0;
      recovered_at_ = now;
      closed_since_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    }
  }
  notify(event);
}

breaker_info breaker::info() const {
  std::lock_guard lock(mu_);
  breaker_info out;
  out.provider = name_;
  out.state = state();
  out.consecutive_failures = consecutive_failures_.load(std::memory_order_relaxed);
  out.reopen_count = reopen_count_;
  if (out.state == breaker_state::open) {
    out.open_duration_s =
        std::min(options_.max_open_s, options_.open_s * std::exp2(static_cast<double>(reopen_count_)));
    out.retry_at = wall_of(open_until_);
  } else {
    // What the next opening would last.
    const double next = out.state == breaker_state::half_open ? reopen_count_ + 1.0 : 0.0;
    out.open_duration_s = std::min(options_.max_open_s, options_.open_s * std::exp2(next));
  }
  out.trials_in_flight = trials_in_flight_;
  out.trial_successes = trial_successes_;
  if (last_transition_) out.last_transition_at = wall_of(*last_transition_);
  return out;
}

}  // namespace gatewayz::health::detail

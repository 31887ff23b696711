#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "health/clock.hpp"
#include "health/window_store.hpp"

namespace gatewayz::health {
namespace {

using namespace std::chrono_literals;

constexpr auto window = std::chrono::nanoseconds(300s);

attempt_result at(steady_time t, outcome o, std::chrono::nanoseconds d = 100ms, std::size_t model = no_model) {
  return attempt_result{model, o, d, t};
}

// The exact nearest-rank quantile.
double exact_quantile(std::vector<double> v, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank - 1), v.end());
  return v[rank - 1];
}

TEST(LatencyHistogram, BinsAreLogScaleWithUnderAndOverflow) {
  EXPECT_EQ(latency_histogram::bin_of(0.0), 0u);
  EXPECT_EQ(latency_histogram::bin_of(0.0009), 0u);
  EXPECT_EQ(latency_histogram::bin_of(0.001), 1u);
  EXPECT_EQ(latency_histogram::bin_of(0.002), 1u + latency_histogram::bins_per_doubling);
  EXPECT_EQ(latency_histogram::bin_of(1e6), latency_histogram::bin_count - 1);
  EXPECT_EQ(latency_histogram::bin_of(std::nan("")), 0u);
  for (std::size_t b = 1; b + 1 < latency_histogram::bin_count; ++b) {
    const double lo = latency_histogram::bin_lower_seconds(b);
    EXPECT_EQ(latency_histogram::bin_of(lo * 1.0001), b) << b;
    EXPECT_NEAR(latency_histogram::bin_lower_seconds(b + 1) / lo, std::exp2(1.0 / 6), 1e-9);
  }
  latency_histogram empty;
  EXPECT_EQ(empty.quantile(0.95), 0.0);
}

TEST(MemoryWindowStore, P95IsWithinSixPercentOfExactOnRandomData) {
  manual_clock clock;
  std::mt19937_64 rng(42);
  // Lognormal latencies around 0.5–5 s, exponential, and a bimodal mix.
  std::lognormal_distribution<double> lognormal(std::log(0.8), 0.9);
  std::exponential_distribution<double> exponential(1.0 / 2.5);
  std::uniform_real_distribution<double> fast(0.05, 0.3);
  std::uniform_real_distribution<double> slow(4.0, 9.0);
  std::bernoulli_distribution pick_slow(0.1);
  for (int distribution = 0; distribution < 3; ++distribution) {
    for (int n : {20, 1000, 20000}) {
      memory_window_store store(2, window, {0});
      std::vector<double> samples;
      for (int i = 0; i < n; ++i) {
        double s = 0;
        if (distribution == 0) s = lognormal(rng);
        if (distribution == 1) s = exponential(rng) + 0.002;
        if (distribution == 2) s = pick_slow(rng) ? slow(rng) : fast(rng);
        samples.push_back(s);
        const auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
        store.record(static_cast<std::size_t>(i % 2), 0, at(clock.steady(), outcome::success, d));
      }
      const window_totals t = store.provider_window(0, clock.steady());
      ASSERT_EQ(t.success_latency.count(), static_cast<std::uint64_t>(n));
      for (double q : {0.5, 0.95, 0.99}) {
        const double exact = exact_quantile(samples, q);
        const double estimate = t.success_latency.quantile(q);
        EXPECT_LE(std::abs(estimate / exact - 1), 0.06) << "distribution " << distribution << " n " << n << " q " << q
                                                        << " exact " << exact << " estimate " << estimate;
      }
    }
  }
}

TEST(MemoryWindowStore, AttemptsExpireAfterTheWindow) {
  manual_clock clock;
  memory_window_store store(1, window, {0});
  const steady_time t0 = clock.steady();
  store.record(0, 0, at(t0, outcome::success, 2s));
  store.record(0, 0, at(t0, outcome::failure));
  store.record(0, 0, at(t0 + 100s, outcome::success, 4s));

  window_totals t = store.provider_window(0, t0 + 100s);
  EXPECT_EQ(t.successes, 2u);
  EXPECT_EQ(t.failures, 1u);
  EXPECT_DOUBLE_EQ(t.success_latency_sum_s, 6.0);
  EXPECT_EQ(t.success_latency.count(), 2u);

  // The window covers at least 300 s and at most one bucket (10 s) more.
  t = store.provider_window(0, t0 + 300s);
  EXPECT_EQ(t.requests(), 3u);
  t = store.provider_window(0, t0 + 320s);
  EXPECT_EQ(t.successes, 1u);
  EXPECT_EQ(t.failures, 0u);
  // The latency histogram uses buckets of window/10: gone within 330 s.
  EXPECT_EQ(store.provider_window(0, t0 + 331s).success_latency.count(), 1u);
  t = store.provider_window(0, t0 + 431s);
  EXPECT_EQ(t.requests(), 0u);
  EXPECT_EQ(t.success_latency.count(), 0u);
  EXPECT_EQ(t.success_latency_sum_s, 0.0);
}

TEST(MemoryWindowStore, RecycledSlotsStartFromZero) {
  manual_clock clock;
  memory_window_store store(1, window, {1});
  steady_time t = clock.steady();
  // Many laps of every ring, a few attempts per bucket.
  for (int i = 0; i < 2000; ++i) {
    t += 7s;
    store.record(0, 0, at(t, i % 3 == 0 ? outcome::failure : outcome::success, 10ms, 0));
  }
  // 300 s window ending at t: the attempts of the last 300–310 s, 7 s apart.
  const window_totals w = store.provider_window(0, t);
  EXPECT_GE(w.requests(), 300u / 7);
  EXPECT_LE(w.requests(), 310u / 7 + 1);
  const window_totals m = store.model_window(0, 0, t);
  EXPECT_GE(m.requests(), 300u / 7);
  EXPECT_LE(m.requests(), 330u / 7 + 1);
  // An attempt reported more than a ring late is dropped, not mixed in.
  store.record(0, 0, at(t - 3600s, outcome::failure));
  EXPECT_EQ(store.provider_window(0, t).requests(), w.requests());
}

TEST(MemoryWindowStore, ShardsAreMerged) {
  manual_clock clock;
  memory_window_store store(4, window, {2, 0});
  const steady_time now = clock.steady();
  for (std::size_t shard = 0; shard < 4; ++shard) {
    for (std::size_t i = 0; i <= shard; ++i) store.record(shard, 0, at(now, outcome::success, 1s, 1));
    store.record(shard, 0, at(now, outcome::failure, 1s, 1));
    store.record(shard, 1, at(now, outcome::success));
  }
  const window_totals t = store.provider_window(0, now);
  EXPECT_EQ(t.successes, 1u + 2 + 3 + 4);
  EXPECT_EQ(t.failures, 4u);
  EXPECT_DOUBLE_EQ(t.success_latency_sum_s, 10.0);
  const window_totals m = store.model_window(0, 1, now);
  EXPECT_EQ(m.successes, 10u);
  EXPECT_EQ(m.failures, 4u);
  EXPECT_EQ(store.model_window(0, 0, now).requests(), 0u);
  EXPECT_EQ(store.provider_window(1, now).successes, 4u);
  EXPECT_EQ(store.last_hour(0, now).requests, 14u);
  EXPECT_EQ(store.last_hour(0, now).failures, 4u);
}

TEST(MemoryWindowStore, ClientErrorsAndCancellationsAreNotProviderRequests) {
  manual_clock clock;
  memory_window_store store(1, window, {1});
  const steady_time now = clock.steady();
  store.record(0, 0, at(now, outcome::success, 1s, 0));
  store.record(0, 0, at(now, outcome::client_error, 50ms, 0));
  store.record(0, 0, at(now, outcome::client_error, 50ms, 0));
  store.record(0, 0, at(now, outcome::cancelled, 5s, 0));
  // A failure's duration does not enter the latency statistics.
  store.record(0, 0, at(now, outcome::failure, 30s, 0));
  const window_totals t = store.provider_window(0, now);
  EXPECT_EQ(t.successes, 1u);
  EXPECT_EQ(t.failures, 1u);
  EXPECT_EQ(t.client_errors, 2u);
  EXPECT_DOUBLE_EQ(t.success_latency_sum_s, 1.0);
  EXPECT_EQ(t.success_latency.count(), 1u);
  EXPECT_EQ(store.last_hour(0, now).requests, 2u);
  EXPECT_EQ(store.model_window(0, 0, now).requests(), 2u);
}

TEST(MemoryWindowStore, LastHourCountsSixtyMinutes) {
  manual_clock clock;
  memory_window_store store(2, window, {0});
  const steady_time t0 = clock.steady();
  // One attempt per minute for 90 minutes, every fifth a failure.
  for (int minute = 0; minute < 90; ++minute) {
    store.record(static_cast<std::size_t>(minute % 2), 0,
                 at(t0 + std::chrono::minutes(minute), minute % 5 == 0 ? outcome::failure : outcome::success));
  }
  const steady_time now = t0 + 89min;
  const hour_totals h = store.last_hour(0, now);
  // Minutes 29..89 (61 one-minute buckets: at least the hour).
  EXPECT_EQ(h.requests, 61u);
  EXPECT_EQ(h.failures, 12u);  // minutes 30, 35, ..., 85
}

TEST(MemoryWindowStore, ModelCellsAreAllocatedOnFirstUse) {
  manual_clock clock;
  memory_window_store store(2, window, {3});
  const std::size_t idle = store.memory_bytes();
  store.record(0, 0, at(clock.steady(), outcome::success, 1s, 2));
  const std::size_t one = store.memory_bytes();
  EXPECT_GT(one, idle);
  store.record(0, 0, at(clock.steady(), outcome::success, 1s, 2));
  EXPECT_EQ(store.memory_bytes(), one);
  // Out-of-range model slots count for the provider only.
  store.record(1, 0, at(clock.steady(), outcome::success, 1s, 7));
  store.record(1, 0, at(clock.steady(), outcome::success, 1s, no_model));
  EXPECT_EQ(store.memory_bytes(), one);
  EXPECT_EQ(store.provider_window(0, clock.steady()).successes, 4u);
  EXPECT_EQ(store.model_window(0, 2, clock.steady()).successes, 2u);
  EXPECT_EQ(store.model_window(0, 7, clock.steady()).requests(), 0u);
}

TEST(MemoryWindowStore, FiftyProvidersTwoHundredModelsStayWithinAFewMegabytes) {
  manual_clock clock;
  constexpr std::size_t shards = 4;
  memory_window_store store(shards, window, std::vector<std::size_t>(50, 200));
  const std::size_t idle = store.memory_bytes();
  EXPECT_LT(idle, 2u * 1024 * 1024) << idle;
  // A realistic load: every shard serves 10 models of every provider.
  for (std::size_t shard = 0; shard < shards; ++shard) {
    for (std::size_t p = 0; p < 50; ++p) {
      for (std::size_t m = 0; m < 10; ++m) store.record(shard, p, at(clock.steady(), outcome::success, 1s, m));
    }
  }
  EXPECT_LT(store.memory_bytes(), 3u * 1024 * 1024);
  // The worst case: every shard serves every one of the 10,000 models
  // (216 bytes per model and shard).
  for (std::size_t shard = 0; shard < shards; ++shard) {
    for (std::size_t p = 0; p < 50; ++p) {
      for (std::size_t m = 0; m < 200; ++m) store.record(shard, p, at(clock.steady(), outcome::success, 1s, m));
    }
  }
  const std::size_t full = store.memory_bytes();
  EXPECT_LT(full, 11u * 1024 * 1024) << full;
  EXPECT_EQ(store.model_window(49, 199, clock.steady()).successes, shards);
}

}  // namespace
}  // namespace gatewayz::health

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fixture.hpp"

namespace gatewayz::health::test {
namespace {

constexpr std::size_t alpha = 0;
constexpr std::size_t beta = 1;

// A prober whose answers the test scripts; counts the calls.
class scripted_prober final : public prober {
 public:
  std::vector<probe_result> probe(std::span<const std::size_t> providers) override {
    std::lock_guard lock(mu);
    std::vector<probe_result> out;
    for (std::size_t p : providers) {
      probed.push_back(p);
      out.push_back(answers.at(p));
    }
    return out;
  }
  void stop() override { stopped = true; }

  std::mutex mu;
  std::map<std::size_t, probe_result> answers;
  std::vector<std::size_t> probed;
  std::atomic<bool> stopped{false};
};

TEST(Score, GuideFormulaOnWorkedExamples) {
  EXPECT_DOUBLE_EQ(latency_score(0.3), 1.0);
  EXPECT_DOUBLE_EQ(latency_score(2.0), 1.0);
  EXPECT_DOUBLE_EQ(latency_score(6.0), 0.5);
  EXPECT_DOUBLE_EQ(latency_score(10.0), 0.0);
  EXPECT_DOUBLE_EQ(latency_score(30.0), 0.0);
  // The guide's "cerebras": availability 0.85, error rate 0.15, p95 7.2 s → 0.70.
  EXPECT_NEAR(health_score(0.85, 0.15, latency_score(7.2)), 0.70, 1e-12);
  // Perfect, and fully broken.
  EXPECT_DOUBLE_EQ(health_score(1, 0, 1), 1.0);
  EXPECT_DOUBLE_EQ(health_score(0, 1, 0), 0.0);
  // 0.4·0.9 + 0.3·0.9 + 0.3·0.75 = 0.855
  EXPECT_NEAR(health_score(0.9, 0.1, latency_score(4.0)), 0.855, 1e-12);
}

TEST(Classify, StatusCodesAndCredentials) {
  EXPECT_EQ(classify_status(200), outcome::success);
  EXPECT_EQ(classify_status(204), outcome::success);
  EXPECT_EQ(classify_status(500), outcome::failure);
  EXPECT_EQ(classify_status(503), outcome::failure);
  EXPECT_EQ(classify_status(429), outcome::failure);
  EXPECT_EQ(classify_status(408), outcome::failure);
  EXPECT_EQ(classify_status(302), outcome::failure);
  EXPECT_EQ(classify_status(400), outcome::client_error);
  EXPECT_EQ(classify_status(403), outcome::client_error);
  EXPECT_EQ(classify_status(404), outcome::client_error);
  EXPECT_EQ(classify_status(422), outcome::client_error);
  EXPECT_EQ(classify_status(401), outcome::failure);
  EXPECT_EQ(classify_status(401, true), outcome::client_error);
}

TEST(Options, InvalidValuesAreRejected) {
  telemetry::registry reg(1);
  telemetry::catalog metrics(reg, "test");
  const auto rejects = [&](auto change) {
    options o = two_providers();
    change(o);
    EXPECT_THROW(monitor(o, metrics), std::invalid_argument);
  };
  rejects([](options& o) { o.window_s = 0; });
  rejects([](options& o) { o.interval_s = -1; });
  rejects([](options& o) { o.breaker.failure_threshold = 0; });
  rejects([](options& o) { o.breaker.error_rate_threshold = 1.5; });
  rejects([](options& o) { o.breaker.max_open_s = 10; });
  rejects([](options& o) { o.breaker.half_open_requests = 0; });
  rejects([](options& o) { o.providers[1].name = "alpha"; });
  rejects([](options& o) {
    o.providers[0].probe_interval_s = 30;
    o.providers[0].probe_path = "models";
  });
}

TEST(Monitor, IdleProvidersAreAvailable) {
  harness h;
  h.mon->run_once();
  const auto s = h.mon->current();
  ASSERT_EQ(s->providers.size(), 2u);
  for (const provider_health& p : s->providers) {
    EXPECT_EQ(p.status, provider_status::healthy);
    EXPECT_TRUE(p.available);
    EXPECT_EQ(p.availability, 1);
    EXPECT_EQ(p.error_rate, 0);
    EXPECT_EQ(p.health_score, 1);
    EXPECT_EQ(p.requests, 0u);
  }
  EXPECT_EQ(s->computed_at, h.clock.wall());
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"alpha"}), 1);
  EXPECT_EQ(h.gauge(h.metrics.provider_health_score, {"beta"}), 1);
  EXPECT_EQ(h.mon->score(beta), 1);
}

TEST(Monitor, WindowStatisticsScoreAndGauges) {
  harness h;
  // 90 successes at 1 s (spread over shards and models), 10 failures, 5 client errors.
  for (int i = 0; i < 90; ++i) {
    h.attempt(alpha, outcome::success, 1s, static_cast<std::size_t>(i % 4), static_cast<std::size_t>(i % 2));
    if (i % 9 == 0) h.attempt(alpha, outcome::failure, 20s, 1, 1);
    if (i % 18 == 0) h.attempt(alpha, outcome::client_error, 10ms, 2, 0);
    if (i % 10 == 0) h.clock.advance(10s);
  }
  h.mon->run_once();
  const provider_health& p = h.mon->current()->providers[alpha];
  EXPECT_EQ(p.requests, 100u);
  EXPECT_EQ(p.failures, 10u);
  EXPECT_EQ(p.client_errors, 5u);
  EXPECT_DOUBLE_EQ(p.availability, 0.9);
  EXPECT_DOUBLE_EQ(p.error_rate, 0.1);
  EXPECT_DOUBLE_EQ(p.avg_latency_s, 1.0);
  EXPECT_NEAR(p.p95_latency_s, 1.0, 0.06);
  EXPECT_EQ(p.latency_score, 1);
  EXPECT_NEAR(p.health_score, 0.4 * 0.9 + 0.3 * 0.9 + 0.3, 1e-12);
  EXPECT_EQ(p.status, provider_status::healthy);
  EXPECT_EQ(p.requests_last_hour, 100u);
  EXPECT_EQ(p.errors_last_hour, 10u);
  ASSERT_EQ(p.models.size(), 2u);
  EXPECT_EQ(p.models[0].name, "gpt-4o-mini");
  EXPECT_EQ(p.models[0].requests, 45u);
  EXPECT_EQ(p.models[1].name, "gpt-4o");
  EXPECT_EQ(p.models[1].requests, 55u);
  EXPECT_EQ(p.models[1].failures, 10u);
  EXPECT_DOUBLE_EQ(p.models[1].avg_latency_s, 1.0);
  EXPECT_DOUBLE_EQ(h.gauge(h.metrics.provider_error_rate, {"alpha"}), 0.1);
  EXPECT_DOUBLE_EQ(h.gauge(h.metrics.provider_health_score, {"alpha"}), p.health_score);
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"alpha"}), 1);
  EXPECT_DOUBLE_EQ(h.mon->score(alpha), p.health_score);
  EXPECT_EQ(h.mon->current()->providers[beta].requests, 0u);
}

TEST(Monitor, RoutingScoreCountsFromTheBreakersRecovery) {
  harness h;  // window 300 s: count buckets of 10 s
  h.attempt(alpha, outcome::success);
  for (int i = 0; i < 5; ++i) h.attempt(alpha, outcome::failure);
  ASSERT_EQ(h.mon->state(alpha), breaker_state::open);
  h.mon->run_once();
  EXPECT_EQ(h.mon->score(alpha), h.mon->current()->providers[alpha].health_score);
  EXPECT_LT(h.mon->score(alpha), 0.5);

  // Healed: two trials close the breaker.
  h.clock.advance(60s);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(h.attempt(alpha, outcome::success).trial);
  ASSERT_EQ(h.mon->state(alpha), breaker_state::closed);
  h.mon->run_once();
  const double published = h.mon->current()->providers[alpha].health_score;
  EXPECT_NEAR(published, 0.4 * 3.0 / 8 + 0.3 * 3.0 / 8 + 0.3, 1e-9);  // the window still holds the failures
  EXPECT_EQ(h.mon->score(alpha), 1);                                  // routing does not

  // Real traffic after the recovery: the published score recovers with it,
  // and a new failure counts for routing again.
  h.clock.advance(10s);
  for (int i = 0; i < 3; ++i) h.attempt(alpha, outcome::success);
  h.attempt(alpha, outcome::failure);
  h.mon->run_once();
  EXPECT_GT(h.mon->current()->providers[alpha].health_score, published);
  EXPECT_NEAR(h.mon->score(alpha), 0.4 * 0.75 + 0.3 * 0.75 + 0.3, 1e-9);
  EXPECT_EQ(h.mon->score(beta), 1);

  // Once the recovery is older than the window, both are the window's score.
  h.clock.advance(300s);
  h.mon->run_once();
  EXPECT_EQ(h.mon->score(alpha), h.mon->current()->providers[alpha].health_score);
}

TEST(Monitor, SlowProviderIsDegradedByLatency) {
  harness h;
  for (int i = 0; i < 100; ++i) h.attempt(alpha, outcome::success, i < 90 ? 3s : 9s);
  h.mon->run_once();
  const provider_health& p = h.mon->current()->providers[alpha];
  EXPECT_NEAR(p.p95_latency_s, 9.0, 9.0 * 0.06);
  EXPECT_DOUBLE_EQ(p.latency_score, latency_score(p.p95_latency_s));
  EXPECT_DOUBLE_EQ(p.health_score, 0.7 + 0.3 * p.latency_score);
  EXPECT_LT(p.health_score, 0.8);
  EXPECT_EQ(p.status, provider_status::degraded);
  EXPECT_TRUE(p.available);
}

TEST(Monitor, OpenBreakerMeansDownAndHalfOpenDegraded) {
  harness h;
  for (int i = 0; i < 20; ++i) h.attempt(alpha, outcome::success, 1s);
  for (int i = 0; i < 5; ++i) h.attempt(alpha, outcome::failure);
  h.mon->run_once();
  provider_health p = h.mon->current()->providers[alpha];
  EXPECT_EQ(p.breaker, breaker_state::open);
  EXPECT_EQ(p.status, provider_status::down);
  EXPECT_EQ(p.availability, 0);
  EXPECT_DOUBLE_EQ(p.error_rate, 0.2);
  EXPECT_FALSE(p.available);
  EXPECT_NEAR(p.health_score, 0.3 * 0.8 + 0.3, 1e-12);
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"alpha"}), 0);
  h.clock.advance(60s);
  h.mon->run_once();
  p = h.mon->current()->providers[alpha];
  EXPECT_EQ(p.breaker, breaker_state::half_open);
  EXPECT_EQ(p.status, provider_status::degraded);
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"alpha"}), 1);
}

TEST(Monitor, EveryRequestFailingMeansDown) {
  harness h;
  for (int i = 0; i < 3; ++i) h.attempt(alpha, outcome::failure);
  h.mon->run_once();
  const provider_health& p = h.mon->current()->providers[alpha];
  EXPECT_EQ(p.breaker, breaker_state::closed);
  EXPECT_EQ(p.status, provider_status::down);
  EXPECT_EQ(p.error_rate, 1);
}

TEST(Monitor, StatisticsExpireWithTheWindow) {
  harness h;
  for (int i = 0; i < 4; ++i) h.attempt(alpha, outcome::failure);
  h.mon->run_once();
  EXPECT_EQ(h.mon->current()->providers[alpha].status, provider_status::down);
  h.clock.advance(311s);
  h.mon->run_once();
  const provider_health& p = h.mon->current()->providers[alpha];
  EXPECT_EQ(p.requests, 0u);
  EXPECT_EQ(p.status, provider_status::healthy);
  EXPECT_EQ(p.requests_last_hour, 4u);  // still within the hour
  EXPECT_EQ(p.errors_last_hour, 4u);
}

TEST(Monitor, FailedProbeMarksOnlyAnIdleProviderDown) {
  options o = two_providers();
  o.providers[alpha].probe_interval_s = 60;
  auto probe = std::make_unique<scripted_prober>();
  scripted_prober& script = *probe;
  script.answers[alpha] = probe_result{false, 503, "HTTP 503", false};
  harness h(o, std::move(probe));
  h.mon->run_once();
  provider_health p = h.mon->current()->providers[alpha];
  ASSERT_TRUE(p.last_probe.has_value());
  EXPECT_FALSE(p.last_probe->ok);
  EXPECT_EQ(p.last_probe->http_status, 503u);
  EXPECT_EQ(p.status, provider_status::down);
  EXPECT_EQ(p.availability, 0);
  EXPECT_NEAR(p.health_score, 0.6, 1e-12);
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"alpha"}), 0);
  EXPECT_EQ(h.mon->current()->providers[beta].status, provider_status::healthy);  // not probed
  EXPECT_EQ(script.probed, std::vector<std::size_t>{alpha});

  // Not due again for 60 s.
  h.clock.advance(30s);
  h.mon->run_once();
  EXPECT_EQ(script.probed.size(), 1u);
  // Real traffic outranks the probe.
  h.attempt(alpha, outcome::success, 1s);
  h.mon->run_once();
  EXPECT_EQ(h.mon->current()->providers[alpha].status, provider_status::healthy);

  // A successful probe makes the idle provider available again; a cancelled
  // one keeps the last verdict.
  h.clock.advance(400s);
  script.answers[alpha] = probe_result{true, 200, "", false};
  h.mon->run_once();
  EXPECT_EQ(script.probed.size(), 2u);
  EXPECT_EQ(h.mon->current()->providers[alpha].status, provider_status::healthy);
  h.clock.advance(60s);
  script.answers[alpha] = probe_result{false, 0, "prober stopped", true};
  h.mon->run_once();
  EXPECT_EQ(script.probed.size(), 3u);
  EXPECT_TRUE(h.mon->current()->providers[alpha].last_probe->ok);
}

TEST(Monitor, BackgroundThreadRunsAndStopsAtOnce) {
  options o = two_providers();
  o.interval_s = 3600;
  o.providers[beta].probe_interval_s = 1;
  auto probe = std::make_unique<scripted_prober>();
  scripted_prober& script = *probe;
  script.answers[beta] = probe_result{true, 200, "", false};
  harness h(o, std::move(probe));
  const auto initial = h.mon->current();
  h.mon->start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (h.mon->current() == initial && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_NE(h.mon->current(), initial);
  const auto before_stop = std::chrono::steady_clock::now();
  h.mon->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before_stop, 2s);  // not the hour-long interval
  EXPECT_TRUE(script.stopped);
  std::lock_guard lock(script.mu);
  EXPECT_EQ(script.probed.size(), 1u);
}

TEST(Monitor, ConcurrentRecordingWhileTheMonitorRuns) {
  options o = two_providers();
  o.breaker.failure_threshold = 1'000'000;
  o.breaker.error_rate_threshold = 1.0;
  o.breaker.min_requests = 1'000'000;
  harness h(o);
  constexpr std::size_t threads = 4;
  constexpr int per_thread = 20000;
  std::atomic<bool> done{false};
  std::thread monitor_thread([&] {
    while (!done.load()) {
      h.mon->run_once();
      (void)h.mon->current()->providers[alpha].health_score;
      (void)h.reg.render_text();
    }
  });
  std::vector<std::thread> shards;
  for (std::size_t shard = 0; shard < threads; ++shard) {
    shards.emplace_back([&, shard] {
      for (int i = 0; i < per_thread; ++i) {
        const std::size_t provider = static_cast<std::size_t>(i) % 2;
        const admission a = h.mon->admit(shard, provider);
        const outcome result = i % 10 == 0 ? outcome::failure : outcome::success;
        h.mon->record(shard, a, {static_cast<std::size_t>(i % 3), result, 200ms, h.clock.steady()});
        (void)h.mon->score(provider);
      }
    });
  }
  for (auto& t : shards) t.join();
  done = true;
  monitor_thread.join();
  h.mon->run_once();
  const auto s = h.mon->current();
  EXPECT_EQ(s->providers[alpha].requests + s->providers[beta].requests, threads * per_thread);
  EXPECT_EQ(s->providers[alpha].failures + s->providers[beta].failures, threads * per_thread / 10);
  EXPECT_EQ(s->providers[alpha].requests_last_hour, threads * per_thread / 2);
}

}  // namespace
}  // namespace gatewayz::health::test

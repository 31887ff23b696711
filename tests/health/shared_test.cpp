// Shared health (health.shared) through a real redis-server: two monitors,
// as two gateway instances would have, on one Redis.

#include <thread>

#include "fixture.hpp"
#include "health/shared_redis.hpp"
#include "support/redis_server.hpp"

namespace gatewayz::health::test {
namespace {

// One gateway instance's monitor, sharing through `url` under `prefix`.
struct instance {
  instance(const std::string& url, const std::string& prefix, double interval_s = 3600) : reg(2), metrics(reg, "test") {
    options o = two_providers();
    o.interval_s = interval_s;
    o.breaker.failure_threshold = 3;
    o.breaker.min_requests = 1000;
    o.breaker.open_s = 30;
    redis::client_options co;
    std::string error;
    EXPECT_TRUE(redis::parse_url(url, co.server, error)) << error;
    co.timeout = 200ms;
    co.reconnect_min = 20ms;
    co.reconnect_max = 200ms;
    services s;
    s.clock = &clock;
    s.on_transition = [this](const transition& t) {
      std::lock_guard lock(mu);
      transitions.push_back(t);
    };
    s.shared = std::make_unique<redis_shared_store>(co, std::vector<std::string>{"alpha", "beta"}, o.window_s, &metrics,
                                                    1, prefix);
    mon = std::make_unique<monitor>(std::move(o), metrics, std::move(s));
  }
  void attempt(std::size_t provider, outcome result) {
    admission a = mon->admit(0, provider);
    if (a) mon->record(0, a, attempt_result{0, result, 100ms, clock.steady()});
  }
  const provider_health& provider(std::size_t i) { return (snap = mon->current())->providers[i]; }
  std::string last_reason() {
    std::lock_guard lock(mu);
    return transitions.empty() ? "" : transitions.back().reason;
  }

  manual_clock clock;
  telemetry::registry reg;
  telemetry::catalog metrics;
  std::mutex mu;
  std::vector<transition> transitions;
  std::unique_ptr<monitor> mon;
  std::shared_ptr<const snapshot> snap;
};

std::string unique_prefix() {
  static int n = 0;
  return "test" + std::to_string(++n) + ":";
}

TEST(SharedHealth, ABreakerOpenedByOneInstanceOpensOnTheOther) {
  test_support::redis_server server;
  const std::string prefix = unique_prefix();
  instance a(server.url(), prefix), b(server.url(), prefix);
  for (int i = 0; i < 3; ++i) a.attempt(0, outcome::failure);
  ASSERT_EQ(a.mon->state(0), breaker_state::open);
  EXPECT_EQ(b.mon->state(0), breaker_state::closed);

  a.mon->run_once();  // publishes the opening
  b.mon->run_once();  // adopts it
  EXPECT_EQ(b.mon->state(0), breaker_state::open);
  EXPECT_EQ(b.last_reason(), "shared_open");
  EXPECT_EQ(b.mon->state(1), breaker_state::closed);
  // Open until the same moment as on the instance that opened it.
  const auto a_retry = a.mon->breakers()[0].retry_at;
  const auto b_retry = b.mon->breakers()[0].retry_at;
  ASSERT_TRUE(a_retry && b_retry);
  EXPECT_LT(std::chrono::abs(*a_retry - *b_retry), 1s);
  EXPECT_FALSE(server.cli("GET " + prefix + "breaker:alpha").empty());
  EXPECT_EQ(b.provider(0).status, provider_status::down);
}

TEST(SharedHealth, WindowsCountEveryInstancesAttempts) {
  test_support::redis_server server;
  const std::string prefix = unique_prefix();
  instance a(server.url(), prefix), b(server.url(), prefix);
  for (int i = 0; i < 6; ++i) a.attempt(1, outcome::success);
  for (int i = 0; i < 2; ++i) b.attempt(1, outcome::failure);
  b.attempt(1, outcome::client_error);
  a.mon->run_once();
  b.mon->run_once();
  a.mon->run_once();
  for (instance* x : {&a, &b}) {
    const provider_health& beta = x->provider(1);
    EXPECT_EQ(beta.requests, 8U);
    EXPECT_EQ(beta.failures, 2U);
    EXPECT_EQ(beta.client_errors, 1U);
    EXPECT_DOUBLE_EQ(beta.error_rate, 0.25);
  }
  // Pushed once: another round adds nothing.
  a.mon->run_once();
  EXPECT_EQ(a.provider(1).requests, 8U);
}

TEST(SharedHealth, RedisDownKeepsTheLocalViewWithinTheTimeoutAndPushesLater) {
  test_support::redis_server server;
  const std::string prefix = unique_prefix();
  instance a(server.url(), prefix), b(server.url(), prefix);
  a.mon->run_once();
  server.stop();
  for (int i = 0; i < 4; ++i) a.attempt(0, outcome::success);
  const auto started = std::chrono::steady_clock::now();
  a.mon->run_once();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms + 100ms);
  EXPECT_EQ(a.provider(0).requests, 4U);  // its own attempts
  EXPECT_GE(a.metrics.redis_operations.series({"mget", "error"}).value(), 1);

  server.start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    a.mon->run_once();
    b.mon->run_once();
    if (b.provider(0).requests == 4U) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(b.provider(0).requests, 4U);  // pushed once Redis was back
  EXPECT_EQ(a.provider(0).requests, 4U);
}

TEST(SharedHealth, RunningMonitorsAgreeWithinOneInterval) {
  test_support::redis_server server;
  const std::string prefix = unique_prefix();
  const double interval_s = 0.5;
  instance a(server.url(), prefix, interval_s), b(server.url(), prefix, interval_s);
  a.mon->start();
  b.mon->start();
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 3; ++i) a.attempt(0, outcome::failure);
  ASSERT_EQ(a.mon->state(0), breaker_state::open);
  const auto opened = std::chrono::steady_clock::now();
  while (b.mon->state(0) != breaker_state::open && std::chrono::steady_clock::now() - opened < 3s) {
    std::this_thread::sleep_for(5ms);
  }
  const auto took = std::chrono::steady_clock::now() - opened;
  EXPECT_EQ(b.mon->state(0), breaker_state::open);
  // A shares the opening at once; B reads at its next round.
  EXPECT_LT(took, std::chrono::duration<double>(interval_s) + 250ms);
  a.mon->stop();
  b.mon->stop();
}

}  // namespace
}  // namespace gatewayz::health::test

// Redis from the gateway's side: GET /health's redis check and degradation
// against a real redis-server that the test freezes, kills and restarts.
// Requests never depend on Redis being up.

#include <thread>

#include "harness.hpp"
#include "support/redis_server.hpp"

namespace gatewayz::test {
namespace {

double sample_or_zero(const std::string& text, std::string_view series) {
  const auto pos = text.find("\n" + std::string(series) + " ");
  if (pos == std::string::npos) return 0;
  const auto start = pos + series.size() + 2;
  return std::stod(text.substr(start, text.find('\n', start) - start));
}

class RedisGatewayTest : public GatewayTest {
 protected:
  std::string redis_check() { return std::string(get("/health").json().at("checks").at("redis").as_string()); }
  // Polls /health until its redis check says `want` (the pinger runs every second).
  bool redis_becomes(std::string_view want, std::chrono::milliseconds limit = 5s) {
    const auto deadline = clock_type::now() + limit;
    while (clock_type::now() < deadline) {
      if (redis_check() == want) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  void expect_requests_served(int count) {
    for (int i = 0; i < count; ++i) {
      const auto started = clock_type::now();
      const auto r = post("/v1/chat/completions", chat_body);
      EXPECT_EQ(r.status, 200U) << r.body;
      EXPECT_LT(clock_type::now() - started, 1s);
    }
  }
};

TEST_F(RedisGatewayTest, HealthReportsRedisAndRequestsSurviveItsLoss) {
  test_support::redis_server server;
  auto& mock = add_mock();
  auto cfg = one_provider(mock);
  cfg.redis.url = server.url();
  cfg.redis.timeout_ms = 100;
  start_gateway(std::move(cfg));
  ASSERT_NE(gateway_->app().redis(), nullptr);

  const auto up = get("/health");
  ASSERT_EQ(up.status, 200U);
  EXPECT_EQ(up.json().at("status").as_string(), "healthy");
  EXPECT_EQ(up.json().at("checks").at("redis").as_string(), "healthy");
  expect_requests_served(3);

  // Frozen: /health still answers at once (from the pinger's last result),
  // says degraded with 200, and requests are served.
  server.pause();
  ASSERT_TRUE(redis_becomes("unhealthy"));
  const auto started = clock_type::now();
  const auto slow = get("/health");
  EXPECT_LT(clock_type::now() - started, 100ms);
  EXPECT_EQ(slow.status, 200U);
  EXPECT_EQ(slow.json().at("status").as_string(), "degraded");
  expect_requests_served(3);
  server.resume();
  ASSERT_TRUE(redis_becomes("healthy"));

  // Killed under traffic, then restarted: requests keep succeeding, the
  // errors are counted and the client reconnects by itself.
  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, failed{0};
  std::thread traffic([&] {
    while (!stop) {
      (post("/v1/chat/completions", chat_body).status == 200U ? served : failed)++;
    }
  });
  server.stop();
  EXPECT_TRUE(redis_becomes("unhealthy"));
  const auto down = get("/health");
  EXPECT_EQ(down.status, 200U);
  EXPECT_EQ(down.json().at("status").as_string(), "degraded");
  server.start();
  EXPECT_TRUE(redis_becomes("healthy"));
  stop = true;
  traffic.join();
  EXPECT_GT(served.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(get("/health").json().at("status").as_string(), "healthy");

  const auto text = settled_metrics(port());
  EXPECT_GE(sample_or_zero(text, R"(gatewayz_redis_operations_total{operation="ping",status="error"})"), 2);
  EXPECT_GE(sample_or_zero(text, R"(gatewayz_redis_operations_total{operation="ping",status="success"})"), 2);
  // Two shards and the pinger, two connections each.
  EXPECT_EQ(sample_or_zero(text, "redis_pool_connections_max"), 6);
  EXPECT_GE(sample_or_zero(text, R"(redis_pool_connections_current{state="idle"})"), 1);
  EXPECT_NE(text.find(R"(gatewayz_redis_operation_duration_seconds_count{operation="ping"})"), std::string::npos);
}

// health.shared: a breaker opened by one instance is open on the other
// within one health interval, and the other sends the provider nothing.
TEST_F(RedisGatewayTest, TwoInstancesShareABreakerOpening) {
  test_support::redis_server server;
  auto& bad = add_mock();
  set_failure(bad, mock::failure_mode::http_500);
  const double interval_s = 0.5;
  auto make = [&] {
    auto cfg = one_provider(bad);
    cfg.redis.url = server.url();
    cfg.health.shared = true;
    cfg.health.interval_s = interval_s;
    cfg.circuit_breaker.failure_threshold = 2;
    cfg.circuit_breaker.open_s = 30;
    cfg.circuit_breaker.max_open_s = 30;
    return cfg;
  };
  start_gateway(make());
  gateway_server second(make());
  auto& first_health = gateway_->app().health();
  auto& second_health = second.app().health();
  std::this_thread::sleep_for(100ms);

  for (int i = 0; i < 2; ++i) EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 500U);
  auto deadline = clock_type::now() + 2s;
  while (first_health.state(0) != health::breaker_state::open && clock_type::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_EQ(first_health.state(0), health::breaker_state::open);
  const auto opened = clock_type::now();
  while (second_health.state(0) != health::breaker_state::open && clock_type::now() - opened < 3s) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(second_health.state(0), health::breaker_state::open);
  EXPECT_LT(clock_type::now() - opened, std::chrono::duration<double>(interval_s) + 250ms);

  const auto sent = bad.stats().requests;
  const auto refused = post_once(second.port(), "/v1/chat/completions", chat_body);
  EXPECT_EQ(refused.status, 503U) << refused.body;
  EXPECT_EQ(bad.stats().requests, sent);
}

TEST_F(RedisGatewayTest, WithoutARedisUrlThereIsNoClientAndTheCheckIsNotConfigured) {
  auto& mock = add_mock();
  start_gateway(one_provider(mock));
  EXPECT_EQ(gateway_->app().redis(), nullptr);
  EXPECT_EQ(redis_check(), "not_configured");
  const auto text = settled_metrics(port());
  EXPECT_EQ(text.find("gatewayz_redis_operations_total{"), std::string::npos);
}

}  // namespace
}  // namespace gatewayz::test

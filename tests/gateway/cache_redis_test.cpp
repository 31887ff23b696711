// The shared response cache (cache.mode redis) against a real redis-server:
// hits across two gateway instances, TTL expiry in Redis, Redis killed,
// frozen and restarted under traffic without a failed request, and the
// local tier in front of Redis.

#include <thread>

#include "harness.hpp"
#include "support/redis_server.hpp"

namespace gatewayz::test {
namespace {

class RedisCacheTest : public GatewayTest {
 protected:
  // Redis alone: no local tier, so every lookup reaches Redis.
  config::gateway_config shared(const mock::mock_provider& m) {
    auto cfg = with_local_tier(m);
    cfg.cache.local_max_bytes = 0;
    return cfg;
  }
  // The default: a local tier in front of Redis.
  config::gateway_config with_local_tier(const mock::mock_provider& m) {
    auto cfg = one_provider(m);
    cfg.cache.mode = "redis";
    cfg.redis.url = redis_.url();
    cfg.redis.timeout_ms = 100;
    return cfg;
  }
  std::size_t cached_keys() { return std::stoul(redis_.cli("DBSIZE")); }
  double metric(std::string_view name_and_labels) {
    const auto text = settled_metrics(port());
    const auto at = text.find("\n" + std::string(name_and_labels) + " ");
    if (at == std::string::npos) return 0;
    const auto end = text.find('\n', at + 1);
    return std::stod(text.substr(at + 1 + name_and_labels.size() + 1, end - at - name_and_labels.size() - 2));
  }

  test_support::redis_server redis_;
};

TEST_F(RedisCacheTest, AnAnswerCachedByOneInstanceIsAHitOnAnother) {
  auto& m = add_mock();
  start_gateway(shared(m));
  gateway_server other(shared(m));

  const reply first = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(first.header("x-gatewayz-cache"), "miss");
  ASSERT_TRUE(eventually([&] { return cached_keys() == 1; })) << "the store is written after the answer";
  const auto keys = redis_.cli("KEYS gatewayz:cache:*");
  EXPECT_EQ(keys.rfind("gatewayz:cache:", 0), 0u) << keys;
  EXPECT_EQ(keys.find("hello"), std::string::npos) << "keys are hashes, never prompt text";

  const reply second = post_once(other.port(), "/v1/chat/completions", chat_body);
  ASSERT_EQ(second.status, 200u);
  EXPECT_EQ(second.header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(m.stats().requests, 1u) << "the second instance made no upstream call";
  EXPECT_EQ(other.app().metrics().cache_hits.series().value(), 1.0);
  EXPECT_GE(metric(R"(redis_get_operations_total{status="success"})"), 1.0);
  EXPECT_GE(metric(R"(redis_set_operations_total{status="success"})"), 1.0);
}

TEST_F(RedisCacheTest, EntriesExpireInRedisAfterTheTtl) {
  auto& m = add_mock();
  auto cfg = shared(m);
  cfg.cache.ttl_s = 0.4;
  start_gateway(cfg);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "miss");
  ASSERT_TRUE(eventually([&] { return cached_keys() == 1; }));
  const auto key = redis_.cli("KEYS gatewayz:cache:*");
  const auto pttl = std::stol(redis_.cli("PTTL " + key));
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 400);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "hit");
  ASSERT_TRUE(eventually([&] { return cached_keys() == 0; }, 2s)) << "Redis expires the entry";
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "miss");
}

TEST_F(RedisCacheTest, RedisKilledAndRestartedUnderTrafficFailsNoRequest) {
  auto& m = add_mock();
  start_gateway(shared(m));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200u);
  ASSERT_TRUE(eventually([&] { return cached_keys() == 1; }));
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "hit");

  // Traffic from two clients while Redis dies and comes back.
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, served{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        const auto start = clock_type::now();
        const reply r = post_once(port(), "/v1/chat/completions", chat_body);
        if (r.status != 200 || ms_since(start) > 2000) {
          ++failed;
        } else {
          ++served;
        }
      }
    });
  }
  std::this_thread::sleep_for(200ms);
  redis_.stop();
  std::this_thread::sleep_for(500ms);
  const auto during = served.load();
  std::this_thread::sleep_for(300ms);
  EXPECT_GT(served.load(), during) << "requests are served while Redis is down";
  redis_.start();  // empty: no persistence
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0) << "no request failed or waited past the Redis timeout";
  EXPECT_GT(metric(R"(gatewayz_redis_operations_total{operation="get",status="error"})"), 0.0);

  // The clients reconnect by themselves and the cache fills again. Each shard
  // has its own clients with their own backoff, so a request may land on a
  // shard still waiting to reconnect (a miss, not a failure) after another
  // shard has stored the entry: wait for a hit, not for the first store.
  ASSERT_TRUE(eventually(
      [&] {
        (void)post("/v1/chat/completions", chat_body);
        return cached_keys() == 1;
      },
      10s));
  EXPECT_TRUE(
      eventually([&] { return post("/v1/chat/completions", chat_body).header("x-gatewayz-cache") == "hit"; }, 10s));
}

TEST_F(RedisCacheTest, AFrozenRedisCostsARequestAtMostTheRedisTimeout) {
  auto& m = add_mock();
  start_gateway(shared(m));
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200u);
  redis_.pause();
  const auto start = clock_type::now();
  const reply r = post("/v1/chat/completions", chat_body);
  const double took = ms_since(start);
  redis_.resume();
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("x-gatewayz-cache"), "miss");
  EXPECT_LT(took, 100 + 200) << "the lookup gave up after timeout_ms (100) plus scheduling";
}

TEST_F(RedisCacheTest, TheLocalTierServesRepeatedHitsWithoutAskingRedis) {
  auto& m = add_mock();
  start_gateway(with_local_tier(m));
  gateway_server other(with_local_tier(m));
  const auto gets = [&] { return metric(R"(redis_get_operations_total{status="success"})"); };

  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "miss");
  ASSERT_TRUE(eventually([&] { return cached_keys() == 1; }));
  const double gets_before = gets();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(gets(), gets_before) << "hits on the storing instance are served locally";
  EXPECT_GT(gateway_->app().metrics().cache_size.series().value(), 0.0) << "cache_size_bytes is the local tier's";

  // The other instance finds it in Redis once, then keeps it.
  for (int i = 0; i < 3; ++i) {
    const reply r = post_once(other.port(), "/v1/chat/completions", chat_body);
    EXPECT_EQ(r.header("x-gatewayz-cache"), "hit");
  }
  EXPECT_EQ(m.stats().requests, 1u) << "one upstream call for all of it";
  EXPECT_EQ(other.app().metrics().redis_get_operations.series({"success"}).value(), 1.0);

  // Redis frozen: what is held locally is still a hit, at once.
  redis_.pause();
  const auto start = clock_type::now();
  const reply frozen = post_once(other.port(), "/v1/chat/completions", chat_body);
  const double took = ms_since(start);
  redis_.resume();
  EXPECT_EQ(frozen.header("x-gatewayz-cache"), "hit");
  EXPECT_LT(took, 100) << "no wait for the Redis timeout";
}

}  // namespace
}  // namespace gatewayz::test

// The response cache through the real request path (memory mode): hits,
// misses, the request header, streaming replay, TTL, scopes, the ledger and
// what a hit is charged.

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "harness.hpp"
#include "store/store.hpp"

namespace gatewayz::test {
namespace {

class CacheTest : public GatewayTest {
 protected:
  void TearDown() override {
    GatewayTest::TearDown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static config::gateway_config cached(const mock::mock_provider& m) {
    auto cfg = one_provider(m);
    cfg.cache.mode = "memory";
    return cfg;
  }
  std::uint64_t upstream_calls(const mock::mock_provider& m) const { return m.stats().requests; }
  double hits() { return gateway_->app().metrics().cache_hits.series().value(); }
  double misses() { return gateway_->app().metrics().cache_misses.series().value(); }

  // A SQLite store in a temporary directory, with keys; alpha's prices are
  // $2 / $8 per million tokens.
  config::gateway_config keyed(config::gateway_config cfg) {
    dir_ = std::filesystem::temp_directory_path() / ("gw_cache_" + std::to_string(getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cfg.storage.url = "sqlite://" + (dir_ / "gatewayz.db").string();
    cfg.storage.spill_path = (dir_ / "ledger.spill").string();
    cfg.storage.flush_interval_ms = 50;
    cfg.auth.mode = "keys";
    cfg.auth.admin_key = "admin-secret";
    cfg.providers[0].models[0].input_per_million = 2;
    cfg.providers[0].models[0].output_per_million = 8;
    return cfg;
  }
  store::store& store() { return *gateway_->app().store(); }
  std::string new_key(std::string_view customer, store::nanos_usd credit) {
    auto c = store().find_customer(customer);
    if (!c) c = store().create_customer(customer, credit);
    return store().create_key(c->id).secret;
  }
  void wait_for_ledger(std::int64_t rows) {
    const auto deadline = clock_type::now() + 5s;
    while (store().count_ledger_rows() < rows && clock_type::now() < deadline) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(store().count_ledger_rows(), rows);
  }

  std::filesystem::path dir_;
};

TEST_F(CacheTest, ASecondIdenticalRequestIsAnsweredFromTheCacheWithoutAnUpstreamCall) {
  auto& m = add_mock();
  start_gateway(cached(m));
  const reply first = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(first.header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(upstream_calls(m), 1u);
  // Stored before it was sent: once the client has its answer, the cache
  // has it too, whichever of the two shards takes the next request (it
  // was stored after the send, and a quick second request on the other
  // shard could miss).
  EXPECT_GT(gateway_->app().metrics().cache_size.series().value(), static_cast<double>(first.body.size()));

  // The same request spelt differently: members reordered, whitespace, "user".
  const reply second =
      post("/v1/chat/completions",
           R"({ "messages": [{"content":"hello there","role":"user"}], "user":"u1", "model":"gpt-4o-mini" })");
  ASSERT_EQ(second.status, 200u) << second.body;
  EXPECT_EQ(second.header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(second.header("x-gatewayz-provider"), "alpha");
  EXPECT_EQ(second.header("content-type"), "application/json");
  EXPECT_FALSE(second.header("x-request-id").empty());
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(upstream_calls(m), 1u) << "a hit costs no upstream call";
  EXPECT_EQ(hits(), 1.0);
  EXPECT_EQ(misses(), 1.0);
  EXPECT_GT(gateway_->app().metrics().cache_size.series().value(), static_cast<double>(first.body.size()));

  // Other parameters are another request.
  const reply other =
      post("/v1/chat/completions",
           R"({"model":"gpt-4o-mini","max_tokens":7,"messages":[{"role":"user","content":"hello there"}]})");
  EXPECT_EQ(other.header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(upstream_calls(m), 2u);
}

TEST_F(CacheTest, AStreamedRequestIsServedFromACachedCompletionAsSse) {
  auto& m = add_mock();
  start_gateway(cached(m));
  const reply first = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(first.status, 200u);
  const auto content = first.json().at("choices").at(0).at("message").at("content").as_string();

  sse_client s(port());
  ASSERT_TRUE(s.start(
      "/v1/chat/completions",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]})"));
  EXPECT_EQ(s.status(), 200u);
  EXPECT_EQ(s.header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(s.header("content-type"), "text/event-stream");
  const auto events = s.rest();
  ASSERT_GE(events.size(), 4u);
  std::string streamed;
  bool usage_seen = false;
  for (const auto& e : events) {
    if (e.data == "[DONE]") continue;
    const auto chunk = json::parse(e.data).as_object();
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    if (chunk.contains("usage")) usage_seen = true;
    for (const auto& choice : chunk.at("choices").as_array()) {
      const auto& delta = choice.at("delta").as_object();
      if (const auto* c = delta.if_contains("content")) streamed += std::string(c->as_string());
    }
  }
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(streamed, std::string(content));
  EXPECT_TRUE(usage_seen) << "include_usage was asked for";
  EXPECT_EQ(upstream_calls(m), 1u);
}

TEST_F(CacheTest, AStreamedMissIsProxiedAndNotStored) {
  auto& m = add_mock();
  start_gateway(cached(m));
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  EXPECT_EQ(s.header("x-gatewayz-cache"), "miss");
  (void)s.rest();
  const reply after = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(after.header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(upstream_calls(m), 2u);
}

TEST_F(CacheTest, TheRequestHeaderTurnsTheCacheOffOnOrRefreshesIt) {
  auto& m = add_mock();
  auto cfg = cached(m);
  cfg.cache.models = {"some-other-model"};
  start_gateway(cfg);

  // gpt-4o-mini is not listed: no cache unless asked for.
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "");
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"x-gatewayz-cache", "on"}}).header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"x-gatewayz-cache", "ON"}}).header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(upstream_calls(m), 2u);

  // off: neither looked up nor stored.
  const reply off = post("/v1/chat/completions", chat_body, {{"x-gatewayz-cache", "off"}});
  EXPECT_EQ(off.header("x-gatewayz-cache"), "");
  EXPECT_EQ(upstream_calls(m), 3u);

  // refresh: the provider answers and its answer replaces the cached one.
  const reply refreshed = post("/v1/chat/completions", chat_body, {{"x-gatewayz-cache", "refresh"}});
  EXPECT_EQ(refreshed.header("x-gatewayz-cache"), "refresh");
  EXPECT_EQ(upstream_calls(m), 4u);
  const reply hit = post("/v1/chat/completions", chat_body, {{"x-gatewayz-cache", "on"}});
  EXPECT_EQ(hit.header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(hit.body, refreshed.body);

  const reply bad = post("/v1/chat/completions", chat_body, {{"x-gatewayz-cache", "maybe"}});
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.json().at("error").at("code"), "invalid_cache_header");
  EXPECT_EQ(bad.json().at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(upstream_calls(m), 4u);
}

TEST_F(CacheTest, AnEntryExpiresAfterItsTtl) {
  auto& m = add_mock();
  auto cfg = cached(m);
  // Long enough that the second request is a hit on a loaded machine too
  // (0.3 s once was not, under the parallel ASan suite).
  cfg.cache.ttl_s = 1.5;
  start_gateway(cfg);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "hit");
  std::this_thread::sleep_for(1600ms);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(upstream_calls(m), 2u);
}

TEST_F(CacheTest, EmbeddingsAreCachedAndErrorsAreNot) {
  auto& m = add_mock();
  start_gateway(cached(m));
  const std::string emb = R"({"model":"text-embedding-3-small","input":["one","two words"]})";
  const reply first = post("/v1/embeddings", emb);
  ASSERT_EQ(first.status, 200u);
  const reply second = post("/v1/embeddings", emb);
  EXPECT_EQ(second.header("x-gatewayz-cache"), "hit");
  EXPECT_EQ(second.body, first.body);

  set_failure(m, mock::failure_mode::http_500);
  const reply failed = post("/v1/chat/completions", chat_body);
  EXPECT_GE(failed.status, 500u);
  set_failure(m, std::nullopt);
  const reply after = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(after.status, 200u);
  EXPECT_EQ(after.header("x-gatewayz-cache"), "miss") << "an error answer was not stored";
}

TEST_F(CacheTest, HitsAreLedgeredUnderTheCacheAndChargedTheConfiguredFraction) {
  auto& m = add_mock();
  auto cfg = keyed(cached(m));
  cfg.cache.hit_cost_fraction = 0.5;
  start_gateway(cfg);
  const auto key = new_key("acme", 1'000'000'000);
  const auto other_key = new_key("globex", 1'000'000'000);
  const header_list acme{{"Authorization", "Bearer " + key}};

  const reply miss = post("/v1/chat/completions", chat_body, acme);
  ASSERT_EQ(miss.status, 200u) << miss.body;
  const auto usage = miss.json().at("usage");
  const std::int64_t cost =
      usage.at("prompt_tokens").as_int64() * 2 * 1000 + usage.at("completion_tokens").as_int64() * 8 * 1000;
  ASSERT_GT(cost, 0);
  const reply hit = post("/v1/chat/completions", chat_body, acme);
  EXPECT_EQ(hit.header("x-gatewayz-cache"), "hit");

  // Another customer never gets acme's answer.
  const reply other = post("/v1/chat/completions", chat_body, {{"Authorization", "Bearer " + other_key}});
  EXPECT_EQ(other.header("x-gatewayz-cache"), "miss");
  EXPECT_EQ(upstream_calls(m), 2u);

  wait_for_ledger(3);
  const auto hit_row = store().find_ledger_row(hit.header("x-request-id"));
  ASSERT_TRUE(hit_row);
  EXPECT_EQ(hit_row->provider, "cache");
  EXPECT_EQ(hit_row->status, "success");
  EXPECT_EQ(hit_row->http_status, 200u);
  EXPECT_EQ(hit_row->attempts, 0u);
  EXPECT_EQ(hit_row->input_tokens, usage.at("prompt_tokens").as_int64());
  EXPECT_EQ(hit_row->output_tokens, usage.at("completion_tokens").as_int64());
  EXPECT_EQ(hit_row->cost, cost / 2 + (cost % 2 != 0 ? 1 : 0)) << "half the original cost, rounded";
  const auto miss_row = store().find_ledger_row(miss.header("x-request-id"));
  ASSERT_TRUE(miss_row);
  EXPECT_EQ(miss_row->provider, "alpha");
  EXPECT_EQ(miss_row->cost, cost);

  const auto deadline = clock_type::now() + 5s;
  while (store().find_customer("acme")->balance != 1'000'000'000 - cost - hit_row->cost &&
         clock_type::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(store().find_customer("acme")->balance, 1'000'000'000 - cost - hit_row->cost);
}

TEST_F(CacheTest, APricedHitNeedsTheCreditForItsPrice) {
  auto& m = add_mock();
  auto cfg = keyed(cached(m));
  cfg.cache.hit_cost_fraction = 1.0;
  cfg.auth.key_cache_ttl_s = 0.2;
  start_gateway(cfg);
  const auto key = new_key("thrifty", 1'000'000'000);
  const header_list auth{{"Authorization", "Bearer " + key}};
  const reply miss = post("/v1/chat/completions", chat_body, auth);
  ASSERT_EQ(miss.status, 200u) << miss.body;
  wait_for_ledger(1);
  // Leave 1000 nano-USD: positive (the key check passes) but less than the hit's full price.
  const auto c = store().find_customer("thrifty");
  ASSERT_TRUE(c);
  store().credit(c->id, -(c->balance - 1000));
  std::this_thread::sleep_for(400ms);  // past the key cache's balance refresh
  const reply refused = post("/v1/chat/completions", chat_body, auth);
  EXPECT_EQ(refused.status, 402u) << refused.body;
  EXPECT_EQ(refused.json().at("error").at("type"), "insufficient_quota");
  EXPECT_NE(refused.json().at("error").at("message").as_string().find("cached answer"), std::string::npos)
      << refused.body;
  EXPECT_EQ(upstream_calls(m), 1u);
}

}  // namespace
}  // namespace gatewayz::test

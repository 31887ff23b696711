#include "cache/memory_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "telemetry/metrics.hpp"

namespace gatewayz::cache {
namespace {

using namespace std::chrono_literals;
using clock = memory_cache::clock;

std::shared_ptr<const cached_response> answer(std::string body, std::string provider = "p") {
  auto entry = std::make_shared<cached_response>();
  entry->body = std::move(body);
  entry->provider = std::move(provider);
  return entry;
}

TEST(MemoryCache, FindsWhatWasPutUntilItExpires) {
  memory_cache cache(1 << 20);
  const auto now = clock::now();
  cache.put("k1", answer("one"), now + 10s);
  auto found = cache.find("k1", now + 1s);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->body, "one");
  EXPECT_FALSE(cache.find("k2", now));
  EXPECT_FALSE(cache.find("k1", now + 10s)) << "expired at its deadline";
  EXPECT_EQ(cache.entries(), 0u) << "an expired entry is dropped when looked up";
  EXPECT_EQ(cache.size_bytes(), 0u);
}

TEST(MemoryCache, ReplacingAKeyKeepsOneEntry) {
  memory_cache cache(1 << 20);
  const auto now = clock::now();
  cache.put("k", answer("old"), now + 10s);
  const auto bytes_one = cache.size_bytes();
  cache.put("k", answer("new"), now + 10s);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.size_bytes(), bytes_one);
  EXPECT_EQ(cache.find("k", now)->body, "new");
}

TEST(MemoryCache, EvictsTheLeastRecentlyUsedWithinItsBound) {
  // One stripe so the order is observable.
  const auto entry_bytes = answer(std::string(1000, 'x'))->bytes() + 2 + 200;
  memory_cache cache(entry_bytes * 3, std::nullopt, 1);
  const auto now = clock::now();
  cache.put("a", answer(std::string(1000, 'a')), now + 1h);
  cache.put("b", answer(std::string(1000, 'b')), now + 1h);
  ASSERT_TRUE(cache.find("a", now));  // a is now the most recent
  cache.put("c", answer(std::string(1000, 'c')), now + 1h);
  cache.put("d", answer(std::string(1000, 'd')), now + 1h);
  EXPECT_LE(cache.size_bytes(), entry_bytes * 3);
  EXPECT_TRUE(cache.find("a", now));
  EXPECT_FALSE(cache.find("b", now)) << "least recently used, evicted first";
  EXPECT_TRUE(cache.find("d", now));
}

TEST(MemoryCache, RefusesAnEntryLargerThanAStripe) {
  memory_cache cache(64 * 1024, std::nullopt, 16);  // 4 KiB per stripe
  cache.put("big", answer(std::string(8 * 1024, 'x')), clock::now() + 1h);
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(MemoryCache, PublishesItsSizeInTheGauge) {
  telemetry::registry registry(1);
  auto& family = registry.gauge("cache_size_bytes", "Bytes held by the cache.");
  memory_cache cache(1 << 20, family.series(), 4);
  cache.put("k", answer("body"), clock::now() + 1h);
  EXPECT_EQ(family.series().value(), static_cast<double>(cache.size_bytes()));
  EXPECT_GT(cache.size_bytes(), 4u);
  EXPECT_FALSE(cache.find("k", clock::now() + 2h));
  EXPECT_EQ(family.series().value(), 0.0);
}

TEST(MemoryCache, ManyThreadsKeepTheAccountingExact) {
  memory_cache cache(256 * 1024, std::nullopt, 8);
  const auto now = clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t, now] {
      for (int i = 0; i < 2000; ++i) {
        const auto key = "k" + std::to_string((i * 7 + t) % 300);
        if (i % 3 == 0) {
          cache.put(key, answer(std::string(static_cast<std::size_t>(100 + i % 900), 'x')), now + 1h);
        } else {
          (void)cache.find(key, now);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(cache.size_bytes(), 256u * 1024);
  // Every held entry is findable and the bytes add up to what find sees.
  std::size_t held = 0;
  for (int i = 0; i < 300; ++i) {
    if (auto e = cache.find("k" + std::to_string(i), now)) held += e->bytes();
  }
  EXPECT_GT(held, 0u);
  EXPECT_LE(held, cache.size_bytes());
}

}  // namespace
}  // namespace gatewayz::cache

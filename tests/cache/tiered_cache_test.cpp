// The local tier in front of a shared backend. The shared tier here is a
// second memory_cache: the tiering does not depend on what the shared
// backend is (Redis is covered in tests/gateway/cache_redis_test.cpp).
#include "cache/tiered_cache.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace gatewayz::cache {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const cached_response> answer(std::string body, std::int64_t expires_unix_ms) {
  auto entry = std::make_shared<cached_response>();
  entry->body = std::move(body);
  entry->provider = "p";
  entry->expires_unix_ms = expires_unix_ms;
  return entry;
}

class TieredCache : public ::testing::Test {
 protected:
  lookup_result lookup(shard_cache& shard, std::string_view key) {
    auto done = asio::co_spawn(io_, shard.lookup(key), asio::use_future);
    io_.restart();
    io_.run();
    return done.get();
  }

  asio::io_context io_;
  memory_cache local_{1 << 20};
  memory_cache shared_{1 << 20};
};

TEST_F(TieredCache, AStoreGoesToBothTiersAndIsFoundLocally) {
  tiered_cache tiers(local_, shared_, 60s);
  auto shard = tiers.for_shard(0, io_);
  EXPECT_EQ(tiers.kind(), "memory") << "the shared tier's kind";
  shard->store("k", answer("one", wall_ms() + 10'000), 10s);
  EXPECT_TRUE(local_.find("k", memory_cache::clock::now()));
  EXPECT_TRUE(shared_.find("k", memory_cache::clock::now()));
  const auto found = lookup(*shard, "k");
  ASSERT_EQ(found.status, lookup_status::hit);
  EXPECT_EQ(found.entry->body, "one");
  EXPECT_EQ(found.source, "memory");
}

TEST_F(TieredCache, ASharedHitIsKeptLocallyUntilItsOwnExpiry) {
  tiered_cache tiers(local_, shared_, 60s);
  auto shard = tiers.for_shard(0, io_);
  // Stored by another instance: only in the shared tier, 300 ms left.
  shared_.put("k", answer("theirs", wall_ms() + 300), memory_cache::clock::now() + 300ms);
  ASSERT_EQ(lookup(*shard, "k").status, lookup_status::hit);
  ASSERT_TRUE(local_.find("k", memory_cache::clock::now())) << "kept locally after the shared hit";
  EXPECT_FALSE(local_.find("k", memory_cache::clock::now() + 400ms)) << "not past the entry's own expiry";
}

TEST_F(TieredCache, TheLocalCopyLivesAtMostTheLocalTtl) {
  tiered_cache tiers(local_, shared_, 200ms);
  auto shard = tiers.for_shard(0, io_);
  shared_.put("k", answer("theirs", wall_ms() + 60'000), memory_cache::clock::now() + 60s);
  ASSERT_EQ(lookup(*shard, "k").status, lookup_status::hit);
  EXPECT_TRUE(local_.find("k", memory_cache::clock::now() + 100ms));
  EXPECT_FALSE(local_.find("k", memory_cache::clock::now() + 300ms));
  // A store is capped the same way.
  shard->store("mine", answer("mine", wall_ms() + 60'000), 60s);
  EXPECT_FALSE(local_.find("mine", memory_cache::clock::now() + 300ms));
  EXPECT_TRUE(shared_.find("mine", memory_cache::clock::now() + 300ms));
}

TEST_F(TieredCache, AnEntryWithoutExpiryOrAlreadyExpiredIsNotKeptLocally) {
  tiered_cache tiers(local_, shared_, 60s);
  auto shard = tiers.for_shard(0, io_);
  shared_.put("old", answer("older writer", 0), memory_cache::clock::now() + 60s);
  shared_.put("late", answer("expired by the wall clock", wall_ms() - 1), memory_cache::clock::now() + 60s);
  EXPECT_EQ(lookup(*shard, "old").status, lookup_status::hit);
  EXPECT_EQ(lookup(*shard, "late").status, lookup_status::hit);
  EXPECT_EQ(local_.entries(), 0u);
}

TEST_F(TieredCache, AMissInBothTiersIsAMissFromTheSharedTier) {
  tiered_cache tiers(local_, shared_, 60s);
  auto shard = tiers.for_shard(0, io_);
  const auto found = lookup(*shard, "absent");
  EXPECT_EQ(found.status, lookup_status::miss);
  EXPECT_EQ(found.source, "memory");
  EXPECT_FALSE(found.entry);
}

}  // namespace
}  // namespace gatewayz::cache

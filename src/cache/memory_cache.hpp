#pragma once
// The embedded response cache: a bounded LRU map in this process, shared by
// every shard (a hit on one shard is a hit on all).
//
// Striped: a key's hash picks one of `stripes` independent LRU maps, each
// with its own mutex and 1/stripes of max_bytes, so shards rarely meet on a
// lock and no lock is held while a response is written. An entry past its
// TTL is dropped when it is next looked up, or evicted with the least
// recently used when its stripe is full. `cache_size_bytes` (when a gauge is
// given) follows the bytes held.
//
// Thread-safe; lookups and stores complete without suspending.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/cache.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::cache {

class memory_cache final : public response_cache {
 public:
  using clock = std::chrono::steady_clock;

  explicit memory_cache(std::size_t max_bytes, std::optional<telemetry::gauge_handle> size_gauge = std::nullopt,
                        std::size_t stripes = 16);
  ~memory_cache() override;

  std::string_view kind() const override { return "memory"; }
  std::unique_ptr<shard_cache> for_shard(std::size_t shard, boost::asio::io_context& io) override;

  // The synchronous operations behind the shard caches (and for tests).
  std::shared_ptr<const cached_response> find(std::string_view key, clock::time_point now);
  void put(std::string_view key, std::shared_ptr<const cached_response> entry, clock::time_point expires);
  std::size_t size_bytes() const { return bytes_.load(std::memory_order_relaxed); }
  std::size_t entries() const;

 private:
  struct node {
    std::string key;
    std::shared_ptr<const cached_response> entry;
    clock::time_point expires;
    std::size_t bytes = 0;
  };
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  struct stripe {
    std::mutex mu;
    std::list<node> lru;  // most recently used first
    std::unordered_map<std::string, std::list<node>::iterator, key_hash, std::equal_to<>> index;
    std::size_t bytes = 0;
  };

  stripe& stripe_of(std::string_view key);
  // Drops `it` from `s` (its lock held).
  void erase(stripe& s, std::list<node>::iterator it);
  void publish_size();

  std::size_t stripe_max_bytes_;
  std::vector<std::unique_ptr<stripe>> stripes_;
  std::atomic<std::size_t> bytes_{0};
  std::optional<telemetry::gauge_handle> size_gauge_;
};

}  // namespace gatewayz::cache

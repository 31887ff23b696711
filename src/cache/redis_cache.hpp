#pragma once
// The shared response cache: entries in Redis, so every gateway instance on
// one Redis answers from the same cache.
//
// An entry is one string value (encode_entry) under
// "<prefix><request key>" with a PX expiry of the TTL: Redis drops expired
// entries itself, and its maxmemory policy (allkeys-lru, or volatile-lru on
// a shared Redis) bounds the size. A lookup is one GET on the shard's own
// client (redis/client_set.hpp); a store is one SET ... PX, written by a
// coroutine spawned on the shard's io_context, so the request never waits
// for it.
//
// Failure: Redis down, slow or answering errors makes a lookup
// `unavailable` within the client's timeout (the request is proxied as a
// miss) and a store is dropped; both are counted by the client's metrics.
// An entry that does not decode is a miss.

#include <string>

#include "cache/cache.hpp"
#include "redis/client_set.hpp"

namespace gatewayz::cache {

class redis_cache final : public response_cache {
 public:
  // `clients` outlives this cache; a shard's client must be attached
  // before for_shard() (the composition root attaches it as the server
  // builds the shard's handler). A store in flight keeps its shard's client
  // until its command completes.
  explicit redis_cache(redis::client_set& clients, std::string key_prefix = "gatewayz:cache:");

  std::string_view kind() const override { return "redis"; }
  std::unique_ptr<shard_cache> for_shard(std::size_t shard, boost::asio::io_context& io) override;

 private:
  redis::client_set& clients_;
  std::string prefix_;
};

}  // namespace gatewayz::cache

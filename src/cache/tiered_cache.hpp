#pragma once
// Two tiers: this process's LRU (memory_cache) in front of the shared
// backend (Redis). A lookup asks the local tier first and the shared one
// only on a local miss; an entry found there is then kept locally too. A
// store goes to both.
//
// Why: a hit held locally costs no round trip to Redis and no Redis CPU, so
// repeated hits are as cheap as in memory mode, while a hit on one instance
// is still a hit on all (through Redis). Redis sees one GET per key per
// instance per local_ttl instead of one per request.
//
// Consistency: an entry never changes under its key, and both tiers stop
// serving it at the same wall-clock instant (cached_response::
// expires_unix_ms), so the local tier answers nothing Redis would not, with
// two exceptions bounded by local_ttl: an answer replaced on another
// instance (`x-gatewayz-cache: refresh`) or deleted from Redis by hand is
// still served here until its local copy expires. An entry without an
// expiry (written by an older gateway) is not kept locally.
//
// Failure: the local tier cannot fail; with Redis down or slow, entries
// held locally are still hits and every other lookup is `unavailable`, as
// from Redis alone. Threads: as response_cache (one shard_cache per shard;
// the local tier is shared and thread-safe).

#include <chrono>
#include <memory>

#include "cache/cache.hpp"
#include "cache/memory_cache.hpp"

namespace gatewayz::cache {

class tiered_cache final : public response_cache {
 public:
  // `local` and `shared` outlive this object.
  tiered_cache(memory_cache& local, response_cache& shared, std::chrono::milliseconds local_ttl);

  // The shared backend's kind: the tier that makes instances agree.
  std::string_view kind() const override { return shared_.kind(); }
  std::unique_ptr<shard_cache> for_shard(std::size_t shard, boost::asio::io_context& io) override;

 private:
  memory_cache& local_;
  response_cache& shared_;
  std::chrono::milliseconds local_ttl_;
};

}  // namespace gatewayz::cache

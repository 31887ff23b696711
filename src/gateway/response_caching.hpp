#pragma once
// The response cache on the request path: which requests use it, under
// which key, and what a hit is charged (docs/decisions/response-cache.md).
//
// A request uses the cache when cache.mode is not off, it is a chat
// completion or an embedding, and either its model is in cache.models ("*":
// all) or it sends `x-gatewayz-cache: on`; `off` keeps it away from the
// cache, `refresh` skips the lookup and stores the fresh answer. Any other
// value is refused (400). The key is per customer (auth.mode keys) or global.
//
// A streamed request is looked up (a hit is replayed as SSE) but a streamed
// answer is not stored: only a whole, successful, non-streamed answer of at
// most cache.max_entry_bytes is.
//
// Shared by all shards; const after construction. Counts cache_hits_total
// and cache_misses_total (a lookup the backend could not answer is a miss)
// with the calling shard's index.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache.hpp"
#include "config/config.hpp"
#include "core/api_error.hpp"
#include "gateway/request_record.hpp"
#include "http/request.hpp"
#include "providers/provider.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::gateway {

// How one request uses the cache.
struct cache_plan {
  cache_result use = cache_result::none;  // none, miss (look up, store a miss), refresh (store only)
  std::string key;
  bool lookup() const { return use == cache_result::miss; }
  // Whether this request's answer may be stored (a non-streamed one).
  bool store = false;
};

class response_caching {
 public:
  response_caching(const config::cache_config& config, cache::response_cache& backend, telemetry::catalog& metrics,
                   bool metrics_enabled);

  // The plan for `request`, or the 400 for a bad x-gatewayz-cache header.
  // `customer_id` 0: no customer (auth.mode none).
  std::optional<api_error> plan(const http::request& req, const providers::inbound_request& request,
                                std::int64_t customer_id, cache_plan& out) const;

  std::unique_ptr<cache::shard_cache> for_shard(std::size_t shard, boost::asio::io_context& io) const {
    return backend_.for_shard(shard, io);
  }

  void count_lookup(cache::lookup_status status, std::size_t shard) const;

  // What a hit on `entry` costs the customer: cache.hit_cost_fraction of
  // the original cost, in nano-USD.
  std::int64_t hit_cost(const cache::cached_response& entry) const;

  std::chrono::milliseconds ttl() const { return ttl_; }
  std::string_view backend() const { return backend_.kind(); }
  std::size_t max_entry_bytes() const { return config_.max_entry_bytes; }

 private:
  bool model_cached_by_default(std::string_view model) const;

  const config::cache_config& config_;
  cache::response_cache& backend_;
  std::chrono::milliseconds ttl_;
  std::optional<telemetry::counter_handle> hits_;
  std::optional<telemetry::counter_handle> misses_;
};

}  // namespace gatewayz::gateway

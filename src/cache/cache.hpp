#pragma once
// The response cache's storage interface: answers of earlier requests,
// found by a request key (request_key.hpp).
//
// response_cache is one backend shared by the gateway (memory_cache: this
// process; a Redis backend: every instance on one Redis). Each shard asks it
// once for its shard_cache, which is then used only on that shard's thread
// and io_context, so a remote backend can keep per-shard connections.
//
// Failure: a backend that cannot answer (Redis down or slow) reports
// `unavailable`, never blocks past its own timeout and never throws; the
// request is then served as a miss and not stored. A store is fire and
// forget: its failure is counted by the backend, not reported to the request.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

namespace gatewayz::cache {

// An answer as the client got it, with what the gateway needs to account for
// serving it again.
struct cached_response {
  std::string body;      // the OpenAI-format JSON the client was sent
  std::string provider;  // the provider that produced it
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cost_nanos = 0;  // what the original request cost (1e-9 USD)
  std::int64_t stored_unix_ms = 0;
  // When every copy of the entry stops being served (stored + ttl); 0 for an
  // entry written before the field existed, which no local tier keeps.
  std::int64_t expires_unix_ms = 0;

  std::size_t bytes() const { return body.size() + provider.size() + sizeof(cached_response); }
};

// The entry as one string, for backends that store bytes: a one-line JSON
// header (provider, tokens, cost, time) and the body after the newline.
std::string encode_entry(const cached_response& entry);
// False when `bytes` is not an encoded entry (then `out` is unspecified).
bool decode_entry(std::string_view bytes, cached_response& out);

enum class lookup_status : std::uint8_t { hit, miss, unavailable };
// "hit", "miss", "unavailable".
std::string_view to_string(lookup_status status);

struct lookup_result {
  lookup_status status = lookup_status::miss;
  std::shared_ptr<const cached_response> entry;  // set on a hit (shared, not copied, by the memory backend)
  // The kind of the store that gave this answer ("memory" or "redis"): with
  // a local tier in front of Redis, a hit may never have reached Redis.
  std::string_view source;
};

class shard_cache {
 public:
  virtual ~shard_cache() = default;
  // The entry under `key`, if it has not expired.
  virtual boost::asio::awaitable<lookup_result> lookup(std::string_view key) = 0;
  // Keeps `entry` under `key` for `ttl`; returns at once (a remote write
  // continues on the shard's io_context).
  virtual void store(std::string_view key, std::shared_ptr<const cached_response> entry,
                     std::chrono::milliseconds ttl) = 0;
};

class response_cache {
 public:
  virtual ~response_cache() = default;
  // "memory" or "redis" (for logs).
  virtual std::string_view kind() const = 0;
  // Called once per shard, on that shard's thread, before it serves.
  virtual std::unique_ptr<shard_cache> for_shard(std::size_t shard, boost::asio::io_context& io) = 0;
};

}  // namespace gatewayz::cache

#include "cache/redis_cache.hpp"

#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>

namespace gatewayz::cache {

namespace asio = boost::asio;

namespace {

class redis_shard final : public shard_cache {
 public:
  redis_shard(asio::io_context& io, std::shared_ptr<redis::client> client, const std::string& prefix)
      : io_(io), client_(std::move(client)), prefix_(prefix) {}
  // The shard's handler is going (the server has stopped): a store still in
  // flight holds the client, and the client holds the store's coroutine
  // until its command completes. Closing completes it (unavailable), which
  // breaks that cycle.
  ~redis_shard() override {
    if (client_) client_->close();
  }
  redis_shard(const redis_shard&) = delete;
  redis_shard& operator=(const redis_shard&) = delete;

  asio::awaitable<lookup_result> lookup(std::string_view key) override {
    lookup_result out;
    out.source = "redis";
    // A local: many requests of the shard look up at once.
    std::string full_key;
    full_key.reserve(prefix_.size() + key.size());
    full_key.append(prefix_).append(key);
    const std::array<std::string_view, 2> args{"GET", full_key};
    if (!client_) {
      out.status = lookup_status::unavailable;
      co_return out;
    }
    const redis::result r = co_await client_->command(args);
    if (!r.ok()) {
      out.status = lookup_status::unavailable;
      co_return out;
    }
    out.status = lookup_status::miss;
    if (r.value.type != redis::reply::kind::string) co_return out;
    auto entry = std::make_shared<cached_response>();
    if (!decode_entry(r.value.text, *entry)) co_return out;
    out.entry = std::move(entry);
    out.status = lookup_status::hit;
    co_return out;
  }

  void store(std::string_view key, std::shared_ptr<const cached_response> entry,
             std::chrono::milliseconds ttl) override {
    if (!entry || !client_ || !client_->connected()) return;  // nowhere to write: not worth a coroutine
    asio::co_spawn(io_, write(client_, prefix_ + std::string(key), encode_entry(*entry), ttl.count()), asio::detached);
  }

 private:
  // Owns everything it uses: the request that stored the entry may be gone.
  static asio::awaitable<void> write(std::shared_ptr<redis::client> client, std::string key, std::string value,
                                     std::int64_t ttl_ms) {
    const std::string ttl = fmt::format("{}", std::max<std::int64_t>(ttl_ms, 1));
    const std::array<std::string_view, 5> args{"SET", key, value, "PX", ttl};
    (void)co_await client->command(args);  // failures are counted by the client
  }

  asio::io_context& io_;
  std::shared_ptr<redis::client> client_;
  const std::string& prefix_;
};

}  // namespace

redis_cache::redis_cache(redis::client_set& clients, std::string key_prefix)
    : clients_(clients), prefix_(std::move(key_prefix)) {}

std::unique_ptr<shard_cache> redis_cache::for_shard(std::size_t shard, asio::io_context& io) {
  return std::make_unique<redis_shard>(io, clients_.lease(shard), prefix_);
}

}  // namespace gatewayz::cache

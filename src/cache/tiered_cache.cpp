#include "cache/tiered_cache.hpp"

#include <algorithm>

namespace gatewayz::cache {

namespace {

class tiered_shard final : public shard_cache {
 public:
  tiered_shard(memory_cache& local, std::unique_ptr<shard_cache> shared, std::chrono::milliseconds local_ttl)
      : local_(local), shared_(std::move(shared)), local_ttl_(local_ttl) {}

  boost::asio::awaitable<lookup_result> lookup(std::string_view key) override {
    lookup_result out;
    out.entry = local_.find(key, memory_cache::clock::now());
    if (out.entry) {
      out.status = lookup_status::hit;
      out.source = "memory";
      co_return out;
    }
    out = co_await shared_->lookup(key);
    if (out.status == lookup_status::hit && out.entry) keep_locally(key, out.entry);
    co_return out;
  }

  void store(std::string_view key, std::shared_ptr<const cached_response> entry,
             std::chrono::milliseconds ttl) override {
    if (!entry) return;
    local_.put(key, entry, memory_cache::clock::now() + std::min(ttl, local_ttl_));
    shared_->store(key, std::move(entry), ttl);
  }

 private:
  // Until the entry's own expiry, at most local_ttl.
  void keep_locally(std::string_view key, const std::shared_ptr<const cached_response>& entry) {
    if (entry->expires_unix_ms == 0) return;
    const auto wall_now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
    const auto left = std::chrono::milliseconds(entry->expires_unix_ms) - wall_now;
    if (left <= std::chrono::milliseconds::zero()) return;
    local_.put(key, entry, memory_cache::clock::now() + std::min(left, local_ttl_));
  }

  memory_cache& local_;
  std::unique_ptr<shard_cache> shared_;
  std::chrono::milliseconds local_ttl_;
};

}  // namespace

tiered_cache::tiered_cache(memory_cache& local, response_cache& shared, std::chrono::milliseconds local_ttl)
    : local_(local), shared_(shared), local_ttl_(local_ttl) {}

std::unique_ptr<shard_cache> tiered_cache::for_shard(std::size_t shard, boost::asio::io_context& io) {
  return std::make_unique<tiered_shard>(local_, shared_.for_shard(shard, io), local_ttl_);
}

}  // namespace gatewayz::cache

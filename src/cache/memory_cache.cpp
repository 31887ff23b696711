#include "cache/memory_cache.hpp"

#include <algorithm>

namespace gatewayz::cache {

namespace {

// A shard's view of the shared map: every call completes at once.
class memory_shard final : public shard_cache {
 public:
  explicit memory_shard(memory_cache& cache) : cache_(cache) {}

  boost::asio::awaitable<lookup_result> lookup(std::string_view key) override {
    lookup_result result;
    result.entry = cache_.find(key, memory_cache::clock::now());
    result.status = result.entry ? lookup_status::hit : lookup_status::miss;
    result.source = "memory";
    co_return result;
  }

  void store(std::string_view key, std::shared_ptr<const cached_response> entry,
             std::chrono::milliseconds ttl) override {
    cache_.put(key, std::move(entry), memory_cache::clock::now() + ttl);
  }

 private:
  memory_cache& cache_;
};

}  // namespace

memory_cache::memory_cache(std::size_t max_bytes, std::optional<telemetry::gauge_handle> size_gauge,
                           std::size_t stripes)
    : stripe_max_bytes_(max_bytes / std::max<std::size_t>(stripes, 1)), size_gauge_(size_gauge) {
  stripes_.reserve(std::max<std::size_t>(stripes, 1));
  for (std::size_t i = 0; i < std::max<std::size_t>(stripes, 1); ++i) stripes_.push_back(std::make_unique<stripe>());
  publish_size();
}

memory_cache::~memory_cache() = default;

std::unique_ptr<shard_cache> memory_cache::for_shard(std::size_t, boost::asio::io_context&) {
  return std::make_unique<memory_shard>(*this);
}

memory_cache::stripe& memory_cache::stripe_of(std::string_view key) {
  // The high bits: the map inside the stripe uses the low ones.
  const auto h = key_hash{}(key);
  return *stripes_[(h >> 32 ^ h >> 16) % stripes_.size()];
}

void memory_cache::erase(stripe& s, std::list<node>::iterator it) {
  s.bytes -= it->bytes;
  bytes_.fetch_sub(it->bytes, std::memory_order_relaxed);
  s.index.erase(it->key);
  s.lru.erase(it);
}

void memory_cache::publish_size() {
  if (size_gauge_) size_gauge_->set(static_cast<double>(bytes_.load(std::memory_order_relaxed)));
}

std::shared_ptr<const cached_response> memory_cache::find(std::string_view key, clock::time_point now) {
  auto& s = stripe_of(key);
  std::shared_ptr<const cached_response> found;
  bool expired = false;
  {
    std::lock_guard lock(s.mu);
    const auto at = s.index.find(key);
    if (at == s.index.end()) return nullptr;
    const auto it = at->second;
    if (it->expires <= now) {
      erase(s, it);
      expired = true;
    } else {
      s.lru.splice(s.lru.begin(), s.lru, it);
      found = it->entry;
    }
  }
  if (expired) publish_size();
  return found;
}

void memory_cache::put(std::string_view key, std::shared_ptr<const cached_response> entry, clock::time_point expires) {
  if (!entry) return;
  const std::size_t bytes = entry->bytes() + key.size() + sizeof(node);
  if (bytes > stripe_max_bytes_) return;  // would evict the whole stripe for one entry
  auto& s = stripe_of(key);
  {
    std::lock_guard lock(s.mu);
    if (const auto at = s.index.find(key); at != s.index.end()) erase(s, at->second);
    while (!s.lru.empty() && s.bytes + bytes > stripe_max_bytes_) erase(s, std::prev(s.lru.end()));
    s.lru.push_front(node{std::string(key), std::move(entry), expires, bytes});
    s.index.emplace(s.lru.front().key, s.lru.begin());
    s.bytes += bytes;
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  publish_size();
}

std::size_t memory_cache::entries() const {
  std::size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard lock(s->mu);
    n += s->index.size();
  }
  return n;
}

}  // namespace gatewayz::cache

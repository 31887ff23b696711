#include "redis/client_set.hpp"

#include <stdexcept>

namespace gatewayz::redis {

client_set::client_set(client_options options, telemetry::catalog* metrics, std::size_t shards)
    : options_(std::move(options)),
      metrics_(metrics),
      slots_(std::make_shared<std::vector<std::weak_ptr<client>>>(shards)) {}

std::shared_ptr<client> client_set::attach(std::size_t shard, boost::asio::io_context& io) {
  if (shard >= slots_->size()) throw std::out_of_range("redis::client_set::attach: shard out of range");
  auto owned = std::make_shared<client>(io, options_, metrics_, shard);
  (*slots_)[shard] = owned;
  return owned;
}

client* client_set::for_shard(std::size_t shard) const { return lease(shard).get(); }

std::shared_ptr<client> client_set::lease(std::size_t shard) const {
  return shard < slots_->size() ? (*slots_)[shard].lock() : nullptr;
}

}  // namespace gatewayz::redis

#pragma once
// One Redis client per server shard, for the parts of the gateway that use
// Redis on the request path (the response cache).
//
// The composition root owns the set and, when the server builds shard k's
// handler, calls attach(k, io): that creates shard k's client on the shard's
// io_context and returns the lease that owns it. The lease is kept by the
// shard's handler, so the client is destroyed with the handler, before the
// server destroys the io_context (a client must not outlive it). Code
// running on shard k's thread finds the client with for_shard(k).
//
// Threads: attach() is called while the server builds its shards (before
// they run); for_shard(k) on shard k's thread. A lease may outlive the set.

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "redis/client.hpp"

namespace gatewayz::redis {

class client_set {
 public:
  // shards: the number of server threads; clients count metrics on their
  // shard's metric shard (the same index).
  client_set(client_options options, telemetry::catalog* metrics, std::size_t shards);

  // Creates shard `shard`'s client on `io` (replacing any earlier one's slot).
  // Throws std::out_of_range for a shard beyond the count.
  std::shared_ptr<client> attach(std::size_t shard, boost::asio::io_context& io);

  // Shard `shard`'s client; null before attach() or once its lease is gone.
  client* for_shard(std::size_t shard) const;
  // The same, shared: for work that may outlive the shard's handler by one
  // command (a write spawned on the shard's io_context).
  std::shared_ptr<client> lease(std::size_t shard) const;

  std::size_t shards() const { return slots_->size(); }
  const client_options& options() const { return options_; }

 private:
  client_options options_;
  telemetry::catalog* metrics_;
  std::shared_ptr<std::vector<std::weak_ptr<client>>> slots_;
};

}  // namespace gatewayz::redis

#pragma once
// health::shared_store on Redis (health.shared: true): what the monitor
// threads of every gateway instance on one Redis exchange once per round.
//
// Keys (prefix "gatewayz:health:" by default; provider names as configured):
//   <prefix>breaker:<provider>            string: the opening's end, epoch ms;
//                                         expires then (SET ... PX)
//   <prefix>window:<provider>:<bucket>    hash s / f / c: successes, failures,
//                                         client errors of every instance in one
//                                         bucket of window_s/30 (at least 1 s);
//                                         expires a window after its bucket
// One exchange is one pipeline in one write: HINCRBY + EXPIRE per provider
// with new attempts, SET per new opening, then MGET of the breaker keys and
// HMGET of every bucket in the window. It runs on its own io_context and
// client on the calling (monitor) thread, and takes at most the client's
// timeout; when Redis cannot answer, out.pushed / out.read say what failed
// and the monitor keeps its own view.
//
// Consistency: counts are exact sums of what every instance pushed (HINCRBY),
// at most one interval late per instance; an opening reaches the others at
// their next round. Instances' clocks are assumed to agree within a bucket.

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "health/health.hpp"
#include "redis/client.hpp"

namespace gatewayz::health {

class redis_shared_store final : public shared_store {
 public:
  redis_shared_store(redis::client_options options, std::vector<std::string> providers, double window_s,
                     telemetry::catalog* metrics, std::size_t metric_shard,
                     std::string key_prefix = "gatewayz:health:");
  ~redis_shared_store() override;

  void exchange(const exchange_in& in, exchange_out& out) override;

 private:
  std::vector<std::string> providers_;
  std::int64_t bucket_ms_;
  std::int64_t window_ms_;
  std::string prefix_;
  boost::asio::io_context io_{1};
  std::unique_ptr<redis::client> client_;
};

}  // namespace gatewayz::health

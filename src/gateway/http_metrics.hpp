#pragma once
// The HTTP metrics (fastapi_requests_total, _duration_seconds, _in_progress, request and
// response sizes), fed by the server for every request it reads.
//
// `path` is the route template of the route table (route_table.hpp), never
// the raw target: every path that matches no route is reported as
// "unmatched", and methods outside the usual set as "OTHER", so a scanner
// probing random URLs cannot create new series. The token started() returns
// carries the matched route to the router (route_of), so a path is matched
// once per request.
//
// Label sets are resolved to handles the first time a shard sees them and
// kept per shard, so the steady state is a table lookup and a few per-shard
// cell updates, with no lock and no string building.

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/route_table.hpp"
#include "http/server.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::gateway {

class http_metrics final : public http::exchange_observer {
 public:
  // shards: the server's thread count (handles are kept per shard).
  http_metrics(telemetry::catalog& metrics, std::size_t shards, bool enabled);

  // The route index (into route_specs; route_count: none) a token of started() carries.
  static std::size_t route_of(std::uint32_t token) { return token / method_count; }

  std::uint32_t started(std::size_t shard, boost::beast::http::verb method, std::string_view target) override;
  void finished(std::size_t shard, std::uint32_t token, boost::beast::http::verb method, unsigned status,
                std::size_t request_bytes, std::size_t response_bytes, std::chrono::steady_clock::duration elapsed,
                std::string_view trace_id) override;

 private:
  static constexpr std::size_t method_count = 8;  // GET POST PUT DELETE PATCH HEAD OPTIONS OTHER

  struct route_method {
    bool resolved = false;
    telemetry::gauge_handle in_progress;
    telemetry::histogram_handle duration;
    telemetry::histogram_handle request_size;
    telemetry::histogram_handle response_size;
  };
  struct shard_state {
    std::array<route_method, (route_count + 1) * method_count> cells{};
    std::unordered_map<std::uint32_t, telemetry::counter_handle> requests;  // (cell << 10 | status)
  };

  route_method& cell(std::size_t shard, std::uint32_t token);

  telemetry::catalog& metrics_;
  bool enabled_;
  std::vector<shard_state> shards_;
};

}  // namespace gatewayz::gateway

#pragma once
// The health endpoints as handlers that return a response: GET /health,
// GET /health/dashboard, GET /admin/circuit-breakers and
// POST /admin/circuit-breakers/{provider}/reset. The router has checked the
// method and the admin key before calling them.
//
// Thread-safe: the monitor's snapshot is immutable and the dashboard cache
// locks; any shard may call any handler.

#include <functional>
#include <string_view>

#include "health/health.hpp"
#include "health/render.hpp"
#include "http/server.hpp"

namespace gatewayz::gateway {

class health_api {
 public:
  // `database`, `redis`: the store's and Redis's latest known states (not
  // called when empty: not_configured). Called on a shard: must not block.
  health_api(health::monitor& monitor, std::function<health::dependency_state()> database,
             std::function<health::dependency_state()> redis, double dashboard_cache_s);

  http::response health(const http::request& req) const;
  http::response dashboard(const http::request& req);
  http::response breakers(const http::request& req) const;
  // 404 when no provider has that name.
  http::response reset_breaker(const http::request& req, std::string_view provider);

 private:
  health::monitor& monitor_;
  std::function<health::dependency_state()> database_;
  std::function<health::dependency_state()> redis_;
  health::dashboard_cache dashboard_;
};

}  // namespace gatewayz::gateway

#include "gateway/health_api.hpp"

#include <chrono>

#include <fmt/format.h>

#include "gateway/responses.hpp"

#ifndef GATEWAYZ_VERSION
#define GATEWAYZ_VERSION "0.0.0"
#endif

namespace gatewayz::gateway {

namespace bhttp = boost::beast::http;

health_api::health_api(health::monitor& monitor, std::function<health::dependency_state()> database,
                       std::function<health::dependency_state()> redis, double dashboard_cache_s)
    : monitor_(monitor),
      database_(std::move(database)),
      redis_(std::move(redis)),
      dashboard_(std::chrono::duration<double>(dashboard_cache_s), monitor.clock()) {}

http::response health_api::health(const http::request& req) const {
  health::health_inputs inputs;
  inputs.version = GATEWAYZ_VERSION;
  inputs.database = database_ ? database_() : health::dependency_state::not_configured;
  inputs.redis = redis_ ? redis_() : health::dependency_state::not_configured;
  inputs.now = std::chrono::system_clock::now();
  auto rendered = health::render_health(*monitor_.current(), inputs);
  auto res = json_response(rendered.status, std::move(rendered.body), req.version());
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

http::response health_api::dashboard(const http::request& req) {
  const auto body = dashboard_.get([this] { return health::render_dashboard(*monitor_.current()); });
  return json_response(200, *body, req.version());
}

http::response health_api::breakers(const http::request& req) const {
  return json_response(200, health::render_breakers(monitor_.breakers(), std::chrono::system_clock::now()),
                       req.version());
}

http::response health_api::reset_breaker(const http::request& req, std::string_view provider) {
  const auto index = monitor_.provider_index(provider);
  if (!index) {
    const api_error error{404, "invalid_request_error", "provider_not_found",
                          fmt::format("No provider named `{}`", provider.substr(0, 64))};
    return error_response(error, req.version());
  }
  monitor_.reset(*index);
  return breakers(req);
}

}  // namespace gatewayz::gateway

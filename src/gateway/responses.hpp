#pragma once
// JSON responses shared by the gateway's handlers (internal to gw_gateway).

#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include "core/api_error.hpp"
#include "http/server.hpp"

namespace gatewayz::gateway {

inline http::response json_response(unsigned status, std::string body, unsigned version) {
  http::response res{static_cast<boost::beast::http::status>(status), version};
  res.set(boost::beast::http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

inline http::response error_response(const api_error& error, unsigned version) {
  return json_response(static_cast<unsigned>(error.status), error.to_json(), version);
}

// 405 in OpenAI's error shape with the Allow header.
inline http::response method_not_allowed(const http::request& req, std::string_view path, std::string_view allowed) {
  auto res = error_response(api_error::method_not_allowed(req.method_string(), path), req.version());
  res.set(boost::beast::http::field::allow, allowed);
  return res;
}

}  // namespace gatewayz::gateway

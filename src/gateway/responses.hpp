#pragma once
// Responses shared by the gateway's handlers (internal to gw_gateway).

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
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
  auto res = json_response(static_cast<unsigned>(error.status), error.to_json(), version);
  if (!error.retry_after.empty()) res.set(boost::beast::http::field::retry_after, error.retry_after);
  return res;
}

// 405 in OpenAI's error shape with the Allow header.
inline http::response method_not_allowed(const http::request& req, std::string_view path, std::string_view allowed) {
  auto res = error_response(api_error::method_not_allowed(req.method_string(), path), req.version());
  res.set(boost::beast::http::field::allow, allowed);
  return res;
}

// Sends `res` with the request's x-request-id. (Arguments of co_await'ed
// calls are named locals, never temporaries in the same full-expression:
// GCC 12 destroys such temporaries twice.)
inline boost::asio::awaitable<void> send(http::request_context& ctx, http::response res, std::string_view request_id) {
  res.set("x-request-id", request_id);
  co_await ctx.writer.send(std::move(res));
}

inline boost::asio::awaitable<void> send_error(http::request_context& ctx, const api_error& error,
                                               std::string_view request_id) {
  auto res = error_response(error, ctx.req.version());
  co_await send(ctx, std::move(res), request_id);
}

}  // namespace gatewayz::gateway

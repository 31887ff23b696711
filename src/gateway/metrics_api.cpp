#include "gateway/metrics_api.hpp"

#include "core/api_error.hpp"
#include "gateway/background.hpp"
#include "gateway/credentials.hpp"
#include "gateway/responses.hpp"

namespace gatewayz::gateway {

namespace bhttp = boost::beast::http;

metrics_api::metrics_api(telemetry::catalog& metrics, std::string bearer_token)
    : metrics_(metrics), bearer_token_(std::move(bearer_token)) {}

metrics_api::~metrics_api() { pool_.join(); }

boost::asio::awaitable<http::response> metrics_api::scrape(const http::request& req) {
  if (!bearer_token_.empty() && !same_secret(bearer_token(req[bhttp::field::authorization]), bearer_token_)) {
    auto res = error_response(api_error::unauthorized("A valid bearer token is required for /metrics"), req.version());
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"metrics\"");
    co_return res;
  }
  const auto content_type = telemetry::negotiate(req[bhttp::field::accept]);
  const bool compress = telemetry::accepts_gzip(req[bhttp::field::accept_encoding]);
  auto render = [this, content_type, compress] {
    metrics_.process.collect();
    std::string text = metrics_.reg.render(content_type);
    return compress ? telemetry::gzip(text) : text;
  };
  std::string body = co_await on_pool(pool_, std::move(render));
  http::response res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, content_type);
  if (compress) res.set(bhttp::field::content_encoding, "gzip");
  res.set(bhttp::field::vary, "Accept-Encoding");
  res.body() = std::move(body);
  co_return res;
}

}  // namespace gatewayz::gateway

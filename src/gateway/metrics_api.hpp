#pragma once
// GET /metrics as a handler that returns a response: the registry rendered
// in the format the scraper's Accept header negotiates, gzip-compressed when
// its Accept-Encoding accepts gzip (Prometheus asks for it; answers carry
// Vary: Accept-Encoding), behind an optional bearer token
// (metrics.bearer_token).
//
// Rendering runs on a thread of its own: at high cardinality a scrape takes
// tens of milliseconds, which must not stall a server thread's other
// requests. drain() waits for renders in flight; the gateway calls it before
// the server's io_contexts go away.

#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "http/server.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::gateway {

class metrics_api {
 public:
  metrics_api(telemetry::catalog& metrics, std::string bearer_token);
  ~metrics_api();
  metrics_api(const metrics_api&) = delete;
  metrics_api& operator=(const metrics_api&) = delete;

  boost::asio::awaitable<http::response> scrape(const http::request& req);
  void drain() { pool_.join(); }

 private:
  telemetry::catalog& metrics_;
  std::string bearer_token_;
  boost::asio::thread_pool pool_{1};
};

}  // namespace gatewayz::gateway

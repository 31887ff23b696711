#pragma once
// The request observer that writes the request path's log lines
// (logging/log.hpp), one more consumer of the request record:
//  - one access line per proxied request, at info: request and trace ids,
//    customer, model, provider, attempts, status, HTTP status, duration_ms,
//    ttft_ms, tokens, cost_usd;
//  - one line per failed provider attempt, at error, with error_type
//    (timeout, connection, upstream_5xx, rate_limited, malformed,
//    upstream_4xx), and a warning when a request failed over;
//  - one line per request the gateway answered itself: refusals at info
//    (4xx) or warning (5xx), the admin API at info, /health, /metrics and
//    /v1/models at debug.
// Prompts are on the access line only with logging.log_content (truncated
// to content_bytes); keys and headers never are.
//
// Threads: called on the shard that served the request; formats the line
// there and queues it on that shard's log queue (no lock shared between
// shards, no allocation once warm).

#include <cstddef>
#include <string_view>
#include <vector>

#include "config/config.hpp"

#include "gateway/request_record.hpp"
#include "logging/log.hpp"

namespace gatewayz::gateway {

class log_recorder final : public request_observer {
 public:
  static constexpr std::size_t content_bytes = 1024;

  // `providers`: the config's, in order (provider names by index); must outlive this.
  log_recorder(logging::logger& log, const std::vector<config::provider_config>& providers, bool log_content)
      : log_(log), providers_(providers), log_content_(log_content) {}

  void on_attempt(std::size_t shard, const request_record& request, const attempt_record& attempt) noexcept override;
  void on_request(std::size_t shard, const request_record& request) noexcept override;
  void on_exchange(std::size_t shard, const exchange_record& exchange) noexcept override;

  // The log's error_type of an attempt's failure (its low-cardinality name
  // as attempt.cpp records it, and the upstream status).
  static std::string_view log_error_type(const attempt_record& attempt);

 private:
  logging::logger& log_;
  const std::vector<config::provider_config>& providers_;
  bool log_content_;
};

}  // namespace gatewayz::gateway

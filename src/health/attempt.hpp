#pragma once
// What the gateway reports about one upstream attempt, and how an answer is
// classified for provider health.
//
// Outcome classification (what counts against a provider):
//  - success       2xx.
//  - failure       the provider's fault: connect errors, timeouts, a connection
//                  closed or a protocol error mid-exchange, 5xx, 429 (rate
//                  limited: the provider cannot take the traffic), 408, and
//                  1xx/3xx (an API never answers a POST with them; the gateway
//                  reports them as 502). A 401 is a failure too when the
//                  credential is the gateway's own configured key (the default:
//                  the provider is then unusable for every request, so routing
//                  away from it is right).
//  - client_error  the client's request caused it: 400, 403, 404 (unknown
//                  model), 413, 422 and every other 4xx, and 401 when the
//                  client supplied the credential itself. Client errors are
//                  counted (client_errors) but are neither requests nor errors
//                  of the provider: they do not change availability, error
//                  rate, latency, requests_last_hour or the circuit breaker. A
//                  flood of bad requests must neither hide a failing provider
//                  (by diluting its error rate) nor break a healthy one.
//  - cancelled     the client went away before the attempt finished. Ignored
//                  by the windows; releases a half-open trial slot.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace gatewayz::health {

using steady_time = std::chrono::steady_clock::time_point;
using wall_time = std::chrono::system_clock::time_point;

enum class outcome : std::uint8_t { success, failure, client_error, cancelled };

std::string_view to_string(outcome o);  // "success", "failure", "client_error", "cancelled"

// Classifies an upstream HTTP status (see the table above).
// `client_supplied_credentials`: the upstream credential was the client's own
// (bring-your-own-key); a 401 is then the client's error.
outcome classify_status(unsigned http_status, bool client_supplied_credentials = false);

// Model slot meaning "no per-model accounting" (the provider level still counts).
inline constexpr std::size_t no_model = std::numeric_limits<std::size_t>::max();

struct attempt_result {
  // Index into provider_info::models of the attempt's provider, or no_model.
  std::size_t model = no_model;
  outcome result = outcome::success;
  // The provider's response time as recorded in provider_response_time_seconds
  // (request sent → response complete, or → first chunk for streams, as the
  // gateway chooses; be consistent). Only successes feed latency statistics:
  // a refused connection is not "fast" and a timeout is already an error.
  std::chrono::nanoseconds duration{0};
  // When the attempt ended; decides its time bucket.
  steady_time finished{};
};

}  // namespace gatewayz::health

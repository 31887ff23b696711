#include "health/attempt.hpp"

namespace gatewayz::health {

std::string_view to_string(outcome o) {
  switch (o) {
    case outcome::success: return "success";
    case outcome::failure: return "failure";
    case outcome::client_error: return "client_error";
    case outcome::cancelled: return "cancelled";
  }
  return "unknown";
}

outcome classify_status(unsigned http_status, bool client_supplied_credentials) {
  if (http_status >= 200 && http_status < 300) return outcome::success;
  if (http_status == 401) return client_supplied_credentials ? outcome::client_error : outcome::failure;
  // 408: the provider gave up waiting for our request; 429: it cannot take the load.
  if (http_status == 408 || http_status == 429) return outcome::failure;
  if (http_status >= 400 && http_status < 500) return outcome::client_error;
  return outcome::failure;  // 5xx, and 1xx / 3xx which an API never answers a POST with
}

}  // namespace gatewayz::health

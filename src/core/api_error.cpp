#include "core/api_error.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace gatewayz {

std::string api_error::to_json() const {
  boost::json::object inner;
  inner["message"] = message;
  inner["type"] = type;
  inner["param"] = nullptr;
  inner["code"] = code;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  return boost::json::serialize(outer);
}

api_error api_error::bad_request(std::string message, std::string code) {
  return {400, "invalid_request_error", std::move(code), std::move(message)};
}

api_error api_error::invalid_json(std::string message) {
  return {400, "invalid_request_error", "invalid_json",
          fmt::format("We could not parse the JSON body of your request: {}", message)};
}

api_error api_error::model_not_found(std::string_view model) {
  return {404, "invalid_request_error", "model_not_found",
          fmt::format("The model `{}` does not exist or is not served by this gateway.", model)};
}

api_error api_error::not_found(std::string_view path) {
  return {404, "invalid_request_error", "not_found", fmt::format("Unknown path: {}", path)};
}

api_error api_error::method_not_allowed(std::string_view method, std::string_view path) {
  return {405, "invalid_request_error", "method_not_allowed",
          fmt::format("Method {} is not allowed on {}", method, path)};
}

api_error api_error::payload_too_large(std::size_t limit_bytes) {
  return {413, "invalid_request_error", "request_too_large",
          fmt::format("Request body exceeds the limit of {} bytes", limit_bytes)};
}

api_error api_error::unauthorized(std::string message) {
  return {401, "authentication_error", "invalid_api_key", std::move(message)};
}

api_error api_error::upstream_unreachable(std::string_view provider) {
  return {502, "api_error", "upstream_unreachable", fmt::format("Could not reach provider `{}`", provider)};
}

api_error api_error::upstream_timeout(std::string_view provider) {
  return {504, "api_error", "upstream_timeout", fmt::format("Provider `{}` did not answer in time", provider)};
}

api_error api_error::upstream_bad_response(std::string_view provider, std::string message) {
  return {502, "api_error", "upstream_bad_response",
          fmt::format("Provider `{}` sent an invalid response: {}", provider, message)};
}

api_error api_error::upstream_status(int status, std::string_view provider, std::string message) {
  std::string type = status == 429                    ? "rate_limit_error"
                     : status == 401 || status == 403 ? "authentication_error"
                     : status >= 500                  ? "api_error"
                                                      : "invalid_request_error";
  return {status, std::move(type), fmt::format("upstream_{}", status),
          fmt::format("Provider `{}` returned HTTP {}: {}", provider, status, message)};
}

api_error api_error::no_provider_available(std::string_view model) {
  return {503, "api_error", "no_provider_available",
          fmt::format("No provider is currently able to serve model `{}`", model)};
}

api_error api_error::service_unavailable(std::string message) {
  return {503, "api_error", "service_unavailable", std::move(message)};
}

api_error api_error::ledger_backlog() {
  return {503, "api_error", "ledger_backlog",
          "The gateway cannot record more requests right now: its usage ledger is behind the database. "
          "Retry shortly."};
}

api_error api_error::insufficient_quota(std::string message) {
  return {402, "insufficient_quota", "insufficient_quota", std::move(message)};
}

api_error api_error::internal(std::string message) { return {500, "api_error", "internal_error", std::move(message)}; }

}  // namespace gatewayz

#pragma once
// The gateway's one error vocabulary. Every failure a client can see is an
// api_error: an HTTP status plus OpenAI's error body
//   {"error":{"message":...,"type":...,"param":null,"code":...}}
// The message is written for the client: it never carries keys, prompts or
// upstream credentials (internal detail goes to logs instead).

#include <string>
#include <string_view>

namespace gatewayz {

struct api_error {
  int status = 500;
  std::string type;     // OpenAI error type, e.g. "invalid_request_error"
  std::string code;     // machine-readable code, e.g. "model_not_found"
  std::string message;  // human-readable, safe to show to the client
  // Sent as the Retry-After header with the error when not empty (an
  // upstream 429's or 503's own, passed on).
  std::string retry_after{};

  // Serialises to OpenAI's error JSON shape.
  std::string to_json() const;

  static api_error bad_request(std::string message, std::string code = "invalid_request");
  static api_error invalid_json(std::string message);
  static api_error model_not_found(std::string_view model);
  static api_error not_found(std::string_view path);
  static api_error method_not_allowed(std::string_view method, std::string_view path);
  static api_error payload_too_large(std::size_t limit_bytes);
  static api_error unauthorized(std::string message);
  static api_error upstream_unreachable(std::string_view provider);
  static api_error upstream_timeout(std::string_view provider);
  static api_error upstream_bad_response(std::string_view provider, std::string message);
  static api_error upstream_status(int status, std::string_view provider, std::string message);
  static api_error no_provider_available(std::string_view model);
  static api_error service_unavailable(std::string message);
  // 503: the usage ledger cannot take another row (the database is behind).
  static api_error ledger_backlog();
  // 402: the customer's credit does not cover what the request may cost.
  static api_error insufficient_quota(std::string message);
  static api_error internal(std::string message);
};

}  // namespace gatewayz

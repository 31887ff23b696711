#pragma once
// Reading and comparing the secrets a request presents (internal to gw_gateway).

#include <algorithm>
#include <string_view>

#include "auth/authenticator.hpp"

namespace gatewayz::gateway {

// Constant-time comparison, so response timing does not reveal how much of a
// guessed token was right.
inline bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// The token of an "Authorization: Bearer <token>" value; empty when absent or malformed.
inline std::string_view bearer_token(std::string_view authorization) {
  return auth::extract_key(authorization).value_or(std::string_view{});
}

}  // namespace gatewayz::gateway

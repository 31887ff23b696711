#include "core/request_id.hpp"

#include <cstdint>
#include <random>

#include <fmt/format.h>

namespace gatewayz {

std::string make_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("req_{:016x}{:08x}", rng(), static_cast<std::uint32_t>(rng()));
}

std::string request_id_for(std::string_view inbound) {
  if (inbound.empty() || inbound.size() > 128) return make_request_id();
  for (const char c : inbound) {
    if (c <= 0x20 || c >= 0x7f) return make_request_id();
  }
  return std::string(inbound);
}

}  // namespace gatewayz

#pragma once
// Durations: the config writes seconds (as doubles); the modules' options
// take whole milliseconds. One conversion, truncating, for every mapping.

#include <chrono>
#include <cstdint>

namespace gatewayz::config {

inline std::chrono::milliseconds to_milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

}  // namespace gatewayz::config

#pragma once
// Log levels, as logging.level and the Loki `level` label spell them.

#include <cstdint>
#include <optional>
#include <string_view>

namespace gatewayz::logging {

enum class level : std::uint8_t { debug = 0, info = 1, warning = 2, error = 3 };
inline constexpr std::size_t level_count = 4;

constexpr std::string_view to_string(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warning: return "warning";
    case level::error: return "error";
  }
  return "info";
}

constexpr std::optional<level> parse_level(std::string_view text) {
  if (text == "debug") return level::debug;
  if (text == "info") return level::info;
  if (text == "warning") return level::warning;
  if (text == "error") return level::error;
  return std::nullopt;
}

}  // namespace gatewayz::logging

// "${VAR}" / "${VAR:-default}" expansion of scalar values (rules in config.hpp).
#include "config/loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace gatewayz::config::detail {
namespace {

bool valid_env_name(std::string_view name) {
  if (name.empty() || is_ascii_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_ascii_alpha(c) || is_ascii_digit(c) || c == '_'; });
}

}  // namespace

std::optional<std::string> loader::expand(std::string_view text, const std::string& path) {
  std::string out;
  out.reserve(text.size());
  bool ok = true;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
      out += text[i];
      ++i;
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      fail(path, "unterminated \"${\": write ${NAME} or ${NAME:-default}");
      return std::nullopt;
    }
    const std::string_view body = text.substr(i + 2, close - i - 2);
    const auto separator = body.find(":-");
    const std::string_view name = body.substr(0, separator);
    std::optional<std::string_view> fallback;
    if (separator != std::string_view::npos) fallback = body.substr(separator + 2);
    i = close + 1;
    // Neither the name nor the default is echoed: either may be a pasted secret.
    if (!valid_env_name(name)) {
      fail(path,
           "invalid environment variable reference: names are letters, digits and '_', "
           "not starting with a digit");
      ok = false;
      continue;
    }
    if (fallback && fallback->find("${") != std::string_view::npos) {
      fail(path, fmt::format("nested ${{...}} in the default of ${{{}}} is not supported", name));
      ok = false;
      continue;
    }
    const auto value = lookup(name);
    if (value && !value->empty()) {
      out += *value;
    } else if (fallback) {
      out += *fallback;
    } else if (!value) {
      fail(path, fmt::format("environment variable {} is not set", name));
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace gatewayz::config::detail

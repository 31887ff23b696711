#include "store/money.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace gatewayz::store {

std::optional<nanos_usd> parse_usd(std::string_view text, bool allow_negative, std::string& why) {
  const std::string_view original = text;
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  const auto all_digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !all_digits(whole) || (dot != std::string_view::npos && fraction.empty()) ||
      !all_digits(fraction)) {
    why = fmt::format("must be a decimal amount in USD such as 10 or 0.25 (got \"{}\")", original);
    return std::nullopt;
  }
  if (fraction.size() > 9) {
    why = fmt::format("at most 9 decimals (1 nano-USD) are representable (got \"{}\")", original);
    return std::nullopt;
  }
  if (negative && !allow_negative) {
    why = fmt::format("must not be negative (got \"{}\")", original);
    return std::nullopt;
  }
  constexpr auto max = std::numeric_limits<nanos_usd>::max();
  nanos_usd units = 0;
  for (const char c : whole) {
    const int digit = c - '0';
    if (units > (max - digit) / 10) {
      why = fmt::format("is too large (got \"{}\")", original);
      return std::nullopt;
    }
    units = units * 10 + digit;
  }
  nanos_usd nanos = 0;
  for (std::size_t i = 0; i < 9; ++i) nanos = nanos * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  if (units > (max - nanos) / nanos_per_usd) {
    why = fmt::format("is too large (got \"{}\")", original);
    return std::nullopt;
  }
  const nanos_usd total = units * nanos_per_usd + nanos;
  if (total > max_balance_nanos) {
    why = fmt::format("is outside the allowed range of -{} to {} USD (got \"{}\")", max_balance_usd, max_balance_usd,
                      original);
    return std::nullopt;
  }
  return negative ? -total : total;
}

std::string format_usd(nanos_usd amount) {
  const bool negative = amount < 0;
  // Magnitude as unsigned, so the most negative value does not overflow.
  const std::uint64_t magnitude = negative ? static_cast<std::uint64_t>(-(amount + 1)) + 1
                                           : static_cast<std::uint64_t>(amount);
  const auto per_usd = static_cast<std::uint64_t>(nanos_per_usd);
  std::string fraction = fmt::format("{:09}", magnitude % per_usd);
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return fmt::format("{}{}.{}", negative ? "-" : "", magnitude / per_usd, fraction);
}

}  // namespace gatewayz::store

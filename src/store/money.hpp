#pragma once
// Exact decimal USD <-> integer nano-dollars, for the CLI and the admin API:
// amounts never pass through a float.

#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace gatewayz::store {

// "12", "0.25", "-3.000000001" -> nano-USD, exactly. nullopt (with the reason
// in `why`) for anything else: more than 9 decimals, a sign where
// `allow_negative` is false, no digits, exponents, a magnitude over
// max_balance_usd (store.hpp).
std::optional<nanos_usd> parse_usd(std::string_view text, bool allow_negative, std::string& why);

// Nano-USD as decimal USD with at least two decimals: 12.50, 0.000000001, -3.10.
std::string format_usd(nanos_usd amount);

}  // namespace gatewayz::store

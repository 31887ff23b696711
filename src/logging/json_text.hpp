#pragma once
// JSON string escaping shared by the line formatter and the Loki encoder
// (internal to src/logging).

#include <string>
#include <string_view>

namespace gatewayz::logging::detail {

// Appends `text` as the inside of a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_escaped(std::string_view text, std::string& out);

}  // namespace gatewayz::logging::detail

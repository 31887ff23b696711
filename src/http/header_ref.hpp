#pragma once
// A header field by reference, for heads written without a fields container.

#include <string_view>
#include <utility>

namespace gatewayz::http {

// Name and value must outlive the write that uses them.
using header_ref = std::pair<std::string_view, std::string_view>;

}  // namespace gatewayz::http

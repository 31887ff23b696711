#pragma once
// Inbound validation: checks a client's request body before any I/O and
// extracts what routing and accounting need. Pure functions, no state; the
// scan and the request point into `body`, which must outlive them.

#include <optional>
#include <string_view>

#include "core/api_error.hpp"
#include "core/json_scan.hpp"
#include "providers/provider.hpp"

namespace gatewayz::gateway {

// Fills `scan` and `request` from the body of an `op` request, or returns the
// 400 the client gets (invalid JSON, missing or mistyped members, members the
// gateway acts on given twice or spelled with escapes).
std::optional<api_error> parse_inbound(std::string_view body, providers::operation op, json_scan::object_scan& scan,
                                       providers::inbound_request& request);

}  // namespace gatewayz::gateway

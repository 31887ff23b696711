#pragma once
// Request ids. Every response carries one in `x-request-id`; it is the key that
// joins a client's report to our logs, traces and ledger rows.

#include <string>
#include <string_view>

namespace gatewayz {

// A new id: "req_" + 12 hex digits of the wall clock in milliseconds + 4 of
// a per-thread count of the ids made in that millisecond + 12 random ones
// (per-thread generator, no locks). The ids one thread makes sort by creation.
std::string make_request_id();

// The client's X-Request-ID when it is usable (1-128 printable ASCII bytes,
// no spaces), so the client can correlate with its own logs; otherwise a new id.
std::string request_id_for(std::string_view inbound);

}  // namespace gatewayz

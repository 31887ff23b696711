#pragma once
// What a request may cost, reserved against the customer's credit before it
// is proxied (auth/balances.hpp) and settled to the real cost when it ends.
//
// Input tokens are estimated from the body: the bytes of the prompt member
// (`messages`, `prompt` or `input`) divided by four, the usual size of a
// token of English text; message formatting and non-Latin scripts can use
// more, so this is an estimate, not a bound, and settling corrects it.
// Output tokens are the client's own limit (max_completion_tokens, else
// max_tokens) or, without one, the model's reserve_output_tokens (else
// auth.reserve_output_tokens); embeddings produce none. The cost is the
// dearest of the model's providers, since failover may use any of them.
//
// Pure functions of the request and the config; any thread.

#include <cstdint>
#include <span>

#include "gateway/model_routes.hpp"
#include "providers/provider.hpp"

namespace gatewayz::gateway {

// Input tokens estimated from the request's prompt member (at least 1).
std::int64_t estimate_input_tokens(const providers::inbound_request& request);

// Output tokens the request asked for at most (max_completion_tokens, then
// max_tokens); 0 when it set neither (or set one that is not a positive integer).
std::int64_t requested_output_tokens(const providers::inbound_request& request);

// Nano-USD of `tokens` at `usd_per_million`, rounded up and saturated.
std::int64_t cost_nanos(std::int64_t tokens, double usd_per_million);

// The most the request may cost on any of `targets`.
std::int64_t worst_case_cost(const providers::inbound_request& request, std::span<const route_target> targets,
                             std::uint32_t default_output_tokens);

}  // namespace gatewayz::gateway

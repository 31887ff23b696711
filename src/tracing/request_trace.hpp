#pragma once
// The trace context of one inbound request: continued from the client's
// traceparent (and tracestate) when valid, else a new trace; sampled as the
// sampler decides. Its server span id is made up front, so the request's log
// lines and upstream calls can name it before the span ends.
//
// Lives with the request (on its coroutine frame); the hex ids are views'
// storage for request_record::trace_id / span_id.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tracing/sampler.hpp"
#include "tracing/trace_context.hpp"

namespace gatewayz::tracing {

struct request_trace {
  trace_id trace;
  span_id server_span;
  span_id remote_parent;  // all zero when the request started the trace
  std::uint8_t flags = 0;
  std::string tracestate;  // passed on unchanged (gatewayz adds no member)
  std::array<char, 32> trace_hex{};
  std::array<char, 16> span_hex{};

  bool sampled() const { return (flags & flag_sampled) != 0; }
  bool continued() const { return remote_parent.valid(); }
  std::string_view trace_id_hex() const { return {trace_hex.data(), trace_hex.size()}; }
  std::string_view span_id_hex() const { return {span_hex.data(), span_hex.size()}; }
  // The traceparent of an upstream call made under `client_span`, written to
  // `out` (traceparent_size characters).
  void traceparent_for(const span_id& client_span, char* out) const {
    format_traceparent(trace, client_span, flags, out);
  }
};

// `traceparent`: the header's value, nullopt when absent or sent more than
// once (then invalid, so a new trace). `tracestate`: every tracestate value
// joined with ',' (RFC 9110 list combination); empty when absent.
void start_trace(const sampler& decide, std::optional<std::string_view> traceparent, std::string_view tracestate,
                 request_trace& out);

}  // namespace gatewayz::tracing

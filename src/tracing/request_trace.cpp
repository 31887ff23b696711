#include "tracing/request_trace.hpp"

namespace gatewayz::tracing {

void start_trace(const sampler& decide, std::optional<std::string_view> traceparent, std::string_view tracestate,
                 request_trace& out) {
  std::optional<remote_context> remote;
  if (traceparent) remote = parse_traceparent(*traceparent);
  if (remote) {
    attach_tracestate(*remote, tracestate);
    out.trace = remote->trace;
    out.remote_parent = remote->parent;
    out.tracestate = std::move(remote->tracestate);
  } else {
    out.trace = new_trace_id();
    out.remote_parent = span_id{};
    out.tracestate.clear();
  }
  out.server_span = new_span_id();
  const bool sampled =
      decide.sample(out.trace, remote ? std::optional<std::uint8_t>(remote->flags) : std::optional<std::uint8_t>());
  out.flags = sampled ? flag_sampled : 0;
  to_hex(out.trace, out.trace_hex.data());
  to_hex(out.server_span, out.span_hex.data());
}

}  // namespace gatewayz::tracing

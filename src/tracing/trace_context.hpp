#pragma once
// W3C Trace Context (traceparent / tracestate, version 00) and the ids of
// spans: parsing what a client sent, making new ids, formatting them.
//
// Ids come from a per-thread generator (no lock, no syscall after the
// thread's first id). Parsing follows the W3C processing model: an invalid
// traceparent (bad syntax, upper-case hex, an all-zero id, version ff, data
// after a version-00 header) is ignored and the caller starts a new trace;
// tracestate is kept only with a valid traceparent, and only when it is a
// well-formed list (else dropped, as the spec allows).
//
// Pure functions; every thread may call them.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gatewayz::tracing {

struct trace_id {
  std::array<std::uint8_t, 16> bytes{};
  bool valid() const;  // not all zero
  bool operator==(const trace_id&) const = default;
};

struct span_id {
  std::array<std::uint8_t, 8> bytes{};
  bool valid() const;
  bool operator==(const span_id&) const = default;
};

inline constexpr std::uint8_t flag_sampled = 0x01;

// A parsed inbound traceparent (and the tracestate that came with it).
struct remote_context {
  trace_id trace;
  span_id parent;
  std::uint8_t flags = 0;
  std::string tracestate;  // as received (whitespace trimmed); empty when absent or invalid
  bool sampled() const { return (flags & flag_sampled) != 0; }
};

// New random, valid ids (never all zero).
trace_id new_trace_id();
span_id new_span_id();

// Lower-case hex: 32 and 16 characters written to `out`.
void to_hex(const trace_id& id, char* out);
void to_hex(const span_id& id, char* out);
std::string to_hex(const trace_id& id);
std::string to_hex(const span_id& id);

// A traceparent header value: "00-<trace>-<span>-<flags>", 55 characters.
inline constexpr std::size_t traceparent_size = 55;
void format_traceparent(const trace_id& trace, const span_id& span, std::uint8_t flags, char* out);

// `traceparent` as received (one header; the caller treats several as
// invalid). nullopt when the header must be ignored.
std::optional<remote_context> parse_traceparent(std::string_view traceparent);
// Adds `tracestate` to a parsed context when it is a valid list.
void attach_tracestate(remote_context& context, std::string_view tracestate);
// Whether `tracestate` is a valid W3C list (at most 32 members, keys and
// values of the spec's grammar; empty members tolerated).
bool valid_tracestate(std::string_view tracestate);

// Parses 32/16 hex characters (lower or upper case) into an id; false on any
// other input. For tests and the OTLP/JSON reader side.
bool from_hex(std::string_view hex, trace_id& out);
bool from_hex(std::string_view hex, span_id& out);

}  // namespace gatewayz::tracing

#pragma once
// OTLP encodings of an ExportTraceServiceRequest (opentelemetry-proto,
// collector/trace/v1): one ResourceSpans with the process's resource, one
// ScopeSpans with the instrumentation scope, then the spans.
//
// protobuf: the proto3 wire format, fields in field-number order, fields at
// their default value omitted (as proto3 serializers do).
// JSON: the OTLP/JSON mapping: lowerCamelCase keys, trace and span ids as
// hex (not base64), enums as integers, 64-bit integers as decimal strings,
// default values omitted.
//
// The whole request, or in parts: each span encoded on its own (as an
// exporter's producers do) and the envelope around them written once per
// batch. A protobuf request is protobuf_head() then the spans' bytes; a
// JSON one is json_head(), the spans joined with ',', then json_tail.
//
// Pure functions; any thread. append_* append to `out`; *_head replace it.

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tracing/span.hpp"

namespace gatewayz::tracing {

struct resource_info {
  std::vector<std::pair<std::string, std::string>> attributes;  // service.name, ... (string values)
  std::string scope_name = "gatewayz";
  std::string scope_version;
};

std::string encode_protobuf(const resource_info& resource, std::span<const span> spans);
std::string encode_json(const resource_info& resource, std::span<const span> spans);

// One span: protobuf as a ScopeSpans.spans field (tag, length, Span); JSON
// as the span object.
void append_span_protobuf(const span& s, std::string& out);
void append_span_json(const span& s, std::string& out);
// What comes before spans whose encodings take `spans_size` bytes in all.
void protobuf_head(const resource_info& resource, std::size_t spans_size, std::string& out);
void json_head(const resource_info& resource, std::string& out);
inline constexpr std::string_view json_tail = "]}]}]}";

}  // namespace gatewayz::tracing

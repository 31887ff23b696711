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
// Pure functions; any thread. The overloads taking `out` replace its
// contents and keep its capacity, so an exporter can reuse one buffer.

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
void encode_protobuf(const resource_info& resource, std::span<const span> spans, std::string& out);
void encode_json(const resource_info& resource, std::span<const span> spans, std::string& out);

}  // namespace gatewayz::tracing

#pragma once
// One finished span as the exporter encodes it (OTLP's Span, trimmed to what
// gatewayz emits: no links, no dropped counts).
//
// Attribute and event keys are string views that must outlive the span:
// use string literals (the semantic-convention names are constants). Values
// are owned. A span is built on the thread that ends it and then moved into
// the exporter's queue; it is never shared.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracing/trace_context.hpp"

namespace gatewayz::tracing {

enum class span_kind : std::uint8_t { internal = 1, server = 2, client = 3 };
enum class status_code : std::uint8_t { unset = 0, ok = 1, error = 2 };

// OTLP Span.flags bits 8 and 9: whether the parent is known to be remote.
inline constexpr std::uint32_t flags_has_is_remote = 0x100;
inline constexpr std::uint32_t flags_is_remote = 0x200;

// One attribute value: a string, bool, int64, double or array of strings
// (a plain struct rather than a std::variant, which GCC 12 at -O2 warns about).
struct attribute_value {
  enum class kind : std::uint8_t { string, boolean, integer, floating, string_array };
  kind type = kind::string;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  std::string text;
  std::vector<std::string> list;

  attribute_value(std::string v) : type(kind::string), text(std::move(v)) {}
  attribute_value(const char* v) : attribute_value(std::string(v)) {}
  attribute_value(bool v) : type(kind::boolean), boolean(v) {}
  attribute_value(std::int64_t v) : type(kind::integer), integer(v) {}
  attribute_value(double v) : type(kind::floating), floating(v) {}
  attribute_value(std::vector<std::string> v) : type(kind::string_array), list(std::move(v)) {}
};

struct attribute {
  std::string_view key;  // a literal; see above
  attribute_value value;
};

struct span_event {
  std::string_view name;
  std::uint64_t time_unix_nano = 0;
  std::vector<attribute> attributes;
};

struct span {
  trace_id trace;
  span_id id;
  span_id parent;  // all zero for a root span
  std::string trace_state;
  std::uint32_t flags = 0;  // W3C trace flags in bits 0-7, flags_has_is_remote / flags_is_remote
  std::string name;
  span_kind kind = span_kind::internal;
  std::uint64_t start_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;
  std::vector<attribute> attributes;
  std::vector<span_event> events;
  status_code status = status_code::unset;
  std::string status_message;  // only with status_code::error

  void set(std::string_view key, std::string_view value) { attributes.push_back({key, std::string(value)}); }
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, bool value) { attributes.push_back({key, value}); }
  void set(std::string_view key, std::int64_t value) { attributes.push_back({key, value}); }
  void set(std::string_view key, double value) { attributes.push_back({key, value}); }
  void set(std::string_view key, std::vector<std::string> value) { attributes.push_back({key, std::move(value)}); }
};

}  // namespace gatewayz::tracing

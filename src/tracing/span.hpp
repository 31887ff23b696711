#pragma once
// One finished span as the exporter encodes it (OTLP's Span, trimmed to what
// gatewayz emits: no links, no dropped counts).
//
// Attribute and event keys are string views that must outlive the span:
// use string literals (the semantic-convention names are constants; the
// encoders write keys without a UTF-8 check). String values are copied into
// the span's own `text` (one buffer for all of them), so a span that is
// cleared and refilled keeps its capacity and allocates nothing once warm.
// A span is built on the thread that ends it, which also encodes it into
// the exporter's queue (batch_exporter::submit); it is never shared.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracing/trace_context.hpp"

namespace gatewayz::tracing {

enum class span_kind : std::uint8_t { internal = 1, server = 2, client = 3 };
enum class status_code : std::uint8_t { unset = 0, ok = 1, error = 2 };

// OTLP Span.flags bits 8 and 9: whether the parent is known to be remote.
inline constexpr std::uint32_t flags_has_is_remote = 0x100;
inline constexpr std::uint32_t flags_is_remote = 0x200;

// One attribute value: a string, bool, int64, double or array of strings.
// Strings live in the owning span's `text` (span::text_of, span::for_each_item
// read them), so only the numeric kinds can be made on their own.
//
// `wire` is the value's protobuf AnyValue as it is made, so the encoder
// copies it instead of choosing per value how to write it: all of it for a
// number or a boolean, the tag and length before the text for a string
// (which the encoder sends as is only when it is ASCII), nothing for an
// array (encoded the long way).
struct attribute_value {
  enum class kind : std::uint8_t { string, boolean, integer, floating, string_array };
  kind type = kind::string;
  bool boolean = false;
  std::uint8_t wire_size = 0;
  std::uint32_t items = 0;        // string_array: how many
  std::uint32_t text_offset = 0;  // string, string_array: where in span::text
  std::uint32_t text_size = 0;
  std::int64_t integer = 0;
  double floating = 0;
  char wire[11] = {};

  attribute_value() = default;
  attribute_value(bool v) : type(kind::boolean), boolean(v) {
    put(2 << 3);  // AnyValue.bool_value, varint
    put(v ? 1 : 0);
  }
  attribute_value(std::int64_t v) : type(kind::integer), integer(v) {
    put(3 << 3);  // AnyValue.int_value, varint
    put_varint(static_cast<std::uint64_t>(v));
  }
  attribute_value(double v) : type(kind::floating), floating(v) {
    put((4 << 3) | 1);  // AnyValue.double_value, fixed64
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; ++i) put(static_cast<std::uint32_t>(bits >> (8 * i)) & 0xffU);
  }
  // A string of `size` bytes at `offset` of the span's text.
  static attribute_value string_at(std::uint32_t offset, std::uint32_t size) {
    attribute_value v;
    v.text_offset = offset;
    v.text_size = size;
    v.put((1 << 3) | 2);  // AnyValue.string_value, length-delimited
    v.put_varint(size);
    return v;
  }

 private:
  void put(std::uint32_t b) { wire[wire_size++] = static_cast<char>(b); }
  void put_varint(std::uint64_t v) {
    for (; v >= 0x80; v >>= 7) put(static_cast<std::uint32_t>(v & 0x7f) | 0x80);
    put(static_cast<std::uint32_t>(v));
  }
};

struct attribute {
  std::string_view key;  // a literal; see above
  attribute_value value;
};

struct span_event {
  std::string_view name;
  std::uint64_t time_unix_nano = 0;
  std::vector<attribute> attributes;  // string values in the span's text
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
  // String attribute values; a string array's items as a 4-byte length
  // (host order) and the bytes each.
  std::string text;

  void set(std::string_view key, std::string_view value) { attributes.push_back({key, store(value)}); }
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, bool value) { attributes.push_back({key, value}); }
  void set(std::string_view key, std::int64_t value) { attributes.push_back({key, value}); }
  void set(std::string_view key, double value) { attributes.push_back({key, value}); }
  void set(std::string_view key, std::span<const std::string> values) { attributes.push_back({key, store(values)}); }
  // A string value for an event's attribute (also kept in this span's text).
  attribute_value store(std::string_view value) {
    const auto v =
        attribute_value::string_at(static_cast<std::uint32_t>(text.size()), static_cast<std::uint32_t>(value.size()));
    text.append(value);
    return v;
  }
  // A string array value (its items kept in this span's text).
  attribute_value store(std::span<const std::string> values) {
    attribute_value v;
    v.type = attribute_value::kind::string_array;
    v.items = static_cast<std::uint32_t>(values.size());
    v.text_offset = static_cast<std::uint32_t>(text.size());
    for (const auto& item : values) {
      const auto size = static_cast<std::uint32_t>(item.size());
      text.append(reinterpret_cast<const char*>(&size), sizeof size);
      text.append(item);
    }
    v.text_size = static_cast<std::uint32_t>(text.size()) - v.text_offset;
    return v;
  }

  std::string_view text_of(const attribute_value& v) const { return {text.data() + v.text_offset, v.text_size}; }
  // Calls f(std::string_view) for each item of a string array.
  template <typename F>
  void for_each_item(const attribute_value& v, F&& f) const {
    const char* p = text.data() + v.text_offset;
    for (std::uint32_t i = 0; i < v.items; ++i) {
      std::uint32_t size = 0;
      std::memcpy(&size, p, sizeof size);
      p += sizeof size;
      f(std::string_view(p, size));
      p += size;
    }
  }

  // Back to a default span, keeping the capacity of its strings and vectors.
  void clear() {
    trace = {};
    id = {};
    parent = {};
    trace_state.clear();
    flags = 0;
    name.clear();
    kind = span_kind::internal;
    start_unix_nano = 0;
    end_unix_nano = 0;
    attributes.clear();
    events.clear();
    status = status_code::unset;
    status_message.clear();
    text.clear();
  }
};

}  // namespace gatewayz::tracing

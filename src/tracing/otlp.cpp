#include "tracing/otlp.hpp"

#include <cstring>

#include <fmt/format.h>

#include "core/json_scan.hpp"

namespace gatewayz::tracing {

namespace {

// ---- protobuf wire format -------------------------------------------------

enum wire_type : std::uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

class pb_writer {
 public:
  explicit pb_writer(std::string& out) : out_(out) {}

  void tag(std::uint32_t field, wire_type type) { write_varint((std::uint64_t{field} << 3) | type); }
  void write_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void uint_field(std::uint32_t field, std::uint64_t v) {
    if (v == 0) return;
    tag(field, varint);
    write_varint(v);
  }
  void int64_field(std::uint32_t field, std::int64_t v) { uint_field(field, static_cast<std::uint64_t>(v)); }
  void bool_field(std::uint32_t field, bool v) { uint_field(field, v ? 1 : 0); }
  void fixed64_field(std::uint32_t field, std::uint64_t v) {
    if (v == 0) return;
    tag(field, fixed64);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void fixed32_field(std::uint32_t field, std::uint32_t v) {
    if (v == 0) return;
    tag(field, fixed32);
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void double_field(std::uint32_t field, double v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    if (bits == 0) return;  // +0.0 is the default
    tag(field, fixed64);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(bits >> (8 * i)));
  }
  void bytes_field(std::uint32_t field, std::string_view v) {
    if (v.empty()) return;
    tag(field, length_delimited);
    write_varint(v.size());
    out_.append(v);
  }
  // A proto3 `string`: collectors reject an export whose strings are not
  // UTF-8, so ill-formed bytes become U+FFFD, as in the JSON encoding.
  void string_field(std::uint32_t field, std::string_view v) {
    if (json_scan::valid_utf8(v)) {
      bytes_field(field, v);
    } else {
      bytes_field(field, json_scan::sanitize_utf8(v));
    }
  }
  // The same, written even when empty (a oneof member: presence is the choice).
  void string_member(std::uint32_t field, std::string_view v) {
    std::string clean;
    if (!json_scan::valid_utf8(v)) {
      clean = json_scan::sanitize_utf8(v);
      v = clean;
    }
    tag(field, length_delimited);
    write_varint(v.size());
    out_.append(v);
  }
  template <std::size_t N>
  void bytes_field(std::uint32_t field, const std::array<std::uint8_t, N>& v) {
    bytes_field(field, std::string_view(reinterpret_cast<const char*>(v.data()), N));
  }

  // A nested message: its tag now, its length once `body` wrote it. The
  // length's varint is inserted in front of the body (a short move).
  template <typename Body>
  void message(std::uint32_t field, Body&& body) {
    tag(field, length_delimited);
    const std::size_t start = out_.size();
    body();
    const std::size_t length = out_.size() - start;
    char prefix[10];
    std::size_t n = 0;
    std::uint64_t v = length;
    while (v >= 0x80) {
      prefix[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    prefix[n++] = static_cast<char>(v);
    out_.insert(start, prefix, n);
  }

 private:
  std::string& out_;
};

// AnyValue: 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue{1 repeated AnyValue}.
// A oneof member is written even at its default value (its presence is the choice).
void pb_any(pb_writer& w, std::string& out, std::uint32_t field, const attribute_value& value) {
  w.message(field, [&] {
    using kind = attribute_value::kind;
    switch (value.type) {
      case kind::string: w.string_member(1, value.text); break;
      case kind::boolean:
        w.tag(2, varint);
        w.write_varint(value.boolean ? 1 : 0);
        break;
      case kind::integer:
        w.tag(3, varint);
        w.write_varint(static_cast<std::uint64_t>(value.integer));
        break;
      case kind::floating: {
        const double d = value.floating;
        std::uint64_t bits = 0;
        std::memcpy(&bits, &d, sizeof bits);
        w.tag(4, fixed64);
        for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(bits >> (8 * i)));
        break;
      }
      case kind::string_array:
        w.message(5, [&] {
          for (const auto& item : value.list) {
            w.message(1, [&] { w.string_member(1, item); });
          }
        });
    }
  });
}

// KeyValue: 1 key, 2 value.
void pb_key_value(pb_writer& w, std::string& out, std::uint32_t field, std::string_view key,
                  const attribute_value& value) {
  w.message(field, [&] {
    w.string_field(1, key);
    pb_any(w, out, 2, value);
  });
}

void pb_span(pb_writer& w, std::string& out, const span& s) {
  // Span: 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name,
  // 6 kind, 7 start, 8 end, 9 attributes, 11 events, 15 status, 16 flags.
  w.message(2, [&] {
    w.bytes_field(1, s.trace.bytes);
    w.bytes_field(2, s.id.bytes);
    w.string_field(3, s.trace_state);
    if (s.parent.valid()) w.bytes_field(4, s.parent.bytes);
    w.string_field(5, s.name);
    w.uint_field(6, static_cast<std::uint64_t>(s.kind));
    w.fixed64_field(7, s.start_unix_nano);
    w.fixed64_field(8, s.end_unix_nano);
    for (const auto& a : s.attributes) pb_key_value(w, out, 9, a.key, a.value);
    for (const auto& e : s.events) {
      // Event: 1 time_unix_nano, 2 name, 3 attributes.
      w.message(11, [&] {
        w.fixed64_field(1, e.time_unix_nano);
        w.string_field(2, e.name);
        for (const auto& a : e.attributes) pb_key_value(w, out, 3, a.key, a.value);
      });
    }
    if (s.status != status_code::unset) {
      // Status: 2 message, 3 code.
      w.message(15, [&] {
        w.string_field(2, s.status_message);
        w.uint_field(3, static_cast<std::uint64_t>(s.status));
      });
    }
    w.fixed32_field(16, s.flags);
  });
}

// ---- JSON -----------------------------------------------------------------

// A JSON string token; invalid UTF-8 becomes U+FFFD, so the body stays valid JSON.
void json_string(std::string& out, std::string_view s) { out += json_scan::encode_string(s); }

template <std::size_t N>
void json_hex(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  constexpr char digits[] = "0123456789abcdef";
  out.push_back('"');
  for (const auto b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  out.push_back('"');
}

void json_any(std::string& out, const attribute_value& value) {
  using kind = attribute_value::kind;
  switch (value.type) {
    case kind::string:
      out += "{\"stringValue\":";
      json_string(out, value.text);
      break;
    case kind::boolean: out += value.boolean ? "{\"boolValue\":true" : "{\"boolValue\":false"; break;
    case kind::integer: fmt::format_to(std::back_inserter(out), "{{\"intValue\":\"{}\"", value.integer); break;
    case kind::floating: {
      const double d = value.floating;
      // JSON has no NaN or infinity; proto3 JSON spells them as strings.
      if (d != d) {
        out += "{\"doubleValue\":\"NaN\"";
      } else if (d > 1.7976931348623157e308) {
        out += "{\"doubleValue\":\"Infinity\"";
      } else if (d < -1.7976931348623157e308) {
        out += "{\"doubleValue\":\"-Infinity\"";
      } else {
        fmt::format_to(std::back_inserter(out), "{{\"doubleValue\":{}", d);
      }
      break;
    }
    case kind::string_array: {
      out += "{\"arrayValue\":{\"values\":[";
      bool first = true;
      for (const auto& item : value.list) {
        if (!first) out.push_back(',');
        first = false;
        out += "{\"stringValue\":";
        json_string(out, item);
        out.push_back('}');
      }
      out += "]}";
    }
  }
  out.push_back('}');
}

template <typename Range, typename KeyOf, typename ValueOf>
void json_attributes(std::string& out, const Range& items, KeyOf key_of, ValueOf value_of) {
  out += "\"attributes\":[";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"key\":";
    json_string(out, key_of(item));
    out += ",\"value\":";
    value_of(item);
    out.push_back('}');
  }
  out.push_back(']');
}

void json_span_attributes(std::string& out, const std::vector<attribute>& attributes) {
  json_attributes(
      out, attributes, [](const attribute& a) { return a.key; },
      [&out](const attribute& a) { json_any(out, a.value); });
}

void json_span(std::string& out, const span& s) {
  out += "{\"traceId\":";
  json_hex(out, s.trace.bytes);
  out += ",\"spanId\":";
  json_hex(out, s.id.bytes);
  if (!s.trace_state.empty()) {
    out += ",\"traceState\":";
    json_string(out, s.trace_state);
  }
  if (s.parent.valid()) {
    out += ",\"parentSpanId\":";
    json_hex(out, s.parent.bytes);
  }
  if (s.flags != 0) fmt::format_to(std::back_inserter(out), ",\"flags\":{}", s.flags);
  out += ",\"name\":";
  json_string(out, s.name);
  fmt::format_to(std::back_inserter(out), ",\"kind\":{},\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\"",
                 static_cast<int>(s.kind), s.start_unix_nano, s.end_unix_nano);
  if (!s.attributes.empty()) {
    out.push_back(',');
    json_span_attributes(out, s.attributes);
  }
  if (!s.events.empty()) {
    out += ",\"events\":[";
    bool first = true;
    for (const auto& e : s.events) {
      if (!first) out.push_back(',');
      first = false;
      fmt::format_to(std::back_inserter(out), "{{\"timeUnixNano\":\"{}\",\"name\":", e.time_unix_nano);
      json_string(out, e.name);
      if (!e.attributes.empty()) {
        out.push_back(',');
        json_span_attributes(out, e.attributes);
      }
      out.push_back('}');
    }
    out.push_back(']');
  }
  if (s.status != status_code::unset) {
    out += ",\"status\":{";
    if (!s.status_message.empty()) {
      out += "\"message\":";
      json_string(out, s.status_message);
      out.push_back(',');
    }
    fmt::format_to(std::back_inserter(out), "\"code\":{}}}", static_cast<int>(s.status));
  }
  out.push_back('}');
}

}  // namespace

std::string encode_protobuf(const resource_info& resource, std::span<const span> spans) {
  std::string out;
  out.reserve(256 + spans.size() * 1024);
  pb_writer w{out};
  if (spans.empty()) return out;  // an empty request: no empty envelopes
  // ExportTraceServiceRequest: 1 resource_spans. ResourceSpans: 1 resource,
  // 2 scope_spans. Resource: 1 attributes. ScopeSpans: 1 scope, 2 spans.
  // InstrumentationScope: 1 name, 2 version.
  w.message(1, [&] {
    w.message(1, [&] {
      // Not a structured binding: clang before 16 cannot capture one.
      for (const auto& attribute : resource.attributes) {
        w.message(1, [&] {
          w.string_field(1, attribute.first);
          w.message(2, [&] { w.string_member(1, attribute.second); });
        });
      }
    });
    w.message(2, [&] {
      w.message(1, [&] {
        w.string_field(1, resource.scope_name);
        w.string_field(2, resource.scope_version);
      });
      for (const auto& s : spans) pb_span(w, out, s);
    });
  });
  return out;
}

std::string encode_json(const resource_info& resource, std::span<const span> spans) {
  std::string out;
  out.reserve(256 + spans.size() * 2048);
  if (spans.empty()) return "{}";
  out += "{\"resourceSpans\":[{\"resource\":{";
  json_attributes(
      out, resource.attributes, [](const auto& kv) { return std::string_view(kv.first); },
      [&out](const auto& kv) {
        out += "{\"stringValue\":";
        json_string(out, kv.second);
        out.push_back('}');
      });
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":";
  json_string(out, resource.scope_name);
  if (!resource.scope_version.empty()) {
    out += ",\"version\":";
    json_string(out, resource.scope_version);
  }
  out += "},\"spans\":[";
  bool first = true;
  for (const auto& s : spans) {
    if (!first) out.push_back(',');
    first = false;
    json_span(out, s);
  }
  out += "]}]}]}";
  return out;
}

}  // namespace gatewayz::tracing

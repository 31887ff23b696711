#include "tracing/otlp.hpp"

#include <bit>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "core/json_scan.hpp"

namespace gatewayz::tracing {

namespace {

// ---- protobuf wire format -------------------------------------------------

enum wire_type : std::uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// Whether every byte is ASCII, eight at a time: most strings are, and need
// no closer UTF-8 check.
bool ascii(std::string_view v) {
  const char* p = v.data();
  std::size_t n = v.size();
  std::uint64_t any = 0;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, sizeof word);
    any |= word;
  }
  for (; n > 0; ++p, --n) any |= static_cast<unsigned char>(*p);
  return (any & 0x8080808080808080ULL) == 0;
}

bool well_formed(std::string_view v) { return ascii(v) || json_scan::valid_utf8(v); }

std::size_t put_varint(char* out, std::uint64_t v) {
  std::size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<char>(v);
  return n;
}

// The envelope's writer (protobuf_head): nested messages whose lengths
// are not known up front.
class pb_writer {
 public:
  explicit pb_writer(std::string& out) : out_(out) {}

  void tag(std::uint32_t field, wire_type type) { write_varint((std::uint64_t{field} << 3) | type); }
  void write_varint(std::uint64_t v) {
    if (v < 0x80) {
      out_.push_back(static_cast<char>(v));
      return;
    }
    char buffer[10];
    out_.append(buffer, put_varint(buffer, v));
  }
  // Written even when empty.
  void bytes_member(std::uint32_t field, std::string_view v) {
    tag(field, length_delimited);
    write_varint(v.size());
    out_.append(v);
  }
  // A proto3 `string`: collectors reject an export whose strings are not
  // UTF-8, so ill-formed bytes become U+FFFD, as in the JSON encoding.
  void string_field(std::uint32_t field, std::string_view v) {
    if (v.empty()) return;
    string_member(field, v);
  }
  // The same, written even when empty (a oneof member: presence is the choice).
  void string_member(std::uint32_t field, std::string_view v) {
    if (well_formed(v)) {
      bytes_member(field, v);
    } else {
      bytes_member(field, json_scan::sanitize_utf8(v));
    }
  }
  // A nested message: its tag, room for a `guess`-byte length, the body,
  // then the length written into the room; when the length needs another
  // number of bytes the body moves (rare when the guess fits the message:
  // 1 for an attribute, 2 for a span, 3 for the envelopes).
  template <typename Body>
  void message(std::uint32_t field, std::size_t guess, Body&& body) {
    tag(field, length_delimited);
    const std::size_t at = out_.size();
    out_.append(guess, '\0');
    body();
    const std::size_t length = out_.size() - at - guess;
    char prefix[10];
    const std::size_t n = put_varint(prefix, length);
    if (n > guess) {
      out_.insert(at, n - guess, '\0');
    } else if (n < guess) {
      out_.erase(at, guess - n);
    }
    std::memcpy(out_.data() + at, prefix, n);
  }

 private:
  std::string& out_;
};

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// ---- protobuf spans --------------------------------------------------------
//
// Each message's exact size is added up first, so a span is written in one
// pass into memory resized once, with no length guesses to move and no
// capacity check per field. Values are copied from the wire bytes their
// constructors made; a span with a value made otherwise, or with a string
// that may need UTF-8 repair, is first copied into one without (repaired()).

// The size of a length-delimited field with a one-byte tag (fields 1-15).
std::size_t delimited_size(std::size_t body) { return 1 + varint_size(body) + body; }

std::size_t array_value_size(const span& s, const attribute_value& v) {
  std::size_t values = 0;
  s.for_each_item(v, [&](std::string_view item) { values += delimited_size(delimited_size(item.size())); });
  return values;
}

// The AnyValue's size: its made wire bytes and a string's text, or an array.
std::size_t any_size(const span& s, const attribute_value& v) {
  if (v.type == attribute_value::kind::string_array) [[unlikely]] {
    return delimited_size(array_value_size(s, v));
  }
  return v.wire_size + std::size_t{v.text_size};
}

// Copies n bytes with at most two fixed-size moves for n up to 32 (keys
// and most values): a call to memcpy per field cost more than the copy.
[[gnu::always_inline]] inline void copy_short(char* to, const char* from, std::size_t n) {
  if (n >= 8) {
    if (n > 32) {
      std::memcpy(to, from, n);
    } else if (n > 16) {
      std::memcpy(to, from, 16);
      std::memcpy(to + n - 16, from + n - 16, 16);
    } else {
      std::memcpy(to, from, 8);
      std::memcpy(to + n - 8, from + n - 8, 8);
    }
  } else if (n >= 4) {
    std::memcpy(to, from, 4);
    std::memcpy(to + n - 4, from + n - 4, 4);
  } else if (n > 0) {
    to[0] = from[0];
    to[n / 2] = from[n / 2];
    to[n - 1] = from[n - 1];
  }
}

// The KeyValue's length when every length in it fits one byte and its value
// is not an array (nearly all attributes); 0 otherwise.
std::size_t short_key_value_size(const attribute& a) {
  const attribute_value& v = a.value;
  if (v.type == attribute_value::kind::string_array || a.key.empty()) return 0;
  const std::size_t body = 2 + a.key.size() + 2 + v.wire_size + std::size_t{v.text_size};
  return body < 128 ? body : 0;
}

std::size_t key_value_size(const span& s, const attribute& a) {
  if (const std::size_t body = short_key_value_size(a); body != 0) return body;
  return (a.key.empty() ? 0 : delimited_size(a.key.size())) + delimited_size(any_size(s, a.value));
}

class raw_writer {
 public:
  explicit raw_writer(char* at) : p_(at) {}
  char* position() const { return p_; }

  void put_byte(std::uint32_t b) { *p_++ = static_cast<char>(b); }
  void put_varint(std::uint64_t v) { p_ += tracing::put_varint(p_, v); }
  void put_bytes(std::string_view v) {
    if (!v.empty()) std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
  }
  void put_fixed64(std::uint64_t v) {
    static_assert(std::endian::native == std::endian::little, "fixed64 is little-endian on the wire");
    std::memcpy(p_, &v, sizeof v);
    p_ += sizeof v;
  }
  // A field of wire type 2 with a one-byte tag: its head, then its body.
  void delimited(std::uint32_t field, std::size_t size) {
    put_byte((field << 3) | length_delimited);
    put_varint(size);
  }
  void delimited(std::uint32_t field, std::string_view v) {
    delimited(field, v.size());
    put_bytes(v);
  }

  // KeyValue: 1 key, 2 value (AnyValue: 1 string, 2 bool, 3 int64,
  // 4 double, 5 ArrayValue{1 repeated AnyValue}).
  [[gnu::always_inline]] void key_value(const span& s, std::uint32_t field, const attribute& a) {
    const attribute_value& v = a.value;
    if (const std::size_t body = short_key_value_size(a); body != 0) {
      // Tag, length, key's tag, length, key, value's tag, length, value.
      char* p = p_;
      p[0] = static_cast<char>((field << 3) | length_delimited);
      p[1] = static_cast<char>(body);
      p[2] = static_cast<char>((1 << 3) | length_delimited);
      p[3] = static_cast<char>(a.key.size());
      copy_short(p + 4, a.key.data(), a.key.size());
      p += 4 + a.key.size();
      p[0] = static_cast<char>((2 << 3) | length_delimited);
      p[1] = static_cast<char>(v.wire_size + v.text_size);
      copy_short(p + 2, v.wire, v.wire_size);
      p += 2 + v.wire_size;
      copy_short(p, s.text.data() + v.text_offset, v.text_size);
      p_ = p + v.text_size;
      return;
    }
    long_key_value(s, field, a);
  }

 private:
  // An array, or a length past 127.
  [[gnu::noinline]] void long_key_value(const span& s, std::uint32_t field, const attribute& a) {
    using kind = attribute_value::kind;
    const attribute_value& v = a.value;
    const std::size_t any = any_size(s, v);
    delimited(field, (a.key.empty() ? 0 : delimited_size(a.key.size())) + delimited_size(any));
    if (!a.key.empty()) delimited(1, a.key);
    delimited(2, any);
    if (v.type == kind::string_array) [[unlikely]] {
      delimited(5, array_value_size(s, v));
      s.for_each_item(v, [&](std::string_view item) {
        delimited(1, delimited_size(item.size()));
        delimited(1, item);
      });
      return;
    }
    put_bytes(std::string_view(v.wire, v.wire_size));
    put_bytes(s.text_of(v));  // empty but for strings
  }

  char* p_;
};

// Whether pb_span can take `s` as it is: each value carries its wire bytes
// (made by attribute_value's constructors or span::store) and every string
// is ASCII (every span the gateway makes), so none needs UTF-8 repair.
bool encodable_as_is(const span& s) {
  const auto made = [](const attribute& a) {
    return a.value.type == attribute_value::kind::string_array || a.value.wire_size != 0;
  };
  for (const auto& a : s.attributes) {
    if (!made(a)) return false;
  }
  for (const auto& e : s.events) {
    for (const auto& a : e.attributes) {
      if (!made(a)) return false;
    }
  }
  return ascii(s.text) && ascii(s.name) && ascii(s.trace_state) && ascii(s.status_message);
}

// A copy of `s` that pb_span takes: strings that are not UTF-8 get U+FFFD
// for their bad bytes, as in the JSON encoding (a collector rejects the
// whole export otherwise), and every value is remade by its constructor.
span repaired(const span& s) {
  using kind = attribute_value::kind;
  const auto fix = [](std::string_view v) { return well_formed(v) ? std::string(v) : json_scan::sanitize_utf8(v); };
  span out;
  out.trace = s.trace;
  out.id = s.id;
  out.parent = s.parent;
  out.trace_state = fix(s.trace_state);
  out.flags = s.flags;
  out.name = fix(s.name);
  out.kind = s.kind;
  out.start_unix_nano = s.start_unix_nano;
  out.end_unix_nano = s.end_unix_nano;
  out.status = s.status;
  out.status_message = fix(s.status_message);
  const auto remake = [&](const attribute_value& v) -> attribute_value {
    switch (v.type) {
      case kind::boolean: return attribute_value(v.boolean);
      case kind::integer: return attribute_value(v.integer);
      case kind::floating: return attribute_value(v.floating);
      case kind::string_array: {
        std::vector<std::string> items;
        s.for_each_item(v, [&](std::string_view item) { items.push_back(fix(item)); });
        return out.store(items);
      }
      case kind::string: break;
    }
    return out.store(fix(s.text_of(v)));
  };
  for (const auto& a : s.attributes) out.attributes.push_back({a.key, remake(a.value)});
  for (const auto& e : s.events) {
    auto& copy = out.events.emplace_back();
    copy.name = e.name;
    copy.time_unix_nano = e.time_unix_nano;
    for (const auto& a : e.attributes) copy.attributes.push_back({a.key, remake(a.value)});
  }
  return out;
}

// Span: the bytes of a ScopeSpans.spans field, for a span encodable_as_is()
// or repaired().
void pb_span(std::string& out, const span& s) {
  // Span: 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name,
  // 6 kind, 7 start, 8 end, 9 attributes, 11 events, 15 status, 16 flags.
  std::size_t body = delimited_size(s.trace.bytes.size()) + delimited_size(s.id.bytes.size());
  if (!s.trace_state.empty()) body += delimited_size(s.trace_state.size());
  if (s.parent.valid()) body += delimited_size(s.parent.bytes.size());
  if (!s.name.empty()) body += delimited_size(s.name.size());
  if (s.kind != span_kind{0}) body += 1 + varint_size(static_cast<std::uint64_t>(s.kind));
  if (s.start_unix_nano != 0) body += 9;
  if (s.end_unix_nano != 0) body += 9;
  for (const auto& a : s.attributes) body += delimited_size(key_value_size(s, a));
  const auto event_size = [&](const span_event& e) {
    std::size_t size = (e.time_unix_nano != 0 ? 9 : 0) + (e.name.empty() ? 0 : delimited_size(e.name.size()));
    for (const auto& a : e.attributes) size += delimited_size(key_value_size(s, a));
    return size;
  };
  for (const auto& e : s.events) body += delimited_size(event_size(e));
  std::size_t status = 0;
  if (s.status != status_code::unset) {
    status = (s.status_message.empty() ? 0 : delimited_size(s.status_message.size())) + 2;
    body += delimited_size(status);
  }
  if (s.flags != 0) body += 2 + 4;  // field 16: a two-byte tag

  const std::size_t at = out.size();
  const std::size_t total = delimited_size(body);
  out.resize(at + total);
  raw_writer w(out.data() + at);
  w.delimited(2, body);
  w.delimited(1, std::string_view(reinterpret_cast<const char*>(s.trace.bytes.data()), s.trace.bytes.size()));
  w.delimited(2, std::string_view(reinterpret_cast<const char*>(s.id.bytes.data()), s.id.bytes.size()));
  if (!s.trace_state.empty()) w.delimited(3, s.trace_state);
  if (s.parent.valid()) {
    w.delimited(4, std::string_view(reinterpret_cast<const char*>(s.parent.bytes.data()), s.parent.bytes.size()));
  }
  if (!s.name.empty()) w.delimited(5, s.name);
  if (s.kind != span_kind{0}) {
    w.put_byte((6 << 3) | varint);
    w.put_varint(static_cast<std::uint64_t>(s.kind));
  }
  if (s.start_unix_nano != 0) {
    w.put_byte((7 << 3) | fixed64);
    w.put_fixed64(s.start_unix_nano);
  }
  if (s.end_unix_nano != 0) {
    w.put_byte((8 << 3) | fixed64);
    w.put_fixed64(s.end_unix_nano);
  }
  for (const auto& a : s.attributes) w.key_value(s, 9, a);
  for (const auto& e : s.events) {
    // Event: 1 time_unix_nano, 2 name, 3 attributes.
    w.delimited(11, event_size(e));
    if (e.time_unix_nano != 0) {
      w.put_byte((1 << 3) | fixed64);
      w.put_fixed64(e.time_unix_nano);
    }
    if (!e.name.empty()) w.delimited(2, e.name);
    for (const auto& a : e.attributes) w.key_value(s, 3, a);
  }
  if (s.status != status_code::unset) {
    // Status: 2 message, 3 code.
    w.delimited(15, status);
    if (!s.status_message.empty()) w.delimited(2, s.status_message);
    w.put_byte((3 << 3) | varint);
    w.put_byte(static_cast<std::uint32_t>(s.status));
  }
  if (s.flags != 0) {
    w.put_varint((16 << 3) | fixed32);
    for (int i = 0; i < 4; ++i) w.put_byte((s.flags >> (8 * i)) & 0xffU);
  }
  if (w.position() != out.data() + out.size()) throw std::logic_error("OTLP span size miscounted");
}

// ---- JSON -----------------------------------------------------------------

// A JSON string token; invalid UTF-8 becomes U+FFFD, so the body stays valid JSON.
// Printable ASCII without quote or backslash, the common case, is copied as is.
void json_string(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') {
      out += json_scan::encode_string(s);
      return;
    }
  }
  out.push_back('"');
  out.append(s);
  out.push_back('"');
}

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

void json_any(std::string& out, const span& sp, const attribute_value& value) {
  using kind = attribute_value::kind;
  switch (value.type) {
    case kind::string:
      out += "{\"stringValue\":";
      json_string(out, sp.text_of(value));
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
      sp.for_each_item(value, [&](std::string_view item) {
        if (!first) out.push_back(',');
        first = false;
        out += "{\"stringValue\":";
        json_string(out, item);
        out.push_back('}');
      });
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

void json_span_attributes(std::string& out, const span& s, const std::vector<attribute>& attributes) {
  json_attributes(
      out, attributes, [](const attribute& a) { return a.key; },
      [&out, &s](const attribute& a) { json_any(out, s, a.value); });
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
    json_span_attributes(out, s, s.attributes);
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
        json_span_attributes(out, s, e.attributes);
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

void append_span_protobuf(const span& s, std::string& out) {
  if (encodable_as_is(s)) {
    pb_span(out, s);
  } else {
    pb_span(out, repaired(s));
  }
}

void append_span_json(const span& s, std::string& out) { json_span(out, s); }

void protobuf_head(const resource_info& resource, std::size_t spans_size, std::string& out) {
  // ExportTraceServiceRequest: 1 resource_spans. ResourceSpans: 1 resource,
  // 2 scope_spans. Resource: 1 attributes. ScopeSpans: 1 scope, 2 spans.
  // InstrumentationScope: 1 name, 2 version.
  std::string resource_part;
  pb_writer r{resource_part};
  r.message(1, 2, [&] {
    // Not a structured binding: clang before 16 cannot capture one.
    for (const auto& attribute : resource.attributes) {
      r.message(1, 1, [&] {
        r.string_field(1, attribute.first);
        r.message(2, 1, [&] { r.string_member(1, attribute.second); });
      });
    }
  });
  std::string scope_part;
  pb_writer sc{scope_part};
  sc.message(1, 1, [&] {
    sc.string_field(1, resource.scope_name);
    sc.string_field(2, resource.scope_version);
  });
  char length[10];
  const std::size_t scope_spans_size = scope_part.size() + spans_size;
  const std::size_t resource_spans_size =
      resource_part.size() + 1 + put_varint(length, scope_spans_size) + scope_spans_size;
  out.clear();
  pb_writer w{out};
  w.tag(1, length_delimited);
  w.write_varint(resource_spans_size);
  out += resource_part;
  w.tag(2, length_delimited);
  w.write_varint(scope_spans_size);
  out += scope_part;
}

void json_head(const resource_info& resource, std::string& out) {
  out.clear();
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
}

std::string encode_protobuf(const resource_info& resource, std::span<const span> spans) {
  if (spans.empty()) return {};  // an empty request: no empty envelopes
  std::string body;
  for (const auto& s : spans) append_span_protobuf(s, body);
  std::string out;
  protobuf_head(resource, body.size(), out);
  out += body;
  return out;
}

std::string encode_json(const resource_info& resource, std::span<const span> spans) {
  if (spans.empty()) return "{}";
  std::string out;
  json_head(resource, out);
  bool first = true;
  for (const auto& s : spans) {
    if (!first) out.push_back(',');
    first = false;
    append_span_json(s, out);
  }
  out += json_tail;
  return out;
}

}  // namespace gatewayz::tracing

// Differential fuzzer for the OTLP trace encoders (tracing/otlp.hpp).
//
// Input: spans built from the bytes (FuzzedDataProvider): ids, flags, trace
// state, names, kinds, times, attributes of every value type (strings with
// any bytes, doubles including NaN and infinities, int64 extremes), events
// and statuses, plus resource attributes.
//
// Invariants:
//  - protobuf: the bytes decode (with the decoder below, written from
//    opentelemetry-proto's field numbers, independent of the encoder) to
//    exactly the spans given, every message's fields in field-number order,
//    nothing left over, and every string field valid UTF-8 (proto3 requires
//    it: collectors reject the whole export otherwise);
//  - JSON: the body parses (Boost.JSON) and maps back to the same spans
//    under the OTLP/JSON rules (hex ids, int64 as strings, NaN/Infinity as
//    strings, default values omitted);
//  - both decode to the same thing: invalid UTF-8 in a string becomes the
//    same U+FFFD sequence in both encodings, valid UTF-8 is kept as is.

#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "core/json_scan.hpp"
#include "tracing/otlp.hpp"

#include "fuzz_check.hpp"

namespace {

namespace json = boost::json;
using namespace gatewayz;
using namespace gatewayz::tracing;

// ---- the decoded, encoding-independent form -------------------------------

bool loose_doubles = false;  // set while comparing the JSON decoding

struct value_out {
  int type = 0;  // 1 string, 2 bool, 3 int, 4 double, 5 array of strings
  std::string text;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  std::vector<std::string> list;
  bool operator==(const value_out& o) const {
    if (type != o.type || text != o.text || boolean != o.boolean || integer != o.integer || list != o.list) {
      return false;
    }
    if (std::isnan(floating) || std::isnan(o.floating)) return std::isnan(floating) && std::isnan(o.floating);
    if (floating == o.floating) return true;
    // Boost.JSON 1.81 may parse a decimal 1 ulp off the shortest form fmt
    // wrote; the protobuf path compares bits exactly.
    return loose_doubles && std::isfinite(floating) && std::isfinite(o.floating) &&
           std::fabs(floating - o.floating) <= 4 * std::numeric_limits<double>::epsilon() * std::fabs(floating);
  }
};
struct kv_out {
  std::string key;
  value_out value;
  bool operator==(const kv_out&) const = default;
};
struct event_out {
  std::uint64_t time = 0;
  std::string name;
  std::vector<kv_out> attributes;
  bool operator==(const event_out&) const = default;
};
struct span_out {
  std::string trace_id, span_id, parent_id;  // raw bytes
  std::string trace_state, name;
  std::uint32_t flags = 0;
  std::uint64_t kind = 0, start = 0, end = 0;
  std::vector<kv_out> attributes;
  std::vector<event_out> events;
  std::uint64_t status_code = 0;
  std::string status_message;
  bool has_status = false;
  bool operator==(const span_out&) const = default;
};
struct request_out {
  std::vector<kv_out> resource;
  std::string scope_name, scope_version;
  std::vector<span_out> spans;
  bool operator==(const request_out&) const = default;
};

bool valid_utf8(std::string_view s) {
  const auto decoded = json_scan::decode_string(json_scan::encode_string(s));
  return decoded && *decoded == s;
}

// What a string looks like after either encoder: valid UTF-8 kept, each
// invalid byte replaced (json_scan::encode_string's rule).
std::string sanitized(std::string_view s) {
  auto decoded = json_scan::decode_string(json_scan::encode_string(s));
  FUZZ_CHECK(decoded.has_value());
  return *decoded;
}

// ---- protobuf decoding ----------------------------------------------------

struct field {
  std::uint32_t number = 0;
  std::uint32_t wire = 0;
  std::uint64_t scalar = 0;  // varint, fixed64, fixed32
  std::string_view bytes;    // length-delimited
};

std::uint64_t read_varint(std::string_view& in) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    FUZZ_CHECK(!in.empty());
    const auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return v;
  }
  FUZZ_CHECK(false);
  return 0;
}

std::uint64_t read_fixed(std::string_view& in, int n) {
  FUZZ_CHECK(in.size() >= static_cast<std::size_t>(n));
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
  in.remove_prefix(n);
  return v;
}

// All fields of one message, checked to be in non-decreasing field order.
std::vector<field> fields(std::string_view in) {
  std::vector<field> out;
  while (!in.empty()) {
    const std::uint64_t tag = read_varint(in);
    field f;
    f.number = static_cast<std::uint32_t>(tag >> 3);
    f.wire = static_cast<std::uint32_t>(tag & 7);
    FUZZ_CHECK(f.number > 0);
    if (!out.empty()) FUZZ_CHECK(out.back().number <= f.number);
    switch (f.wire) {
      case 0: f.scalar = read_varint(in); break;
      case 1: f.scalar = read_fixed(in, 8); break;
      case 5: f.scalar = read_fixed(in, 4); break;
      case 2: {
        const std::uint64_t length = read_varint(in);
        FUZZ_CHECK(length <= in.size());
        f.bytes = in.substr(0, length);
        in.remove_prefix(length);
        break;
      }
      default: FUZZ_CHECK(false);
    }
    out.push_back(f);
  }
  return out;
}

std::string pb_string(const field& f) {
  FUZZ_CHECK(f.wire == 2);
  FUZZ_CHECK(valid_utf8(f.bytes));
  return std::string(f.bytes);
}

value_out pb_any(std::string_view in) {
  const auto fs = fields(in);
  FUZZ_CHECK(fs.size() == 1);  // a oneof: exactly one member
  const field& f = fs[0];
  value_out v;
  v.type = static_cast<int>(f.number);
  switch (f.number) {
    case 1: v.text = pb_string(f); break;
    case 2:
      FUZZ_CHECK(f.wire == 0 && f.scalar <= 1);
      v.boolean = f.scalar == 1;
      break;
    case 3:
      FUZZ_CHECK(f.wire == 0);
      v.integer = static_cast<std::int64_t>(f.scalar);
      break;
    case 4: {
      FUZZ_CHECK(f.wire == 1);
      std::memcpy(&v.floating, &f.scalar, sizeof v.floating);
      break;
    }
    case 5:
      FUZZ_CHECK(f.wire == 2);
      for (const field& item : fields(f.bytes)) {
        FUZZ_CHECK(item.number == 1 && item.wire == 2);
        const value_out inner = pb_any(item.bytes);
        FUZZ_CHECK(inner.type == 1);
        v.list.push_back(inner.text);
      }
      break;
    default: FUZZ_CHECK(false);
  }
  return v;
}

kv_out pb_kv(std::string_view in) {
  kv_out kv;
  bool has_value = false;
  for (const field& f : fields(in)) {
    if (f.number == 1) {
      kv.key = pb_string(f);
    } else {
      FUZZ_CHECK(f.number == 2 && f.wire == 2 && !has_value);
      kv.value = pb_any(f.bytes);
      has_value = true;
    }
  }
  FUZZ_CHECK(has_value);
  return kv;
}

span_out pb_span(std::string_view in) {
  span_out s;
  for (const field& f : fields(in)) {
    switch (f.number) {
      case 1:
        FUZZ_CHECK(f.wire == 2 && f.bytes.size() == 16);
        s.trace_id = f.bytes;
        break;
      case 2:
        FUZZ_CHECK(f.wire == 2 && f.bytes.size() == 8);
        s.span_id = f.bytes;
        break;
      case 3: s.trace_state = pb_string(f); break;
      case 4:
        FUZZ_CHECK(f.wire == 2 && f.bytes.size() == 8);
        s.parent_id = f.bytes;
        break;
      case 5: s.name = pb_string(f); break;
      case 6:
        FUZZ_CHECK(f.wire == 0);
        s.kind = f.scalar;
        break;
      case 7:
        FUZZ_CHECK(f.wire == 1);
        s.start = f.scalar;
        break;
      case 8:
        FUZZ_CHECK(f.wire == 1);
        s.end = f.scalar;
        break;
      case 9:
        FUZZ_CHECK(f.wire == 2);
        s.attributes.push_back(pb_kv(f.bytes));
        break;
      case 11: {
        FUZZ_CHECK(f.wire == 2);
        event_out e;
        for (const field& g : fields(f.bytes)) {
          if (g.number == 1) {
            FUZZ_CHECK(g.wire == 1);
            e.time = g.scalar;
          } else if (g.number == 2) {
            e.name = pb_string(g);
          } else {
            FUZZ_CHECK(g.number == 3 && g.wire == 2);
            e.attributes.push_back(pb_kv(g.bytes));
          }
        }
        s.events.push_back(std::move(e));
        break;
      }
      case 15: {
        FUZZ_CHECK(f.wire == 2);
        s.has_status = true;
        for (const field& g : fields(f.bytes)) {
          if (g.number == 2) {
            s.status_message = pb_string(g);
          } else {
            FUZZ_CHECK(g.number == 3 && g.wire == 0);
            s.status_code = g.scalar;
          }
        }
        break;
      }
      case 16:
        FUZZ_CHECK(f.wire == 5);
        s.flags = static_cast<std::uint32_t>(f.scalar);
        break;
      default: FUZZ_CHECK(false);
    }
  }
  return s;
}

request_out decode_protobuf(std::string_view body) {
  request_out r;
  const auto top = fields(body);
  FUZZ_CHECK(top.size() == 1 && top[0].number == 1 && top[0].wire == 2);
  for (const field& f : fields(top[0].bytes)) {
    FUZZ_CHECK(f.wire == 2);
    if (f.number == 1) {
      for (const field& a : fields(f.bytes)) {
        FUZZ_CHECK(a.number == 1 && a.wire == 2);
        r.resource.push_back(pb_kv(a.bytes));
      }
      continue;
    }
    FUZZ_CHECK(f.number == 2);
    for (const field& g : fields(f.bytes)) {
      FUZZ_CHECK(g.wire == 2);
      if (g.number == 1) {
        for (const field& h : fields(g.bytes)) {
          FUZZ_CHECK(h.number == 1 || h.number == 2);
          (h.number == 1 ? r.scope_name : r.scope_version) = pb_string(h);
        }
      } else {
        FUZZ_CHECK(g.number == 2);
        r.spans.push_back(pb_span(g.bytes));
      }
    }
  }
  return r;
}

// ---- JSON decoding --------------------------------------------------------

std::string from_hex(const json::value& v, std::size_t bytes) {
  const json::string& s = v.as_string();
  FUZZ_CHECK(s.size() == 2 * bytes);
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const auto digit = [](char c) {
      FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
      return c <= '9' ? c - '0' : c - 'a' + 10;
    };
    out.push_back(static_cast<char>(digit(s[i]) * 16 + digit(s[i + 1])));
  }
  return out;
}

template <class T>
T decimal(const json::value& v) {
  const json::string& s = v.as_string();
  T out{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  FUZZ_CHECK(ec == std::errc() && end == s.data() + s.size());
  return out;
}

void only_keys(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : o) {
    bool known = false;
    for (std::string_view k : allowed) known = known || kv.key() == k;
    FUZZ_CHECK(known);
  }
}

value_out json_any(const json::object& o) {
  FUZZ_CHECK(o.size() == 1);
  const auto& [key, v] = *o.begin();
  value_out out;
  if (key == "stringValue") {
    out.type = 1;
    out.text = v.as_string();
  } else if (key == "boolValue") {
    out.type = 2;
    out.boolean = v.as_bool();
  } else if (key == "intValue") {
    out.type = 3;
    out.integer = decimal<std::int64_t>(v);
  } else if (key == "doubleValue") {
    out.type = 4;
    if (v.is_string()) {
      const json::string& s = v.get_string();
      FUZZ_CHECK(s == "NaN" || s == "Infinity" || s == "-Infinity");
      out.floating = s == "NaN"        ? std::numeric_limits<double>::quiet_NaN()
                     : s == "Infinity" ? std::numeric_limits<double>::infinity()
                                       : -std::numeric_limits<double>::infinity();
    } else {
      out.floating = v.to_number<double>();
    }
  } else {
    FUZZ_CHECK(key == "arrayValue");
    const json::object& array = v.as_object();
    only_keys(array, {"values"});
    if (const json::value* values = array.if_contains("values")) {
      for (const json::value& item : values->as_array()) {
        const value_out inner = json_any(item.as_object());
        FUZZ_CHECK(inner.type == 1);
        out.list.push_back(inner.text);
      }
    }
    out.type = 5;
  }
  return out;
}

std::vector<kv_out> json_attributes(const json::object& o) {
  std::vector<kv_out> out;
  const json::value* list = o.if_contains("attributes");
  if (list == nullptr) return out;
  for (const json::value& item : list->as_array()) {
    const json::object& kv = item.as_object();
    only_keys(kv, {"key", "value"});
    out.push_back({std::string(kv.at("key").as_string()), json_any(kv.at("value").as_object())});
  }
  return out;
}

request_out decode_json(std::string_view body) {
  json::parse_options options;
  options.max_depth = 64;
  json::error_code ec;
  const json::value doc = json::parse(body, ec, {}, options);
  FUZZ_CHECK(!ec);
  request_out r;
  const json::array& resource_spans = doc.at("resourceSpans").as_array();
  FUZZ_CHECK(resource_spans.size() == 1);
  const json::object& rs = resource_spans[0].as_object();
  r.resource = json_attributes(rs.at("resource").as_object());
  const json::array& scope_spans = rs.at("scopeSpans").as_array();
  FUZZ_CHECK(scope_spans.size() == 1);
  const json::object& ss = scope_spans[0].as_object();
  const json::object& scope = ss.at("scope").as_object();
  only_keys(scope, {"name", "version"});
  if (const json::value* n = scope.if_contains("name")) r.scope_name = n->as_string();
  if (const json::value* v = scope.if_contains("version")) r.scope_version = v->as_string();
  for (const json::value& item : ss.at("spans").as_array()) {
    const json::object& o = item.as_object();
    only_keys(o, {"traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind", "startTimeUnixNano",
                  "endTimeUnixNano", "attributes", "events", "status"});
    span_out s;
    s.trace_id = from_hex(o.at("traceId"), 16);
    s.span_id = from_hex(o.at("spanId"), 8);
    if (const json::value* v = o.if_contains("traceState")) s.trace_state = v->as_string();
    if (const json::value* v = o.if_contains("parentSpanId")) s.parent_id = from_hex(*v, 8);
    if (const json::value* v = o.if_contains("flags"))
      s.flags = static_cast<std::uint32_t>(v->to_number<std::uint64_t>());
    s.name = o.at("name").as_string();
    s.kind = o.at("kind").to_number<std::uint64_t>();
    s.start = decimal<std::uint64_t>(o.at("startTimeUnixNano"));
    s.end = decimal<std::uint64_t>(o.at("endTimeUnixNano"));
    s.attributes = json_attributes(o);
    if (const json::value* events = o.if_contains("events")) {
      for (const json::value& ev : events->as_array()) {
        const json::object& e = ev.as_object();
        only_keys(e, {"timeUnixNano", "name", "attributes"});
        s.events.push_back(
            {decimal<std::uint64_t>(e.at("timeUnixNano")), std::string(e.at("name").as_string()), json_attributes(e)});
      }
    }
    if (const json::value* status = o.if_contains("status")) {
      const json::object& st = status->as_object();
      only_keys(st, {"message", "code"});
      s.has_status = true;
      if (const json::value* m = st.if_contains("message")) s.status_message = m->as_string();
      s.status_code = st.at("code").to_number<std::uint64_t>();
    }
    r.spans.push_back(std::move(s));
  }
  return r;
}

// ---- what the spans should decode to -------------------------------------

// String values live in the owning span's text.
value_out expected_value(const attribute_value& v, const span& owner) {
  value_out out;
  using kind = attribute_value::kind;
  switch (v.type) {
    case kind::string:
      out.type = 1;
      out.text = sanitized(owner.text_of(v));
      break;
    case kind::boolean:
      out.type = 2;
      out.boolean = v.boolean;
      break;
    case kind::integer:
      out.type = 3;
      out.integer = v.integer;
      break;
    case kind::floating:
      out.type = 4;
      out.floating = v.floating;
      break;
    case kind::string_array:
      out.type = 5;
      owner.for_each_item(v, [&](std::string_view item) { out.list.push_back(sanitized(item)); });
      break;
  }
  return out;
}

std::vector<kv_out> expected_attributes(const std::vector<attribute>& attributes, const span& owner) {
  std::vector<kv_out> out;
  for (const attribute& a : attributes) out.push_back({sanitized(a.key), expected_value(a.value, owner)});
  return out;
}

template <std::size_t N>
std::string raw(const std::array<std::uint8_t, N>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), N);
}

request_out expected(const resource_info& resource, const std::vector<span>& spans) {
  request_out r;
  for (const auto& [k, v] : resource.attributes) {
    value_out value;
    value.type = 1;
    value.text = sanitized(v);
    r.resource.push_back({sanitized(k), value});
  }
  r.scope_name = sanitized(resource.scope_name);
  r.scope_version = sanitized(resource.scope_version);
  for (const span& s : spans) {
    span_out o;
    o.trace_id = raw(s.trace.bytes);
    o.span_id = raw(s.id.bytes);
    if (s.parent.valid()) o.parent_id = raw(s.parent.bytes);
    o.trace_state = sanitized(s.trace_state);
    o.name = sanitized(s.name);
    o.flags = s.flags;
    o.kind = static_cast<std::uint64_t>(s.kind);
    o.start = s.start_unix_nano;
    o.end = s.end_unix_nano;
    o.attributes = expected_attributes(s.attributes, s);
    for (const span_event& e : s.events) {
      o.events.push_back({e.time_unix_nano, sanitized(e.name), expected_attributes(e.attributes, s)});
    }
    if (s.status != status_code::unset) {
      o.has_status = true;
      o.status_code = static_cast<std::uint64_t>(s.status);
      o.status_message = sanitized(s.status_message);
    }
    r.spans.push_back(std::move(o));
  }
  return r;
}

// ---- building spans from the input ----------------------------------------

// Attribute and event keys are string views; they point into this pool,
// which lives for the whole input. Keys are literals in the gateway
// (span.hpp: the encoders skip their UTF-8 check and escaping), so the
// fuzzed ones are mapped onto the characters such names use.
std::string_view keep(std::deque<std::string>& pool, std::string text) {
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._";
  for (char& c : text) c = alphabet[static_cast<unsigned char>(c) % alphabet.size()];
  pool.push_back(std::move(text));
  return pool.back();
}

// A value for an attribute of `owner` (or of one of its events): strings go
// into the span's text, as span::set does.
attribute_value make_value(FuzzedDataProvider& in, span& owner) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return owner.store(in.ConsumeRandomLengthString(64));
    case 1: return attribute_value(in.ConsumeBool());
    case 2: return attribute_value(in.ConsumeIntegral<std::int64_t>());
    case 3: {
      switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0: return attribute_value(std::numeric_limits<double>::quiet_NaN());
        case 1: return attribute_value(std::numeric_limits<double>::infinity());
        case 2: return attribute_value(-std::numeric_limits<double>::infinity());
        default: {
          std::uint64_t bits = in.ConsumeIntegral<std::uint64_t>();
          double d = 0;
          std::memcpy(&d, &bits, sizeof d);
          return attribute_value(d);
        }
      }
    }
    default: {
      std::vector<std::string> list(in.ConsumeIntegralInRange<std::size_t>(0, 4));
      for (auto& s : list) s = in.ConsumeRandomLengthString(32);
      owner.set("", std::span<const std::string>(list));  // lays the items out in the text
      const attribute_value v = owner.attributes.back().value;
      owner.attributes.pop_back();
      return v;
    }
  }
}

template <std::size_t N>
void fill(FuzzedDataProvider& in, std::array<std::uint8_t, N>& bytes) {
  for (auto& b : bytes) b = in.ConsumeIntegral<std::uint8_t>();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::deque<std::string> keys;
  resource_info resource;
  for (std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 3); n > 0; --n) {
    resource.attributes.emplace_back(in.ConsumeRandomLengthString(32), in.ConsumeRandomLengthString(32));
  }
  resource.scope_name = in.ConsumeRandomLengthString(16);
  resource.scope_version = in.ConsumeRandomLengthString(16);

  std::vector<span> spans(in.ConsumeIntegralInRange<std::size_t>(0, 4));
  for (span& s : spans) {
    fill(in, s.trace.bytes);
    fill(in, s.id.bytes);
    if (in.ConsumeBool()) fill(in, s.parent.bytes);
    s.trace_state = in.ConsumeRandomLengthString(32);
    s.flags = in.ConsumeIntegral<std::uint32_t>();
    s.name = in.ConsumeRandomLengthString(32);
    s.kind = static_cast<span_kind>(in.ConsumeIntegralInRange<int>(1, 3));
    s.start_unix_nano = in.ConsumeIntegral<std::uint64_t>();
    s.end_unix_nano = in.ConsumeIntegral<std::uint64_t>();
    for (std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 6); n > 0; --n) {
      const std::string_view key = keep(keys, in.ConsumeRandomLengthString(24));
      const attribute_value v = make_value(in, s);
      s.attributes.push_back({key, v});
    }
    for (std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 2); n > 0; --n) {
      span_event e;
      e.name = keep(keys, in.ConsumeRandomLengthString(16));
      e.time_unix_nano = in.ConsumeIntegral<std::uint64_t>();
      for (std::size_t m = in.ConsumeIntegralInRange<std::size_t>(0, 2); m > 0; --m) {
        const std::string_view key = keep(keys, in.ConsumeRandomLengthString(16));
        e.attributes.push_back({key, make_value(in, s)});
      }
      s.events.push_back(std::move(e));
    }
    s.status = static_cast<status_code>(in.ConsumeIntegralInRange<int>(0, 2));
    if (s.status == status_code::error) s.status_message = in.ConsumeRandomLengthString(32);
  }

  const std::string pb = encode_protobuf(resource, spans);
  const std::string js = encode_json(resource, spans);
  if (spans.empty()) {
    FUZZ_CHECK(pb.empty());
    return 0;
  }
  const request_out want = expected(resource, spans);
  FUZZ_CHECK(decode_protobuf(pb) == want);
  loose_doubles = true;
  FUZZ_CHECK(decode_json(js) == want);
  loose_doubles = false;
  return 0;
}

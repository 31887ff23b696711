#include "tracing/otlp.hpp"

#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace gatewayz::tracing {
namespace {

// A small protobuf wire reader written from the encoding spec, independent
// of the encoder: a message is a list of (field, wire type, value) and any
// byte left over or malformed fails the test.
struct pb_field {
  std::uint32_t number = 0;
  std::uint32_t type = 0;
  std::uint64_t number_value = 0;  // varint, fixed32, fixed64
  std::string bytes;               // length-delimited
};

std::uint64_t read_varint(std::string_view& in) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) throw std::runtime_error("truncated varint");
    const auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return v;
  }
  throw std::runtime_error("varint too long");
}

std::vector<pb_field> parse(std::string_view in) {
  std::vector<pb_field> out;
  while (!in.empty()) {
    const auto key = read_varint(in);
    pb_field f;
    f.number = static_cast<std::uint32_t>(key >> 3);
    f.type = static_cast<std::uint32_t>(key & 7);
    switch (f.type) {
      case 0: f.number_value = read_varint(in); break;
      case 1:
      case 5: {
        const std::size_t n = f.type == 1 ? 8 : 4;
        if (in.size() < n) throw std::runtime_error("truncated fixed");
        for (std::size_t i = 0; i < n; ++i)
          f.number_value |= std::uint64_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
        in.remove_prefix(n);
        break;
      }
      case 2: {
        const auto n = read_varint(in);
        if (in.size() < n) throw std::runtime_error("truncated bytes");
        f.bytes.assign(in.substr(0, n));
        in.remove_prefix(n);
        break;
      }
      default: throw std::runtime_error("bad wire type");
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<pb_field> fields(const std::vector<pb_field>& all, std::uint32_t number, std::uint32_t type) {
  std::vector<pb_field> out;
  for (const auto& f : all) {
    if (f.number != number) continue;
    EXPECT_EQ(f.type, type) << "field " << number;
    out.push_back(f);
  }
  return out;
}

const pb_field& one(const std::vector<pb_field>& all, std::uint32_t number, std::uint32_t type) {
  static std::vector<pb_field> keep;
  keep = fields(all, number, type);
  if (keep.size() != 1) throw std::runtime_error("field " + std::to_string(number) + " not exactly once");
  return keep.front();
}

span sample_span() {
  span s;
  from_hex("4bf92f3577b34da6a3ce929d0e0e4736", s.trace);
  from_hex("00f067aa0ba902b7", s.id);
  from_hex("b7ad6b7169203331", s.parent);
  s.trace_state = "rojo=1";
  s.flags = 0x301;
  s.name = "chat gpt-4o";
  s.kind = span_kind::client;
  s.start_unix_nano = 1700000000000000000ULL;
  s.end_unix_nano = 1700000001500000000ULL;
  s.set("gen_ai.request.model", "gpt-4o");
  s.set("gen_ai.usage.input_tokens", std::int64_t{42});
  s.set("gen_ai.request.temperature", 0.25);
  s.set("gen_ai.request.stream", true);
  s.set("gen_ai.response.finish_reasons", std::vector<std::string>{"stop", "length"});
  s.set("note", "quote \" backslash \\ newline \n ctl \x01");
  s.events.push_back({"gen_ai.first_chunk", 1700000000250000000ULL, {}});
  s.events.back().attributes.push_back({"gen_ai.response.time_to_first_chunk", 0.25});
  s.status = status_code::error;
  s.status_message = "upstream 503";
  return s;
}

resource_info sample_resource() {
  resource_info r;
  r.attributes = {{"service.name", "gatewayz-api"}, {"deployment.environment", "test"}};
  r.scope_name = "gatewayz";
  r.scope_version = "1.2.3";
  return r;
}

TEST(otlp_protobuf, encodes_the_export_request_with_opentelemetry_proto_field_numbers) {
  const std::vector<span> spans{sample_span()};
  const auto bytes = encode_protobuf(sample_resource(), spans);
  const auto request = parse(bytes);
  ASSERT_EQ(request.size(), 1u);
  const auto resource_spans = parse(one(request, 1, 2).bytes);
  const auto resource = parse(one(resource_spans, 1, 2).bytes);
  const auto resource_attrs = fields(resource, 1, 2);
  ASSERT_EQ(resource_attrs.size(), 2u);
  const auto kv0 = parse(resource_attrs[0].bytes);
  EXPECT_EQ(one(kv0, 1, 2).bytes, "service.name");
  EXPECT_EQ(one(parse(one(kv0, 2, 2).bytes), 1, 2).bytes, "gatewayz-api");

  const auto scope_spans = parse(one(resource_spans, 2, 2).bytes);
  const auto scope = parse(one(scope_spans, 1, 2).bytes);
  EXPECT_EQ(one(scope, 1, 2).bytes, "gatewayz");
  EXPECT_EQ(one(scope, 2, 2).bytes, "1.2.3");
  const auto span_msgs = fields(scope_spans, 2, 2);
  ASSERT_EQ(span_msgs.size(), 1u);
  const auto s = parse(span_msgs[0].bytes);
  // Field-number order, as proto3 serializers write it.
  for (std::size_t i = 1; i < s.size(); ++i) EXPECT_LE(s[i - 1].number, s[i].number);
  EXPECT_EQ(one(s, 1, 2).bytes, std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  EXPECT_EQ(one(s, 2, 2).bytes.size(), 8u);
  EXPECT_EQ(one(s, 3, 2).bytes, "rojo=1");
  EXPECT_EQ(one(s, 4, 2).bytes, std::string("\xb7\xad\x6b\x71\x69\x20\x33\x31", 8));
  EXPECT_EQ(one(s, 5, 2).bytes, "chat gpt-4o");
  EXPECT_EQ(one(s, 6, 0).number_value, 3u);
  EXPECT_EQ(one(s, 7, 1).number_value, 1700000000000000000ULL);
  EXPECT_EQ(one(s, 8, 1).number_value, 1700000001500000000ULL);
  EXPECT_EQ(one(s, 16, 5).number_value, 0x301u);

  std::map<std::string, std::vector<pb_field>> attrs;
  for (const auto& a : fields(s, 9, 2)) {
    const auto kv = parse(a.bytes);
    attrs[one(kv, 1, 2).bytes] = parse(one(kv, 2, 2).bytes);
  }
  ASSERT_EQ(attrs.size(), 6u);
  EXPECT_EQ(one(attrs["gen_ai.request.model"], 1, 2).bytes, "gpt-4o");
  EXPECT_EQ(one(attrs["gen_ai.usage.input_tokens"], 3, 0).number_value, 42u);
  double temperature = 0;
  const auto bits = one(attrs["gen_ai.request.temperature"], 4, 1).number_value;
  std::memcpy(&temperature, &bits, sizeof temperature);
  EXPECT_EQ(temperature, 0.25);
  EXPECT_EQ(one(attrs["gen_ai.request.stream"], 2, 0).number_value, 1u);
  const auto array = parse(one(attrs["gen_ai.response.finish_reasons"], 5, 2).bytes);
  const auto values = fields(array, 1, 2);
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(one(parse(values[1].bytes), 1, 2).bytes, "length");

  const auto event = parse(one(s, 11, 2).bytes);
  EXPECT_EQ(one(event, 1, 1).number_value, 1700000000250000000ULL);
  EXPECT_EQ(one(event, 2, 2).bytes, "gen_ai.first_chunk");
  EXPECT_EQ(fields(event, 3, 2).size(), 1u);

  const auto status = parse(one(s, 15, 2).bytes);
  EXPECT_EQ(one(status, 2, 2).bytes, "upstream 503");
  EXPECT_EQ(one(status, 3, 0).number_value, 2u);
}

// The sample span plus values at the encoder's edges: lengths past 127, a
// KeyValue of exactly 127 and 128 bytes, an empty string, a ten-byte varint,
// an array past 127 bytes, and strings of every length from 2 to 41 (so
// every copy length from 1 up is taken).
span edge_span() {
  span s = sample_span();
  s.set("long.value", std::string(300, 'v'));
  s.set("k", std::string(120, 'x'));  // a KeyValue of 127 bytes: one-byte lengths
  s.set("k", std::string(121, 'x'));  // of 128: two-byte lengths
  s.set("empty", "");
  s.set("int.min", std::numeric_limits<std::int64_t>::min());
  s.set("false", false);
  s.set("http.status_code", std::int64_t{200});
  for (std::size_t n = 1; n <= 40; ++n) s.set("text", std::string(n, static_cast<char>('a' + n % 26)) + "!");
  s.set("many.reasons", std::vector<std::string>(40, "stop"));
  return s;
}

TEST(otlp_protobuf, every_attribute_decodes_to_what_was_set) {
  const span s = edge_span();
  std::string bytes;
  append_span_protobuf(s, bytes);
  const auto encoded = parse(one(parse(bytes), 2, 2).bytes);
  const auto attrs = fields(encoded, 9, 2);
  ASSERT_EQ(attrs.size(), s.attributes.size());
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    const auto& want = s.attributes[i];
    const auto kv = parse(attrs[i].bytes);
    EXPECT_EQ(one(kv, 1, 2).bytes, want.key);
    const auto any = parse(one(kv, 2, 2).bytes);
    using kind = attribute_value::kind;
    switch (want.value.type) {
      case kind::string: EXPECT_EQ(one(any, 1, 2).bytes, s.text_of(want.value)) << i; break;
      case kind::boolean: EXPECT_EQ(one(any, 2, 0).number_value, want.value.boolean ? 1U : 0U) << i; break;
      case kind::integer:
        EXPECT_EQ(one(any, 3, 0).number_value, static_cast<std::uint64_t>(want.value.integer)) << i;
        break;
      case kind::floating: {
        double d = 0;
        const auto bits = one(any, 4, 1).number_value;
        std::memcpy(&d, &bits, sizeof d);
        EXPECT_EQ(d, want.value.floating) << i;
        break;
      }
      case kind::string_array: {
        std::vector<std::string> items;
        for (const auto& item : fields(parse(one(any, 5, 2).bytes), 1, 2))
          items.push_back(one(parse(item.bytes), 1, 2).bytes);
        std::vector<std::string> expected;
        s.for_each_item(want.value, [&](std::string_view item) { expected.emplace_back(item); });
        EXPECT_EQ(items, expected) << i;
        break;
      }
    }
  }
}

// Values made by hand carry no wire bytes: the encoder remakes them
// (repaired()) and must write what it writes for values made by set().
TEST(otlp_protobuf, a_span_with_hand_made_values_encodes_as_one_made_by_set) {
  const auto by_hand = [](const span& made) {
    span s = made;
    for (auto& a : s.attributes) {
      attribute_value v;
      v.type = a.value.type;
      v.boolean = a.value.boolean;
      v.items = a.value.items;
      v.text_offset = a.value.text_offset;
      v.text_size = a.value.text_size;
      v.integer = a.value.integer;
      v.floating = a.value.floating;
      a.value = v;
    }
    return s;
  };
  for (const span& made : {sample_span(), edge_span()}) {
    std::string from_set;
    std::string from_hand;
    append_span_protobuf(made, from_set);
    append_span_protobuf(by_hand(made), from_hand);
    EXPECT_EQ(from_set, from_hand);
    EXPECT_FALSE(from_set.empty());
  }
}

TEST(otlp_protobuf, omits_defaults_and_the_parent_of_a_root_span) {
  span root;
  root.trace = new_trace_id();
  root.id = new_span_id();
  root.name = "POST /v1/chat/completions";
  root.kind = span_kind::server;
  root.start_unix_nano = 1;
  root.end_unix_nano = 2;
  root.set("zero", std::int64_t{0});  // a oneof member is written even at 0
  const std::vector<span> spans{root};
  const auto s = parse(
      one(parse(one(parse(one(parse(encode_protobuf(resource_info{}, spans)), 1, 2).bytes), 2, 2).bytes), 2, 2).bytes);
  EXPECT_TRUE(fields(s, 3, 2).empty());
  EXPECT_TRUE(fields(s, 4, 2).empty());
  EXPECT_TRUE(fields(s, 15, 2).empty());
  EXPECT_TRUE(fields(s, 16, 5).empty());
  const auto kv = parse(one(s, 9, 2).bytes);
  EXPECT_EQ(one(parse(one(kv, 2, 2).bytes), 3, 0).number_value, 0u);
  EXPECT_TRUE(encode_protobuf(resource_info{}, {}).empty());
}

TEST(otlp_protobuf, long_messages_get_multi_byte_lengths) {
  span s = sample_span();
  s.name = std::string(300, 'n');
  for (int i = 0; i < 200; ++i) s.set("gatewayz.attempt", std::int64_t{i});
  const std::vector<span> spans{s, s};
  const auto request = parse(encode_protobuf(sample_resource(), spans));
  const auto scope_spans = parse(one(parse(one(request, 1, 2).bytes), 2, 2).bytes);
  const auto all = fields(scope_spans, 2, 2);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(one(parse(all[1].bytes), 5, 2).bytes, std::string(300, 'n'));
}

// Found by fuzz_otlp: proto3 strings must be UTF-8 (a collector rejects the
// whole export otherwise), and both encodings must carry the same text.
TEST(otlp_protobuf, strings_are_utf8_with_the_json_replacement) {
  span s = sample_span();
  s.name = "bad \xff byte";
  s.set("gen_ai.request.model", std::string("m\xc0\xafx \xe2\x82\xac"));
  const std::vector<span> spans{s};
  const auto request = parse(encode_protobuf(sample_resource(), spans));
  const auto scope_spans = parse(one(parse(one(request, 1, 2).bytes), 2, 2).bytes);
  const auto encoded = parse(one(scope_spans, 2, 2).bytes);
  EXPECT_EQ(one(encoded, 5, 2).bytes, "bad \xEF\xBF\xBD byte");
  std::string model;
  for (const auto& kv : fields(encoded, 9, 2)) {
    const auto parts = parse(kv.bytes);
    if (one(parts, 1, 2).bytes == "gen_ai.request.model") model = one(parse(one(parts, 2, 2).bytes), 1, 2).bytes;
  }
  EXPECT_EQ(model, "m\xEF\xBF\xBD\xEF\xBF\xBDx \xe2\x82\xac");  // each bad byte replaced, the euro sign kept
  const auto json_text = encode_json(sample_resource(), spans);
  EXPECT_NE(json_text.find("\"bad \xEF\xBF\xBD byte\""), std::string::npos);
}

TEST(otlp_json, follows_the_otlp_json_mapping) {
  const std::vector<span> spans{sample_span()};
  const auto text = encode_json(sample_resource(), spans);
  const auto doc = boost::json::parse(text).as_object();
  ASSERT_EQ(doc.size(), 1u);
  const auto& rs = doc.at("resourceSpans").as_array().at(0).as_object();
  EXPECT_EQ(rs.at("resource").at("attributes").as_array().at(0).at("key").as_string(), "service.name");
  const auto& ss = rs.at("scopeSpans").as_array().at(0).as_object();
  EXPECT_EQ(ss.at("scope").at("name").as_string(), "gatewayz");
  EXPECT_EQ(ss.at("scope").at("version").as_string(), "1.2.3");
  const auto& s = ss.at("spans").as_array().at(0).as_object();
  EXPECT_EQ(s.at("traceId").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.at("spanId").as_string(), "00f067aa0ba902b7");
  EXPECT_EQ(s.at("parentSpanId").as_string(), "b7ad6b7169203331");
  EXPECT_EQ(s.at("traceState").as_string(), "rojo=1");
  EXPECT_EQ(s.at("flags").as_int64(), 0x301);
  EXPECT_EQ(s.at("kind").as_int64(), 3);  // an integer, not "SPAN_KIND_CLIENT"
  EXPECT_EQ(s.at("startTimeUnixNano").as_string(), "1700000000000000000");
  EXPECT_EQ(s.at("endTimeUnixNano").as_string(), "1700000001500000000");
  std::map<std::string, boost::json::object> attrs;
  for (const auto& a : s.at("attributes").as_array()) {
    attrs[std::string(a.at("key").as_string())] = a.at("value").as_object();
  }
  EXPECT_EQ(attrs["gen_ai.usage.input_tokens"].at("intValue").as_string(), "42");
  EXPECT_EQ(attrs["gen_ai.request.temperature"].at("doubleValue").as_double(), 0.25);
  EXPECT_EQ(attrs["gen_ai.request.stream"].at("boolValue").as_bool(), true);
  EXPECT_EQ(attrs["gen_ai.response.finish_reasons"].at("arrayValue").at("values").as_array().at(1).at("stringValue"),
            "length");
  EXPECT_EQ(attrs["note"].at("stringValue").as_string(), "quote \" backslash \\ newline \n ctl \x01");
  const auto& event = s.at("events").as_array().at(0).as_object();
  EXPECT_EQ(event.at("timeUnixNano").as_string(), "1700000000250000000");
  EXPECT_EQ(s.at("status").at("code").as_int64(), 2);
  EXPECT_EQ(s.at("status").at("message").as_string(), "upstream 503");
}

}  // namespace
}  // namespace gatewayz::tracing

// Differential and property fuzzer for core/json_scan.
//
// Invariants checked on every input:
//  * validate() vs Boost.JSON: Boost accepts a subset of RFC 8259, so every
//    text Boost accepts must validate; a text we accept but Boost rejects must
//    contain an escaped UTF-16 surrogate or an exponent beyond double range
//    (the only RFC-legal things Boost 1.81 refuses).
//  * the depth limit is exact: a valid document of nesting N validates with
//    max_depth N and fails with N - 1.
//  * scan_object() succeeds exactly when validate() does and the text is an
//    object; member spans are ordered, each value validates on its own, and
//    the last member per decoded key equals what Boost parsed.
//  * scan_array() succeeds exactly when validate() does and the text is an
//    array; each element validates on its own, and there are as many as
//    Boost counts.
//  * set_member() + splice() (top level and nested, as the OpenAI adapter
//    does) yield text that still validates, with the new values in place.
//  * encode_string() always yields valid JSON; decode_string(encode_string(s))
//    == s exactly when s is valid UTF-8 (checked by an independent decoder).
//  * to_int64() agrees with std::to_string on canonical integers.

#include "core/json_scan.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fuzz_check.hpp"

namespace {

using namespace gatewayz::json_scan;

constexpr unsigned unlimited_depth = 1U << 20;  // inputs are far smaller than this
constexpr std::string_view whitespace = " \t\r\n";

// Decodes code points arithmetically, independent of the scanner's byte-range
// table, so the two implementations check each other.
bool reference_utf8_valid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t cp = 0;
    std::uint32_t minimum = 0;
    if ((c & 0xE0U) == 0xC0U) {
      length = 2;
      cp = c & 0x1FU;
      minimum = 0x80;
    } else if ((c & 0xF0U) == 0xE0U) {
      length = 3;
      cp = c & 0x0FU;
      minimum = 0x800;
    } else if ((c & 0xF8U) == 0xF0U) {
      length = 4;
      cp = c & 0x07U;
      minimum = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0U) != 0x80U) return false;
      cp = (cp << 6) | (d & 0x3FU);
    }
    if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

// In a valid document every backslash starts an escape, so a linear walk finds
// the escaped UTF-16 surrogates.
bool has_surrogate_escape(std::string_view text) {
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '\\') continue;
    if (text[i + 1] == 'u' && i + 5 < text.size()) {
      unsigned unit = 0;
      std::from_chars(text.data() + i + 2, text.data() + i + 6, unit, 16);
      if (unit >= 0xD800 && unit <= 0xDFFF) return true;
      i += 5;
    } else {
      ++i;
    }
  }
  return false;
}

// Nesting depth of a valid document.
unsigned nesting(std::string_view text) {
  unsigned depth = 0;
  unsigned deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string_view slice(std::string_view text, span s) { return text.substr(s.begin, s.size()); }

bool valid(std::string_view text, unsigned max_depth = unlimited_depth) {
  scan_error error;
  return validate(text, error, max_depth);
}

void check_string_round_trip(std::string_view s) {
  const std::string encoded = encode_string(s);
  FUZZ_CHECK(valid(encoded));
  const std::optional<std::string> decoded = decode_string(encoded);
  FUZZ_CHECK(decoded.has_value());
  FUZZ_CHECK(reference_utf8_valid(*decoded));
  FUZZ_CHECK((*decoded == s) == reference_utf8_valid(s));
}

void check_int64(std::string_view token) {
  const std::optional<std::int64_t> ours = to_int64(token);
  if (ours) FUZZ_CHECK(std::to_string(*ours) == token || (token == "-0" && *ours == 0));
  std::int64_t parsed = 0;
  const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), parsed);
  if (ec == std::errc{} && ptr == token.data() + token.size() && std::to_string(parsed) == token) {
    FUZZ_CHECK(ours == parsed);
  }
}

value_kind expected_kind(char first) {
  switch (first) {
    case '{': return value_kind::object;
    case '[': return value_kind::array;
    case '"': return value_kind::string;
    case 't': return value_kind::boolean_true;
    case 'f': return value_kind::boolean_false;
    case 'n': return value_kind::null;
    default: return value_kind::number;
  }
}

boost::json::value boost_parse(std::string_view text, boost::json::error_code& ec) {
  boost::json::parse_options options;
  options.max_depth = unlimited_depth;
  return boost::json::parse(text, ec, {}, options);
}

// Equality of two parsed values, with doubles equal within a few ulps:
// Boost.JSON 1.81's fast (not correctly rounded) number parsing can give a
// long mantissa a different last bit depending on where the number sits in
// the text it parses, e.g. 80.80200000000037603701 alone and inside an object.
bool same_value(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double();
    const double y = b.get_double();
    return x == y ||
           std::fabs(x - y) <= 4 * std::numeric_limits<double>::epsilon() * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.is_array() && b.is_array()) {
    const auto& p = a.get_array();
    const auto& q = b.get_array();
    if (p.size() != q.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!same_value(p[i], q[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto& p = a.get_object();
    const auto& q = b.get_object();
    if (p.size() != q.size()) return false;
    for (const auto& entry : p) {
      const boost::json::value* other = q.if_contains(entry.key());
      if (other == nullptr || !same_value(entry.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

// Edits the object the way the gateway does and checks the result.
void check_edits(std::string_view text, const object_scan& scan) {
  constexpr std::string_view new_key = R"(gw\"fuzz)";
  const std::string new_value = R"({"k":[true,false,null,-1.5e3,"\u00e9"]})";
  std::vector<edit> edits;
  edits.push_back(set_member(text, scan, new_key, new_value));
  std::string_view replaced_key;
  if (!scan.members.empty() && scan.members.front().key != new_key) {
    replaced_key = scan.members.front().key;
    edits.push_back(set_member(text, scan, replaced_key, R"("v")"));
  }
  const std::string result = splice(text, edits);
  object_scan after;
  scan_error error;
  FUZZ_CHECK(scan_object(result, after, error, unlimited_depth));
  const member* inserted = after.find(new_key);
  FUZZ_CHECK(inserted != nullptr && slice(result, inserted->value_span) == new_value);
  if (!replaced_key.empty()) {
    const member* replaced = after.find(replaced_key);
    FUZZ_CHECK(replaced != nullptr && slice(result, replaced->value_span) == R"("v")");
  }
  const bool existed = scan.find(new_key) != nullptr;
  FUZZ_CHECK(after.members.size() == scan.members.size() + (existed ? 0 : 1));

  // Nested edit inside the last object-valued member, shifted to outer
  // offsets, as openai_adapter does for stream_options.
  for (auto it = scan.members.rbegin(); it != scan.members.rend(); ++it) {
    if (it->kind != value_kind::object) continue;
    const std::string_view inner = slice(text, it->value_span);
    object_scan inner_scan;
    FUZZ_CHECK(scan_object(inner, inner_scan, error, unlimited_depth));
    edit e = set_member(inner, inner_scan, "include_usage", "true");
    e.at.begin += it->value_span.begin;
    e.at.end += it->value_span.begin;
    const std::string nested = splice(text, {e});
    FUZZ_CHECK(valid(nested));
    break;
  }
  FUZZ_CHECK(splice(text, {}) == text);
}

void check_object(std::string_view text, const object_scan& scan, bool boost_ok,
                  const boost::json::value& boost_value) {
  const std::size_t first = text.find_first_not_of(whitespace);
  FUZZ_CHECK(scan.object_span.begin == first);
  FUZZ_CHECK(scan.object_span.end >= first + 2 && text[scan.object_span.end - 1] == '}');
  FUZZ_CHECK(text.find_first_not_of(whitespace, scan.object_span.end) == std::string_view::npos);

  std::map<std::string, const member*> last_by_key;  // decoded key -> last member, as parsers see it
  std::size_t previous_end = scan.object_span.begin + 1;
  for (const member& m : scan.members) {
    FUZZ_CHECK(m.key_span.begin >= previous_end);
    FUZZ_CHECK(m.key_span.end <= m.value_span.begin);
    FUZZ_CHECK(m.value_span.begin < m.value_span.end);
    FUZZ_CHECK(m.value_span.end < scan.object_span.end);
    previous_end = m.value_span.end;
    const std::string_view key_text = slice(text, m.key_span);
    FUZZ_CHECK(key_text.size() == m.key.size() + 2 && key_text.substr(1, m.key.size()) == m.key);
    const std::string_view value_text = slice(text, m.value_span);
    FUZZ_CHECK(valid(value_text));
    FUZZ_CHECK(m.kind == expected_kind(value_text.front()));
    const std::optional<std::string> key = decode_string(key_text);
    FUZZ_CHECK(key.has_value() && reference_utf8_valid(*key));
    last_by_key[*key] = &m;
    const member* found = scan.find(m.key);
    FUZZ_CHECK(found != nullptr && found->key == m.key && found >= &m);
    if (m.kind == value_kind::string) {
      const std::optional<std::string> value = decode_string(value_text);
      FUZZ_CHECK(value.has_value());
      check_string_round_trip(*value);
    } else if (m.kind == value_kind::number) {
      check_int64(value_text);
    }
  }

  if (!boost_ok) return;
  FUZZ_CHECK(boost_value.is_object());
  const boost::json::object& object = boost_value.get_object();
  FUZZ_CHECK(object.size() == last_by_key.size());
  for (const auto& [key, m] : last_by_key) {
    const boost::json::value* expected = object.if_contains(key);
    FUZZ_CHECK(expected != nullptr);
    boost::json::error_code ec;
    const boost::json::value ours = boost_parse(slice(text, m->value_span), ec);
    FUZZ_CHECK(!ec && same_value(ours, *expected));
    if (expected->is_string()) {
      const std::optional<std::string> decoded = decode_string(slice(text, m->value_span));
      FUZZ_CHECK(decoded.has_value() && *decoded == std::string_view(expected->get_string()));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  scan_error error;
  const bool ours = validate(text, error, unlimited_depth);
  if (!ours) FUZZ_CHECK(error.offset <= size && !error.message.empty());

  boost::json::error_code ec;
  const boost::json::value boost_value = boost_parse(text, ec);
  const bool boost_ok = !ec;
  if (boost_ok) FUZZ_CHECK(ours);
  if (ours && !boost_ok) FUZZ_CHECK(has_surrogate_escape(text) || ec == boost::json::error::exponent_overflow);

  if (ours) {
    const unsigned depth = nesting(text);
    FUZZ_CHECK(valid(text, depth));
    if (depth > 0) FUZZ_CHECK(!valid(text, depth - 1));
  }

  object_scan scan;
  scan_error object_error;
  const bool is_object = scan_object(text, scan, object_error, unlimited_depth);
  const std::size_t first = text.find_first_not_of(whitespace);
  FUZZ_CHECK(is_object == (ours && text[first] == '{'));
  if (is_object) {
    check_object(text, scan, boost_ok, boost_value);
    check_edits(text, scan);
  } else {
    FUZZ_CHECK(scan.members.empty());
    FUZZ_CHECK(object_error.offset <= size && !object_error.message.empty());
  }

  // scan_array: accepts exactly the valid arrays; each element is a value
  // of its own, and with Boost's reading, as many as Boost counts.
  array_scan array;
  scan_error array_error;
  const bool is_array = scan_array(text, array, array_error, unlimited_depth);
  FUZZ_CHECK(is_array == (ours && text[first] == '['));
  if (is_array) {
    for (const element& e : array.elements) FUZZ_CHECK(valid(text.substr(e.value_span.begin, e.value_span.size())));
    if (boost_ok) FUZZ_CHECK(boost_value.is_array() && boost_value.as_array().size() == array.elements.size());
  } else {
    FUZZ_CHECK(array.elements.empty());
    FUZZ_CHECK(array_error.offset <= size && !array_error.message.empty());
  }

  check_string_round_trip(text);
  check_int64(text);
  if (text.size() >= 2 && text.front() == '"') {
    const std::optional<std::string> decoded = decode_string(text);
    // A valid text starting with '"' is one string token plus optional
    // whitespace; decode_string takes the bare token only.
    FUZZ_CHECK(decoded.has_value() == (valid(text) && text.back() == '"'));
    if (decoded) FUZZ_CHECK(reference_utf8_valid(*decoded));
  }
  return 0;
}

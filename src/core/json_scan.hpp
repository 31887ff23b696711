#pragma once
// A validating, non-allocating scanner for the top level of a JSON object.
//
// Why: the gateway forwards request and response bytes to OpenAI-compatible
// providers untouched except for a few members (`model`, `stream_options`).
// Building a DOM and serialising it again would cost allocations and change
// the client's bytes, so instead we validate the whole text once and record
// where each top-level member's key and value sit; edits are then byte
// splices (see splice()).
//
// Thread safety: stateless free functions; results point into the caller's text.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

namespace gatewayz::json_scan {

enum class value_kind : std::uint8_t { object, array, string, number, boolean_true, boolean_false, null };

// [begin, end) byte offsets into the scanned text.
struct span {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const { return end - begin; }
};

struct member {
  std::string_view key;  // raw key text between the quotes, escapes NOT decoded
  span key_span;         // includes the quotes
  span value_span;       // the value's text (strings include their quotes)
  value_kind kind;
};

struct object_scan {
  // In document order; duplicates kept. Inline up to 16: requests and
  // responses have a handful of top-level members, and a scan per request
  // then allocates nothing.
  boost::container::small_vector<member, 16> members;
  span object_span;  // '{' .. '}' inclusive
  // Returns the LAST member with this (raw) key, as JSON parsers do, or nullptr.
  const member* find(std::string_view raw_key) const;
};

struct element {
  span value_span;  // the element's text (strings include their quotes)
  value_kind kind;
};

struct array_scan {
  // In document order. Inline up to 8 (a response's choices, a few
  // content blocks): a scan then allocates nothing.
  boost::container::small_vector<element, 8> elements;
  span array_span;  // '[' .. ']' inclusive
};

struct scan_error {
  std::size_t offset = 0;
  std::string message;  // e.g. "unexpected character 'x'"
};

// Validates `text` as exactly one JSON object (surrounding whitespace allowed)
// per RFC 8259, with nesting limited to max_depth, and lists its top-level
// members. Invalid UTF-8 inside strings is rejected (overlongs, UTF-8-encoded
// surrogates, bytes above F4); escaped lone surrogates (a \u escape of D800) are
// accepted because the RFC grammar allows them (see decode_string). The
// scanner is iterative, so depth is bounded by max_depth, never by the stack;
// the first 4096 levels are tracked without allocating. On failure returns
// false, fills `error` and leaves `out.members` empty. `out.members` is
// cleared first and reused (no reallocation once its capacity suffices).
bool scan_object(std::string_view text, object_scan& out, scan_error& error, unsigned max_depth = 128);

// scan_object for a JSON array: validates `text` as exactly one array and
// lists its elements. Same rules, limits and reuse of `out`.
bool scan_array(std::string_view text, array_scan& out, scan_error& error, unsigned max_depth = 128);

// Validates `text` as any single JSON value (same rules as scan_object).
bool validate(std::string_view text, scan_error& error, unsigned max_depth = 128);

// Decodes a JSON string token (with its quotes) into UTF-8. nullopt if the
// token is malformed (same rules as validate). A \u escape that is a lone
// surrogate, or a high surrogate not followed by an escaped low one, decodes
// to U+FFFD, so the result is always valid UTF-8.
std::optional<std::string> decode_string(std::string_view quoted);

// Encodes `text` as a JSON string token, with quotes and escapes: '"', '\\'
// and control characters are escaped (\n, \t, ... or \u00XX); everything
// else, including valid UTF-8, is copied. Each byte of invalid UTF-8 becomes
// U+FFFD so the result always passes validate().
std::string encode_string(std::string_view text);

// Whether `text` is well-formed UTF-8, by the rule encode_string applies.
bool valid_utf8(std::string_view text);

// `text` with each byte of ill-formed UTF-8 replaced by U+FFFD, exactly as
// encode_string replaces it: for other encodings of the same strings (OTLP
// protobuf) that must agree with the JSON ones.
std::string sanitize_utf8(std::string_view text);

// Parses a JSON number token into an int64 if it is an integer in range
// (grammar -?(0|[1-9][0-9]*), nothing else); nullopt for fractions,
// exponents, malformed tokens and overflow.
std::optional<std::int64_t> to_int64(std::string_view number_token);

// One byte-level edit: replace text[at.begin, at.end) with `replacement`
// (an empty span inserts).
struct edit {
  span at;
  std::string replacement;
};

// Applies non-overlapping edits (any order) to `text` and returns the result.
// Several inserts at one position apply in the order given. Throws
// std::invalid_argument if two edits overlap or a span lies outside `text`.
std::string splice(std::string_view text, std::vector<edit> edits);

// Builds the edit that sets top-level member `raw_key` to `value_json`:
// replaces the existing value (last occurrence) or inserts `"raw_key":value_json`
// before the closing brace, adding a comma when the object is not empty (the
// insert goes right after the last member's value, so whitespace before '}'
// is kept). `scan` must come from a successful scan_object(text); raw_key must
// be valid string content (escaped as in JSON, without quotes) and value_json a
// valid JSON value, else the result is not valid JSON. Throws
// std::invalid_argument if `scan` obviously does not describe `text`.
edit set_member(std::string_view text, const object_scan& scan, std::string_view raw_key, std::string value_json);

}  // namespace gatewayz::json_scan

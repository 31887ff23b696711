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
  std::vector<member> members;  // in document order; duplicates kept
  span object_span;             // '{' .. '}' inclusive
  // Returns the LAST member with this (raw) key, as JSON parsers do, or nullptr.
  const member* find(std::string_view raw_key) const;
};

struct scan_error {
  std::size_t offset = 0;
  std::string message;  // e.g. "unexpected character 'x'"
};

// Validates `text` as exactly one JSON object (surrounding whitespace allowed)
// per RFC 8259, with nesting limited to max_depth, and lists its top-level
// members. Invalid UTF-8 inside strings is rejected. On failure returns false
// and fills `error`. `out.members` is cleared first and reused (no reallocation
// once its capacity suffices).
bool scan_object(std::string_view text, object_scan& out, scan_error& error, unsigned max_depth = 128);

// Validates `text` as any single JSON value (same rules as scan_object).
bool validate(std::string_view text, scan_error& error, unsigned max_depth = 128);

// Decodes a JSON string token (with its quotes) into UTF-8. nullopt if malformed.
std::optional<std::string> decode_string(std::string_view quoted);

// Encodes `text` as a JSON string token, with quotes and escapes.
std::string encode_string(std::string_view text);

// Parses a JSON number token into an int64 if it is an integer in range.
std::optional<std::int64_t> to_int64(std::string_view number_token);

// One byte-level edit: replace text[at.begin, at.end) with `replacement`
// (an empty span inserts).
struct edit {
  span at;
  std::string replacement;
};

// Applies non-overlapping edits (any order) to `text` and returns the result.
std::string splice(std::string_view text, std::vector<edit> edits);

// Builds the edit that sets top-level member `raw_key` to `value_json`:
// replaces the existing value (last occurrence) or inserts `"raw_key":value_json`
// before the closing brace, adding a comma when the object is not empty.
edit set_member(std::string_view text, const object_scan& scan, std::string_view raw_key,
                std::string value_json);

}  // namespace gatewayz::json_scan

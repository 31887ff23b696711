#include "core/json_scan.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace gatewayz::json_scan {

namespace {

using byte_ptr = const unsigned char*;

// Container kinds of the open nesting levels, one bit per level (1 = object).
// The first levels live on the stack so ordinary documents never allocate;
// only a caller that raises max_depth above inline_levels and then feeds a
// document that deep pays for heap growth. Depth is tracked explicitly rather
// than by recursion so `[[[[...` of any length cannot overflow the C++ stack.
class level_stack {
 public:
  static constexpr unsigned inline_levels = 4096;

  explicit level_stack(unsigned max_depth) : max_depth_(max_depth) {}

  unsigned depth() const { return depth_; }

  // False when opening another level would exceed max_depth.
  bool push(bool is_object) {
    if (depth_ >= max_depth_) return false;
    const unsigned index = depth_;
    if (index < inline_levels) {
      // Levels open in order, so a word's first level (bit 0) comes first
      // and sets the whole word: the array needs no zeroing per scan.
      std::uint64_t& word = inline_[index / 64];
      if (index % 64 == 0) {
        word = is_object ? 1U : 0U;
      } else {
        set_bit(word, index % 64, is_object);
      }
    } else {
      const unsigned over = index - inline_levels;
      if (over / 64 >= overflow_.size()) overflow_.push_back(0);
      set_bit(overflow_[over / 64], over % 64, is_object);
    }
    ++depth_;
    return true;
  }

  void pop() { --depth_; }

  // Kind of the innermost open level; depth() must be > 0.
  bool top_is_object() const {
    const unsigned index = depth_ - 1;
    const std::uint64_t word = index < inline_levels ? inline_[index / 64] : overflow_[(index - inline_levels) / 64];
    return ((word >> (index % 64)) & 1U) != 0;
  }

 private:
  static void set_bit(std::uint64_t& word, unsigned bit, bool value) {
    const std::uint64_t mask = std::uint64_t{1} << bit;
    word = value ? (word | mask) : (word & ~mask);
  }

  unsigned max_depth_;
  unsigned depth_ = 0;
  // Deliberately not zeroed (512 bytes per scan, most scans are tiny): push()
  // writes each word whole before any of its bits is read.
  std::array<std::uint64_t, inline_levels / 64> inline_;
  std::vector<std::uint64_t> overflow_;
};

constexpr std::uint64_t repeat_byte(unsigned char b) { return 0x0101010101010101ULL * b; }

// True if any of the 8 bytes in `w` needs the slow path inside a string:
// '"', '\\', a control byte (< 0x20) or a non-ASCII byte. May report false
// positives next to a real hit (borrow propagation), never false negatives,
// which is all the fast path needs.
inline bool has_special_byte(std::uint64_t w) {
  constexpr std::uint64_t ones = repeat_byte(0x01);
  constexpr std::uint64_t highs = repeat_byte(0x80);
  const std::uint64_t quote = w ^ repeat_byte('"');
  const std::uint64_t backslash = w ^ repeat_byte('\\');
  const std::uint64_t control = (w - repeat_byte(0x20)) & ~w;
  const std::uint64_t quote_zero = (quote - ones) & ~quote;
  const std::uint64_t backslash_zero = (backslash - ones) & ~backslash;
  return ((w | control | quote_zero | backslash_zero) & highs) != 0;
}

inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

inline bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

inline unsigned hex_value(unsigned char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a') return c - 'a' + 10U;
  return c - 'A' + 10U;
}

inline bool is_continuation(unsigned char c) { return (c & 0xC0U) == 0x80U; }

// Length of the well-formed UTF-8 sequence starting at p (lead byte >= 0x80),
// or 0 if it is ill-formed per Unicode Table 3-7: that rejects stray
// continuation bytes, overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16
// surrogates encoded as UTF-8 (ED A0..BF) and anything above U+10FFFF.
inline std::size_t utf8_sequence_length(byte_ptr p, byte_ptr end) {
  const unsigned char lead = p[0];
  const auto available = static_cast<std::size_t>(end - p);
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return available >= 2 && is_continuation(p[1]) ? 2 : 0;
  if (lead < 0xF0) {
    if (available < 3) return 0;
    const unsigned char second = p[1];
    const unsigned char low = lead == 0xE0 ? 0xA0 : 0x80;
    const unsigned char high = lead == 0xED ? 0x9F : 0xBF;
    return second >= low && second <= high && is_continuation(p[2]) ? 3 : 0;
  }
  if (lead < 0xF5) {
    if (available < 4) return 0;
    const unsigned char second = p[1];
    const unsigned char low = lead == 0xF0 ? 0x90 : 0x80;
    const unsigned char high = lead == 0xF4 ? 0x8F : 0xBF;
    return second >= low && second <= high && is_continuation(p[2]) && is_continuation(p[3]) ? 4 : 0;
  }
  return 0;
}

inline byte_ptr skip_whitespace(byte_ptr p, byte_ptr end) {
  // Whitespace is all at or below ' ', and most tokens follow none: one
  // comparison rejects the usual next byte.
  while (p != end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  return p;
}

std::string describe_byte(unsigned char c) {
  static constexpr char digits[] = "0123456789abcdef";
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  return std::string("byte 0x") + digits[c >> 4] + digits[c & 0xF];
}

// Records a failure; returns nullptr so scanners can `return fail(...)`.
byte_ptr fail(scan_error& error, byte_ptr base, byte_ptr at, std::string message) {
  error.offset = static_cast<std::size_t>(at - base);
  error.message = std::move(message);
  return nullptr;
}

byte_ptr fail_unexpected(scan_error& error, byte_ptr base, byte_ptr at, byte_ptr end) {
  if (at == end) return fail(error, base, at, "unexpected end of input");
  return fail(error, base, at, "unexpected character " + describe_byte(*at));
}

// Scans a string token; `p` points at the opening quote. Returns the position
// just past the closing quote, or nullptr after filling `error`. Inlined into
// the scanner: a request or response is mostly short strings, where the
// call itself was a good part of the cost.
[[gnu::always_inline]] inline byte_ptr scan_string(byte_ptr p, byte_ptr end, byte_ptr base, scan_error& error) {
  const byte_ptr open = p;
  ++p;
  for (;;) {
    // Plain ASCII runs are the common case (keys, model names, most text):
    // test 16 (SSE2) or 8 bytes per step and only fall to the byte loop at
    // a quote, a backslash, a control byte or a non-ASCII byte.
    bool at_special = false;
#if defined(__SSE2__)
    while (end - p >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      // Signed compare: bytes 0x80-0xFF are negative, so "< 0x20" also
      // catches non-ASCII, which the byte loop validates as UTF-8.
      const __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                       _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
      const int mask = _mm_movemask_epi8(special);
      if (mask != 0) {
        p += std::countr_zero(static_cast<unsigned>(mask));
        at_special = true;
        break;
      }
      p += 16;
    }
#endif
    // The tail the 16-byte steps cannot take (and, without SSE2, all of it).
    while (!at_special && end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, sizeof word);
      if (has_special_byte(word)) break;
      p += 8;
    }
    if (p == end) return fail(error, base, open, "unterminated string");
    const unsigned char c = *p;
    if (c == '"') return p + 1;
    if (c == '\\') {
      if (end - p < 2) return fail(error, base, open, "unterminated string");
      switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': p += 2; break;
        case 'u':
          // Lone surrogates are grammatical per RFC 8259 section 7, so the
          // validator accepts them; decode_string() maps them to U+FFFD.
          if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) || !is_hex(p[5])) {
            return fail(error, base, p, "invalid \\u escape (needs 4 hex digits)");
          }
          p += 6;
          break;
        default: return fail(error, base, p, "invalid escape sequence");
      }
      continue;
    }
    if (c < 0x20) return fail(error, base, p, "unescaped control character in string");
    if (c < 0x80) {
      ++p;
      continue;
    }
    const std::size_t length = utf8_sequence_length(p, end);
    if (length == 0) return fail(error, base, p, "invalid UTF-8 in string");
    p += length;
  }
}

// Scans a number token per RFC 8259 section 6; `p` points at '-' or a digit.
byte_ptr scan_number(byte_ptr p, byte_ptr end, byte_ptr base, scan_error& error) {
  if (*p == '-') ++p;
  if (p == end) return fail(error, base, p, "unexpected end of input in number");
  if (*p == '0') {
    ++p;
    if (p != end && is_digit(*p)) return fail(error, base, p, "leading zeros are not allowed");
  } else if (is_digit(*p)) {
    while (p != end && is_digit(*p)) ++p;
  } else {
    return fail(error, base, p, "expected digit in number");
  }
  if (p != end && *p == '.') {
    ++p;
    if (p == end || !is_digit(*p)) return fail(error, base, p, "expected digit after decimal point");
    while (p != end && is_digit(*p)) ++p;
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p != end && (*p == '+' || *p == '-')) ++p;
    if (p == end || !is_digit(*p)) return fail(error, base, p, "expected digit in exponent");
    while (p != end && is_digit(*p)) ++p;
  }
  return p;
}

byte_ptr scan_literal(byte_ptr p, byte_ptr end, byte_ptr base, scan_error& error, std::string_view word) {
  if (static_cast<std::size_t>(end - p) < word.size() || std::memcmp(p, word.data(), word.size()) != 0) {
    return fail(error, base, p, "invalid literal");
  }
  return p + word.size();
}

value_kind kind_of(unsigned char first) {
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

// The one scanner behind validate() and scan_object(). With `record` set, the
// top-level value must be an object and its members go to `out`; without it
// the recording branches compile away and any value is accepted.
//
// Shape: an iterative push-down automaton. The outer loop parses one value at
// `p`; scalars and empty containers complete immediately, a non-empty
// container pushes a level and loops for its first element. The inner loop
// runs after each completed value and consumes ',' / closing brackets.
//
// Longer than the usual function limit on purpose: it is one state machine
// whose states share the same locals (the cursor, the input's bounds, the
// level stack, the members being recorded). Split into functions, those
// would be passed around and written back on every byte or token.
// What scan() records besides validating: nothing, the top-level members
// of an object (into `object`), or the elements of an array (into `array`).
enum class record_mode : std::uint8_t { none, object, array };

template <record_mode mode>
bool scan(std::string_view text, unsigned max_depth, scan_error& error, object_scan* object, array_scan* array) {
  const auto base = reinterpret_cast<byte_ptr>(text.data());
  const byte_ptr end = base + text.size();
  level_stack levels(max_depth);
  // Forgets what was recorded: a failed scan lists nothing.
  const auto clear = [&] {
    if constexpr (mode == record_mode::object) object->members.clear();
    if constexpr (mode == record_mode::array) array->elements.clear();
  };

  byte_ptr p = skip_whitespace(base, end);
  if constexpr (mode != record_mode::none) {
    clear();
    constexpr char open = mode == record_mode::object ? '{' : '[';
    if (p == end || *p != open) {
      fail(error, base, p,
           p == end ? "unexpected end of input"
                    : (mode == record_mode::object ? "expected a JSON object" : "expected a JSON array"));
      return false;
    }
    (mode == record_mode::object ? object->object_span : array->array_span).begin = static_cast<std::size_t>(p - base);
  }

  // Parses `"key" ws ':' ws` with p at the key's opening quote (or whatever
  // is there instead); returns the position of the member's value.
  const auto scan_key = [&](byte_ptr at) -> byte_ptr {
    if (at == end) return fail(error, base, at, "unexpected end of input, expected string key");
    if (*at != '"') return fail(error, base, at, "expected string key, got " + describe_byte(*at));
    const byte_ptr key_end = scan_string(at, end, base, error);
    if (key_end == nullptr) return nullptr;
    if constexpr (mode == record_mode::object) {
      if (levels.depth() == 1) {
        member& m = object->members.emplace_back();
        m.key = text.substr(static_cast<std::size_t>(at - base) + 1, static_cast<std::size_t>(key_end - at) - 2);
        m.key_span = {static_cast<std::size_t>(at - base), static_cast<std::size_t>(key_end - base)};
      }
    }
    byte_ptr q = skip_whitespace(key_end, end);
    if (q == end || *q != ':') {
      if (q == end) return fail(error, base, q, "unexpected end of input, expected ':'");
      return fail(error, base, q, "expected ':' after object key, got " + describe_byte(*q));
    }
    return skip_whitespace(q + 1, end);
  };

  for (;;) {
    // ---- parse one value at p (leading whitespace already skipped)
    if (p == end) {
      fail(error, base, p, "unexpected end of input, expected a value");
      break;
    }
    if (levels.depth() == 1) {
      if constexpr (mode == record_mode::object) {
        member& m = object->members.back();
        m.value_span.begin = static_cast<std::size_t>(p - base);
        m.kind = kind_of(*p);
      }
      if constexpr (mode == record_mode::array) {
        element& e = array->elements.emplace_back();
        e.value_span.begin = static_cast<std::size_t>(p - base);
        e.kind = kind_of(*p);
      }
    }
    const unsigned char c = *p;
    if (c == '{' || c == '[') {
      const bool is_object = c == '{';
      if (!levels.push(is_object)) {
        fail(error, base, p, "nesting deeper than " + std::to_string(max_depth) + " levels");
        break;
      }
      p = skip_whitespace(p + 1, end);
      if (p != end && *p == (is_object ? '}' : ']')) {
        ++p;
        levels.pop();
      } else {
        if (is_object) {
          p = scan_key(p);
          if (p == nullptr) break;
        }
        continue;  // parse the first element / member value
      }
    } else if (c == '"') {
      p = scan_string(p, end, base, error);
    } else if (c == '-' || is_digit(c)) {
      p = scan_number(p, end, base, error);
    } else if (c == 't') {
      p = scan_literal(p, end, base, error, "true");
    } else if (c == 'f') {
      p = scan_literal(p, end, base, error, "false");
    } else if (c == 'n') {
      p = scan_literal(p, end, base, error, "null");
    } else {
      fail_unexpected(error, base, p, end);
      break;
    }
    if (p == nullptr) break;

    // ---- a value just ended at p; close containers until one wants more
    bool need_value = false;
    while (!need_value) {
      if (levels.depth() == 0) {
        if constexpr (mode == record_mode::object) object->object_span.end = static_cast<std::size_t>(p - base);
        if constexpr (mode == record_mode::array) array->array_span.end = static_cast<std::size_t>(p - base);
        const byte_ptr rest = skip_whitespace(p, end);
        if (rest != end) {
          fail(error, base, rest, "trailing characters after JSON value: " + describe_byte(*rest));
          clear();
          return false;
        }
        return true;
      }
      if (levels.depth() == 1) {
        if constexpr (mode == record_mode::object)
          object->members.back().value_span.end = static_cast<std::size_t>(p - base);
        if constexpr (mode == record_mode::array)
          array->elements.back().value_span.end = static_cast<std::size_t>(p - base);
      }
      p = skip_whitespace(p, end);
      const bool in_object = levels.top_is_object();
      if (p != end && *p == ',') {
        p = skip_whitespace(p + 1, end);
        if (in_object) {
          p = scan_key(p);
          if (p == nullptr) break;
        }
        need_value = true;
      } else if (p != end && *p == (in_object ? '}' : ']')) {
        ++p;
        levels.pop();
      } else {
        if (p == end) {
          fail(error, base, p, "unexpected end of input");
        } else {
          fail(error, base, p,
               std::string(in_object ? "expected ',' or '}'" : "expected ',' or ']'") + ", got " + describe_byte(*p));
        }
        break;
      }
    }
    if (!need_value) break;  // the inner loop failed
  }
  clear();
  return false;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr std::uint32_t replacement_character = 0xFFFD;

// Reads the 4 hex digits after "\u" at p (p points at the backslash); the
// caller has validated them.
std::uint32_t read_u_escape(byte_ptr p) {
  return (hex_value(p[2]) << 12) | (hex_value(p[3]) << 8) | (hex_value(p[4]) << 4) | hex_value(p[5]);
}

bool is_high_surrogate(std::uint32_t u) { return u >= 0xD800 && u <= 0xDBFF; }
bool is_low_surrogate(std::uint32_t u) { return u >= 0xDC00 && u <= 0xDFFF; }

}  // namespace

const member* object_scan::find(std::string_view raw_key) const {
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    if (it->key == raw_key) return &*it;
  }
  return nullptr;
}

bool scan_object(std::string_view text, object_scan& out, scan_error& error, unsigned max_depth) {
  return scan<record_mode::object>(text, max_depth, error, &out, nullptr);
}

bool scan_array(std::string_view text, array_scan& out, scan_error& error, unsigned max_depth) {
  return scan<record_mode::array>(text, max_depth, error, nullptr, &out);
}

bool validate(std::string_view text, scan_error& error, unsigned max_depth) {
  return scan<record_mode::none>(text, max_depth, error, nullptr, nullptr);
}

std::optional<std::string> decode_string(std::string_view quoted) {
  const auto base = reinterpret_cast<byte_ptr>(quoted.data());
  const byte_ptr end = base + quoted.size();
  scan_error ignored;
  if (quoted.empty() || quoted.front() != '"' || scan_string(base, end, base, ignored) != end) {
    return std::nullopt;
  }
  const std::string_view body = quoted.substr(1, quoted.size() - 2);
  std::string out;
  out.reserve(body.size());
  std::size_t i = 0;
  while (i < body.size()) {
    const std::size_t backslash = body.find('\\', i);
    if (backslash == std::string_view::npos) {
      out.append(body.substr(i));
      break;
    }
    out.append(body.substr(i, backslash - i));
    const auto at = reinterpret_cast<byte_ptr>(body.data()) + backslash;
    switch (at[1]) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        std::uint32_t unit = read_u_escape(at);
        std::size_t consumed = 6;
        if (is_high_surrogate(unit)) {
          // Validated text guarantees 6 readable bytes only for this escape;
          // check room for the partner explicitly.
          if (backslash + 12 <= body.size() && at[6] == '\\' && at[7] == 'u' &&
              is_low_surrogate(read_u_escape(at + 6))) {
            unit = 0x10000 + ((unit - 0xD800) << 10) + (read_u_escape(at + 6) - 0xDC00);
            consumed = 12;
          } else {
            unit = replacement_character;
          }
        } else if (is_low_surrogate(unit)) {
          unit = replacement_character;
        }
        append_utf8(out, unit);
        i = backslash + consumed;
        continue;
      }
      default:  // '"', '\\', '/' stand for themselves
        out += static_cast<char>(at[1]);
        break;
    }
    i = backslash + 2;
  }
  return out;
}

bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<byte_ptr>(text.data());
  const byte_ptr end = p + text.size();
  while (p != end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const std::size_t length = utf8_sequence_length(p, end);
    if (length == 0) return false;
    p += length;
  }
  return true;
}

std::string sanitize_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<byte_ptr>(text.data());
  const byte_ptr end = p + text.size();
  std::string out;
  out.reserve(text.size());
  while (p != end) {
    const std::size_t length = *p < 0x80 ? 1 : utf8_sequence_length(p, end);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++p;
      continue;
    }
    out.append(reinterpret_cast<const char*>(p), length);
    p += length;
  }
  return out;
}

std::string encode_string(std::string_view text) {
  static constexpr char hex_digits[] = "0123456789abcdef";
  const auto base = reinterpret_cast<byte_ptr>(text.data());
  const byte_ptr end = base + text.size();
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  byte_ptr run = base;  // start of bytes that can be copied verbatim
  byte_ptr p = base;
  const auto flush = [&] { out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run)); };
  while (p != end) {
    const unsigned char c = *p;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++p;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(p, end);
      if (length != 0) {
        p += length;
        continue;
      }
      // Invalid UTF-8 would make the output invalid JSON; substitute U+FFFD
      // for each offending byte, as WHATWG decoders do.
      flush();
      out += "\xEF\xBF\xBD";
      run = ++p;
      continue;
    }
    flush();
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += hex_digits[c >> 4];
        out += hex_digits[c & 0xF];
        break;
    }
    run = ++p;
  }
  flush();
  out += '"';
  return out;
}

std::optional<std::int64_t> to_int64(std::string_view number_token) {
  std::size_t i = 0;
  if (i < number_token.size() && number_token[i] == '-') ++i;
  if (i == number_token.size()) return std::nullopt;
  const auto digit = [&](std::size_t k) { return is_digit(static_cast<unsigned char>(number_token[k])); };
  if (number_token[i] == '0') {
    if (i + 1 != number_token.size()) return std::nullopt;  // "0" alone; no leading zeros, no fraction
  } else {
    for (std::size_t k = i; k < number_token.size(); ++k) {
      if (!digit(k)) return std::nullopt;
    }
  }
  std::int64_t value = 0;
  const char* first = number_token.data();
  const char* last = first + number_token.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || ptr != last) return std::nullopt;
  return value;
}

std::string splice(std::string_view text, std::vector<edit> edits) {
  for (const edit& e : edits) {
    if (e.at.begin > e.at.end || e.at.end > text.size()) {
      throw std::invalid_argument("json_scan::splice: edit span outside the text");
    }
  }
  // Stable, so several inserts at one position keep the caller's order; an
  // insert at p sorts before a replacement that starts at p.
  std::stable_sort(edits.begin(), edits.end(), [](const edit& a, const edit& b) {
    return a.at.begin != b.at.begin ? a.at.begin < b.at.begin : a.at.end < b.at.end;
  });
  std::size_t result_size = text.size();
  for (std::size_t k = 0; k < edits.size(); ++k) {
    if (k > 0 && edits[k].at.begin < edits[k - 1].at.end) {
      throw std::invalid_argument("json_scan::splice: overlapping edits");
    }
    result_size = result_size - edits[k].at.size() + edits[k].replacement.size();
  }
  std::string out;
  out.reserve(result_size);
  std::size_t copied = 0;
  for (const edit& e : edits) {
    out.append(text.substr(copied, e.at.begin - copied));
    out.append(e.replacement);
    copied = e.at.end;
  }
  out.append(text.substr(copied));
  return out;
}

edit set_member(std::string_view text, const object_scan& scan, std::string_view raw_key, std::string value_json) {
  // A scan of some other text would produce an edit that corrupts this one.
  if (scan.object_span.end == 0 || scan.object_span.end > text.size() || text[scan.object_span.end - 1] != '}') {
    throw std::invalid_argument("json_scan::set_member: scan does not describe this text");
  }
  if (const member* existing = scan.find(raw_key)) return {existing->value_span, std::move(value_json)};
  std::string inserted;
  inserted.reserve(raw_key.size() + value_json.size() + 4);
  std::size_t at = 0;
  if (scan.members.empty()) {
    at = scan.object_span.end - 1;  // the '}'
  } else {
    // Right after the last value, so whitespace before '}' stays where it was.
    at = scan.members.back().value_span.end;
    inserted += ',';
  }
  inserted += '"';
  inserted += raw_key;
  inserted += "\":";
  inserted += value_json;
  return {{at, at}, std::move(inserted)};
}

}  // namespace gatewayz::json_scan

// Events and their lines: JSON (one object per line) or text.
#include <array>
#include <cmath>
#include <ctime>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "logging/json_text.hpp"
#include "logging/log.hpp"

namespace gatewayz::logging {

event::field* event::next() { return count_ < max_fields ? &fields_[count_++] : nullptr; }

event& event::text(std::string_view key, std::string_view value) {
  if (auto* f = next()) {
    *f = field{};
    f->key = key;
    f->text = value;
  }
  return *this;
}

event& event::integer(std::string_view key, std::int64_t value) {
  if (auto* f = next()) {
    *f = field{};
    f->key = key;
    f->type = field::kind::integer;
    f->integer = value;
  }
  return *this;
}

event& event::number(std::string_view key, double value) {
  if (auto* f = next()) {
    *f = field{};
    f->key = key;
    f->type = field::kind::number;
    f->number = value;
  }
  return *this;
}

event& event::boolean(std::string_view key, bool value) {
  if (auto* f = next()) {
    *f = field{};
    f->key = key;
    f->type = field::kind::boolean;
    f->boolean = value;
  }
  return *this;
}

namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 when it is invalid
// (overlong forms, surrogates and code points past U+10FFFF included).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

}  // namespace

namespace detail {

// `text` as the inside of a JSON string: quotes, backslashes and control
// characters escaped; invalid UTF-8 replaced by U+FFFD so the line stays
// valid for every JSON parser (Loki's included).
void append_json_escaped(std::string_view text, std::string& out) {
  static constexpr char hex[] = "0123456789abcdef";
  // Bytes a JSON string can hold as they are: printable ASCII but '"' and
  // '\\' (DEL included, as JSON allows).
  static constexpr auto plain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    return t;
  }();
  std::size_t i = 0;
  while (i < text.size()) {
    // Runs of plain bytes are copied at once.
    std::size_t j = i;
    while (j < text.size() && plain[static_cast<unsigned char>(text[j])]) ++j;
    out.append(text.data() + i, j - i);
    if (j == text.size()) return;
    i = j;
    const auto c = static_cast<unsigned char>(text[i]);
    const auto escape = [&out](char e) {
      out.push_back('\\');
      out.push_back(e);
    };
    switch (c) {
      case '"': escape('"'); break;
      case '\\': escape('\\'); break;
      case '\n': escape('n'); break;
      case '\r': escape('r'); break;
      case '\t': escape('t'); break;
      default:
        if (c < 0x20) {
          out.append(std::string_view("\\u00"));
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else if (const auto n = utf8_sequence(text, i); n != 0) {
          out.append(text.substr(i, n));
          i += n;
          continue;
        } else {
          out.append(std::string_view("\xEF\xBF\xBD"));  // U+FFFD
        }
    }
    ++i;
  }
}

}  // namespace detail

namespace {

using detail::append_json_escaped;

// A text-format value: bare when it has no space, quote, '=' or control
// character, else JSON-quoted.
void append_text_value(std::string_view text, std::string& out) {
  bool bare = !text.empty();
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c >= 0x7F) {
      bare = false;
      break;
    }
  }
  if (bare) {
    out.append(text);
    return;
  }
  out.push_back('"');
  append_json_escaped(text, out);
  out.push_back('"');
}

void append_number(double value, std::string& out) {
  if (!std::isfinite(value)) {
    out.append("null");
    return;
  }
  // Compiled format: no format string parsed per value.
  fmt::format_to(std::back_inserter(out), FMT_COMPILE("{}"), value);
}

void append_integer(std::int64_t value, std::string& out) {
  const fmt::format_int digits(value);
  out.append(digits.data(), digits.size());
}

// "2026-12-07T02:04:06.123Z". The date and time of the current second are
// kept per thread, so most lines cost one clock read and no gmtime.
void append_timestamp(std::chrono::system_clock::time_point at, std::string& out) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(at.time_since_epoch()).count();
  const std::int64_t seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const int millis = static_cast<int>(ms - seconds * 1000);
  thread_local std::int64_t cached_second = -1;
  thread_local char cached[20] = {};
  if (seconds != cached_second) {
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::format_to_n(cached, sizeof cached, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = seconds;
  }
  out.append(cached, 19);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + millis / 100));
  out.push_back(static_cast<char>('0' + millis / 10 % 10));
  out.push_back(static_cast<char>('0' + millis % 10));
  out.push_back('Z');
}

void append_json_line(const event& e, std::chrono::system_clock::time_point at, std::string& out) {
  out.append("{\"timestamp\":\"");
  append_timestamp(at, out);
  out.append("\",\"level\":\"");
  out.append(to_string(e.severity()));
  out.append("\",\"message\":\"");
  append_json_escaped(e.message(), out);
  out.push_back('"');
  for (const auto& f : e) {
    out.append(",\"");
    append_json_escaped(f.key, out);
    out.append("\":");
    switch (f.type) {
      case event::field::kind::text:
        out.push_back('"');
        append_json_escaped(f.text, out);
        out.push_back('"');
        break;
      case event::field::kind::integer: append_integer(f.integer, out); break;
      case event::field::kind::number: append_number(f.number, out); break;
      case event::field::kind::boolean: out.append(f.boolean ? "true" : "false"); break;
    }
  }
  out.push_back('}');
}

void append_text_line(const event& e, std::chrono::system_clock::time_point at, std::string& out) {
  append_timestamp(at, out);
  out.push_back(' ');
  const auto name = to_string(e.severity());
  out.append(name);
  out.append(8 - name.size(), ' ');
  append_json_escaped(e.message(), out);  // one line whatever the message holds
  for (const auto& f : e) {
    out.push_back(' ');
    append_json_escaped(f.key, out);
    out.push_back('=');
    switch (f.type) {
      case event::field::kind::text: append_text_value(f.text, out); break;
      case event::field::kind::integer: append_integer(f.integer, out); break;
      case event::field::kind::number: append_number(f.number, out); break;
      case event::field::kind::boolean: out.append(f.boolean ? "true" : "false"); break;
    }
  }
}

}  // namespace

void format_line(const event& e, std::chrono::system_clock::time_point at, line_format format, std::string& out) {
  if (format == line_format::json) {
    append_json_line(e, at, out);
  } else {
    append_text_line(e, at, out);
  }
}

}  // namespace gatewayz::logging

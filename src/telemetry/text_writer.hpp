#pragma once
// detail::text_writer: the exposition's output buffer (private to the
// telemetry library; metrics.hpp only declares it).
//
// Appends to a std::string through a raw pointer: callers reserve() the most
// a run of writes can take, then write without per-append size checks.
// Writing past what was reserved is undefined. finish() trims the string to
// what was written. Not thread-safe; one scrape owns one writer.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace gatewayz::telemetry::detail {

class text_writer {
 public:
  // Longest outputs of count() and value().
  static constexpr std::size_t max_count = 20;
  static constexpr std::size_t max_value = 32;

  explicit text_writer(std::string& out) : out_(out), p_(out.data() + out.size()), end_(p_) {}
  text_writer(const text_writer&) = delete;
  text_writer& operator=(const text_writer&) = delete;

  void reserve(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
  }
  void put(char c) { *p_++ = c; }
  void put(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void count(std::uint64_t v) { p_ = std::to_chars(p_, p_ + max_count, v).ptr; }
  // Go's float rendering (see format_value in metrics.cpp), written in place.
  void value(double v) {
    if (std::isnan(v)) {
      put("NaN");
    } else if (std::isinf(v)) {
      put(v > 0 ? std::string_view("+Inf") : std::string_view("-Inf"));
    } else if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0 && !(v == 0 && std::signbit(v))) {
      // Most values are whole (counts, tokens, set gauges), and fmt prints a
      // whole double below 2^53 (< 1e16) as plain digits: the integer path
      // is the same bytes at a fraction of the cost. -0.0 stays with fmt ("-0").
      p_ = std::to_chars(p_, p_ + max_value, static_cast<std::int64_t>(v)).ptr;
    } else {
      p_ = fmt::format_to(p_, FMT_COMPILE("{}"), v);
    }
  }
  // The escaped text is at most twice as long.
  void escaped(std::string_view s) {
    for (const char c : s) {
      switch (c) {
        case '\\': put("\\\\"); break;
        case '\n': put("\\n"); break;
        case '"': put("\\\""); break;
        default: put(c);
      }
    }
  }
  // Three decimals; reserve max_fixed3 first: fmt spells 1e308 with 309 digits.
  static constexpr std::size_t max_fixed3 = 320;
  void fixed3(double v) { p_ = fmt::format_to(p_, FMT_COMPILE("{:.3f}"), v); }

  // Shrinks the string to what was written.
  void finish() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

 private:
  void grow(std::size_t n) {
    // resize() zero-fills what it adds, so grow by a cache-sized step (the
    // fill stays in cache right before being overwritten) rather than to
    // the full reserved capacity.
    constexpr std::size_t step = 64 * 1024;
    const auto used = static_cast<std::size_t>(p_ - out_.data());
    out_.resize(used + std::max(n, step));
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  char* p_;
  char* end_;
};

}  // namespace gatewayz::telemetry::detail

// Differential and property fuzzer for http/sse.
//
// Input layout: byte 0 picks max_event_bytes (< 0x80: 1 MiB, else 1..128 so
// the overflow path is reached), bytes 1 and 2 pick two split points, the
// rest is the event stream.
//
// Invariants: the stream fed whole, in three fuzzer-chosen pieces and (when
// short) one byte at a time produces identical event sequences, failure
// state and finish() result; all of them equal a deliberately naive
// whole-buffer reference parser written from the WHATWG rules; every raw is
// a non-empty, in-order slice of the stream ending in a line break.

#include "http/sse.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"

namespace {

using gatewayz::http::sse_event;
using gatewayz::http::sse_parser;

struct recorded {
  std::string event, data, id, raw;
  bool operator==(const recorded&) const = default;
};

struct outcome {
  std::vector<recorded> events;
  bool failed = false;    // parser.failed() at the end
  bool clean_end = true;  // finish() result
  bool operator==(const outcome&) const = default;
};

outcome run(const std::vector<std::string_view>& pieces, std::size_t limit) {
  sse_parser parser(limit);
  outcome out;
  const auto record = [&](const sse_event& e) {
    out.events.push_back({std::string(e.event), std::string(e.data), std::string(e.id), std::string(e.raw)});
  };
  bool feeds_ok = true;
  for (std::string_view piece : pieces) {
    const bool ok = parser.feed(piece, record);
    FUZZ_CHECK(ok == !parser.failed());
    if (!feeds_ok) FUZZ_CHECK(!ok);  // a failed parser stays failed
    feeds_ok = feeds_ok && ok;
  }
  out.clean_end = parser.finish(record);
  out.failed = parser.failed();
  if (!out.failed) FUZZ_CHECK(out.clean_end == !parser.has_partial_event());
  return out;
}

// Whole-buffer reference: split into lines, cut into blocks at blank lines,
// interpret fields. No incremental state, so no chunking bugs to share.
outcome reference(std::string_view s, std::size_t limit) {
  outcome out;
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  std::vector<std::string_view> lines;
  std::size_t block_start = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = pos;
    while (end < s.size() && s[end] != '\r' && s[end] != '\n') ++end;
    if (end == s.size()) break;  // last line has no terminator: incomplete
    std::size_t next = end + 1;
    if (s[end] == '\r' && next < s.size() && s[next] == '\n') ++next;
    const std::string_view line = s.substr(pos, end - pos);
    pos = next;
    if (!line.empty()) {
      lines.push_back(line);
      continue;
    }
    const std::string_view block = s.substr(block_start, next - block_start);
    block_start = next;
    if (block.size() > limit) {
      out.failed = true;
      out.clean_end = false;
      return out;
    }
    recorded event;
    bool has_field = false;
    int data_lines = 0;
    for (std::string_view l : lines) {
      if (l.front() == ':') continue;
      has_field = true;
      const std::size_t colon = l.find(':');
      const std::string_view name = l.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "data") {
        if (data_lines++ > 0) event.data += '\n';
        event.data += value;
      } else if (name == "event") {
        event.event = value;
      } else if (name == "id" && value.find('\0') == std::string_view::npos) {
        event.id = value;
      }
    }
    lines.clear();
    if (has_field) {
      event.raw = block;
      out.events.push_back(std::move(event));
    }
  }
  if (s.size() - block_start > limit) {
    out.failed = true;
    out.clean_end = false;
    return out;
  }
  out.clean_end = block_start == s.size();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::size_t limit = data[0] < 0x80 ? std::size_t{1} << 20 : std::size_t{data[0]} - 0x80 + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);
  const std::size_t cut_a = data[1] * stream.size() / 255;
  const std::size_t cut_b = cut_a + data[2] * (stream.size() - cut_a) / 255;

  const outcome whole = run({stream}, limit);
  FUZZ_CHECK(whole == reference(stream, limit));

  const outcome pieces =
      run({stream.substr(0, cut_a), stream.substr(cut_a, cut_b - cut_a), stream.substr(cut_b)}, limit);
  FUZZ_CHECK(pieces == whole);

  if (stream.size() <= 512) {
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
    FUZZ_CHECK(run(bytes, limit) == whole);
  }

  std::size_t search_from = 0;
  for (const recorded& e : whole.events) {
    FUZZ_CHECK(!e.raw.empty() && e.raw.size() <= limit);
    FUZZ_CHECK(e.raw.back() == '\n' || e.raw.back() == '\r');
    const std::size_t at = stream.find(e.raw, search_from);
    FUZZ_CHECK(at != std::string_view::npos);
    search_from = at + e.raw.size();
    FUZZ_CHECK(e.event.find_first_of("\r\n") == std::string::npos);
    FUZZ_CHECK(e.id.find_first_of("\r\n") == std::string::npos);
    FUZZ_CHECK(e.data.find('\r') == std::string::npos);
  }
  return 0;
}

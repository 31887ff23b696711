#pragma once
// Incremental parser for Server-Sent Events (text/event-stream), as sent by
// OpenAI (`data: {...}`) and Anthropic (`event: x` + `data: {...}`).
//
// Feed it bytes as they arrive, in chunks of any size; it reports each complete
// event once its terminating blank line is seen. Accepts \n, \r\n and \r line
// endings, ignores comment lines (":..."), strips one leading space after the
// colon, joins multi-line data with '\n'. An event larger than max_event_bytes
// is a protocol error (a hostile or broken upstream must not grow memory
// without bound).
//
// Where this differs from the WHATWG dispatch rules, on purpose: a block with
// fields but no data line (e.g. only `event: ping` or `id: 7`) is still
// reported, with empty data, so a proxy can forward it; `id` is the id of this
// event only (empty if the block has none), not the stream's last event id.
// Blocks of only comments or blank lines are not events and are skipped; a
// leading UTF-8 BOM is stripped. `retry:` and unknown fields are ignored
// apart from making the block an event.
//
// The result is independent of how the stream is split into chunks. One
// consequence: when the blank line ending an event is a bare '\r' that is the
// last byte fed so far, the event is reported only once the next byte shows
// whether a '\n' follows (which then belongs to `raw`), or on finish().
// \n streams never wait; \r\n streams only when a chunk ends between the two.
//
// Thread safety: one parser per stream; not shared.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace gatewayz::http {

struct sse_event {
  std::string_view event;  // "event:" field; empty if absent
  std::string_view data;   // "data:" lines joined with '\n'
  std::string_view id;     // "id:" field; empty if absent
  std::string_view raw;    // the event's exact bytes including its terminating blank line
};

class sse_parser {
 public:
  explicit sse_parser(std::size_t max_event_bytes = 8 * 1024 * 1024);

  // Consumes `bytes`; calls on_event for each event completed by them. The
  // views in sse_event are valid only during the callback. Returns false (and
  // stays failed) if an event exceeds max_event_bytes.
  bool feed(std::string_view bytes, const std::function<void(const sse_event&)>& on_event);

  // Call once when the stream ends: reports an event still held back for a
  // possible '\n' (see above). Returns true if the stream ended at an event
  // boundary, false if it was cut off mid-event or the parser failed. Do not
  // feed() after finish().
  bool finish(const std::function<void(const sse_event&)>& on_event);

  // True when bytes of an unreported event are buffered (a stream that ends
  // here was cut off mid-event, unless finish() can still complete it).
  bool has_partial_event() const;

  bool failed() const { return failed_; }

 private:
  using callback = std::function<void(const sse_event&)>;

  // Scans `text`, whose first byte starts a block, from scan_pos_; reports
  // complete events and returns the offset where the unfinished block starts
  // (scan_pos_/line_start_ are then relative to it), or npos on overflow.
  std::size_t process(std::string_view text, const callback& on_event, bool end_of_stream);
  bool process_buffer(const callback& on_event, bool end_of_stream);
  void dispatch(std::string_view block, const callback& on_event);
  void fail();

  std::size_t max_event_bytes_;
  std::string buffer_;          // bytes of the unfinished block; empty between blocks
  std::string data_;            // joins multi-line data; capacity reused across events
  std::size_t scan_pos_ = 0;    // where the line-break search resumes in buffer_
  std::size_t line_start_ = 0;  // start of the current, unterminated line in buffer_
  bool failed_ = false;
  bool at_stream_start_ = true;  // a UTF-8 BOM may still need stripping
};

}  // namespace gatewayz::http

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

  // True when bytes of an incomplete event are buffered (a stream that ends
  // here was cut off mid-event).
  bool has_partial_event() const;

  bool failed() const { return failed_; }

 private:
  std::size_t max_event_bytes_;
  std::string buffer_;      // bytes of the event being assembled
  std::size_t scan_pos_ = 0;  // where line scanning resumes in buffer_
  bool failed_ = false;
  bool pending_cr_ = false;  // last byte seen was '\r' (a following '\n' belongs to it)
};

}  // namespace gatewayz::http

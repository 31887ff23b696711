#include "http/sse.hpp"

#include <algorithm>
#include <cstring>

namespace gatewayz::http {

namespace {

constexpr std::size_t npos = std::string_view::npos;
constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

// Position of the first '\r' or '\n' at or after `from`, or npos. Two memchr
// passes (vectorised in libc) beat a byte loop on the long `data: {...}`
// lines that dominate LLM streams.
std::size_t find_line_break(std::string_view text, std::size_t from) {
  const char* start = text.data() + from;
  const std::size_t length = text.size() - from;
  const void* lf = std::memchr(start, '\n', length);
  const std::size_t limit = lf != nullptr ? static_cast<std::size_t>(static_cast<const char*>(lf) - start) : length;
  const void* cr = std::memchr(start, '\r', limit);
  if (cr != nullptr) return from + static_cast<std::size_t>(static_cast<const char*>(cr) - start);
  if (lf != nullptr) return from + limit;
  return npos;
}

}  // namespace

sse_parser::sse_parser(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

bool sse_parser::feed(std::string_view bytes, const callback& on_event) {
  if (failed_) return false;
  if (at_stream_start_) {
    // The BOM may arrive split across chunks, so collect up to its length.
    buffer_.append(bytes);
    const std::size_t known = std::min(buffer_.size(), utf8_bom.size());
    if (std::string_view(buffer_).substr(0, known) == utf8_bom.substr(0, known)) {
      if (known < utf8_bom.size()) return true;
      buffer_.erase(0, utf8_bom.size());
    }
    at_stream_start_ = false;
    return process_buffer(on_event, false);
  }
  if (buffer_.empty()) {
    // Between events (the usual state at a chunk boundary) scan the caller's
    // bytes in place and copy only the unfinished tail.
    const std::size_t consumed = process(bytes, on_event, false);
    if (consumed == npos) {
      fail();
      return false;
    }
    buffer_.assign(bytes.substr(consumed));
    return true;
  }
  buffer_.append(bytes);
  return process_buffer(on_event, false);
}

bool sse_parser::finish(const callback& on_event) {
  if (failed_) return false;
  // A partial BOM at the end is content, not a BOM.
  at_stream_start_ = false;
  if (!process_buffer(on_event, true)) return false;
  return buffer_.empty();
}

bool sse_parser::has_partial_event() const {
  // A lone held '\r' is a blank line between events, not part of one.
  return !buffer_.empty() && buffer_ != "\r";
}

bool sse_parser::process_buffer(const callback& on_event, bool end_of_stream) {
  const std::size_t consumed = process(buffer_, on_event, end_of_stream);
  if (consumed == npos) {
    fail();
    return false;
  }
  // Compact: the unfinished block moves to the front; capacity is kept so a
  // steady stream does not allocate.
  buffer_.erase(0, consumed);
  return true;
}

std::size_t sse_parser::process(std::string_view text, const callback& on_event, bool end_of_stream) {
  const std::size_t size = text.size();
  std::size_t block_start = 0;
  std::size_t line_start = line_start_;
  std::size_t pos = scan_pos_;
  while (pos < size) {
    const std::size_t brk = find_line_break(text, pos);
    if (brk == npos) {
      pos = size;
      break;
    }
    std::size_t next = brk + 1;
    if (text[brk] == '\r') {
      if (brk + 1 < size) {
        if (text[brk + 1] == '\n') next = brk + 2;
      } else if (!end_of_stream) {
        // A '\n' in the next chunk would belong to this line break (and to
        // the event's raw bytes), so decide once it is known.
        pos = brk;
        break;
      }
    }
    if (brk == line_start) {  // blank line: the block [block_start, next) is complete
      if (next - block_start > max_event_bytes_) return npos;
      if (brk != block_start) dispatch(text.substr(block_start, next - block_start), on_event);
      block_start = next;
    }
    line_start = next;
    pos = next;
  }
  // The unfinished block only grows, so rejecting it now is the same verdict
  // an unsplit stream would get when the block completes.
  if (size - block_start > max_event_bytes_) return npos;
  line_start_ = line_start - block_start;
  scan_pos_ = pos - block_start;
  return block_start;
}

void sse_parser::dispatch(std::string_view block, const callback& on_event) {
  std::string_view event_type;
  std::string_view id;
  std::string_view first_data;
  std::size_t data_lines = 0;
  bool has_field = false;
  std::size_t pos = 0;
  for (;;) {
    // Every line of a complete block ends in a break; the last one is blank.
    const std::size_t brk = find_line_break(block, pos);
    const std::string_view line = block.substr(pos, brk - pos);
    pos = block[brk] == '\r' && brk + 1 < block.size() && block[brk + 1] == '\n' ? brk + 2 : brk + 1;
    if (line.empty()) break;
    if (line.front() == ':') continue;  // comment
    has_field = true;
    const std::size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value;
    if (colon != npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (name == "data") {
      // One data line (the norm) is a view into the block; only multi-line
      // data is joined, into a buffer whose capacity is reused.
      if (data_lines == 1) data_.assign(first_data);
      if (data_lines == 0) {
        first_data = value;
      } else {
        data_ += '\n';
        data_.append(value);
      }
      ++data_lines;
    } else if (name == "event") {
      event_type = value;
    } else if (name == "id") {
      if (value.find('\0') == npos) id = value;  // WHATWG ignores ids containing NUL
    }
  }
  if (!has_field) return;
  sse_event event;
  event.event = event_type;
  event.data = data_lines > 1 ? std::string_view(data_) : first_data;
  event.id = id;
  event.raw = block;
  on_event(event);
}

void sse_parser::fail() {
  failed_ = true;
  // Release what a hostile stream made us hold.
  std::string().swap(buffer_);
  std::string().swap(data_);
}

}  // namespace gatewayz::http

#pragma once
// gzip (RFC 1952) for the telemetry sinks' batches (OTLP exports, Loki
// pushes), built for speed on their kind of text: each span or log line
// repeats most of the one before it (attribute keys, model and provider
// names), so long matches cover most bytes.
//
// One DEFLATE block (RFC 1951) with the fixed Huffman codes, and a greedy
// LZ77 that looks up one hash candidate per position it stops at and
// skips over what a match covers. That is about a third of libdeflate
// level 1's time on an OTLP batch, for an output about twice as large
// (still about a seventh of the input); any inflater reads it. Numbers in
// docs/decisions/tracing.md.
//
// One compressor keeps its hash table and output buffer across calls: once
// warm it allocates nothing. Not thread-safe: one owner thread.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace gatewayz::telemetry {

class fast_gzip {
 public:
  fast_gzip();

  // The gzip stream of `data`, valid until the next call. `data` must not
  // point into an earlier result.
  std::string_view compress(std::string_view data);

 private:
  std::vector<std::uint32_t> table_;  // hash of 4 bytes -> the last position seen with it, plus base_
  std::uint32_t base_ = 0;            // added to this call's positions; see compress()
  std::unique_ptr<unsigned char[]> out_;
  std::size_t out_capacity_ = 0;
};

}  // namespace gatewayz::telemetry

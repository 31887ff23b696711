#include <libdeflate.h>

#include <new>

#include "telemetry/metrics.hpp"

namespace gatewayz::telemetry {

namespace {

// Level 1: at about 0.6 us per 460-byte log line it is twice as fast as
// zlib's level 1 and its output is ~6% smaller; higher levels cost 1.6x
// for 4% less (docs/decisions/structured-logs.md).
constexpr int level = 1;

}  // namespace

gzip_compressor::gzip_compressor() : compressor_(libdeflate_alloc_compressor(level)) {
  if (compressor_ == nullptr) throw std::bad_alloc();
}

gzip_compressor::~gzip_compressor() { libdeflate_free_compressor(compressor_); }

std::string_view gzip_compressor::compress(std::string_view data) {
  const std::size_t bound = libdeflate_gzip_compress_bound(compressor_, data.size());
  // resize() writes the new bytes once; the buffer then stays at its peak.
  if (out_.size() < bound) out_.resize(bound);
  const std::size_t written = libdeflate_gzip_compress(compressor_, data.data(), data.size(), out_.data(), out_.size());
  // The bound is a guarantee: 0 (no room) cannot happen.
  return {out_.data(), written};
}

std::string gzip(std::string_view data) {
  gzip_compressor compressor;
  return std::string(compressor.compress(data));
}

}  // namespace gatewayz::telemetry

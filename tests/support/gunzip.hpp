#pragma once
// Decodes a gzip body with zlib, for tests that check what the gateway
// compressed: an independent decoder, not the encoder under test.

#include <zlib.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace gatewayz::test {

// nullopt unless `data` is one complete, valid gzip stream.
inline std::optional<std::string> gunzip(std::string_view data) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return std::nullopt;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    std::array<char, 16384> chunk{};
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = chunk.size();
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(chunk.data(), chunk.size() - z.avail_out);
  }
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  if (!whole) return std::nullopt;
  return out;
}

}  // namespace gatewayz::test

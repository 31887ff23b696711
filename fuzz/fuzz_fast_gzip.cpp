// Fuzzes telemetry::fast_gzip, the hand-written DEFLATE encoder of the
// trace exporter.
//
// Input: the text. It is compressed, then again after a longer unrelated
// text with the same compressor (the hash table keeps entries across
// calls).
//
// Invariants, checked with zlib (an independent decoder): every output is
// one complete gzip stream (CRC-32 and length right) that inflates to the
// text; the output is never more than 9 bits a byte plus the framing.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "support/gunzip.hpp"
#include "telemetry/fast_gzip.hpp"

#include "fuzz_check.hpp"

namespace {

using gatewayz::test::gunzip;

void check(std::string_view compressed, std::string_view text) {
  FUZZ_CHECK(compressed.size() <= 10 + text.size() + text.size() / 8 + 32);
  const auto back = gunzip(compressed);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(*back == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  static gatewayz::telemetry::fast_gzip gzip;  // across inputs too, as in the exporter
  check(gzip.compress(text), text);
  // An unrelated text first: none of its table entries may be used next.
  std::string other(40000, '\0');
  for (std::size_t i = 0; i < other.size(); ++i) other[i] = static_cast<char>((i * 7 + text.size()) % 13);
  check(gzip.compress(other), other);
  check(gzip.compress(text), text);
  return 0;
}

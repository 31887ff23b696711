#include "telemetry/fast_gzip.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include <libdeflate.h>

namespace gatewayz::telemetry {

namespace {

static_assert(std::endian::native == std::endian::little, "the match extension compares words as little-endian");

constexpr unsigned hash_bits = 14;  // 64 KB of table: stays in the L2 cache
constexpr std::size_t window = 32768;
constexpr std::size_t min_match = 4;
constexpr std::size_t max_match = 258;

// RFC 1951 3.2.5: the length and distance codes' bases and extra bits.
constexpr std::array<std::uint16_t, 29> length_base = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                                       31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr std::array<std::uint8_t, 29> length_extra = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                       2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::array<std::uint16_t, 30> distance_base = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                                         33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                                         1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr std::array<std::uint8_t, 30> distance_extra = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                         6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

// A Huffman code is sent from its most significant bit, into a stream
// filled from each byte's least significant bit: stored reversed.
constexpr std::uint32_t reversed(std::uint32_t code, unsigned bits) {
  std::uint32_t r = 0;
  for (unsigned i = 0; i < bits; ++i) r |= ((code >> i) & 1U) << (bits - 1 - i);
  return r;
}

struct code {
  std::uint32_t bits = 0;  // ready to send: the reversed code, then any extra bits' base
  std::uint8_t count = 0;
};

// RFC 1951 3.2.6: the fixed literal/length code.
constexpr code fixed_literal_length(unsigned symbol) {
  if (symbol < 144) return {reversed(0x30 + symbol, 8), 8};
  if (symbol < 256) return {reversed(0x190 + symbol - 144, 9), 9};
  if (symbol < 280) return {reversed(symbol - 256, 7), 7};
  return {reversed(0xC0 + symbol - 280, 8), 8};
}

struct code_tables {
  std::array<code, 256> literal{};
  std::array<code, max_match + 1> length{};       // length code and extra bits, whole
  std::array<std::uint8_t, 256> distance_low{};   // distance - 1 below 256 -> distance code
  std::array<std::uint8_t, 256> distance_high{};  // (distance - 1) >> 7 from 256 on -> distance code
  std::array<std::uint8_t, 30> distance_code{};   // the fixed 5-bit codes, reversed

  constexpr code_tables() {
    for (unsigned b = 0; b < 256; ++b) literal[b] = fixed_literal_length(b);
    for (unsigned k = 0; k < length_base.size(); ++k) {
      const unsigned last = k + 1 < length_base.size() ? length_base[k + 1] - 1U : max_match;
      for (unsigned len = length_base[k]; len <= last && len <= max_match; ++len) {
        const code symbol = fixed_literal_length(257 + k);
        length[len] = {symbol.bits | ((len - length_base[k]) << symbol.count),
                       static_cast<std::uint8_t>(symbol.count + length_extra[k])};
      }
    }
    for (unsigned k = 0; k < distance_base.size(); ++k) {
      distance_code[k] = static_cast<std::uint8_t>(reversed(k, 5));
      const unsigned last = k + 1 < distance_base.size() ? distance_base[k + 1] - 1U : window;
      for (unsigned d = distance_base[k]; d <= last; ++d) {
        if (d - 1 < 256) {
          distance_low[d - 1] = static_cast<std::uint8_t>(k);
        } else {
          distance_high[(d - 1) >> 7] = static_cast<std::uint8_t>(k);
        }
      }
    }
  }
};

constexpr code_tables tables;

std::uint32_t load32(const unsigned char* p) {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint64_t load64(const unsigned char* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint32_t hash(std::uint32_t word) { return (word * 0x9E3779B1U) >> (32 - hash_bits); }

// How many of the first `limit` bytes at `a` and `b` are equal.
std::size_t common_prefix(const unsigned char* a, const unsigned char* b, std::size_t limit) {
  std::size_t k = 0;
  for (; k + 8 <= limit; k += 8) {
    const std::uint64_t diff = load64(a + k) ^ load64(b + k);
    if (diff != 0) return k + static_cast<std::size_t>(std::countr_zero(diff)) / 8;
  }
  while (k < limit && a[k] == b[k]) ++k;
  return k;
}

// DEFLATE's bit order: each byte filled from its least significant bit.
class bit_writer {
 public:
  explicit bit_writer(unsigned char* out) : out_(out) {}

  // count <= 32.
  void put(std::uint64_t bits, unsigned count) {
    pending_ |= bits << filled_;
    filled_ += count;
    if (filled_ >= 32) {
      for (int i = 0; i < 4; ++i) out_[i] = static_cast<unsigned char>(pending_ >> (8 * i));
      out_ += 4;
      pending_ >>= 32;
      filled_ -= 32;
    }
  }
  // Pads the last byte with zero bits; returns the end of the output.
  unsigned char* finish() {
    while (filled_ > 0) {
      *out_++ = static_cast<unsigned char>(pending_);
      pending_ >>= 8;
      filled_ = filled_ > 8 ? filled_ - 8 : 0;
    }
    return out_;
  }

 private:
  unsigned char* out_;
  std::uint64_t pending_ = 0;
  unsigned filled_ = 0;
};

void put_le32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

fast_gzip::fast_gzip() : table_(std::size_t{1} << hash_bits) {}

std::string_view fast_gzip::compress(std::string_view data) {
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  // At most 9 bits a byte (a literal; a match of 4+ bytes takes at most
  // 31 bits), plus the header, the block's 3 bits, its end code, the trailer.
  // Grown without zero-filling (a resized std::string cleared ~400 KB a
  // batch, a sixth of the export thread's instructions), never shrunk.
  const std::size_t bound = 10 + n + n / 8 + 32;
  if (bound > out_capacity_) {
    out_ = std::make_unique_for_overwrite<unsigned char[]>(bound);
    out_capacity_ = bound;
  }
  unsigned char* out = out_.get();
  // ID1 ID2, CM deflate, no flags, no mtime, XFL 4 (fastest), OS 3 (Unix).
  constexpr std::array<unsigned char, 10> header = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3};
  std::memcpy(out, header.data(), header.size());

  bit_writer bits(out + header.size());
  bits.put(0b011, 3);  // BFINAL, BTYPE 01: fixed Huffman codes
  // Positions are entered as base_ + i, base_ one window past the last
  // call's text, so what an earlier call entered is always too far to be
  // used: no table reset per call. A base that would overflow starts again.
  if (std::uint64_t{base_} + n + window + 1 > UINT32_MAX) {
    std::fill(table_.begin(), table_.end(), 0);
    base_ = window + 1;
  }
  const std::size_t base = base_;
  std::size_t i = 0;
  // Texts too long for 32-bit positions (never a telemetry batch) are sent
  // as literals.
  if (n >= min_match && base + n <= UINT32_MAX) {
    const std::size_t last = n - min_match;  // the last position a word can be read at
    while (i <= last) {
      const std::uint32_t word = load32(in + i);
      auto& slot = table_[hash(word)];
      const std::size_t candidate = slot;
      slot = static_cast<std::uint32_t>(base + i);
      // Entries of earlier calls are more than a window away and fail the
      // first test. An empty slot of the first call (base 0) names
      // position 0, a real earlier position: its bytes are compared.
      const std::size_t distance = base + i - candidate;
      if (distance - 1 < window && load32(in + (i - distance)) == word) {
        const std::size_t limit = std::min(max_match, n - i);
        const std::size_t length =
            min_match + common_prefix(in + (i - distance) + min_match, in + i + min_match, limit - min_match);
        const code& l = tables.length[length];
        const std::size_t d = distance - 1;
        const unsigned k = d < 256 ? tables.distance_low[d] : tables.distance_high[d >> 7];
        const std::uint64_t distance_bits = tables.distance_code[k] |
                                            (static_cast<std::uint64_t>(d + 1 - distance_base[k]) << 5);
        bits.put(l.bits | (distance_bits << l.count), l.count + 5U + distance_extra[k]);
        i += length;
        // The positions a match skips are not looked up, so the table only
        // knows their text when a later position is entered: the one just
        // before the match's end lets the next repeat of this text that
        // starts there find it.
        if (i - 2 <= last) table_[hash(load32(in + i - 2))] = static_cast<std::uint32_t>(base + i - 2);
      } else {
        const code& c = tables.literal[in[i]];
        bits.put(c.bits, c.count);
        ++i;
      }
    }
  }
  for (; i < n; ++i) {
    const code& c = tables.literal[in[i]];
    bits.put(c.bits, c.count);
  }
  base_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{base} + n + window + 1, UINT32_MAX));
  bits.put(0, 7);  // end of block: symbol 256, seven zero bits
  unsigned char* end = bits.finish();
  put_le32(end, libdeflate_crc32(0, in, n));
  put_le32(end + 4, static_cast<std::uint32_t>(n));
  end += 8;
  return {reinterpret_cast<const char*>(out), static_cast<std::size_t>(end - out)};
}

}  // namespace gatewayz::telemetry

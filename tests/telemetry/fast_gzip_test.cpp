#include "telemetry/fast_gzip.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "support/gunzip.hpp"

namespace gatewayz::telemetry {
namespace {

using test::gunzip;

std::string random_bytes(std::size_t n, unsigned alphabet, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() % alphabet);
  return s;
}

// What the exporter compresses: the same span, its ids and times varying.
std::string span_like_batch(std::size_t spans) {
  std::mt19937 rng(7);
  std::string out;
  for (std::size_t i = 0; i < spans; ++i) {
    out += random_bytes(40, 256, static_cast<std::uint32_t>(rng()));
    out += fmt::format(
        "chat gpt-4o-mini gen_ai.operation.name chat gen_ai.request.model gpt-4o-mini gatewayz.request.id "
        "req_{:020} gen_ai.system openai gen_ai.provider.name openai server.address 127.0.0.1 "
        "gen_ai.usage.input_tokens {} gen_ai.usage.output_tokens {} gen_ai.response.finish_reasons stop",
        rng(), rng() % 100, rng() % 1000);
  }
  return out;
}

void expect_round_trip(fast_gzip& gzip, const std::string& data) {
  const std::string_view compressed = gzip.compress(data);
  ASSERT_GE(compressed.size(), 18U);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
  EXPECT_EQ(compressed[2], 8);  // deflate
  // zlib checks the CRC-32 and the length in the trailer as well.
  const auto back = gunzip(compressed);
  ASSERT_TRUE(back.has_value()) << "size " << data.size();
  EXPECT_TRUE(*back == data) << "size " << data.size();
}

TEST(FastGzipTest, ShortTextsRoundTrip) {
  fast_gzip gzip;
  for (const std::string text : {"", "a", "ab", "abc", "abcd", "abcabcabcabc", "aaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    expect_round_trip(gzip, text);
  }
}

TEST(FastGzipTest, RepetitiveTextCompressesAndRoundTrips) {
  fast_gzip gzip;
  const auto batch = span_like_batch(512);
  const auto size = gzip.compress(batch).size();
  EXPECT_LT(size * 3, batch.size()) << size << " of " << batch.size();
  expect_round_trip(gzip, batch);
}

TEST(FastGzipTest, IncompressibleTextGrowsByAtMostAnEighth) {
  fast_gzip gzip;
  const auto noise = random_bytes(1 << 20, 256, 1);
  EXPECT_LE(gzip.compress(noise).size(), noise.size() + noise.size() / 8 + 32);
  expect_round_trip(gzip, noise);
}

TEST(FastGzipTest, MatchesAtTheEdgesOfTheWindowAndOfTheLengthCodes) {
  fast_gzip gzip;
  // A 300-byte phrase repeated 32768 and 32769 bytes later (the farthest
  // DEFLATE can reach, and one past it), with noise between; runs that
  // need matches of every length from 3 to past 258.
  auto text = random_bytes(100000, 256, 2);
  for (std::size_t i = 0; i < 300; ++i) {
    text[40000 + i] = text[40000 + i - 32768];
    text[80000 + i] = text[80000 + i - 32769];
  }
  expect_round_trip(gzip, text);
  std::string runs;
  for (std::size_t length = 1; length <= 600; ++length) {
    runs.append(length, static_cast<char>('a' + length % 26));
    runs += random_bytes(5, 256, static_cast<std::uint32_t>(length));
  }
  expect_round_trip(gzip, runs);
}

TEST(FastGzipTest, OneCompressorServesManyTextsWithoutMixingThem) {
  // The hash table is not cleared between calls: an entry of an earlier
  // text must never be used as a match in a later one.
  fast_gzip gzip;
  std::mt19937 rng(3);
  for (int round = 0; round < 300; ++round) {
    const std::size_t size = rng() % (round % 50 == 0 ? 70000 : 2000);
    const auto text = random_bytes(size, 1 + rng() % 6, static_cast<std::uint32_t>(rng()));
    expect_round_trip(gzip, text);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace gatewayz::telemetry

#include <gtest/gtest.h>

#include "cache/cache.hpp"

namespace gatewayz::cache {
namespace {

TEST(CacheEntry, RoundTripsThroughItsEncoding) {
  cached_response in;
  in.body = "{\"id\":\"x\",\n\"choices\":[]}";  // a newline inside the body is fine
  in.provider = "openai \"primary\"";
  in.input_tokens = 12;
  in.output_tokens = 34;
  in.cost_nanos = 5'600'000;
  in.stored_unix_ms = 1'700'000'000'123;
  cached_response out;
  ASSERT_TRUE(decode_entry(encode_entry(in), out));
  EXPECT_EQ(out.body, in.body);
  EXPECT_EQ(out.provider, in.provider);
  EXPECT_EQ(out.input_tokens, 12);
  EXPECT_EQ(out.output_tokens, 34);
  EXPECT_EQ(out.cost_nanos, 5'600'000);
  EXPECT_EQ(out.stored_unix_ms, 1'700'000'000'123);
  EXPECT_EQ(out.expires_unix_ms, 0) << "none written, none read";
  in.expires_unix_ms = 1'700'000'060'123;
  ASSERT_TRUE(decode_entry(encode_entry(in), out));
  EXPECT_EQ(out.expires_unix_ms, 1'700'000'060'123);
}

TEST(CacheEntry, RejectsWhatItDidNotWrite) {
  cached_response out;
  EXPECT_FALSE(decode_entry("", out));
  EXPECT_FALSE(decode_entry("{}", out));
  EXPECT_FALSE(decode_entry("{\"v\":2,\"provider\":\"p\"}\n{}", out));
  EXPECT_FALSE(decode_entry("{\"v\":1,\"provider\":\"p\",\"input_tokens\":1}\n{}", out)) << "fields missing";
  EXPECT_FALSE(decode_entry("not json\n{}", out));
  EXPECT_FALSE(decode_entry(
      "{\"v\":1,\"provider\":\"p\",\"input_tokens\":1,\"output_tokens\":1,\"cost_nanos\":1,\"stored_unix_ms\":1}\n",
      out))
      << "no body";
}

}  // namespace
}  // namespace gatewayz::cache

#include "tracing/trace_context.hpp"

#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tracing/sampler.hpp"

namespace gatewayz::tracing {
namespace {

constexpr std::string_view good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(trace_context, parses_a_valid_traceparent) {
  const auto ctx = parse_traceparent(good);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(to_hex(ctx->trace), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(ctx->parent), "00f067aa0ba902b7");
  EXPECT_TRUE(ctx->sampled());
  const auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled());
  // Surrounding whitespace is tolerated; flags are read as bits.
  EXPECT_TRUE(parse_traceparent(std::string(" \t") + std::string(good) + " "));
  const auto other_bits = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09");
  ASSERT_TRUE(other_bits);
  EXPECT_TRUE(other_bits->sampled());
}

TEST(trace_context, rejects_what_the_w3c_processing_model_rejects) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",         // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.",     // trailing data, v00
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",  // trailing field, v00
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",      // non-hex
           "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-012",      // short version
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x",    // later version, no '-' after
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(trace_context, a_later_version_is_read_as_version_00) {
  const auto ctx = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds");
  ASSERT_TRUE(ctx);
  EXPECT_EQ(to_hex(ctx->parent), "00f067aa0ba902b7");
  EXPECT_TRUE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

TEST(trace_context, formats_a_traceparent_that_parses_back) {
  const auto trace = new_trace_id();
  const auto span = new_span_id();
  char text[traceparent_size];
  format_traceparent(trace, span, flag_sampled, text);
  const auto ctx = parse_traceparent(std::string_view(text, sizeof text));
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->trace, trace);
  EXPECT_EQ(ctx->parent, span);
  EXPECT_EQ(std::string_view(text, 3), "00-");
  EXPECT_EQ(std::string_view(text + 52, 3), "-01");
}

TEST(trace_context, tracestate_is_kept_only_when_valid) {
  auto ctx = *parse_traceparent(good);
  attach_tracestate(ctx, " rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE,,vendor@sys=x ");
  EXPECT_EQ(ctx.tracestate, "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE,,vendor@sys=x");
  for (std::string_view bad : {"Rojo=1", "rojo", "rojo=a,rojo=b", "rojo=a=b", "a=", "1a=b,@x=y"}) {
    auto other = *parse_traceparent(good);
    attach_tracestate(other, bad);
    EXPECT_EQ(other.tracestate, "") << bad;
  }
  std::string many;
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_FALSE(valid_tracestate(many));
}

TEST(trace_context, ids_are_valid_unique_and_differ_between_threads) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const auto id = new_trace_id();
    ASSERT_TRUE(id.valid());
    ASSERT_TRUE(seen.insert(to_hex(id)).second);
  }
  std::string other;
  std::thread([&] { other = to_hex(new_span_id()); }).join();
  EXPECT_NE(other, to_hex(new_span_id()));
  trace_id parsed;
  EXPECT_TRUE(from_hex("4BF92F3577B34DA6A3CE929D0E0E4736", parsed));
  EXPECT_EQ(to_hex(parsed), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(from_hex("4bf9", parsed));
}

TEST(sampler, parent_based_follows_the_parent_and_ratio_decides_roots) {
  const auto half = *sampler::from_name("parentbased_traceidratio", 0.5);
  trace_id low;   // last 56 bits small: below the threshold 2^55
  trace_id high;  // last 56 bits large
  low.bytes[15] = 1;
  high.bytes[9] = 0xff;
  EXPECT_FALSE(half.sample(low, std::nullopt));
  EXPECT_TRUE(half.sample(high, std::nullopt));
  EXPECT_TRUE(half.sample(low, std::uint8_t{1}));
  EXPECT_FALSE(half.sample(high, std::uint8_t{0}));
  // The first 9 bytes do not matter.
  trace_id high_prefix = low;
  high_prefix.bytes[0] = 0xff;
  EXPECT_FALSE(half.sample(high_prefix, std::nullopt));

  const auto ratio_only = *sampler::from_name("traceidratio", 0.5);
  EXPECT_TRUE(ratio_only.sample(high, std::uint8_t{0}));  // not parent-based

  EXPECT_TRUE(sampler::from_name("always_on", 0)->sample(low, std::uint8_t{0}));
  EXPECT_FALSE(sampler::from_name("always_off", 1)->sample(high, std::uint8_t{1}));
  EXPECT_TRUE(sampler::from_name("parentbased_always_off", 1)->sample(high, std::uint8_t{1}));
  EXPECT_FALSE(sampler::from_name("jaeger_remote", 1));

  // Roughly the ratio over random ids.
  const auto tenth = *sampler::from_name("traceidratio", 0.1);
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) sampled += tenth.sample(new_trace_id(), std::nullopt) ? 1 : 0;
  EXPECT_GT(sampled, 1600);
  EXPECT_LT(sampled, 2400);
  EXPECT_FALSE(sampler::from_name("traceidratio", 0.0)->sample(high, std::nullopt));
}

}  // namespace
}  // namespace gatewayz::tracing

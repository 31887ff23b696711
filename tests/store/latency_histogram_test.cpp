#include "store/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace gatewayz::store::latency_histogram {
namespace {

TEST(LatencyHistogram, RepresentativeIsWithinTwoPercentOfEveryValueInItsBucket) {
  double worst = 0.0;
  // From 1 ms to 30 min, sampled densely on a log scale.
  for (double ms = 1.0; ms < 1'800'000.0; ms *= 1.0007) {
    const double error = std::abs(representative_ms(bucket_of(ms)) - ms) / ms;
    worst = std::max(worst, error);
  }
  EXPECT_LT(worst, 0.0150);  // sqrt(1.03) - 1 = 1.489 %
  EXPECT_GT(worst, 0.0140);  // and the bound is actually approached: the buckets are as wide as claimed
}

TEST(LatencyHistogram, BucketsAreMonotonicAndClamped) {
  EXPECT_EQ(bucket_of(0.0), 0);
  EXPECT_EQ(bucket_of(-5.0), 0);
  EXPECT_EQ(bucket_of(std::nan("")), 0);
  EXPECT_EQ(bucket_of(1e12), bucket_count - 1);
  EXPECT_LT(bucket_of(1'800'000.0), bucket_count);
  int previous = 0;
  for (double ms = 0.05; ms < 2e6; ms *= 1.01) {
    const int b = bucket_of(ms);
    EXPECT_GE(b, previous);
    previous = b;
  }
}

TEST(LatencyHistogram, NearestRankPercentileOfMergedCounts) {
  counts merged;
  EXPECT_EQ(percentile_ms(merged, 0.95), 0.0);
  // 90 samples at ~10 ms, 9 at ~100 ms, 1 at ~1000 ms.
  merged[bucket_of(10.0)] += 90;
  merged[bucket_of(100.0)] += 9;
  merged[bucket_of(1000.0)] += 1;
  EXPECT_NEAR(percentile_ms(merged, 0.90), 10.0, 0.2);
  EXPECT_NEAR(percentile_ms(merged, 0.95), 100.0, 2.0);
  EXPECT_NEAR(percentile_ms(merged, 0.99), 100.0, 2.0);
  EXPECT_NEAR(percentile_ms(merged, 1.0), 1000.0, 20.0);
}

}  // namespace
}  // namespace gatewayz::store::latency_histogram

#pragma once
// Fixed log-scale latency buckets for the per-minute rollups.
//
// Bucket i holds latencies in [min_ms * growth^i, min_ms * growth^(i+1)).
// A percentile is estimated by the geometric midpoint of the bucket that
// holds the nearest-rank sample, so the estimate is off by at most
// sqrt(growth) - 1 = 1.49 % of the exact nearest-rank value (the target is
// 2 %). The bounds never change: every instance and every minute uses the
// same buckets, so histograms merge by adding counts (`count = count + n`
// in SQL), which is what makes concurrent writers safe.
//
// Range: 0.1 ms .. about 30 min in 566 buckets; values outside are clamped
// into the first or last bucket. Only non-empty buckets are stored.

#include <cstdint>
#include <map>

namespace gatewayz::store::latency_histogram {

inline constexpr double growth = 1.03;
inline constexpr double min_ms = 0.1;
inline constexpr int bucket_count = 566;  // upper edge min_ms * 1.03^566 ≈ 1.84e6 ms (30.7 min)

// The bucket a latency falls into (clamped to [0, bucket_count - 1]).
int bucket_of(double latency_ms);
// The value reported for a percentile that lands in `bucket`.
double representative_ms(int bucket);

// Sparse merged counts: bucket → count.
using counts = std::map<int, std::int64_t>;

// Nearest-rank percentile (q in (0, 1]) of the merged counts; 0 when empty.
double percentile_ms(const counts& merged, double q);

}  // namespace gatewayz::store::latency_histogram

#include "store/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace gatewayz::store::latency_histogram {

namespace {
const double log_growth = std::log(growth);
}

int bucket_of(double latency_ms) {
  if (!(latency_ms > min_ms)) return 0;  // also catches NaN
  const double index = std::floor(std::log(latency_ms / min_ms) / log_growth);
  if (index >= bucket_count - 1) return bucket_count - 1;
  return static_cast<int>(index);
}

double representative_ms(int bucket) { return min_ms * std::pow(growth, static_cast<double>(bucket) + 0.5); }

double percentile_ms(const counts& merged, double q) {
  std::int64_t total = 0;
  for (const auto& [bucket, count] : merged) total += count;
  if (total <= 0) return 0.0;
  // Nearest rank: the smallest sample with at least q of the samples at or below it.
  const auto rank = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(q * static_cast<double>(total))));
  std::int64_t seen = 0;
  for (const auto& [bucket, count] : merged) {
    seen += count;
    if (seen >= rank) return representative_ms(bucket);
  }
  return representative_ms(merged.rbegin()->first);
}

}  // namespace gatewayz::store::latency_histogram

#pragma once
// Deterministic pseudo-random values for the benchmarks, so that every run
// works on the same data and runs compare.

#include <cstdint>

namespace gatewayz::bench {

// A 64-bit linear congruential generator (Knuth's MMIX constants).
struct lcg {
  std::uint64_t s = 0x9e3779b97f4a7c15ULL;
  // Uniform in [0, 1), from the top 53 bits.
  double next01() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  }
};

}  // namespace gatewayz::bench

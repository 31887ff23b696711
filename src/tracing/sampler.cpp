#include "tracing/sampler.hpp"

#include <algorithm>
#include <cmath>

namespace gatewayz::tracing {

namespace {
constexpr std::uint64_t two_pow_56 = std::uint64_t{1} << 56;
}

sampler::sampler(root_rule root, bool parent_based, double ratio)
    : root_(root), parent_based_(parent_based), ratio_(std::clamp(ratio, 0.0, 1.0)) {
  // Rejection threshold T = (1 - ratio) * 2^56, rounded; R >= T samples.
  const double rejected = (1.0 - ratio_) * static_cast<double>(two_pow_56);
  threshold_ = ratio_ <= 0.0 ? two_pow_56 : static_cast<std::uint64_t>(std::llround(rejected));
}

std::optional<sampler> sampler::from_name(std::string_view name, double ratio) {
  if (name == "always_on") return sampler{root_rule::always_on, false, 1.0};
  if (name == "always_off") return sampler{root_rule::always_off, false, 0.0};
  if (name == "traceidratio") return sampler{root_rule::ratio, false, ratio};
  if (name == "parentbased_always_on") return sampler{root_rule::always_on, true, 1.0};
  if (name == "parentbased_always_off") return sampler{root_rule::always_off, true, 0.0};
  if (name == "parentbased_traceidratio") return sampler{root_rule::ratio, true, ratio};
  return std::nullopt;
}

bool sampler::sample_root(const trace_id& trace) const {
  switch (root_) {
    case root_rule::always_on: return true;
    case root_rule::always_off: return false;
    case root_rule::ratio: break;
  }
  std::uint64_t r = 0;
  for (std::size_t i = 9; i < 16; ++i) r = (r << 8) | trace.bytes[i];  // the last 56 bits
  return r >= threshold_;
}

bool sampler::sample(const trace_id& trace, std::optional<std::uint8_t> parent_flags) const {
  if (parent_based_ && parent_flags) return (*parent_flags & flag_sampled) != 0;
  return sample_root(trace);
}

}  // namespace gatewayz::tracing

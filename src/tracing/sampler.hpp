#pragma once
// Which requests are traced (OpenTelemetry's samplers, as the SDK's
// OTEL_TRACES_SAMPLER names them): always_on, always_off, traceidratio, and
// their parentbased_ forms, where a request that carries a traceparent
// follows its sampled flag and only a root is decided by the inner sampler.
//
// traceidratio decides by the trace id alone, so every participant with the
// same ratio decides alike: the trace is sampled when its last 56 bits, read
// as an integer R, reach the rejection threshold T = (1 - ratio) * 2^56
// (the OpenTelemetry specification's TraceIdRatioBased with its consistent-
// probability threshold; ratio 1 samples everything, 0 nothing).
//
// Immutable after construction; any thread.

#include <cstdint>
#include <optional>
#include <string_view>

#include "tracing/trace_context.hpp"

namespace gatewayz::tracing {

class sampler {
 public:
  enum class root_rule : std::uint8_t { always_on, always_off, ratio };

  sampler() = default;
  sampler(root_rule root, bool parent_based, double ratio);

  // From OTEL_TRACES_SAMPLER's names ("parentbased_traceidratio", ...) and a
  // ratio (OTEL_TRACES_SAMPLER_ARG); nullopt for an unknown or unsupported name.
  static std::optional<sampler> from_name(std::string_view name, double ratio);

  // Whether a request with trace id `trace` (new, or from `parent_flags`
  // when it continues a remote trace) is recorded and exported.
  bool sample(const trace_id& trace, std::optional<std::uint8_t> parent_flags) const;

  double ratio() const { return ratio_; }

 private:
  bool sample_root(const trace_id& trace) const;

  root_rule root_ = root_rule::always_on;
  bool parent_based_ = true;
  double ratio_ = 1.0;
  std::uint64_t threshold_ = 0;  // 56-bit rejection threshold for `ratio`
};

}  // namespace gatewayz::tracing

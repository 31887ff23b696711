#include "gateway/credit_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/json_scan.hpp"

namespace gatewayz::gateway {

namespace {

using providers::operation;

// Far above any real request (a million dollars) and far below int64's
// limit, so sums of a few costs cannot overflow.
constexpr double max_cost_nanos = 1e15;

std::int64_t positive_integer(const providers::inbound_request& request, std::string_view name) {
  const auto* member = request.scan->find(name);
  if (member == nullptr || member->kind != json_scan::value_kind::number) return 0;
  const auto value = json_scan::to_int64(request.body.substr(member->value_span.begin, member->value_span.size()));
  return value && *value > 0 ? *value : 0;
}

}  // namespace

std::int64_t estimate_input_tokens(const providers::inbound_request& request) {
  std::string_view name = "messages";
  if (request.op == operation::completions) name = "prompt";
  if (request.op == operation::embeddings) name = "input";
  const auto* member = request.scan != nullptr ? request.scan->find(name) : nullptr;
  const std::size_t bytes = member != nullptr ? member->value_span.size() : request.body.size();
  return std::max<std::int64_t>(1, static_cast<std::int64_t>((bytes + 3) / 4));
}

std::int64_t requested_output_tokens(const providers::inbound_request& request) {
  if (request.scan == nullptr) return 0;
  if (const auto limit = positive_integer(request, "max_completion_tokens")) return limit;
  return positive_integer(request, "max_tokens");
}

std::int64_t cost_nanos(std::int64_t tokens, double usd_per_million) {
  // USD per million tokens * tokens * 1000 = nano-USD.
  const double nanos = std::ceil(static_cast<double>(tokens) * usd_per_million * 1000.0);
  if (!(nanos > 0)) return 0;
  return static_cast<std::int64_t>(std::min(nanos, max_cost_nanos));
}

std::int64_t worst_case_cost(const providers::inbound_request& request, std::span<const route_target> targets,
                             std::uint32_t default_output_tokens) {
  const std::int64_t input = estimate_input_tokens(request);
  const std::int64_t requested = request.op == operation::embeddings ? 0 : requested_output_tokens(request);
  std::int64_t worst = 0;
  for (const auto& target : targets) {
    const auto& model = *target.model;
    std::int64_t output = requested;
    if (output == 0 && request.op != operation::embeddings) {
      output = model.reserve_output_tokens != 0 ? model.reserve_output_tokens : default_output_tokens;
    }
    const std::int64_t cost = std::min<std::int64_t>(
        static_cast<std::int64_t>(max_cost_nanos),
        cost_nanos(input, model.input_per_million) + cost_nanos(output, model.output_per_million));
    worst = std::max(worst, cost);
  }
  return worst;
}

}  // namespace gatewayz::gateway

#include "gateway/response_caching.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "cache/request_key.hpp"
#include "core/text.hpp"

namespace gatewayz::gateway {

response_caching::response_caching(const config::cache_config& config, cache::response_cache& backend,
                                   telemetry::catalog& metrics, bool metrics_enabled)
    : config_(config),
      backend_(backend),
      ttl_(std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(config.ttl_s * 1000.0)))) {
  auto hits = metrics.cache_hits.series();
  auto misses = metrics.cache_misses.series();
  if (!metrics_enabled) return;
  hits_ = hits;
  misses_ = misses;
}

bool response_caching::model_cached_by_default(std::string_view model) const {
  return std::any_of(config_.models.begin(), config_.models.end(),
                     [model](const std::string& m) { return m == "*" || m == model; });
}

std::optional<api_error> response_caching::plan(const http::request& req, const providers::inbound_request& request,
                                                std::int64_t customer_id, cache_plan& out) const {
  out = cache_plan{};
  const std::string_view header = req["x-gatewayz-cache"];
  bool forced = false;
  bool refresh = false;
  if (!header.empty()) {
    if (text::iequals(header, "off")) return std::nullopt;
    if (text::iequals(header, "on")) {
      forced = true;
    } else if (text::iequals(header, "refresh")) {
      forced = refresh = true;
    } else {
      return api_error::bad_request("The x-gatewayz-cache header must be on, off or refresh", "invalid_cache_header");
    }
  }
  if (request.op != providers::operation::chat_completions && request.op != providers::operation::embeddings) {
    return std::nullopt;
  }
  if (!forced && !model_cached_by_default(request.model)) return std::nullopt;
  char scope[24];
  const auto end = customer_id != 0 ? fmt::format_to_n(scope, sizeof scope, "{}", customer_id).out
                                    : fmt::format_to_n(scope, sizeof scope, "-").out;
  auto key = cache::request_key(std::string_view(scope, static_cast<std::size_t>(end - scope)),
                                providers::operation_name(request.op), request.body);
  if (!key) return std::nullopt;
  out.key = std::move(*key);
  out.use = refresh ? cache_result::refresh : cache_result::miss;
  out.store = !request.stream;
  return std::nullopt;
}

void response_caching::count_lookup(cache::lookup_status status, std::size_t shard) const {
  if (!hits_) return;
  if (status == cache::lookup_status::hit) {
    hits_->inc(shard);
  } else {
    misses_->inc(shard);
  }
}

std::int64_t response_caching::hit_cost(const cache::cached_response& entry) const {
  return std::llround(static_cast<double>(entry.cost_nanos) * config_.hit_cost_fraction);
}

}  // namespace gatewayz::gateway

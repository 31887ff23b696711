#include "store/models_stats.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <cmath>
#include <stdexcept>

namespace gatewayz::store {

std::optional<time_window> parse_time_window(std::string_view value) {
  if (value == "1h") return time_window{"1h", std::chrono::hours(1)};
  if (value == "24h") return time_window{"24h", std::chrono::hours(24)};
  if (value == "7d") return time_window{"7d", std::chrono::hours(24 * 7)};
  return std::nullopt;
}

namespace {

// Shortest form of a value rounded to two decimals: 1234 → "1234", 99.3 → "99.3".
std::string two_decimals(double value) {
  if (!std::isfinite(value)) return "0";
  const double rounded = std::round(value * 100.0) / 100.0;
  return fmt::format("{}", rounded == 0.0 ? 0.0 : rounded);
}

// Exact decimal USD of an integer nano-dollar amount: 125500000000 → "125.5".
std::string usd_from_nanos(nanos_usd nanos) {
  const bool negative = nanos < 0;
  // Unsigned so that the most negative value does not overflow on negation.
  const std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(nanos) : static_cast<std::uint64_t>(nanos);
  const std::uint64_t whole = magnitude / static_cast<std::uint64_t>(nanos_per_usd);
  std::uint64_t fraction = magnitude % static_cast<std::uint64_t>(nanos_per_usd);
  std::string out = fmt::format("{}{}", negative ? "-" : "", whole);
  if (fraction != 0) {
    std::string digits = fmt::format("{:09}", fraction);
    digits.erase(digits.find_last_not_of('0') + 1);
    out += '.';
    out += digits;
  }
  return out;
}

// The provider of requests no provider was tried for (empty in the ledger).
constexpr std::string_view no_provider = "none";

std::string json_string(std::string_view s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

}  // namespace

std::string render_models_stats(const std::vector<model_stats>& models, std::string_view time_window_label,
                                std::chrono::system_clock::time_point now) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(now);
  std::string out;
  out.reserve(96 + models.size() * 320);
  out += fmt::format(R"({{"timestamp":"{:%Y-%m-%dT%H:%M:%S}Z","time_window":{},"models":[)", seconds,
                     json_string(time_window_label));
  bool first = true;
  for (const model_stats& m : models) {
    if (!first) out += ',';
    first = false;
    out += fmt::format(
        R"({{"model":{},"provider":{},"total_requests":{},"successful_requests":{},"failed_requests":{},)"
        R"("avg_latency_ms":{},"p95_latency_ms":{},"p99_latency_ms":{},"total_tokens":{},"total_cost_usd":{},)"
        R"("uptime_percentage":{}}})",
        json_string(m.model), json_string(m.provider.empty() ? no_provider : m.provider), m.total_requests,
        m.successful_requests, m.failed_requests, two_decimals(m.avg_latency_ms), two_decimals(m.p95_latency_ms),
        two_decimals(m.p99_latency_ms), m.total_tokens, usd_from_nanos(m.total_cost),
        two_decimals(m.uptime_percentage));
  }
  out += "]}";
  return out;
}

models_stats_cache::models_stats_cache(std::chrono::seconds ttl) : ttl_(ttl) {
  if (ttl.count() <= 0) throw std::invalid_argument("models_stats_cache: ttl must be positive");
}

std::string models_stats_cache::get(std::string_view window_label, clock::time_point now,
                                    const std::function<std::string()>& render) {
  entry* e = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(window_label);
    if (it == entries_.end()) it = entries_.emplace(std::string(window_label), std::make_unique<entry>()).first;
    e = it->second.get();  // entries are never removed, so the pointer stays valid
  }
  std::lock_guard lock(e->mu);
  if (e->rendered_at && now - *e->rendered_at < ttl_) return e->body;
  std::string body = render();
  e->body = body;
  e->rendered_at = now;
  return body;
}

}  // namespace gatewayz::store

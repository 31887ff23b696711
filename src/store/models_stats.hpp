#pragma once
// GET /models/stats: the time_window query parameter, the JSON body, and a
// short-lived cache of rendered bodies so dashboards polling the endpoint do
// not each hit the database. Parsing and rendering are pure functions; the
// cache is safe to share between threads.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace gatewayz::store {

struct time_window {
  std::string_view label;  // "1h" | "24h" | "7d", echoed as "time_window"
  std::chrono::seconds length;
};

// The window used when the request has no time_window parameter.
inline constexpr time_window default_time_window{"24h", std::chrono::hours(24)};

// "1h", "24h" or "7d"; anything else (including an empty value) is
// std::nullopt, which the handler answers with 400.
std::optional<time_window> parse_time_window(std::string_view value);

// The response body:
// {"timestamp":"2025-12-23T10:30:00Z","time_window":"24h","models":[{...}]}
// with the models in the given order, each object holding, in this order,
// model, provider, total_requests, successful_requests, failed_requests,
// avg_latency_ms, p95_latency_ms, p99_latency_ms, total_tokens,
// total_cost_usd and uptime_percentage (the model_stats fields). Latencies
// are rounded to 0.01 ms and uptime to 0.01 %; total_cost_usd is the exact
// decimal of the nano-dollars. `now` is written to whole seconds, in UTC.
// A row whose provider is empty (requests no provider was tried for: every
// breaker open) is written with "provider":"none" (a name no provider may take).
std::string render_models_stats(const std::vector<model_stats>& models, std::string_view time_window_label,
                                std::chrono::system_clock::time_point now);

// Rendered bodies per window, reused for `ttl` (the gateway configures
// 30–60 s; a ttl that is not positive throws std::invalid_argument).
// Thread-safe. While one caller renders a window, other callers of the same
// window wait for that result instead of querying again; other windows are
// not blocked.
class models_stats_cache {
 public:
  using clock = std::chrono::steady_clock;
  explicit models_stats_cache(std::chrono::seconds ttl);

  // The cached body of `window_label` if younger than the TTL at `now`, else
  // render() (which may throw; nothing is cached then).
  std::string get(std::string_view window_label, clock::time_point now, const std::function<std::string()>& render);

 private:
  struct entry {
    std::mutex mu;  // held while rendering, so concurrent misses render once
    std::optional<clock::time_point> rendered_at;
    std::string body;
  };
  std::chrono::seconds ttl_;
  std::mutex mu_;  // guards the map only
  std::map<std::string, std::unique_ptr<entry>, std::less<>> entries_;
};

}  // namespace gatewayz::store

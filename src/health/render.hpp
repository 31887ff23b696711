#pragma once
// JSON bodies of the health endpoints. Pure functions: no I/O, no clocks
// (times are passed in), so a handler answers well within 50 ms.
// Content-Type for all of them: application/json. Ratios are rounded to 4
// decimals and written as plain decimals (1.0, 0.95), timestamps as ISO-8601
// UTC with a `Z` (2025-12-23T10:30:00Z). The body shapes below are a stable
// contract with existing dashboards and monitors. Definitions: health.hpp.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "health/health.hpp"

namespace gatewayz::health {

inline constexpr std::string_view json_content_type = "application/json";

enum class dependency_state : std::uint8_t { healthy, unhealthy, not_configured };
std::string_view to_string(dependency_state s);  // "healthy", "unhealthy", "not_configured"

struct health_inputs {
  std::string version;
  dependency_state database = dependency_state::not_configured;
  dependency_state redis = dependency_state::not_configured;
  wall_time now;
};

struct http_answer {
  unsigned status = 200;
  std::string body;
};

// GET /health:
//   {"status","timestamp","version","checks":{"database","redis","providers"}}
//   checks.database / checks.redis: "healthy" | "unhealthy" | "not_configured"
//   (as the app reports them; not_configured is not a failure).
//   checks.providers: "healthy" when every provider is healthy; "unhealthy"
//   when every provider is down (or none is configured): nothing can be
//   served; otherwise "degraded".
//   status: "unhealthy" (HTTP 503) when the providers check is unhealthy or
//   a configured database is unreachable (no keys, no credits: nothing can
//   be served); "degraded" (HTTP 200) when the providers check is degraded or
//   Redis is unhealthy (the gateway still serves, slower or with some
//   providers down); "healthy" (HTTP 200) otherwise.
http_answer render_health(const snapshot& s, const health_inputs& in);

// GET /health/dashboard: timestamp (when the snapshot was computed),
//   providers[] {name, status, availability, error_rate,
//   avg_response_time_ms (integer), health_score, requests_last_hour,
//   errors_last_hour, circuit_breaker_state}, summary {total_providers,
//   healthy, degraded, down, overall_health_score (mean of the providers'
//   scores; 0 without providers)}.
std::string render_dashboard(const snapshot& s);

// GET /admin/circuit-breakers (gatewayz's own admin endpoint):
//   {"timestamp","circuit_breakers":[{"provider","state",
//    "consecutive_failures","reopen_count","open_duration_s","retry_at",
//    "half_open_trials_in_flight","half_open_successes","last_transition_at"}]}
//   retry_at and last_transition_at are null when not applicable.
std::string render_breakers(const std::vector<breaker_info>& breakers, wall_time now);

// "2025-12-23T10:30:00Z" (whole seconds, UTC).
std::string iso8601_utc(wall_time t);

// The dashboard body, re-rendered at most once per `ttl`
// (health.dashboard_cache_s, 30 s by default). Thread-safe: shard threads
// share one cache; a caller that finds it stale renders under the cache's
// mutex, the others wait for that body.
class dashboard_cache {
 public:
  dashboard_cache(std::chrono::duration<double> ttl, const clock_source& clock);

  // The cached body while younger than ttl; otherwise render()'s result,
  // which is then cached.
  std::shared_ptr<const std::string> get(const std::function<std::string()>& render);

 private:
  std::chrono::nanoseconds ttl_;
  const clock_source& clock_;
  std::mutex mu_;
  std::shared_ptr<const std::string> body_;
  steady_time rendered_at_{};
};

}  // namespace gatewayz::health

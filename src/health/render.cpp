#include "health/render.hpp"

#include <cmath>
#include <ctime>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace gatewayz::health {

namespace json = boost::json;

namespace {

double ratio(double v) { return std::round(v * 1e4) / 1e4; }

// Boost.JSON 1.81 writes doubles in exponent form (9.5E-1); the dashboards
// and monitors reading these bodies expect plain decimals, so numbers are
// written here and everything else (structure, string escaping) by
// Boost.JSON.
void write(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& member : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string(member.key()));
        out += ':';
        write(member.value(), out);
      }
      out += '}';
      return;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write(element, out);
      }
      out += ']';
      return;
    }
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      std::string text = fmt::format("{}", d);
      if (text.find_first_of(".eE") == std::string::npos) text += ".0";
      out += text;
      return;
    }
    default: out += json::serialize(v); return;
  }
}

std::string to_text(const json::value& v) {
  std::string out;
  write(v, out);
  return out;
}

enum class overall { healthy, degraded, unhealthy };

std::string_view name_of(overall o) {
  switch (o) {
    case overall::healthy: return "healthy";
    case overall::degraded: return "degraded";
    case overall::unhealthy: return "unhealthy";
  }
  return "unhealthy";
}

overall providers_check(const snapshot& s) {
  std::size_t down = 0;
  std::size_t healthy = 0;
  for (const auto& p : s.providers) {
    if (p.status == provider_status::down) ++down;
    if (p.status == provider_status::healthy) ++healthy;
  }
  if (s.providers.empty() || down == s.providers.size()) return overall::unhealthy;
  if (healthy == s.providers.size()) return overall::healthy;
  return overall::degraded;
}

json::value optional_time(const std::optional<wall_time>& t) {
  return t ? json::value(iso8601_utc(*t)) : json::value(nullptr);
}

}  // namespace

std::string_view to_string(dependency_state s) {
  switch (s) {
    case dependency_state::healthy: return "healthy";
    case dependency_state::unhealthy: return "unhealthy";
    case dependency_state::not_configured: return "not_configured";
  }
  return "unhealthy";
}

std::string iso8601_utc(wall_time t) {
  const std::time_t seconds =
      std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(t));
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec);
}

http_answer render_health(const snapshot& s, const health_inputs& in) {
  const overall providers = providers_check(s);
  overall status = overall::healthy;
  if (providers == overall::unhealthy || in.database == dependency_state::unhealthy) {
    status = overall::unhealthy;
  } else if (providers == overall::degraded || in.redis == dependency_state::unhealthy) {
    status = overall::degraded;
  }
  json::object body;
  body["status"] = name_of(status);
  body["timestamp"] = iso8601_utc(in.now);
  body["version"] = in.version;
  json::object checks;
  checks["database"] = to_string(in.database);
  checks["redis"] = to_string(in.redis);
  checks["providers"] = name_of(providers);
  body["checks"] = std::move(checks);
  return {status == overall::unhealthy ? 503u : 200u, to_text(body)};
}

std::string render_dashboard(const snapshot& s) {
  json::array providers;
  std::int64_t healthy = 0;
  std::int64_t degraded = 0;
  std::int64_t down = 0;
  double score_sum = 0;
  for (const provider_health& p : s.providers) {
    json::object o;
    o["name"] = p.name;
    o["status"] = to_string(p.status);
    o["availability"] = ratio(p.availability);
    o["error_rate"] = ratio(p.error_rate);
    o["avg_response_time_ms"] = static_cast<std::int64_t>(std::llround(p.avg_latency_s * 1000));
    o["health_score"] = ratio(p.health_score);
    o["requests_last_hour"] = p.requests_last_hour;
    o["errors_last_hour"] = p.errors_last_hour;
    o["circuit_breaker_state"] = to_string(p.breaker);
    providers.push_back(std::move(o));
    switch (p.status) {
      case provider_status::healthy: ++healthy; break;
      case provider_status::degraded: ++degraded; break;
      case provider_status::down: ++down; break;
    }
    score_sum += p.health_score;
  }
  json::object summary;
  summary["total_providers"] = static_cast<std::int64_t>(s.providers.size());
  summary["healthy"] = healthy;
  summary["degraded"] = degraded;
  summary["down"] = down;
  summary["overall_health_score"] = s.providers.empty() ? 0.0
                                                        : ratio(score_sum / static_cast<double>(s.providers.size()));
  json::object body;
  body["timestamp"] = iso8601_utc(s.computed_at);
  body["providers"] = std::move(providers);
  body["summary"] = std::move(summary);
  return to_text(body);
}

std::string render_breakers(const std::vector<breaker_info>& breakers, wall_time now) {
  json::array list;
  for (const breaker_info& b : breakers) {
    json::object o;
    o["provider"] = b.provider;
    o["state"] = to_string(b.state);
    o["consecutive_failures"] = b.consecutive_failures;
    o["reopen_count"] = b.reopen_count;
    o["open_duration_s"] = b.open_duration_s;
    o["retry_at"] = optional_time(b.retry_at);
    o["half_open_trials_in_flight"] = b.trials_in_flight;
    o["half_open_successes"] = b.trial_successes;
    o["last_transition_at"] = optional_time(b.last_transition_at);
    list.push_back(std::move(o));
  }
  json::object body;
  body["timestamp"] = iso8601_utc(now);
  body["circuit_breakers"] = std::move(list);
  return to_text(body);
}

dashboard_cache::dashboard_cache(std::chrono::duration<double> ttl, const clock_source& clock)
    : ttl_(std::chrono::duration_cast<std::chrono::nanoseconds>(ttl)), clock_(clock) {}

std::shared_ptr<const std::string> dashboard_cache::get(const std::function<std::string()>& render) {
  std::lock_guard lock(mu_);
  const steady_time now = clock_.steady();
  if (body_ && now - rendered_at_ < ttl_) return body_;
  body_ = std::make_shared<const std::string>(render());
  rendered_at_ = now;
  return body_;
}

}  // namespace gatewayz::health

#include <set>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "fixture.hpp"
#include "health/render.hpp"

namespace gatewayz::health::test {
namespace {

namespace json = boost::json;

provider_health provider(std::string name, provider_status status) {
  provider_health p;
  p.name = std::move(name);
  p.status = status;
  p.available = status != provider_status::down;
  return p;
}

snapshot snapshot_of(std::vector<provider_health> providers) {
  snapshot s;
  s.computed_at = manual_clock().wall();
  s.providers = std::move(providers);
  return s;
}

health_inputs inputs(dependency_state database = dependency_state::healthy,
                     dependency_state redis = dependency_state::healthy) {
  return health_inputs{"1.0.0", database, redis, manual_clock().wall()};
}

TEST(Render, Iso8601Utc) {
  EXPECT_EQ(iso8601_utc(manual_clock().wall()), "2025-12-23T10:30:00Z");
  EXPECT_EQ(iso8601_utc(wall_time{} + std::chrono::milliseconds(1999)), "1970-01-01T00:00:01Z");
}

TEST(Render, HealthGoldenWhenHealthy) {
  const snapshot s = snapshot_of({provider("a", provider_status::healthy), provider("b", provider_status::healthy)});
  const http_answer answer = render_health(s, inputs());
  EXPECT_EQ(answer.status, 200u);
  EXPECT_EQ(answer.body, R"({"status":"healthy","timestamp":"2025-12-23T10:30:00Z","version":"1.0.0",)"
                         R"("checks":{"database":"healthy","redis":"healthy","providers":"healthy"}})");
}

TEST(Render, HealthDegradedStillAnswers200) {
  const snapshot some_down =
      snapshot_of({provider("a", provider_status::down), provider("b", provider_status::healthy)});
  http_answer answer = render_health(some_down, inputs());
  EXPECT_EQ(answer.status, 200u);
  EXPECT_EQ(answer.body, R"({"status":"degraded","timestamp":"2025-12-23T10:30:00Z","version":"1.0.0",)"
                         R"("checks":{"database":"healthy","redis":"healthy","providers":"degraded"}})");

  const snapshot healthy = snapshot_of({provider("a", provider_status::healthy)});
  answer = render_health(healthy, inputs(dependency_state::healthy, dependency_state::unhealthy));
  EXPECT_EQ(answer.status, 200u);
  EXPECT_NE(answer.body.find(R"("status":"degraded")"), std::string::npos);

  const snapshot one_degraded = snapshot_of({provider("a", provider_status::degraded)});
  answer = render_health(one_degraded, inputs());
  EXPECT_EQ(answer.status, 200u);
  EXPECT_NE(answer.body.find(R"("providers":"degraded")"), std::string::npos);
}

TEST(Render, HealthUnhealthyAnswers503) {
  const snapshot all_down = snapshot_of({provider("a", provider_status::down), provider("b", provider_status::down)});
  http_answer answer = render_health(all_down, inputs());
  EXPECT_EQ(answer.status, 503u);
  EXPECT_EQ(answer.body, R"({"status":"unhealthy","timestamp":"2025-12-23T10:30:00Z","version":"1.0.0",)"
                         R"("checks":{"database":"healthy","redis":"healthy","providers":"unhealthy"}})");

  const snapshot healthy = snapshot_of({provider("a", provider_status::healthy)});
  answer = render_health(healthy, inputs(dependency_state::unhealthy));
  EXPECT_EQ(answer.status, 503u);
  EXPECT_NE(answer.body.find(R"("database":"unhealthy")"), std::string::npos);

  EXPECT_EQ(render_health(snapshot_of({}), inputs()).status, 503u);
}

TEST(Render, HealthWithDependenciesNotConfigured) {
  const snapshot healthy = snapshot_of({provider("a", provider_status::healthy)});
  const http_answer answer =
      render_health(healthy, inputs(dependency_state::not_configured, dependency_state::not_configured));
  EXPECT_EQ(answer.status, 200u);
  EXPECT_EQ(answer.body, R"({"status":"healthy","timestamp":"2025-12-23T10:30:00Z","version":"1.0.0",)"
                         R"("checks":{"database":"not_configured","redis":"not_configured","providers":"healthy"}})");
}

TEST(Render, DashboardGolden) {
  provider_health openrouter = provider("openrouter", provider_status::healthy);
  openrouter.availability = 0.98;
  openrouter.error_rate = 0.02;
  openrouter.avg_latency_s = 0.4504;
  openrouter.health_score = 0.94999999;
  openrouter.requests_last_hour = 1523;
  openrouter.errors_last_hour = 31;
  provider_health cerebras = provider("cerebras", provider_status::down);
  cerebras.availability = 0;
  cerebras.error_rate = 0.15;
  cerebras.avg_latency_s = 1.2;
  cerebras.health_score = 0.405;
  cerebras.requests_last_hour = 234;
  cerebras.errors_last_hour = 35;
  cerebras.breaker = breaker_state::open;
  provider_health idle = provider("idle", provider_status::healthy);
  const std::string body = render_dashboard(snapshot_of({openrouter, cerebras, idle}));
  EXPECT_EQ(body, R"({"timestamp":"2025-12-23T10:30:00Z","providers":[)"
                  R"({"name":"openrouter","status":"healthy","availability":0.98,"error_rate":0.02,)"
                  R"("avg_response_time_ms":450,"health_score":0.95,"requests_last_hour":1523,"errors_last_hour":31,)"
                  R"("circuit_breaker_state":"closed"},)"
                  R"({"name":"cerebras","status":"down","availability":0.0,"error_rate":0.15,)"
                  R"("avg_response_time_ms":1200,"health_score":0.405,"requests_last_hour":234,"errors_last_hour":35,)"
                  R"("circuit_breaker_state":"open"},)"
                  R"({"name":"idle","status":"healthy","availability":1.0,"error_rate":0.0,)"
                  R"("avg_response_time_ms":0,"health_score":1.0,"requests_last_hour":0,"errors_last_hour":0,)"
                  R"("circuit_breaker_state":"closed"}],)"
                  R"("summary":{"total_providers":3,"healthy":2,"degraded":0,"down":1,"overall_health_score":0.785}})");
}

TEST(Render, DashboardFromTheMonitorHasExactlyTheGuidesShape) {
  harness h;
  for (int i = 0; i < 10; ++i) h.attempt(0, outcome::success, 450ms);
  for (int i = 0; i < 5; ++i) h.attempt(1, outcome::failure);
  h.mon->run_once();
  const json::value v = json::parse(render_dashboard(*h.mon->current()));
  const auto keys = [](const json::object& o) {
    std::set<std::string> out;
    for (const auto& m : o) out.insert(std::string(m.key()));
    return out;
  };
  EXPECT_EQ(keys(v.as_object()), (std::set<std::string>{"timestamp", "providers", "summary"}));
  const json::array& providers = v.at("providers").as_array();
  ASSERT_EQ(providers.size(), 2u);
  for (const auto& p : providers) {
    EXPECT_EQ(keys(p.as_object()), (std::set<std::string>{"name", "status", "availability", "error_rate",
                                                          "avg_response_time_ms", "health_score", "requests_last_hour",
                                                          "errors_last_hour", "circuit_breaker_state"}));
    EXPECT_TRUE(p.at("avg_response_time_ms").is_int64());
    EXPECT_TRUE(p.at("availability").is_double());
  }
  EXPECT_EQ(providers[0].at("avg_response_time_ms").as_int64(), 450);
  EXPECT_EQ(providers[0].at("requests_last_hour").as_int64(), 10);
  EXPECT_EQ(providers[1].at("status").as_string(), "down");
  EXPECT_EQ(providers[1].at("circuit_breaker_state").as_string(), "open");
  EXPECT_EQ(providers[1].at("errors_last_hour").as_int64(), 5);
  const json::object& summary = v.at("summary").as_object();
  EXPECT_EQ(keys(summary),
            (std::set<std::string>{"total_providers", "healthy", "degraded", "down", "overall_health_score"}));
  EXPECT_EQ(summary.at("total_providers").as_int64(), 2);
  EXPECT_EQ(summary.at("healthy").as_int64(), 1);
  EXPECT_EQ(summary.at("down").as_int64(), 1);
  // (1.0 + (0 + 0 + 0.3)) / 2
  EXPECT_DOUBLE_EQ(summary.at("overall_health_score").as_double(), 0.65);
}

TEST(Render, BreakersGolden) {
  harness h;
  for (int i = 0; i < 5; ++i) h.attempt(0, outcome::failure);
  const std::string body = render_breakers(h.mon->breakers(), h.clock.wall());
  EXPECT_EQ(body,
            R"({"timestamp":"2025-12-23T10:30:00Z","circuit_breakers":[)"
            R"({"provider":"alpha","state":"open","consecutive_failures":0,"reopen_count":0,"open_duration_s":60.0,)"
            R"("retry_at":"2025-12-23T10:31:00Z","half_open_trials_in_flight":0,"half_open_successes":0,)"
            R"("last_transition_at":"2025-12-23T10:30:00Z"},)"
            R"({"provider":"beta","state":"closed","consecutive_failures":0,"reopen_count":0,"open_duration_s":60.0,)"
            R"("retry_at":null,"half_open_trials_in_flight":0,"half_open_successes":0,"last_transition_at":null}]})");
}

TEST(Render, DashboardCacheServesTheSameBodyWhileFresh) {
  manual_clock clock;
  dashboard_cache cache(std::chrono::seconds(30), clock);
  int renders = 0;
  const auto render = [&] { return "body " + std::to_string(++renders); };
  const auto first = cache.get(render);
  EXPECT_EQ(*first, "body 1");
  clock.advance(std::chrono::seconds(29));
  EXPECT_EQ(cache.get(render), first);
  EXPECT_EQ(renders, 1);
  clock.advance(std::chrono::seconds(1));
  const auto second = cache.get(render);
  EXPECT_EQ(*second, "body 2");
  EXPECT_EQ(*first, "body 1");  // a body handed out stays valid
  EXPECT_EQ(cache.get(render), second);
  EXPECT_EQ(renders, 2);
}

}  // namespace
}  // namespace gatewayz::health::test

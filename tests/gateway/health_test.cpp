// Provider health in the request path: circuit breakers opening and closing
// on real mock-provider failures, failover with zero client-visible errors,
// health-aware ordering, and the /health, /health/dashboard and admin
// endpoints reporting exactly what the test sent.

#include <algorithm>
#include <thread>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

std::optional<double> sample(const std::string& text, std::string_view series) {
  const auto pos = text.find(std::string(series) + " ");
  if (pos == std::string::npos || (pos != 0 && text[pos - 1] != '\n')) return std::nullopt;
  const auto start = pos + series.size() + 1;
  return std::stod(text.substr(start, text.find('\n', start) - start));
}

class HealthTest : public GatewayTest {
 protected:
  // alpha then beta serve gpt-4o-mini. Scores are recomputed only when a
  // test calls run_once(), so routing order is deterministic.
  config::gateway_config shared_model(const mock::mock_provider& a, const mock::mock_provider& b) {
    auto cfg = two_providers(url_of(a), url_of(b));
    cfg.health.interval_s = 3600;
    cfg.health.dashboard_cache_s = 0;
    cfg.circuit_breaker.failure_threshold = 3;
    cfg.circuit_breaker.open_s = 0.3;
    cfg.circuit_breaker.max_open_s = 1;
    cfg.circuit_breaker.half_open_requests = 2;
    cfg.circuit_breaker.min_requests = 1000;
    return cfg;
  }
  health::monitor& monitor() { return gateway_->app().health(); }
  // The outcome of an attempt is recorded just after its response is
  // written, so a client may read the answer a moment before that.
  health::breaker_state settled_state(std::size_t provider, health::breaker_state expected) {
    const auto deadline = clock_type::now() + 2s;
    while (monitor().state(provider) != expected && clock_type::now() < deadline) std::this_thread::sleep_for(2ms);
    return monitor().state(provider);
  }
  std::string metrics() { return settled_metrics(port()); }
  json::object dashboard_provider(const json::value& dashboard, std::string_view name) {
    for (const auto& p : dashboard.at("providers").as_array()) {
      if (p.at("name").as_string() == name) return p.as_object();
    }
    ADD_FAILURE() << "no provider " << name << " in " << json::serialize(dashboard);
    return {};
  }
};

TEST_F(HealthTest, FailingProviderOpensItsBreakerAndTrafficFailsOverWithoutClientErrors) {
  auto& bad = add_mock();
  auto& good = add_mock();
  set_failure(bad, mock::failure_mode::http_500);
  start_gateway(shared_model(bad, good));

  for (int i = 0; i < 10; ++i) {
    const auto r = post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200U) << r.body;
    EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");
  }
  // Three consecutive failures opened alpha's breaker; after that it got no traffic.
  EXPECT_EQ(bad.stats().requests, 3U);
  EXPECT_EQ(good.stats().requests, 10U);
  EXPECT_EQ(settled_state(0, health::breaker_state::open), health::breaker_state::open);

  const auto text = metrics();
  EXPECT_EQ(sample(text, R"(gatewayz_circuit_breaker_state{provider="alpha",state="open"})"), 1.0);
  EXPECT_EQ(sample(text, R"(gatewayz_circuit_breaker_state{provider="alpha",state="closed"})"), 0.0);
  EXPECT_EQ(sample(text, R"(gatewayz_circuit_breaker_state{provider="beta",state="closed"})"), 1.0);
  EXPECT_EQ(
      sample(text, R"(circuit_breaker_state_transitions_total{provider="alpha",from_state="closed",to_state="open"})"),
      1.0);
  EXPECT_EQ(sample(text, R"(circuit_breaker_rejected_requests_total{provider="alpha"})"), 7.0);
  EXPECT_EQ(sample(text, R"(model_inference_requests_total{model="gpt-4o-mini",provider="beta",status="success"})"),
            10.0);

  // The provider recovers: after the cool-down two trial requests close the breaker.
  set_failure(bad, std::nullopt);
  std::this_thread::sleep_for(400ms);
  for (int i = 0; i < 2; ++i) {
    const auto r = post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200U) << r.body;
    EXPECT_EQ(r.header("x-gatewayz-provider"), "alpha");
  }
  EXPECT_EQ(settled_state(0, health::breaker_state::closed), health::breaker_state::closed);
  const auto after = metrics();
  EXPECT_EQ(
      sample(after,
             R"(circuit_breaker_state_transitions_total{provider="alpha",from_state="open",to_state="half_open"})"),
      1.0);
  EXPECT_EQ(
      sample(after,
             R"(circuit_breaker_state_transitions_total{provider="alpha",from_state="half_open",to_state="closed"})"),
      1.0);
  EXPECT_EQ(sample(after, R"(gatewayz_circuit_breaker_state{provider="alpha",state="closed"})"), 1.0);
}

// ---- a healed provider gets its trials (health.hpp, "Routing order") ----------

class HealedProviderTest : public HealthTest {
 protected:
  // The issue's setup: alpha (listed first) fails until its breaker opens
  // (for open_s 1), beta serves everything, and the monitor has seen alpha's
  // failures, so its score is below beta's. One trial closes the breaker.
  void open_alpha(mock::mock_provider& bad, mock::mock_provider& good, config::gateway_config cfg) {
    cfg.circuit_breaker.half_open_requests = 1;
    // Long enough for the requests below to finish within the cool-down on a
    // loaded machine (a request after it would be alpha's trial).
    cfg.circuit_breaker.open_s = 1;
    cfg.circuit_breaker.max_open_s = 4;
    // (The mocks count active probes as requests too.)
    const bool probing = std::any_of(cfg.providers.begin(), cfg.providers.end(),
                                     [](const config::provider_config& p) { return p.probe_interval_s > 0; });
    const unsigned failures = cfg.circuit_breaker.failure_threshold;
    start_gateway(std::move(cfg));
    set_failure(bad, mock::failure_mode::http_500);
    for (int i = 0; i < 4; ++i) {
      const auto r = post("/v1/chat/completions", chat_body);
      ASSERT_EQ(r.status, 200U) << r.body;
      ASSERT_EQ(r.header("x-gatewayz-provider"), "beta");
    }
    ASSERT_EQ(settled_state(0, health::breaker_state::open), health::breaker_state::open);
    if (!probing) {
      ASSERT_EQ(bad.stats().requests, failures);
      ASSERT_EQ(good.stats().requests, 4U);
    }
    monitor().run_once();
    ASSERT_LT(monitor().score(0), monitor().score(1));
  }
  health::breaker_info alpha_breaker() { return monitor().breakers()[0]; }
  std::string served_by() {
    const auto r = post("/v1/chat/completions", chat_body);
    EXPECT_EQ(r.status, 200U) << r.body;
    return r.header("x-gatewayz-provider");
  }
};

TEST_F(HealedProviderTest, TrialGoesFirstThenRealTrafficReturns) {
  auto& bad = add_mock();
  auto& good = add_mock();
  open_alpha(bad, good, shared_model(bad, good));
  set_failure(bad, std::nullopt);
  std::this_thread::sleep_for(1050ms);  // open_s 1
  // The monitor turns it half-open; its score still holds the failures.
  monitor().run_once();
  ASSERT_EQ(monitor().state(0), health::breaker_state::half_open);
  ASSERT_LT(monitor().score(0), monitor().score(1));

  // One request after the cool-down is alpha's trial, and it closes the breaker.
  EXPECT_EQ(served_by(), "alpha");
  EXPECT_EQ(settled_state(0, health::breaker_state::closed), health::breaker_state::closed);
  monitor().run_once();
  const double published = monitor().current()->providers[0].health_score;
  EXPECT_LT(published, monitor().current()->providers[1].health_score);  // the window holds the failures
  // Routing counts from the recovery, so the primary gets its traffic back ...
  for (int i = 0; i < 5; ++i) EXPECT_EQ(served_by(), "alpha");
  EXPECT_EQ(bad.stats().requests, 9U);
  EXPECT_EQ(good.stats().requests, 4U);
  // ... and its published score recovers with it.
  std::this_thread::sleep_for(50ms);
  monitor().run_once();
  EXPECT_GT(monitor().current()->providers[0].health_score, published);
}

TEST_F(HealedProviderTest, FailedTrialFailsOverAndReopensWithDoubledCoolDown) {
  auto& bad = add_mock();
  auto& good = add_mock();
  open_alpha(bad, good, shared_model(bad, good));
  EXPECT_DOUBLE_EQ(alpha_breaker().open_duration_s, 1.0);
  std::this_thread::sleep_for(1050ms);

  // The trial fails; the client still gets beta's answer.
  EXPECT_EQ(served_by(), "beta");
  EXPECT_EQ(bad.stats().requests, 4U);
  ASSERT_EQ(settled_state(0, health::breaker_state::open), health::breaker_state::open);
  EXPECT_DOUBLE_EQ(alpha_breaker().open_duration_s, 2.0);
  EXPECT_EQ(alpha_breaker().reopen_count, 1U);

  // Cooling down for 2 s now: no trial after 1.05 s ...
  std::this_thread::sleep_for(1050ms);
  EXPECT_EQ(served_by(), "beta");
  EXPECT_EQ(bad.stats().requests, 4U);
  // ... one after 2 s, which closes it once alpha has healed.
  set_failure(bad, std::nullopt);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(served_by(), "alpha");
  EXPECT_EQ(settled_state(0, health::breaker_state::closed), health::breaker_state::closed);
  EXPECT_EQ(bad.stats().requests, 5U);
}

TEST_F(HealedProviderTest, TrialLostToAClientDisconnectReturnsItsSlot) {
  auto& bad = add_mock();
  auto& good = add_mock();
  open_alpha(bad, good, shared_model(bad, good));
  // Healed but slow: the client gives up during the trial.
  auto slow = bad.current_behaviour();
  slow.error_rate = 0;
  slow.latency_ms = 3000;
  bad.set_behaviour(slow);
  std::this_thread::sleep_for(1050ms);
  {
    client c(port());
    const auto r = c.post("/v1/chat/completions", chat_body, {}, 300ms);
    EXPECT_EQ(r.status, 0U);
    c.close();
  }
  // The trial was alpha's and its slot comes back as soon as the gateway sees
  // the client gone (well before the 3 s answer or trial_timeout_s).
  EXPECT_TRUE(eventually([&] { return bad.stats().requests == 4U; }, 1s));
  EXPECT_TRUE(eventually([&] { return alpha_breaker().trials_in_flight == 0; }, 1500ms));
  EXPECT_EQ(alpha_breaker().state, health::breaker_state::half_open);
  EXPECT_TRUE(monitor().wants_trial(0));

  slow.latency_ms = 0;
  bad.set_behaviour(slow);
  EXPECT_EQ(served_by(), "alpha");
  EXPECT_EQ(settled_state(0, health::breaker_state::closed), health::breaker_state::closed);
}

TEST_F(HealedProviderTest, RecoversWithActiveProbesAndTheMonitorRunning) {
  auto& bad = add_mock();
  auto& good = add_mock();
  auto cfg = shared_model(bad, good);
  cfg.health.interval_s = 0.05;  // the monitor recomputes scores by itself
  for (auto& p : cfg.providers) p.probe_interval_s = 0.1;
  // (With scores recomputed between requests, alpha's first failure already
  // puts beta first: it must open its breaker by itself.)
  cfg.circuit_breaker.failure_threshold = 1;
  open_alpha(bad, good, std::move(cfg));
  ASSERT_TRUE(eventually([&] {
    const auto s = monitor().current();
    return s->providers[0].last_probe && s->providers[1].last_probe;
  }));
  set_failure(bad, std::nullopt);
  std::this_thread::sleep_for(1050ms);
  EXPECT_LT(monitor().score(0), monitor().score(1));
  EXPECT_EQ(served_by(), "alpha");
  EXPECT_EQ(settled_state(0, health::breaker_state::closed), health::breaker_state::closed);
  // The monitor's next pass scores alpha from its recovery: real traffic goes
  // back to the primary.
  ASSERT_TRUE(eventually([&] { return monitor().score(0) == 1.0; }));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(served_by(), "alpha");
}

TEST_F(HealthTest, GaugesAndDashboardEqualWhatWasSent) {
  auto& flaky = add_mock();
  auto& good = add_mock();
  auto cfg = shared_model(flaky, good);
  cfg.circuit_breaker.failure_threshold = 100;
  start_gateway(std::move(cfg));

  // alpha: 4 successes, then 4 failures (each failed over to beta).
  for (int i = 0; i < 4; ++i) ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  set_failure(flaky, mock::failure_mode::http_500);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  // A client error is not the provider's failure.
  ASSERT_EQ(post("/v1/chat/completions", R"({"model":"gpt-4o-mini"})").status, 400U);
  std::this_thread::sleep_for(50ms);
  monitor().run_once();

  const auto r = get("/health/dashboard");
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(r.header("content-type"), "application/json");
  const auto dashboard = r.json();
  const auto alpha = dashboard_provider(dashboard, "alpha");
  EXPECT_EQ(alpha.at("requests_last_hour").as_int64(), 8);
  EXPECT_EQ(alpha.at("errors_last_hour").as_int64(), 4);
  EXPECT_DOUBLE_EQ(alpha.at("error_rate").to_number<double>(), 0.5);
  EXPECT_DOUBLE_EQ(alpha.at("availability").to_number<double>(), 0.5);
  EXPECT_EQ(alpha.at("circuit_breaker_state").as_string(), "closed");
  // 0.4 * 0.5 + 0.3 * (1 - 0.5) + 0.3 * 1 (fast answers)
  EXPECT_NEAR(alpha.at("health_score").to_number<double>(), 0.65, 1e-9);
  EXPECT_EQ(alpha.at("status").as_string(), "degraded");
  const auto beta = dashboard_provider(dashboard, "beta");
  EXPECT_EQ(beta.at("requests_last_hour").as_int64(), 4);
  EXPECT_EQ(beta.at("errors_last_hour").as_int64(), 0);
  EXPECT_EQ(beta.at("status").as_string(), "healthy");
  const auto& summary = dashboard.at("summary");
  EXPECT_EQ(summary.at("total_providers").as_int64(), 2);
  EXPECT_EQ(summary.at("healthy").as_int64(), 1);
  EXPECT_EQ(summary.at("degraded").as_int64(), 1);
  EXPECT_EQ(summary.at("down").as_int64(), 0);
  for (const char* field : {"name", "status", "availability", "error_rate", "avg_response_time_ms", "health_score",
                            "requests_last_hour", "errors_last_hour", "circuit_breaker_state"}) {
    EXPECT_TRUE(alpha.contains(field)) << field;
  }
  EXPECT_EQ(alpha.size(), 9U);

  const auto text = metrics();
  EXPECT_EQ(sample(text, R"(provider_error_rate{provider="alpha"})"), 0.5);
  EXPECT_EQ(sample(text, R"(provider_error_rate{provider="beta"})"), 0.0);
  EXPECT_EQ(sample(text, R"(provider_availability{provider="alpha"})"), 1.0);
  EXPECT_NEAR(sample(text, R"(gatewayz_provider_health_score{provider="alpha"})").value_or(-1), 0.65, 1e-9);
  EXPECT_EQ(sample(text, R"(gatewayz_provider_health_score{provider="beta"})"), 1.0);

  // With alpha's score now below beta's, beta is tried first.
  const auto next = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(next.header("x-gatewayz-provider"), "beta");
  EXPECT_EQ(flaky.stats().requests, 8U);
}

TEST_F(HealthTest, HealthIsHealthyThenUnhealthyWhenEveryProviderIsDown) {
  auto& a = add_mock();
  auto& b = add_mock();
  auto cfg = shared_model(a, b);
  cfg.circuit_breaker.failure_threshold = 1;
  cfg.circuit_breaker.open_s = 60;
  cfg.circuit_breaker.max_open_s = 60;
  start_gateway(std::move(cfg));

  const auto ok = get("/health");
  ASSERT_EQ(ok.status, 200U);
  const auto healthy = ok.json();
  EXPECT_EQ(healthy.at("status").as_string(), "healthy");
  EXPECT_EQ(healthy.at("version").as_string(), GATEWAYZ_TEST_VERSION);
  EXPECT_TRUE(healthy.at("timestamp").as_string().ends_with("Z"));
  EXPECT_EQ(healthy.at("checks").at("providers").as_string(), "healthy");
  EXPECT_EQ(healthy.at("checks").at("database").as_string(), "not_configured");
  EXPECT_EQ(healthy.at("checks").at("redis").as_string(), "not_configured");

  set_failure(a, mock::failure_mode::http_500);
  set_failure(b, mock::failure_mode::http_500);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 500U);  // both tried, both failed: both open
  ASSERT_EQ(settled_state(0, health::breaker_state::open), health::breaker_state::open);
  ASSERT_EQ(settled_state(1, health::breaker_state::open), health::breaker_state::open);
  const auto refused = post("/v1/chat/completions", chat_body);
  expect_openai_error(refused, 503, "service_unavailable");
  EXPECT_EQ(a.stats().requests + b.stats().requests, 2U);  // open breakers send nothing

  monitor().run_once();
  const auto down = get("/health");
  EXPECT_EQ(down.status, 503U);
  EXPECT_EQ(down.json().at("status").as_string(), "unhealthy");
  EXPECT_EQ(down.json().at("checks").at("providers").as_string(), "unhealthy");
  const auto dashboard = get("/health/dashboard").json();
  EXPECT_EQ(dashboard.at("summary").at("down").as_int64(), 2);
  EXPECT_EQ(dashboard_provider(dashboard, "alpha").at("circuit_breaker_state").as_string(), "open");
}

TEST_F(HealthTest, AdminApiWithoutAnAdminKeyIsServedOnlyOnALoopbackListenAddress) {
  auto& a = add_mock();
  auto& b = add_mock();
  auto cfg = shared_model(a, b);
  // The harness always binds 127.0.0.1; the gateway decides from the configured address.
  for (const char* listen : {"127.0.0.1:8080", "[::1]:8080", "127.0.0.2:8080"}) {
    SCOPED_TRACE(listen);
    ASSERT_FALSE(config::set_listen(cfg.server, listen));
    start_gateway(cfg);
    EXPECT_EQ(get("/admin/circuit-breakers").status, 200U);
  }
  for (const char* listen : {"0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080", "[::ffff:10.1.2.3]:8080"}) {
    SCOPED_TRACE(listen);
    ASSERT_FALSE(config::set_listen(cfg.server, listen));
    start_gateway(cfg);
    const auto r = get("/admin/circuit-breakers");
    expect_openai_error(r, 403, "admin_key_required");
    EXPECT_NE(error_message(r).find("auth.admin_key"), std::string::npos) << r.body;
    EXPECT_EQ(post("/admin/circuit-breakers/alpha/reset", "").status, 403U);
    // Everything else is served as before.
    EXPECT_EQ(get("/health/dashboard").status, 200U);
    EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  }
  // With an admin key the address does not matter.
  cfg.auth.admin_key = "admin-secret";
  start_gateway(cfg);
  expect_openai_error(get("/admin/circuit-breakers"), 401, "invalid_api_key");
  EXPECT_EQ(get("/admin/circuit-breakers", {{"Authorization", "Bearer admin-secret"}}).status, 200U);
}

TEST_F(HealthTest, AdminListsAndResetsBreakersBehindTheAdminKey) {
  auto& a = add_mock();
  auto& b = add_mock();
  auto cfg = shared_model(a, b);
  cfg.circuit_breaker.failure_threshold = 1;
  cfg.circuit_breaker.open_s = 60;
  cfg.circuit_breaker.max_open_s = 60;
  cfg.auth.admin_key = "admin-secret";
  start_gateway(std::move(cfg));
  set_failure(a, mock::failure_mode::http_500);
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200U);
  ASSERT_EQ(settled_state(0, health::breaker_state::open), health::breaker_state::open);

  expect_openai_error(get("/admin/circuit-breakers"), 401, "invalid_api_key");
  const header_list admin{{"Authorization", "Bearer admin-secret"}};
  const auto listing = get("/admin/circuit-breakers", admin);
  ASSERT_EQ(listing.status, 200U) << listing.body;
  const auto listing_json = listing.json();
  const auto& breakers = listing_json.at("circuit_breakers").as_array();
  ASSERT_EQ(breakers.size(), 2U);
  EXPECT_EQ(breakers[0].at("provider").as_string(), "alpha");
  EXPECT_EQ(breakers[0].at("state").as_string(), "open");

  expect_openai_error(post("/admin/circuit-breakers/nobody/reset", "", admin), 404, "provider_not_found");
  EXPECT_EQ(get("/admin/circuit-breakers/alpha/reset", admin).status, 405U);
  const auto reset = post("/admin/circuit-breakers/alpha/reset", "", admin);
  ASSERT_EQ(reset.status, 200U) << reset.body;
  EXPECT_EQ(settled_state(0, health::breaker_state::closed), health::breaker_state::closed);
  EXPECT_EQ(listing.body.find("admin-secret"), std::string::npos);
}

}  // namespace
}  // namespace gatewayz::test

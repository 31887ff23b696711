// The prober against a real in-process mock provider on 127.0.0.1.

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "fixture.hpp"
#include "health/http_prober.hpp"
#include "mock/mock_provider.hpp"

namespace gatewayz::health::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

const std::string upstream_key = "upstream-secret-key";

std::unique_ptr<mock::mock_provider> start_mock(std::string required_key = upstream_key, std::uint16_t port = 0) {
  mock::mock_options o;
  o.server.host = "127.0.0.1";
  o.server.port = port;
  o.server.threads = 1;
  o.required_api_key = std::move(required_key);
  o.shutdown_grace = std::chrono::milliseconds(200);
  auto m = std::make_unique<mock::mock_provider>(std::move(o));
  m->start();
  return m;
}

std::string url_of(std::uint16_t port) { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }

config::provider_config provider_config(std::string name, std::string base_url,
                                        config::provider_kind kind = config::provider_kind::openai) {
  config::provider_config p;
  p.name = std::move(name);
  p.kind = kind;
  p.base_url = std::move(base_url);
  p.api_key = upstream_key;
  p.connect_timeout_s = 2;
  return p;
}

options probed(std::vector<config::provider_config> const& providers, double timeout_s = 5) {
  options o;
  for (const auto& p : providers) {
    provider_info info;
    info.name = p.name;
    info.probe_interval_s = 30;
    info.probe_timeout_s = timeout_s;
    o.providers.push_back(info);
  }
  return o;
}

std::string header_of(const mock::recorded_request& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

TEST(HttpProber, SucceedsAgainstTheMockWithBearerAuth) {
  auto mock = start_mock();
  const std::vector providers{provider_config("openai-mock", url_of(mock->port()))};
  const auto runtimes = providers::build_runtimes(providers);
  http_prober prober(runtimes, probed(providers));
  const std::size_t index = 0;
  for (int round = 0; round < 2; ++round) {  // the second reuses the kept-alive connection
    const auto results = prober.probe({&index, 1});
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0].ok) << results[0].detail;
    EXPECT_EQ(results[0].http_status, 200u);
  }
  const auto recorded = mock->recent_requests();
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded[0].method, "GET");
  EXPECT_EQ(recorded[0].target, "/v1/models");
  EXPECT_EQ(header_of(recorded[0], "authorization"), "Bearer " + upstream_key);
  EXPECT_EQ(header_of(recorded[0], "content-type"), "<absent>");
}

TEST(HttpProber, AnthropicProbesCarryItsHeaders) {
  auto mock = start_mock("");
  auto p = provider_config("anthropic-mock", url_of(mock->port()), config::provider_kind::anthropic);
  p.headers["x-extra"] = "yes";
  const std::vector providers{p};
  const auto runtimes = providers::build_runtimes(providers);
  http_prober prober(runtimes, probed(providers));
  const std::size_t index = 0;
  const auto results = prober.probe({&index, 1});
  EXPECT_TRUE(results[0].ok) << results[0].detail;
  const auto recorded = mock->recent_requests();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(header_of(recorded[0], "x-api-key"), upstream_key);
  EXPECT_EQ(header_of(recorded[0], "anthropic-version"), "2023-06-01");
  EXPECT_EQ(header_of(recorded[0], "x-extra"), "yes");
  EXPECT_EQ(header_of(recorded[0], "authorization"), "<absent>");
}

TEST(HttpProber, FailuresAreReported) {
  auto mock = start_mock();
  auto wrong_key = provider_config("wrong-key", url_of(mock->port()));
  wrong_key.api_key = "revoked-key-123456";
  auto wrong_path = provider_config("wrong-path", url_of(mock->port()));
  // A port nothing listens on.
  std::uint16_t closed_port = 0;
  {
    asio::io_context io;
    tcp::acceptor a{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    closed_port = a.local_endpoint().port();
  }
  auto refused = provider_config("refused", url_of(closed_port));
  auto healthy = provider_config("healthy", url_of(mock->port()));
  const std::vector providers{wrong_key, wrong_path, refused, healthy};
  options o = probed(providers);
  o.providers[1].probe_path = "/nope";
  const auto runtimes = providers::build_runtimes(providers);
  http_prober prober(runtimes, o);
  const std::vector<std::size_t> all{0, 1, 2, 3};
  const auto results = prober.probe(all);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].http_status, 401u);
  EXPECT_FALSE(results[1].ok);
  EXPECT_EQ(results[1].http_status, 404u);
  EXPECT_FALSE(results[2].ok);
  EXPECT_EQ(results[2].http_status, 0u);
  EXPECT_FALSE(results[2].cancelled);
  EXPECT_NE(results[2].detail.find("connect"), std::string::npos) << results[2].detail;
  EXPECT_TRUE(results[3].ok) << results[3].detail;
}

TEST(HttpProber, SilentUpstreamTimesOutAndStopCancels) {
  // Accepted by the kernel's backlog, never answered.
  asio::io_context io;
  tcp::acceptor silent{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  const auto providers = std::vector{provider_config("silent", url_of(silent.local_endpoint().port()))};
  {
    const auto runtimes = providers::build_runtimes(providers);
    http_prober prober(runtimes, probed(providers, 0.3));
    const std::size_t index = 0;
    const auto started = std::chrono::steady_clock::now();
    const auto results = prober.probe({&index, 1});
    EXPECT_FALSE(results[0].ok);
    EXPECT_FALSE(results[0].cancelled);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  }
  const auto runtimes = providers::build_runtimes(providers);
  http_prober prober(runtimes, probed(providers, 60));
  const std::size_t index = 0;
  auto running = std::async(std::launch::async, [&] { return prober.probe({&index, 1}); });
  std::this_thread::sleep_for(200ms);
  const auto stopped_at = std::chrono::steady_clock::now();
  prober.stop();
  ASSERT_EQ(running.wait_for(5s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 3s);
  const auto results = running.get();
  EXPECT_FALSE(results[0].ok);
  EXPECT_TRUE(results[0].cancelled);
  EXPECT_TRUE(prober.probe({&index, 1})[0].cancelled);  // stopped for good
}

TEST(HttpProber, MonitorMarksAnIdleProviderDownWhileItsProbeFails) {
  auto mock = start_mock();
  const std::uint16_t port = mock->port();
  const std::vector providers{provider_config("openai-mock", url_of(port))};
  options o = probed(providers);
  o.providers[0].probe_interval_s = 60;
  const auto runtimes = providers::build_runtimes(providers);
  harness h(o, std::make_unique<http_prober>(runtimes, o));
  h.mon->run_once();
  EXPECT_EQ(h.mon->current()->providers[0].status, provider_status::healthy);
  EXPECT_TRUE(h.mon->current()->providers[0].last_probe->ok);

  mock->stop();
  h.clock.advance(60s);
  h.mon->run_once();
  const provider_health p = h.mon->current()->providers[0];
  EXPECT_EQ(p.status, provider_status::down);
  EXPECT_FALSE(p.last_probe->ok);
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"openai-mock"}), 0);

  mock = start_mock(upstream_key, port);  // back on the same port
  h.clock.advance(60s);
  h.mon->run_once();
  EXPECT_EQ(h.mon->current()->providers[0].status, provider_status::healthy);
  EXPECT_EQ(h.gauge(h.metrics.provider_availability, {"openai-mock"}), 1);
}

TEST(ClassifyFailure, TransportFailures) {
  EXPECT_EQ(classify_failure(http::upstream_failure::none), outcome::success);
  EXPECT_EQ(classify_failure(http::upstream_failure::connect), outcome::failure);
  EXPECT_EQ(classify_failure(http::upstream_failure::timeout), outcome::failure);
  EXPECT_EQ(classify_failure(http::upstream_failure::closed), outcome::failure);
  EXPECT_EQ(classify_failure(http::upstream_failure::protocol), outcome::failure);
  EXPECT_EQ(classify_failure(http::upstream_failure::too_large), outcome::client_error);
  EXPECT_EQ(classify_failure(http::upstream_failure::cancelled), outcome::cancelled);
}

}  // namespace
}  // namespace gatewayz::health::test

#include "store/models_stats.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace gatewayz::store {
namespace {

std::chrono::system_clock::time_point at(std::int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

TEST(ModelsStats, RendersTheGuideShapeExactly) {
  model_stats opus;
  opus.model = "anthropic/claude-opus-4.5";
  opus.provider = "openrouter";
  opus.total_requests = 6365;
  opus.successful_requests = 6320;
  opus.failed_requests = 45;
  opus.avg_latency_ms = 1234.0;
  opus.p95_latency_ms = 2100.004;
  opus.p99_latency_ms = 3499.996;
  opus.total_tokens = 12'500'000;
  opus.total_cost = 125'500'000'000;
  opus.uptime_percentage = 6320.0 * 100.0 / 6365.0;  // 99.2930…
  model_stats quoted;
  quoted.model = "we\"ird\\model";
  quoted.provider = "p";
  quoted.total_requests = 1;
  quoted.successful_requests = 0;
  quoted.failed_requests = 1;
  quoted.avg_latency_ms = 0.125;
  quoted.p95_latency_ms = 0.125;
  quoted.p99_latency_ms = 0.125;
  quoted.total_tokens = 0;
  quoted.total_cost = 1;  // one nano-dollar
  quoted.uptime_percentage = 0.0;

  // 2025-12-23T10:30:00Z plus 700 ms (fractions are dropped).
  const auto now = at(1'766'485'800) + std::chrono::milliseconds(700);
  EXPECT_EQ(render_models_stats({opus, quoted}, "24h", now),
            R"({"timestamp":"2025-12-23T10:30:00Z","time_window":"24h","models":[)"
            R"({"model":"anthropic/claude-opus-4.5","provider":"openrouter","total_requests":6365,)"
            R"("successful_requests":6320,"failed_requests":45,"avg_latency_ms":1234,"p95_latency_ms":2100,)"
            R"("p99_latency_ms":3500,"total_tokens":12500000,"total_cost_usd":125.5,"uptime_percentage":99.29},)"
            R"({"model":"we\"ird\\model","provider":"p","total_requests":1,"successful_requests":0,)"
            R"("failed_requests":1,"avg_latency_ms":0.13,"p95_latency_ms":0.13,"p99_latency_ms":0.13,)"
            R"("total_tokens":0,"total_cost_usd":0.000000001,"uptime_percentage":0}]})");
  // Requests no provider was tried for (every breaker open) have no provider in the ledger.
  model_stats refused;
  refused.model = "m";
  refused.total_requests = 2;
  refused.failed_requests = 2;
  refused.uptime_percentage = 0.0;
  EXPECT_EQ(render_models_stats({refused}, "1h", at(0)),
            R"({"timestamp":"1970-01-01T00:00:00Z","time_window":"1h","models":[)"
            R"({"model":"m","provider":"none","total_requests":2,"successful_requests":0,"failed_requests":2,)"
            R"("avg_latency_ms":0,"p95_latency_ms":0,"p99_latency_ms":0,"total_tokens":0,"total_cost_usd":0,)"
            R"("uptime_percentage":0}]})");
  EXPECT_EQ(render_models_stats({}, "1h", at(0)),
            R"({"timestamp":"1970-01-01T00:00:00Z","time_window":"1h","models":[]})");
}

TEST(ModelsStats, ParsesTheThreeTimeWindows) {
  EXPECT_EQ(parse_time_window("1h")->length, std::chrono::hours(1));
  EXPECT_EQ(parse_time_window("24h")->length, std::chrono::hours(24));
  EXPECT_EQ(parse_time_window("7d")->length, std::chrono::hours(168));
  EXPECT_EQ(parse_time_window("7d")->label, "7d");
  for (const char* bad : {"", "1d", "2h", "24H", "7d ", "1h;", "-1h", "0h"}) {
    EXPECT_FALSE(parse_time_window(bad)) << bad;
  }
  EXPECT_EQ(default_time_window.label, "24h");
  EXPECT_EQ(default_time_window.length, std::chrono::hours(24));
}

TEST(ModelsStatsCache, ReusesABodyUntilTheTtlPassesPerWindow) {
  models_stats_cache cache(std::chrono::seconds(30));
  const auto t0 = models_stats_cache::clock::time_point(std::chrono::hours(1));
  int renders = 0;
  auto render = [&] { return "body" + std::to_string(++renders); };
  EXPECT_EQ(cache.get("24h", t0, render), "body1");
  EXPECT_EQ(cache.get("24h", t0 + std::chrono::seconds(29), render), "body1");
  EXPECT_EQ(cache.get("1h", t0 + std::chrono::seconds(29), render), "body2");  // windows are cached apart
  EXPECT_EQ(cache.get("24h", t0 + std::chrono::seconds(30), render), "body3");
  EXPECT_EQ(renders, 3);
  // A failed render caches nothing.
  EXPECT_THROW(cache.get("7d", t0, [&]() -> std::string { throw store_error("db down"); }), store_error);
  EXPECT_EQ(cache.get("7d", t0, render), "body4");
  EXPECT_THROW(models_stats_cache(std::chrono::seconds(0)), std::invalid_argument);
}

TEST(ModelsStatsCache, ConcurrentMissesRenderOnce) {
  models_stats_cache cache(std::chrono::seconds(60));
  const auto now = models_stats_cache::clock::now();
  std::atomic<int> renders{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      const std::string body = cache.get("24h", now, [&] {
        ++renders;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return std::string("rendered");
      });
      EXPECT_EQ(body, "rendered");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(renders.load(), 1);
}

}  // namespace
}  // namespace gatewayz::store

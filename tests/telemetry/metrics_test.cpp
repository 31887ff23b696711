#include "telemetry/metrics.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/gunzip.hpp"

namespace gatewayz::telemetry {
namespace {

using test::gunzip;

// A small registry covering each type, with values exact in binary floating
// point so the golden output cannot depend on summation order.
struct golden_registry {
  registry reg{2};
  golden_registry() {
    auto& requests = reg.counter("gatewayz_requests", "Requests handled.", {"provider", "status"});
    auto& in_flight = reg.gauge("gatewayz_in_flight_requests", "Requests in flight.");
    auto& latency = reg.histogram("gatewayz_request_duration_seconds", "Request latency.", {0.5, 1, 2.5}, {"provider"});
    requests.series({"openai", "200"}).inc(0, 3);
    requests.series({"anthropic", "500"}).inc(1);
    in_flight.series().set(2);
    const histogram_handle h = latency.series({"openai"});
    h.observe(0, 0.25);
    h.observe(1, 0.5);
    h.observe(1, 2);
    h.observe(0, 7);
  }
};

TEST(Metrics, GoldenText) {
  const golden_registry g;
  EXPECT_EQ(g.reg.render_text(),
            "# HELP gatewayz_requests_total Requests handled.\n"
            "# TYPE gatewayz_requests_total counter\n"
            "gatewayz_requests_total{provider=\"anthropic\",status=\"500\"} 1\n"
            "gatewayz_requests_total{provider=\"openai\",status=\"200\"} 3\n"
            "# HELP gatewayz_in_flight_requests Requests in flight.\n"
            "# TYPE gatewayz_in_flight_requests gauge\n"
            "gatewayz_in_flight_requests 2\n"
            "# HELP gatewayz_request_duration_seconds Request latency.\n"
            "# TYPE gatewayz_request_duration_seconds histogram\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"0.5\"} 2\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"1.0\"} 2\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"2.5\"} 3\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"+Inf\"} 4\n"
            "gatewayz_request_duration_seconds_sum{provider=\"openai\"} 9.75\n"
            "gatewayz_request_duration_seconds_count{provider=\"openai\"} 4\n");
}

TEST(Metrics, GoldenOpenMetrics) {
  const golden_registry g;
  EXPECT_EQ(g.reg.render_openmetrics(),
            "# HELP gatewayz_requests Requests handled.\n"
            "# TYPE gatewayz_requests counter\n"
            "gatewayz_requests_total{provider=\"anthropic\",status=\"500\"} 1\n"
            "gatewayz_requests_total{provider=\"openai\",status=\"200\"} 3\n"
            "# HELP gatewayz_in_flight_requests Requests in flight.\n"
            "# TYPE gatewayz_in_flight_requests gauge\n"
            "gatewayz_in_flight_requests 2\n"
            "# HELP gatewayz_request_duration_seconds Request latency.\n"
            "# TYPE gatewayz_request_duration_seconds histogram\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"0.5\"} 2\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"1.0\"} 2\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"2.5\"} 3\n"
            "gatewayz_request_duration_seconds_bucket{provider=\"openai\",le=\"+Inf\"} 4\n"
            "gatewayz_request_duration_seconds_sum{provider=\"openai\"} 9.75\n"
            "gatewayz_request_duration_seconds_count{provider=\"openai\"} 4\n"
            "# EOF\n");
}

TEST(Metrics, DescribeListsEveryFamilyAsScraped) {
  registry reg{1};
  reg.counter("gatewayz_requests", "Requests handled.", {"provider", "status"});
  reg.gauge("gatewayz_in_flight_requests", "Requests in flight.");
  reg.histogram("gatewayz_request_duration_seconds", "Request latency.", {0.5, 1}, {"provider"});
  const auto families = reg.describe();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "gatewayz_requests_total");  // as scraped, series or not
  EXPECT_EQ(families[0].type, "counter");
  EXPECT_EQ(families[0].help, "Requests handled.");
  EXPECT_EQ(families[0].label_names, (std::vector<std::string>{"provider", "status"}));
  EXPECT_EQ(families[1].name, "gatewayz_in_flight_requests");
  EXPECT_EQ(families[1].type, "gauge");
  EXPECT_TRUE(families[1].label_names.empty());
  EXPECT_EQ(families[2].name, "gatewayz_request_duration_seconds");
  EXPECT_EQ(families[2].type, "histogram");
  EXPECT_EQ(families[2].label_names, (std::vector<std::string>{"provider"}));
}

TEST(Metrics, RenderPicksFormatByContentType) {
  const golden_registry g;
  EXPECT_EQ(g.reg.render(content_type_text), g.reg.render_text());
  EXPECT_EQ(g.reg.render(content_type_openmetrics), g.reg.render_openmetrics());
}

TEST(Metrics, Escaping) {
  registry reg(1);
  reg.gauge("g", "back\\slash\nnew \"quoted\"", {"l"}).series({"a\"b\\c\nd"}).set(1);
  EXPECT_EQ(reg.render_text(),
            "# HELP g back\\\\slash\\nnew \"quoted\"\n"
            "# TYPE g gauge\n"
            "g{l=\"a\\\"b\\\\c\\nd\"} 1\n");
  EXPECT_EQ(reg.render_openmetrics(),
            "# HELP g back\\\\slash\\nnew \\\"quoted\\\"\n"
            "# TYPE g gauge\n"
            "g{l=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# EOF\n");
}

TEST(Metrics, FloatFormatting) {
  registry reg(1);
  auto& g = reg.gauge("v", "values", {"k"});
  g.series({"a"}).set(std::numeric_limits<double>::quiet_NaN());
  g.series({"b"}).set(std::numeric_limits<double>::infinity());
  g.series({"c"}).set(-std::numeric_limits<double>::infinity());
  g.series({"d"}).set(0.1);
  g.series({"e"}).set(1e-05);
  g.series({"f"}).set(-3);
  g.series({"g"}).set(0.30000000000000004);
  EXPECT_EQ(reg.render_text(),
            "# HELP v values\n# TYPE v gauge\n"
            "v{k=\"a\"} NaN\nv{k=\"b\"} +Inf\nv{k=\"c\"} -Inf\nv{k=\"d\"} 0.1\n"
            "v{k=\"e\"} 1e-05\nv{k=\"f\"} -3\nv{k=\"g\"} 0.30000000000000004\n");

  registry hist(1);
  hist.histogram("h_seconds", "h", {1e-05, 0.1, 1, 10, std::numeric_limits<double>::infinity()}).series().observe(0, 5);
  const std::string om = hist.render_openmetrics();
  for (const char* le : {"le=\"1e-05\"", "le=\"0.1\"", "le=\"1.0\"", "le=\"10.0\"", "le=\"+Inf\""}) {
    EXPECT_NE(om.find(le), std::string::npos) << le;
  }
  // The explicit trailing +Inf is folded into the implicit one.
  EXPECT_EQ(om.find("+Inf"), om.rfind("+Inf"));
}

TEST(Metrics, CounterTotalSuffixNotDoubled) {
  registry reg(1);
  reg.counter("a_total", "declared with suffix").series().inc(0, 2);
  reg.counter("b", "declared without suffix").series().inc(0, 0.5);
  EXPECT_EQ(reg.render_text(),
            "# HELP a_total declared with suffix\n# TYPE a_total counter\na_total 2\n"
            "# HELP b_total declared without suffix\n# TYPE b_total counter\nb_total 0.5\n");
  EXPECT_EQ(reg.render_openmetrics(),
            "# HELP a declared with suffix\n# TYPE a counter\na_total 2\n"
            "# HELP b declared without suffix\n# TYPE b counter\nb_total 0.5\n# EOF\n");
  // `a` and `a_total` would expose the same samples.
  EXPECT_THROW(reg.counter("a", "again"), std::invalid_argument);
}

TEST(Metrics, LabelledFamilyWithoutSeriesRendersOnlyHeader) {
  registry reg(1);
  reg.counter("x", "help", {"k"});
  EXPECT_EQ(reg.render_text(), "# HELP x_total help\n# TYPE x_total counter\n");
}

TEST(Metrics, SameLabelsResolveToSameSeries) {
  registry reg(2);
  auto& c = reg.counter("c", "c", {"k"});
  c.series({"x"}).inc(0);
  c.series({"x"}).inc(1);
  EXPECT_EQ(c.series({"x"}).value(), 2.0);
}

TEST(Metrics, RejectsInvalidDeclarations) {
  registry reg(1);
  EXPECT_THROW(reg.counter("1bad", "h"), std::invalid_argument);
  EXPECT_THROW(reg.counter("bad-name", "h"), std::invalid_argument);
  EXPECT_THROW(reg.gauge("ok", "h", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(reg.gauge("ok2", "h", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h1", "h", {1, 1}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h2", "h", {2, 1}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h3", "h", {std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h4", "h", {1}, {"le"}), std::invalid_argument);
  auto& g = reg.gauge("g", "h", {"a", "b"});
  EXPECT_THROW(g.series({"only one"}), std::invalid_argument);
  EXPECT_THROW(registry(0), std::invalid_argument);
}

TEST(Metrics, HistogramBucketBoundaries) {
  registry reg(1);
  const histogram_handle h = reg.histogram("h", "h", {1, 2}).series();
  h.observe(0, 1);  // le is inclusive
  h.observe(0, 1.5);
  h.observe(0, 3);
  h.observe(0, std::numeric_limits<double>::quiet_NaN());
  const std::string text = reg.render_text();
  EXPECT_NE(text.find("h_bucket{le=\"1.0\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("h_bucket{le=\"2.0\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("h_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("h_count 4\n"), std::string::npos);
}

TEST(Metrics, ConcurrentShardUpdatesSumExactly) {
  constexpr int threads = 4;
  constexpr int iterations = 100000;
  registry reg(threads);
  const counter_handle c = reg.counter("c", "c", {"k"}).series({"v"});
  const gauge_handle g = reg.gauge("g", "g").series();
  // More buckets than fit one cache line, so shards' bucket rows span several lines.
  const histogram_handle h = reg.histogram("h", "h", {0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}).series();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, shard = static_cast<std::size_t>(t)] {
      for (int i = 0; i < iterations; ++i) {
        c.inc(shard);
        g.inc(shard, 2);
        g.dec(shard);
        h.observe(shard, static_cast<double>(i % 12));
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(c.value(), threads * iterations);
  EXPECT_EQ(g.value(), threads * iterations);
  EXPECT_EQ(h.count(), static_cast<std::uint64_t>(threads) * iterations);
  double per_thread_sum = 0;
  for (int i = 0; i < iterations; ++i) per_thread_sum += i % 12;
  EXPECT_EQ(h.sum(), threads * per_thread_sum);
}

TEST(Metrics, CreatingSeriesWhileOthersUpdate) {
  constexpr int threads = 4;
  constexpr int iterations = 50000;
  constexpr int new_series = 2000;
  registry reg(threads);
  auto& counters = reg.counter("c", "c", {"k"});
  auto& hist = reg.histogram("h", "h", {1, 2}, {"k"});
  const counter_handle hot = counters.series({"hot"});
  const histogram_handle hot_h = hist.series({"hot"});
  std::atomic<bool> done{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, shard = static_cast<std::size_t>(t)] {
      for (int i = 0; i < iterations; ++i) {
        hot.inc(shard);
        hot_h.observe(shard, 1.5);
      }
      // New label sets resolved on the update threads themselves as well.
      for (int i = 0; i < 50; ++i) counters.series({"t" + std::to_string(shard) + "_" + std::to_string(i)}).inc(shard);
    });
  }
  std::thread scraper([&] {
    while (!done.load()) (void)reg.render_openmetrics();
  });
  for (int i = 0; i < new_series; ++i) {
    const std::string label = std::to_string(i);
    counters.series({label}).inc(0);
    hist.series({label});
  }
  for (auto& w : workers) w.join();
  done.store(true);
  scraper.join();

  EXPECT_EQ(hot.value(), threads * iterations);
  EXPECT_EQ(hot_h.count(), static_cast<std::uint64_t>(threads) * iterations);
  const std::string text = reg.render_text();
  std::size_t samples = 0;
  for (std::size_t pos = 0; (pos = text.find("\nc_total{", pos)) != std::string::npos; ++pos) ++samples;
  EXPECT_EQ(samples, 1u + new_series + threads * 50u);
}

// Each series' label block is escaped once, when the series is created, and
// copied into every sample line from then on: check it on every line kind.
TEST(Metrics, CachedLabelBlocksAreEscaped) {
  registry reg(2);
  const std::string nasty = "a\\b\"c\nd";
  reg.counter("c", "c", {"k", "m"}).series({nasty, "plain"}).inc(1, 2);
  reg.gauge("g", "g", {"k"}).series({nasty}).set(1);
  const histogram_handle h = reg.histogram("h", "h", {1}, {"k"}).series({nasty});
  h.observe(0, 0.5);
  h.observe(1, 2);
  const std::string escaped = "a\\\\b\\\"c\\nd";
  const std::string expected =
      "# HELP c_total c\n# TYPE c_total counter\n"
      "c_total{k=\"" +
      escaped +
      "\",m=\"plain\"} 2\n"
      "# HELP g g\n# TYPE g gauge\n"
      "g{k=\"" +
      escaped +
      "\"} 1\n"
      "# HELP h h\n# TYPE h histogram\n"
      "h_bucket{k=\"" +
      escaped +
      "\",le=\"1.0\"} 1\n"
      "h_bucket{k=\"" +
      escaped +
      "\",le=\"+Inf\"} 2\n"
      "h_sum{k=\"" +
      escaped +
      "\"} 2.5\n"
      "h_count{k=\"" +
      escaped + "\"} 2\n";
  EXPECT_EQ(reg.render_text(), expected);
  EXPECT_EQ(reg.render_text(), expected);  // the second scrape renders from the cached blocks
  EXPECT_EQ(reg.render_openmetrics(),
            "# HELP c c\n# TYPE c counter\n" + expected.substr(expected.find("c_total{")) + "# EOF\n");
}

// The sample lines of `name` in a scrape, in order.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) lines.push_back(line);
  }
  return lines;
}

// Series created after a scrape are merged into the cached render order at
// their sorted place (front, middle, back, between each other), in every
// family type, and keep their own values.
TEST(Metrics, SeriesCreatedAfterRenderKeepSortedOrder) {
  registry reg(2);
  auto& c = reg.counter("c", "c", {"a", "b"});
  auto& g = reg.gauge("g", "g", {"a", "b"});
  auto& h = reg.histogram("h", "h", {1}, {"a", "b"});
  std::vector<std::pair<std::string, std::string>> created;
  int value = 0;
  const auto add = [&](const std::string& a, const std::string& b) {
    ++value;
    c.series({a, b}).inc(static_cast<std::size_t>(value % 2), value);
    g.series({a, b}).set(value);
    h.series({a, b}).observe(0, value);
    created.emplace_back(a, b);
  };
  const auto check = [&] {
    std::vector<std::pair<std::string, std::string>> sorted = created;
    std::sort(sorted.begin(), sorted.end());
    const std::string text = reg.render_text();
    const std::vector<std::string> counters = lines_starting(text, "c_total{");
    const std::vector<std::string> gauges = lines_starting(text, "g{");
    const std::vector<std::string> counts = lines_starting(text, "h_count{");
    ASSERT_EQ(counters.size(), sorted.size()) << text;
    ASSERT_EQ(gauges.size(), sorted.size()) << text;
    ASSERT_EQ(counts.size(), sorted.size()) << text;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      const auto& [a, b] = sorted[i];
      const int v = static_cast<int>(std::find(created.begin(), created.end(), sorted[i]) - created.begin()) + 1;
      const std::string labels = "{a=\"" + a + "\",b=\"" + b + "\"} ";
      EXPECT_EQ(counters[i], "c_total" + labels + std::to_string(v));
      EXPECT_EQ(gauges[i], "g" + labels + std::to_string(v));
      EXPECT_EQ(counts[i], "h_count" + labels + "1");
    }
  };
  check();  // empty families
  add("m", "x");
  add("f", "x");
  check();
  add("a", "x");  // before everything
  add("z", "x");  // after everything
  add("m", "a");  // same first value, sorts before ("m","x")
  add("m", "y");
  add("g", "x");
  check();
  check();  // nothing new: the cached order as it is
  for (int i = 0; i < 50; ++i) add("n" + std::to_string(i * 7 % 50), std::to_string(i));
  check();
  add("", "");  // empty values sort first
  check();
}

// A scrape that grows its output many times over (the first one of a large
// registry has no size to reserve from), with the longest exemplar and
// value spellings, renders every byte.
TEST(Metrics, LargeScrapesWithLongestSpellings) {
  registry reg(2);
  auto& c = reg.counter("big", "b", {"k"});
  const std::string long_value(300, 'v');
  for (int i = 0; i < 3000; ++i) {
    c.series({long_value + std::to_string(10000 + i)}).inc(0, 3 * std::numeric_limits<double>::denorm_min());
  }
  const histogram_handle h = reg.histogram("ex_seconds", "e", {1, 2, 3}, {"k"}, true).series({long_value});
  const std::string quotes(64, '"');  // escapes to twice its length
  for (int b = 0; b < 4; ++b) h.observe(1, b + 0.5, quotes, -1.7976931348623157e308);
  const std::string text = reg.render_text();
  const std::string om = reg.render_openmetrics();
  const std::string again = reg.render_openmetrics();  // reserved from the last size this time
  EXPECT_EQ(om, again);
  const std::vector<std::string> counters = lines_starting(text, "big_total{");
  ASSERT_EQ(counters.size(), 3000u);
  EXPECT_EQ(counters[1234], "big_total{k=\"" + long_value + "11234\"} 1.5e-323");
  std::string escaped_id;
  for (int i = 0; i < 64; ++i) escaped_id += "\\\"";
  const std::vector<std::string> buckets = lines_starting(om, "ex_seconds_bucket{");
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0], "ex_seconds_bucket{k=\"" + long_value + "\",le=\"1.0\"} 1 # {trace_id=\"" + escaped_id +
                            "\"} 0.5 " + fmt::format("{:.3f}", -1.7976931348623157e308));
  EXPECT_EQ(buckets[3].substr(0, buckets[3].find(" # ")), "ex_seconds_bucket{k=\"" + long_value + "\",le=\"+Inf\"} 4");
  EXPECT_TRUE(om.ends_with("ex_seconds_count{k=\"" + long_value + "\"} 4\n# EOF\n"));
}

// Values are written by a fast path for whole numbers and by fmt otherwise;
// both must spell every value exactly as fmt's "{}" (Go's shortest form).
TEST(Metrics, ValueSpellingMatchesShortestRoundTrip) {
  // (No -0.0: a gauge's value is its set value plus the shards' deltas, so +0.)
  std::vector<double> values{0.0,
                             1.0,
                             -1.0,
                             100000.0,
                             1e15,
                             1e16,
                             1e17,
                             9007199254740991.0,
                             9007199254740992.0,
                             -9007199254740991.0,
                             -9007199254740993.0,
                             123456789.5,
                             0.1,
                             1e-5,
                             1e-4,
                             5e-324,
                             1.7976931348623157e308,
                             -1.7976931348623157e308,
                             std::numeric_limits<double>::min()};
  std::uint64_t state = 42;
  for (int i = 0; i < 2000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    double bits;
    const std::uint64_t raw = state;
    std::memcpy(&bits, &raw, sizeof bits);
    if (std::isfinite(bits)) values.push_back(bits + 0.0);
    // + 0.0 turns a -0.0 (0 * -1) into the 0 a gauge would expose.
    values.push_back(static_cast<double>(static_cast<std::int64_t>(state >> (i % 64))) * ((i % 3) == 0 ? -1 : 1) + 0.0);
    values.push_back(static_cast<double>(state % 100000) / 1000.0);
  }
  registry reg(1);
  auto& g = reg.gauge("v", "v", {"i"});
  for (std::size_t i = 0; i < values.size(); ++i) {
    g.series({fmt::format("{:06}", i)}).set(values[i]);  // sorts in creation order
  }
  const std::vector<std::string> lines = lines_starting(reg.render_text(), "v{");
  ASSERT_EQ(lines.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(lines[i], fmt::format("v{{i=\"{:06}\"}} {}", i, values[i])) << fmt::format("{:a}", values[i]);
  }
}

// Scrapes run while every shard keeps updating its cells: each scrape is
// self-consistent (cumulative buckets never decrease, _count equals the +Inf
// bucket, values only grow between scrapes) and the last one is exact.
TEST(Metrics, ScrapesDuringUpdatesAreConsistent) {
  constexpr int threads = 3;
  constexpr int iterations = 20000;
  registry reg(threads);
  auto& counters = reg.counter("c", "c", {"k"});
  auto& hists = reg.histogram("h", "h", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {"k"}, true);
  std::vector<counter_handle> cs;
  std::vector<histogram_handle> hs;
  for (int k = 0; k < 20; ++k) {
    cs.push_back(counters.series({std::to_string(k)}));
    hs.push_back(hists.series({std::to_string(k)}));
  }
  std::atomic<int> running{threads};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, shard = static_cast<std::size_t>(t)] {
      for (int i = 0; i < iterations; ++i) {
        const std::size_t k = static_cast<std::size_t>(i) % cs.size();
        cs[k].inc(shard);
        if (i % 2 == 0) {
          hs[k].observe(shard, static_cast<double>(i % 12), "t" + std::to_string(i));
        } else {
          hs[k].observe(shard, static_cast<double>(i % 12));
        }
      }
      running.fetch_sub(1);
    });
  }
  const auto parse = [](const std::string& line) {
    const std::size_t space = line.find("} ");
    return std::stod(line.substr(space + 2, line.find(' ', space + 2) - space - 2));
  };
  std::vector<double> last_counters(cs.size(), 0);
  int scrapes = 0;
  bool last = false;
  while (!last) {
    last = running.load() == 0;  // read before scraping: the final scrape sees every update
    const std::string om = reg.render_openmetrics();
    ++scrapes;
    const std::vector<std::string> counter_lines = lines_starting(om, "c_total{");
    ASSERT_EQ(counter_lines.size(), cs.size());
    for (std::size_t k = 0; k < counter_lines.size(); ++k) {
      const double v = parse(counter_lines[k]);
      EXPECT_GE(v, last_counters[k]);
      last_counters[k] = v;
    }
    const std::vector<std::string> buckets = lines_starting(om, "h_bucket{");
    const std::vector<std::string> counts = lines_starting(om, "h_count{");
    ASSERT_EQ(buckets.size(), hs.size() * 11);
    ASSERT_EQ(counts.size(), hs.size());
    for (std::size_t k = 0; k < hs.size(); ++k) {
      double previous = 0;
      for (std::size_t b = 0; b < 11; ++b) {
        const double v = parse(buckets[k * 11 + b]);
        EXPECT_GE(v, previous) << buckets[k * 11 + b];
        previous = v;
      }
      EXPECT_EQ(parse(counts[k]), previous) << counts[k];
    }
  }
  for (auto& w : workers) w.join();
  EXPECT_GE(scrapes, 1);
  double total = 0;
  for (const double v : last_counters) total += v;
  EXPECT_EQ(total, threads * iterations);
  std::uint64_t observed = 0;
  for (const auto& h : hs) observed += h.count();
  EXPECT_EQ(observed, static_cast<std::uint64_t>(threads) * iterations);
}

TEST(Exemplars, LatestPerBucketInOpenMetricsOnly) {
  registry reg(2);
  const histogram_handle h = reg.histogram("rt_seconds", "rt", {0.5, 1}, {}, true).series();
  h.observe(0, 0.25, "older", 1520879607.5);
  h.observe(1, 0.3, "4bf92f3577b34da6a3ce929d0e0e4736", 1520879607.789);  // newer, other shard
  h.observe(0, 5, "a\"b", 1520879610);
  h.observe(1, 0.75);  // no exemplar for this bucket
  EXPECT_EQ(reg.render_openmetrics(),
            "# HELP rt_seconds rt\n"
            "# TYPE rt_seconds histogram\n"
            "rt_seconds_bucket{le=\"0.5\"} 2 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.3 1520879607.789\n"
            "rt_seconds_bucket{le=\"1.0\"} 3\n"
            "rt_seconds_bucket{le=\"+Inf\"} 4 # {trace_id=\"a\\\"b\"} 5 1520879610.000\n"
            "rt_seconds_sum 6.3\n"
            "rt_seconds_count 4\n"
            "# EOF\n");
  EXPECT_EQ(reg.render_text().find('#', reg.render_text().find("rt_seconds_bucket")), std::string::npos);
}

TEST(Exemplars, IgnoredWhenDisabledOrTooLong) {
  registry reg(1);
  const histogram_handle off = reg.histogram("off_seconds", "h", {1}).series();
  const histogram_handle on = reg.histogram("on_seconds", "h", {1}, {}, true).series();
  off.observe(0, 0.5, "abc");
  on.observe(0, 0.5, std::string(65, 'x'));
  EXPECT_EQ(off.count(), 1u);
  EXPECT_EQ(on.count(), 1u);
  EXPECT_EQ(reg.render_openmetrics().find("trace_id"), std::string::npos);
  on.observe(0, 0.5, std::string(64, 'x'));  // wall-clock timestamp variant
  EXPECT_NE(reg.render_openmetrics().find("{trace_id=\"" + std::string(64, 'x') + "\"} 0.5 "), std::string::npos);
}

TEST(Exemplars, ConcurrentWritesNeverTear) {
  constexpr int threads = 4;
  constexpr int iterations = 20000;
  registry reg(threads);
  const histogram_handle h = reg.histogram("t_seconds", "t", {1e9}, {}, true).series();
  std::atomic<bool> done{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, shard = static_cast<std::size_t>(t)] {
      for (int i = 1; i <= iterations; ++i) {
        // The id spells the value, over several 8-byte words, so a torn read shows as a mismatch.
        const std::string digits = std::to_string(i);
        h.observe(shard, i, std::string(40 - digits.size(), '0') + digits, i);
      }
    });
  }
  int checked = 0;
  while (!done.load()) {
    if (checked > 200) done.store(true);
    const std::string om = reg.render_openmetrics();
    const std::size_t pos = om.find("# {trace_id=\"");
    if (pos == std::string::npos) continue;
    const std::size_t id_start = pos + 13;
    const std::string id = om.substr(id_start, 40);
    ASSERT_EQ(om.substr(id_start + 40, 3), "\"} ") << om;
    const double value = std::stod(om.substr(id_start + 43));
    EXPECT_EQ(std::stod(id), value) << om;
    ++checked;
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(h.count(), static_cast<std::uint64_t>(threads) * iterations);
}

TEST(Negotiate, PrometheusDefaultAcceptPicksOpenMetrics) {
  // Prometheus 3 default scrape Accept header (docs/instrumenting/content_negotiation.md).
  EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                      "application/openmetrics-text;version=0.0.1;q=0.4,"
                      "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
                      "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"),
            content_type_openmetrics);
  // Prometheus 2.x default.
  EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            content_type_openmetrics);
}

TEST(Negotiate, Cases) {
  EXPECT_EQ(negotiate(""), content_type_text);
  EXPECT_EQ(negotiate("*/*"), content_type_text);
  EXPECT_EQ(negotiate("text/plain;version=0.0.4"), content_type_text);
  EXPECT_EQ(negotiate("application/openmetrics-text"), content_type_openmetrics);
  EXPECT_EQ(negotiate("Application/OpenMetrics-Text ; Version=\"1.0.0\""), content_type_openmetrics);
  EXPECT_EQ(negotiate("text/plain, application/openmetrics-text; q=0.1"), content_type_openmetrics);
  EXPECT_EQ(negotiate("application/openmetrics-text;q=0"), content_type_text);
  EXPECT_EQ(negotiate("application/openmetrics-text;q=0.0,text/plain"), content_type_text);
  EXPECT_EQ(negotiate("application/openmetrics-text;q=bogus"), content_type_text);
  EXPECT_EQ(negotiate("application/openmetrics-text;version=0.0.1"), content_type_text);
  EXPECT_EQ(negotiate("application/json"), content_type_text);
  EXPECT_EQ(content_type_text, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(content_type_openmetrics, "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(Negotiate, AcceptsGzip) {
  // Prometheus' scrape header.
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("gzip, deflate, br"));
  EXPECT_TRUE(accepts_gzip("deflate,  GZip ;q=0.5"));
  EXPECT_TRUE(accepts_gzip("x-gzip"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_TRUE(accepts_gzip("identity;q=1, *;q=0.1"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("deflate, br"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0.000"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0, *"));  // an explicit refusal wins over "*"
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=junk"));
  EXPECT_FALSE(accepts_gzip("gzipx, xgzip"));
}

TEST(Gzip, ARenderedScrapeRoundTripsThroughZlib) {
  registry reg(2);
  auto& c = reg.counter("requests_total", "Requests.", {"model", "provider", "status"});
  for (int i = 0; i < 500; ++i) c.series({"model-" + std::to_string(i), "provider", "success"}).inc(0, i);
  const std::string text = reg.render_text();
  const std::string packed = gzip(text);
  ASSERT_GE(packed.size(), 18U);
  EXPECT_EQ(static_cast<unsigned char>(packed[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(packed[1]), 0x8b);
  EXPECT_LT(packed.size() * 5, text.size()) << "a scrape's text should compress at least fivefold";
  EXPECT_EQ(gunzip(packed), text);
  EXPECT_EQ(gunzip(gzip("")), "");
}

TEST(Gzip, ACompressorKeptAcrossCallsGivesWholeStreamsEachTime) {
  // Each call is one complete stream, whatever the size of the one before
  // (the output buffer stays at its peak).
  gzip_compressor compressor;
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "{\"level\":\"info\",\"n\":" + std::to_string(i * 7919 % 100003) + "}\n";
  EXPECT_EQ(gunzip(compressor.compress(big)), big);
  EXPECT_EQ(gunzip(compressor.compress("small")), "small");
  EXPECT_EQ(gunzip(compressor.compress("")), "");
  EXPECT_EQ(gunzip(compressor.compress(big.substr(0, 100000))), big.substr(0, 100000));
}

double sample_value(const std::string& text, const std::string& name) {
  const std::size_t pos = text.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + name.size() + 2));
}

TEST(ProcessCollector, YieldsPositiveValues) {
  registry reg(1);
  const process_collector collector(reg);
  // Burn a little CPU so the CPU counter has something to show.
  volatile double sink = 0;
  for (int i = 0; i < 20000000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
  collector.collect();
  const std::string text = reg.render_text();
  EXPECT_GT(sample_value(text, "process_resident_memory_bytes"), 0) << text;
  EXPECT_GT(sample_value(text, "process_virtual_memory_bytes"), 0) << text;
  EXPECT_GT(sample_value(text, "process_cpu_seconds_total"), 0) << text;
  EXPECT_GT(sample_value(text, "process_start_time_seconds"), 1.5e9) << text;
  EXPECT_GT(sample_value(text, "process_open_fds"), 0) << text;
  EXPECT_GT(sample_value(text, "process_max_fds"), 0) << text;
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
}

TEST(Promtool, CheckMetricsAcceptsTextExposition) {
  ASSERT_EQ(access("/usr/bin/promtool", X_OK), 0) << "promtool missing: run scripts/install-deps.sh";
  golden_registry g;
  g.reg.gauge("gatewayz_label_escapes", "Help with \\ and\nnewline.", {"value"})
      .series({"quote \" backslash \\ newline \n end"})
      .set(std::numeric_limits<double>::quiet_NaN());
  const process_collector collector(g.reg);
  collector.collect();

  const std::string path = testing::TempDir() + "gw_telemetry_promtool_" + std::to_string(getpid()) + ".prom";
  {
    std::ofstream out(path);
    out << g.reg.render_text();
  }
  const std::string command = "/usr/bin/promtool check metrics < '" + path + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = pclose(pipe);
  std::remove(path.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
}

}  // namespace
}  // namespace gatewayz::telemetry

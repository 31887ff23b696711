#include "tracing/exporter.hpp"

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "support/gunzip.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::tracing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using namespace std::chrono_literals;

// A collector on 127.0.0.1: answers each POST with the next scripted status
// (200 once the script is used up) and keeps what it received.
class fake_collector {
 public:
  struct received {
    std::string target, content_type, content_encoding, auth, body;
  };

  explicit fake_collector(std::deque<std::pair<unsigned, std::string>> script = {}) : script_(std::move(script)) {
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~fake_collector() {
    stop_ = true;
    // Wakes the blocking accept (closing alone would not).
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  std::vector<received> requests() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  void serve() {
    while (!stop_) {
      boost::system::error_code ec;
      asio::ip::tcp::socket socket{io_};
      acceptor_.accept(socket, ec);
      if (ec) return;
      beast::flat_buffer buffer;
      while (true) {
        bhttp::request<bhttp::string_body> req;
        bhttp::read(socket, buffer, req, ec);
        if (ec) break;
        received r{std::string(req.target()), std::string(req[bhttp::field::content_type]),
                   std::string(req[bhttp::field::content_encoding]), std::string(req[bhttp::field::authorization]),
                   req.body()};
        std::pair<unsigned, std::string> answer{200, ""};
        {
          std::lock_guard lock(mu_);
          got_.push_back(std::move(r));
          if (!script_.empty()) {
            answer = script_.front();
            script_.pop_front();
          }
        }
        bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(answer.first), 11};
        res.set(bhttp::field::content_type, "application/x-protobuf");
        if (!answer.second.empty()) res.set(bhttp::field::retry_after, answer.second);
        res.prepare_payload();
        bhttp::write(socket, res, ec);
        if (ec) break;
      }
    }
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_{io_};
  std::deque<std::pair<unsigned, std::string>> script_;
  std::mutex mu_;
  std::vector<received> got_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

span make_span(std::string name) {
  span s;
  s.trace = new_trace_id();
  s.id = new_span_id();
  s.name = std::move(name);
  s.kind = span_kind::server;
  s.start_unix_nano = 1;
  s.end_unix_nano = 2;
  return s;
}

exporter_options fast_options(const std::string& base) {
  exporter_options o;
  o.url = traces_url(base, false);
  o.producers = 2;
  o.schedule_delay = 50ms;
  o.resource.attributes = {{"service.name", "gatewayz-api"}};
  return o;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(traces_url, follows_the_exporter_specification) {
  EXPECT_EQ(traces_url("http://c:4318", false), "http://c:4318/v1/traces");
  EXPECT_EQ(traces_url("http://c:4318/mycollector/", false), "http://c:4318/mycollector/v1/traces");
  EXPECT_EQ(traces_url("http://c:4318/custom/path", true), "http://c:4318/custom/path");
  EXPECT_EQ(traces_url("http://c:4318", true), "http://c:4318/");
}

TEST(batch_exporter, posts_gzipped_protobuf_batches_with_the_configured_headers) {
  fake_collector collector;
  auto o = fast_options(collector.url());
  o.headers = {{"authorization", "Bearer t"}};
  batch_exporter exporter{o, nullptr};
  exporter.start();
  exporter.submit(0, make_span("a"));
  exporter.submit(1, make_span("b"));
  ASSERT_TRUE(eventually([&] { return exporter.totals().exported == 2; }));
  const auto got = collector.requests();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].target, "/v1/traces");
  EXPECT_EQ(got[0].content_type, "application/x-protobuf");
  EXPECT_EQ(got[0].content_encoding, "gzip");
  EXPECT_EQ(got[0].auth, "Bearer t");
  const auto body = test::gunzip(got[0].body);
  ASSERT_TRUE(body);
  EXPECT_NE(body->find("gatewayz-api"), std::string::npos);
}

TEST(batch_exporter, sends_json_uncompressed_when_asked) {
  fake_collector collector;
  auto o = fast_options(collector.url());
  o.encoding = otlp_encoding::json;
  o.gzip = false;
  batch_exporter exporter{o, nullptr};
  exporter.start();
  exporter.submit(0, make_span("a"));
  ASSERT_TRUE(eventually([&] { return exporter.totals().exported == 1; }));
  const auto got = collector.requests();
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[0].content_encoding, "");
  const auto doc = boost::json::parse(got[0].body);
  EXPECT_EQ(doc.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0).at("name"), "a");
}

TEST(batch_exporter, retries_429_and_503_honouring_retry_after_but_not_400) {
  fake_collector collector{{{429, "0"}, {503, "1"}}};
  batch_exporter exporter{fast_options(collector.url()), nullptr};
  exporter.start();
  const auto start = std::chrono::steady_clock::now();
  exporter.submit(0, make_span("a"));
  ASSERT_TRUE(eventually([&] { return exporter.totals().exported == 1; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);  // the 503's Retry-After: 1
  EXPECT_EQ(collector.requests().size(), 3u);               // 429, 503, then 200

  fake_collector refusing{{{400, ""}, {200, ""}}};
  batch_exporter second{fast_options(refusing.url()), nullptr};
  second.start();
  second.submit(0, make_span("c"));
  ASSERT_TRUE(eventually([&] { return second.totals().dropped_export_failed == 1; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(refusing.requests().size(), 1u);  // a 400 is not retried
}

TEST(batch_exporter, a_full_queue_drops_and_counts_without_blocking) {
  telemetry::registry registry{3};
  telemetry::catalog metrics{registry, "test"};
  auto o = fast_options("http://127.0.0.1:9");  // nothing listens
  o.producers = 3;
  o.max_queue_size = 16;  // 2 for the background producer (an eighth), 7 for each of the two shards
  o.export_timeout = 300ms;
  batch_exporter exporter{o, &metrics};
  // Not started: nothing drains the queue.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 9; ++i) exporter.submit(0, make_span("x"));
  for (int i = 0; i < 7; ++i) exporter.submit(1, make_span("y"));
  for (int i = 0; i < 3; ++i) exporter.submit(2, make_span("z"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(exporter.totals().dropped_queue_full, 3u);  // 2 of shard 0's, 1 background
  EXPECT_EQ(metrics.spans_dropped.series({"queue_full"}).value(), 3.0);
  // Started with the collector down: the queued spans are dropped as export failures.
  exporter.start();
  ASSERT_TRUE(eventually([&] { return exporter.totals().dropped_export_failed == 16; }));
  EXPECT_EQ(metrics.spans_dropped.series({"export_failed"}).value(), 16.0);
}

TEST(batch_exporter, stop_flushes_what_is_queued) {
  fake_collector collector;
  auto o = fast_options(collector.url());
  o.schedule_delay = 60s;
  batch_exporter exporter{o, nullptr};
  exporter.start();
  exporter.submit(0, make_span("late"));
  exporter.stop();
  EXPECT_EQ(exporter.totals().exported, 1u);
}

}  // namespace
}  // namespace gatewayz::tracing

// The upstream client against a real loopback server: exchanges hand their
// state back to the pool and take it again for the next one, so nothing of a
// failed or finished exchange (failure, detail, status, body position) may
// leak into the next, and a connection is pooled only after a complete,
// reusable response.
#include "http/client.hpp"

#include <optional>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "http/server.hpp"

namespace gatewayz::http {
namespace {

using namespace std::chrono_literals;
namespace bhttp = beast::http;

// /ok answers 200 "ok", /fail 503 "down", /reset resets the connection.
request_handler upstream_handler() {
  return [](request_context& ctx) -> asio::awaitable<void> {
    const std::string_view target = ctx.req.target();
    if (target == "/reset") {
      ctx.writer.reset();
      co_return;
    }
    const bool ok = target == "/ok";
    const std::array<header_ref, 1> fields{header_ref{"Content-Type", "text/plain"}};
    co_await ctx.writer.send(ok ? 200 : 503, fields, ok ? "ok" : "down");
  };
}

struct outcome {
  upstream_failure failure = upstream_failure::none;
  std::string detail;
  unsigned status = 0;
  std::string body;
  bool complete = false;
  std::size_t idle_after = 0;
};

class client_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    server_options options;
    options.host = "127.0.0.1";
    server_.emplace(options, [](std::size_t, asio::io_context&) { return upstream_handler(); });
    server_->listen();
    thread_ = std::thread([this] { server_->run(); });
    upstream_endpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = server_->port();
    endpoint.host_header = "127.0.0.1";
    client_settings settings;
    settings.read_timeout = 5s;
    pool_ = std::make_shared<upstream_pool>(io_, endpoint, settings);
  }

  void TearDown() override {
    pool_.reset();
    server_->shutdown(200ms);
    thread_.join();
  }

  outcome exchange(std::string_view target) {
    auto task = [this, target]() -> asio::awaitable<outcome> {
      outgoing_request request;
      request.method = bhttp::verb::get;
      request.target = target;
      outcome out;
      {
        upstream_exchange ex = co_await pool_->send(request, std::chrono::steady_clock::now() + 5s);
        if (ex.failure() == upstream_failure::none) {
          out.status = ex.status();
          co_await ex.read_all(out.body, 1024);
          out.complete = ex.body_complete();
        }
        out.failure = ex.failure();
        out.detail = ex.failure_detail();
      }
      out.idle_after = pool_->idle_connections();
      co_return out;
    };
    auto result = asio::co_spawn(io_, task(), asio::use_future);
    io_.restart();
    io_.run();
    return result.get();
  }

  asio::io_context io_;
  std::optional<server> server_;
  std::thread thread_;
  std::shared_ptr<upstream_pool> pool_;
};

TEST_F(client_fixture, AFailedExchangeLeavesNothingForTheNextOne) {
  const outcome reset = exchange("/reset");
  EXPECT_NE(reset.failure, upstream_failure::none);
  EXPECT_FALSE(reset.detail.empty());
  EXPECT_EQ(reset.idle_after, 0u);  // a broken connection is not pooled

  const outcome ok = exchange("/ok");
  EXPECT_EQ(ok.failure, upstream_failure::none);
  EXPECT_EQ(ok.detail, "");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, "ok");
  EXPECT_TRUE(ok.complete);
  EXPECT_EQ(ok.idle_after, 1u);
}

TEST_F(client_fixture, FinishedExchangesReuseTheConnectionAndStartClean) {
  for (int i = 0; i < 3; ++i) {
    const outcome down = exchange("/fail");
    EXPECT_EQ(down.failure, upstream_failure::none);
    EXPECT_EQ(down.status, 503u);
    EXPECT_EQ(down.body, "down");
    const outcome ok = exchange("/ok");
    EXPECT_EQ(ok.status, 200u);
    EXPECT_EQ(ok.body, "ok");
    EXPECT_EQ(ok.idle_after, 1u);  // the one connection, pooled again each time
  }
}

TEST_F(client_fixture, AnEmptyExchangeCanBeAssignedAndDestroyed) {
  upstream_exchange empty;
  upstream_exchange other;
  other = std::move(empty);
  SUCCEED();
}

}  // namespace
}  // namespace gatewayz::http

// Tests of the HTTP server's protection and lifecycle behaviour over real
// loopback sockets: read timeouts, size limits, the connection limit,
// keep-alive and pipelining, cancellation of handlers whose client left,
// and graceful shutdown.

#include "http/server.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace gatewayz::http {
namespace {

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;
namespace bhttp = beast::http;

struct counters {
  std::atomic<int> started{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> completed{0};
};

// Routes: /echo answers the body; /wait?ms=N answers after N ms; /stream
// sends three chunks; anything else waits 30 s (a handler that only ends when
// cancelled).
request_handler make_test_handler(std::shared_ptr<counters> c) {
  return [c](request_context& ctx) -> asio::awaitable<void> {
    ++c->started;
    const std::string target(ctx.req.target());
    if (target == "/echo") {
      response res{bhttp::status::ok, ctx.req.version()};
      res.body() = ctx.req.body();
      co_await ctx.writer.send(std::move(res));
      ++c->completed;
      co_return;
    }
    if (target == "/stream") {
      response_head head;
      head.result(bhttp::status::ok);
      head.set(bhttp::field::content_type, "text/event-stream");
      co_await ctx.writer.begin_stream(std::move(head));
      for (int i = 0; i < 3; ++i) {
        const std::string event = "data: " + std::to_string(i) + "\n\n";
        co_await ctx.writer.write_chunk(event);
      }
      co_await ctx.writer.end_stream();
      ++c->completed;
      co_return;
    }
    if (target == "/views") {
      const std::array<header_ref, 3> fields{header_ref{"Content-Type", "text/plain"},
                                             header_ref{"X-Split", "a\r\nInjected: 1"}, header_ref{"x-custom", "yes"}};
      co_await ctx.writer.send(201, fields, "made");
      ++c->completed;
      co_return;
    }
    auto wait = 30'000ms;
    if (target.starts_with("/wait?ms=")) wait = std::chrono::milliseconds(std::stoi(target.substr(9)));
    struct cancel_guard {
      counters* c;
      bool done = false;
      ~cancel_guard() {
        if (!done) ++c->cancelled;
      }
    } guard{c.get()};
    asio::steady_timer timer{co_await asio::this_coro::executor, wait};
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // cancelled: the guard counts it
    guard.done = true;
    response res{bhttp::status::ok, ctx.req.version()};
    res.body() = "waited";
    co_await ctx.writer.send(std::move(res));
    ++c->completed;
  };
}

class server_fixture : public ::testing::Test {
 protected:
  void start(server_options options) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_.emplace(options, [c = counters_](std::size_t, asio::io_context&) { return make_test_handler(c); });
    server_->listen();
    thread_ = std::thread([this] { server_->run(); });
  }

  void TearDown() override {
    if (server_) {
      server_->shutdown(500ms);
      thread_.join();
    }
  }

  // A blocking socket with a receive timeout, for byte-level control.
  tcp::socket connect(std::chrono::milliseconds recv_timeout = 5000ms) {
    tcp::socket s{io_};
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    timeval tv{};
    tv.tv_sec = recv_timeout.count() / 1000;
    tv.tv_usec = (recv_timeout.count() % 1000) * 1000;
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  }

  static void send_raw(tcp::socket& s, std::string_view bytes) {
    asio::write(s, asio::buffer(bytes.data(), bytes.size()));
  }

  // What one read returns (a small response arrives in one piece).
  static std::string read_once(tcp::socket& s) {
    char buf[4096];
    const auto n = s.read_some(asio::buffer(buf));
    return std::string(buf, n);
  }

  // Reads until the peer closes (or the receive timeout); returns what arrived.
  static std::string read_until_close(tcp::socket& s, bool* closed = nullptr) {
    std::string out;
    char buf[4096];
    for (;;) {
      boost::system::error_code ec;
      const auto n = s.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) {
        if (closed) *closed = ec == asio::error::eof || ec == asio::error::connection_reset;
        return out;
      }
    }
  }

  static bhttp::response<bhttp::string_body> read_response(tcp::socket& s, beast::flat_buffer& buffer) {
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, buffer, res);
    return res;
  }

  asio::io_context io_;
  std::shared_ptr<counters> counters_ = std::make_shared<counters>();
  std::optional<server> server_;
  std::thread thread_;
};

TEST_F(server_fixture, a_response_sent_from_views_keeps_the_connection_and_drops_unsafe_fields) {
  start({});
  auto s = connect();
  beast::flat_buffer buffer;
  for (int i = 0; i < 2; ++i) {
    send_raw(s, "GET /views HTTP/1.1\r\nHost: x\r\n\r\n");
    auto res = read_response(s, buffer);
    EXPECT_EQ(res.result_int(), 201);
    EXPECT_EQ(res.body(), "made");
    EXPECT_EQ(res[bhttp::field::content_type], "text/plain");
    EXPECT_EQ(res["x-custom"], "yes");
    EXPECT_EQ(res["x-split"], "");
    EXPECT_EQ(res["injected"], "");
    EXPECT_EQ(res[bhttp::field::server], "gatewayz");
    EXPECT_TRUE(res.keep_alive());
  }
  send_raw(s, "GET /views HTTP/1.0\r\n\r\n");
  const std::string raw = read_until_close(s);
  EXPECT_TRUE(raw.starts_with("HTTP/1.0 201 Created\r\n")) << raw;
  EXPECT_NE(raw.find("\r\n\r\nmade"), std::string::npos) << raw;
}

TEST_F(server_fixture, keep_alive_serves_several_requests_on_one_connection) {
  start({});
  auto s = connect();
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    auto res = read_response(s, buffer);
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "hello");
    EXPECT_EQ(res[bhttp::field::server], "gatewayz");
  }
}

// The connection's own fields (Connection, Server, Content-Length) are added
// exactly as Beast's keep_alive(), set() and prepare_payload() would.
TEST_F(server_fixture, response_heads_carry_the_connection_fields_byte_for_byte) {
  start({});
  {
    auto s = connect();
    send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_EQ(read_once(s), "HTTP/1.1 200 OK\r\nServer: gatewayz\r\nContent-Length: 2\r\n\r\nok");
  }
  {
    auto s = connect();
    send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(read_until_close(s),
              "HTTP/1.1 200 OK\r\nConnection: close\r\nServer: gatewayz\r\nContent-Length: 0\r\n\r\n");
  }
  {
    auto s = connect();
    send_raw(s, "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(read_once(s),
              "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nServer: gatewayz\r\nContent-Length: 3\r\n\r\nabc");
  }
  {
    auto s = connect();
    send_raw(s, "POST /echo HTTP/1.0\r\nContent-Length: 1\r\n\r\nz");
    EXPECT_EQ(read_until_close(s), "HTTP/1.0 200 OK\r\nServer: gatewayz\r\nContent-Length: 1\r\n\r\nz");
  }
}

TEST_F(server_fixture, pipelined_requests_are_answered_in_order) {
  start({});
  auto s = connect();
  send_raw(s,
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo");
  beast::flat_buffer buffer;
  EXPECT_EQ(read_response(s, buffer).body(), "one");
  EXPECT_EQ(read_response(s, buffer).body(), "two");
}

TEST_F(server_fixture, chunked_stream_arrives_and_terminates) {
  start({});
  auto s = connect();
  send_raw(s, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  beast::flat_buffer buffer;
  auto res = read_response(s, buffer);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[bhttp::field::transfer_encoding], "chunked");
  EXPECT_EQ(res.body(), "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

TEST_F(server_fixture, http10_stream_is_delimited_by_close) {
  start({});
  auto s = connect();
  send_raw(s, "GET /stream HTTP/1.0\r\n\r\n");
  bool closed = false;
  const auto raw = read_until_close(s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(raw.find("HTTP/1.0 200"), std::string::npos);
  EXPECT_EQ(raw.find("chunked"), std::string::npos);
  EXPECT_NE(raw.find("data: 2\n\n"), std::string::npos);
}

TEST_F(server_fixture, slow_headers_are_cut_off_by_the_header_timeout) {
  server_options o;
  o.header_timeout = 300ms;
  start(o);
  auto s = connect();
  send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\n");  // never finishes the headers
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  read_until_close(s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(counters_->started.load(), 0);
}

TEST_F(server_fixture, slow_body_is_cut_off_by_the_body_timeout) {
  server_options o;
  o.body_timeout = 300ms;
  start(o);
  auto s = connect();
  send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-a-bit");
  bool closed = false;
  const auto t0 = std::chrono::steady_clock::now();
  read_until_close(s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(counters_->started.load(), 0);
}

TEST_F(server_fixture, idle_keep_alive_connection_is_closed_after_idle_timeout) {
  server_options o;
  o.idle_timeout = 300ms;
  start(o);
  auto s = connect();
  beast::flat_buffer buffer;
  send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na");
  EXPECT_EQ(read_response(s, buffer).result_int(), 200);
  bool closed = false;
  read_until_close(s, &closed);
  EXPECT_TRUE(closed);
}

TEST_F(server_fixture, declared_body_over_the_limit_gets_413) {
  server_options o;
  o.max_body_bytes = 1024;
  start(o);
  auto s = connect();
  send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  const auto raw = read_until_close(s);
  EXPECT_NE(raw.find("HTTP/1.1 413"), std::string::npos) << raw;
  EXPECT_NE(raw.find("\"request_too_large\""), std::string::npos) << raw;
  EXPECT_NE(raw.find("x-request-id: req_"), std::string::npos) << raw;
}

TEST_F(server_fixture, chunked_body_over_the_limit_gets_413) {
  server_options o;
  o.max_body_bytes = 1024;
  start(o);
  auto s = connect();
  std::string chunk(800, 'x');
  std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 2; ++i) req += "320\r\n" + chunk + "\r\n";
  req += "0\r\n\r\n";
  send_raw(s, req);
  const auto raw = read_until_close(s);
  EXPECT_NE(raw.find("HTTP/1.1 413"), std::string::npos) << raw;
}

TEST_F(server_fixture, oversized_headers_get_431) {
  server_options o;
  o.max_header_bytes = 1024;
  start(o);
  auto s = connect();
  send_raw(s, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  const auto raw = read_until_close(s);
  EXPECT_NE(raw.find("HTTP/1.1 431"), std::string::npos) << raw;
}

TEST_F(server_fixture, garbage_gets_400_in_openai_error_shape) {
  start({});
  auto s = connect();
  send_raw(s, "\x01\x02 not http at all\r\n\r\n");
  const auto raw = read_until_close(s);
  EXPECT_NE(raw.find("HTTP/1.1 400"), std::string::npos) << raw;
  EXPECT_NE(raw.find("{\"error\":{"), std::string::npos) << raw;
}

TEST_F(server_fixture, random_bytes_never_take_the_server_down) {
  start({});
  std::mt19937 rng{42};
  for (int i = 0; i < 300; ++i) {
    auto s = connect(1000ms);
    std::string junk(1 + rng() % 600, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    if (i % 3 == 0) junk = "POST /echo HTTP/1.1\r\n" + junk;
    boost::system::error_code ec;
    asio::write(s, asio::buffer(junk), ec);
    s.shutdown(tcp::socket::shutdown_send, ec);
    read_until_close(s);
  }
  auto s = connect();
  beast::flat_buffer buffer;
  send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(read_response(s, buffer).body(), "ok");
}

TEST_F(server_fixture, connections_past_the_limit_with_requests_in_flight_get_503) {
  server_options o;
  o.max_connections = 2;
  o.max_connections_per_ip = 2;
  start(o);
  // Both slots have a request in flight: nothing can be reclaimed.
  auto a = connect();
  auto b = connect();
  send_raw(a, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  send_raw(b, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (counters_->started.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(counters_->started.load(), 2);
  auto c = connect(2000ms);
  send_raw(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nc");
  beast::flat_buffer buffer;
  const auto res = read_response(c, buffer);
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(res[bhttp::field::connection], "close");
  EXPECT_NE(res.body().find(R"("code":"too_many_connections")"), std::string::npos) << res.body();
  bool closed = false;
  read_until_close(c, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(counters_->started.load(), 2);  // no handler saw the refused request
  EXPECT_EQ(server_->open_connections(), 2u);
}

TEST_F(server_fixture, at_the_limit_the_longest_idle_connection_makes_room) {
  server_options o;
  o.max_connections = 3;
  o.max_connections_per_ip = 3;
  start(o);
  const std::string echo = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na";
  auto a = connect();
  auto b = connect();
  auto c = connect();
  beast::flat_buffer ba, bb, bc;
  // One after the other, so the order in which they became idle is a, b, c.
  send_raw(a, echo);
  EXPECT_EQ(read_response(a, ba).result_int(), 200);
  send_raw(b, echo);
  EXPECT_EQ(read_response(b, bb).result_int(), 200);
  send_raw(c, echo);
  EXPECT_EQ(read_response(c, bc).result_int(), 200);
  // a is used again: b has now been idle longest.
  send_raw(a, echo);
  EXPECT_EQ(read_response(a, ba).result_int(), 200);

  auto d = connect();
  beast::flat_buffer bd;
  send_raw(d, echo);
  EXPECT_EQ(read_response(d, bd).result_int(), 200);
  bool closed = false;
  EXPECT_TRUE(read_until_close(b, &closed).empty());
  EXPECT_TRUE(closed);
  // The others keep their connections.
  for (auto [s, buf] : {std::pair{&a, &ba}, std::pair{&c, &bc}, std::pair{&d, &bd}}) {
    send_raw(*s, echo);
    EXPECT_EQ(read_response(*s, *buf).result_int(), 200);
  }
  EXPECT_EQ(server_->open_connections(), 3u);
}

TEST_F(server_fixture, a_connection_that_never_sent_a_request_is_idle_too) {
  server_options o;
  o.max_connections = 1;
  o.max_connections_per_ip = 1;
  start(o);
  auto silent = connect();
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (server_->open_connections() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  auto next = connect();
  beast::flat_buffer buffer;
  send_raw(next, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na");
  EXPECT_EQ(read_response(next, buffer).result_int(), 200);
  bool closed = false;
  read_until_close(silent, &closed);
  EXPECT_TRUE(closed);
}

TEST_F(server_fixture, one_address_is_held_to_its_share_of_the_connections) {
  server_options o;
  o.max_connections = 8;  // per address: a quarter by default, 2
  start(o);
  const std::string echo = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na";
  auto a = connect();
  auto b = connect();
  beast::flat_buffer ba, bb;
  send_raw(a, echo);
  send_raw(b, echo);
  EXPECT_EQ(read_response(a, ba).result_int(), 200);
  EXPECT_EQ(read_response(b, bb).result_int(), 200);

  auto third = connect(2000ms);
  send_raw(third, echo);
  beast::flat_buffer bt;
  const auto refused = read_response(third, bt);
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_EQ(refused[bhttp::field::retry_after], "1");

  // Another loopback address still gets in, and nobody was closed for it.
  tcp::socket other{io_};
  other.open(tcp::v4());
  other.bind(tcp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
  other.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  beast::flat_buffer bo;
  send_raw(other, echo);
  EXPECT_EQ(read_response(other, bo).result_int(), 200);
  send_raw(a, echo);
  EXPECT_EQ(read_response(a, ba).result_int(), 200);
  EXPECT_EQ(server_->open_connections(), 3u);
}

TEST_F(server_fixture, handler_is_cancelled_when_the_client_disconnects) {
  start({});
  {
    auto s = connect();
    send_raw(s, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (counters_->started.load() == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(counters_->started.load(), 1);
  }  // closes the socket
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (counters_->cancelled.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(counters_->cancelled.load(), 1);
}

// The watch is armed only once a request has run a while; a client gone
// before that (its FIN already queued) must still be noticed when it is armed.
TEST_F(server_fixture, client_gone_before_the_watch_is_armed_still_cancels) {
  start({});
  {
    auto s = connect();
    send_raw(s, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  }  // closes the socket at once, before the handler may even have started
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (counters_->cancelled.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(counters_->started.load(), 1);
  EXPECT_EQ(counters_->cancelled.load(), 1);
}

TEST_F(server_fixture, graceful_shutdown_finishes_in_flight_requests) {
  start({});
  auto busy = connect();
  auto idle = connect();
  beast::flat_buffer idle_buffer;
  send_raw(idle, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\ni");
  ASSERT_EQ(read_response(idle, idle_buffer).result_int(), 200);

  send_raw(busy, "GET /wait?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (counters_->started.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const auto port = server_->port();
  server_->shutdown(5s);

  // The idle keep-alive connection is closed at once...
  bool idle_closed = false;
  read_until_close(idle, &idle_closed);
  EXPECT_TRUE(idle_closed);
  // ...the in-flight one still gets its answer...
  beast::flat_buffer buffer;
  auto res = read_response(busy, buffer);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "waited");
  // ...and run() returns once nothing is left, well before the grace period.
  const auto t0 = std::chrono::steady_clock::now();
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  server_.reset();
  // New connections are refused.
  tcp::socket late{io_};
  boost::system::error_code ec;
  late.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec);
}

TEST_F(server_fixture, shutdown_grace_expiry_cancels_what_is_left) {
  start({});
  auto s = connect();
  send_raw(s, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (counters_->started.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(300ms);
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(counters_->cancelled.load(), 1);
  server_.reset();
}

TEST_F(server_fixture, expect_100_continue_is_honoured) {
  start({});
  auto s = connect();
  send_raw(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(read_once(s).substr(0, 25), "HTTP/1.1 100 Continue\r\n\r\n");
  send_raw(s, "body");
  beast::flat_buffer buffer;
  EXPECT_EQ(read_response(s, buffer).body(), "body");
}

}  // namespace
}  // namespace gatewayz::http

#pragma once
// Shared harness of the gateway integration tests.
//
// Everything runs in-process over real loopback sockets: mock providers
// (mock::mock_provider, one thread each), the gateway composed and served by
// http::server exactly as `gatewayz serve` does it (two shards, port 0), and blocking
// Beast clients with timeouts that drive their own private io_context. The
// gateway and the mocks are shut down by the fixture's TearDown, gateway
// first, so no test leaves threads or sockets behind.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "app/compose.hpp"
#include "config/config.hpp"
#include "gateway/gateway.hpp"
#include "http/server.hpp"
#include "mock/mock_provider.hpp"

namespace gatewayz::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
using header_list = std::vector<std::pair<std::string, std::string>>;

// The key every mock requires and every provider config carries.
inline const std::string upstream_key = "upstream-secret-key";

inline const std::string chat_body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]})";
inline const std::string stream_chat_body =
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there"}]})";

inline double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

// Polls `pred` every 5 ms until it holds or `limit` passes; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 3s) {
  const auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A loopback port nothing listens on: bind one, then close it.
inline std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  const auto port = a.local_endpoint().port();
  a.close();
  return port;
}

// ---- configuration -----------------------------------------------------------

inline config::model_config make_model(std::string id, std::string upstream = {}) {
  config::model_config m;
  m.id = std::move(id);
  m.upstream = upstream.empty() ? m.id : std::move(upstream);
  return m;
}

inline config::provider_config make_provider(std::string name, std::string base_url,
                                             std::vector<config::model_config> models,
                                             config::provider_kind kind = config::provider_kind::openai) {
  config::provider_config p;
  p.name = std::move(name);
  p.kind = kind;
  p.base_url = std::move(base_url);
  p.api_key = upstream_key;
  p.timeout_s = 5;
  p.connect_timeout_s = 2;
  p.models = std::move(models);
  return p;
}

inline std::string url_of(const mock::mock_provider& m, std::string_view host = "127.0.0.1",
                          std::string_view scheme = "http") {
  return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(m.port()) + "/v1";
}

inline std::string closed_url() { return "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1"; }

// ---- servers -------------------------------------------------------------------

inline std::unique_ptr<mock::mock_provider> start_mock(std::optional<http::tls_files> tls = std::nullopt) {
  mock::mock_options options;
  options.server.host = "127.0.0.1";
  options.server.port = 0;
  options.server.threads = 1;
  options.server.tls = std::move(tls);
  options.required_api_key = upstream_key;
  options.shutdown_grace = 300ms;
  auto m = std::make_unique<mock::mock_provider>(std::move(options));
  m->start();
  return m;
}

inline void set_failure(mock::mock_provider& m, std::optional<mock::failure_mode> mode) {
  auto b = m.current_behaviour();
  b.error_rate = mode ? 1.0 : 0.0;
  if (mode) b.failure = *mode;
  m.set_behaviour(b);
}

// The gateway served as `gatewayz serve` serves it, on a background thread:
// composed by app::gateway_app from the config, two server threads, port 0.
// A config that names no store (the default storage.url, which would write
// ./gatewayz.db) gets none.
class gateway_server {
 public:
  explicit gateway_server(config::gateway_config cfg, app::compose_options options = {}) {
    cfg.server.threads = 2;
    if (cfg.storage.url == config::storage_config{}.url) cfg.storage.url = "none";
    app_ = std::make_unique<app::gateway_app>(std::move(cfg), std::move(options));
    http::server_options server_options = app_->server_options();
    server_options.host = "127.0.0.1";
    server_options.port = 0;
    server_ = std::make_unique<http::server>(server_options, app_->handler_factory());
    server_->listen();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~gateway_server() {
    server_->shutdown(500ms);
    thread_.join();
  }
  gateway_server(const gateway_server&) = delete;
  gateway_server& operator=(const gateway_server&) = delete;

  std::uint16_t port() const { return server_->port(); }
  std::size_t open_connections() const { return server_->open_connections(); }
  app::gateway_app& app() { return *app_; }
  gateway::gateway& gw() { return app_->gateway(); }

 private:
  std::unique_ptr<app::gateway_app> app_;
  std::unique_ptr<http::server> server_;
  std::thread thread_;
};

// An upstream whose behaviour a test scripts as a request handler, built on
// the project's http::server. It counts the distinct TCP connections its
// requests arrived on (by the client's address and port), which the mock
// provider does not expose.
class scripted_upstream {
 public:
  explicit scripted_upstream(http::request_handler script, std::chrono::milliseconds idle_timeout = 10s) {
    http::server_options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    options.idle_timeout = idle_timeout;
    server_ = std::make_unique<http::server>(
        options, [this, script = std::move(script)](std::size_t, asio::io_context&) -> http::request_handler {
          return [this, script](http::request_context& ctx) {
            {
              std::lock_guard lock(mutex_);
              remotes_.insert(ctx.remote.port());
              ++requests_;
              targets_.emplace_back(ctx.req.target());
            }
            return script(ctx);
          };
        });
    server_->listen();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~scripted_upstream() {
    server_->shutdown(300ms);
    thread_.join();
  }
  scripted_upstream(const scripted_upstream&) = delete;
  scripted_upstream& operator=(const scripted_upstream&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()) + "/v1"; }
  std::size_t connections() const {
    std::lock_guard lock(mutex_);
    return remotes_.size();
  }
  std::size_t requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t open_connections() const { return server_->open_connections(); }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mutex_);
    return targets_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> targets_;
  std::set<std::uint16_t> remotes_;
  std::size_t requests_ = 0;
  std::unique_ptr<http::server> server_;
  std::thread thread_;
};

// ---- clients --------------------------------------------------------------------

struct reply {
  unsigned status = 0;
  bhttp::fields headers;
  std::string body;
  boost::system::error_code error;  // transport failure (reset, timeout, ...)

  std::string header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : std::string(it->value());
  }
  json::value json() const {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) ADD_FAILURE() << "not JSON: " << body;
    return v;
  }
};

// A blocking HTTP/1.1 client on one keep-alive connection. Beast's async
// operations run to completion on a private io_context, because tcp_stream
// timeouts apply only to async operations.
class client {
 public:
  explicit client(std::uint16_t port) : stream_(io_) {
    stream_.expires_after(5s);
    boost::system::error_code ec;
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&ec](boost::system::error_code e) { ec = e; });
    drive();
    if (ec) ADD_FAILURE() << "connect: " << ec.message();
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  reply request(bhttp::verb method, std::string_view target, std::string_view body = {},
                const header_list& headers = {}, std::chrono::milliseconds timeout = 10s) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "gateway.test");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty() || method == bhttp::verb::post) {
      if (req.find(bhttp::field::content_type) == req.end()) req.set(bhttp::field::content_type, "application/json");
      req.body() = std::string(body);
    }
    req.prepare_payload();
    reply r;
    stream_.expires_after(timeout);
    bhttp::async_write(stream_, req, [&r](boost::system::error_code ec, std::size_t) { r.error = ec; });
    drive();
    if (r.error) return r;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bhttp::async_read(stream_, buffer_, parser, [&r](boost::system::error_code ec, std::size_t) { r.error = ec; });
    drive();
    if (parser.is_header_done()) {
      r.status = parser.get().result_int();
      r.headers = parser.get().base();
      r.body = parser.get().body();
    }
    return r;
  }

  reply post(std::string_view target, std::string_view body, const header_list& headers = {},
             std::chrono::milliseconds timeout = 10s) {
    return request(bhttp::verb::post, target, body, headers, timeout);
  }
  reply get(std::string_view target, const header_list& headers = {}) {
    return request(bhttp::verb::get, target, {}, headers);
  }

  void close() {
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void drive() {
    io_.restart();
    io_.run();
  }

  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// One request on a fresh connection.
inline reply post_once(std::uint16_t port, std::string_view target, std::string_view body,
                       const header_list& headers = {}, std::chrono::milliseconds timeout = 10s) {
  client c(port);
  return c.post(target, body, headers, timeout);
}
inline reply get_once(std::uint16_t port, std::string_view target, const header_list& headers = {}) {
  client c(port);
  return c.get(target, headers);
}

struct sse_event {
  std::string event;          // "event:" field, if any
  std::string data;           // "data:" lines joined with '\n'
  clock_type::time_point at;  // when the read that completed it returned
};

// Reads a (chunked) SSE response incrementally, event by event, so a test can
// see when each event arrives, stop half-way, or hang up.
class sse_client {
 public:
  explicit sse_client(std::uint16_t port) : stream_(io_) {
    stream_.expires_after(5s);
    boost::system::error_code ec;
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&ec](boost::system::error_code e) { ec = e; });
    drive();
    if (ec) ADD_FAILURE() << "connect: " << ec.message();
    parser_.body_limit(64 * 1024 * 1024);
  }
  sse_client(const sse_client&) = delete;
  sse_client& operator=(const sse_client&) = delete;

  // Sends a POST and reads the response head. False on a transport error.
  bool start(std::string_view target, std::string_view body, const header_list& headers = {},
             std::chrono::milliseconds timeout = 10s) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
    req.set(bhttp::field::host, "gateway.test");
    req.set(bhttp::field::content_type, "application/json");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = std::string(body);
    req.prepare_payload();
    started_at_ = clock_type::now();
    stream_.expires_after(timeout);
    bhttp::async_write(stream_, req, [this](boost::system::error_code ec, std::size_t) { error_ = ec; });
    drive();
    if (error_) return false;
    stream_.expires_after(timeout);
    bhttp::async_read_header(stream_, buffer_, parser_,
                             [this](boost::system::error_code ec, std::size_t) { error_ = ec; });
    drive();
    take_body();
    return !error_;
  }

  unsigned status() const { return parser_.is_header_done() ? parser_.get().result_int() : 0; }
  std::string header(std::string_view name) const {
    if (!parser_.is_header_done()) return {};
    auto it = parser_.get().find(name);
    return it == parser_.get().end() ? std::string() : std::string(it->value());
  }
  clock_type::time_point started_at() const { return started_at_; }

  // The next complete event, or nullopt once the body ended, failed or timed out.
  std::optional<sse_event> next(std::chrono::milliseconds timeout = 10s) {
    for (;;) {
      if (auto e = pop_event()) return e;
      if (parser_.is_done() || error_) return std::nullopt;
      read_more(timeout);
    }
  }

  // All remaining events.
  std::vector<sse_event> rest(std::chrono::milliseconds timeout = 10s) {
    std::vector<sse_event> events;
    for (auto e = next(timeout); e; e = next(timeout)) events.push_back(std::move(*e));
    return events;
  }

  // Reads the whole remaining body (for non-SSE answers such as errors).
  std::string body(std::chrono::milliseconds timeout = 10s) {
    while (!parser_.is_done() && !error_) read_more(timeout);
    return pending_;
  }

  bool complete() const { return parser_.is_done(); }  // the terminating chunk arrived
  boost::system::error_code error() const { return error_; }
  const std::string& raw() const { return raw_; }
  std::size_t reads_with_data() const { return reads_with_data_; }

  // Hangs up: FIN (or RST when unread bytes are pending) to the gateway.
  void close() {
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void drive() {
    io_.restart();
    io_.run();
  }

  void take_body() {
    auto& b = parser_.get().body();
    if (b.empty()) return;
    pending_ += b;
    raw_ += b;
    b.clear();
    ++reads_with_data_;
    last_read_ = clock_type::now();
  }

  void read_more(std::chrono::milliseconds timeout) {
    stream_.expires_after(timeout);
    bhttp::async_read_some(stream_, buffer_, parser_,
                           [this](boost::system::error_code ec, std::size_t) { error_ = ec; });
    drive();
    take_body();
  }

  std::optional<sse_event> pop_event() {
    const auto end = pending_.find("\n\n");
    if (end == std::string::npos) return std::nullopt;
    std::string_view block(pending_.data(), end);
    sse_event e;
    e.at = last_read_;
    bool has_data = false;
    while (!block.empty()) {
      const auto nl = block.find('\n');
      std::string_view line = block.substr(0, nl);
      block = nl == std::string_view::npos ? std::string_view{} : block.substr(nl + 1);
      if (line.starts_with("event:")) e.event = std::string(line.substr(line.starts_with("event: ") ? 7 : 6));
      if (line.starts_with("data:")) {
        if (has_data) e.data += '\n';
        e.data += line.substr(line.starts_with("data: ") ? 6 : 5);
        has_data = true;
      }
    }
    pending_.erase(0, end + 2);
    return e;
  }

  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  boost::system::error_code error_;
  std::string pending_;
  std::string raw_;
  std::size_t reads_with_data_ = 0;
  clock_type::time_point started_at_{};
  clock_type::time_point last_read_{};
};

// Sends raw bytes on a fresh connection, half-closes, and collects whatever
// comes back until the server closes (or `timeout`). For hostile input.
inline std::string raw_exchange(std::uint16_t port, std::string_view bytes, bool half_close = true,
                                std::chrono::milliseconds timeout = 3s) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  boost::system::error_code ec;
  stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                       [&ec](boost::system::error_code e) { ec = e; });
  io.run();
  if (ec) {
    ADD_FAILURE() << "connect: " << ec.message();
    return {};
  }
  io.restart();
  asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                    [&ec](boost::system::error_code e, std::size_t) { ec = e; });
  io.run();
  if (half_close) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
  std::string got;
  char buf[4096];
  for (;;) {
    io.restart();
    std::size_t n = 0;
    stream.async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t k) {
      ec = e;
      n = k;
    });
    io.run();
    got.append(buf, n);
    if (ec) break;
  }
  return got;
}

// ---- assertions ------------------------------------------------------------------

// An error in OpenAI's shape: {"error":{"message","type","param","code"}}.
inline void expect_openai_error(const reply& r, unsigned status, std::string_view code) {
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_TRUE(r.header("content-type").starts_with("application/json")) << r.header("content-type");
  EXPECT_FALSE(r.header("x-request-id").empty()) << "errors carry a request id too";
  boost::system::error_code ec;
  const json::value body = json::parse(r.body, ec);
  ASSERT_FALSE(ec) << "not JSON: " << r.body;
  ASSERT_TRUE(body.is_object()) << r.body;
  const auto* error = body.as_object().if_contains("error");
  ASSERT_TRUE(error && error->is_object()) << r.body;
  const auto& e = error->as_object();
  ASSERT_TRUE(e.contains("message") && e.at("message").is_string()) << r.body;
  EXPECT_FALSE(e.at("message").as_string().empty());
  ASSERT_TRUE(e.contains("type") && e.at("type").is_string()) << r.body;
  ASSERT_TRUE(e.contains("code") && e.at("code").is_string()) << r.body;
  EXPECT_EQ(e.at("code").as_string(), code) << r.body;
}

inline std::string error_message(const reply& r) {
  boost::system::error_code ec;
  const json::value body = json::parse(r.body, ec);
  if (ec || !body.is_object()) return {};
  const auto* m = body.as_object().if_contains("error");
  if (!m || !m->is_object() || !m->as_object().contains("message")) return {};
  return std::string(m->as_object().at("message").as_string());
}

inline std::string header_of(const mock::recorded_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}
inline bool has_header(const mock::recorded_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return true;
  }
  return false;
}

// GET /metrics once no request but the scrape itself is in flight. A client
// can read its whole response a moment before the server thread that wrote
// it records the request (possibly on another shard than the scrape), so
// tests that compare values scrape through this.
inline std::string settled_metrics(std::uint16_t port, const header_list& headers = {}) {
  const auto deadline = clock_type::now() + 3s;
  for (;;) {
    const auto r = get_once(port, "/metrics", headers);
    EXPECT_EQ(r.status, 200U) << r.body;
    bool settled = true;
    std::size_t pos = 0;
    while ((pos = r.body.find("\nfastapi_requests_in_progress{", pos)) != std::string::npos) {
      const auto end = r.body.find('\n', pos + 1);
      const std::string line = r.body.substr(pos + 1, end - pos - 1);
      const bool is_scrape = line.find("path=\"/metrics\"") != std::string::npos;
      if (std::stod(line.substr(line.rfind(' ') + 1)) != (is_scrape ? 1.0 : 0.0)) settled = false;
      pos = end;
    }
    if (settled || clock_type::now() > deadline) return r.body;
    std::this_thread::sleep_for(5ms);
  }
}

// ---- fixture -----------------------------------------------------------------------

class GatewayTest : public ::testing::Test {
 protected:
  void TearDown() override {
    gateway_.reset();  // first: it holds connections to the mocks
    upstreams_.clear();
    mocks_.clear();
  }

  mock::mock_provider& add_mock(std::optional<http::tls_files> tls = std::nullopt) {
    mocks_.push_back(start_mock(std::move(tls)));
    return *mocks_.back();
  }

  scripted_upstream& add_upstream(http::request_handler script, std::chrono::milliseconds idle_timeout = 10s) {
    upstreams_.push_back(std::make_unique<scripted_upstream>(std::move(script), idle_timeout));
    return *upstreams_.back();
  }

  gateway_server& start_gateway(config::gateway_config cfg, app::compose_options options = {}) {
    gateway_.reset();
    gateway_ = std::make_unique<gateway_server>(std::move(cfg), std::move(options));
    return *gateway_;
  }

  // One provider "alpha" on `m` serving gpt-4o-mini (upstream name
  // "upstream-mini"), gpt-3.5-turbo-instruct and text-embedding-3-small.
  static config::gateway_config one_provider(const mock::mock_provider& m) {
    config::gateway_config cfg;
    cfg.providers.push_back(
        make_provider("alpha", url_of(m),
                      {make_model("gpt-4o-mini", "upstream-mini"), make_model("gpt-3.5-turbo-instruct"),
                       make_model("text-embedding-3-small")}));
    return cfg;
  }

  // Providers "alpha" then "beta", both serving gpt-4o-mini.
  static config::gateway_config two_providers(std::string a_url, std::string b_url) {
    config::gateway_config cfg;
    cfg.providers.push_back(make_provider("alpha", std::move(a_url), {make_model("gpt-4o-mini")}));
    cfg.providers.push_back(make_provider("beta", std::move(b_url), {make_model("gpt-4o-mini")}));
    return cfg;
  }

  std::uint16_t port() const { return gateway_->port(); }
  reply post(std::string_view target, std::string_view body, const header_list& headers = {}) {
    return post_once(port(), target, body, headers);
  }
  reply get(std::string_view target, const header_list& headers = {}) { return get_once(port(), target, headers); }

  std::vector<std::unique_ptr<mock::mock_provider>> mocks_;
  std::vector<std::unique_ptr<scripted_upstream>> upstreams_;
  std::unique_ptr<gateway_server> gateway_;
};

}  // namespace gatewayz::test

namespace gatewayz::test {

// Scripted upstream behaviours ---------------------------------------------------------

// Answers with a chunked text/event-stream made of `chunks` (each written as
// one HTTP chunk), then terminates the body (`end`) or resets the connection.
inline asio::awaitable<void> send_sse(http::request_context& ctx, std::vector<std::string> chunks, bool end) {
  http::response_head head;
  head.result(bhttp::status::ok);
  head.set(bhttp::field::content_type, "text/event-stream");
  const bool begun = co_await ctx.writer.begin_stream(std::move(head));
  if (!begun) co_return;
  for (const auto& chunk : chunks) {
    const bool wrote = co_await ctx.writer.write_chunk(chunk);
    if (!wrote) co_return;
  }
  if (end) {
    co_await ctx.writer.end_stream();
  } else {
    ctx.writer.reset();
  }
}

inline http::request_handler sse_script(std::vector<std::string> chunks, bool end = true) {
  return [chunks = std::move(chunks), end](http::request_context& ctx) { return send_sse(ctx, chunks, end); };
}

inline std::string chat_chunk(std::string_view content) {
  return R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":")" +
         std::string(content) + R"("},"finish_reason":null}]})" + "\n\n";
}

}  // namespace gatewayz::test

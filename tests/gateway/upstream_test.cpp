// What the gateway makes of upstreams that misbehave in ways the mock
// provider does not simulate: scripted event streams, oversized answers,
// in-stream errors, and the overall request deadline.

#include <string>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

config::gateway_config scripted(const scripted_upstream& up,
                                config::provider_kind kind = config::provider_kind::openai) {
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("scripted", up.url(), {make_model("gpt-4o-mini")}, kind));
  return cfg;
}

TEST_F(GatewayTest, StreamEndingWithoutDoneStillEndsWithDone) {
  auto& up = add_upstream(sse_script({chat_chunk("a"), chat_chunk("b")}));
  start_gateway(scripted(up));
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest();
  EXPECT_TRUE(s.complete());
  ASSERT_EQ(events.size(), 3u) << s.raw();
  EXPECT_EQ(events.back().data, "[DONE]");
}

TEST_F(GatewayTest, StreamCutOffMidEventEndsWithAnInBandError) {
  auto& up = add_upstream(sse_script({chat_chunk("a"), "data: {\"id\":\"c1\",\"partial-marker"}));
  start_gateway(scripted(up));
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest();
  EXPECT_TRUE(s.complete());
  ASSERT_EQ(events.size(), 2u) << s.raw();
  EXPECT_EQ(json::parse(events[1].data).at("error").at("code").as_string(), "upstream_bad_response") << s.raw();
  EXPECT_EQ(s.raw().find("partial-marker"), std::string::npos) << "the partial event was forwarded";
}

TEST_F(GatewayTest, InStreamErrorBeforeAnyByteFailsOver) {
  // OpenAI-compatible providers report some failures as a first `error` event.
  auto& a = add_upstream(sse_script({R"(data: {"error":{"message":"overloaded, try later","type":"server_error"}})"
                                     "\n\n"}));
  auto& b = add_mock();
  start_gateway(two_providers(a.url(), url_of(b)));
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  EXPECT_EQ(s.header("x-gatewayz-provider"), "beta");
  const auto events = s.rest();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(s.raw().find("overloaded"), std::string::npos) << s.raw();
}

TEST_F(GatewayTest, AnthropicOverloadedEventBeforeAnyByteFailsOver) {
  auto& a = add_upstream(sse_script(
      {"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"}));
  auto& b = add_mock();
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("claude-a", a.url(), {make_model("claude", "claude-3-5-haiku-latest")},
                                        config::provider_kind::anthropic));
  cfg.providers.push_back(make_provider("claude-b", url_of(b), {make_model("claude", "claude-3-5-haiku-latest")},
                                        config::provider_kind::anthropic));
  start_gateway(cfg);
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions",
                      R"({"model":"claude","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"x"}]})"));
  ASSERT_EQ(s.status(), 200u);
  EXPECT_EQ(s.header("x-gatewayz-provider"), "claude-b");
  const auto events = s.rest();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");

  // With no other provider, the client gets an error response (nothing was streamed yet).
  cfg.providers.pop_back();
  start_gateway(cfg);
  const reply r = post("/v1/chat/completions",
                       R"({"model":"claude","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 502u) << r.body;
  EXPECT_NE(r.body.find("Overloaded"), std::string::npos) << r.body;
}

TEST_F(GatewayTest, UpstreamAnswerOverMaxResponseBytesIs502) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.providers[0].max_response_bytes = 200;
  start_gateway(cfg);
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 502, "upstream_bad_response");
  EXPECT_NE(error_message(r).find("too large"), std::string::npos) << r.body;
}

TEST_F(GatewayTest, RequestDeadlineBoundsTheWholeRequest) {
  auto& a = add_mock();
  auto& b = add_mock();
  set_failure(a, mock::failure_mode::hang);
  set_failure(b, mock::failure_mode::hang);
  auto cfg = two_providers(url_of(a), url_of(b));
  cfg.server.request_timeout_s = 0.6;  // providers' own timeout_s is 5
  start_gateway(cfg);
  const auto t0 = clock_type::now();
  expect_openai_error(post("/v1/chat/completions", chat_body), 504, "upstream_timeout");
  EXPECT_GE(ms_since(t0), 550.0);
  EXPECT_LT(ms_since(t0), 2000.0);
  EXPECT_EQ(b.stats().requests, 0u) << "no time was left for a second attempt";

  // A stream longer than the deadline is cut off in-band.
  set_failure(a, std::nullopt);
  auto slow = a.current_behaviour();
  slow.tokens_per_s = 10;
  slow.output_tokens = 30;
  a.set_behaviour(slow);
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest(5s);
  EXPECT_TRUE(s.complete());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(json::parse(events.back().data).at("error").at("code").as_string(), "upstream_timeout") << s.raw();
  EXPECT_LT(ms_since(s.started_at()), 2000.0);
}

}  // namespace
}  // namespace gatewayz::test

namespace gatewayz::test {
namespace {

asio::awaitable<void> redirect(http::request_context& ctx) {
  http::response res{bhttp::status::found, ctx.req.version()};
  res.set(bhttp::field::location, "https://elsewhere.example/v1/chat/completions");
  res.set(bhttp::field::content_type, "text/html");
  res.body() = "<a href=\"https://elsewhere.example/\">moved</a>";
  co_await ctx.writer.send(std::move(res));
}

asio::awaitable<void> fixed_json(http::request_context& ctx) {
  http::response res{bhttp::status::ok, ctx.req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = R"({"id":"x","object":"chat.completion","choices":[]})";
  co_await ctx.writer.send(std::move(res));
}

TEST_F(GatewayTest, UpstreamRedirectIsABadGatewayAndFailsOver) {
  // A provider answering an API call with a redirect did not answer it; a
  // 3xx passed on to the client (without its Location) would mean nothing.
  auto& a = add_upstream(redirect);
  start_gateway(scripted(a));
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 502, "upstream_bad_response");
  EXPECT_NE(error_message(r).find("302"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("location"), "");

  auto& b = add_mock();
  start_gateway(two_providers(a.url(), url_of(b)));
  const reply failed_over = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(failed_over.status, 200u) << failed_over.body;
  EXPECT_EQ(failed_over.header("x-gatewayz-provider"), "beta");
}

TEST_F(GatewayTest, BaseUrlPathIsPrefixedToEveryEndpoint) {
  auto& up = add_upstream(fixed_json);
  const std::string origin = up.url().substr(0, up.url().size() - 3);  // without "/v1"
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("prefixed", origin + "/api/openai/v1/", {make_model("a")}));
  cfg.providers.push_back(make_provider("bare", origin, {make_model("b")}));
  start_gateway(cfg);
  ASSERT_EQ(post("/v1/chat/completions", R"({"model":"a","messages":[]})").status, 200u);
  ASSERT_EQ(post("/v1/embeddings", R"({"model":"a","input":"x"})").status, 200u);
  ASSERT_EQ(post("/v1/chat/completions?ignored=1", R"({"model":"b","messages":[]})").status, 200u);
  EXPECT_EQ(up.targets(), (std::vector<std::string>{"/api/openai/v1/chat/completions", "/api/openai/v1/embeddings",
                                                    "/chat/completions"}));
}

TEST_F(GatewayTest, ConfiguredHeadersOverrideTheDefaults) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.providers[0].api_key = "not-used";
  cfg.providers[0].headers = {{"Authorization", "Bearer " + upstream_key}, {"OpenAI-Organization", "org-1"}};
  start_gateway(cfg);
  ASSERT_EQ(post("/v1/chat/completions", chat_body).status, 200u);
  const auto up = m.recent_requests().back();
  int authorizations = 0;
  for (const auto& [k, v] : up.headers) {
    if (k == "authorization") ++authorizations;
  }
  EXPECT_EQ(authorizations, 1);
  EXPECT_EQ(header_of(up, "authorization"), "Bearer " + upstream_key);
  EXPECT_EQ(header_of(up, "openai-organization"), "org-1");
}

}  // namespace
}  // namespace gatewayz::test

namespace gatewayz::test {
namespace {

// A bare TCP upstream on its own thread: answers each request with a fixed
// 200, then (as some servers do when a kept-alive connection idles out) sends
// an unsolicited "408 Request Timeout" and closes.
class idle_408_upstream {
 public:
  idle_408_upstream() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~idle_408_upstream() {
    stop_ = true;
    try {
      asio::io_context io;
      tcp::socket wake(io);
      wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    } catch (const std::exception&) {
    }
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int closed() const { return closed_.load(); }

 private:
  void serve() {
    while (!stop_) {
      boost::system::error_code ec;
      tcp::socket s(io_);
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      beast::flat_buffer buffer;
      bhttp::request<bhttp::string_body> req;
      bhttp::read(s, buffer, req, ec);
      if (ec) continue;
      const std::string body = R"({"id":"x","object":"chat.completion","choices":[]})";
      const std::string res = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
      asio::write(s, asio::buffer(res), ec);
      std::this_thread::sleep_for(30ms);  // "idle timeout"
      const std::string timeout = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
      asio::write(s, asio::buffer(timeout), ec);
      s.shutdown(tcp::socket::shutdown_send, ec);
      s.close(ec);
      closed_.fetch_add(1);
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> closed_{0};
  std::thread thread_;
};

TEST_F(GatewayTest, PooledConnectionWithUnsolicitedDataIsNotReused) {
  idle_408_upstream up;
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("idler", up.url(), {make_model("gpt-4o-mini")}));
  start_gateway(cfg);
  client c(port());  // one client connection: one gateway shard, one pool
  for (int i = 0; i < 3; ++i) {
    const reply r = c.post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200u) << "request " << i << ": " << r.body;
    ASSERT_TRUE(eventually([&] { return up.closed() == i + 1; }, 2s));
  }
}

}  // namespace
}  // namespace gatewayz::test

namespace gatewayz::test {
namespace {

// Sends a complete stream ([DONE] included) but keeps the chunked body open
// for a while before terminating it.
asio::awaitable<void> done_then_linger(http::request_context& ctx) {
  http::response_head head;
  head.result(bhttp::status::ok);
  head.set(bhttp::field::content_type, "text/event-stream");
  const bool begun = co_await ctx.writer.begin_stream(std::move(head));
  if (!begun) co_return;
  const std::string events = chat_chunk("a") + "data: [DONE]\n\n";
  const bool wrote = co_await ctx.writer.write_chunk(events);
  if (!wrote) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, 3s);
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  co_await ctx.writer.end_stream();
}

TEST_F(GatewayTest, UpstreamLingeringAfterDoneDoesNotStallTheClientConnection) {
  auto& up = add_upstream(done_then_linger);
  auto& m = add_mock();
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("lingerer", up.url(), {make_model("gpt-4o-mini")}));
  cfg.providers.push_back(make_provider("normal", url_of(m), {make_model("other")}));
  start_gateway(cfg);
  client c(port());
  const auto t0 = clock_type::now();
  const reply s = c.post("/v1/chat/completions", stream_chat_body);
  ASSERT_EQ(s.status, 200u) << s.body;
  EXPECT_TRUE(s.body.ends_with("data: [DONE]\n\n")) << s.body;
  EXPECT_LT(ms_since(t0), 1500.0) << "the client waited for the upstream's terminating chunk";
  // The next request on the same client connection is not held up either.
  const auto t1 = clock_type::now();
  const reply next = c.post("/v1/chat/completions", R"({"model":"other","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(next.status, 200u) << next.body;
  EXPECT_LT(ms_since(t1), 1500.0) << "the keep-alive connection stalled behind the upstream drain";
}

}  // namespace
}  // namespace gatewayz::test

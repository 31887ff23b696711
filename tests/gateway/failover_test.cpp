// Failover between the providers of a model, and cancellation of upstream
// calls when the client goes away.

#include <string>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

// An upstream that resets every connection as soon as a request arrives:
// not one byte of response.
asio::awaitable<void> reset_immediately(http::request_context& ctx) {
  ctx.writer.reset();
  co_return;
}

// 7 ---------------------------------------------------------------------------------

TEST_F(GatewayTest, FailoverOn500ToTheNextProvider) {
  auto& a = add_mock();
  auto& b = add_mock();
  set_failure(a, mock::failure_mode::http_500);
  start_gateway(two_providers(url_of(a), url_of(b)));

  for (int i = 0; i < 2; ++i) {
    const reply r = post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");
    EXPECT_EQ(r.json().at("object").as_string(), "chat.completion");
  }
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  EXPECT_EQ(s.header("x-gatewayz-provider"), "beta");
  const auto events = s.rest();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(s.raw().find("\"error\""), std::string::npos) << s.raw();

  EXPECT_EQ(a.stats().requests, 3u) << "config order: alpha is always tried first";
  EXPECT_EQ(a.stats().failures, 3u);
  EXPECT_EQ(b.stats().requests, 3u);
}

TEST_F(GatewayTest, FailoverOn429AndTimeout) {
  auto& a = add_mock();
  auto& b = add_mock();
  auto cfg = two_providers(url_of(a), url_of(b));
  cfg.providers[0].timeout_s = 0.3;
  start_gateway(cfg);

  set_failure(a, mock::failure_mode::http_429);
  reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");

  set_failure(a, mock::failure_mode::hang);
  const auto t0 = clock_type::now();
  r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");
  EXPECT_LT(ms_since(t0), 2000.0);

  set_failure(a, mock::failure_mode::malformed_body);
  r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");
}

TEST_F(GatewayTest, FailoverWhenTheFirstProviderIsUnreachable) {
  auto& b = add_mock();
  start_gateway(two_providers(closed_url(), url_of(b)));
  const reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");
  const reply s = post("/v1/chat/completions", stream_chat_body);
  ASSERT_EQ(s.status, 200u) << s.body;
  EXPECT_EQ(s.header("x-gatewayz-provider"), "beta");
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(GatewayTest, StreamFailsOverWhenTheFirstProviderResetsBeforeAnyByte) {
  auto& a = add_upstream(reset_immediately);
  auto& b = add_mock();
  start_gateway(two_providers(a.url(), url_of(b)));

  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  EXPECT_EQ(s.header("x-gatewayz-provider"), "beta");
  const auto events = s.rest();
  EXPECT_TRUE(s.complete());
  ASSERT_EQ(events.size(), 19u) << s.raw();  // role, 16 tokens, finish, [DONE]
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(a.requests(), 1u);
  EXPECT_EQ(b.stats().requests, 1u);

  const reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-gatewayz-provider"), "beta");
}

TEST_F(GatewayTest, MaxAttemptsBoundsFailover) {
  auto& a = add_mock();
  auto& b = add_mock();
  auto& c = add_mock();
  set_failure(a, mock::failure_mode::http_500);
  set_failure(b, mock::failure_mode::http_429);
  auto cfg = two_providers(url_of(a), url_of(b));
  cfg.providers.push_back(make_provider("gamma", url_of(c), {make_model("gpt-4o-mini")}));
  cfg.server.max_attempts = 2;
  start_gateway(cfg);

  // Two attempts (alpha, beta) and no more: the client gets the last error.
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 429, "upstream_429");
  EXPECT_NE(error_message(r).find("beta"), std::string::npos) << r.body;
  EXPECT_EQ(a.stats().requests, 1u);
  EXPECT_EQ(b.stats().requests, 1u);
  EXPECT_EQ(c.stats().requests, 0u);

  cfg.server.max_attempts = 3;
  start_gateway(cfg);
  const reply third = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(third.status, 200u) << third.body;
  EXPECT_EQ(third.header("x-gatewayz-provider"), "gamma");

  cfg.server.max_attempts = 1;
  start_gateway(cfg);
  const auto b_before = b.stats().requests;
  expect_openai_error(post("/v1/chat/completions", chat_body), 500, "upstream_500");
  EXPECT_EQ(b.stats().requests, b_before) << "max_attempts 1 must not fail over";
}

TEST_F(GatewayTest, AllProvidersFailingGivesTheLastError) {
  auto& b = add_mock();
  set_failure(b, mock::failure_mode::http_500);
  start_gateway(two_providers(closed_url(), url_of(b)));
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 500, "upstream_500");
  EXPECT_NE(error_message(r).find("beta"), std::string::npos) << r.body;
}

TEST_F(GatewayTest, ClientErrorsAreNotFailedOver) {
  auto& a = add_mock();
  auto& b = add_mock();
  start_gateway(two_providers(url_of(a), url_of(b)));
  const reply r = post("/v1/chat/completions", R"({"model":"gpt-4o-mini","messages":[]})");
  expect_openai_error(r, 400, "upstream_400");
  EXPECT_NE(error_message(r).find("alpha"), std::string::npos) << r.body;
  EXPECT_EQ(a.stats().requests, 1u);
  EXPECT_EQ(b.stats().requests, 0u);
  // Streams too: the 400 arrives before any byte, and is still not failed over.
  expect_openai_error(post("/v1/chat/completions", R"({"model":"gpt-4o-mini","stream":true,"messages":[]})"), 400,
                      "upstream_400");
  EXPECT_EQ(b.stats().requests, 0u);
}

// 8 ---------------------------------------------------------------------------------

TEST_F(GatewayTest, ClientLeavingMidStreamCancelsTheUpstreamStream) {
  auto& m = add_mock();
  auto slow = m.current_behaviour();
  slow.tokens_per_s = 5;
  slow.output_tokens = 50;
  m.set_behaviour(slow);
  start_gateway(one_provider(m));

  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto first = s.next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(m.stats().cancelled, 0u);
  s.close();
  const auto t0 = clock_type::now();
  EXPECT_TRUE(eventually([&] { return m.stats().cancelled == 1; }, 2s)) << "the upstream stream kept running";
  EXPECT_LT(ms_since(t0), 2000.0);
  EXPECT_EQ(m.stats().streams_completed, 0u);
  // The gateway let go of the client connection too.
  EXPECT_TRUE(eventually([&] { return gateway_->open_connections() == 0; }, 2s));
}

TEST_F(GatewayTest, ClientLeavingDuringAHungRequestCancelsTheUpstreamCall) {
  auto& m = add_mock();
  set_failure(m, mock::failure_mode::hang);
  start_gateway(one_provider(m));

  for (const std::string* body : {&chat_body, &stream_chat_body}) {
    SCOPED_TRACE(*body);
    const auto cancelled_before = m.stats().cancelled;
    const auto requests_before = m.stats().requests;
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
    const std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body->size()) + "\r\n\r\n" + *body;
    asio::write(sock, asio::buffer(req));
    ASSERT_TRUE(eventually([&] { return m.stats().requests > requests_before; }, 2s));
    std::this_thread::sleep_for(200ms);  // the request sits upstream for a while (no condition to poll)
    EXPECT_EQ(m.stats().cancelled, cancelled_before);
    sock.close();
    EXPECT_TRUE(eventually([&] { return m.stats().cancelled > cancelled_before; }, 2s))
        << "the upstream call kept running after the client left";
  }
}

}  // namespace
}  // namespace gatewayz::test

namespace gatewayz::test {
namespace {

TEST_F(GatewayTest, ClientLeavingDuringFailoverStopsIt) {
  auto& a = add_mock();
  auto& b = add_mock();
  set_failure(a, mock::failure_mode::hang);
  start_gateway(two_providers(url_of(a), url_of(b)));
  {
    asio::io_context io;
    tcp::socket sock(io);
    sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
    const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: " +
                            std::to_string(chat_body.size()) + "\r\n\r\n" + chat_body;
    asio::write(sock, asio::buffer(req));
    ASSERT_TRUE(eventually([&] { return a.stats().requests == 1; }, 2s));
  }
  EXPECT_TRUE(eventually([&] { return a.stats().cancelled == 1; }, 2s));
  std::this_thread::sleep_for(100ms);  // absence of a later call cannot be polled for
  EXPECT_EQ(b.stats().requests, 0u) << "the gateway failed over for a client that had left";
}

TEST_F(GatewayTest, ManyClientsLeavingMidStreamAreAllCleanedUp) {
  auto& m = add_mock();
  auto slow = m.current_behaviour();
  slow.tokens_per_s = 50;
  slow.output_tokens = 100;
  m.set_behaviour(slow);
  start_gateway(one_provider(m));

  constexpr int clients = 16;
  std::vector<std::thread> threads;
  std::atomic<int> started{0};
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      sse_client s(port());
      if (!s.start("/v1/chat/completions", stream_chat_body) || s.status() != 200) return;
      // Leave after a different number of events each: 1 .. 16.
      for (int k = 0; k <= i; ++k) {
        if (!s.next(3s)) return;
      }
      started.fetch_add(1);
      s.close();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(started.load(), clients);
  EXPECT_TRUE(eventually([&] { return m.stats().cancelled == static_cast<std::uint64_t>(clients); }, 3s))
      << m.stats().cancelled << " of " << clients << " upstream streams cancelled";
  EXPECT_EQ(m.stats().streams_completed, 0u);
  EXPECT_TRUE(eventually([&] { return gateway_->open_connections() == 0; }, 3s));
  // And the gateway still serves.
  EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 200u);
}

}  // namespace
}  // namespace gatewayz::test

namespace gatewayz::test {
namespace {

TEST_F(GatewayTest, StreamFailsOverWhenTheFirstTokenIsTooSlow) {
  // alpha answers the head at once but its first token would take 3 s; its
  // timeout_s (also the longest wait for the next chunk) is 0.3 s.
  auto& a = add_mock();
  auto& b = add_mock();
  auto cfg = two_providers(url_of(a), url_of(b));
  cfg.providers[0].timeout_s = 0.3;
  cfg.providers[0].headers = {{"x-mock-ttft-ms", "3000"}};
  start_gateway(cfg);
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  EXPECT_EQ(s.header("x-gatewayz-provider"), "beta");
  const auto events = s.rest();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_LT(ms_since(s.started_at()), 1500.0);
  EXPECT_TRUE(eventually([&] { return a.stats().cancelled == 1; })) << "alpha's stream was left running";
}

TEST_F(GatewayTest, AnthropicErrorsAreMappedAndPassedOn) {
  auto& m = add_mock();
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("claude", url_of(m), {make_model("claude-haiku", "claude-3-5-haiku-latest")},
                                        config::provider_kind::anthropic));
  start_gateway(cfg);
  const std::string body = R"({"model":"claude-haiku","messages":[{"role":"user","content":"x"}]})";
  set_failure(m, mock::failure_mode::http_429);
  const reply limited = post("/v1/chat/completions", body);
  expect_openai_error(limited, 429, "upstream_429");
  EXPECT_NE(error_message(limited).find("Rate limit"), std::string::npos) << limited.body;
  EXPECT_NE(error_message(limited).find("claude"), std::string::npos) << limited.body;

  set_failure(m, mock::failure_mode::malformed_body);
  expect_openai_error(post("/v1/chat/completions", body), 502, "upstream_bad_response");

  // Mid-stream reset after some tokens: an in-band error, as for OpenAI.
  set_failure(m, mock::failure_mode::reset_mid_stream);
  auto paced = m.current_behaviour();
  paced.tokens_per_s = 20;
  m.set_behaviour(paced);
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions",
                      R"({"model":"claude-haiku","stream":true,"messages":[{"role":"user","content":"x"}]})"));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest(5s);
  EXPECT_TRUE(s.complete());
  ASSERT_GE(events.size(), 2u) << s.raw();
  EXPECT_TRUE(json::parse(events.back().data).as_object().contains("error")) << s.raw();
  EXPECT_EQ(s.raw().find("[DONE]"), std::string::npos);

  // A request the gateway cannot express for Anthropic is a 400 without a call.
  set_failure(m, std::nullopt);
  const auto before = m.stats().requests;
  const reply bad = post("/v1/chat/completions",
                         R"({"model":"claude-haiku","max_tokens":0,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_EQ(m.stats().requests, before);
}

}  // namespace
}  // namespace gatewayz::test

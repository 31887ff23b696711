// The error contract: every failure the client can see is an HTTP status and
// an OpenAI-shaped body {"error":{"message","type","param","code"}}, whether
// the client, the gateway or the provider caused it.

#include <string>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

class ErrorsTest : public GatewayTest {
 protected:
  void SetUp() override { mock_ = &add_mock(); }

  // Requests the gateway itself must reject: the provider never sees them.
  void expect_rejected(std::string_view body, unsigned status, std::string_view code) {
    SCOPED_TRACE(std::string(body.substr(0, 80)));
    const auto before = mock_->stats().requests;
    expect_openai_error(post("/v1/chat/completions", body), status, code);
    EXPECT_EQ(mock_->stats().requests, before) << "a rejected request reached the provider";
  }

  mock::mock_provider* mock_ = nullptr;
};

TEST_F(ErrorsTest, MalformedJsonIs400) {
  start_gateway(one_provider(*mock_));
  expect_rejected("{\"model\": nope", 400, "invalid_json");
  expect_rejected("", 400, "invalid_json");
  expect_rejected("{\"model\":\"gpt-4o-mini\",\"messages\":[]", 400, "invalid_json");  // truncated
  expect_rejected("{\"model\":\"gpt-4o-mini\",\"messages\":[]} trailing", 400, "invalid_json");
  expect_rejected("{\"model\":\"gpt-4o-mini\",\"messages\":[\"\xff\"]}", 400, "invalid_json");  // bad UTF-8
  const reply r = post("/v1/chat/completions", "{\"model\": nope");
  EXPECT_EQ(r.json().at("error").at("type").as_string(), "invalid_request_error");
}

TEST_F(ErrorsTest, BodyThatIsNotAnObjectIs400) {
  start_gateway(one_provider(*mock_));
  expect_rejected("[1,2]", 400, "invalid_json");
  expect_rejected("\"just a string\"", 400, "invalid_json");
  expect_rejected("null", 400, "invalid_json");
  expect_rejected("42", 400, "invalid_json");
}

TEST_F(ErrorsTest, MissingModelIs400) {
  start_gateway(one_provider(*mock_));
  expect_rejected(R"({"messages":[{"role":"user","content":"x"}]})", 400, "missing_model");
  expect_rejected(R"({"model":"","messages":[]})", 400, "missing_model");
  expect_rejected(R"({"model":42,"messages":[]})", 400, "missing_model");
  expect_rejected(R"({"model":null,"messages":[]})", 400, "missing_model");
}

TEST_F(ErrorsTest, MissingMessagesIs400) {
  start_gateway(one_provider(*mock_));
  expect_rejected(R"({"model":"gpt-4o-mini"})", 400, "missing_messages");
  const reply r = post("/v1/chat/completions", R"({"model":"gpt-4o-mini"})");
  EXPECT_NE(error_message(r).find("messages"), std::string::npos) << r.body;
}

TEST_F(ErrorsTest, MessagesNotAnArrayIs400) {
  start_gateway(one_provider(*mock_));
  expect_rejected(R"({"model":"gpt-4o-mini","messages":"hi"})", 400, "invalid_messages");
  expect_rejected(R"({"model":"gpt-4o-mini","messages":{"role":"user"}})", 400, "invalid_messages");
  expect_rejected(R"({"model":"gpt-4o-mini","messages":null})", 400, "invalid_messages");
}

TEST_F(ErrorsTest, StreamNotABooleanIs400) {
  start_gateway(one_provider(*mock_));
  expect_rejected(R"({"model":"gpt-4o-mini","messages":[],"stream":"yes"})", 400, "invalid_stream");
  expect_rejected(R"({"model":"gpt-4o-mini","messages":[],"stream":1})", 400, "invalid_stream");
  expect_rejected(R"({"model":"gpt-4o-mini","messages":[],"stream":{}})", 400, "invalid_stream");
}

TEST_F(ErrorsTest, UnknownModelIs404) {
  start_gateway(one_provider(*mock_));
  expect_rejected(R"({"model":"no-such-model","messages":[{"role":"user","content":"x"}]})", 404, "model_not_found");
  const reply r = post("/v1/chat/completions", R"({"model":"no-such-model","messages":[]})");
  EXPECT_NE(error_message(r).find("no-such-model"), std::string::npos) << r.body;
  // Routing is by the configured id, not the upstream name.
  expect_rejected(R"({"model":"upstream-mini","messages":[]})", 404, "model_not_found");
}

TEST_F(ErrorsTest, BodyOverTheLimitIs413) {
  auto cfg = one_provider(*mock_);
  cfg.server.max_body_bytes = 4096;
  start_gateway(cfg);
  const std::string big =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + std::string(5000, 'a') + "\"}]}";
  expect_rejected(big, 413, "request_too_large");
  // Just under the limit is fine.
  const std::string fits =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + std::string(3000, 'a') + "\"}]}";
  EXPECT_EQ(post("/v1/chat/completions", fits).status, 200u);
}

TEST_F(ErrorsTest, BodyFarOverTheLimitStillGets413) {
  // A client that sends a large body in one go must still read the 413
  // rather than a connection reset.
  auto cfg = one_provider(*mock_);
  cfg.server.max_body_bytes = 64 * 1024;
  start_gateway(cfg);
  const std::string big =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + std::string(4 * 1024 * 1024, 'a') + "\"}]}";
  expect_rejected(big, 413, "request_too_large");
}

TEST_F(ErrorsTest, WrongMethodIs405WithAllow) {
  start_gateway(one_provider(*mock_));
  for (const auto* path : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}) {
    SCOPED_TRACE(path);
    const reply r = get(path);
    expect_openai_error(r, 405, "method_not_allowed");
    EXPECT_EQ(r.header("allow"), "POST");
  }
  client c(port());
  const reply del = c.request(bhttp::verb::delete_, "/v1/chat/completions");
  expect_openai_error(del, 405, "method_not_allowed");
  EXPECT_EQ(del.header("allow"), "POST");
  EXPECT_EQ(mock_->stats().requests, 0u);
}

TEST_F(ErrorsTest, UnknownPathIs404) {
  start_gateway(one_provider(*mock_));
  for (const auto* path : {"/", "/v1", "/v1/chat", "/v1/chat/completions/", "/v2/chat/completions", "/v1/messages"}) {
    SCOPED_TRACE(path);
    expect_openai_error(post(path, chat_body), 404, "not_found");
  }
  expect_openai_error(get("/nothing/here?x=1"), 404, "not_found");
  EXPECT_EQ(mock_->stats().requests, 0u);
}

TEST_F(ErrorsTest, UnreachableUpstreamIs502) {
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("down", closed_url(), {make_model("gpt-4o-mini")}));
  start_gateway(cfg);
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 502, "upstream_unreachable");
  EXPECT_NE(error_message(r).find("down"), std::string::npos) << r.body;
  // The same for a stream: nothing was sent yet, so it is a plain error response.
  const reply s = post("/v1/chat/completions", stream_chat_body);
  expect_openai_error(s, 502, "upstream_unreachable");
}

TEST_F(ErrorsTest, UpstreamTimeoutIs504) {
  set_failure(*mock_, mock::failure_mode::hang);
  auto cfg = one_provider(*mock_);
  cfg.providers[0].timeout_s = 0.5;
  start_gateway(cfg);
  auto t0 = clock_type::now();
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 504, "upstream_timeout");
  EXPECT_NE(error_message(r).find("alpha"), std::string::npos) << r.body;
  EXPECT_GE(ms_since(t0), 450.0);
  EXPECT_LT(ms_since(t0), 2500.0);
  // The abandoned upstream call is cancelled, not left hanging.
  EXPECT_TRUE(eventually([&] { return mock_->stats().cancelled >= 1; }));

  t0 = clock_type::now();
  expect_openai_error(post("/v1/chat/completions", stream_chat_body), 504, "upstream_timeout");
  EXPECT_LT(ms_since(t0), 2500.0);
}

TEST_F(ErrorsTest, StalledStreamTimesOutWithAnInBandError) {
  // The provider sends a few chunks and then nothing: timeout_s is also the
  // longest gap between chunks.
  auto cfg = one_provider(*mock_);
  cfg.providers[0].timeout_s = 0.5;
  cfg.providers[0].headers = {{"x-mock-tokens-per-s", "0.5"}, {"x-mock-output-tokens", "5"}};
  start_gateway(cfg);
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest(5s);
  EXPECT_TRUE(s.complete()) << "the stream must be terminated, not left hanging";
  ASSERT_FALSE(events.empty());
  const json::value last = json::parse(events.back().data);
  EXPECT_EQ(last.at("error").at("code").as_string(), "upstream_timeout") << s.raw();
}

TEST_F(ErrorsTest, Upstream500And429ArePassedOnNamingTheProvider) {
  start_gateway(one_provider(*mock_));
  for (const auto& [mode, status] :
       {std::pair{mock::failure_mode::http_500, 500u}, std::pair{mock::failure_mode::http_429, 429u}}) {
    SCOPED_TRACE(status);
    set_failure(*mock_, mode);
    const reply r = post("/v1/chat/completions", chat_body);
    expect_openai_error(r, status, "upstream_" + std::to_string(status));
    const std::string message = error_message(r);
    EXPECT_NE(message.find("alpha"), std::string::npos) << r.body;
    EXPECT_EQ(message.find(upstream_key), std::string::npos) << "the provider key leaked";
    EXPECT_EQ(r.json().at("error").at("type").as_string(), status == 429 ? "rate_limit_error" : "api_error");
    // Streams fail the same way when nothing was sent yet.
    expect_openai_error(post("/v1/chat/completions", stream_chat_body), status, "upstream_" + std::to_string(status));
  }
}

TEST_F(ErrorsTest, UpstreamRetryAfterIsPassedOnWithTheErrorTheClientGets) {
  // The mock answers its 429 with "Retry-After: 1".
  start_gateway(one_provider(*mock_));
  set_failure(*mock_, mock::failure_mode::http_429);
  auto r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 429, "upstream_429");
  EXPECT_EQ(r.header("retry-after"), "1");
  r = post("/v1/chat/completions", stream_chat_body);
  expect_openai_error(r, 429, "upstream_429");
  EXPECT_EQ(r.header("retry-after"), "1");

  // A 503 with an HTTP-date, passed on as sent.
  static constexpr std::string_view date = "Wed, 21 Oct 2026 07:28:00 GMT";
  auto& busy = add_upstream([](http::request_context& ctx) -> asio::awaitable<void> {
    http::response res{bhttp::status::service_unavailable, ctx.req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::retry_after, date);
    res.body() = R"({"error":{"message":"overloaded","type":"server_error"}})";
    co_await ctx.writer.send(std::move(res));
  });
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("busy", busy.url(), {make_model("gpt-4o-mini")}));
  start_gateway(cfg);
  r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 503, "upstream_503");
  EXPECT_EQ(r.header("retry-after"), date);

  // When another provider's error is what the client gets, the first one's
  // Retry-After does not come with it.
  auto& failing = add_mock();
  set_failure(failing, mock::failure_mode::http_500);
  start_gateway(two_providers(url_of(*mock_), url_of(failing)));
  r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 500, "upstream_500");
  EXPECT_EQ(r.header("retry-after"), "");
}

TEST_F(ErrorsTest, Upstream400IsPassedOn) {
  start_gateway(one_provider(*mock_));
  // The mock (like OpenAI) rejects an empty messages array; the gateway does not.
  const reply r = post("/v1/chat/completions", R"({"model":"gpt-4o-mini","messages":[]})");
  expect_openai_error(r, 400, "upstream_400");
  EXPECT_NE(error_message(r).find("empty array"), std::string::npos) << "the provider's message is kept: " << r.body;
  EXPECT_EQ(r.json().at("error").at("type").as_string(), "invalid_request_error");
  EXPECT_EQ(mock_->stats().requests, 1u);
}

TEST_F(ErrorsTest, MalformedUpstreamBodyIs502) {
  set_failure(*mock_, mock::failure_mode::malformed_body);
  start_gateway(one_provider(*mock_));
  const reply r = post("/v1/chat/completions", chat_body);
  expect_openai_error(r, 502, "upstream_bad_response");
  EXPECT_NE(error_message(r).find("alpha"), std::string::npos);
  // A malformed event stream before any byte reached the client: also a plain 502.
  const reply s = post("/v1/chat/completions", stream_chat_body);
  expect_openai_error(s, 502, "upstream_bad_response");
}

TEST_F(ErrorsTest, UpstreamResetBeforeAnswerIs502) {
  set_failure(*mock_, mock::failure_mode::reset_mid_stream);  // non-streaming: reset before any byte
  start_gateway(one_provider(*mock_));
  expect_openai_error(post("/v1/chat/completions", chat_body), 502, "upstream_unreachable");
}

TEST_F(ErrorsTest, UpstreamResetMidStreamEndsTheStreamWithAnInBandError) {
  set_failure(*mock_, mock::failure_mode::reset_mid_stream);
  auto cfg = one_provider(*mock_);
  // Paced, so the tokens before the reset surely reached the gateway first.
  cfg.providers[0].headers = {{"x-mock-tokens-per-s", "20"}, {"x-mock-output-tokens", "10"}};
  start_gateway(cfg);
  sse_client s(port());
  const auto t0 = clock_type::now();
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest(5s);
  EXPECT_LT(ms_since(t0), 3000.0);
  EXPECT_TRUE(s.complete()) << "the chunked body must be terminated cleanly";
  EXPECT_FALSE(s.error()) << s.error().message();
  ASSERT_GE(events.size(), 3u) << s.raw();
  EXPECT_NE(s.raw().find(R"("content":"tok0")"), std::string::npos) << s.raw();
  const json::value last = json::parse(events.back().data);
  const auto& error = last.at("error").as_object();
  EXPECT_TRUE(error.contains("message"));
  EXPECT_TRUE(error.contains("type"));
  EXPECT_EQ(error.at("code").as_string(), "upstream_unreachable") << s.raw();
  EXPECT_EQ(s.raw().find("[DONE]"), std::string::npos) << "a failed stream must not look complete";

  // The gateway is fine afterwards.
  set_failure(*mock_, std::nullopt);
  EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 200u);
}

TEST_F(ErrorsTest, MalformedEventMidStreamEndsWithAnInBandError) {
  // A scripted provider: one good chunk, then garbage.
  auto& up = add_upstream([](http::request_context& ctx) -> asio::awaitable<void> {
    http::response_head head;
    head.result(bhttp::status::ok);
    head.set(bhttp::field::content_type, "text/event-stream");
    const bool begun = co_await ctx.writer.begin_stream(std::move(head));
    if (!begun) co_return;
    const std::string good =
        R"(data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})"
        "\n\n";
    const bool wrote = co_await ctx.writer.write_chunk(good);
    if (!wrote) co_return;
    const std::string bad = "data: {not json\n\n";
    const bool wrote2 = co_await ctx.writer.write_chunk(bad);
    if (!wrote2) co_return;
    co_await ctx.writer.end_stream();
  });
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("scripted", up.url(), {make_model("gpt-4o-mini")}));
  start_gateway(cfg);
  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest(5s);
  EXPECT_TRUE(s.complete());
  ASSERT_EQ(events.size(), 2u) << s.raw();
  EXPECT_NE(events[0].data.find("\"hi\""), std::string::npos);
  EXPECT_EQ(json::parse(events[1].data).at("error").at("code").as_string(), "upstream_bad_response") << s.raw();
  EXPECT_EQ(s.raw().find("not json"), std::string::npos) << "garbage was forwarded";
}

}  // namespace
}  // namespace gatewayz::test

// The client side of the wire: HTTP/1.0, Expect: 100-continue, chunked
// request bodies, keep-alive across errors, large bodies, ambiguous JSON
// members, and shutting the gateway down with requests in flight.

#include <string>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

std::string raw_post(std::string_view version, std::string_view body, std::string_view extra_headers = {}) {
  return "POST /v1/chat/completions " + std::string(version) + "\r\nHost: g\r\nContent-Type: application/json\r\n" +
         std::string(extra_headers) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

TEST_F(GatewayTest, Http10ClientGetsAStreamDelimitedByClose) {
  auto& m = add_mock();
  start_gateway(one_provider(m));
  const std::string got = raw_exchange(port(), raw_post("HTTP/1.0", stream_chat_body), /*half_close=*/false, 5s);
  ASSERT_TRUE(got.starts_with("HTTP/1.0 200")) << got.substr(0, 200);
  const auto head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::string head = got.substr(0, head_end);
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  EXPECT_TRUE(got.ends_with("data: [DONE]\n\n")) << got.substr(got.size() > 200 ? got.size() - 200 : 0);

  const std::string plain = raw_exchange(port(), raw_post("HTTP/1.0", chat_body), false, 5s);
  EXPECT_TRUE(plain.starts_with("HTTP/1.0 200")) << plain.substr(0, 200);
  EXPECT_NE(plain.find("\"object\":\"chat.completion\""), std::string::npos);
}

TEST_F(GatewayTest, ExpectContinueIsHonoured) {
  auto& m = add_mock();
  start_gateway(one_provider(m));
  asio::io_context io;
  tcp::socket sock(io);
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nExpect: 100-continue\r\n"
      "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
      std::to_string(chat_body.size()) + "\r\n\r\n";
  asio::write(sock, asio::buffer(head));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::empty_body> interim;
  bhttp::response_parser<bhttp::empty_body> interim_parser;
  bhttp::read_header(sock, buffer, interim_parser);
  EXPECT_EQ(interim_parser.get().result_int(), 100u);
  asio::write(sock, asio::buffer(chat_body));
  bhttp::response<bhttp::string_body> res;
  bhttp::read(sock, buffer, res);
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_NE(res.body().find("chat.completion"), std::string::npos);
}

TEST_F(GatewayTest, ChunkedRequestBodyIsAccepted) {
  auto& m = add_mock();
  start_gateway(one_provider(m));
  const std::string first = chat_body.substr(0, 20);
  const std::string second = chat_body.substr(20);
  auto hex = [](std::size_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return std::string(buf);
  };
  const std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
      hex(first.size()) + "\r\n" + first + "\r\n" + hex(second.size()) + "\r\n" + second + "\r\n0\r\n\r\n";
  const std::string got = raw_exchange(port(), req, false, 5s);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200")) << got.substr(0, 300);
  std::string expected = chat_body;
  expected.replace(expected.find("\"gpt-4o-mini\""), 13, "\"upstream-mini\"");
  EXPECT_EQ(m.recent_requests().back().body, expected);
}

TEST_F(GatewayTest, ConnectionStaysUsableAfterErrors) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.providers[0].headers = {{"x-mock-tokens-per-s", "50"}};
  start_gateway(cfg);
  client c(port());
  expect_openai_error(c.post("/v1/chat/completions", "{oops"), 400, "invalid_json");
  expect_openai_error(c.get("/v1/chat/completions"), 405, "method_not_allowed");
  expect_openai_error(c.get("/nope"), 404, "not_found");
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body).status, 200u);

  set_failure(m, mock::failure_mode::http_500);
  expect_openai_error(c.post("/v1/chat/completions", chat_body), 500, "upstream_500");
  // An in-band stream error still terminates the chunked body properly, so
  // the connection can carry the next request.
  set_failure(m, mock::failure_mode::reset_mid_stream);
  const reply broken = c.post("/v1/chat/completions", stream_chat_body);
  ASSERT_FALSE(broken.error) << broken.error.message();
  EXPECT_EQ(broken.status, 200u);
  EXPECT_NE(broken.body.find("data: {\"error\":"), std::string::npos) << broken.body;
  set_failure(m, std::nullopt);
  const reply after = c.post("/v1/chat/completions", chat_body);
  ASSERT_FALSE(after.error) << after.error.message();
  EXPECT_EQ(after.status, 200u);
}

TEST_F(GatewayTest, LargeBodyIsForwardedIntact) {
  auto& m = add_mock();
  start_gateway(one_provider(m));
  std::string content;
  for (int i = 0; content.size() < 200 * 1024; ++i) content += "word" + std::to_string(i) + " \\u00e9\\n ";
  const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + content + "\"}]}";
  const reply r = post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200u) << r.body.substr(0, 300);
  const auto up = m.recent_requests().back();
  ASSERT_FALSE(up.body_truncated);
  std::string expected = body;
  expected.replace(expected.find("\"gpt-4o-mini\""), 13, "\"upstream-mini\"");
  EXPECT_TRUE(up.body == expected) << "body of " << up.body.size() << " bytes differs";
}

// The gateway routes (and accounts) by the model and usage settings it reads;
// the provider must not be able to read different ones from the same bytes.
// JSON parsers disagree on repeated names (first or last wins), and an escaped
// name ("mod\u0065l") is the same name to the provider but not to a raw-key
// lookup, so such bodies are refused before any provider sees them.
TEST_F(GatewayTest, AmbiguousMembersAreRefusedNotSmuggledUpstream) {
  auto& m = add_mock();
  start_gateway(one_provider(m));
  const std::vector<std::string> ambiguous = {
      R"({"model":"gpt-4o-mini","mod\u0065l":"smuggled-model","messages":[{"role":"user","content":"x"}]})",
      R"({"model":"smuggled-model","model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]})",
      R"({"model":"gpt-4o-mini","stream":false,"str\u0065am":true,"messages":[{"role":"user","content":"x"}]})",
      R"({"model":"gpt-4o-mini","stream":true,"stream_opti\u006fns":{"include_usage":false},"messages":[]})",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false,"include_usage":true},"messages":[]})",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_\u0075sage":false},"messages":[]})",
  };
  for (const auto& body : ambiguous) {
    SCOPED_TRACE(body);
    expect_openai_error(post("/v1/chat/completions", body), 400, "duplicate_member");
  }
  EXPECT_EQ(m.stats().requests, 0u);
  // Escaped names of members the gateway does not interpret are fine.
  const reply ok = post("/v1/chat/completions",
                        R"({"model":"gpt-4o-mini","us\u0065r":"u1","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_NE(m.recent_requests().back().body.find(R"("us\u0065r":"u1")"), std::string::npos);
}

TEST_F(GatewayTest, ShutdownWithRequestsInFlightCompletesOrCloses) {
  auto& m = add_mock();
  auto slow = m.current_behaviour();
  slow.tokens_per_s = 20;
  slow.output_tokens = 6;  // ~250 ms: finishes within the 500 ms grace
  m.set_behaviour(slow);
  start_gateway(one_provider(m));

  sse_client stream(port());
  ASSERT_TRUE(stream.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(stream.status(), 200u);
  ASSERT_TRUE(stream.next().has_value());

  // A second request that will never be answered upstream.
  asio::io_context io;
  tcp::socket hung(io);
  hung.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
  const std::string req = raw_post("HTTP/1.1", chat_body);
  // (The mock hangs only this one: set the failure, send, wait until it arrived.)
  const auto requests_before = m.stats().requests;
  set_failure(m, mock::failure_mode::hang);
  asio::write(hung, asio::buffer(req));
  ASSERT_TRUE(eventually([&] { return m.stats().requests > requests_before; }));
  set_failure(m, std::nullopt);

  const auto t0 = clock_type::now();
  gateway_.reset();  // shutdown(500ms) + join
  EXPECT_LT(ms_since(t0), 4000.0) << "shutdown did not finish";
  // The in-flight stream was allowed to finish.
  const auto events = stream.rest(2s);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]") << stream.raw();
  // The hung request's connection was closed, and its upstream call cancelled.
  EXPECT_TRUE(eventually([&] { return m.stats().cancelled >= 1; }, 2s));
}

}  // namespace
}  // namespace gatewayz::test

// Upstream connection reuse, concurrency, and survival of hostile input.

#include <atomic>
#include <random>
#include <string>
#include <thread>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

const std::string fixed_answer =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})";

// A minimal OpenAI-compatible upstream: a fixed answer, or a three-event stream.
asio::awaitable<void> tiny_openai(http::request_context& ctx) {
  if (ctx.req.body().find("\"stream\":true") == std::string::npos) {
    http::response res{bhttp::status::ok, ctx.req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = fixed_answer;
    co_await ctx.writer.send(std::move(res));
    co_return;
  }
  http::response_head head;
  head.result(bhttp::status::ok);
  head.set(bhttp::field::content_type, "text/event-stream");
  const bool begun = co_await ctx.writer.begin_stream(std::move(head));
  if (!begun) co_return;
  const std::string events =
      R"(data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})"
      "\n\n"
      "data: [DONE]\n\n";
  const bool wrote = co_await ctx.writer.write_chunk(events);
  if (!wrote) co_return;
  co_await ctx.writer.end_stream();
}

config::gateway_config scripted_config(const scripted_upstream& up) {
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("tiny", up.url(), {make_model("gpt-4o-mini")}));
  return cfg;
}

// 10 --------------------------------------------------------------------------------

TEST_F(GatewayTest, UpstreamConnectionIsKeptAliveAndReused) {
  auto& up = add_upstream(tiny_openai);
  start_gateway(scripted_config(up));

  // One client connection stays on one gateway shard, hence one pool.
  client c(port());
  for (int i = 0; i < 4; ++i) {
    const reply r = c.post("/v1/chat/completions", chat_body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, fixed_answer);
    const reply s = c.post("/v1/chat/completions", stream_chat_body);
    ASSERT_EQ(s.status, 200u) << s.body;
    EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
    EXPECT_EQ(s.body.find("usage"), std::string::npos) << s.body;
  }
  EXPECT_EQ(up.requests(), 8u);
  EXPECT_EQ(up.connections(), 1u) << "each request opened a new upstream connection";
}

TEST_F(GatewayTest, StalePooledConnectionIsReplacedTransparently) {
  // The upstream closes idle keep-alive connections after 150 ms, as real
  // providers and load balancers do.
  auto& up = add_upstream(tiny_openai, 150ms);
  start_gateway(scripted_config(up));
  client c(port());
  ASSERT_EQ(c.post("/v1/chat/completions", chat_body).status, 200u);
  ASSERT_TRUE(eventually([&] { return up.open_connections() == 0; }, 3s)) << "the upstream did not close";
  const reply r = c.post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(up.connections(), 2u);
  ASSERT_TRUE(eventually([&] { return up.open_connections() == 0; }, 3s));
  const reply s = c.post("/v1/chat/completions", stream_chat_body);
  ASSERT_EQ(s.status, 200u) << s.body;
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(GatewayTest, ConcurrentClientsAllGetTheirAnswers) {
  auto& a = add_mock();
  start_gateway(one_provider(a));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      client c(port());
      for (int i = 0; i < 5; ++i) {
        const bool stream = (t + i) % 2 == 0;
        const reply r = c.post("/v1/chat/completions", stream ? stream_chat_body : chat_body);
        const bool good = r.status == 200 && (stream ? r.body.ends_with("data: [DONE]\n\n")
                                                     : r.body.find("chat.completion") != std::string::npos);
        if (good) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 60);
}

TEST_F(GatewayTest, PipelinedRequestsAreAnsweredInOrder) {
  auto& m = add_mock();
  start_gateway(one_provider(m));
  auto one = [](std::string_view id, std::string_view body) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nX-Request-ID: " + std::string(id) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           std::string(body);
  };
  const std::string both = one("first", chat_body) + one("second", stream_chat_body) +
                           "GET /v1/models HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n";
  const std::string got = raw_exchange(port(), both, /*half_close=*/false, 5s);
  const auto a = got.find("x-request-id: first");
  const auto b = got.find("x-request-id: second");
  const auto c = got.find("\"object\":\"list\"");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(b, std::string::npos) << got;
  ASSERT_NE(c, std::string::npos) << got;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(got.find("data: [DONE]"), std::string::npos);
}

// 11 --------------------------------------------------------------------------------

std::string random_bytes(std::mt19937& rng, std::size_t max_len) {
  std::uniform_int_distribution<std::size_t> len(1, max_len);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(len(rng), '\0');
  for (char& ch : s) ch = static_cast<char>(byte(rng));
  return s;
}

// One random edit of a valid body: flip, insert, delete, duplicate, truncate,
// or splice in a JSON fragment that stresses the scanner.
std::string mutate(std::mt19937& rng, std::string body) {
  static const std::vector<std::string> fragments = {"{",
                                                     "}",
                                                     "[",
                                                     "]",
                                                     "\"",
                                                     "\\",
                                                     ",",
                                                     ":",
                                                     "null",
                                                     "true",
                                                     "1e999",
                                                     "-0",
                                                     "\\u0000",
                                                     "\\ud800",
                                                     "\xc0\xaf",
                                                     "\xed\xa0\x80",
                                                     "\xf4\x90\x80\x80",
                                                     std::string(200, '['),
                                                     std::string(200, '{'),
                                                     "\"stream\":true,",
                                                     "\"stream\":\"x\",",
                                                     "\"model\":\"gpt-4o-mini\",",
                                                     "\"model\":\"x\",",
                                                     "\"messages\":[],",
                                                     "\"stream_options\":{\"include_usage\":true},",
                                                     "\"max_tokens\":2,",
                                                     std::string("\0", 1),
                                                     "\x7f",
                                                     "\r\n"};
  const int edits = std::uniform_int_distribution<int>(1, 3)(rng);
  for (int e = 0; e < edits && !body.empty(); ++e) {
    std::uniform_int_distribution<std::size_t> pos(0, body.size() - 1);
    switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
      case 0: body[pos(rng)] = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng)); break;
      case 1: body.insert(pos(rng), 1, static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng))); break;
      case 2: {
        const auto at = pos(rng);
        body.erase(at, std::uniform_int_distribution<std::size_t>(1, 8)(rng));
        break;
      }
      case 3: {
        const auto at = pos(rng);
        body.insert(at, body.substr(at, std::uniform_int_distribution<std::size_t>(1, 16)(rng)));
        break;
      }
      case 4: body.resize(pos(rng)); break;
      default: {
        const auto& f = fragments[std::uniform_int_distribution<std::size_t>(0, fragments.size() - 1)(rng)];
        body.insert(pos(rng), f);
        break;
      }
    }
  }
  return body;
}

TEST_F(GatewayTest, SurvivesHostileInput) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.server.max_body_bytes = 16 * 1024;
  cfg.server.header_timeout_s = 2;
  cfg.server.body_timeout_s = 2;
  start_gateway(cfg);
  const unsigned seed = 20240611;
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));

  // Whatever comes back must be HTTP (or nothing at all).
  auto check_http = [](const std::string& got, const std::string& sent) {
    if (!got.empty() && !got.starts_with("HTTP/1.")) {
      ADD_FAILURE() << "not an HTTP answer to " << json::serialize(json::string(sent)) << ": " << got.substr(0, 100);
    }
  };

  // 1. Random bytes.
  for (int i = 0; i < 1000; ++i) {
    const std::string bytes = random_bytes(rng, 600);
    check_http(raw_exchange(port(), bytes), bytes);
  }
  // 2. A plausible request line followed by random header bytes.
  static const std::vector<std::string> starts = {"POST /v1/chat/completions HTTP/1.1\r\n",
                                                  "GET /v1/models HTTP/1.1\r\n", "POST / HTTP/1.0\r\n",
                                                  "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\n"};
  for (int i = 0; i < 500; ++i) {
    const std::string bytes =
        starts[std::uniform_int_distribution<std::size_t>(0, starts.size() - 1)(rng)] + random_bytes(rng, 300);
    check_http(raw_exchange(port(), bytes), bytes);
  }
  // 3. Broken framing: bad or conflicting lengths, bad chunk sizes.
  const std::vector<std::string> framing = {
      "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"model\":",
      "POST /v1/chat/completions HTTP/1.1\r\n" + std::string(40000, 'X') + ": y\r\n\r\n",
      std::string(100000, 'A'),
  };
  for (const auto& bytes : framing) check_http(raw_exchange(port(), bytes), bytes.substr(0, 200));

  // 4. Mutations of valid bodies with correct framing: every one gets an
  //    answer, and every error is OpenAI-shaped.
  const std::vector<std::string> valid = {
      chat_body, stream_chat_body,
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":3,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})",
      R"({"model":"gpt-3.5-turbo-instruct","prompt":["a","b"],"max_tokens":2})",
      R"({"model":"text-embedding-3-small","input":"abc"})"};
  const char* targets[] = {"/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", "/v1/completions",
                           "/v1/embeddings"};
  int answered = 0;
  for (int i = 0; i < 500; ++i) {
    const auto which = std::uniform_int_distribution<std::size_t>(0, valid.size() - 1)(rng);
    const std::string body = mutate(rng, valid[which]);
    const reply r = post_once(port(), targets[which], body, {}, 5s);
    if (r.error) {
      ADD_FAILURE() << "no answer (" << r.error.message() << ") to " << json::serialize(json::string(body));
      continue;
    }
    ++answered;
    if (r.status != 200) {
      boost::system::error_code ec;
      const json::value v = json::parse(r.body, ec);
      if (ec || !v.is_object() || !v.as_object().contains("error")) {
        ADD_FAILURE() << r.status << " without an OpenAI error body: " << r.body.substr(0, 200);
      }
    }
  }
  EXPECT_EQ(answered, 500);

  // Still serving normally, and nothing is left open.
  const reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("object").as_string(), "chat.completion");
  EXPECT_TRUE(eventually([&] { return gateway_->open_connections() == 0; }, 3s))
      << gateway_->open_connections() << " connections still open";
}

}  // namespace
}  // namespace gatewayz::test

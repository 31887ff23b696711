// End-to-end tests of the mock provider: it runs in-process on an ephemeral
// port and the tests talk to it over real sockets with a small Beast client,
// so the wire bytes are exactly what a gateway would see.

#include "mock/mock_provider.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

namespace gatewayz::mock {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using header_list = std::vector<std::pair<std::string, std::string>>;

struct reply {
  unsigned status = 0;
  bhttp::fields headers;
  std::string body;
  boost::system::error_code error;  // transport failure (reset, timeout, ...)
  std::chrono::steady_clock::duration to_headers{};
  std::chrono::steady_clock::duration total{};
};

// A blocking HTTP/1.1 client over one keep-alive connection. It drives Beast's
// async operations to completion on a private io_context because tcp_stream
// timeouts apply only to async operations.
class test_client {
 public:
  explicit test_client(std::uint16_t port) : stream_(io_) {
    stream_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  reply send(bhttp::verb method, const std::string& target, const std::string& body = {},
             const header_list& headers = {}, std::chrono::milliseconds timeout = 10s, bool headers_only = false) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (method == bhttp::verb::post || method == bhttp::verb::put) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    reply r;
    const auto start = std::chrono::steady_clock::now();
    stream_.expires_after(timeout);
    bhttp::async_write(stream_, req, [&r](boost::system::error_code ec, std::size_t) { r.error = ec; });
    drive();
    if (r.error) return r;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bhttp::async_read_header(stream_, buffer_, parser,
                             [&r](boost::system::error_code ec, std::size_t) { r.error = ec; });
    drive();
    if (r.error) return r;
    r.to_headers = std::chrono::steady_clock::now() - start;
    r.status = parser.get().result_int();
    r.headers = parser.get().base();
    if (headers_only) return r;
    bhttp::async_read(stream_, buffer_, parser, [&r](boost::system::error_code ec, std::size_t) { r.error = ec; });
    drive();
    r.total = std::chrono::steady_clock::now() - start;
    r.body = parser.get().body();
    return r;
  }

  void close() {
    boost::system::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
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

struct sse_event {
  std::string event;
  std::string data;
};

std::vector<sse_event> parse_sse(std::string_view body) {
  std::vector<sse_event> events;
  while (!body.empty()) {
    const auto end = body.find("\n\n");
    std::string_view block = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view{} : body.substr(end + 2);
    sse_event e;
    while (!block.empty()) {
      const auto nl = block.find('\n');
      std::string_view line = block.substr(0, nl);
      block = nl == std::string_view::npos ? std::string_view{} : block.substr(nl + 1);
      if (line.starts_with("event: ")) e.event = line.substr(7);
      if (line.starts_with("data: ")) e.data = line.substr(6);
    }
    events.push_back(std::move(e));
  }
  return events;
}

json::value parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

std::string str(const json::value& v) { return std::string(v.as_string()); }

std::string expected_text(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += (i == 0 ? "tok0" : " tok" + std::to_string(i));
  return text;
}

double ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

const std::string chat_body = R"({"model":"my-model","messages":[{"role":"system","content":"be brief"},)"
                              R"({"role":"user","content":[{"type":"text","text":"hello there  world"}]}]})";
const std::string stream_body =
    R"({"model":"my-model","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
const std::string anthropic_body =
    R"({"model":"claude-x","max_tokens":5,"system":"be kind","messages":[{"role":"user","content":"hi you"}]})";
const header_list anthropic_headers = {{"x-api-key", "k"}, {"anthropic-version", "2023-06-01"}};

class MockProviderTest : public ::testing::Test {
 protected:
  void SetUp() override { start(mock_options{}); }

  void start(mock_options options) {
    provider_.reset();
    options.server.threads = 2;
    options.shutdown_grace = 500ms;
    provider_ = std::make_unique<mock_provider>(std::move(options));
    provider_->start();
  }

  reply call(bhttp::verb method, const std::string& target, const std::string& body = {},
             const header_list& headers = {}, std::chrono::milliseconds timeout = 10s) {
    test_client client(provider_->port());
    return client.send(method, target, body, headers, timeout);
  }

  reply post(const std::string& target, const std::string& body, const header_list& headers = {}) {
    return call(bhttp::verb::post, target, body, headers);
  }

  // Waits (bounded) for an asynchronous effect such as a cancellation count.
  template <class Predicate>
  static bool eventually(Predicate p, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (p()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return p();
  }

  std::unique_ptr<mock_provider> provider_;
};

TEST(FailureModeNames, RoundTrip) {
  for (failure_mode m : {failure_mode::http_500, failure_mode::http_429, failure_mode::hang,
                         failure_mode::reset_mid_stream, failure_mode::malformed_body}) {
    failure_mode parsed = failure_mode::http_500;
    ASSERT_TRUE(parse_failure_mode(to_string(m), parsed)) << to_string(m);
    EXPECT_EQ(parsed, m);
  }
  failure_mode untouched = failure_mode::hang;
  EXPECT_TRUE(parse_failure_mode("reset_mid_stream", untouched));
  EXPECT_EQ(untouched, failure_mode::reset_mid_stream);
  EXPECT_FALSE(parse_failure_mode("404", untouched));
  EXPECT_EQ(untouched, failure_mode::reset_mid_stream);
}

TEST_F(MockProviderTest, ChatCompletion) {
  reply r = post("/v1/chat/completions", chat_body);
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.headers[bhttp::field::content_type], "application/json");
  json::object body = parse_json(r.body).as_object();
  EXPECT_EQ(str(body["object"]), "chat.completion");
  EXPECT_EQ(str(body["model"]), "my-model");
  EXPECT_TRUE(str(body["id"]).starts_with("chatcmpl-"));
  json::object choice = body["choices"].as_array().at(0).as_object();
  EXPECT_EQ(str(choice["message"].as_object()["role"]), "assistant");
  EXPECT_EQ(str(choice["message"].as_object()["content"]), expected_text(16));
  EXPECT_EQ(str(choice["finish_reason"]), "stop");
  json::object usage = body["usage"].as_object();
  EXPECT_EQ(usage["prompt_tokens"].as_int64(), 5);  // "be brief" + "hello there  world"
  EXPECT_EQ(usage["completion_tokens"].as_int64(), 16);
  EXPECT_EQ(usage["total_tokens"].as_int64(), 21);

  reply limited = post("/v1/chat/completions",
                       R"({"model":"m","messages":[{"role":"user","content":""}],"max_completion_tokens":3})");
  ASSERT_EQ(limited.status, 200u) << limited.body;
  json::object lb = parse_json(limited.body).as_object();
  json::object lchoice = lb["choices"].as_array().at(0).as_object();
  EXPECT_EQ(str(lchoice["message"].as_object()["content"]), "tok0 tok1 tok2");
  EXPECT_EQ(str(lchoice["finish_reason"]), "length");
  EXPECT_EQ(lb["usage"].as_object()["prompt_tokens"].as_int64(), 1);  // at least one
  EXPECT_EQ(lb["usage"].as_object()["completion_tokens"].as_int64(), 3);
}

TEST_F(MockProviderTest, ChatCompletionStream) {
  reply r = post("/v1/chat/completions", stream_body);
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.status, 200u);
  EXPECT_TRUE(std::string_view(r.headers[bhttp::field::content_type]).starts_with("text/event-stream"));
  EXPECT_TRUE(r.headers[bhttp::field::content_length].empty());  // chunked
  std::vector<sse_event> events = parse_sse(r.body);
  // role, 4 tokens, finish, [DONE]
  ASSERT_EQ(events.size(), 7u) << r.body;
  EXPECT_EQ(events.back().data, "[DONE]");
  std::string content;
  std::string id;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    json::object chunk = parse_json(events[i].data).as_object();
    EXPECT_EQ(str(chunk["object"]), "chat.completion.chunk");
    EXPECT_EQ(str(chunk["model"]), "my-model");
    EXPECT_FALSE(chunk.contains("usage"));
    if (i == 0) id = str(chunk["id"]);
    EXPECT_EQ(str(chunk["id"]), id);
    json::object choice = chunk["choices"].as_array().at(0).as_object();
    json::object delta = choice["delta"].as_object();
    if (i == 0) {
      EXPECT_EQ(str(delta["role"]), "assistant");
    }
    if (const json::value* c = delta.if_contains("content")) content += str(*c);
    if (i + 2 == events.size()) {
      EXPECT_EQ(str(choice["finish_reason"]), "length");
      EXPECT_TRUE(delta.empty());
    } else {
      EXPECT_TRUE(choice["finish_reason"].is_null());
    }
  }
  EXPECT_EQ(content, "tok0 tok1 tok2 tok3");
  EXPECT_TRUE(eventually([&] { return provider_->stats().streams_completed == 1; }));
}

TEST_F(MockProviderTest, ChatStreamIncludeUsage) {
  reply r = post("/v1/chat/completions", R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)"
                                         R"("messages":[{"role":"user","content":"one two three"}],"max_tokens":2})");
  ASSERT_EQ(r.status, 200u);
  std::vector<sse_event> events = parse_sse(r.body);
  // role, 2 tokens, finish, usage, [DONE]
  ASSERT_EQ(events.size(), 6u) << r.body;
  EXPECT_EQ(events.back().data, "[DONE]");
  for (std::size_t i = 0; i < 4; ++i) {
    json::object chunk = parse_json(events[i].data).as_object();
    ASSERT_TRUE(chunk.contains("usage"));
    EXPECT_TRUE(chunk["usage"].is_null());
  }
  json::object last = parse_json(events[4].data).as_object();
  EXPECT_TRUE(last["choices"].as_array().empty());
  json::object usage = last["usage"].as_object();
  EXPECT_EQ(usage["prompt_tokens"].as_int64(), 3);
  EXPECT_EQ(usage["completion_tokens"].as_int64(), 2);
  EXPECT_EQ(usage["total_tokens"].as_int64(), 5);

  // stream_options without stream is rejected, as OpenAI does.
  reply bad =
      post("/v1/chat/completions",
           R"({"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(bad.status, 400u);
}

TEST_F(MockProviderTest, TextCompletion) {
  reply r = post("/v1/completions", R"({"model":"inst","prompt":"say something","max_tokens":3})");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::object body = parse_json(r.body).as_object();
  EXPECT_EQ(str(body["object"]), "text_completion");
  EXPECT_EQ(str(body["model"]), "inst");
  EXPECT_EQ(str(body["choices"].as_array().at(0).as_object()["text"]), "tok0 tok1 tok2");
  EXPECT_EQ(body["usage"].as_object()["prompt_tokens"].as_int64(), 2);

  reply s = post("/v1/completions",
                 R"({"model":"inst","prompt":["a b","c"],"stream":true,"stream_options":{"include_usage":true}})",
                 {{"x-mock-output-tokens", "2"}});
  ASSERT_EQ(s.status, 200u);
  std::vector<sse_event> events = parse_sse(s.body);
  // 2 tokens, finish, usage, [DONE]
  ASSERT_EQ(events.size(), 5u) << s.body;
  std::string text;
  for (std::size_t i = 0; i < 3; ++i) {
    json::object chunk = parse_json(events[i].data).as_object();
    EXPECT_EQ(str(chunk["object"]), "text_completion");
    text += str(chunk["choices"].as_array().at(0).as_object()["text"]);
  }
  EXPECT_EQ(text, "tok0 tok1");
  EXPECT_EQ(str(parse_json(events[2].data).as_object()["choices"].as_array().at(0).as_object()["finish_reason"]),
            "stop");
  json::object usage = parse_json(events[3].data).as_object()["usage"].as_object();
  EXPECT_EQ(usage["prompt_tokens"].as_int64(), 3);
  EXPECT_EQ(usage["completion_tokens"].as_int64(), 2);
  EXPECT_EQ(events[4].data, "[DONE]");
}

TEST_F(MockProviderTest, Embeddings) {
  reply r = post("/v1/embeddings", R"({"model":"emb","input":"hello world"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  json::object body = parse_json(r.body).as_object();
  EXPECT_EQ(str(body["object"]), "list");
  EXPECT_EQ(str(body["model"]), "emb");
  EXPECT_EQ(body["usage"].as_object()["prompt_tokens"].as_int64(), 2);
  json::array data = body["data"].as_array();
  ASSERT_EQ(data.size(), 1u);
  json::array vec = data[0].as_object()["embedding"].as_array();
  ASSERT_EQ(vec.size(), 8u);
  double norm = 0;
  for (const json::value& x : vec) norm += x.as_double() * x.as_double();
  EXPECT_NEAR(norm, 1.0, 1e-5);

  // Deterministic per input, different across inputs.
  reply again = post("/v1/embeddings", R"({"model":"emb","input":["hello world","other",""]})");
  EXPECT_EQ(again.status, 400u);  // empty strings are rejected like OpenAI does
  again = post("/v1/embeddings", R"({"model":"emb","input":["hello world","other"],"dimensions":3})");
  ASSERT_EQ(again.status, 200u) << again.body;
  json::array data2 = parse_json(again.body).as_object()["data"].as_array();
  ASSERT_EQ(data2.size(), 2u);
  EXPECT_EQ(data2[1].as_object()["index"].as_int64(), 1);
  json::array a = data2[0].as_object()["embedding"].as_array();
  json::array b = data2[1].as_object()["embedding"].as_array();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_NE(a, b);
  reply same = post("/v1/embeddings", R"({"model":"emb","input":"hello world"})");
  EXPECT_EQ(parse_json(same.body).as_object()["data"].as_array()[0].as_object()["embedding"], vec);

  // base64: little-endian float32s, 8 dims = 32 bytes = 44 base64 characters.
  reply b64 = post("/v1/embeddings", R"({"model":"emb","input":"hello world","encoding_format":"base64"})");
  ASSERT_EQ(b64.status, 200u);
  EXPECT_EQ(str(parse_json(b64.body).as_object()["data"].as_array()[0].as_object()["embedding"]).size(), 44u);

  EXPECT_EQ(post("/v1/embeddings", R"({"model":"emb"})").status, 400u);
}

TEST_F(MockProviderTest, Models) {
  reply r = call(bhttp::verb::get, "/v1/models");
  ASSERT_EQ(r.status, 200u);
  json::object body = parse_json(r.body).as_object();
  EXPECT_EQ(str(body["object"]), "list");
  ASSERT_FALSE(body["data"].as_array().empty());
  EXPECT_EQ(str(body["data"].as_array()[0].as_object()["object"]), "model");

  reply one = call(bhttp::verb::get, "/v1/models/anything");
  ASSERT_EQ(one.status, 200u);
  EXPECT_EQ(str(parse_json(one.body).as_object()["id"]), "anything");

  EXPECT_EQ(call(bhttp::verb::post, "/v1/models", "{}").status, 405u);
  reply missing = call(bhttp::verb::get, "/v1/nothing");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_TRUE(parse_json(missing.body).as_object().contains("error"));
}

TEST_F(MockProviderTest, AnthropicMessage) {
  reply r = post("/v1/messages", anthropic_body, anthropic_headers);
  ASSERT_EQ(r.status, 200u) << r.body;
  json::object body = parse_json(r.body).as_object();
  EXPECT_EQ(str(body["type"]), "message");
  EXPECT_EQ(str(body["role"]), "assistant");
  EXPECT_EQ(str(body["model"]), "claude-x");
  EXPECT_TRUE(str(body["id"]).starts_with("msg_"));
  json::object block = body["content"].as_array().at(0).as_object();
  EXPECT_EQ(str(block["type"]), "text");
  EXPECT_EQ(str(block["text"]), expected_text(5));
  EXPECT_EQ(str(body["stop_reason"]), "max_tokens");
  EXPECT_TRUE(body["stop_sequence"].is_null());
  EXPECT_EQ(body["usage"].as_object()["input_tokens"].as_int64(), 4);
  EXPECT_EQ(body["usage"].as_object()["output_tokens"].as_int64(), 5);
}

TEST_F(MockProviderTest, AnthropicStreamEventOrder) {
  std::string streaming = anthropic_body;
  streaming.insert(1, R"("stream":true,)");
  reply r = post("/v1/messages", streaming, anthropic_headers);
  ASSERT_EQ(r.status, 200u) << r.body;
  std::vector<sse_event> events = parse_sse(r.body);
  std::vector<std::string> names;
  std::string text;
  for (const sse_event& e : events) {
    names.push_back(e.event);
    json::object data = parse_json(e.data).as_object();
    EXPECT_EQ(str(data["type"]), e.event);  // Anthropic repeats the event name as "type"
    if (e.event == "content_block_delta") {
      EXPECT_EQ(str(data["delta"].as_object()["type"]), "text_delta");
      text += str(data["delta"].as_object()["text"]);
    }
    if (e.event == "message_start") {
      json::object message = data["message"].as_object();
      EXPECT_EQ(str(message["model"]), "claude-x");
      EXPECT_EQ(message["usage"].as_object()["input_tokens"].as_int64(), 4);
    }
    if (e.event == "message_delta") {
      EXPECT_EQ(str(data["delta"].as_object()["stop_reason"]), "max_tokens");
      EXPECT_EQ(data["usage"].as_object()["output_tokens"].as_int64(), 5);
    }
  }
  const std::vector<std::string> expected = {"message_start",       "content_block_start", "ping",
                                             "content_block_delta", "content_block_delta", "content_block_delta",
                                             "content_block_delta", "content_block_delta", "content_block_stop",
                                             "message_delta",       "message_stop"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(text, expected_text(5));
}

TEST_F(MockProviderTest, AnthropicHeadersAndValidation) {
  reply no_key = post("/v1/messages", anthropic_body, {{"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(no_key.status, 401u);
  json::object err = parse_json(no_key.body).as_object();
  EXPECT_EQ(str(err["type"]), "error");
  EXPECT_EQ(str(err["error"].as_object()["type"]), "authentication_error");

  reply no_version = post("/v1/messages", anthropic_body, {{"x-api-key", "k"}});
  EXPECT_EQ(no_version.status, 400u);
  EXPECT_EQ(str(parse_json(no_version.body).as_object()["error"].as_object()["type"]), "invalid_request_error");

  reply bad_json = post("/v1/messages", "{\"model\":", anthropic_headers);
  EXPECT_EQ(bad_json.status, 400u);
  EXPECT_EQ(str(parse_json(bad_json.body).as_object()["type"]), "error");

  EXPECT_EQ(
      post("/v1/messages", R"({"model":"c","messages":[{"role":"user","content":"x"}]})", anthropic_headers).status,
      400u);  // max_tokens is required by Anthropic
  EXPECT_EQ(post("/v1/messages", R"({"model":"c","max_tokens":5})", anthropic_headers).status, 400u);
}

TEST_F(MockProviderTest, OpenAIValidation) {
  reply bad_json = post("/v1/chat/completions", "{not json");
  ASSERT_EQ(bad_json.status, 400u);
  json::object err = parse_json(bad_json.body).as_object()["error"].as_object();
  EXPECT_EQ(str(err["type"]), "invalid_request_error");
  EXPECT_FALSE(str(err["message"]).empty());

  EXPECT_EQ(post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}]})").status, 400u);
  EXPECT_EQ(post("/v1/chat/completions", R"({"model":"m"})").status, 400u);
  EXPECT_EQ(post("/v1/chat/completions", R"({"model":"m","messages":[]})").status, 400u);
  EXPECT_EQ(post("/v1/chat/completions", R"({"model":"m","messages":[{"role":"user"}],"max_tokens":0})").status, 400u);
  EXPECT_EQ(post("/v1/completions", R"({"model":"m"})").status, 400u);
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"x-mock-latency-ms", "soon"}}).status, 400u);
  EXPECT_EQ(call(bhttp::verb::get, "/v1/chat/completions").status, 405u);
  // Validation errors are not simulated failures.
  EXPECT_EQ(provider_->stats().failures, 0u);
}

TEST_F(MockProviderTest, Http500And429) {
  reply r500 = post("/v1/chat/completions", chat_body, {{"x-mock-failure", "500"}});
  EXPECT_EQ(r500.status, 500u);
  EXPECT_TRUE(parse_json(r500.body).as_object().contains("error"));

  reply r429 = post("/v1/chat/completions", stream_body, {{"x-mock-failure", "429"}});
  EXPECT_EQ(r429.status, 429u);
  EXPECT_EQ(r429.headers[bhttp::field::retry_after], "1");
  EXPECT_EQ(str(parse_json(r429.body).as_object()["error"].as_object()["code"]), "rate_limit_exceeded");

  // Anthropic endpoints fail in Anthropic's shape.
  header_list h = anthropic_headers;
  h.emplace_back("x-mock-failure", "429");
  reply a429 = post("/v1/messages", anthropic_body, h);
  EXPECT_EQ(a429.status, 429u);
  EXPECT_EQ(str(parse_json(a429.body).as_object()["error"].as_object()["type"]), "rate_limit_error");

  reply e500 = post("/v1/embeddings", R"({"model":"e","input":"x"})", {{"x-mock-failure", "500"}});
  EXPECT_EQ(e500.status, 500u);
  EXPECT_EQ(provider_->stats().failures, 4u);
}

TEST_F(MockProviderTest, MalformedBody) {
  reply plain = post("/v1/chat/completions", chat_body, {{"x-mock-failure", "malformed"}});
  ASSERT_EQ(plain.status, 200u);
  EXPECT_EQ(plain.body, R"({"id": broken)");

  reply stream = post("/v1/chat/completions", stream_body, {{"x-mock-failure", "malformed"}});
  ASSERT_EQ(stream.status, 200u);
  ASSERT_FALSE(stream.error);
  EXPECT_EQ(stream.body, "data: {not json\n\n");
}

TEST_F(MockProviderTest, ResetBeforeAnswerAndMidStream) {
  reply plain = post("/v1/chat/completions", chat_body, {{"x-mock-failure", "reset"}});
  EXPECT_TRUE(plain.error);
  EXPECT_EQ(plain.status, 0u);

  test_client client(provider_->port());
  reply stream = client.send(bhttp::verb::post, "/v1/chat/completions", stream_body, {{"x-mock-failure", "reset"}});
  EXPECT_EQ(stream.status, 200u);  // headers (and a few chunks) arrived, then the reset
  EXPECT_TRUE(stream.error);
  EXPECT_EQ(provider_->stats().failures, 2u);
  EXPECT_EQ(provider_->stats().streams_completed, 0u);
  // A deliberate reset is the simulated failure, not a client cancellation.
  EXPECT_EQ(provider_->stats().cancelled, 0u);
}

TEST_F(MockProviderTest, HangIsCancelledWhenClientLeaves) {
  {
    test_client client(provider_->port());
    const auto start = std::chrono::steady_clock::now();
    reply r = client.send(bhttp::verb::post, "/v1/chat/completions", chat_body, {{"x-mock-failure", "hang"}}, 200ms);
    EXPECT_EQ(r.error, beast::error::timeout);
    EXPECT_GE(ms(std::chrono::steady_clock::now() - start), 150);
    // The timeout already closed the socket; closing again is harmless.
    client.close();
  }
  EXPECT_TRUE(eventually([&] { return provider_->stats().cancelled == 1; }));
  EXPECT_EQ(provider_->stats().failures, 1u);
}

TEST_F(MockProviderTest, StreamCancelledWhenClientLeaves) {
  {
    test_client client(provider_->port());
    reply r = client.send(bhttp::verb::post, "/v1/chat/completions", stream_body,
                          {{"x-mock-tokens-per-s", "5"}, {"x-mock-output-tokens", "100"}}, 5s, true);
    ASSERT_EQ(r.status, 200u);
    client.close();
  }
  EXPECT_TRUE(eventually([&] { return provider_->stats().cancelled == 1; }));
  EXPECT_EQ(provider_->stats().streams_completed, 0u);
}

TEST_F(MockProviderTest, LatencyTtftAndPacing) {
  behaviour b;
  b.latency_ms = 150;
  provider_->set_behaviour(b);
  reply slow = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(slow.status, 200u);
  EXPECT_GE(ms(slow.total), 140);
  EXPECT_LT(ms(slow.total), 5000);

  // Per-request overrides win over the behaviour: no latency, 150 ms TTFT,
  // then 5 tokens at 100/s (4 gaps of 10 ms after the first token).
  reply stream = post("/v1/chat/completions", stream_body,
                      {{"x-mock-latency-ms", "0"},
                       {"x-mock-ttft-ms", "150"},
                       {"x-mock-tokens-per-s", "100"},
                       {"x-mock-output-tokens", "5"}});
  ASSERT_EQ(stream.status, 200u);
  EXPECT_LT(ms(stream.to_headers), 140);
  EXPECT_GE(ms(stream.total - stream.to_headers), 140 + 30);
  EXPECT_LT(ms(stream.total), 5000);
}

TEST_F(MockProviderTest, ErrorRateOneFailsEverything) {
  behaviour b;
  b.error_rate = 1.0;
  b.failure = failure_mode::http_429;
  provider_->set_behaviour(b);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(post("/v1/chat/completions", chat_body).status, 429u);
  EXPECT_EQ(provider_->stats().failures, 5u);
  // "none" exempts one request.
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"x-mock-failure", "none"}}).status, 200u);
  // Listing models is never failed: it is what health checks call.
  EXPECT_EQ(call(bhttp::verb::get, "/v1/models").status, 200u);
  EXPECT_EQ(provider_->stats().requests, 7u);
}

TEST_F(MockProviderTest, FixedBody) {
  behaviour b;
  b.fixed_body = R"({"fixed":true})";
  provider_->set_behaviour(b);
  reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"fixed":true})");
  EXPECT_EQ(r.headers[bhttp::field::content_type], "application/json");
  // Streams are generated as usual.
  EXPECT_EQ(parse_sse(post("/v1/chat/completions", stream_body).body).back().data, "[DONE]");
}

TEST_F(MockProviderTest, ControlApiRoundTrip) {
  reply put =
      call(bhttp::verb::put, "/_mock/behaviour",
           R"({"latency_ms":5,"ttft_ms":7,"tokens_per_s":50,"output_tokens":3,"error_rate":0.25,"failure":"hang"})");
  ASSERT_EQ(put.status, 200u) << put.body;
  behaviour now = provider_->current_behaviour();
  EXPECT_EQ(now.latency_ms, 5);
  EXPECT_EQ(now.ttft_ms, 7);
  EXPECT_EQ(now.tokens_per_s, 50);
  EXPECT_EQ(now.output_tokens, 3);
  EXPECT_EQ(now.error_rate, 0.25);
  EXPECT_EQ(now.failure, failure_mode::hang);

  // Partial update keeps the other fields.
  ASSERT_EQ(call(bhttp::verb::put, "/_mock/behaviour", R"({"error_rate":0,"failure":"malformed"})").status, 200u);
  reply get = call(bhttp::verb::get, "/_mock/behaviour");
  ASSERT_EQ(get.status, 200u);
  json::object b = parse_json(get.body).as_object();
  EXPECT_EQ(b["latency_ms"].to_number<double>(), 5);
  EXPECT_EQ(b["output_tokens"].as_int64(), 3);
  EXPECT_EQ(b["error_rate"].to_number<double>(), 0);
  EXPECT_EQ(str(b["failure"]), "malformed");

  EXPECT_EQ(call(bhttp::verb::put, "/_mock/behaviour", R"({"error_rate":2})").status, 400u);
  EXPECT_EQ(call(bhttp::verb::put, "/_mock/behaviour", R"({"latncy_ms":1})").status, 400u);
  EXPECT_EQ(call(bhttp::verb::put, "/_mock/behaviour", R"({"failure":"boom"})").status, 400u);
  EXPECT_EQ(call(bhttp::verb::put, "/_mock/behaviour", "[").status, 400u);
  EXPECT_EQ(provider_->current_behaviour().failure, failure_mode::malformed_body);

  ASSERT_EQ(post("/v1/chat/completions", chat_body, {{"x-trace", "abc"}}).status, 200u);
  reply stats = call(bhttp::verb::get, "/_mock/stats");
  ASSERT_EQ(stats.status, 200u);
  json::object s = parse_json(stats.body).as_object();
  EXPECT_EQ(s["requests"].to_number<std::uint64_t>(), 1u);  // control calls are not counted
  EXPECT_EQ(s["failures"].to_number<std::uint64_t>(), 0u);
  EXPECT_TRUE(s.contains("cancelled"));
  EXPECT_TRUE(s.contains("streams_completed"));

  reply recorded = call(bhttp::verb::get, "/_mock/requests");
  ASSERT_EQ(recorded.status, 200u);
  json::array list = parse_json(recorded.body).as_object()["requests"].as_array();
  ASSERT_EQ(list.size(), 1u);
  json::object first = list[0].as_object();
  EXPECT_EQ(str(first["method"]), "POST");
  EXPECT_EQ(str(first["target"]), "/v1/chat/completions");
  EXPECT_EQ(str(first["body"]), chat_body);
  EXPECT_EQ(str(first["headers"].as_object()["x-trace"]), "abc");
  ASSERT_EQ(provider_->recent_requests().size(), 1u);
  EXPECT_EQ(provider_->recent_requests()[0].body, chat_body);

  EXPECT_EQ(call(bhttp::verb::delete_, "/_mock/requests").status, 204u);
  EXPECT_TRUE(provider_->recent_requests().empty());
  EXPECT_EQ(call(bhttp::verb::post, "/_mock/stats", "{}").status, 405u);
  EXPECT_EQ(call(bhttp::verb::get, "/_mock/nothing").status, 404u);
}

TEST_F(MockProviderTest, RecordingIsBounded) {
  test_client client(provider_->port());
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(client.send(bhttp::verb::get, "/v1/models?i=" + std::to_string(i)).status, 200u);
  }
  std::vector<recorded_request> recorded = provider_->recent_requests();
  ASSERT_EQ(recorded.size(), 256u);
  EXPECT_EQ(recorded.front().target, "/v1/models?i=44");
  EXPECT_EQ(recorded.back().target, "/v1/models?i=299");
  EXPECT_FALSE(recorded.back().body_truncated);
  provider_->clear_recorded();
  EXPECT_TRUE(provider_->recent_requests().empty());

  // Bodies are kept up to a bound, and flagged when cut.
  const std::string big(recorded_request::max_recorded_body_bytes + 10, 'x');
  EXPECT_EQ(client.send(bhttp::verb::post, "/v1/embeddings", big).status, 400u);
  recorded = provider_->recent_requests();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_TRUE(recorded[0].body_truncated);
  EXPECT_EQ(recorded[0].body.size(), recorded_request::max_recorded_body_bytes);
}

TEST_F(MockProviderTest, BearerAuth) {
  mock_options options;
  options.required_api_key = "sk-test";
  start(std::move(options));

  reply none = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(str(parse_json(none.body).as_object()["error"].as_object()["code"]), "invalid_api_key");
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"authorization", "Bearer sk-wrong"}}).status, 401u);
  EXPECT_EQ(post("/v1/chat/completions", chat_body, {{"authorization", "Bearer sk-test"}}).status, 200u);
  EXPECT_EQ(call(bhttp::verb::get, "/v1/models").status, 401u);

  EXPECT_EQ(post("/v1/messages", anthropic_body, anthropic_headers).status, 401u);  // x-api-key "k"
  EXPECT_EQ(
      post("/v1/messages", anthropic_body, {{"x-api-key", "sk-test"}, {"anthropic-version", "2023-06-01"}}).status,
      200u);
  // The control API is for the test harness and needs no key.
  EXPECT_EQ(call(bhttp::verb::get, "/_mock/stats").status, 200u);
}

TEST(MockProviderLifecycle, PortFileAndRestart) {
  const std::filesystem::path port_file =
      std::filesystem::temp_directory_path() / ("gw_mock_port_" + std::to_string(::getpid()));
  mock_options options;
  options.port_file = port_file.string();
  mock_provider provider(options);
  provider.start();
  std::ifstream in(port_file);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, std::to_string(provider.port()));
  EXPECT_NE(provider.port(), 0);
  provider.stop();
  provider.stop();  // idempotent

  // Stats survive a restart; the server is rebuilt.
  provider.start();
  test_client client(provider.port());
  EXPECT_EQ(client.send(bhttp::verb::get, "/v1/models").status, 200u);
  provider.stop();
  EXPECT_EQ(provider.stats().requests, 1u);
  std::filesystem::remove(port_file);
}

TEST(MockProviderLifecycle, ForegroundRunEndsOnStopAndOnSigterm) {
  for (bool use_signal : {false, true}) {
    mock_provider provider(mock_options{});
    std::thread runner([&provider] { provider.run(); });
    ASSERT_TRUE([&] {
      for (int i = 0; i < 500 && provider.port() == 0; ++i) std::this_thread::sleep_for(10ms);
      return provider.port() != 0;
    }());
    {
      test_client client(provider.port());
      EXPECT_EQ(client.send(bhttp::verb::get, "/v1/models").status, 200u);
    }
    if (use_signal) {
      ::kill(::getpid(), SIGTERM);
    } else {
      provider.stop();
    }
    runner.join();  // run() returned: the server drained and was torn down
    EXPECT_EQ(provider.stats().requests, 1u);
  }
}

}  // namespace
}  // namespace gatewayz::mock

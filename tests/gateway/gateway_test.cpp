// The gateway's happy paths end to end: what the client gets back, and what
// the provider receives, for every endpoint and both provider kinds.

#include <string>

#include "harness.hpp"

namespace gatewayz::test {
namespace {

std::string expected_text(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += (i == 0 ? "tok0" : " tok" + std::to_string(i));
  return text;
}

std::string str(const json::value& v) { return std::string(v.as_string()); }

// Content of the chat.completion.chunk events (role, token, finish), joined.
std::string chat_content(const std::vector<sse_event>& events) {
  std::string content;
  for (const auto& e : events) {
    if (e.data == "[DONE]") continue;
    const json::value chunk = json::parse(e.data);
    const auto& choices = chunk.at("choices").as_array();
    if (choices.empty()) continue;
    const auto& delta = choices.at(0).at("delta").as_object();
    if (const auto* c = delta.if_contains("content"); c && c->is_string()) content += str(*c);
  }
  return content;
}

std::size_t usage_chunks(const std::vector<sse_event>& events) {
  std::size_t n = 0;
  for (const auto& e : events) {
    if (e.data == "[DONE]") continue;
    const json::value chunk = json::parse(e.data);
    if (const auto* u = chunk.as_object().if_contains("usage"); u && u->is_object()) ++n;
  }
  return n;
}

// 1 ---------------------------------------------------------------------------------

TEST_F(GatewayTest, ChatCompletionBodyIsForwardedByteForByte) {
  auto& m = add_mock();
  // A fixed answer makes "byte-identical to what the provider sent" checkable:
  // odd spacing, an escape and a trailing newline must all survive.
  const std::string fixed =
      "{ \"id\":\"chatcmpl-fixed\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"upstream-mini\","
      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"caf\\u00e9  ok\"},"
      "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3,\"total_tokens\":5}}\n";
  auto b = m.current_behaviour();
  b.fixed_body = fixed;
  m.set_behaviour(b);
  start_gateway(one_provider(m));

  const reply r = post("/v1/chat/completions", chat_body);
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, fixed);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("content-length"), std::to_string(fixed.size()));
  EXPECT_EQ(r.header("x-gatewayz-provider"), "alpha");
  EXPECT_TRUE(r.header("x-request-id").starts_with("req_")) << r.header("x-request-id");
}

TEST_F(GatewayTest, ChatCompletionAnswerAndRequestIds) {
  auto& m = add_mock();
  start_gateway(one_provider(m));

  const reply r = post("/v1/chat/completions", chat_body);
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value body = r.json();
  EXPECT_TRUE(str(body.at("id")).starts_with("chatcmpl-"));
  EXPECT_EQ(str(body.at("object")), "chat.completion");
  EXPECT_EQ(str(body.at("choices").at(0).at("message").at("content")), expected_text(16));
  EXPECT_EQ(str(body.at("choices").at(0).at("finish_reason")), "stop");
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 16);
  EXPECT_GT(body.at("usage").at("prompt_tokens").as_int64(), 0);
  EXPECT_EQ(body.at("usage").at("total_tokens").as_int64(), body.at("usage").at("prompt_tokens").as_int64() + 16);
  EXPECT_EQ(r.header("x-gatewayz-provider"), "alpha");
  const std::string generated = r.header("x-request-id");
  EXPECT_TRUE(generated.starts_with("req_")) << generated;
  EXPECT_EQ(header_of(m.recent_requests().back(), "x-request-id"), generated) << "the provider sees the same id";

  // Another request gets another id.
  EXPECT_NE(post("/v1/chat/completions", chat_body).header("x-request-id"), generated);

  // The client's own id is honoured, in the answer and upstream.
  const reply mine = post("/v1/chat/completions", chat_body, {{"X-Request-ID", "trace-42.abc"}});
  ASSERT_EQ(mine.status, 200u);
  EXPECT_EQ(mine.header("x-request-id"), "trace-42.abc");
  EXPECT_EQ(header_of(m.recent_requests().back(), "x-request-id"), "trace-42.abc");

  // ... unless it is unusable (spaces, too long): then a fresh one.
  const reply bad_id = post("/v1/chat/completions", chat_body, {{"X-Request-ID", "has spaces"}});
  EXPECT_TRUE(bad_id.header("x-request-id").starts_with("req_")) << bad_id.header("x-request-id");
  const reply long_id = post("/v1/chat/completions", chat_body, {{"X-Request-ID", std::string(200, 'a')}});
  EXPECT_TRUE(long_id.header("x-request-id").starts_with("req_"));
}

// 2 ---------------------------------------------------------------------------------

TEST_F(GatewayTest, UpstreamGetsTheClientsBytesWithOnlyTheModelRewritten) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  cfg.providers[0].headers = {{"x-extra-upstream", "configured"}};
  start_gateway(cfg);

  // Odd whitespace, escapes, key order and unknown members are all kept.
  const std::string body =
      "{ \"temperature\" : 0.25,\n \"model\" : \"gpt-4o-mini\",  \"messages\":[{\"role\":\"user\","
      "\"content\":\"hi \\u00e9 \\\"quoted\\\"\"}], \"vendor_thing\": {\"a\": [1, 2.50, null]} }";
  const reply r = post("/v1/chat/completions", body,
                       {{"Authorization", "Bearer client-key-must-not-leak"},
                        {"Cookie", "session=secret"},
                        {"X-Client-Private", "nope"}});
  ASSERT_EQ(r.status, 200u) << r.body;

  const auto seen = m.recent_requests();
  ASSERT_EQ(seen.size(), 1u);
  const auto& up = seen.back();
  EXPECT_EQ(up.method, "POST");
  EXPECT_EQ(up.target, "/v1/chat/completions");
  std::string expected = body;
  expected.replace(expected.find("\"gpt-4o-mini\""), 13, "\"upstream-mini\"");
  EXPECT_EQ(up.body, expected);
  EXPECT_EQ(header_of(up, "authorization"), "Bearer " + upstream_key);
  EXPECT_EQ(header_of(up, "content-type"), "application/json");
  EXPECT_EQ(header_of(up, "content-length"), std::to_string(expected.size()));
  EXPECT_EQ(header_of(up, "host"), "127.0.0.1:" + std::to_string(m.port()));
  EXPECT_EQ(header_of(up, "x-extra-upstream"), "configured");
  EXPECT_FALSE(has_header(up, "cookie"));
  EXPECT_FALSE(has_header(up, "x-client-private"));
  for (const auto& [k, v] : up.headers) {
    EXPECT_EQ(v.find("client-key-must-not-leak"), std::string::npos) << k << " leaked the client's key";
  }

  // A model whose upstream name is its own id goes through untouched.
  const std::string emb = R"({"input":"abc",  "model":"text-embedding-3-small"})";
  ASSERT_EQ(post("/v1/embeddings", emb).status, 200u);
  EXPECT_EQ(m.recent_requests().back().body, emb);
  EXPECT_EQ(m.recent_requests().back().target, "/v1/embeddings");
}

TEST_F(GatewayTest, StreamingUpstreamBodyDiffersOnlyInStreamOptions) {
  auto& m = add_mock();
  start_gateway(one_provider(m));

  const std::string body =
      "{\"model\": \"gpt-4o-mini\", \"stream\": true, \"messages\": [{\"role\":\"user\",\"content\":\"x\"}], "
      "\"top_p\": 1}";
  const reply r = post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200u) << r.body;
  std::string upstream = m.recent_requests().back().body;
  const std::string inserted = R"("stream_options":{"include_usage":true})";
  const auto at = upstream.find(inserted);
  ASSERT_NE(at, std::string::npos) << upstream;
  // Take the member out again (with the comma that separates it): what is
  // left must be the client's bytes with the model rewritten.
  upstream.erase(at, inserted.size());
  if (at > 0 && upstream[at - 1] == ',') {
    upstream.erase(at - 1, 1);
  } else if (at < upstream.size() && upstream[at] == ',') {
    upstream.erase(at, 1);
  }
  std::string expected = body;
  expected.replace(expected.find("\"gpt-4o-mini\""), 13, "\"upstream-mini\"");
  EXPECT_EQ(upstream, expected);

  // An explicit include_usage:false is turned on upstream (and still hidden from the client).
  const std::string off =
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"x"}]})";
  const reply r2 = post("/v1/chat/completions", off);
  ASSERT_EQ(r2.status, 200u) << r2.body;
  const json::value sent = json::parse(m.recent_requests().back().body);
  EXPECT_TRUE(sent.at("stream_options").at("include_usage").as_bool());
  EXPECT_EQ(str(sent.at("model")), "upstream-mini");
  EXPECT_EQ(r2.body.find("\"usage\":{"), std::string::npos) << r2.body;
}

// 3 ---------------------------------------------------------------------------------

TEST_F(GatewayTest, StreamArrivesInChunksAndEndsWithDone) {
  auto& m = add_mock();
  start_gateway(one_provider(m));

  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body, {{"x-request-id", "stream-1"}}));
  ASSERT_EQ(s.status(), 200u);
  EXPECT_TRUE(s.header("content-type").starts_with("text/event-stream")) << s.header("content-type");
  EXPECT_EQ(s.header("transfer-encoding"), "chunked");
  EXPECT_EQ(s.header("x-gatewayz-provider"), "alpha");
  EXPECT_EQ(s.header("x-request-id"), "stream-1");
  EXPECT_EQ(s.header("cache-control"), "no-cache");
  const auto events = s.rest();
  EXPECT_TRUE(s.complete()) << "the chunked body must be terminated";
  EXPECT_FALSE(s.error()) << s.error().message();

  // role, 16 tokens, finish, [DONE]; the usage chunk the gateway asked for is dropped.
  ASSERT_EQ(events.size(), 19u) << s.raw();
  EXPECT_EQ(events.back().data, "[DONE]");
  std::string id;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const json::value chunk = json::parse(events[i].data);
    EXPECT_EQ(str(chunk.at("object")), "chat.completion.chunk");
    if (i == 0) id = str(chunk.at("id"));
    EXPECT_EQ(str(chunk.at("id")), id);
  }
  EXPECT_EQ(chat_content(events), expected_text(16));
  // Chunks may carry "usage":null (as OpenAI's do once include_usage is on
  // upstream), but no usage object reaches a client that did not ask.
  EXPECT_EQ(usage_chunks(events), 0u) << s.raw();
  EXPECT_EQ(s.raw().find("\"usage\":{"), std::string::npos) << s.raw();

  const json::value sent = json::parse(m.recent_requests().back().body);
  EXPECT_TRUE(sent.at("stream_options").at("include_usage").as_bool());
  EXPECT_TRUE(eventually([&] { return m.stats().streams_completed == 1; }));
}

TEST_F(GatewayTest, StreamForwardsTheUsageChunkWhenTheClientAskedForIt) {
  auto& m = add_mock();
  start_gateway(one_provider(m));

  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions",
                      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},)"
                      R"("max_tokens":3,"messages":[{"role":"user","content":"one two three"}]})"));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest();
  // role, 3 tokens, finish, usage, [DONE]
  ASSERT_EQ(events.size(), 7u) << s.raw();
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(usage_chunks(events), 1u);
  const json::value usage_chunk = json::parse(events[events.size() - 2].data);
  EXPECT_TRUE(usage_chunk.at("choices").as_array().empty());
  EXPECT_EQ(usage_chunk.at("usage").at("completion_tokens").as_int64(), 3);
  EXPECT_EQ(usage_chunk.at("usage").at("prompt_tokens").as_int64(), 3);
  EXPECT_EQ(chat_content(events), expected_text(3));
  EXPECT_TRUE(json::parse(m.recent_requests().back().body).at("stream_options").at("include_usage").as_bool());
}

TEST_F(GatewayTest, StreamIsRelayedChunkByChunkNotBuffered) {
  auto& m = add_mock();
  auto cfg = one_provider(m);
  // Per-request mock settings travel as configured provider headers (the
  // gateway forwards none of the client's headers).
  cfg.providers[0].headers = {{"x-mock-tokens-per-s", "20"}, {"x-mock-output-tokens", "20"}};
  start_gateway(cfg);

  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/chat/completions", stream_chat_body));
  ASSERT_EQ(s.status(), 200u);
  const auto first = s.next();
  ASSERT_TRUE(first.has_value());
  const double first_ms = std::chrono::duration<double, std::milli>(first->at - s.started_at()).count();
  auto events = s.rest();
  const double total_ms = ms_since(s.started_at());
  events.insert(events.begin(), *first);

  ASSERT_EQ(events.size(), 23u) << s.raw();  // role, 20 tokens, finish, [DONE]
  EXPECT_EQ(chat_content(events), expected_text(20));
  // 20 tokens at 20/s: the last is due 950 ms after the first.
  EXPECT_LT(first_ms, 400.0) << "the first chunk waited for the stream";
  EXPECT_GE(total_ms, 800.0);
  // And the tokens trickle in: many separate reads, spread over time.
  EXPECT_GE(s.reads_with_data(), 15u);
  const double spread = std::chrono::duration<double, std::milli>(events[events.size() - 2].at - events[1].at).count();
  EXPECT_GE(spread, 700.0);
}

// 4 ---------------------------------------------------------------------------------

TEST_F(GatewayTest, TextCompletionsPlainAndStreamed) {
  auto& m = add_mock();
  start_gateway(one_provider(m));

  const reply r = post("/v1/completions", R"({"model":"gpt-3.5-turbo-instruct","prompt":"say it","max_tokens":4})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value body = r.json();
  EXPECT_EQ(str(body.at("object")), "text_completion");
  EXPECT_EQ(str(body.at("choices").at(0).at("text")), expected_text(4));
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 4);
  EXPECT_EQ(m.recent_requests().back().target, "/v1/completions");
  EXPECT_EQ(r.header("x-gatewayz-provider"), "alpha");

  sse_client s(port());
  ASSERT_TRUE(s.start("/v1/completions",
                      R"({"model":"gpt-3.5-turbo-instruct","prompt":["a","b"],"stream":true,"max_tokens":5})"));
  ASSERT_EQ(s.status(), 200u);
  const auto events = s.rest();
  EXPECT_TRUE(s.complete());
  ASSERT_GE(events.size(), 3u) << s.raw();
  EXPECT_EQ(events.back().data, "[DONE]");
  std::string text;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const json::value chunk = json::parse(events[i].data);
    EXPECT_EQ(str(chunk.at("object")), "text_completion");
    const auto* usage = chunk.as_object().if_contains("usage");
    EXPECT_TRUE(!usage || usage->is_null()) << events[i].data;
    text += str(chunk.at("choices").at(0).at("text"));
  }
  EXPECT_EQ(text, expected_text(5));
  EXPECT_TRUE(json::parse(m.recent_requests().back().body).at("stream_options").at("include_usage").as_bool());
}

TEST_F(GatewayTest, Embeddings) {
  auto& m = add_mock();
  start_gateway(one_provider(m));

  const reply r = post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":["one","two words"]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value body = r.json();
  EXPECT_EQ(str(body.at("object")), "list");
  const auto& data = body.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(str(data[0].at("object")), "embedding");
  EXPECT_FALSE(data[0].at("embedding").as_array().empty());
  EXPECT_EQ(data[1].at("index").as_int64(), 1);
  EXPECT_GT(body.at("usage").at("prompt_tokens").as_int64(), 0);
  EXPECT_EQ(r.header("x-gatewayz-provider"), "alpha");

  const reply streamed = post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":"x","stream":true})");
  expect_openai_error(streamed, 400, "invalid_stream");
  const reply no_input = post("/v1/embeddings", R"({"model":"text-embedding-3-small"})");
  expect_openai_error(no_input, 400, "missing_input");
  const reply no_prompt = post("/v1/completions", R"({"model":"gpt-3.5-turbo-instruct"})");
  expect_openai_error(no_prompt, 400, "missing_prompt");
  EXPECT_EQ(m.stats().requests, 1u);
}

TEST_F(GatewayTest, ModelsListsEachConfiguredModelOnce) {
  auto& a = add_mock();
  auto& b = add_mock();
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("alpha", url_of(a), {make_model("gpt-4o-mini"), make_model("shared")}));
  cfg.providers.push_back(make_provider("beta", url_of(b), {make_model("shared"), make_model("beta-only")}));
  start_gateway(cfg);

  const reply r = get("/v1/models");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_FALSE(r.header("x-request-id").empty());
  const json::value body = r.json();
  EXPECT_EQ(str(body.at("object")), "list");
  const auto& data = body.at("data").as_array();
  ASSERT_EQ(data.size(), 3u) << r.body;
  std::vector<std::string> ids;
  for (const auto& entry : data) {
    ids.push_back(str(entry.at("id")));
    EXPECT_EQ(str(entry.at("object")), "model");
    EXPECT_TRUE(entry.at("created").is_int64() || entry.at("created").is_uint64());
    EXPECT_TRUE(entry.at("owned_by").is_string());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"gpt-4o-mini", "shared", "beta-only"}));
  EXPECT_EQ(str(data[1].at("owned_by")), "alpha") << "listed once, under the first provider";

  // A query string does not change the route; nothing reaches a provider.
  EXPECT_EQ(get("/v1/models?limit=1").status, 200u);
  const reply wrong = post("/v1/models", "{}");
  expect_openai_error(wrong, 405, "method_not_allowed");
  EXPECT_EQ(wrong.header("allow"), "GET");
  EXPECT_EQ(a.stats().requests + b.stats().requests, 0u);
}

// 5 ---------------------------------------------------------------------------------

config::gateway_config anthropic_config(const mock::mock_provider& m) {
  config::gateway_config cfg;
  cfg.providers.push_back(make_provider("claude", url_of(m), {make_model("claude-haiku", "claude-3-5-haiku-latest")},
                                        config::provider_kind::anthropic));
  return cfg;
}

TEST_F(GatewayTest, AnthropicProviderAnswersInOpenAIShape) {
  auto& m = add_mock();
  start_gateway(anthropic_config(m));

  const reply r = post("/v1/chat/completions",
                       R"({"model":"claude-haiku","max_tokens":6,"messages":[{"role":"system","content":"be brief"},)"
                       R"({"role":"user","content":"hi you"}]})",
                       {{"Authorization", "Bearer client-key"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-gatewayz-provider"), "claude");
  const json::value body = r.json();
  EXPECT_EQ(str(body.at("object")), "chat.completion");
  EXPECT_EQ(str(body.at("model")), "claude-haiku");
  const auto& choice = body.at("choices").at(0);
  EXPECT_EQ(str(choice.at("message").at("role")), "assistant");
  EXPECT_EQ(str(choice.at("message").at("content")), expected_text(6));
  EXPECT_EQ(str(choice.at("finish_reason")), "length");
  EXPECT_EQ(body.at("usage").at("completion_tokens").as_int64(), 6);
  EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), 4);  // "be brief" + "hi you"
  EXPECT_EQ(body.at("usage").at("total_tokens").as_int64(), 10);

  const auto up = m.recent_requests().back();
  EXPECT_EQ(up.target, "/v1/messages");
  EXPECT_EQ(header_of(up, "x-api-key"), upstream_key);
  EXPECT_EQ(header_of(up, "anthropic-version"), "2023-06-01");
  EXPECT_FALSE(has_header(up, "authorization"));
  const json::value sent = json::parse(up.body);
  EXPECT_EQ(str(sent.at("model")), "claude-3-5-haiku-latest");
  EXPECT_EQ(str(sent.at("system")), "be brief");
  EXPECT_EQ(sent.at("max_tokens").as_int64(), 6);
  const auto& messages = sent.at("messages").as_array();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(str(messages[0].at("role")), "user");
  EXPECT_FALSE(sent.as_object().contains("stream"));
}

TEST_F(GatewayTest, AnthropicStreamBecomesChatCompletionChunks) {
  auto& m = add_mock();
  start_gateway(anthropic_config(m));

  for (const bool with_usage : {false, true}) {
    SCOPED_TRACE(with_usage ? "include_usage" : "no usage");
    sse_client s(port());
    const std::string body = std::string(R"({"model":"claude-haiku","stream":true,)") +
                             (with_usage ? R"("stream_options":{"include_usage":true},)" : "") +
                             R"("max_tokens":5,"messages":[{"role":"user","content":"hi there you"}]})";
    ASSERT_TRUE(s.start("/v1/chat/completions", body));
    ASSERT_EQ(s.status(), 200u);
    EXPECT_TRUE(s.header("content-type").starts_with("text/event-stream"));
    EXPECT_EQ(s.header("x-gatewayz-provider"), "claude");
    const auto events = s.rest();
    EXPECT_TRUE(s.complete());
    ASSERT_GE(events.size(), 4u) << s.raw();
    EXPECT_EQ(events.back().data, "[DONE]");
    std::string finish;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      EXPECT_TRUE(events[i].event.empty()) << "Anthropic event names leaked: " << events[i].event;
      const json::value chunk = json::parse(events[i].data);
      EXPECT_EQ(str(chunk.at("object")), "chat.completion.chunk");
      EXPECT_EQ(str(chunk.at("model")), "claude-haiku");
      const auto& choices = chunk.at("choices").as_array();
      if (!choices.empty() && choices[0].at("finish_reason").is_string()) finish = str(choices[0].at("finish_reason"));
    }
    EXPECT_EQ(chat_content(events), expected_text(5));
    EXPECT_EQ(finish, "length");
    EXPECT_EQ(usage_chunks(events), with_usage ? 1u : 0u) << s.raw();
    if (with_usage) {
      const json::value usage = json::parse(events[events.size() - 2].data).at("usage");
      EXPECT_EQ(usage.at("completion_tokens").as_int64(), 5);
      EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 3);
    }
    const auto up = m.recent_requests().back();
    EXPECT_EQ(up.target, "/v1/messages");
    EXPECT_EQ(header_of(up, "x-api-key"), upstream_key);
    EXPECT_TRUE(json::parse(up.body).at("stream").as_bool());
  }

  // Anthropic has no embeddings: the gateway says so without calling it.
  const auto before = m.stats().requests;
  const reply emb = post("/v1/embeddings", R"({"model":"claude-haiku","input":"x"})");
  expect_openai_error(emb, 400, "unsupported_endpoint");
  EXPECT_EQ(m.stats().requests, before);
}

}  // namespace
}  // namespace gatewayz::test

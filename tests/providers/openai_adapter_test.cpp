#include "providers/openai_adapter.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "test_support.hpp"

namespace gatewayz::providers {
namespace {

using namespace testing_support;

std::string replace_once(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from << " not in " << text;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

struct built {
  bool ok = false;
  upstream_request request;
  std::string error;
};

built build(const provider_adapter& adapter, const inbound& in, const config::model_config& model) {
  built result;
  result.ok = adapter.build_request(in.request, model, result.request, result.error);
  return result;
}

class OpenAiAdapter : public ::testing::Test {
 protected:
  openai_adapter adapter_{make_provider(config::provider_kind::openai)};
  config::model_config same_name_ = make_model("gpt-4o", "");
  config::model_config renamed_ = make_model("gpt-4o", "openai/gpt-4o");
};

// Whitespace, key order, escapes, numbers and unicode a re-serialiser would change.
const std::string chat_body =
    "{ \"model\" : \"gpt-4o\",\n  \"messages\": [ {\"role\":\"user\", \"content\":\"caf\\u00e9 \xE2\x98\x95 \\\"q\\\"\"} ],\n"
    "  \"temperature\": 0.70, \"max_tokens\": 1e3, \"seed\": 12345678901234567890 }";

TEST(ProviderOperation, Names) {
  EXPECT_EQ(operation_name(operation::chat_completions), "chat");
  EXPECT_EQ(operation_name(operation::completions), "text_completion");
  EXPECT_EQ(operation_name(operation::embeddings), "embeddings");
}

TEST(ProviderFactory, MakesAdapterForKind) {
  const auto openai = make_adapter(make_provider(config::provider_kind::openai));
  ASSERT_NE(openai, nullptr);
  EXPECT_TRUE(openai->supports(operation::embeddings));
  const auto anthropic = make_adapter(make_provider(config::provider_kind::anthropic));
  ASSERT_NE(anthropic, nullptr);
  EXPECT_TRUE(anthropic->supports(operation::chat_completions));
  EXPECT_FALSE(anthropic->supports(operation::embeddings));
}

TEST_F(OpenAiAdapter, SupportsAllOperations) {
  EXPECT_TRUE(adapter_.supports(operation::chat_completions));
  EXPECT_TRUE(adapter_.supports(operation::completions));
  EXPECT_TRUE(adapter_.supports(operation::embeddings));
}

TEST_F(OpenAiAdapter, UnchangedRequestIsCopiedByteForByte) {
  const auto in = make_inbound(chat_body);
  const built b = build(adapter_, *in, same_name_);
  ASSERT_TRUE(b.ok) << b.error;
  EXPECT_EQ(b.request.payload(), chat_body);
  EXPECT_EQ(b.request.path, "/chat/completions");
  EXPECT_EQ(header_value(b.request, "authorization"), "Bearer " + std::string(test_api_key));
  EXPECT_EQ(header_value(b.request, "content-type"), "application/json");
  EXPECT_EQ(header_value(b.request, "accept"), "application/json");
}

TEST_F(OpenAiAdapter, ModelRewriteKeepsEveryOtherByte) {
  const auto in = make_inbound(chat_body);
  const built b = build(adapter_, *in, renamed_);
  ASSERT_TRUE(b.ok) << b.error;
  EXPECT_EQ(b.request.payload(), replace_once(chat_body, "\"gpt-4o\"", "\"openai/gpt-4o\""));
}

TEST_F(OpenAiAdapter, ModelRewriteReplacesTheLastDuplicate) {
  // JSON parsers take the last duplicate, so that is the one that must change.
  const std::string body = R"({"model":"a","model":"gpt-4o","messages":[]})";
  const auto in = make_inbound(body);
  const built b = build(adapter_, *in, renamed_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.payload(), R"({"model":"a","model":"openai/gpt-4o","messages":[]})");
}

TEST_F(OpenAiAdapter, UpstreamNameIsEscaped) {
  const auto in = make_inbound(R"({"model":"gpt-4o","messages":[]})");
  const built b = build(adapter_, *in, make_model("gpt-4o", "we\"ird"));
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.payload(), R"({"model":"we\"ird","messages":[]})");
}

TEST_F(OpenAiAdapter, NoAuthorizationWithoutKey) {
  const openai_adapter keyless(make_provider(config::provider_kind::openai, ""));
  const auto in = make_inbound(chat_body);
  const built b = build(keyless, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(find_header(b.request, "authorization"), nullptr);
  EXPECT_EQ(header_value(b.request, "content-type"), "application/json");
}

TEST_F(OpenAiAdapter, ConfiguredHeadersAreAddedAndOverrideDefaults) {
  auto provider = make_provider(config::provider_kind::openai);
  provider.headers = {{"HTTP-Referer", "https://gatewayz.example"}, {"Accept", "application/x-custom"}};
  const openai_adapter custom(provider);
  const auto in = make_inbound(chat_body);
  const built b = build(custom, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(header_value(b.request, "HTTP-Referer"), "https://gatewayz.example");
  EXPECT_EQ(header_value(b.request, "Accept"), "application/x-custom");
  EXPECT_EQ(find_header(b.request, "accept"), nullptr);
  EXPECT_EQ(header_value(b.request, "authorization"), "Bearer " + std::string(test_api_key));
}

TEST_F(OpenAiAdapter, StreamingInsertsIncludeUsage) {
  const std::string body = "{\"model\":\"gpt-4o\", \"stream\": true, \"messages\":[]\n}";
  const auto in = make_inbound(body);
  const built b = build(adapter_, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.payload(),
            "{\"model\":\"gpt-4o\", \"stream\": true, \"messages\":[],\"stream_options\":{\"include_usage\":true}\n}");
  EXPECT_EQ(header_value(b.request, "accept"), "text/event-stream");
}

TEST_F(OpenAiAdapter, StreamingFlipsIncludeUsageAndKeepsOtherOptions) {
  const std::string body =
      R"({"model":"gpt-4o","stream":true,"stream_options":{ "include_usage" : false, "x_extra": [1, 2] },"messages":[]})";
  const auto in = make_inbound(body);
  const built b = build(adapter_, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.payload(), replace_once(body, "false", "true"));
}

TEST_F(OpenAiAdapter, StreamingAddsIncludeUsageToExistingOptions) {
  const std::string body =
      R"({"model":"gpt-4o","stream":true,"stream_options":{"continuous_usage_stats":true},"messages":[]})";
  const auto in = make_inbound(body);
  const built b = build(adapter_, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.payload(), replace_once(body, R"({"continuous_usage_stats":true})",
                                              R"({"continuous_usage_stats":true,"include_usage":true})"));
  const auto parsed = boost::json::parse(b.request.payload());
  EXPECT_EQ(parsed.at("stream_options").at("continuous_usage_stats"), true);
  EXPECT_EQ(parsed.at("stream_options").at("include_usage"), true);
}

TEST_F(OpenAiAdapter, StreamingFillsEmptyOrNullOptions) {
  {
    const std::string body = R"({"model":"gpt-4o","stream":true,"stream_options":{},"messages":[]})";
    const auto in = make_inbound(body);
    const built b = build(adapter_, *in, same_name_);
    EXPECT_EQ(b.request.payload(), replace_once(body, "{}", R"({"include_usage":true})"));
  }
  {
    const std::string body = R"({"model":"gpt-4o","stream":true,"stream_options":null,"messages":[]})";
    const auto in = make_inbound(body);
    const built b = build(adapter_, *in, same_name_);
    EXPECT_EQ(b.request.payload(), replace_once(body, "null", R"({"include_usage":true})"));
  }
}

TEST_F(OpenAiAdapter, StreamingWithIncludeUsageAlreadySetIsUntouched) {
  const std::string body = R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage": true},"messages":[]})";
  const auto in = make_inbound(body);
  EXPECT_TRUE(in->request.client_wants_usage);
  const built b = build(adapter_, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.payload(), body);
}

TEST_F(OpenAiAdapter, ModelRewriteAndIncludeUsageTogether) {
  const std::string body = R"({"stream":true,"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
  const auto in = make_inbound(body);
  const built b = build(adapter_, *in, renamed_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(
      b.request.payload(),
      R"({"stream":true,"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}})");
}

TEST_F(OpenAiAdapter, NonStreamingLeavesStreamOptionsAlone) {
  const std::string body = R"({"model":"gpt-4o","stream":false,"messages":[]})";
  const auto in = make_inbound(body);
  const built b = build(adapter_, *in, same_name_);
  EXPECT_EQ(b.request.payload(), body);
}

TEST_F(OpenAiAdapter, CompletionsPathAndStreaming) {
  const std::string body = R"({"model":"gpt-4o","prompt":"Say hi","stream":true})";
  const auto in = make_inbound(body, operation::completions);
  const built b = build(adapter_, *in, same_name_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.path, "/completions");
  EXPECT_EQ(b.request.payload(),
            R"({"model":"gpt-4o","prompt":"Say hi","stream":true,"stream_options":{"include_usage":true}})");
}

TEST_F(OpenAiAdapter, EmbeddingsPathAndModelRewrite) {
  const std::string body = R"({"input":["a","b"],"model":"gpt-4o","encoding_format":"float"})";
  const auto in = make_inbound(body, operation::embeddings);
  const built b = build(adapter_, *in, renamed_);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.request.path, "/embeddings");
  EXPECT_EQ(b.request.payload(), R"({"input":["a","b"],"model":"openai/gpt-4o","encoding_format":"float"})");
  EXPECT_EQ(header_value(b.request, "accept"), "application/json");
}

TEST_F(OpenAiAdapter, WorksWithoutPrecomputedScan) {
  auto in = make_inbound(R"({"model":"gpt-4o","messages":[]})");
  in->request.scan = nullptr;
  const built b = build(adapter_, *in, renamed_);
  ASSERT_TRUE(b.ok) << b.error;
  EXPECT_EQ(b.request.payload(), R"({"model":"openai/gpt-4o","messages":[]})");
}

TEST_F(OpenAiAdapter, TranslateResponseExtractsUsageAndKeepsBytes) {
  const std::string original =
      R"({"id":"chatcmpl-1","object":"chat.completion","model":"openai/gpt-4o",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hi","usage":{"prompt_tokens":999}},"finish_reason":"stop"}],)"
      R"( "usage" : {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,"prompt_tokens_details":{"cached_tokens":0}}})";
  const auto in = make_inbound(R"({"model":"gpt-4o","messages":[]})");
  std::string body = original;
  token_usage usage;
  std::string error;
  ASSERT_TRUE(adapter_.translate_response(in->request, body, usage, nullptr, error)) << error;
  EXPECT_EQ(body, original);
  EXPECT_TRUE(usage.reported);
  EXPECT_EQ(usage.input_tokens, 12);
  EXPECT_EQ(usage.output_tokens, 3);
}

TEST_F(OpenAiAdapter, TranslateResponseSummarizesTheAnswerWhenAsked) {
  const std::string original =
      R"({"id":"chatcmpl-\u0031x","model":"openai/gpt-4o","choices":[{"index":0,"finish_reason":"stop"},)"
      R"({"index":1,"finish_reason":null},{"index":2,"finish_reason":"length"}],"usage":{"prompt_tokens":1}})";
  const auto in = make_inbound(R"({"model":"gpt-4o","messages":[]})");
  std::string body = original;
  token_usage usage;
  response_summary summary;
  std::string error;
  ASSERT_TRUE(adapter_.translate_response(in->request, body, usage, &summary, error)) << error;
  EXPECT_EQ(body, original);
  EXPECT_EQ(summary.id, "chatcmpl-1x");
  EXPECT_EQ(summary.model, "openai/gpt-4o");
  EXPECT_EQ(summary.finish_reasons, (std::vector<std::string>{"stop", "length"}));
  EXPECT_EQ(usage.input_tokens, 1);
}

TEST_F(OpenAiAdapter, TranslateEmbeddingsResponseHasPromptTokensOnly) {
  const std::string original =
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}})";
  const auto in = make_inbound(R"({"model":"gpt-4o","input":"x"})", operation::embeddings);
  std::string body = original;
  token_usage usage;
  std::string error;
  ASSERT_TRUE(adapter_.translate_response(in->request, body, usage, nullptr, error));
  EXPECT_EQ(body, original);
  EXPECT_TRUE(usage.reported);
  EXPECT_EQ(usage.input_tokens, 8);
  EXPECT_EQ(usage.output_tokens, 0);
}

TEST_F(OpenAiAdapter, TranslateResponseWithoutUsage) {
  const auto in = make_inbound(R"({"model":"gpt-4o","messages":[]})");
  for (const std::string original : {R"({"choices":[]})", R"({"choices":[],"usage":null})"}) {
    std::string body = original;
    token_usage usage;
    usage.input_tokens = 5;  // must be reset
    std::string error;
    ASSERT_TRUE(adapter_.translate_response(in->request, body, usage, nullptr, error));
    EXPECT_FALSE(usage.reported);
    EXPECT_EQ(usage.input_tokens, 0);
    EXPECT_EQ(body, original);
  }
}

TEST_F(OpenAiAdapter, TranslateResponseRejectsInvalidJson) {
  const auto in = make_inbound(R"({"model":"gpt-4o","messages":[]})");
  for (const std::string original : {"", "[1,2]", R"({"choices":[)", "<html>502</html>", R"({"a":1} trailing)"}) {
    std::string body = original;
    token_usage usage;
    std::string error;
    EXPECT_FALSE(adapter_.translate_response(in->request, body, usage, nullptr, error)) << original;
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(body, original);
  }
}

TEST_F(OpenAiAdapter, ErrorMessageFromOpenAiShape) {
  EXPECT_EQ(
      adapter_.error_message(
          R"({"error":{"message":"Rate limit reached for gpt-4o","type":"requests","code":"rate_limit_exceeded"}})"),
      "Rate limit reached for gpt-4o");
  EXPECT_EQ(adapter_.error_message(R"({"error":"model overloaded"})"), "model overloaded");
}

TEST_F(OpenAiAdapter, ErrorMessageFallsBackToSanitisedExcerpt) {
  EXPECT_EQ(adapter_.error_message("<html>\r\n  <h1>502 Bad\tGateway</h1>\n</html>"),
            "<html> <h1>502 Bad Gateway</h1> </html>");
  EXPECT_EQ(adapter_.error_message("caf\xC3\xA9\x01!"), std::string("caf") + std::string(3, '?') + "!");
  EXPECT_EQ(adapter_.error_message(""), "(empty response body)");
  const std::string excerpt = adapter_.error_message(std::string(5000, 'x'));
  EXPECT_EQ(excerpt, std::string(200, 'x'));
  // JSON without the expected shape is shown as an excerpt too.
  EXPECT_EQ(adapter_.error_message(R"({"detail":"Not Found"})"), R"({"detail":"Not Found"})");
}

TEST_F(OpenAiAdapter, ErrorMessageNeverContainsTheApiKey) {
  const std::string key(test_api_key);
  const std::string echoed =
      adapter_.error_message(R"({"error":{"message":"Incorrect API key provided: )" + key + R"(."}})");
  EXPECT_EQ(echoed.find(key), std::string::npos);
  EXPECT_EQ(echoed, "Incorrect API key provided: [redacted].");
  const std::string excerpt = adapter_.error_message("bad key " + key);
  EXPECT_EQ(excerpt.find(key), std::string::npos);
}

// ---------------------------------------------------------------------------
// Streams

struct stream_fixture {
  std::unique_ptr<inbound> in;
  std::unique_ptr<stream_translator> translator;
};

stream_fixture make_stream(const openai_adapter& adapter, bool client_wants_usage) {
  stream_fixture f;
  f.in = make_inbound(client_wants_usage
                          ? R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]})"
                          : R"({"model":"gpt-4o","stream":true,"messages":[]})");
  f.translator = adapter.make_stream_translator(f.in->request);
  return f;
}

const std::string content_chunk_1 =
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null})";
const std::string content_chunk_2 =
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello \u00e9"},"finish_reason":null}],"usage":null})";
const std::string finish_chunk =
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})";
const std::string usage_chunk =
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[ ],"usage":{"prompt_tokens":21,"completion_tokens":7,"total_tokens":28}})";

std::string recorded_stream() {
  return "data: " + content_chunk_1 + "\n\n" + ": OPENROUTER PROCESSING\n\n" + "data: " + content_chunk_2 + "\r\n\r\n" +
         "data: " + finish_chunk + "\n\n" + "data: " + usage_chunk + "\n\n" + "data: [DONE]\n\n";
}

TEST_F(OpenAiAdapter, StreamSwallowsGatewayRequestedUsageChunk) {
  auto f = make_stream(adapter_, false);
  const stream_result r = run_stream(*f.translator, recorded_stream());
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.out, "data: " + content_chunk_1 + "\n\n" + "data: " + content_chunk_2 + "\r\n\r\n" +
                       "data: " + finish_chunk + "\n\n" + "data: [DONE]\n\n");
  EXPECT_TRUE(f.translator->done());
  const token_usage usage = f.translator->usage();
  EXPECT_TRUE(usage.reported);
  EXPECT_EQ(usage.input_tokens, 21);
  EXPECT_EQ(usage.output_tokens, 7);
  EXPECT_EQ(f.translator->stream_error(), "");
}

TEST_F(OpenAiAdapter, StreamForwardsUsageChunkTheClientAskedFor) {
  auto f = make_stream(adapter_, true);
  const stream_result r = run_stream(*f.translator, recorded_stream(), 3);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.out, "data: " + content_chunk_1 + "\n\n" + "data: " + content_chunk_2 + "\r\n\r\n" +
                       "data: " + finish_chunk + "\n\n" + "data: " + usage_chunk + "\n\n" + "data: [DONE]\n\n");
  EXPECT_TRUE(f.translator->done());
  EXPECT_EQ(f.translator->usage().input_tokens, 21);
  EXPECT_EQ(f.translator->usage().output_tokens, 7);
}

TEST_F(OpenAiAdapter, StreamForwardsUsageThatRidesOnAContentChunk) {
  // Some providers put usage on the last content chunk instead of a separate one.
  auto f = make_stream(adapter_, false);
  const auto event = data_event(
      R"({"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":2}})");
  std::string out;
  ASSERT_TRUE(f.translator->on_event(event.view(), out));
  EXPECT_EQ(out, event.raw);
  EXPECT_TRUE(f.translator->usage().reported);
  EXPECT_EQ(f.translator->usage().input_tokens, 4);
  EXPECT_EQ(f.translator->usage().output_tokens, 2);
}

TEST_F(OpenAiAdapter, StreamSwallowsUsageChunkWithoutChoices) {
  auto f = make_stream(adapter_, false);
  const auto event = data_event(R"({"id":"x","usage":{"prompt_tokens":4,"completion_tokens":2}})");
  std::string out;
  ASSERT_TRUE(f.translator->on_event(event.view(), out));
  EXPECT_EQ(out, "");
  EXPECT_EQ(f.translator->usage().input_tokens, 4);
}

TEST_F(OpenAiAdapter, StreamWithoutUsageReportsNone) {
  auto f = make_stream(adapter_, false);
  std::string out;
  ASSERT_TRUE(f.translator->on_event(data_event(content_chunk_2).view(), out));
  ASSERT_TRUE(f.translator->on_event(data_event("[DONE]").view(), out));
  EXPECT_TRUE(f.translator->done());
  EXPECT_FALSE(f.translator->usage().reported);
  EXPECT_EQ(f.translator->usage().input_tokens, 0);
}

TEST_F(OpenAiAdapter, StreamIsNotDoneBeforeDoneMarker) {
  auto f = make_stream(adapter_, false);
  std::string out;
  ASSERT_TRUE(f.translator->on_event(data_event(finish_chunk).view(), out));
  EXPECT_FALSE(f.translator->done());
}

TEST_F(OpenAiAdapter, StreamRejectsMalformedChunks) {
  for (const std::string data : {R"({"choices":[)", "not json", "[1,2]", R"({"a":1}{"b":2})"}) {
    auto f = make_stream(adapter_, false);
    std::string out;
    EXPECT_FALSE(f.translator->on_event(data_event(data).view(), out)) << data;
  }
}

TEST_F(OpenAiAdapter, StreamForwardsEventsWithoutData) {
  auto f = make_stream(adapter_, false);
  owned_event ping;
  ping.event = "ping";
  ping.raw = "event: ping\n\n";
  std::string out;
  ASSERT_TRUE(f.translator->on_event(ping.view(), out));
  EXPECT_EQ(out, ping.raw);
}

TEST_F(OpenAiAdapter, StreamErrorChunkIsRecordedAndForwarded) {
  auto f = make_stream(adapter_, false);
  const auto event = data_event(R"({"error":{"message":"Upstream provider timed out","code":502}})");
  std::string out;
  ASSERT_TRUE(f.translator->on_event(event.view(), out));
  EXPECT_EQ(out, event.raw);
  EXPECT_EQ(f.translator->stream_error(), "Upstream provider timed out");
  EXPECT_FALSE(f.translator->done());
}

TEST_F(OpenAiAdapter, StreamErrorMemberNullIsNotAnError) {
  auto f = make_stream(adapter_, false);
  std::string out;
  ASSERT_TRUE(f.translator->on_event(data_event(R"({"choices":[],"error":null})").view(), out));
  EXPECT_EQ(f.translator->stream_error(), "");
}

}  // namespace
}  // namespace gatewayz::providers

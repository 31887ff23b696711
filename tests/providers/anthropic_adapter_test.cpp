#include "providers/anthropic_adapter.hpp"
#include "providers/adapter_common.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.hpp"

namespace gatewayz::providers {
namespace {

namespace json = boost::json;
using namespace testing_support;

class AnthropicAdapter : public ::testing::Test {
 protected:
  // Builds the upstream request for `body`; the body is returned parsed.
  json::value build(const std::string& body, upstream_request* request_out = nullptr) {
    const auto in = make_inbound(body);
    upstream_request request;
    std::string error;
    EXPECT_TRUE(adapter_.build_request(in->request, model_, request, error)) << error;
    if (request_out != nullptr) *request_out = request;
    json::error_code ec;
    json::value parsed = parse_json(request.payload(), ec);
    EXPECT_FALSE(ec) << request.payload();
    return parsed;
  }

  // The client-facing error for a request that cannot be expressed.
  std::string build_error(const std::string& body) {
    const auto in = make_inbound(body);
    upstream_request request;
    std::string error;
    EXPECT_FALSE(adapter_.build_request(in->request, model_, request, error)) << request.payload();
    EXPECT_FALSE(error.empty());
    return error;
  }

  static std::string chat(std::string_view messages, std::string_view extra = "") {
    std::string body = R"({"model":"claude","messages":)" + std::string(messages);
    if (!extra.empty()) body += "," + std::string(extra);
    return body + "}";
  }

  anthropic_adapter adapter_{make_provider(config::provider_kind::anthropic)};
  config::model_config model_ = make_model("claude", "claude-sonnet-4-5");
};

TEST_F(AnthropicAdapter, SupportsChatOnly) {
  EXPECT_TRUE(adapter_.supports(operation::chat_completions));
  EXPECT_FALSE(adapter_.supports(operation::completions));
  EXPECT_FALSE(adapter_.supports(operation::embeddings));
  const auto in = make_inbound(R"({"model":"claude","input":"x"})", operation::embeddings);
  upstream_request request;
  std::string error;
  EXPECT_FALSE(adapter_.build_request(in->request, model_, request, error));
  EXPECT_NE(error.find("embeddings"), std::string::npos) << error;
}

TEST_F(AnthropicAdapter, PathAndHeaders) {
  upstream_request request;
  build(chat(R"([{"role":"user","content":"hi"}])"), &request);
  EXPECT_EQ(request.path, "/messages");
  EXPECT_EQ(header_value(request, "x-api-key"), test_api_key);
  EXPECT_EQ(header_value(request, "anthropic-version"), "2023-06-01");
  EXPECT_EQ(header_value(request, "content-type"), "application/json");
  EXPECT_EQ(header_value(request, "accept"), "application/json");
  EXPECT_EQ(find_header(request, "authorization"), nullptr);

  build(chat(R"([{"role":"user","content":"hi"}])", R"("stream":true)"), &request);
  EXPECT_EQ(header_value(request, "accept"), "text/event-stream");
}

TEST_F(AnthropicAdapter, HeadersWithoutKeyAndWithConfiguredExtras) {
  auto provider = make_provider(config::provider_kind::anthropic, "");
  provider.anthropic_version = "2024-01-01";
  provider.headers = {{"anthropic-beta", "prompt-caching-2024-07-31"}};
  const anthropic_adapter custom(provider);
  const auto in = make_inbound(chat(R"([{"role":"user","content":"hi"}])"));
  upstream_request request;
  std::string error;
  ASSERT_TRUE(custom.build_request(in->request, model_, request, error));
  EXPECT_EQ(find_header(request, "x-api-key"), nullptr);
  EXPECT_EQ(header_value(request, "anthropic-version"), "2024-01-01");
  EXPECT_EQ(header_value(request, "anthropic-beta"), "prompt-caching-2024-07-31");
}

TEST_F(AnthropicAdapter, BasicMapping) {
  const json::value body = build(chat(R"([{"role":"user","content":"Hello"}])"));
  EXPECT_EQ(
      body,
      json::parse(
          R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"max_tokens":4096})"));
}

TEST_F(AnthropicAdapter, UpstreamNameDefaultsToId) {
  model_ = make_model("claude-3-haiku", "");
  const json::value body = build(R"({"model":"claude-3-haiku","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(body.at("model"), "claude-3-haiku");
}

TEST_F(AnthropicAdapter, SystemAndDeveloperMessagesBecomeTopLevelSystem) {
  const json::value body = build(chat(
      R"([{"role":"system","content":"You are terse."},)"
      R"({"role":"developer","content":[{"type":"text","text":"Answer in French."},{"type":"text","text":"No emoji."}]},)"
      R"({"role":"user","content":"Hi"},)"
      R"({"role":"system","content":""}])"));
  EXPECT_EQ(body.at("system"), "You are terse.\n\nAnswer in French.\n\nNo emoji.");
  EXPECT_EQ(body.at("messages").as_array().size(), 1u);
  EXPECT_EQ(body.at("messages").at(0).at("role"), "user");
}

TEST_F(AnthropicAdapter, NoSystemMemberWithoutSystemMessages) {
  const json::value body = build(chat(R"([{"role":"user","content":"Hi"}])"));
  EXPECT_FALSE(body.as_object().contains("system"));
}

TEST_F(AnthropicAdapter, SystemMessageWithImageIsRejected) {
  const std::string error = build_error(chat(
      R"([{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"Hi"}])"));
  EXPECT_NE(error.find("image_url"), std::string::npos) << error;
}

TEST_F(AnthropicAdapter, ContentPartsTextAndImages) {
  const json::value body =
      build(chat(R"([{"role":"user","content":[)"
                 R"({"type":"text","text":"What is in these?"},)"
                 R"({"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},)"
                 R"({"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}])"));
  EXPECT_EQ(body.at("messages"), json::parse(R"([{"role":"user","content":[
      {"type":"text","text":"What is in these?"},
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
      {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]}])"));
}

TEST_F(AnthropicAdapter, BadImageUrlsAreRejected) {
  EXPECT_NE(
      build_error(
          chat(R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}])"))
          .find("base64"),
      std::string::npos);
  EXPECT_NE(
      build_error(chat(R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}])"))
          .find("http"),
      std::string::npos);
  EXPECT_NE(build_error(chat(R"([{"role":"user","content":[{"type":"image_url","image_url":{}}]}])")).find("url"),
            std::string::npos);
}

TEST_F(AnthropicAdapter, UnsupportedContentTypeIsRejected) {
  const std::string error = build_error(
      chat(R"([{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}])"));
  EXPECT_NE(error.find("input_audio"), std::string::npos) << error;
  EXPECT_NE(error.find("messages[0].content[0]"), std::string::npos) << error;
}

TEST_F(AnthropicAdapter, UnsupportedRoleIsRejected) {
  const std::string error = build_error(chat(R"([{"role":"function","name":"f","content":"x"}])"));
  EXPECT_NE(error.find("function"), std::string::npos) << error;
}

TEST_F(AnthropicAdapter, ConsecutiveSameRoleMessagesAreMerged) {
  const json::value body = build(chat(
      R"([{"role":"user","content":"one"},{"role":"user","content":[{"type":"text","text":"two"}]},)"
      R"({"role":"assistant","content":"three"},{"role":"assistant","content":"four"},{"role":"user","content":"five"}])"));
  EXPECT_EQ(body.at("messages"), json::parse(R"([
      {"role":"user","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]},
      {"role":"assistant","content":[{"type":"text","text":"three"},{"type":"text","text":"four"}]},
      {"role":"user","content":[{"type":"text","text":"five"}]}])"));
}

TEST_F(AnthropicAdapter, EmptyMessagesAreDropped) {
  const json::value body = build(chat(
      R"([{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"assistant","content":null},{"role":"user","content":"b"}])"));
  EXPECT_EQ(body.at("messages"),
            json::parse(R"([{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}])"));
}

TEST_F(AnthropicAdapter, ToolCallsAndResults) {
  const json::value body = build(chat(R"([
      {"role":"user","content":"Weather in Paris and Rome?"},
      {"role":"assistant","content":"Let me check.","tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":[1,2]}"}},
        {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}},
        {"id":"call_3","type":"function","function":{"name":"now","arguments":""}}]},
      {"role":"tool","tool_call_id":"call_1","content":"18C"},
      {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"22C"}]},
      {"role":"tool","tool_call_id":"call_3","content":""},
      {"role":"user","content":"Thanks"}])"));
  EXPECT_EQ(body.at("messages"), json::parse(R"([
      {"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"}]},
      {"role":"assistant","content":[
        {"type":"text","text":"Let me check."},
        {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris","days":[1,2]}},
        {"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}},
        {"type":"tool_use","id":"call_3","name":"now","input":{}}]},
      {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"call_1","content":"18C"},
        {"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"22C"}]},
        {"type":"tool_result","tool_use_id":"call_3"},
        {"type":"text","text":"Thanks"}]}])"));
}

TEST_F(AnthropicAdapter, AssistantWithOnlyToolCalls) {
  const json::value body = build(chat(R"([{"role":"user","content":"x"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}])"));
  EXPECT_EQ(body.at("messages").at(1),
            json::parse(R"({"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":{}}]})"));
}

TEST_F(AnthropicAdapter, InvalidToolArgumentsAreRejected) {
  const std::string error = build_error(chat(R"([{"role":"user","content":"x"},
      {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}])"));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  EXPECT_NE(error.find("messages[1].tool_calls[0]"), std::string::npos) << error;

  const std::string not_object = build_error(chat(R"([{"role":"user","content":"x"},
      {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}])"));
  EXPECT_NE(not_object.find("object"), std::string::npos) << not_object;
}

TEST_F(AnthropicAdapter, ToolMessageWithoutIdIsRejected) {
  const std::string error = build_error(chat(R"([{"role":"tool","content":"x"}])"));
  EXPECT_NE(error.find("tool_call_id"), std::string::npos) << error;
}

TEST_F(AnthropicAdapter, MaxTokens) {
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])")).at("max_tokens"), 4096);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("max_tokens":100)")).at("max_tokens"), 100);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("max_completion_tokens":200)")).at("max_tokens"), 200);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("max_tokens":100,"max_completion_tokens":300)"))
                .at("max_tokens"),
            300);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("max_tokens":null)")).at("max_tokens"), 4096);
  build_error(chat(R"([{"role":"user","content":"x"}])", R"("max_tokens":0)"));
  build_error(chat(R"([{"role":"user","content":"x"}])", R"("max_tokens":1.5)"));
  build_error(chat(R"([{"role":"user","content":"x"}])", R"("max_tokens":"10")"));
}

TEST_F(AnthropicAdapter, SamplingParameters) {
  const json::value body = build(
      chat(R"([{"role":"user","content":"x"}])", R"("temperature":0.25,"top_p":0.9,"stop":"END","user":"user-42")"));
  EXPECT_EQ(body.at("temperature").as_double(), 0.25);
  EXPECT_EQ(body.at("top_p").as_double(), 0.9);
  EXPECT_EQ(body.at("stop_sequences"), json::parse(R"(["END"])"));
  EXPECT_EQ(body.at("metadata"), json::parse(R"({"user_id":"user-42"})"));
  EXPECT_FALSE(body.as_object().contains("stream"));

  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("temperature":1.7)")).at("temperature").as_double(),
            1.0);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("temperature":2)")).at("temperature").as_double(), 1.0);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("temperature":0)")).at("temperature").as_double(), 0.0);
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("stop":["a","","b"])")).at("stop_sequences"),
            json::parse(R"(["a","b"])"));
  EXPECT_FALSE(build(chat(R"([{"role":"user","content":"x"}])", R"("stop":null,"temperature":null)"))
                   .as_object()
                   .contains("stop_sequences"));
  EXPECT_EQ(build(chat(R"([{"role":"user","content":"x"}])", R"("stream":true)")).at("stream"), true);
  build_error(chat(R"([{"role":"user","content":"x"}])", R"("temperature":"hot")"));
  build_error(chat(R"([{"role":"user","content":"x"}])", R"("stop":[1])"));
}

TEST_F(AnthropicAdapter, StreamOptionsAreNotSentUpstream) {
  const json::value body =
      build(chat(R"([{"role":"user","content":"x"}])", R"("stream":true,"stream_options":{"include_usage":true})"));
  EXPECT_FALSE(body.as_object().contains("stream_options"));
}

TEST_F(AnthropicAdapter, ToolsAndToolChoice) {
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","description":"Weather for a city",)"
      R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},)"
      R"({"type":"function","function":{"name":"now"}}])";
  const json::value body = build(chat(R"([{"role":"user","content":"x"}])", tools + R"(,"tool_choice":"auto")"));
  EXPECT_EQ(body.at("tools"), json::parse(R"([
      {"name":"get_weather","description":"Weather for a city",
       "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
      {"name":"now","input_schema":{"type":"object","properties":{}}}])"));
  EXPECT_EQ(body.at("tool_choice"), json::parse(R"({"type":"auto"})"));

  const auto choice = [&](std::string_view tool_choice) {
    return build(chat(R"([{"role":"user","content":"x"}])", tools + ",\"tool_choice\":" + std::string(tool_choice)))
        .at("tool_choice");
  };
  EXPECT_EQ(choice(R"("required")"), json::parse(R"({"type":"any"})"));
  EXPECT_EQ(choice(R"("none")"), json::parse(R"({"type":"none"})"));
  EXPECT_EQ(choice(R"({"type":"function","function":{"name":"now"}})"), json::parse(R"({"type":"tool","name":"now"})"));
  build_error(chat(R"([{"role":"user","content":"x"}])", tools + R"(,"tool_choice":"sometimes")"));
  build_error(chat(R"([{"role":"user","content":"x"}])", tools + R"(,"tool_choice":{"type":"function"})"));

  const json::value serial =
      build(chat(R"([{"role":"user","content":"x"}])", tools + R"(,"parallel_tool_calls":false)"));
  EXPECT_EQ(serial.at("tool_choice"), json::parse(R"({"type":"auto","disable_parallel_tool_use":true})"));
  EXPECT_FALSE(build(chat(R"([{"role":"user","content":"x"}])")).as_object().contains("tool_choice"));
  EXPECT_FALSE(
      build(chat(R"([{"role":"user","content":"x"}])", R"("tool_choice":"none")")).as_object().contains("tool_choice"));
}

TEST_F(AnthropicAdapter, DeepToolSchemaIsAccepted) {
  // Deeper than Boost.JSON's default limit of 32, within the gateway's 128.
  std::string schema = R"({"type":"string"})";
  for (int i = 0; i < 30; ++i) schema = R"({"type":"object","properties":{"x":)" + schema + "}}";
  const json::value body =
      build(chat(R"([{"role":"user","content":"x"}])",
                 R"("tools":[{"type":"function","function":{"name":"f","parameters":)" + schema + "}}]"));
  EXPECT_EQ(body.at("tools").at(0).at("input_schema"), parse_json(schema));
}

TEST_F(AnthropicAdapter, UnsupportedToolTypeIsRejected) {
  const std::string error =
      build_error(chat(R"([{"role":"user","content":"x"}])", R"("tools":[{"type":"code_interpreter"}])"));
  EXPECT_NE(error.find("code_interpreter"), std::string::npos) << error;
}

TEST_F(AnthropicAdapter, UnexpressibleParametersAreRejected) {
  EXPECT_NE(build_error(chat(R"([{"role":"user","content":"x"}])", R"("n":2)")).find("n "), std::string::npos);
  EXPECT_NE(build_error(chat(R"([{"role":"user","content":"x"}])", R"("logprobs":true)")).find("logprobs"),
            std::string::npos);
  EXPECT_NE(build_error(chat(R"([{"role":"user","content":"x"}])", R"("response_format":{"type":"json_object"})"))
                .find("response_format"),
            std::string::npos);
  // Values that mean "default" are fine.
  build(chat(R"([{"role":"user","content":"x"}])", R"("n":1,"logprobs":false,"response_format":{"type":"text"})"));
}

TEST_F(AnthropicAdapter, MissingMessagesIsRejected) {
  build_error(R"({"model":"claude"})");
  build_error(R"({"model":"claude","messages":"hi"})");
  build_error(chat(R"([42])"));
}

// ---------------------------------------------------------------------------
// Responses

struct translated {
  bool ok = false;
  json::value body;
  token_usage usage;
  std::string error;
};

translated translate(const anthropic_adapter& adapter, const std::string& upstream_body) {
  const auto in = make_inbound(R"({"model":"claude","messages":[]})");
  translated t;
  std::string body = upstream_body;
  t.ok = adapter.translate_response(in->request, body, t.usage, nullptr, t.error);
  if (t.ok) t.body = json::parse(body);
  return t;
}

TEST_F(AnthropicAdapter, ResponseWithTextAndToolUse) {
  const translated t = translate(adapter_, R"({
      "id":"msg_01ABC","type":"message","role":"assistant","model":"claude-sonnet-4-5",
      "content":[{"type":"thinking","thinking":"hmm","signature":"s"},
                 {"type":"text","text":"Checking "},{"type":"text","text":"now."},
                 {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","units":["c"]}}],
      "stop_reason":"tool_use","stop_sequence":null,
      "usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":40}})");
  ASSERT_TRUE(t.ok) << t.error;
  const json::object& body = t.body.as_object();
  EXPECT_EQ(body.at("id"), "chatcmpl-msg_01ABC");
  EXPECT_EQ(body.at("object"), "chat.completion");
  EXPECT_EQ(body.at("model"), "claude");  // what the client asked for
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(std::abs(body.at("created").as_int64() - now), 5);

  const json::value& choice = body.at("choices").at(0);
  EXPECT_EQ(choice.at("index"), 0);
  EXPECT_EQ(choice.at("finish_reason"), "tool_calls");
  const json::value& message = choice.at("message");
  EXPECT_EQ(message.at("role"), "assistant");
  EXPECT_EQ(message.at("content"), "Checking now.");
  const json::value& call = message.at("tool_calls").at(0);
  EXPECT_EQ(call.at("id"), "toolu_1");
  EXPECT_EQ(call.at("type"), "function");
  EXPECT_EQ(call.at("function").at("name"), "get_weather");
  EXPECT_EQ(json::parse(call.at("function").at("arguments").as_string()),
            json::parse(R"({"city":"Paris","units":["c"]})"));

  EXPECT_EQ(body.at("usage"), json::parse(R"({"prompt_tokens":150,"completion_tokens":40,"total_tokens":190})"));
  EXPECT_TRUE(t.usage.reported);
  EXPECT_EQ(t.usage.input_tokens, 150);
  EXPECT_EQ(t.usage.output_tokens, 40);
}

// Found by fuzz_anthropic_request: 2e400 is valid JSON but beyond double;
// translated, it went upstream as `Infinity`, which is not JSON.
TEST_F(AnthropicAdapter, NumbersBeyondDoubleAreRefused) {
  EXPECT_FALSE(build_error(chat(R"([{"role":"user","content":"x"}])", R"("top_p":2e400)")).empty());
  EXPECT_FALSE(translate(adapter_, R"({"content":[{"type":"tool_use","id":"t","name":"f","input":{"a":-1e999}}]})").ok);
}

// Found by fuzz_upstream_response: counts summed without a bound overflowed
// int64 (UBSan), and a negative count would have credited the customer.
TEST_F(AnthropicAdapter, ResponseUsageIsClampedToSafeCounts) {
  const translated t = translate(adapter_, R"({"content":[],"usage":{"input_tokens":9223372036854775807,
      "cache_read_input_tokens":9223372036854775807,"cache_creation_input_tokens":-5,"output_tokens":-1}})");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.usage.input_tokens, 2 * detail::max_token_count);
  EXPECT_EQ(t.usage.output_tokens, 0);
  EXPECT_EQ(t.body.at("usage").at("total_tokens").as_int64(), 2 * detail::max_token_count);
}

TEST_F(AnthropicAdapter, ResponseWithOnlyToolUseHasNullContent) {
  const translated t = translate(adapter_, R"({"id":"msg_1","type":"message","role":"assistant",
      "content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}})");
  ASSERT_TRUE(t.ok) << t.error;
  const json::value& message = t.body.at("choices").at(0).at("message");
  EXPECT_TRUE(message.at("content").is_null());
  EXPECT_EQ(message.at("tool_calls").at(0).at("function").at("arguments"), "{}");
}

TEST_F(AnthropicAdapter, ResponseWithoutToolsHasNoToolCalls) {
  const translated t = translate(adapter_, R"({"id":"msg_1","type":"message","role":"assistant",
      "content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}})");
  ASSERT_TRUE(t.ok) << t.error;
  const json::value& message = t.body.at("choices").at(0).at("message");
  EXPECT_EQ(message.at("content"), "Hi");
  EXPECT_FALSE(message.as_object().contains("tool_calls"));
  EXPECT_EQ(t.body.at("usage"), json::parse(R"({"prompt_tokens":3,"completion_tokens":1,"total_tokens":4})"));
}

TEST_F(AnthropicAdapter, FinishReasonMapping) {
  const std::map<std::string, std::string> expected = {
      {"end_turn", "stop"},          {"stop_sequence", "stop"}, {"max_tokens", "length"}, {"tool_use", "tool_calls"},
      {"refusal", "content_filter"}, {"pause_turn", "stop"},    {"something_new", "stop"}};
  for (const auto& [stop_reason, finish_reason] : expected) {
    const translated t = translate(adapter_, R"({"id":"m","content":[{"type":"text","text":"x"}],"stop_reason":")" +
                                                 stop_reason + R"(","usage":{"input_tokens":1,"output_tokens":1}})");
    ASSERT_TRUE(t.ok) << t.error;
    EXPECT_EQ(t.body.at("choices").at(0).at("finish_reason"), finish_reason.c_str()) << stop_reason;
  }
}

TEST_F(AnthropicAdapter, ResponseWithoutUsageIsNotReported) {
  const translated t = translate(adapter_, R"({"id":"m","content":[],"stop_reason":"end_turn"})");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_FALSE(t.usage.reported);
  EXPECT_TRUE(t.body.at("choices").at(0).at("message").at("content").is_null());
}

TEST_F(AnthropicAdapter, MalformedResponsesAreRejected) {
  for (const std::string body : {"", "not json", "[]", R"({"id":"m"})", R"({"content":"text"})", R"({"content":[)",
                                 R"({"content":[{"type":"tool_use","input":{}}]})"}) {
    const translated t = translate(adapter_, body);
    EXPECT_FALSE(t.ok) << body;
    EXPECT_FALSE(t.error.empty());
  }
}

TEST_F(AnthropicAdapter, ErrorMessages) {
  EXPECT_EQ(adapter_.error_message(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"),
            "Overloaded");
  EXPECT_EQ(adapter_.error_message("upstream connect error\n"), "upstream connect error");
  const std::string key(test_api_key);
  const std::string message = adapter_.error_message(
      R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key )" + key + R"("}})");
  EXPECT_EQ(message.find(key), std::string::npos);
}

// ---------------------------------------------------------------------------
// Streams

// Recorded-style stream in Anthropic's documented shape: a thinking block
// (not forwarded), a text block, and two tool_use blocks whose arguments
// arrive in fragments, with pings and CRLF line endings mixed in.
const std::string recorded_stream = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":8,"cache_read_input_tokens":20,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"User wants weather."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay, let's check "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"the weather \"now\" \u2014 caf\u00e9\n"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":", \"unit\": \"fahrenheit\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":\"PST\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

)sse";

struct reassembled {
  std::string content;
  std::map<std::int64_t, json::object> tool_calls;  // index => {id, name, arguments}
  std::vector<std::string> finish_reasons;
  std::vector<json::value> usage_chunks;
  std::vector<json::value> errors;
  std::set<std::string> ids;
  std::set<std::int64_t> created;
  bool first_chunk_has_role = false;
  bool ends_with_done = false;
  std::size_t chunks = 0;
};

// Parses the translated stream the way an OpenAI client library would.
reassembled reassemble(std::string_view out) {
  reassembled r;
  const std::vector<std::string> payloads = data_payloads(out);
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    if (payloads[i] == "[DONE]") {
      r.ends_with_done = i + 1 == payloads.size();
      continue;
    }
    const json::value chunk = json::parse(payloads[i]);
    if (chunk.as_object().contains("error")) {
      r.errors.push_back(chunk);
      continue;
    }
    ++r.chunks;
    EXPECT_EQ(chunk.at("object"), "chat.completion.chunk");
    EXPECT_EQ(chunk.at("model"), "claude");
    r.ids.insert(std::string(chunk.at("id").as_string()));
    r.created.insert(chunk.at("created").as_int64());
    if (chunk.as_object().contains("usage")) {
      EXPECT_TRUE(chunk.at("choices").as_array().empty());
      r.usage_chunks.push_back(chunk.at("usage"));
      continue;
    }
    const json::value& choice = chunk.at("choices").at(0);
    const json::object& delta = choice.at("delta").as_object();
    if (r.chunks == 1) {
      r.first_chunk_has_role = delta.contains("role") && delta.at("role") == "assistant" && delta.at("content") == "";
    }
    if (const auto* content = delta.if_contains("content")) r.content += content->as_string();
    if (const auto* calls = delta.if_contains("tool_calls")) {
      for (const json::value& call : calls->as_array()) {
        json::object& slot = r.tool_calls[call.at("index").as_int64()];
        if (const auto* id = call.as_object().if_contains("id")) slot["id"] = *id;
        if (const auto* type = call.as_object().if_contains("type")) {
          EXPECT_EQ(*type, "function");
        }
        const json::object& function = call.at("function").as_object();
        if (const auto* name = function.if_contains("name")) slot["name"] = *name;
        std::string arguments = slot.contains("arguments") ? std::string(slot["arguments"].as_string()) : "";
        if (const auto* fragment = function.if_contains("arguments")) arguments += fragment->as_string();
        slot["arguments"] = arguments;
      }
    }
    if (!choice.at("finish_reason").is_null()) r.finish_reasons.emplace_back(choice.at("finish_reason").as_string());
  }
  return r;
}

std::unique_ptr<stream_translator> make_translator(const anthropic_adapter& adapter, std::unique_ptr<inbound>& in,
                                                   bool client_wants_usage) {
  in = make_inbound(client_wants_usage
                        ? R"({"model":"claude","stream":true,"stream_options":{"include_usage":true},"messages":[]})"
                        : R"({"model":"claude","stream":true,"messages":[]})");
  return adapter.make_stream_translator(in->request);
}

TEST_F(AnthropicAdapter, RecordedStreamIsReassembledIntoOpenAiContentAndToolCalls) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, true);
  const stream_result result = run_stream(*translator, recorded_stream);
  ASSERT_TRUE(result.ok) << result.out;
  EXPECT_TRUE(translator->done());
  EXPECT_EQ(translator->stream_error(), "");

  const reassembled r = reassemble(result.out);
  EXPECT_TRUE(r.first_chunk_has_role) << result.out;
  EXPECT_EQ(r.ids, std::set<std::string>{"chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"});
  EXPECT_EQ(r.created.size(), 1u);
  EXPECT_EQ(r.content, "Okay, let's check the weather \"now\" \xE2\x80\x94 caf\xC3\xA9\n");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls.at(0).at("id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
  EXPECT_EQ(r.tool_calls.at(0).at("name"), "get_weather");
  EXPECT_EQ(json::parse(r.tool_calls.at(0).at("arguments").as_string()),
            json::parse(R"({"location":"San Francisco, CA","unit":"fahrenheit"})"));
  EXPECT_EQ(r.tool_calls.at(1).at("id"), "toolu_02");
  EXPECT_EQ(r.tool_calls.at(1).at("name"), "get_time");
  EXPECT_EQ(r.tool_calls.at(1).at("arguments"), R"({"tz":"PST"})");
  EXPECT_EQ(r.finish_reasons, std::vector<std::string>{"tool_calls"});
  ASSERT_EQ(r.usage_chunks.size(), 1u);
  EXPECT_EQ(r.usage_chunks[0], json::parse(R"({"prompt_tokens":500,"completion_tokens":89,"total_tokens":589})"));
  EXPECT_TRUE(r.ends_with_done);
  EXPECT_TRUE(r.errors.empty());

  const token_usage usage = translator->usage();
  EXPECT_TRUE(usage.reported);
  EXPECT_EQ(usage.input_tokens, 500);
  EXPECT_EQ(usage.output_tokens, 89);
}

TEST_F(AnthropicAdapter, StreamTranslationDoesNotDependOnChunking) {
  std::string reference;
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{5}, std::size_t{64}, recorded_stream.size()}) {
    std::unique_ptr<inbound> in;
    const auto translator = make_translator(adapter_, in, true);
    const stream_result result = run_stream(*translator, recorded_stream, chunk);
    ASSERT_TRUE(result.ok);
    // `created` is the only thing that may differ between translators.
    const reassembled r = reassemble(result.out);
    std::string normalised = result.out;
    const std::string created = "\"created\":" + std::to_string(*r.created.begin());
    for (auto at = normalised.find(created); at != std::string::npos; at = normalised.find(created, at)) {
      normalised.replace(at, created.size(), "\"created\":0");
    }
    if (reference.empty()) reference = normalised;
    EXPECT_EQ(normalised, reference) << "chunk size " << chunk;
  }
}

TEST_F(AnthropicAdapter, StreamWithoutUsageChunkWhenClientDidNotAsk) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  const stream_result result = run_stream(*translator, recorded_stream);
  ASSERT_TRUE(result.ok);
  const reassembled r = reassemble(result.out);
  EXPECT_TRUE(r.usage_chunks.empty());
  EXPECT_TRUE(r.ends_with_done);
  // Usage is still recorded for accounting.
  EXPECT_EQ(translator->usage().input_tokens, 500);
  EXPECT_EQ(translator->usage().output_tokens, 89);
}

TEST_F(AnthropicAdapter, StreamChunkShapes) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  std::string out;
  ASSERT_TRUE(translator->on_event(
      data_event(R"({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5,"output_tokens":1}}})",
                 "message_start")
          .view(),
      out));
  const auto view = [](const std::string& chunk) { return json::parse(chunk.substr(6)); };  // strip "data: "
  ASSERT_EQ(out.substr(out.size() - 2), "\n\n");
  const json::value first = view(out);
  EXPECT_EQ(first.at("id"), "chatcmpl-msg_1");
  EXPECT_EQ(first.at("choices"),
            json::parse(R"([{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}])"));

  out.clear();
  ASSERT_TRUE(translator->on_event(
      data_event(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})").view(), out));
  EXPECT_EQ(view(out).at("choices"), json::parse(R"([{"index":0,"delta":{"content":"Hi"},"finish_reason":null}])"));

  out.clear();
  ASSERT_TRUE(translator->on_event(
      data_event(R"({"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":16}})")
          .view(),
      out));
  EXPECT_EQ(view(out).at("choices"), json::parse(R"([{"index":0,"delta":{},"finish_reason":"length"}])"));
  EXPECT_FALSE(translator->done());

  out.clear();
  ASSERT_TRUE(translator->on_event(data_event(R"({"type":"message_stop"})").view(), out));
  EXPECT_EQ(out, "data: [DONE]\n\n");
  EXPECT_TRUE(translator->done());
  EXPECT_EQ(translator->usage().input_tokens, 5);
  EXPECT_EQ(translator->usage().output_tokens, 16);
}

TEST_F(AnthropicAdapter, StreamFinishReasons) {
  const std::map<std::string, std::string> expected = {{"end_turn", "stop"},          {"stop_sequence", "stop"},
                                                       {"max_tokens", "length"},      {"tool_use", "tool_calls"},
                                                       {"refusal", "content_filter"}, {"pause_turn", "stop"}};
  for (const auto& [stop_reason, finish_reason] : expected) {
    std::unique_ptr<inbound> in;
    const auto translator = make_translator(adapter_, in, false);
    const std::string stream =
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" +
        stop_reason +
        "\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    const stream_result result = run_stream(*translator, stream);
    ASSERT_TRUE(result.ok);
    EXPECT_EQ(reassemble(result.out).finish_reasons, std::vector<std::string>{finish_reason}) << stop_reason;
  }
}

TEST_F(AnthropicAdapter, StreamWithoutStopReasonStillFinishes) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  const stream_result result = run_stream(*translator,
                                          "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
                                          "data: {\"type\":\"message_stop\"}\n\n");
  ASSERT_TRUE(result.ok);
  const reassembled r = reassemble(result.out);
  EXPECT_EQ(r.finish_reasons, std::vector<std::string>{"stop"});
  EXPECT_TRUE(r.ends_with_done);
  EXPECT_FALSE(translator->usage().reported);
}

TEST_F(AnthropicAdapter, StreamErrorEvent) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  std::string out;
  ASSERT_TRUE(translator->on_event(data_event(R"({"type":"message_start","message":{"id":"m"}})").view(), out));
  out.clear();
  ASSERT_TRUE(translator->on_event(
      data_event(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", "error").view(),
      out));
  EXPECT_EQ(translator->stream_error(), "Overloaded");
  EXPECT_FALSE(translator->done());
  const reassembled r = reassemble(out);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].at("error").at("message"), "Overloaded");
  EXPECT_EQ(r.errors[0].at("error").at("type"), "overloaded_error");
}

// Found by fuzz_provider_stream: the error's type was copied raw, so a key
// upstream echoed there reached the client; it is redacted like the message.
TEST_F(AnthropicAdapter, StreamErrorEventRedactsTheKeyFromTypeAndMessage) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  std::string out;
  const std::string key(test_api_key);
  ASSERT_TRUE(translator->on_event(
      data_event(R"({"type":"error","error":{"type":"bad_)" + key + R"(","message":"key )" + key + R"( refused"}})",
                 "error")
          .view(),
      out));
  EXPECT_EQ(out.find(key), std::string::npos) << out;
  const reassembled r = reassemble(out);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].at("error").at("type"), "bad_[redacted]");
  EXPECT_EQ(r.errors[0].at("error").at("message"), "key [redacted] refused");
}

TEST_F(AnthropicAdapter, StreamErrorEventWithoutMessage) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  std::string out;
  ASSERT_TRUE(translator->on_event(data_event(R"({"type":"error"})").view(), out));
  EXPECT_FALSE(translator->stream_error().empty());
}

TEST_F(AnthropicAdapter, StreamIgnoresUnknownEventsAndPings) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  std::string out;
  ASSERT_TRUE(translator->on_event(data_event(R"({"type":"message_start","message":{"id":"m"}})").view(), out));
  out.clear();
  EXPECT_TRUE(translator->on_event(data_event(R"({"type":"ping"})", "ping").view(), out));
  EXPECT_TRUE(translator->on_event(data_event(R"({"type":"content_block_stop","index":0})").view(), out));
  EXPECT_TRUE(translator->on_event(data_event(R"({"type":"brand_new_event","x":[1]})", "brand_new_event").view(), out));
  EXPECT_TRUE(translator->on_event(
      data_event(R"({"type":"content_block_delta","index":0,"delta":{"type":"brand_new_delta","x":1}})").view(), out));
  EXPECT_TRUE(translator->on_event(
      data_event(
          R"({"type":"content_block_start","index":5,"content_block":{"type":"server_tool_use","id":"s","name":"web_search"}})")
          .view(),
      out));
  EXPECT_TRUE(translator->on_event(
      data_event(
          R"({"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}})")
          .view(),
      out));
  owned_event empty;
  empty.event = "ping";
  empty.raw = "event: ping\n\n";
  EXPECT_TRUE(translator->on_event(empty.view(), out));
  EXPECT_EQ(out, "");
}

TEST_F(AnthropicAdapter, StreamUsesEventFieldWhenTypeIsMissing) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, false);
  std::string out;
  ASSERT_TRUE(translator->on_event(data_event(R"({"message":{"id":"m"}})", "message_start").view(), out));
  EXPECT_NE(out.find("chatcmpl-m"), std::string::npos) << out;
}

TEST_F(AnthropicAdapter, StreamRejectsMalformedEvents) {
  const std::vector<std::string> malformed = {
      "{not json",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"})",  // truncated
      R"(["message_start"])",
      R"({"type":"message_start"})",                                                      // no message
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}})",       // no index
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}})",        // no text
      R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use"}})",  // no id/name
  };
  for (const std::string& data : malformed) {
    std::unique_ptr<inbound> in;
    const auto translator = make_translator(adapter_, in, false);
    std::string out;
    EXPECT_FALSE(translator->on_event(data_event(data).view(), out)) << data;
  }
}

TEST_F(AnthropicAdapter, StreamWithoutMessageStartStillProducesValidChunks) {
  std::unique_ptr<inbound> in;
  const auto translator = make_translator(adapter_, in, true);
  const stream_result result = run_stream(
      *translator,
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n"
      "data: {\"type\":\"message_stop\"}\n\n");
  ASSERT_TRUE(result.ok);
  const reassembled r = reassemble(result.out);
  EXPECT_TRUE(r.first_chunk_has_role);
  EXPECT_EQ(r.content, "x");
  ASSERT_EQ(r.ids.size(), 1u);
  EXPECT_EQ(r.ids.begin()->rfind("chatcmpl-", 0), 0u);
  EXPECT_TRUE(r.ends_with_done);
}

}  // namespace
}  // namespace gatewayz::providers

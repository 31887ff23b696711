#include "cache/sse_replay.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <vector>

namespace gatewayz::cache {
namespace {

namespace json = boost::json;

std::vector<std::string> data_lines(const std::string& sse) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < sse.size()) {
    const auto end = sse.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "every event ends with a blank line";
    if (end == std::string::npos) break;
    const auto event = sse.substr(at, end - at);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    out.push_back(event.substr(6));
    at = end + 2;
  }
  return out;
}

constexpr std::string_view completion = R"({
  "id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",
  "system_fingerprint":"fp_1",
  "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],
  "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";

TEST(SseReplay, AContentAnswerBecomesRoleContentFinishAndDone) {
  std::string out;
  ASSERT_TRUE(completion_to_sse(completion, false, out));
  const auto lines = data_lines(out);
  ASSERT_EQ(lines.size(), 3u);
  const auto first = json::parse(lines[0]).as_object();
  EXPECT_EQ(first.at("object"), "chat.completion.chunk");
  EXPECT_EQ(first.at("id"), "chatcmpl-1");
  EXPECT_EQ(first.at("model"), "gpt-4o-mini");
  EXPECT_EQ(first.at("system_fingerprint"), "fp_1");
  const auto& delta = first.at("choices").at(0).at("delta");
  EXPECT_EQ(delta.at("role"), "assistant");
  EXPECT_EQ(delta.at("content"), "Hello there");
  EXPECT_TRUE(first.at("choices").at(0).at("finish_reason").is_null());
  const auto second = json::parse(lines[1]).as_object();
  EXPECT_EQ(second.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_TRUE(second.at("choices").at(0).at("delta").as_object().empty());
  EXPECT_EQ(lines[2], "[DONE]");
}

TEST(SseReplay, UsageChunkWhenAskedFor) {
  std::string out;
  ASSERT_TRUE(completion_to_sse(completion, true, out));
  const auto lines = data_lines(out);
  ASSERT_EQ(lines.size(), 4u);
  const auto usage = json::parse(lines[2]).as_object();
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("total_tokens"), 7);
}

TEST(SseReplay, ToolCallsGetTheirIndex) {
  std::string out;
  ASSERT_TRUE(completion_to_sse(
      R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,
          "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},
                        {"id":"call_2","type":"function","function":{"name":"g","arguments":"{\"a\":1}"}}]},
          "finish_reason":"tool_calls"}]})",
      false, out));
  const auto lines = data_lines(out);
  ASSERT_EQ(lines.size(), 3u);
  const auto calls = json::parse(lines[0]).at("choices").at(0).at("delta").at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("index"), 0);
  EXPECT_EQ(calls[1].at("index"), 1);
  EXPECT_EQ(calls[1].at("function").at("arguments"), "{\"a\":1}");
  EXPECT_EQ(json::parse(lines[1]).at("choices").at(0).at("finish_reason"), "tool_calls");
}

TEST(SseReplay, RejectsWhatIsNotACompletion) {
  std::string out = "kept";
  EXPECT_FALSE(completion_to_sse("{}", false, out));
  EXPECT_FALSE(completion_to_sse(R"({"choices":[1]})", false, out));
  EXPECT_FALSE(completion_to_sse("nope", false, out));
  EXPECT_EQ(out, "kept");
}

}  // namespace
}  // namespace gatewayz::cache

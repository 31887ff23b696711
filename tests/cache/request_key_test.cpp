#include "cache/request_key.hpp"

#include <gtest/gtest.h>

namespace gatewayz::cache {
namespace {

std::string normal(std::string_view body) {
  std::string out;
  EXPECT_TRUE(normalize_request(body, out)) << body;
  return out;
}

TEST(RequestKey, NormalFormSortsMembersAndDropsWhitespace) {
  EXPECT_EQ(normal(R"({ "model" : "m", "messages":[{"role":"user","content":"hi"}], "a":{"z":1,"b":2} })"),
            R"({"a":{"b":2,"z":1},"messages":[{"content":"hi","role":"user"}],"model":"m"})");
}

TEST(RequestKey, EqualNumbersHaveOneSpelling) {
  EXPECT_EQ(normal(R"({"temperature":1})"), normal(R"({"temperature":1.0})"));
  EXPECT_EQ(normal(R"({"temperature":1})"), normal(R"({"temperature":1e0})"));
  EXPECT_EQ(normal(R"({"top_p":0.70})"), normal(R"({"top_p":0.7})"));
  EXPECT_NE(normal(R"({"top_p":0.7})"), normal(R"({"top_p":0.71})"));
  EXPECT_NE(normal(R"({"seed":9007199254740993})"), normal(R"({"seed":9007199254740992})"))
      << "integers beyond 2^53 must not collapse into their neighbours";
}

TEST(RequestKey, StringEscapesHaveOneSpelling) { EXPECT_EQ(normal(R"({"c":"\u0041\/"})"), normal(R"({"c":"A/"})")); }

TEST(RequestKey, StreamingAndUserDoNotChangeTheKey) {
  const auto plain = request_key("7", "chat", R"({"model":"m","messages":[]})");
  const auto streamed =
      request_key("7", "chat", R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]})");
  const auto with_user = request_key("7", "chat", R"({"user":"u-1","model":"m","messages":[]})");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->size(), 64u);
  EXPECT_EQ(plain, streamed);
  EXPECT_EQ(plain, with_user);
  // Only at the top level: a nested "user" is part of the content.
  EXPECT_NE(request_key("7", "chat", R"({"model":"m","messages":[{"user":1}]})"),
            request_key("7", "chat", R"({"model":"m","messages":[{}]})"));
}

TEST(RequestKey, ScopeOperationAndParametersSeparateKeys) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
  const auto base = request_key("7", "chat", body);
  EXPECT_NE(base, request_key("8", "chat", body));
  EXPECT_NE(base, request_key("7", "embeddings", body));
  EXPECT_NE(base, request_key("7", "chat", R"({"model":"m2","messages":[{"role":"user","content":"hi"}]})"));
  EXPECT_NE(base,
            request_key("7", "chat", R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})"));
  // The lengths are hashed, so moving a character between scope and operation changes the key.
  EXPECT_NE(request_key("7c", "hat", body), request_key("7", "chat", body));
}

TEST(RequestKey, RejectsWhatIsNotAnObject) {
  std::string out;
  EXPECT_FALSE(normalize_request("[1,2]", out));
  EXPECT_FALSE(normalize_request("{", out));
  EXPECT_FALSE(normalize_request("", out));
  EXPECT_FALSE(request_key("s", "chat", "nope").has_value());
}

}  // namespace
}  // namespace gatewayz::cache

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "logging/log.hpp"

namespace gatewayz::logging {
namespace {

using namespace std::chrono;

const auto at = system_clock::time_point(milliseconds(1'765'072'800'123));  // 2025-12-07T02:00:00.123Z

TEST(LogFormat, JsonLineHasTimestampLevelMessageThenFieldsInOrder) {
  event e{level::warning, "provider error"};
  e.text("provider", "openrouter").integer("attempt", 2).number("duration_ms", 12.5).boolean("stream", true);
  std::string line;
  format_line(e, at, line_format::json, line);
  EXPECT_EQ(line, R"({"timestamp":"2025-12-07T02:00:00.123Z","level":"warning","message":"provider error",)"
                  R"("provider":"openrouter","attempt":2,"duration_ms":12.5,"stream":true})");
}

TEST(LogFormat, JsonEscapesControlCharactersAndRepairsInvalidUtf8) {
  event e{level::info, "a \"quoted\"\nline\\"};
  e.text("bytes", std::string_view("ok\xC3\xA9 bad\xFF\xC0\x80 \x01", 13)).number("nan", std::nan(""));
  std::string line;
  format_line(e, at, line_format::json, line);
  boost::system::error_code ec;
  const auto parsed = boost::json::parse(line, ec);
  ASSERT_FALSE(ec) << line;
  EXPECT_EQ(parsed.at("message").as_string(), "a \"quoted\"\nline\\");
  EXPECT_EQ(parsed.at("bytes").as_string(), "ok\xC3\xA9 bad\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \x01");
  EXPECT_TRUE(parsed.at("nan").is_null());
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(LogFormat, TextLineIsOneLineWithQuotedValuesWhereNeeded) {
  event e{level::error, "cannot listen"};
  e.text("listen", "0.0.0.0:80").text("error", "Permission denied").integer("n", -3);
  std::string line;
  format_line(e, at, line_format::text, line);
  EXPECT_EQ(line, R"(2025-12-07T02:00:00.123Z error   cannot listen listen=0.0.0.0:80 error="Permission denied" n=-3)");
}

TEST(LogFormat, FieldsBeyondTheLimitAreIgnored) {
  event e{level::info, "m"};
  for (int i = 0; i < 40; ++i) e.integer("k", i);
  EXPECT_EQ(static_cast<std::size_t>(e.end() - e.begin()), event::max_fields);
}

TEST(LogFormat, TimestampsCarryMillisecondsAndChangeSeconds) {
  std::string a;
  std::string b;
  format_line(event{level::info, "m"}, at, line_format::json, a);
  format_line(event{level::info, "m"}, at + milliseconds(1900), line_format::json, b);
  EXPECT_NE(a.find("2025-12-07T02:00:00.123Z"), std::string::npos);
  EXPECT_NE(b.find("2025-12-07T02:00:02.023Z"), std::string::npos);
}

}  // namespace
}  // namespace gatewayz::logging

#include "logging/redact.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace gatewayz::logging {
namespace {

std::string redacted(std::string_view text, redaction_options options = {}) {
  std::string out;
  redact(text, out, options);
  return out;
}

TEST(Redact, ApiKeysByPrefixWhereverTheyAppear) {
  EXPECT_EQ(redacted("key sk-abcdefgh12345678 end"), "key [REDACTED_KEY] end");
  EXPECT_EQ(redacted("sk-or-v1-0123456789abcdef"), "[REDACTED_KEY]");
  EXPECT_EQ(redacted("{\"k\":\"gwz_0123456789abcdefghij\"}"), "{\"k\":\"[REDACTED_KEY]\"}");
  EXPECT_EQ(redacted("gsk_ABCDEFGHIJKLMNOP and sk-ant-api03-xyzxyzxyz"), "[REDACTED_KEY] and [REDACTED_KEY]");
  // Too short to be a key, or inside a word: kept.
  EXPECT_EQ(redacted("sk-short"), "sk-short");
  EXPECT_EQ(redacted("task-abcdefghijkl"), "task-abcdefghijkl");
}

TEST(Redact, BearerCredentials) {
  EXPECT_EQ(redacted("Bearer abcdefghijklmnop"), "Bearer [REDACTED]");
  EXPECT_EQ(redacted("got bearer eyJhbGciOiJIUzI1NiJ9.e30.x"), "got bearer [REDACTED]");
  EXPECT_EQ(redacted("a Bearer token is required"), "a Bearer token is required");
}

TEST(Redact, ValuesOfSensitiveKeysInJsonTextAndHeaders) {
  EXPECT_EQ(redacted(R"({"password":"hunter2","user":"bob"})"), R"({"password":"[REDACTED]","user":"bob"})");
  EXPECT_EQ(redacted(R"({"Password" : "a \"quoted\" one"})"), R"({"Password" : "[REDACTED]"})");
  EXPECT_EQ(redacted("password=hunter2&user=bob"), "password=[REDACTED]&user=bob");
  // Outside any string, after ':', a value is quoted (it could be a JSON number).
  EXPECT_EQ(redacted("Authorization: Basic dXNlcjpwYXNz"), "Authorization: \"[REDACTED]\"");
  EXPECT_EQ(redacted("\"h\":\"Cookie: session=abc; theme=dark\""), "\"h\":\"Cookie: [REDACTED]\"");
  EXPECT_EQ(redacted("x-api-key=abc123"), "x-api-key=[REDACTED]");
  // A request body escaped inside a JSON line.
  EXPECT_EQ(redacted(R"({"prompt":"{\"api_key\":\"abc\",\"n\":1}"})"),
            R"({"prompt":"{\"api_key\":\"[REDACTED]\",\"n\":1}"})");
  // Names that merely contain a sensitive word are not secrets.
  EXPECT_EQ(redacted(R"({"tokens_used":12,"input_tokens":3})"), R"({"tokens_used":12,"input_tokens":3})");
}

TEST(Redact, CardNumbersThatPassLuhn) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_EQ(redacted("card 4111 1111 1111 1111 ok"), "card [REDACTED_CARD] ok");
  EXPECT_EQ(redacted("card 4111-1111-1111-1111."), "card [REDACTED_CARD].");
  EXPECT_EQ(redacted("{\"n\":\"5555555555554444\"}"), "{\"n\":\"[REDACTED_CARD]\"}");
  EXPECT_EQ(redacted("4111111111111112"), "4111111111111112");      // fails Luhn
  EXPECT_EQ(redacted("id4111111111111111"), "id4111111111111111");  // part of a word
  EXPECT_EQ(redacted("2026-12-07T02:04:06.123Z"), "2026-12-07T02:04:06.123Z");
}

TEST(Redact, EmailsUnlessAllowed) {
  EXPECT_EQ(redacted("mail jane.doe+x@example.co.uk now."), "mail [REDACTED_EMAIL] now.");
  EXPECT_EQ(redacted("jane@example.com", redaction_options{false}), "jane@example.com");
  EXPECT_EQ(redacted("@handle and a@b"), "@handle and a@b");
}

TEST(Redact, AnEmailRightAfterAnotherRedactionIsRedactedToo) {
  // The local part starts where the card ends; it used to be left whole.
  EXPECT_EQ(redacted("4111111111111111-jane@example.com"), "\"[REDACTED_CARD]\"[REDACTED_EMAIL]");
  // A key running into '@' takes the local part with it: no address is left.
  EXPECT_EQ(redacted("x gwz_0123456789abcdef_jane@example.com"), "x [REDACTED_KEY]@example.com");
}

TEST(Redact, AValidJsonLineStaysValidJson) {
  const std::string line =
      R"({"timestamp":"2026-12-07T02:04:06.123Z","level":"info","message":"x","h":"Authorization: Bearer sk-abcdefghijklmnop","prompt":"{\"password\":\"p\\\"w\",\"card\":\"4111 1111 1111 1111\",\"mail\":\"a@example.com\"}"})";
  const auto out = redacted(line);
  boost::system::error_code ec;
  const auto parsed = boost::json::parse(out, ec);
  ASSERT_FALSE(ec) << out;
  EXPECT_EQ(out.find("sk-abcdefghijklmnop"), std::string::npos);
  EXPECT_EQ(out.find("4111"), std::string::npos);
  EXPECT_EQ(out.find("a@example.com"), std::string::npos);
  EXPECT_EQ(out.find("p\\\\\\\"w"), std::string::npos);
}

TEST(Redact, ANestedValueCutShortEndsWithItsEnclosingString) {
  // Found by fuzz_redact: an escaped value with no closing \" used to run
  // to the end of the line, taking the line's own quotes with it.
  const std::string line = R"({"prompt":"{\"password\":\"}","h":"x"})";
  const auto out = redacted(line);
  boost::system::error_code ec;
  boost::json::parse(out, ec);
  EXPECT_FALSE(ec) << out;
  EXPECT_EQ(out, R"({"prompt":"{\"password\":\"[REDACTED]","h":"x"})");
}

TEST(Redact, AMarkerForABareJsonValueIsQuoted) {
  // Found by fuzz_redact: a card number or secret that is a JSON number.
  EXPECT_EQ(redacted("4111111111111111"), "\"[REDACTED_CARD]\"");
  EXPECT_EQ(redacted(R"({"n": 4111111111111111,"password":12345})"),
            R"({"n": "[REDACTED_CARD]","password":"[REDACTED]"})");
  // Inside a string, or after a word, no quotes are added.
  EXPECT_EQ(redacted(R"({"m":"pin: 4111111111111111"})"), R"({"m":"pin: [REDACTED_CARD]"})");
  EXPECT_EQ(redacted("card 4111111111111111"), "card [REDACTED_CARD]");
}

TEST(Redact, ASensitiveNameEndingAStringHasNoValue) {
  // Found by fuzz_redact: the quote after "password=" closes the string.
  const std::string line = R"({"a":"x password=","b":"y"})";
  EXPECT_EQ(redacted(line), line);
}

TEST(Redact, AppendsToWhatIsThere) {
  std::string out = "prefix ";
  EXPECT_EQ(redact("user@example.com", out), 1U);
  EXPECT_EQ(out, "prefix [REDACTED_EMAIL]");
}

}  // namespace
}  // namespace gatewayz::logging

#include "core/json_scan.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gatewayz::json_scan {
namespace {

using namespace std::string_literals;

bool valid(std::string_view text, unsigned max_depth = 128) {
  scan_error error;
  return validate(text, error, max_depth);
}

std::string_view slice(std::string_view text, span s) { return text.substr(s.begin, s.size()); }

// JSONTestSuite-style corpus: y_ must be accepted, n_ rejected. Written for
// this project; the names say what each case checks.
struct corpus_case {
  const char* name;
  std::string text;
};

const std::vector<corpus_case> accepted = {
    {"y_object_empty", "{}"},
    {"y_array_empty", "[]"},
    {"y_array_nested_empty", "[[]]"},
    {"y_whitespace_all_kinds", " \t\r\n{ \t\r\n} \t\r\n"},
    {"y_number_zero", "0"},
    {"y_number_negative_zero", "-0"},
    {"y_number_fraction", "-12.5"},
    {"y_number_exponent", "1e10"},
    {"y_number_exponent_upper_sign", "1E+2"},
    {"y_number_exponent_negative", "-1.5e-3"},
    {"y_number_zero_fraction_exponent", "0.0e0"},
    {"y_number_huge_integer", "123456789012345678901234567890"},
    {"y_number_huge_exponent", "1e99999"},
    {"y_string_empty", "\"\""},
    {"y_string_all_escapes", R"("\"\\\/\b\f\n\r\t")"},
    {"y_string_u_escape", R"("\u00e9\u0000\uFFFF")"},
    {"y_string_surrogate_pair", R"("\ud83d\ude00")"},
    {"y_string_lone_high_surrogate", R"("\ud800")"},
    {"y_string_lone_low_surrogate", R"("\udc00x")"},
    {"y_string_utf8_2byte", "\"\xC3\xA9\""},
    {"y_string_utf8_3byte", "\"\xE6\x97\xA5\""},
    {"y_string_utf8_4byte", "\"\xF0\x9F\x98\x80\""},
    {"y_string_utf8_max", "\"\xF4\x8F\xBF\xBF\""},
    {"y_string_utf8_u_d7ff", "\"\xED\x9F\xBF\""},
    {"y_string_utf8_u_e000", "\"\xEE\x80\x80\""},
    {"y_string_del", "\"\x7F\""},
    {"y_string_long_ascii", "\"" + std::string(1000, 'a') + "\""},
    {"y_literals", "[true,false,null]"},
    {"y_nested_mixed", R"({"a":{"b":[1,{"c":null}],"d":""},"e":[[],{}]})"},
    {"y_object_duplicate_keys", R"({"a":1,"a":2})"},
    {"y_object_empty_key", R"({"":0})"},
    {"y_object_escaped_key", R"({"a\"b":0})"},
    {"y_spaces_everywhere", R"( { "a" : [ 1 , 2 ] , "b" : { } } )"},
};

const std::vector<corpus_case> rejected = {
    {"n_empty", ""},
    {"n_only_whitespace", " \n"},
    {"n_object_unclosed", "{"},
    {"n_object_close_only", "}"},
    {"n_array_unclosed", "[1"},
    {"n_array_trailing_comma", "[1,]"},
    {"n_object_trailing_comma", R"({"a":1,})"},
    {"n_array_leading_comma", "[,1]"},
    {"n_array_double_comma", "[1,,2]"},
    {"n_object_comma_only", "{,}"},
    {"n_array_missing_comma", "[1 2]"},
    {"n_object_missing_comma", R"({"a":1 "b":2})"},
    {"n_object_missing_colon", R"({"a" 1})"},
    {"n_object_missing_value", R"({"a":})"},
    {"n_object_unquoted_key", "{a:1}"},
    {"n_object_single_quotes", "{'a':1}"},
    {"n_object_number_key", "{1:1}"},
    {"n_mismatched_brackets", "[}"},
    {"n_mismatched_brackets_nested", R"({"a":[1}])"},
    {"n_extra_close", "[1]]"},
    {"n_two_values", "{} {}"},
    {"n_trailing_garbage", "[] x"},
    {"n_trailing_nul", "{}\0"s},
    {"n_bom", "\xEF\xBB\xBF{}"},
    {"n_comment", "/* c */ {}"},
    {"n_number_leading_zero", "01"},
    {"n_number_negative_leading_zero", "-01"},
    {"n_number_plus", "+1"},
    {"n_number_dot_end", "1."},
    {"n_number_dot_start", ".1"},
    {"n_number_minus_dot", "-.5"},
    {"n_number_dot_exponent", "1.e5"},
    {"n_number_exponent_empty", "1e"},
    {"n_number_exponent_sign_only", "1e+"},
    {"n_number_minus_only", "-"},
    {"n_number_nan", "NaN"},
    {"n_number_infinity", "Infinity"},
    {"n_number_minus_infinity", "-Infinity"},
    {"n_number_hex", "0x10"},
    {"n_literal_truncated", "tru"},
    {"n_literal_capitalised", "True"},
    {"n_literal_extra", "nulll"},
    {"n_string_unterminated", "\"abc"},
    {"n_string_escaped_quote_unterminated", R"("a\")"},
    {"n_string_single_quoted", "'a'"},
    {"n_string_bad_escape", R"("\x41")"},
    {"n_string_short_u_escape", R"("\u12")"},
    {"n_string_bad_hex", R"("\u12G4")"},
    {"n_string_tab", "\"\t\""},
    {"n_string_newline", "\"\n\""},
    {"n_string_control_01", "\"\x01\""},
    {"n_string_nul", "\"\0\""s},
    {"n_utf8_lone_continuation", "\"\x80\""},
    {"n_utf8_overlong_c0", "\"\xC0\xAF\""},
    {"n_utf8_overlong_c1", "\"\xC1\xBF\""},
    {"n_utf8_overlong_e0", "\"\xE0\x80\xAF\""},
    {"n_utf8_overlong_e0_high", "\"\xE0\x9F\xBF\""},
    {"n_utf8_overlong_f0", "\"\xF0\x80\x80\xAF\""},
    {"n_utf8_surrogate_high", "\"\xED\xA0\x80\""},
    {"n_utf8_surrogate_low", "\"\xED\xBF\xBF\""},
    {"n_utf8_above_max", "\"\xF4\x90\x80\x80\""},
    {"n_utf8_f5", "\"\xF5\x80\x80\x80\""},
    {"n_utf8_ff", "\"\xFF\""},
    {"n_utf8_truncated_2", "\"\xC3\""},
    {"n_utf8_truncated_3", "\"\xE2\x82\""},
    {"n_utf8_truncated_4", "\"\xF0\x9F\x98\""},
    {"n_utf8_bad_continuation", "\"\xC3\x28\""},
    {"n_utf8_in_long_ascii_run", "\"" + std::string(20, 'a') + "\xFF" + std::string(20, 'a') + "\""},
    {"n_control_in_long_ascii_run", "\"" + std::string(13, 'a') + "\x1F" + std::string(20, 'a') + "\""},
};

TEST(JsonScanCorpus, AcceptsValidDocuments) {
  for (const auto& c : accepted) {
    scan_error error;
    EXPECT_TRUE(validate(c.text, error)) << c.name << ": " << error.message << " at " << error.offset;
  }
}

TEST(JsonScanCorpus, RejectsInvalidDocuments) {
  for (const auto& c : rejected) {
    scan_error error;
    EXPECT_FALSE(validate(c.text, error)) << c.name;
    EXPECT_FALSE(error.message.empty()) << c.name;
    EXPECT_LE(error.offset, c.text.size()) << c.name;
  }
}

TEST(JsonScanCorpus, BoostAgreesOnCorpus) {
  // Guards the corpus itself: Boost.JSON is strict too, except that it
  // refuses escaped lone surrogates and exponents beyond double range, which
  // RFC 8259's grammar allows.
  boost::json::parse_options options;
  options.max_depth = 1000;
  for (const auto& c : rejected) {
    boost::json::error_code ec;
    boost::json::parse(c.text, ec, {}, options);
    EXPECT_TRUE(ec) << c.name;
  }
  for (const auto& c : accepted) {
    boost::json::error_code ec;
    boost::json::parse(c.text, ec, {}, options);
    const std::string name = c.name;
    if (name.find("surrogate") != std::string::npos && name.find("pair") == std::string::npos) continue;
    EXPECT_FALSE(ec) << c.name << ": " << ec.message();
  }
}

TEST(JsonScanErrors, OffsetsPointAtTheProblem) {
  const auto offset_of = [](std::string_view text) {
    scan_error error;
    EXPECT_FALSE(validate(text, error)) << text;
    return error.offset;
  };
  EXPECT_EQ(offset_of("[1,]"), 3U);
  EXPECT_EQ(offset_of(R"({"a":01})"), 6U);
  EXPECT_EQ(offset_of("{} x"), 3U);
  EXPECT_EQ(offset_of("\"ab\xED\xA0\x80\""), 3U);
  EXPECT_EQ(offset_of("\"ab\x01\""), 3U);
  EXPECT_EQ(offset_of(R"({"a" 1})"), 5U);
  EXPECT_EQ(offset_of("[1"), 2U);
  EXPECT_EQ(offset_of(R"(["\q"])"), 2U);
}

TEST(JsonScanErrors, MessagesNameTheProblem) {
  scan_error error;
  ASSERT_FALSE(validate("[1,x]", error));
  EXPECT_EQ(error.message, "unexpected character 'x'");
  ASSERT_FALSE(validate("{\"a\":1}\x01", error));
  EXPECT_NE(error.message.find("0x01"), std::string::npos) << error.message;
  ASSERT_FALSE(validate("01", error));
  EXPECT_NE(error.message.find("leading zero"), std::string::npos) << error.message;
}

TEST(JsonScanObject, RecordsMemberSpansAndKinds) {
  const std::string text = R"( { "model" : "gpt-4o", "n":1, "messages":[{"role":"user"}], "stream":true,)"
                           R"( "x":null, "o":{}, "f":false, "e":-1.5e3 } )";
  object_scan scan;
  scan_error error;
  ASSERT_TRUE(scan_object(text, scan, error)) << error.message;
  EXPECT_EQ(slice(text, scan.object_span), text.substr(1, text.size() - 2));
  struct expected_member {
    std::string_view key, value;
    value_kind kind;
  };
  const std::vector<expected_member> expected = {
      {"model", R"("gpt-4o")", value_kind::string},
      {"n", "1", value_kind::number},
      {"messages", R"([{"role":"user"}])", value_kind::array},
      {"stream", "true", value_kind::boolean_true},
      {"x", "null", value_kind::null},
      {"o", "{}", value_kind::object},
      {"f", "false", value_kind::boolean_false},
      {"e", "-1.5e3", value_kind::number},
  };
  ASSERT_EQ(scan.members.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const member& m = scan.members[i];
    EXPECT_EQ(m.key, expected[i].key);
    EXPECT_EQ(slice(text, m.key_span), "\"" + std::string(expected[i].key) + "\"");
    EXPECT_EQ(slice(text, m.value_span), expected[i].value);
    EXPECT_EQ(m.kind, expected[i].kind) << m.key;
  }
}

TEST(JsonScanObject, RejectsNonObjects) {
  object_scan scan;
  scan_error error;
  EXPECT_FALSE(scan_object("[]", scan, error));
  EXPECT_FALSE(scan_object("\"{}\"", scan, error));
  EXPECT_FALSE(scan_object("", scan, error));
  EXPECT_FALSE(scan_object("{\"a\":1} []", scan, error));
  EXPECT_TRUE(scan.members.empty());  // no half-filled result on failure
}

TEST(JsonScanObject, DuplicateKeysKeptAndFindReturnsLast) {
  const std::string text = R"({"model":"a","x":0,"model":"b"})";
  object_scan scan;
  scan_error error;
  ASSERT_TRUE(scan_object(text, scan, error));
  ASSERT_EQ(scan.members.size(), 3U);
  const member* model = scan.find("model");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(slice(text, model->value_span), R"("b")");
  EXPECT_EQ(model, &scan.members[2]);
  EXPECT_EQ(scan.find("missing"), nullptr);
}

TEST(JsonScanObject, FindUsesRawKeys) {
  const std::string text = R"({"a\"b":1,"\u0063":2})";
  object_scan scan;
  scan_error error;
  ASSERT_TRUE(scan_object(text, scan, error));
  EXPECT_NE(scan.find(R"(a\"b)"), nullptr);
  EXPECT_NE(scan.find(R"(\u0063)"), nullptr);
  EXPECT_EQ(scan.find("c"), nullptr);  // escapes are not decoded
}

TEST(JsonScanObject, ReusesMemberCapacity) {
  object_scan scan;
  scan_error error;
  ASSERT_TRUE(scan_object(R"({"a":1,"b":2,"c":3,"d":4})", scan, error));
  const member* storage = scan.members.data();
  const std::size_t capacity = scan.members.capacity();
  ASSERT_TRUE(scan_object(R"({"x":[1,2,{"y":3}],"z":4})", scan, error));
  EXPECT_EQ(scan.members.size(), 2U);
  EXPECT_EQ(scan.members.data(), storage);
  EXPECT_EQ(scan.members.capacity(), capacity);
}

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonScanDepth, LimitIsEnforced) {
  EXPECT_TRUE(valid(nested_arrays(128)));
  scan_error error;
  EXPECT_FALSE(validate(nested_arrays(129), error));
  EXPECT_NE(error.message.find("nesting"), std::string::npos) << error.message;
  EXPECT_EQ(error.offset, 128U);
  EXPECT_TRUE(valid("1", 0));
  EXPECT_FALSE(valid("[]", 0));
  EXPECT_TRUE(valid(R"({"a":1})", 1));
  EXPECT_FALSE(valid(R"({"a":{}})", 1));
  EXPECT_FALSE(valid(R"({"a":[]})", 1));
  object_scan scan;
  EXPECT_FALSE(scan_object("{}", scan, error, 0));
}

TEST(JsonScanDepth, HugeNestingDoesNotCrash) {
  const std::string open_only(2'000'000, '[');
  EXPECT_FALSE(valid(open_only));
  EXPECT_FALSE(valid(open_only, 3'000'000));  // deep enough to need the heap, still no recursion
  EXPECT_TRUE(valid(nested_arrays(1'000'000), 1'000'000));
  EXPECT_FALSE(valid(nested_arrays(1'000'000), 999'999));
}

TEST(JsonScanDepth, TracksContainerKindsBeyondInlineLevels) {
  // Alternating objects and arrays 10000 deep checks the per-level kind bits
  // in both the inline and the overflow storage.
  std::string text;
  const int depth = 10'000;
  for (int i = 0; i < depth; ++i) text += i % 2 == 0 ? R"({"k":)" : "[";
  text += "0";
  for (int i = depth - 1; i >= 0; --i) text += i % 2 == 0 ? "}" : "]";
  EXPECT_TRUE(valid(text, depth));
  std::string mismatched = text;
  mismatched[mismatched.size() - 6000] = mismatched[mismatched.size() - 6000] == '}' ? ']' : '}';
  EXPECT_FALSE(valid(mismatched, depth));
}

TEST(JsonScanStrings, EncodeEscapesWhatJsonRequires) {
  EXPECT_EQ(encode_string(""), R"("")");
  EXPECT_EQ(encode_string("plain / text"), R"("plain / text")");
  EXPECT_EQ(encode_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(encode_string("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(encode_string("\x01\x1F"s), R"("\u0001\u001f")");
  EXPECT_EQ(encode_string("\0"s), R"("\u0000")");
  EXPECT_EQ(encode_string("\xC3\xA9"), "\"\xC3\xA9\"");
}

TEST(JsonScanStrings, EncodeReplacesInvalidUtf8) {
  EXPECT_EQ(encode_string("a\xFF"
                          "b"),
            "\"a\xEF\xBF\xBD"
            "b\"");
  EXPECT_EQ(encode_string("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_TRUE(valid(encode_string("\xC3")));
}

TEST(JsonScanStrings, RoundTrip) {
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) all_controls += static_cast<char>(c);
  const std::vector<std::string> samples = {
      "",
      "plain",
      "quote\" backslash\\ slash/",
      all_controls,
      "\x7F",
      "caf\xC3\xA9",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
      "\xF0\x9F\x98\x80 emoji",
      "\xF4\x8F\xBF\xBF",
      std::string(100, 'x') + "\n" + std::string(100, 'y'),
  };
  for (const auto& s : samples) {
    const std::string encoded = encode_string(s);
    EXPECT_TRUE(valid(encoded)) << encoded;
    EXPECT_EQ(decode_string(encoded), s);
    EXPECT_EQ(boost::json::parse(encoded).as_string(), s);
  }
}

TEST(JsonScanStrings, DecodeEscapes) {
  EXPECT_EQ(decode_string(R"("a\"\\\/\b\f\n\r\tz")"), "a\"\\/\b\f\n\r\tz");
  EXPECT_EQ(decode_string(R"("\u0041\u00e9\u65E5")"), "A\xC3\xA9\xE6\x97\xA5");
  EXPECT_EQ(decode_string(R"("\u0000")"), "\0"s);
  EXPECT_EQ(decode_string(R"("\ud83d\ude00")"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(decode_string(R"("\uD83D\uDE00")"), "\xF0\x9F\x98\x80");
}

TEST(JsonScanStrings, DecodeLoneSurrogatesAsReplacementCharacter) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(decode_string(R"("\ud800")"), fffd);
  EXPECT_EQ(decode_string(R"("\udc00")"), fffd);
  EXPECT_EQ(decode_string(R"("\ude00\ud83d")"), fffd + fffd);
  EXPECT_EQ(decode_string(R"("\ud83dx")"), fffd + "x");
  EXPECT_EQ(decode_string(R"("\ud83d\u0041")"), fffd + "A");
  EXPECT_EQ(decode_string(R"("\ud83d\ud83d\ude00")"), fffd + "\xF0\x9F\x98\x80");
}

TEST(JsonScanStrings, DecodeRejectsMalformedTokens) {
  for (const std::string& bad : {""s, "\""s, "abc"s, "\"abc"s, "\"a\"b\""s, R"("\x")"s, "\"\x01\""s, "\"\xC0\xAF\""s,
                                 R"("\u12")"s, "\"a\" "s, " \"a\""s}) {
    EXPECT_EQ(decode_string(bad), std::nullopt) << bad;
  }
}

TEST(JsonScanNumbers, ToInt64) {
  EXPECT_EQ(to_int64("0"), 0);
  EXPECT_EQ(to_int64("-0"), 0);
  EXPECT_EQ(to_int64("42"), 42);
  EXPECT_EQ(to_int64("-42"), -42);
  EXPECT_EQ(to_int64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(to_int64("-9223372036854775808"), INT64_MIN);
  for (const char* bad : {"9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.0", "1e3", "01",
                          "-01", "+1", "", "-", " 1", "1 ", "12a", "0x1"}) {
    EXPECT_EQ(to_int64(bad), std::nullopt) << bad;
  }
}

TEST(JsonScanSplice, AppliesEditsInAnyOrder) {
  const std::string text = "0123456789";
  EXPECT_EQ(splice(text, {}), text);
  EXPECT_EQ(splice(text, {{{8, 10}, "X"}, {{0, 2}, "AB-"}, {{5, 5}, "+"}}), "AB-234+567X");
  // Inserts at one position keep the given order and come before a
  // replacement starting there.
  EXPECT_EQ(splice(text, {{{3, 5}, "R"}, {{3, 3}, "a"}, {{3, 3}, "b"}}), "012abR56789");
  EXPECT_EQ(splice(text, {{{0, 10}, ""}}), "");
  EXPECT_EQ(splice(text, {{{10, 10}, "!"}}), "0123456789!");
}

TEST(JsonScanSplice, RejectsOverlapAndOutOfRange) {
  const std::string text = "0123456789";
  EXPECT_THROW(splice(text, {{{2, 5}, "x"}, {{4, 6}, "y"}}), std::invalid_argument);
  EXPECT_THROW(splice(text, {{{2, 5}, "x"}, {{2, 5}, "y"}}), std::invalid_argument);
  EXPECT_THROW(splice(text, {{{2, 5}, "x"}, {{3, 3}, "y"}}), std::invalid_argument);
  EXPECT_THROW(splice(text, {{{5, 11}, "x"}}), std::invalid_argument);
  EXPECT_THROW(splice(text, {{{5, 4}, "x"}}), std::invalid_argument);
}

std::string apply_set(const std::string& text, std::string_view key, std::string value) {
  object_scan scan;
  scan_error error;
  EXPECT_TRUE(scan_object(text, scan, error)) << text;
  std::string result = splice(text, {set_member(text, scan, key, std::move(value))});
  EXPECT_TRUE(valid(result)) << result;
  return result;
}

TEST(JsonScanSetMember, ReplacesExistingValue) {
  EXPECT_EQ(apply_set(R"({"model":"a","n":1})", "model", R"("b")"), R"({"model":"b","n":1})");
  EXPECT_EQ(apply_set(R"({ "model" : { "x" : [1] } })", "model", "null"), R"({ "model" : null })");
  // Duplicate keys: the last one is what parsers use, so that is replaced.
  EXPECT_EQ(apply_set(R"({"model":"a","model":"b"})", "model", R"("c")"), R"({"model":"a","model":"c"})");
}

TEST(JsonScanSetMember, InsertsIntoEmptyObject) {
  EXPECT_EQ(apply_set("{}", "k", "1"), R"({"k":1})");
  EXPECT_EQ(apply_set("{ }", "k", "1"), R"({ "k":1})");
  EXPECT_EQ(apply_set(" \n{\n}\n", "k", "[]"), " \n{\n\"k\":[]}\n");
}

TEST(JsonScanSetMember, InsertsIntoNonEmptyObject) {
  EXPECT_EQ(apply_set(R"({"a":1})", "k", "true"), R"({"a":1,"k":true})");
  EXPECT_EQ(apply_set("{\"a\":1 \n }", "k", "true"), "{\"a\":1,\"k\":true \n }");
  EXPECT_EQ(apply_set(R"({"a":{"k":1}})", "k", "2"), R"({"a":{"k":1},"k":2})");  // top level only
  const std::string result = apply_set(R"({"model":"m","stream":true})", "stream_options", R"({"include_usage":true})");
  const boost::json::value doc = boost::json::parse(result);
  EXPECT_EQ(doc.at("stream_options").at("include_usage").as_bool(), true);
  EXPECT_EQ(doc.at("model").as_string(), "m");
}

TEST(JsonScanSetMember, CombinesWithOtherEdits) {
  const std::string text = R"({"model":"alias","stream":true})";
  object_scan scan;
  scan_error error;
  ASSERT_TRUE(scan_object(text, scan, error));
  std::vector<edit> edits;
  edits.push_back(set_member(text, scan, "stream_options", R"({"include_usage":true})"));
  edits.push_back(set_member(text, scan, "model", R"("gpt-4o")"));
  EXPECT_EQ(splice(text, std::move(edits)),
            R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}})");
}

TEST(JsonScanSetMember, RejectsScanOfOtherText) {
  object_scan scan;
  scan_error error;
  ASSERT_TRUE(scan_object(R"({"a":1,"b":2})", scan, error));
  EXPECT_THROW(set_member("{}", scan, "k", "1"), std::invalid_argument);
}

// ---- cross-check against Boost.JSON on random documents

class random_json {
 public:
  explicit random_json(std::uint32_t seed) : rng_(seed) {}

  boost::json::object object(int depth) {
    boost::json::object obj;
    const int members = pick(0, 6);
    for (int i = 0; i < members; ++i) obj[string()] = value(depth + 1);
    return obj;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  boost::json::value value(int depth) {
    switch (pick(0, depth > 4 ? 6 : 8)) {
      case 0: return nullptr;
      case 1: return pick(0, 1) == 1;
      case 2: return std::uniform_int_distribution<std::int64_t>(INT64_MIN, INT64_MAX)(rng_);
      case 3: return std::uniform_int_distribution<std::uint64_t>(0, UINT64_MAX)(rng_);
      case 4: return std::uniform_real_distribution<double>(-1e300, 1e300)(rng_) / std::pow(10.0, pick(0, 300));
      case 5:
      case 6: return boost::json::string(string());
      case 7: {
        boost::json::array arr;
        const int n = pick(0, 5);
        for (int i = 0; i < n; ++i) arr.push_back(value(depth + 1));
        return arr;
      }
      default: return object(depth);
    }
  }

  // Random UTF-8 from every encoded length, including control characters.
  std::string string() {
    std::string out;
    const int n = pick(0, 12);
    for (int i = 0; i < n; ++i) {
      std::uint32_t cp = 0;
      switch (pick(0, 4)) {
        case 0: cp = static_cast<std::uint32_t>(pick(0, 0x1F)); break;
        case 1: cp = static_cast<std::uint32_t>(pick(0x20, 0x7F)); break;
        case 2: cp = static_cast<std::uint32_t>(pick(0x80, 0x7FF)); break;
        case 3:
          cp = static_cast<std::uint32_t>(pick(0x800, 0xFFFF));
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;
          break;
        default: cp = static_cast<std::uint32_t>(pick(0x10000, 0x10FFFF)); break;
      }
      append_utf8(out, cp);
    }
    return out;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    const auto put = [&](std::uint32_t byte) { out += static_cast<char>(byte); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | (cp >> 6));
      put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | (cp >> 12));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | (cp >> 18));
      put(0x80 | ((cp >> 12) & 0x3F));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    }
  }

  std::mt19937 rng_;
};

value_kind kind_of(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: return value_kind::object;
    case boost::json::kind::array: return value_kind::array;
    case boost::json::kind::string: return value_kind::string;
    case boost::json::kind::bool_: return v.get_bool() ? value_kind::boolean_true : value_kind::boolean_false;
    case boost::json::kind::null: return value_kind::null;
    default: return value_kind::number;
  }
}

TEST(JsonScanArray, ListsTheElementsOfAnArray) {
  const std::string text = R"( [ {"finish_reason":"stop","n":[1,2]} , "a\"b", -1.5e3, [], null, true ] )";
  array_scan out;
  scan_error error;
  ASSERT_TRUE(scan_array(text, out, error)) << error.message;
  ASSERT_EQ(out.elements.size(), 6u);
  EXPECT_EQ(slice(text, out.elements[0].value_span), R"({"finish_reason":"stop","n":[1,2]})");
  EXPECT_EQ(out.elements[0].kind, value_kind::object);
  EXPECT_EQ(slice(text, out.elements[1].value_span), R"("a\"b")");
  EXPECT_EQ(out.elements[1].kind, value_kind::string);
  EXPECT_EQ(slice(text, out.elements[2].value_span), "-1.5e3");
  EXPECT_EQ(out.elements[3].kind, value_kind::array);
  EXPECT_EQ(out.elements[4].kind, value_kind::null);
  EXPECT_EQ(out.elements[5].kind, value_kind::boolean_true);
  EXPECT_EQ(slice(text, out.array_span), text.substr(1, text.size() - 2));

  ASSERT_TRUE(scan_array("[]", out, error));
  EXPECT_TRUE(out.elements.empty());
}

TEST(JsonScanArray, RefusesWhatIsNotOneValidArrayAndListsNothing) {
  array_scan out;
  scan_error error;
  ASSERT_TRUE(scan_array("[1,2]", out, error));
  for (const std::string_view bad : {"", "{}", "1", "[1,]", "[1 2]", "[1] x", "[\"\xff\"]", "[[[1]]"}) {
    EXPECT_FALSE(scan_array(bad, out, error)) << bad;
    EXPECT_TRUE(out.elements.empty()) << bad;
  }
  EXPECT_FALSE(scan_array("[[[1]]]", out, error, 2));
  EXPECT_EQ(error.message, "nesting deeper than 2 levels");
  EXPECT_FALSE(scan_array(R"({"a":[1]})", out, error));
  EXPECT_EQ(error.message, "expected a JSON array");
}

TEST(JsonScanCrossCheck, RandomBoostDocumentsMatch) {
  random_json gen(20240611);
  object_scan scan;
  for (int doc = 0; doc < 2000; ++doc) {
    const std::string text = boost::json::serialize(gen.object(0));
    // Compare with Boost's parse of the same text rather than the generated
    // values: Boost 1.81 does not promise exact double round trips.
    const boost::json::object obj = boost::json::parse(text).as_object();
    scan_error error;
    ASSERT_TRUE(validate(text, error)) << text << "\n" << error.message << " at " << error.offset;
    ASSERT_TRUE(scan_object(text, scan, error)) << text;
    ASSERT_EQ(scan.members.size(), obj.size()) << text;
    std::size_t i = 0;
    for (const auto& [key, value] : obj) {
      const member& m = scan.members[i++];
      EXPECT_EQ(decode_string(slice(text, m.key_span)), std::string(key)) << text;
      EXPECT_EQ(boost::json::parse(slice(text, m.value_span)), value) << text;
      EXPECT_EQ(m.kind, kind_of(value)) << text;
      // Every string inside must decode to what Boost holds.
      if (value.is_string()) {
        EXPECT_EQ(decode_string(slice(text, m.value_span)), std::string(value.get_string()));
      }
    }
  }
}

TEST(JsonScanCrossCheck, MutatedDocumentsAgreeWithBoost) {
  // Boost.JSON is at least as strict as RFC 8259, so whatever it accepts we
  // must accept; single-byte mutations probe the edges of the grammar.
  random_json gen(7);
  std::mt19937 rng(99);
  boost::json::parse_options options;
  options.max_depth = 1000;
  for (int doc = 0; doc < 2000; ++doc) {
    std::string text = boost::json::serialize(gen.object(0));
    const std::size_t at = std::uniform_int_distribution<std::size_t>(0, text.size() - 1)(rng);
    text[at] = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    boost::json::error_code ec;
    boost::json::parse(text, ec, {}, options);
    scan_error error;
    if (!ec) {
      EXPECT_TRUE(validate(text, error, 1000)) << text << "\n" << error.message;
    }
  }
}

}  // namespace
}  // namespace gatewayz::json_scan

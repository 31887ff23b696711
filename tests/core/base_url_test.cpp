#include "core/base_url.hpp"

#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace gatewayz {
namespace {

base_url parse_ok(std::string_view text) {
  std::string problem;
  auto parsed = parse_base_url(text, problem);
  EXPECT_TRUE(parsed.has_value()) << text << ": " << problem;
  return parsed.value_or(base_url{});
}

std::string problem_of(std::string_view text) {
  std::string problem;
  const auto parsed = parse_base_url(text, problem);
  if (parsed) return "accepted";
  return problem;
}

constexpr std::string_view not_http = "must be an absolute http:// or https:// URL";
constexpr std::string_view bad_port = "URL port must be a number from 1 to 65535";

TEST(base_url, https_with_path) {
  const auto url = parse_ok("https://openrouter.ai/api/v1");
  EXPECT_TRUE(url.tls);
  EXPECT_EQ(url.host, "openrouter.ai");
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.base_path, "/api/v1");
  EXPECT_EQ(url.host_header, "openrouter.ai");
}

TEST(base_url, http_with_port) {
  const auto url = parse_ok("http://127.0.0.1:9100/v1");
  EXPECT_FALSE(url.tls);
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 9100);
  EXPECT_EQ(url.base_path, "/v1");
  EXPECT_EQ(url.host_header, "127.0.0.1:9100");
}

TEST(base_url, default_ports) {
  EXPECT_EQ(parse_ok("http://h").port, 80);
  EXPECT_EQ(parse_ok("https://h").port, 443);
  // A port other than the scheme's default is kept, and shown in Host.
  const auto plain_on_443 = parse_ok("http://h:443");
  EXPECT_EQ(plain_on_443.port, 443);
  EXPECT_EQ(plain_on_443.host_header, "h:443");
  const auto tls_on_80 = parse_ok("https://h:80");
  EXPECT_EQ(tls_on_80.port, 80);
  EXPECT_EQ(tls_on_80.host_header, "h:80");
}

TEST(base_url, explicit_default_port_is_left_out_of_host_header) {
  EXPECT_EQ(parse_ok("http://h:80/v1").host_header, "h");
  EXPECT_EQ(parse_ok("https://h:443/v1").host_header, "h");
  EXPECT_EQ(parse_ok("http://h:080").port, 80);
  EXPECT_EQ(parse_ok("http://h:080").host_header, "h");
}

TEST(base_url, non_default_port_is_written_as_given_in_host_header) {
  const auto url = parse_ok("http://h:08080");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.host_header, "h:08080");
}

TEST(base_url, scheme_is_case_insensitive) {
  EXPECT_TRUE(parse_ok("HTTPS://h/v1").tls);
  EXPECT_FALSE(parse_ok("Http://h/v1").tls);
}

TEST(base_url, trailing_slashes_are_stripped_from_the_path) {
  EXPECT_EQ(parse_ok("https://h/v1/").base_path, "/v1");
  EXPECT_EQ(parse_ok("https://h/v1///").base_path, "/v1");
  EXPECT_EQ(parse_ok("https://h/").base_path, "");
  EXPECT_EQ(parse_ok("https://h").base_path, "");
  EXPECT_EQ(parse_ok("https://h/a//b").base_path, "/a//b");
  EXPECT_EQ(parse_ok("https://h/a%20b/").base_path, "/a%20b");  // kept encoded
}

TEST(base_url, ipv6_host_has_no_brackets_but_host_header_does) {
  const auto with_port = parse_ok("http://[::1]:9100/v1");
  EXPECT_EQ(with_port.host, "::1");
  EXPECT_EQ(with_port.port, 9100);
  EXPECT_EQ(with_port.host_header, "[::1]:9100");
  const auto default_port = parse_ok("https://[2001:db8::1]/v1");
  EXPECT_EQ(default_port.host, "2001:db8::1");
  EXPECT_EQ(default_port.port, 443);
  EXPECT_EQ(default_port.host_header, "[2001:db8::1]");
}

TEST(base_url, ipv4_and_names_keep_their_text) {
  EXPECT_EQ(parse_ok("http://10.0.0.1/").host, "10.0.0.1");
  EXPECT_EQ(parse_ok("http://Api.Example.com/").host, "Api.Example.com");
  EXPECT_EQ(parse_ok("http://Api.Example.com/").host_header, "Api.Example.com");
}

TEST(base_url, scheme_must_be_http_or_https) {
  EXPECT_EQ(problem_of("ftp://example.com/v1"), not_http);
  EXPECT_EQ(problem_of("ws://example.com/v1"), not_http);
  EXPECT_EQ(problem_of("example.com/v1"), not_http);
  EXPECT_EQ(problem_of("//example.com/v1"), not_http);
  EXPECT_EQ(problem_of(""), not_http);
  EXPECT_EQ(problem_of("https://exa mple.com"), not_http);
}

TEST(base_url, path_after_the_host_must_start_with_a_slash) {
  EXPECT_EQ(problem_of("http://h:80x/v1"), not_http);
  EXPECT_EQ(problem_of("http://h:8:9"), not_http);
  EXPECT_EQ(problem_of("http://h:-1"), not_http);
  EXPECT_EQ(problem_of("http://[::1]v1"), not_http);
}

TEST(base_url, host_is_required) {
  EXPECT_EQ(problem_of("https://"), "URL has no host");
  EXPECT_EQ(problem_of("https:///v1"), "URL has no host");
  EXPECT_EQ(problem_of("https://:8080/v1"), "URL has no host");
  EXPECT_EQ(problem_of("http:/v1"), "URL has no host");
  EXPECT_EQ(problem_of("http:example.com"), "URL has no host");
}

TEST(base_url, credentials_are_refused) {
  EXPECT_EQ(problem_of("https://user:sk-abc@example.com/v1"), "URL must not contain credentials; use api_key");
  EXPECT_EQ(problem_of("https://user@example.com/v1"), "URL must not contain credentials; use api_key");
  EXPECT_EQ(problem_of("https://@example.com/v1"), "URL must not contain credentials; use api_key");
}

TEST(base_url, query_and_fragment_are_refused) {
  EXPECT_EQ(problem_of("https://example.com/v1?x=1"), "URL must not contain a query or a fragment");
  EXPECT_EQ(problem_of("https://example.com/v1?"), "URL must not contain a query or a fragment");
  EXPECT_EQ(problem_of("https://example.com/v1#top"), "URL must not contain a query or a fragment");
}

TEST(base_url, port_must_be_1_to_65535) {
  EXPECT_EQ(problem_of("https://example.com:0/v1"), bad_port);
  EXPECT_EQ(problem_of("https://example.com:000/v1"), bad_port);
  EXPECT_EQ(problem_of("https://example.com:/v1"), bad_port);
  EXPECT_EQ(problem_of("https://example.com:65536/v1"), bad_port);
  EXPECT_EQ(problem_of("https://example.com:99999/v1"), bad_port);
  EXPECT_EQ(problem_of("https://example.com:4294967297/v1"), bad_port);
  EXPECT_EQ(parse_ok("https://example.com:65535/v1").port, 65535);
  EXPECT_EQ(parse_ok("https://example.com:1/v1").port, 1);
  EXPECT_EQ(parse_ok("https://example.com:000065535").port, 65535);
}

TEST(base_url, problems_never_quote_the_url) {
  for (const std::string_view url :
       {"ftp://user:sk-secret@example.com/v1", "https://user:sk-secret@example.com/v1",
        "https://example.com/v1?key=sk-secret", "https://sk-secret:0/v1", "https://sk-secret:99999", "sk-secret"}) {
    const std::string problem = problem_of(url);
    EXPECT_NE(problem, "accepted") << url;
    EXPECT_FALSE(problem.empty()) << url;
    EXPECT_EQ(problem.find("sk-secret"), std::string::npos) << url << ": " << problem;
    EXPECT_EQ(problem.find("example"), std::string::npos) << url << ": " << problem;
  }
}

TEST(base_url, a_failed_parse_leaves_no_partial_result_and_success_leaves_problem_alone) {
  std::string problem = "untouched";
  EXPECT_TRUE(parse_base_url("https://h/v1", problem).has_value());
  EXPECT_EQ(problem, "untouched");
  EXPECT_FALSE(parse_base_url("https://h/v1?q", problem).has_value());
  EXPECT_EQ(problem, "URL must not contain a query or a fragment");
}

}  // namespace
}  // namespace gatewayz

// Property fuzzer for core/base_url (providers' base_url in the config).
//
// The whole input is the URL text.
//
// Invariants:
//  - accepted: port != 0, host non-empty, base_path empty or starting with
//    '/' and without a trailing '/', a Host value that names the host and
//    (unless it is the scheme's default) the port, and `problem` left alone.
//    Rebuilding "scheme://host_header base_path" and parsing it again gives
//    the same endpoint (IP-future literals excepted: their Host value drops
//    the brackets, see below).
//  - refused: `problem` is one of the fixed sentences, so it cannot carry the
//    URL (which may hold credentials); an input over 8 bytes never appears
//    in it, unless the input is itself a piece of one of those sentences
//    ("https:// " is refused, and its problem contains it).

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base_url.hpp"

#include "fuzz_check.hpp"

namespace {

using gatewayz::base_url;
using gatewayz::parse_base_url;

constexpr std::array<std::string_view, 5> problems = {
    "must be an absolute http:// or https:// URL",   "URL has no host",
    "URL must not contain credentials; use api_key", "URL must not contain a query or a fragment",
    "URL port must be a number from 1 to 65535",
};

bool same(const base_url& a, const base_url& b) {
  return a.tls == b.tls && a.host == b.host && a.port == b.port && a.base_path == b.base_path &&
         a.host_header == b.host_header;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string problem = "unset";
  const auto parsed = parse_base_url(text, problem);

  if (!parsed) {
    FUZZ_CHECK(!problem.empty());
    FUZZ_CHECK(std::find(problems.begin(), problems.end(), problem) != problems.end());
    const bool piece_of_a_sentence = std::any_of(
        problems.begin(), problems.end(), [&](std::string_view p) { return p.find(text) != std::string_view::npos; });
    if (text.size() > 8 && !piece_of_a_sentence) FUZZ_CHECK(problem.find(text) == std::string::npos);
    return 0;
  }

  const base_url& url = *parsed;
  FUZZ_CHECK(problem == "unset");
  FUZZ_CHECK(url.port != 0);
  FUZZ_CHECK(!url.host.empty());
  FUZZ_CHECK(url.base_path.empty() || url.base_path.front() == '/');
  FUZZ_CHECK(url.base_path.empty() || url.base_path.back() != '/');
  FUZZ_CHECK(!url.host_header.empty());

  // IP-future literals ("[v1.x]") keep their brackets in `host` but lose them
  // in a default-port Host value; nothing can connect to one anyway.
  if (url.host.front() == '[') return 0;

  // Host is "host" on the scheme's default port, else "host:port" with the
  // host and port as written (an IPv6 host in brackets, maybe not in the
  // canonical form `host` has, the port maybe with leading zeros).
  const bool ipv6 = url.host.find(':') != std::string::npos;
  if (url.port == (url.tls ? 443 : 80)) {
    FUZZ_CHECK(url.host_header == (ipv6 ? "[" + url.host + "]" : url.host));
  } else {
    const std::size_t colon = url.host_header.rfind(':');
    FUZZ_CHECK(colon != std::string::npos);
    const std::string_view written_host = std::string_view(url.host_header).substr(0, colon);
    const std::string_view written_port = std::string_view(url.host_header).substr(colon + 1);
    if (ipv6) {
      FUZZ_CHECK(written_host.size() > 2 && written_host.front() == '[' && written_host.back() == ']');
    } else {
      FUZZ_CHECK(written_host == url.host);
    }
    FUZZ_CHECK(!written_port.empty() && written_port.find_first_not_of("0123456789") == std::string_view::npos);
    std::uint32_t port = 0;
    for (const char c : written_port)
      port = std::min<std::uint32_t>(port * 10 + static_cast<std::uint32_t>(c - '0'), 70000);
    FUZZ_CHECK(port == url.port);
  }

  const std::string rebuilt = (url.tls ? "https://" : "http://") + url.host_header + url.base_path;
  std::string again_problem;
  const auto again = parse_base_url(rebuilt, again_problem);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(same(*again, url));
  return 0;
}

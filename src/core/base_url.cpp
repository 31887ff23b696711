#include "core/base_url.hpp"

#include <boost/url/parse.hpp>

namespace gatewayz {
namespace {

constexpr std::string_view not_http = "must be an absolute http:// or https:// URL";

// The port's digits as a number, when it is 1-65535. Boost.URL's own
// port_number() wraps some larger values (99999 reads as 34463), so the text
// is read here. The grammar admits only digits; leading zeros are allowed.
std::optional<std::uint16_t> port_value(std::string_view digits) {
  while (!digits.empty() && digits.front() == '0') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 5) return std::nullopt;
  std::uint32_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::optional<base_url> parse_base_url(std::string_view text, std::string& problem) {
  const auto fail = [&problem](std::string_view why) {
    problem = why;
    return std::nullopt;
  };
  // parse_uri, not parse_absolute_uri: the latter's grammar has no fragment,
  // so a URL with one would be reported as not a URL at all.
  const auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return fail(not_http);
  const auto scheme = parsed->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return fail(not_http);
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty()) return fail("URL has no host");
  if (parsed->has_userinfo()) return fail("URL must not contain credentials; use api_key");
  if (parsed->has_query() || parsed->has_fragment()) {
    return fail("URL must not contain a query or a fragment");
  }

  // Boost.URL 1.81 lets a path follow the authority without a '/', so a
  // typo such as "http://h:80x" would read as port 80 and path "x".
  std::string_view path = parsed->encoded_path();
  if (!path.empty() && path.front() != '/') return fail(not_http);

  base_url out;
  out.tls = scheme == boost::urls::scheme::https;
  const std::uint16_t default_port = out.tls ? 443 : 80;
  if (parsed->has_port()) {
    const auto port = port_value(parsed->port());
    if (!port) return fail("URL port must be a number from 1 to 65535");
    out.port = *port;
  } else {
    out.port = default_port;
  }

  const bool ipv6 = parsed->host_type() == boost::urls::host_type::ipv6;
  out.host = ipv6 ? parsed->host_ipv6_address().to_string() : std::string(parsed->encoded_host());

  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = path;

  // The host as written (IPv6 in brackets), with the port as written unless
  // it is the scheme's default.
  if (out.port != default_port) {
    out.host_header = std::string(parsed->encoded_host_and_port());
  } else if (ipv6) {
    out.host_header = "[" + out.host + "]";
  } else {
    out.host_header = std::string(parsed->encoded_host_address());
  }
  return out;
}

}  // namespace gatewayz

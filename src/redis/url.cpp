#include "redis/url.hpp"

#include <charconv>

namespace gatewayz::redis {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes decoded; false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    const int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
    const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

}  // namespace

bool parse_url(std::string_view url, endpoint& out, std::string& error) {
  constexpr std::string_view scheme = "redis://";
  if (url.starts_with("rediss://")) {
    error = "rediss:// (Redis over TLS) is not supported; use redis://";
    return false;
  }
  if (!url.starts_with(scheme)) {
    error = "must start with redis://";
    return false;
  }
  std::string_view rest = url.substr(scheme.size());
  endpoint parsed;

  // The userinfo ends at the LAST '@' before the path: a password may hold '@'.
  const std::size_t path_at = rest.find('/', rest.rfind('@') == std::string_view::npos ? 0 : rest.rfind('@'));
  std::string_view authority = rest.substr(0, path_at);
  const std::string_view path = path_at == std::string_view::npos ? std::string_view{} : rest.substr(path_at + 1);

  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // redis://secret@host is how some tools write a password alone.
      if (!percent_decode(userinfo, parsed.password)) {
        error = "the password has a malformed %-escape";
        return false;
      }
    } else {
      if (!percent_decode(userinfo.substr(0, colon), parsed.username)) {
        error = "the user name has a malformed %-escape";
        return false;
      }
      if (!percent_decode(userinfo.substr(colon + 1), parsed.password)) {
        error = "the password has a malformed %-escape";
        return false;
      }
    }
    if (!parsed.username.empty() && parsed.password.empty()) {
      error = "a user name needs a password (redis://user:password@host)";
      return false;
    }
  }

  std::string_view port_text;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "an IPv6 host must be closed by ']'";
      return false;
    }
    parsed.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) {
        error = "expected ':port' after the IPv6 host";
        return false;
      }
      port_text = after.substr(1);
      if (port_text.empty()) {
        error = "the port is empty";
        return false;
      }
    }
  } else {
    const std::size_t colon = authority.find(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        error = "the port is empty";
        return false;
      }
    }
  }
  if (parsed.host.empty()) {
    error = "the host is missing (redis://host:port/db)";
    return false;
  }
  for (const char c : parsed.host) {
    if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@' || c == static_cast<char>(0x7f)) {
      error = "the host has a character a host name cannot have";
      return false;
    }
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    if (!parse_number(port_text, port) || port == 0 || port > 65535) {
      error = "the port must be a number from 1 to 65535";
      return false;
    }
    parsed.port = static_cast<std::uint16_t>(port);
  }
  if (!path.empty()) {
    if (!parse_number(path, parsed.database) || parsed.database < 0) {
      error = "the database (the path) must be a non-negative number, e.g. redis://host:6379/0";
      return false;
    }
  }
  out = std::move(parsed);
  return true;
}

}  // namespace gatewayz::redis

#pragma once
// Where a Redis server is and how to log in to it, from a redis:// URL.
//
// Pure parsing, no I/O: the config loader validates `redis.url` with it at
// load time and the client connects with what it returns. Thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

namespace gatewayz::redis {

struct endpoint {
  std::string host;  // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 6379;
  std::string username, password;  // percent-decoded; empty: no AUTH (password only: AUTH password)
  int database = 0;                // SELECT'ed after connecting when not 0
};

// redis://[[user]:password@]host[:port][/db]. On failure returns false and
// sets `error` to a sentence that never contains the password (the URL as a
// whole is never echoed either).
bool parse_url(std::string_view url, endpoint& out, std::string& error);

}  // namespace gatewayz::redis

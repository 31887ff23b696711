#pragma once
// Helpers shared by the throwaway servers of the tests (postgres_server,
// redis_server): a free loopback port and shell quoting for the commands
// that start them. Header-only; any thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gatewayz::test_support {

// A TCP port on 127.0.0.1 that was free a moment ago (bound, then closed).
// Throws std::runtime_error naming `who` when none can be had.
inline std::uint16_t find_free_loopback_port(std::string_view who) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string(who) + ": socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string(who) + ": cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// `s` as one single-quoted shell word.
inline std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

}  // namespace gatewayz::test_support

// set_listen: "host:port" parsing for server.listen and the command line.
#include "config/config.hpp"

#include <boost/url.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include "config/loader.hpp"

namespace gatewayz::config {
namespace {

using detail::shown;

struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Host must be an IP literal because the server binds it directly, without
// name resolution; IPv6 needs brackets so its colons are not read as the port.
std::variant<listen_address, std::string> parse_listen(std::string_view text) {
  const std::string usage =
      fmt::format("must be host:port with an IP address host, e.g. 127.0.0.1:8080 or [::1]:8080 (got {})", shown(text));
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return usage;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (!boost::urls::parse_ipv6_address(host)) {
      return fmt::format("{} is not a valid IPv6 address", shown(host));
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return usage;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fmt::format("IPv6 addresses must be in brackets, e.g. [::1]:8080 (got {})", shown(text));
    }
    if (host.empty() || !boost::urls::parse_ipv4_address(host)) return usage;
  }
  const auto port = parse_port(port_text);
  if (!port) return fmt::format("port must be a number from 0 to 65535 (got {})", shown(port_text));
  return listen_address{std::string(host), *port};
}

}  // namespace

std::optional<std::string> set_listen(server_config& server, std::string_view listen) {
  auto parsed = parse_listen(listen);
  if (auto* problem = std::get_if<std::string>(&parsed)) return std::move(*problem);
  auto& address = std::get<listen_address>(parsed);
  server.listen = std::string(listen);
  server.host = std::move(address.host);
  server.port = address.port;
  return std::nullopt;
}

}  // namespace gatewayz::config

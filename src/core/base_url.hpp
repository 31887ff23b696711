#pragma once
// A provider's base URL, "http(s)://host[:port][/path]", parsed once for both
// config validation and the upstream client, so a config that loads is one
// the gateway can connect with.
//
// Accepted: an absolute URL whose scheme is http or https (any case), with a
// non-empty host, no user info, query or fragment, and a path that is empty
// or starts with '/'; an explicit port must be 1-65535. On failure parse_base_url returns nullopt and sets `problem` to
// a fixed sentence for the user; it never quotes the URL, which may carry
// credentials someone pasted into it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gatewayz {

struct base_url {
  bool tls = false;         // https
  std::string host;         // DNS name or IP literal (IPv6 without brackets)
  std::uint16_t port = 0;   // the explicit port, else 443 (https) or 80 (http)
  std::string base_path;    // e.g. "/api/v1": as written, trailing slashes removed; may be empty
  std::string host_header;  // as sent in Host: "host" on the scheme's default port, else "host:port";
                            // IPv6 hosts in brackets
};

std::optional<base_url> parse_base_url(std::string_view text, std::string& problem);

}  // namespace gatewayz

#include "http/wire.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "core/text.hpp"

namespace gatewayz::http::wire {

namespace bhttp = boost::beast::http;

namespace {

void append_number(std::size_t value, std::string& out, int base = 10) {
  std::array<char, 24> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value, base).ptr;
  out.append(digits.data(), end);
}

bool frames_the_message(std::string_view name) {
  return text::iequals(name, "content-length") || text::iequals(name, "transfer-encoding") ||
         text::iequals(name, "connection");
}

// (A plain loop: find_first_of calls memchr once per byte of `value`.)
bool safe_value(std::string_view value) {
  for (const char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

}  // namespace

namespace {

void append_status_line(unsigned version, unsigned status, std::string_view reason, std::string& out) {
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(status, out);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
}

// The status line and the head's own fields, without the blank line.
void append_status_and_fields(const bhttp::response_header<>& head, std::string& out) {
  const auto reason = head.reason();
  append_status_line(head.version(), head.result_int(), {reason.data(), reason.size()}, out);
  for (const auto& field : head) {
    const auto name = field.name_string();
    const auto value = field.value();
    out.append(name.data(), name.size());
    out.append(": ");
    out.append(value.data(), value.size());
    out.append("\r\n");
  }
}

// The connection's own fields and the blank line that ends the head.
void append_connection_fields(const connection_fields& added, std::string& out) {
  if (!added.connection.empty()) out.append("Connection: ").append(added.connection).append("\r\n");
  out.append("Server: ").append(added.server).append("\r\nContent-Length: ");
  append_number(added.content_length, out);
  out.append("\r\n\r\n");
}

}  // namespace

void append_response_head(const bhttp::response_header<>& head, std::string& out) {
  append_status_and_fields(head, out);
  out.append("\r\n");
}

void append_response_head(const bhttp::response_header<>& head, const connection_fields& added, std::string& out) {
  append_status_and_fields(head, out);
  append_connection_fields(added, out);
}

void append_response_head(unsigned status, unsigned version,
                          std::span<const std::pair<std::string_view, std::string_view>> fields,
                          const connection_fields& added, std::string& out) {
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  append_status_line(version, status, {reason.data(), reason.size()}, out);
  for (const auto& [name, value] : fields) {
    if (name.empty() || frames_the_message(name) || !safe_value(name) || !safe_value(value)) continue;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  append_connection_fields(added, out);
}

void append_request_head(bhttp::verb method, std::string_view path_base, std::string_view target, std::string_view host,
                         std::string_view user_agent,
                         std::span<const std::pair<std::string_view, std::string_view>> headers, std::size_t body_size,
                         std::string& out) {
  const auto method_name = bhttp::to_string(method);
  out.append(method_name.data(), method_name.size());
  out.push_back(' ');
  out.append(path_base);
  out.append(target);
  out.append(" HTTP/1.1\r\n");
  // As Beast's fields::set did: a name given twice keeps its last value, and
  // values lose surrounding spaces and tabs. Decided once per header (a
  // request carries a handful, so the quadratic look-ahead is cheap).
  constexpr std::size_t max_checked = 64;
  std::array<bool, max_checked> send_it{};
  const std::size_t count = std::min(headers.size(), max_checked);  // more are not sent
  bool has_host = false;
  bool has_user_agent = false;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& [name, value] = headers[i];
    bool sendable = !name.empty() && !frames_the_message(name) && safe_value(name) && safe_value(value);
    for (std::size_t later = i + 1; sendable && later < count; ++later) {
      if (text::iequals(headers[later].first, name) && safe_value(headers[later].second)) sendable = false;
    }
    send_it[i] = sendable;
    if (!sendable) continue;
    has_host = has_host || text::iequals(name, "host");
    has_user_agent = has_user_agent || text::iequals(name, "user-agent");
  }
  if (!has_host) {
    out.append("Host: ");
    out.append(host);
    out.append("\r\n");
  }
  if (!has_user_agent) {
    out.append("User-Agent: ");
    out.append(user_agent);
    out.append("\r\n");
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!send_it[i]) continue;
    out.append(headers[i].first);
    out.append(": ");
    out.append(text::trim(headers[i].second));
    out.append("\r\n");
  }
  // As Beast's prepare_payload: methods that carry a body state its length
  // even when it is empty; others only when there is one.
  if (body_size > 0 || method == bhttp::verb::post || method == bhttp::verb::put || method == bhttp::verb::options) {
    out.append("Content-Length: ");
    append_number(body_size, out);
    out.append("\r\n");
  }
  out.append("\r\n");
}

void append_chunk_size(std::size_t size, std::string& out) {
  append_number(size, out, 16);
  out.append("\r\n");
}

}  // namespace gatewayz::http::wire

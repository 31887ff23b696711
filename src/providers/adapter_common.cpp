#include "providers/adapter_common.hpp"

#include <algorithm>
#include <chrono>
#include <random>

namespace gatewayz::providers::detail {

std::optional<std::string_view> object_member(std::string_view text, const json_scan::object_scan& scan,
                                              std::string_view raw_key, json_scan::object_scan& out) {
  const json_scan::member* m = scan.find(raw_key);
  if (m == nullptr || m->kind != json_scan::value_kind::object) return std::nullopt;
  const std::string_view inner = value_text(text, *m);
  json_scan::scan_error error;
  // Cannot fail for a scan of valid text (the object is a validated part of
  // it); checked anyway so a misuse degrades to "absent" rather than garbage.
  if (!json_scan::scan_object(inner, out, error)) return std::nullopt;
  return inner;
}

std::optional<std::string> string_member(std::string_view text, const json_scan::object_scan& scan,
                                         std::string_view raw_key) {
  const json_scan::member* m = scan.find(raw_key);
  if (m == nullptr || m->kind != json_scan::value_kind::string) return std::nullopt;
  return json_scan::decode_string(value_text(text, *m));
}

std::optional<std::string_view> raw_string_member(std::string_view text, const json_scan::object_scan& scan,
                                                  std::string_view raw_key) {
  const json_scan::member* m = scan.find(raw_key);
  if (m == nullptr || m->kind != json_scan::value_kind::string) return std::nullopt;
  return value_text(text, *m);
}

std::optional<std::int64_t> int_member(std::string_view text, const json_scan::object_scan& scan,
                                       std::string_view raw_key) {
  const json_scan::member* m = scan.find(raw_key);
  if (m == nullptr || m->kind != json_scan::value_kind::number) return std::nullopt;
  return json_scan::to_int64(value_text(text, *m));
}

std::string_view string_content(std::string_view token, std::string& scratch) {
  if (token.size() < 2) return {};
  const std::string_view inner = token.substr(1, token.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner;
  scratch = json_scan::decode_string(token).value_or(std::string());
  return scratch;
}

std::string sanitized_excerpt(std::string_view body, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(body.size(), max_bytes));
  bool pending_space = false;
  for (const char ch : body) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
      continue;
    }
    const std::size_t needed = pending_space ? 2 : 1;
    if (out.size() + needed > max_bytes) break;
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 0x21 && c < 0x7F) ? ch : '?';
  }
  if (out.empty()) return "(empty response body)";
  return out;
}

std::string redact(std::string text, std::string_view secret) {
  if (secret.size() < 8) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "[redacted]");
    at += 10;
  }
  return text;
}

std::string upstream_error_message(std::string_view body, std::string_view secret) {
  json_scan::object_scan top;
  json_scan::scan_error scan_error;
  if (json_scan::scan_object(body, top, scan_error)) {
    json_scan::object_scan error_object;
    if (const auto inner = object_member(body, top, "error", error_object)) {
      if (auto message = string_member(*inner, error_object, "message"); message && !message->empty()) {
        return redact(std::move(*message), secret);
      }
    } else if (auto message = string_member(body, top, "error"); message && !message->empty()) {
      return redact(std::move(*message), secret);
    }
  }
  // Redact before cutting, so a key straddling the cut cannot leak its prefix.
  return sanitized_excerpt(redact(std::string(body.substr(0, 64 * 1024)), secret));
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

}  // namespace

std::vector<header> merge_headers(std::vector<header> defaults, const std::vector<header>& extra) {
  std::erase_if(defaults, [&](const header& d) {
    return std::any_of(extra.begin(), extra.end(), [&](const header& e) { return iequals(d.name, e.name); });
  });
  defaults.insert(defaults.end(), extra.begin(), extra.end());
  return defaults;
}

std::vector<header> configured_headers(const std::map<std::string, std::string>& headers) {
  std::vector<header> out;
  out.reserve(headers.size());
  for (const auto& [name, value] : headers) out.push_back({name, value});
  return out;
}

std::vector<header> request_headers(std::vector<header> credentials, const config::provider_config& provider,
                                    bool streaming) {
  credentials.push_back({"content-type", "application/json"});
  credentials.push_back({"accept", streaming ? "text/event-stream" : "application/json"});
  return merge_headers(std::move(credentials), configured_headers(provider.headers));
}

std::string_view upstream_model(const config::model_config& model) {
  return model.upstream.empty() ? std::string_view(model.id) : std::string_view(model.upstream);
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string make_id(std::string_view prefix) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += alphabet[pick(generator)];
  return id;
}

}  // namespace gatewayz::providers::detail

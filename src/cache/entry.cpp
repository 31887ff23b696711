// encode_entry / decode_entry (cache.hpp).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "cache/cache.hpp"

namespace gatewayz::cache {

namespace json = boost::json;

std::string_view to_string(lookup_status status) {
  switch (status) {
    case lookup_status::hit: return "hit";
    case lookup_status::miss: return "miss";
    case lookup_status::unavailable: return "unavailable";
  }
  return "miss";
}

std::string encode_entry(const cached_response& entry) {
  json::object header;
  header["v"] = 1;
  header["provider"] = entry.provider;
  header["input_tokens"] = entry.input_tokens;
  header["output_tokens"] = entry.output_tokens;
  header["cost_nanos"] = entry.cost_nanos;
  header["stored_unix_ms"] = entry.stored_unix_ms;
  if (entry.expires_unix_ms != 0) header["expires_unix_ms"] = entry.expires_unix_ms;
  std::string out = json::serialize(header);
  out.push_back('\n');
  out += entry.body;
  return out;
}

bool decode_entry(std::string_view bytes, cached_response& out) {
  const auto newline = bytes.find('\n');
  if (newline == std::string_view::npos) return false;
  std::error_code ec;
  const auto header = json::parse(json::string_view(bytes.data(), newline), ec);
  if (ec || !header.is_object()) return false;
  const auto& h = header.get_object();
  const auto* version = h.if_contains("v");
  const auto* provider = h.if_contains("provider");
  if (version == nullptr || !version->is_int64() || version->get_int64() != 1) return false;
  if (provider == nullptr || !provider->is_string()) return false;
  auto integer = [&](std::string_view name, std::int64_t& into) {
    const auto* v = h.if_contains(name);
    if (v == nullptr || !v->is_int64()) return false;
    into = v->get_int64();
    return true;
  };
  if (!integer("input_tokens", out.input_tokens) || !integer("output_tokens", out.output_tokens) ||
      !integer("cost_nanos", out.cost_nanos) || !integer("stored_unix_ms", out.stored_unix_ms)) {
    return false;
  }
  // Optional: entries written before it existed have none.
  out.expires_unix_ms = 0;
  if (h.if_contains("expires_unix_ms") != nullptr && !integer("expires_unix_ms", out.expires_unix_ms)) return false;
  out.provider = std::string(provider->get_string());
  out.body = std::string(bytes.substr(newline + 1));
  return !out.body.empty();
}

}  // namespace gatewayz::cache

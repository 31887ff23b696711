#include "cache/request_key.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>

namespace gatewayz::cache {

namespace json = boost::json;

namespace {

// Members of the request object that do not change the answer.
bool ignored_member(std::string_view name) { return name == "stream" || name == "stream_options" || name == "user"; }

void write_number(double d, std::string& out) {
  // Integral values within the exact range print as integers, so 1.0 and 1
  // are one spelling; the rest in the shortest form that reads back exactly.
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<std::int64_t>(d));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", d);
  }
}

void write_canonical(const json::value& v, std::string& out, bool top) {
  switch (v.kind()) {
    case json::kind::object: {
      const auto& obj = v.get_object();
      std::vector<const json::key_value_pair*> members;
      members.reserve(obj.size());
      for (const auto& member : obj) {
        if (top && ignored_member(member.key())) continue;
        members.push_back(&member);
      }
      std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      out.push_back('{');
      bool first = true;
      for (const auto* member : members) {
        if (!first) out.push_back(',');
        first = false;
        out += json::serialize(json::string_view(member->key()));
        out.push_back(':');
        write_canonical(member->value(), out, false);
      }
      out.push_back('}');
      break;
    }
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        write_canonical(item, out, false);
      }
      out.push_back(']');
      break;
    }
    case json::kind::string: out += json::serialize(v.get_string()); break;
    // Integers print exactly (as integral doubles do, within 2^53).
    case json::kind::int64: fmt::format_to(std::back_inserter(out), "{}", v.get_int64()); break;
    case json::kind::uint64: fmt::format_to(std::back_inserter(out), "{}", v.get_uint64()); break;
    case json::kind::double_: write_number(v.get_double(), out); break;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case json::kind::null: out += "null"; break;
  }
}

}  // namespace

bool normalize_request(std::string_view body, std::string& out) {
  // Parsed into a stack buffer first: most requests need no heap for the DOM.
  std::array<unsigned char, 4096> buffer;
  json::monotonic_resource memory(buffer.data(), buffer.size());
  json::parse_options options;
  options.max_depth = 64;
  std::error_code ec;
  const json::value doc = json::parse(json::string_view(body.data(), body.size()), ec, &memory, options);
  if (ec || !doc.is_object()) return false;
  out.clear();
  out.reserve(body.size());
  write_canonical(doc, out, true);
  return true;
}

std::optional<std::string> request_key(std::string_view scope, std::string_view operation, std::string_view body) {
  // Lengths first, so no two (scope, operation) pairs run into each other.
  std::string input = fmt::format("gatewayz-cache-v1 {} {} {}{}", scope.size(), operation.size(), scope, operation);
  std::string normal;
  if (!normalize_request(body, normal)) return std::nullopt;
  input += normal;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) return std::nullopt;
  static constexpr char hex[] = "0123456789abcdef";
  std::string key(std::size_t{length} * 2, '0');
  for (std::size_t i = 0; i < length; ++i) {
    key[2 * i] = hex[digest[i] >> 4];
    key[2 * i + 1] = hex[digest[i] & 15];
  }
  return key;
}

}  // namespace gatewayz::cache

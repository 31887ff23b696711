#pragma once
// Helpers shared by the provider adapters (internal to src/providers).
//
// Why a separate header: both adapters need the same small pieces — reading
// members out of json_scan results, turning an upstream error body into a
// message that is safe for the client, building header lists — and keeping
// one copy keeps their behaviour identical.
//
// Thread safety: stateless free functions, except make_id(), which uses a
// thread-local PRNG.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/json_scan.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers::detail {

// Upstream error excerpts are capped so a huge HTML error page cannot end up
// in a client message or a log line.
inline constexpr std::size_t max_excerpt_bytes = 200;

// The value text of `m` inside `text` (strings include their quotes).
inline std::string_view value_text(std::string_view text, const json_scan::member& m) {
  return text.substr(m.value_span.begin, m.value_span.size());
}

// If `raw_key` is a member of `scan` whose value is an object, scans that
// object into `out` and returns its text (spans in `out` are relative to it).
std::optional<std::string_view> object_member(std::string_view text, const json_scan::object_scan& scan,
                                              std::string_view raw_key, json_scan::object_scan& out);

// The decoded string value of member `raw_key`, or nullopt when absent or not a string.
std::optional<std::string> string_member(std::string_view text, const json_scan::object_scan& scan,
                                         std::string_view raw_key);

// The raw JSON string token (with quotes, escapes intact) of member `raw_key`,
// or nullopt when absent or not a string. Lets translators copy strings
// between JSON documents without decoding and re-encoding them.
std::optional<std::string_view> raw_string_member(std::string_view text, const json_scan::object_scan& scan,
                                                  std::string_view raw_key);

// The integer value of member `raw_key`, or nullopt when absent, not a number
// or not an integer that fits in int64.
std::optional<std::int64_t> int_member(std::string_view text, const json_scan::object_scan& scan,
                                       std::string_view raw_key);

// The content of a JSON string token. Tokens without escapes (the usual case
// for type names) are returned as a view into `token` without allocating;
// otherwise the decoded text is stored in `scratch` and a view of it returned.
std::string_view string_content(std::string_view token, std::string& scratch);

// Printable ASCII only (other bytes become '?', whitespace runs one space),
// trimmed, at most `max_bytes`. For bodies we cannot interpret (HTML error
// pages, truncated JSON): enough to diagnose, nothing that breaks a log line.
std::string sanitized_excerpt(std::string_view body, std::size_t max_bytes = max_excerpt_bytes);

// Replaces every occurrence of `secret` in `text` with "[redacted]". Upstreams
// sometimes echo the credential they rejected; it must never reach a client.
// Secrets shorter than 8 bytes are not real API keys and are left alone
// (redacting them would mangle ordinary words).
std::string redact(std::string text, std::string_view secret);

// The message of an upstream error body: `error.message` when `error` is an
// object (OpenAI's and Anthropic's shapes), `error` itself when it is a
// string, otherwise a sanitised excerpt. `secret` is redacted from the result.
std::string upstream_error_message(std::string_view body, std::string_view secret);

// The adapter's default headers followed by the provider's configured extra
// headers; a configured header replaces a default of the same name
// (case-insensitive), so operators can override e.g. `accept`.
std::vector<header> merge_headers(std::vector<header> defaults, const std::vector<header>& extra);

// The provider's configured headers as a list (built once per adapter).
std::vector<header> configured_headers(const std::map<std::string, std::string>& headers);

// An adapter's upstream headers, built once per adapter and kind of answer:
// `credentials` (the provider's own auth and version headers), a JSON
// content type, an `accept` for JSON or (streaming) an event stream, then
// the provider's configured headers, which replace defaults of the same name.
std::vector<header> request_headers(std::vector<header> credentials, const config::provider_config& provider,
                                    bool streaming);

// A token count as reported upstream, made safe to add and to bill: a
// negative count (which would credit the customer) is 0, and a count beyond
// 2^40 (more tokens than any context holds) is capped there, so sums of a
// few counts cannot overflow int64.
inline constexpr std::int64_t max_token_count = std::int64_t{1} << 40;
inline std::int64_t token_count(std::int64_t reported) {
  return reported < 0 ? 0 : (reported > max_token_count ? max_token_count : reported);
}

// The model name sent upstream: `upstream`, or `id` when upstream is empty.
std::string_view upstream_model(const config::model_config& model);

// Current time in unix seconds (OpenAI's `created`).
std::int64_t unix_now();

// `prefix` followed by 24 random alphanumerics; for responses whose upstream
// did not give us an id to derive one from.
std::string make_id(std::string_view prefix);

}  // namespace gatewayz::providers::detail

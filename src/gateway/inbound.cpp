#include "gateway/inbound.hpp"

#include <string>

#include <fmt/format.h>

namespace gatewayz::gateway {

namespace {

using providers::operation;

// Is the request's `stream_options.include_usage` true?
bool wants_usage(std::string_view body, const json_scan::object_scan& scan) {
  const auto* options = scan.find("stream_options");
  if (!options || options->kind != json_scan::value_kind::object) return false;
  json_scan::object_scan inner;
  json_scan::scan_error error;
  const auto text = body.substr(options->value_span.begin, options->value_span.size());
  if (!json_scan::scan_object(text, inner, error)) return false;
  const auto* include = inner.find("include_usage");
  return include && include->kind == json_scan::value_kind::boolean_true;
}

// The members the gateway acts on must mean the same to the provider. JSON
// parsers disagree on repeated names (first or last wins), and a name spelled
// with escapes ("mod\u0065l") is "model" to the provider but not to a raw-key
// lookup, so either would let the provider read another model (or usage
// setting) than the one the gateway routed and accounted for. Returns such a
// member when it occurs twice or is spelled with escapes.
template <std::size_t N>
std::optional<std::string_view> ambiguous_among(std::string_view text, const json_scan::object_scan& scan,
                                                const std::string_view (&interpreted)[N]) {
  unsigned counts[N] = {};
  for (const auto& m : scan.members) {
    const bool escaped = m.key.find('\\') != std::string_view::npos;
    std::optional<std::string> decoded;
    if (escaped) decoded = json_scan::decode_string(text.substr(m.key_span.begin, m.key_span.size()));
    const std::string_view name = decoded ? std::string_view(*decoded) : m.key;
    for (std::size_t i = 0; i < N; ++i) {
      if (name == interpreted[i] && (escaped || ++counts[i] > 1)) return interpreted[i];
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> ambiguous_member(std::string_view body, const json_scan::object_scan& scan) {
  static constexpr std::string_view top[] = {"model", "stream", "stream_options"};
  if (auto name = ambiguous_among(body, scan, top)) return name;
  // include_usage decides whether the gateway learns the stream's token usage.
  const auto* options = scan.find("stream_options");
  if (!options || options->kind != json_scan::value_kind::object) return std::nullopt;
  const auto text = body.substr(options->value_span.begin, options->value_span.size());
  json_scan::object_scan inner;
  json_scan::scan_error ignored;
  static constexpr std::string_view nested[] = {"include_usage"};
  if (json_scan::scan_object(text, inner, ignored) && ambiguous_among(text, inner, nested)) {
    return "stream_options.include_usage";
  }
  return std::nullopt;
}

}  // namespace

// Synchronous: no I/O happens before the request is known to be well-formed.
std::optional<api_error> parse_inbound(std::string_view body, operation op, json_scan::object_scan& scan,
                                       providers::inbound_request& request) {
  using vk = json_scan::value_kind;
  json_scan::scan_error scan_error;
  if (!json_scan::scan_object(body, scan, scan_error)) {
    return api_error::invalid_json(fmt::format("{} (at byte {})", scan_error.message, scan_error.offset));
  }
  if (const auto name = ambiguous_member(body, scan)) {
    return api_error::bad_request(
        fmt::format("'{}' must appear once in the request body, spelled without escapes", *name), "duplicate_member");
  }
  request.op = op;
  request.body = body;
  request.scan = &scan;

  const auto* model = scan.find("model");
  std::optional<std::string> decoded;
  if (model && model->kind == vk::string) {
    decoded = json_scan::decode_string(body.substr(model->value_span.begin, model->value_span.size()));
  }
  if (!decoded || decoded->empty()) {
    return api_error::bad_request("you must provide a model parameter", "missing_model");
  }
  request.model = std::move(*decoded);

  std::string_view required;
  bool kind_ok = false;
  std::string_view expected;
  const auto* member = static_cast<const json_scan::member*>(nullptr);
  switch (op) {
    case operation::chat_completions:
      required = "messages";
      expected = "an array";
      member = scan.find(required);
      kind_ok = member && member->kind == vk::array;
      break;
    case operation::completions:
    case operation::embeddings:
      required = op == operation::completions ? "prompt" : "input";
      expected = "a string or an array";
      member = scan.find(required);
      kind_ok = member && (member->kind == vk::string || member->kind == vk::array);
      break;
  }
  if (!member) {
    return api_error::bad_request(fmt::format("'{}' is a required property", required),
                                  fmt::format("missing_{}", required));
  }
  if (!kind_ok) {
    return api_error::bad_request(fmt::format("'{}' must be {}", required, expected),
                                  fmt::format("invalid_{}", required));
  }

  if (const auto* stream = scan.find("stream")) {
    if (stream->kind == vk::boolean_true) {
      request.stream = true;
    } else if (stream->kind != vk::boolean_false && stream->kind != vk::null) {
      return api_error::bad_request("'stream' must be a boolean", "invalid_stream");
    }
  }
  if (request.stream && op == operation::embeddings) {
    return api_error::bad_request("embeddings cannot be streamed", "invalid_stream");
  }
  request.client_wants_usage = request.stream && wants_usage(body, scan);
  return std::nullopt;
}

}  // namespace gatewayz::gateway

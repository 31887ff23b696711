#include "providers/openai_adapter.hpp"

#include <utility>

#include "core/json_scan.hpp"
#include "providers/adapter_common.hpp"

namespace gatewayz::providers {

namespace {

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// The edit that makes `stream_options.include_usage` true, or nullopt when the
// client already asked for it. An existing stream_options object is edited in
// place (a splice inside it, shifted to body offsets) so its other members
// keep their exact bytes; anything else there (null, say) is replaced.
std::optional<json_scan::edit> include_usage_edit(std::string_view body, const json_scan::object_scan& scan) {
  const json_scan::member* options = scan.find("stream_options");
  if (options != nullptr && options->kind == json_scan::value_kind::object) {
    const std::string_view inner = detail::value_text(body, *options);
    json_scan::object_scan inner_scan;
    json_scan::scan_error ignored;
    if (json_scan::scan_object(inner, inner_scan, ignored)) {
      const json_scan::member* current = inner_scan.find("include_usage");
      if (current != nullptr && current->kind == json_scan::value_kind::boolean_true) return std::nullopt;
      json_scan::edit e = json_scan::set_member(inner, inner_scan, "include_usage", "true");
      e.at.begin += options->value_span.begin;
      e.at.end += options->value_span.begin;
      return e;
    }
  }
  return json_scan::set_member(body, scan, "stream_options", R"({"include_usage":true})");
}

// Reads OpenAI's usage object ({"prompt_tokens":..,"completion_tokens":..}).
// Embeddings report prompt_tokens only, which leaves output at 0.
bool read_usage(std::string_view text, const json_scan::object_scan& scan, json_scan::object_scan& scratch,
                token_usage& usage) {
  const auto inner = detail::object_member(text, scan, "usage", scratch);
  if (!inner) return false;
  const auto prompt = detail::int_member(*inner, scratch, "prompt_tokens");
  const auto completion = detail::int_member(*inner, scratch, "completion_tokens");
  if (!prompt && !completion) return false;
  usage.input_tokens = detail::token_count(prompt.value_or(0));
  usage.output_tokens = detail::token_count(completion.value_or(0));
  usage.reported = true;
  return true;
}

// Passes the provider's chunks through byte for byte. It only looks inside a
// chunk to record usage, to notice `[DONE]` and errors, and to drop the
// usage-only chunk that exists just because the gateway asked for it.
class openai_stream_translator final : public stream_translator {
 public:
  openai_stream_translator(bool client_wants_usage, std::string api_key)
      : client_wants_usage_(client_wants_usage), api_key_(std::move(api_key)) {}

  bool on_event(const http::sse_event& event, std::string& out) override {
    const std::string_view data = trim(event.data);
    if (data.empty()) {
      // No payload (e.g. a keep-alive `event: ping`): nothing to interpret.
      out.append(event.raw);
      return true;
    }
    if (data == "[DONE]") {
      done_ = true;
      out.append(event.raw);
      return true;
    }
    json_scan::scan_error scan_error;
    if (!json_scan::scan_object(data, chunk_, scan_error)) return false;

    if (const json_scan::member* error = chunk_.find("error");
        error != nullptr && error->kind != json_scan::value_kind::null) {
      stream_error_ = detail::upstream_error_message(data, api_key_);
      out.append(event.raw);
      return true;
    }

    const bool has_usage = read_usage(data, chunk_, usage_scan_, usage_);
    if (has_usage && !client_wants_usage_ && choices_empty(data)) return true;  // ours, not the client's
    out.append(event.raw);
    return true;
  }

  bool done() const override { return done_; }
  token_usage usage() const override { return usage_; }
  std::string_view stream_error() const override { return stream_error_; }

 private:
  // True for a missing, null or empty `choices` array: the usage-only chunk.
  bool choices_empty(std::string_view data) const {
    const json_scan::member* choices = chunk_.find("choices");
    if (choices == nullptr || choices->kind == json_scan::value_kind::null) return true;
    if (choices->kind != json_scan::value_kind::array) return false;
    return trim(detail::value_text(data, *choices).substr(1, choices->value_span.size() - 2)).empty();
  }

  bool client_wants_usage_;
  std::string api_key_;
  bool done_ = false;
  token_usage usage_;
  std::string stream_error_;
  // Reused for every chunk so steady-state scanning does not allocate.
  json_scan::object_scan chunk_;
  json_scan::object_scan usage_scan_;
};

std::vector<header> openai_headers(const config::provider_config& provider, bool streaming) {
  std::vector<header> credentials;
  if (!provider.api_key.empty()) credentials.push_back({"authorization", "Bearer " + provider.api_key});
  return detail::request_headers(std::move(credentials), provider, streaming);
}

}  // namespace

openai_adapter::openai_adapter(const config::provider_config& provider)
    : api_key_(provider.api_key),
      json_headers_(openai_headers(provider, false)),
      stream_headers_(openai_headers(provider, true)) {}

bool openai_adapter::supports(operation) const { return true; }

bool openai_adapter::build_request(const inbound_request& request, const config::model_config& model,
                                   upstream_request& out, std::string& error) const {
  switch (request.op) {
    case operation::chat_completions: out.path = "/chat/completions"; break;
    case operation::completions: out.path = "/completions"; break;
    case operation::embeddings: out.path = "/embeddings"; break;
  }
  const bool streaming = request.stream && request.op != operation::embeddings;

  out.headers = streaming ? stream_headers_ : json_headers_;

  json_scan::object_scan local_scan;
  const json_scan::object_scan* scan = request.scan;
  if (scan == nullptr) {
    json_scan::scan_error scan_error;
    if (!json_scan::scan_object(request.body, local_scan, scan_error)) {
      error = "The request body is not a JSON object: " + scan_error.message;
      return false;
    }
    scan = &local_scan;
  }

  std::vector<json_scan::edit> edits;
  const std::string_view upstream = detail::upstream_model(model);
  if (upstream != request.model) {
    edits.push_back(json_scan::set_member(request.body, *scan, "model", json_scan::encode_string(upstream)));
  }
  if (streaming) {
    if (auto e = include_usage_edit(request.body, *scan)) edits.push_back(std::move(*e));
  }
  out.forwards_inbound = edits.empty();
  if (out.forwards_inbound) {
    out.inbound_body = request.body;
  } else {
    out.body = json_scan::splice(request.body, std::move(edits));
  }
  return true;
}

bool openai_adapter::translate_response(const inbound_request&, std::string& body, token_usage& usage,
                                        response_summary* summary, std::string& error) const {
  json_scan::object_scan scan;
  json_scan::scan_error scan_error;
  if (!json_scan::scan_object(body, scan, scan_error)) {
    error = "The provider returned a response that is not a JSON object: " + scan_error.message;
    return false;
  }
  json_scan::object_scan usage_scan;
  usage = token_usage{};
  read_usage(body, scan, usage_scan, usage);
  if (summary != nullptr) summarize_openai_json(body, scan, *summary);
  return true;
}

std::string openai_adapter::error_message(std::string_view upstream_body) const {
  return detail::upstream_error_message(upstream_body, api_key_);
}

std::unique_ptr<stream_translator> openai_adapter::make_stream_translator(const inbound_request& request) const {
  return std::make_unique<openai_stream_translator>(request.client_wants_usage, api_key_);
}

}  // namespace gatewayz::providers

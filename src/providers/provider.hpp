#pragma once
// Provider adapters: the only code that knows a provider's wire format.
//
// An adapter is pure translation (no I/O): it turns what the client sent into
// the HTTP request for the provider, and the provider's answer (whole body or
// SSE events) into what the client gets back in OpenAI's format, extracting
// token usage on the way. Transport (pools, TLS, timeouts) lives in http/, and
// the request flow (routing, failover, accounting) in gateway/.
//
// Adapters are immutable after construction and shared by all threads.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "core/json_scan.hpp"
#include "http/sse.hpp"

namespace gatewayz::providers {

enum class operation : std::uint8_t { chat_completions, completions, embeddings };

// "chat", "text_completion", "embeddings" (OpenTelemetry gen_ai.operation.name).
std::string_view operation_name(operation op);

struct token_usage {
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  bool reported = false;  // the provider told us (otherwise counts are 0)
};

// What an answer in OpenAI's shape says about itself (gen_ai.response.*):
// read only for traced attempts, so untraced requests pay nothing.
struct response_summary {
  std::string id;                           // "id", e.g. chatcmpl-123
  std::string model;                        // "model": the model that answered
  std::vector<std::string> finish_reasons;  // one per choice that has one
};

// Adds what `body`, an OpenAI-shaped JSON object (a response, or one stream
// chunk), says to `out`: id and model when `out` has none yet, and each
// non-null choices[].finish_reason. Malformed input adds nothing.
void summarize_openai_json(std::string_view body, response_summary& out);
// The same for a body whose top-level members `scan` already holds (an
// adapter's own scan: the body is not scanned twice).
void summarize_openai_json(std::string_view body, const json_scan::object_scan& scan, response_summary& out);
// The same for every `data: {...}` event in a piece of OpenAI SSE output.
void summarize_openai_sse(std::string_view events, response_summary& out);

// What the gateway extracted from the client's request body (already validated).
struct inbound_request {
  operation op = operation::chat_completions;
  std::string_view body;               // the client's JSON, verbatim
  const json_scan::object_scan* scan;  // top-level members of body
  std::string model;                   // decoded "model"
  bool stream = false;                 // "stream": true
  bool client_wants_usage = false;     // "stream_options":{"include_usage":true}
};

struct header {
  std::string name;
  std::string value;
};

// The request to send upstream. `path` is appended to the provider's base_url
// path (e.g. base ".../api/v1" + "/chat/completions").
// `path` and `headers` are the adapter's own constants (they depend only on
// the provider and on whether the answer is streamed), so building a request
// copies none of them; they live as long as the adapter.
struct upstream_request {
  std::string_view path;
  std::span<const header> headers;  // auth and content headers; host is added by transport
  // What to send: `body` when the adapter wrote one, else (forwards_inbound)
  // the inbound body itself, unchanged and not copied; it lives as long as
  // the request.
  std::string body;
  std::string_view inbound_body;
  bool forwards_inbound = false;
  std::string_view payload() const { return forwards_inbound ? inbound_body : std::string_view(body); }
};

// Translates one upstream event stream into OpenAI chat.completion.chunk SSE.
class stream_translator {
 public:
  virtual ~stream_translator() = default;

  // Handles one upstream SSE event and appends the bytes for the client to
  // `out` (possibly none). Returns false if the event is malformed.
  virtual bool on_event(const http::sse_event& event, std::string& out) = 0;

  // True once the upstream signalled the end of the stream ([DONE] or message_stop).
  virtual bool done() const = 0;

  // Usage seen so far (final once done()).
  virtual token_usage usage() const = 0;

  // An error the upstream reported inside the stream (e.g. Anthropic's `error`
  // event); empty if none. on_event() has already written it to the client in
  // the shape OpenAI-compatible providers use mid-stream
  // (`data: {"error":{"message":...}}`), so the caller should end the stream
  // rather than write another error event.
  virtual std::string_view stream_error() const = 0;
};

class provider_adapter {
 public:
  virtual ~provider_adapter() = default;

  virtual bool supports(operation op) const = 0;

  // Builds the upstream request. On failure returns false and sets `error`
  // (a message safe for the client: the request cannot be expressed for this
  // provider).
  virtual bool build_request(const inbound_request& request, const config::model_config& model, upstream_request& out,
                             std::string& error) const = 0;

  // Turns a successful (2xx) non-streaming upstream body into the client's body
  // and extracts usage, and, when `summary` is not null (a traced attempt),
  // what the answer says about itself, as summarize_openai_json would from
  // the client's body. On a malformed body returns false and sets `error`.
  virtual bool translate_response(const inbound_request& request, std::string& body, token_usage& usage,
                                  response_summary* summary, std::string& error) const = 0;

  // Extracts a human-readable message from an upstream error body (falls back
  // to a truncated, sanitised excerpt).
  virtual std::string error_message(std::string_view upstream_body) const = 0;

  virtual std::unique_ptr<stream_translator> make_stream_translator(const inbound_request& request) const = 0;
};

// Builds the adapter for a provider's `kind`.
std::unique_ptr<provider_adapter> make_adapter(const config::provider_config& provider);

}  // namespace gatewayz::providers

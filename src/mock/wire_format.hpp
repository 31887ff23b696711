#pragma once
// The mock provider's wire formats: request validation and the exact JSON and
// SSE shapes of OpenAI's and Anthropic's APIs.
//
// Kept apart from the serving code so the byte layouts live in one place and
// every function here is synchronous and free of I/O (easy to reason about
// and cheap to call from the handler coroutines).
//
// Thread safety: stateless free functions, except make_id(), which uses a
// thread-local PRNG.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mock/mock_provider.hpp"

namespace gatewayz::mock::wire {

// Generated output is capped so a request with an absurd max_tokens cannot
// make the mock allocate without bound.
inline constexpr int max_generated_tokens = 65536;
inline constexpr int default_embedding_dimensions = 8;
inline constexpr int max_embedding_dimensions = 8192;

enum class api_format : std::uint8_t { openai, anthropic };

// A validated chat / completion / message request, reduced to what the mock needs.
struct generation_request {
  std::string model;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage (OpenAI)
  std::optional<int> max_tokens;  // max_tokens / max_completion_tokens
  int prompt_tokens = 1;          // whitespace-separated words of the prompt, at least 1
};

struct embedding_request {
  std::string model;
  std::vector<std::string> inputs;  // one canonical text per input (hashed into its vector)
  int prompt_tokens = 1;
  int dimensions = default_embedding_dimensions;
  bool base64 = false;  // encoding_format "base64"
};

// Each parser returns false with a client-facing message (answered with 400)
// when the body is not what the real API accepts.
bool parse_chat(std::string_view body, generation_request& out, std::string& error);
bool parse_completion(std::string_view body, generation_request& out, std::string& error);
bool parse_messages(std::string_view body, generation_request& out, std::string& error);
bool parse_embeddings(std::string_view body, embedding_request& out, std::string& error);

// Number of whitespace-separated words.
int count_words(std::string_view text);

// Unique-enough response id, e.g. "chatcmpl-" + 24 random alphanumerics.
std::string make_id(std::string_view prefix);

// The i-th generated token as it appears in the text: "tok0", " tok1", " tok2", ...
// so that the concatenation of all tokens is "tok0 tok1 tok2".
std::string token_text(int index);
std::string generated_text(int count);

// Error bodies.
//   OpenAI:    {"error":{"message":...,"type":...,"param":null,"code":...}}
//   Anthropic: {"type":"error","error":{"type":...,"message":...}}
// The error type follows from the status the way each provider maps it.
std::string error_body(api_format format, int status, std::string_view message);

// Complete (non-streaming) response bodies.
struct completion_facts {
  std::string_view id;
  std::int64_t created = 0;
  std::string_view model;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  bool hit_max_tokens = false;  // finish_reason "length" / stop_reason "max_tokens"
};
std::string chat_completion_body(const completion_facts& facts);
std::string text_completion_body(const completion_facts& facts);
std::string message_body(const completion_facts& facts);
std::string embeddings_body(const embedding_request& request);
std::string models_body(const std::vector<std::string>& models, std::int64_t created);
std::string model_body(std::string_view model, std::int64_t created);

// Deterministic unit-length vector derived from a hash of `input`.
std::vector<float> embedding_vector(std::string_view input, int dimensions);

// OpenAI SSE events ("data: {...}\n\n") for chat.completion.chunk and the
// streamed text_completion. The JSON prefix with id, model and timestamps is
// built once per stream.
class openai_stream {
 public:
  enum class kind : std::uint8_t { chat, completion };
  openai_stream(kind k, std::string_view id, std::int64_t created, std::string_view model, bool include_usage);

  std::string role_event() const;  // chat only: the first chunk, delta {"role":"assistant","content":""}
  std::string token_event(int index) const;
  std::string finish_event(bool hit_max_tokens) const;
  std::string usage_event(int prompt_tokens, int completion_tokens) const;  // choices: []
  static std::string_view done_event() { return "data: [DONE]\n\n"; }

 private:
  std::string choice_event(std::string_view choice_json) const;

  kind kind_;
  bool include_usage_;
  std::string prefix_;  // {"id":...,"object":...,"created":...,"model":...,"system_fingerprint":...,"choices":[
};

// Anthropic SSE events ("event: name\ndata: {...}\n\n") of a streamed message.
class anthropic_stream {
 public:
  anthropic_stream(std::string_view id, std::string_view model, int input_tokens);

  std::string message_start() const;
  static std::string content_block_start();
  static std::string ping();
  static std::string content_block_delta(int index);
  static std::string content_block_stop();
  static std::string message_delta(bool hit_max_tokens, int output_tokens);
  static std::string message_stop();

 private:
  std::string id_json_;
  std::string model_json_;
  int input_tokens_;
};

// Control API bodies. behaviour_from_json merges the members present in
// `body` into `inout` (absent members keep their values); unknown members and
// out-of-range values are errors so a typo does not silently do nothing.
std::string behaviour_to_json(const behaviour& b);
bool behaviour_from_json(std::string_view body, behaviour& inout, std::string& error);
std::string stats_to_json(const mock_stats& s);
std::string requests_to_json(const std::vector<recorded_request>& requests);

}  // namespace gatewayz::mock::wire

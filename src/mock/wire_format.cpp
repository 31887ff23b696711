#include "mock/wire_format.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <iterator>
#include <random>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gatewayz::mock::wire {

namespace json = boost::json;

namespace {

std::string quote(std::string_view text) { return json::serialize(json::string_view(text)); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Parses `body` as a JSON object. On failure fills `error` with the
// provider-neutral reason; the caller wraps it in the provider's wording.
bool parse_object(std::string_view body, json::value& out, std::string& error) {
  boost::system::error_code ec;
  out = json::parse(json::string_view(body), ec);
  if (ec) {
    error = fmt::format("We could not parse the JSON body of your request: {}", ec.message());
    return false;
  }
  if (!out.is_object()) {
    error = "The request body must be a JSON object.";
    return false;
  }
  return true;
}

// Optional boolean member: absent and null mean false.
bool get_bool(const json::object& obj, std::string_view key, bool& out, std::string& error) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_bool()) {
    error = fmt::format("Invalid type for '{}': expected a boolean.", key);
    return false;
  }
  out = v->get_bool();
  return true;
}

// Optional positive integer member (absent or null leave `out` empty).
bool get_positive_int(const json::object& obj, std::string_view key, std::optional<int>& out, std::string& error) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64()) {
    n = v->get_uint64() > static_cast<std::uint64_t>(INT32_MAX) ? INT32_MAX
                                                                : static_cast<std::int64_t>(v->get_uint64());
  } else {
    error = fmt::format("Invalid type for '{}': expected an integer.", key);
    return false;
  }
  if (n < 1) {
    error =
        fmt::format("Invalid '{}': integer below minimum value. Expected a value >= 1, but got {} instead.", key, n);
    return false;
  }
  out = static_cast<int>(std::min<std::int64_t>(n, INT32_MAX));
  return true;
}

bool get_model(const json::object& obj, std::string& out, std::string& error) {
  const json::value* v = obj.if_contains("model");
  if (v == nullptr || v->is_null()) {
    error = "You must provide a model parameter.";
    return false;
  }
  if (!v->is_string() || v->get_string().empty()) {
    error = "Invalid 'model': expected a non-empty string.";
    return false;
  }
  out = std::string(v->get_string());
  return true;
}

// Words of a message `content`: a string, or an array of parts whose "text"
// members count (OpenAI text parts, Anthropic text blocks).
int content_words(const json::value& content) {
  if (content.is_string()) return count_words(content.get_string());
  int words = 0;
  if (const json::array* parts = content.if_array()) {
    for (const json::value& part : *parts) {
      if (const json::object* p = part.if_object()) {
        if (const json::value* text = p->if_contains("text"); text != nullptr && text->is_string()) {
          words += count_words(text->get_string());
        }
      }
    }
  }
  return words;
}

// Shared by OpenAI chat and Anthropic messages: a non-empty array of objects
// with a string role. Returns the total word count of their contents.
bool get_messages(const json::object& obj, int& words, std::string& error, std::string_view missing_message) {
  const json::value* v = obj.if_contains("messages");
  if (v == nullptr || v->is_null()) {
    error = std::string(missing_message);
    return false;
  }
  const json::array* messages = v->if_array();
  if (messages == nullptr) {
    error = "Invalid type for 'messages': expected an array of objects.";
    return false;
  }
  if (messages->empty()) {
    error = "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.";
    return false;
  }
  words = 0;
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const json::object* m = (*messages)[i].if_object();
    const json::value* role = m == nullptr ? nullptr : m->if_contains("role");
    if (role == nullptr || !role->is_string()) {
      error = fmt::format("Invalid 'messages[{}]': expected an object with a string 'role'.", i);
      return false;
    }
    if (const json::value* content = m->if_contains("content")) words += content_words(*content);
  }
  return true;
}

bool get_stream(const json::object& obj, generation_request& out, std::string& error) {
  if (!get_bool(obj, "stream", out.stream, error)) return false;
  const json::value* opts = obj.if_contains("stream_options");
  if (opts == nullptr || opts->is_null()) return true;
  if (!out.stream) {
    error = "The 'stream_options' parameter is only allowed when 'stream' is enabled.";
    return false;
  }
  if (!opts->is_object()) {
    error = "Invalid type for 'stream_options': expected an object.";
    return false;
  }
  return get_bool(opts->get_object(), "include_usage", out.include_usage, error);
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

// Base64 of the vector's little-endian float32 bytes: what OpenAI returns for
// encoding_format "base64" (the default of its official Python SDK).
std::string base64_floats(const std::vector<float>& values) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  bytes.reserve(values.size() * 4);
  for (float f : values) {
    auto bits = std::bit_cast<std::uint32_t>(f);
    for (unsigned shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>((bits >> shift) & 0xffU));
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t chunk = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16U;
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    if (n > 1) chunk |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8U;
    if (n > 2) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(alphabet[(chunk >> 18U) & 63U]);
    out.push_back(alphabet[(chunk >> 12U) & 63U]);
    out.push_back(n > 1 ? alphabet[(chunk >> 6U) & 63U] : '=');
    out.push_back(n > 2 ? alphabet[chunk & 63U] : '=');
  }
  return out;
}

json::object usage_object(const completion_facts& f) {
  return {{"prompt_tokens", f.prompt_tokens},
          {"completion_tokens", f.completion_tokens},
          {"total_tokens", f.prompt_tokens + f.completion_tokens}};
}

std::string_view openai_finish(bool hit_max_tokens) { return hit_max_tokens ? "length" : "stop"; }
std::string_view anthropic_stop(bool hit_max_tokens) { return hit_max_tokens ? "max_tokens" : "end_turn"; }

constexpr std::string_view system_fingerprint = "fp_gatewayz_mock";

}  // namespace

int count_words(std::string_view text) {
  int words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = is_space(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

bool parse_chat(std::string_view body, generation_request& out, std::string& error) {
  json::value doc;
  if (!parse_object(body, doc, error)) return false;
  const json::object& obj = doc.get_object();
  if (!get_model(obj, out.model, error)) return false;
  int words = 0;
  if (!get_messages(obj, words, error, "Missing required parameter: 'messages'.")) return false;
  out.prompt_tokens = std::max(1, words);
  if (!get_stream(obj, out, error)) return false;
  std::optional<int> max_tokens;
  std::optional<int> max_completion_tokens;
  if (!get_positive_int(obj, "max_tokens", max_tokens, error)) return false;
  if (!get_positive_int(obj, "max_completion_tokens", max_completion_tokens, error)) return false;
  // max_completion_tokens is the newer name; it wins when a client sends both.
  out.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  return true;
}

bool parse_completion(std::string_view body, generation_request& out, std::string& error) {
  json::value doc;
  if (!parse_object(body, doc, error)) return false;
  const json::object& obj = doc.get_object();
  if (!get_model(obj, out.model, error)) return false;
  const json::value* prompt = obj.if_contains("prompt");
  if (prompt == nullptr || prompt->is_null()) {
    error = "Missing required parameter: 'prompt'.";
    return false;
  }
  int words = 0;
  if (prompt->is_string()) {
    words = count_words(prompt->get_string());
  } else if (const json::array* items = prompt->if_array()) {
    // An array of strings, of token ids, or of token-id arrays.
    for (const json::value& item : *items) {
      if (item.is_string()) {
        words += count_words(item.get_string());
      } else if (item.is_number()) {
        ++words;
      } else if (item.is_array()) {
        words += static_cast<int>(item.get_array().size());
      } else {
        error = "Invalid type for 'prompt': expected a string, an array of strings or an array of tokens.";
        return false;
      }
    }
  } else {
    error = "Invalid type for 'prompt': expected a string, an array of strings or an array of tokens.";
    return false;
  }
  out.prompt_tokens = std::max(1, words);
  if (!get_stream(obj, out, error)) return false;
  return get_positive_int(obj, "max_tokens", out.max_tokens, error);
}

bool parse_messages(std::string_view body, generation_request& out, std::string& error) {
  json::value doc;
  if (!parse_object(body, doc, error)) return false;
  const json::object& obj = doc.get_object();
  // Anthropic words its validation errors as "<field>: <problem>".
  const json::value* model = obj.if_contains("model");
  if (model == nullptr || model->is_null()) {
    error = "model: Field required";
    return false;
  }
  if (!model->is_string() || model->get_string().empty()) {
    error = "model: Input should be a valid string";
    return false;
  }
  out.model = std::string(model->get_string());
  if (obj.if_contains("max_tokens") == nullptr) {
    error = "max_tokens: Field required";
    return false;
  }
  if (!get_positive_int(obj, "max_tokens", out.max_tokens, error)) return false;
  if (!out.max_tokens) {
    error = "max_tokens: Input should be a valid integer";
    return false;
  }
  int words = 0;
  if (!get_messages(obj, words, error, "messages: Field required")) return false;
  if (const json::value* system = obj.if_contains("system")) words += content_words(*system);
  out.prompt_tokens = std::max(1, words);
  return get_bool(obj, "stream", out.stream, error);
}

bool parse_embeddings(std::string_view body, embedding_request& out, std::string& error) {
  json::value doc;
  if (!parse_object(body, doc, error)) return false;
  const json::object& obj = doc.get_object();
  if (!get_model(obj, out.model, error)) return false;
  const json::value* input = obj.if_contains("input");
  if (input == nullptr || input->is_null()) {
    error = "Missing required parameter: 'input'.";
    return false;
  }
  constexpr std::string_view bad_input =
      "Invalid 'input': expected a non-empty string, an array of strings or an array of tokens.";
  int words = 0;
  out.inputs.clear();
  if (input->is_string()) {
    if (input->get_string().empty()) {
      error = std::string(bad_input);
      return false;
    }
    out.inputs.emplace_back(input->get_string());
    words = count_words(input->get_string());
  } else if (const json::array* items = input->if_array(); items != nullptr && !items->empty()) {
    if (items->front().is_number()) {
      // One input given as token ids: hash its JSON text.
      out.inputs.push_back(json::serialize(*items));
      words = static_cast<int>(items->size());
    } else {
      for (const json::value& item : *items) {
        if (item.is_string() && !item.get_string().empty()) {
          out.inputs.emplace_back(item.get_string());
          words += count_words(item.get_string());
        } else if (item.is_array() && !item.get_array().empty()) {
          out.inputs.push_back(json::serialize(item));
          words += static_cast<int>(item.get_array().size());
        } else {
          error = std::string(bad_input);
          return false;
        }
      }
    }
  } else {
    error = std::string(bad_input);
    return false;
  }
  out.prompt_tokens = std::max(1, words);
  std::optional<int> dimensions;
  if (!get_positive_int(obj, "dimensions", dimensions, error)) return false;
  if (dimensions && *dimensions > max_embedding_dimensions) {
    error = fmt::format("Invalid 'dimensions': at most {} are supported.", max_embedding_dimensions);
    return false;
  }
  out.dimensions = dimensions.value_or(default_embedding_dimensions);
  if (const json::value* format = obj.if_contains("encoding_format"); format != nullptr && !format->is_null()) {
    if (format->is_string() && format->get_string() == "base64") {
      out.base64 = true;
    } else if (!format->is_string() || format->get_string() != "float") {
      error = "Invalid 'encoding_format': expected 'float' or 'base64'.";
      return false;
    }
  }
  return true;
}

std::string make_id(std::string_view prefix) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id.push_back(alphabet[rng() % alphabet.size()]);
  return id;
}

std::string token_text(int index) { return index == 0 ? std::string("tok0") : fmt::format(" tok{}", index); }

std::string generated_text(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += token_text(i);
  return text;
}

std::string error_body(api_format format, int status, std::string_view message) {
  if (format == api_format::anthropic) {
    std::string_view type = status == 400   ? "invalid_request_error"
                            : status == 401 ? "authentication_error"
                            : status == 403 ? "permission_error"
                            : status == 404 ? "not_found_error"
                            : status == 405 ? "invalid_request_error"
                            : status == 413 ? "request_too_large"
                            : status == 429 ? "rate_limit_error"
                            : status == 529 ? "overloaded_error"
                                            : "api_error";
    json::object inner{{"type", type}, {"message", message}};
    json::object outer{{"type", "error"}, {"error", std::move(inner)}};
    return json::serialize(outer);
  }
  std::string_view type = status == 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error";
  json::value code = nullptr;
  if (status == 401) code = "invalid_api_key";
  if (status == 429) code = "rate_limit_exceeded";
  if (status == 404) code = "not_found";
  json::object inner{{"message", message}, {"type", type}, {"param", nullptr}, {"code", std::move(code)}};
  json::object outer{{"error", std::move(inner)}};
  return json::serialize(outer);
}

std::string chat_completion_body(const completion_facts& f) {
  json::object message{{"role", "assistant"}, {"content", generated_text(f.completion_tokens)}, {"refusal", nullptr}};
  json::object choice{{"index", 0},
                      {"message", std::move(message)},
                      {"logprobs", nullptr},
                      {"finish_reason", openai_finish(f.hit_max_tokens)}};
  json::object body{{"id", f.id},
                    {"object", "chat.completion"},
                    {"created", f.created},
                    {"model", f.model},
                    {"system_fingerprint", system_fingerprint},
                    {"choices", json::array{std::move(choice)}},
                    {"usage", usage_object(f)}};
  return json::serialize(body);
}

std::string text_completion_body(const completion_facts& f) {
  json::object choice{{"text", generated_text(f.completion_tokens)},
                      {"index", 0},
                      {"logprobs", nullptr},
                      {"finish_reason", openai_finish(f.hit_max_tokens)}};
  json::object body{{"id", f.id},
                    {"object", "text_completion"},
                    {"created", f.created},
                    {"model", f.model},
                    {"system_fingerprint", system_fingerprint},
                    {"choices", json::array{std::move(choice)}},
                    {"usage", usage_object(f)}};
  return json::serialize(body);
}

std::string message_body(const completion_facts& f) {
  json::object text_block{{"type", "text"}, {"text", generated_text(f.completion_tokens)}};
  json::object usage{{"input_tokens", f.prompt_tokens}, {"output_tokens", f.completion_tokens}};
  json::object body{{"id", f.id},
                    {"type", "message"},
                    {"role", "assistant"},
                    {"model", f.model},
                    {"content", json::array{std::move(text_block)}},
                    {"stop_reason", anthropic_stop(f.hit_max_tokens)},
                    {"stop_sequence", nullptr},
                    {"usage", std::move(usage)}};
  return json::serialize(body);
}

std::vector<float> embedding_vector(std::string_view input, int dimensions) {
  const std::uint64_t seed = fnv1a(input);
  std::vector<float> values(static_cast<std::size_t>(std::max(dimensions, 0)));
  double norm = 0;
  for (std::size_t j = 0; j < values.size(); ++j) {
    // 53 random bits mapped onto [-1, 1).
    const double unit = static_cast<double>(splitmix64(seed + j) >> 11U) * 0x1.0p-53;
    values[j] = static_cast<float>(unit * 2 - 1);
    norm += static_cast<double>(values[j]) * static_cast<double>(values[j]);
  }
  // OpenAI's embeddings are unit length; clients may rely on dot product == cosine.
  if (norm > 0) {
    const double scale = 1 / std::sqrt(norm);
    for (float& v : values) v = static_cast<float>(static_cast<double>(v) * scale);
  }
  return values;
}

std::string embeddings_body(const embedding_request& request) {
  // Assembled by hand so each float prints in its shortest round-trip form
  // (-0.5707367) like OpenAI's, not as a widened double (-5.707367062568665E-1).
  std::string body = R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < request.inputs.size(); ++i) {
    std::vector<float> vec = embedding_vector(request.inputs[i], request.dimensions);
    fmt::format_to(std::back_inserter(body), R"({}{{"object":"embedding","index":{},"embedding":)", i == 0 ? "" : ",",
                   i);
    if (request.base64) {
      body += quote(base64_floats(vec));
    } else {
      fmt::format_to(std::back_inserter(body), "[{}]", fmt::join(vec, ","));
    }
    body += '}';
  }
  fmt::format_to(std::back_inserter(body), R"(],"model":{},"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})",
                 quote(request.model), request.prompt_tokens, request.prompt_tokens);
  return body;
}

std::string model_body(std::string_view model, std::int64_t created) {
  json::object body{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "gatewayz-mock"}};
  return json::serialize(body);
}

std::string models_body(const std::vector<std::string>& models, std::int64_t created) {
  json::array data;
  for (const std::string& m : models) {
    data.emplace_back(
        json::object{{"id", m}, {"object", "model"}, {"created", created}, {"owned_by", "gatewayz-mock"}});
  }
  json::object body{{"object", "list"}, {"data", std::move(data)}};
  return json::serialize(body);
}

openai_stream::openai_stream(kind k, std::string_view id, std::int64_t created, std::string_view model,
                             bool include_usage)
    : kind_(k),
      include_usage_(include_usage),
      prefix_(fmt::format(R"({{"id":{},"object":"{}","created":{},"model":{},"system_fingerprint":"{}","choices":[)",
                          quote(id), k == kind::chat ? "chat.completion.chunk" : "text_completion", created,
                          quote(model), system_fingerprint)) {}

std::string openai_stream::choice_event(std::string_view choice_json) const {
  // With include_usage OpenAI adds "usage":null to every chunk but the last.
  return fmt::format("data: {}{}]{}}}\n\n", prefix_, choice_json, include_usage_ ? R"(,"usage":null)" : "");
}

std::string openai_stream::role_event() const {
  return choice_event(
      R"({"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null})");
}

std::string openai_stream::token_event(int index) const {
  const std::string text = quote(token_text(index));
  if (kind_ == kind::chat) {
    return choice_event(
        fmt::format(R"({{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}})", text));
  }
  return choice_event(fmt::format(R"({{"text":{},"index":0,"logprobs":null,"finish_reason":null}})", text));
}

std::string openai_stream::finish_event(bool hit_max_tokens) const {
  if (kind_ == kind::chat) {
    return choice_event(fmt::format(R"({{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{}"}})",
                                    openai_finish(hit_max_tokens)));
  }
  return choice_event(
      fmt::format(R"({{"text":"","index":0,"logprobs":null,"finish_reason":"{}"}})", openai_finish(hit_max_tokens)));
}

std::string openai_stream::usage_event(int prompt_tokens, int completion_tokens) const {
  return fmt::format(R"(data: {}],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})"
                     "\n\n",
                     prefix_, prompt_tokens, completion_tokens, prompt_tokens + completion_tokens);
}

anthropic_stream::anthropic_stream(std::string_view id, std::string_view model, int input_tokens)
    : id_json_(quote(id)), model_json_(quote(model)), input_tokens_(input_tokens) {}

std::string anthropic_stream::message_start() const {
  return fmt::format(
      "event: message_start\ndata: "
      R"({{"type":"message_start","message":{{"id":{},"type":"message","role":"assistant","content":[],"model":{},)"
      R"("stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"output_tokens":1}}}}}})"
      "\n\n",
      id_json_, model_json_, input_tokens_);
}

std::string anthropic_stream::content_block_start() {
  return "event: content_block_start\ndata: "
         R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
         "\n\n";
}

std::string anthropic_stream::ping() { return "event: ping\ndata: {\"type\": \"ping\"}\n\n"; }

std::string anthropic_stream::content_block_delta(int index) {
  return fmt::format(
      "event: content_block_delta\ndata: "
      R"({{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{}}}}})"
      "\n\n",
      quote(token_text(index)));
}

std::string anthropic_stream::content_block_stop() {
  return "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
}

std::string anthropic_stream::message_delta(bool hit_max_tokens, int output_tokens) {
  return fmt::format(
      "event: message_delta\ndata: "
      R"({{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":null}},"usage":{{"output_tokens":{}}}}})"
      "\n\n",
      anthropic_stop(hit_max_tokens), output_tokens);
}

std::string anthropic_stream::message_stop() { return "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"; }

std::string behaviour_to_json(const behaviour& b) {
  json::object body{{"latency_ms", b.latency_ms},       {"ttft_ms", b.ttft_ms},       {"tokens_per_s", b.tokens_per_s},
                    {"output_tokens", b.output_tokens}, {"error_rate", b.error_rate}, {"failure", to_string(b.failure)},
                    {"fixed_body", b.fixed_body}};
  return json::serialize(body);
}

bool behaviour_from_json(std::string_view body, behaviour& inout, std::string& error) {
  json::value doc;
  if (!parse_object(body, doc, error)) return false;
  behaviour b = inout;  // applied only if every member is valid
  auto non_negative = [&error](std::string_view key, const json::value& v, double& out) {
    if (!v.is_number() || !std::isfinite(v.to_number<double>()) || v.to_number<double>() < 0) {
      error = fmt::format("'{}' must be a non-negative number", key);
      return false;
    }
    out = v.to_number<double>();
    return true;
  };
  for (const auto& [key, v] : doc.get_object()) {
    if (key == "latency_ms") {
      if (!non_negative(key, v, b.latency_ms)) return false;
    } else if (key == "ttft_ms") {
      if (!non_negative(key, v, b.ttft_ms)) return false;
    } else if (key == "tokens_per_s") {
      if (!non_negative(key, v, b.tokens_per_s)) return false;
    } else if (key == "error_rate") {
      if (!non_negative(key, v, b.error_rate)) return false;
      if (b.error_rate > 1) {
        error = "'error_rate' must be between 0 and 1";
        return false;
      }
    } else if (key == "output_tokens") {
      const bool integral = v.is_int64() || v.is_uint64();
      const double n = integral ? v.to_number<double>() : -1;
      if (n < 0 || n > max_generated_tokens) {
        error = fmt::format("'output_tokens' must be an integer between 0 and {}", max_generated_tokens);
        return false;
      }
      b.output_tokens = static_cast<int>(n);
    } else if (key == "failure") {
      if (!v.is_string() || !parse_failure_mode(v.get_string(), b.failure)) {
        error = R"('failure' must be one of "500", "429", "hang", "reset", "malformed")";
        return false;
      }
    } else if (key == "fixed_body") {
      if (!v.is_string()) {
        error = "'fixed_body' must be a string";
        return false;
      }
      b.fixed_body = std::string(v.get_string());
    } else {
      error = fmt::format("unknown behaviour field '{}'", std::string_view(key));
      return false;
    }
  }
  inout = std::move(b);
  return true;
}

std::string stats_to_json(const mock_stats& s) {
  json::object body{{"requests", s.requests},
                    {"failures", s.failures},
                    {"cancelled", s.cancelled},
                    {"streams_completed", s.streams_completed}};
  return json::serialize(body);
}

std::string requests_to_json(const std::vector<recorded_request>& requests) {
  json::array list;
  list.reserve(requests.size());
  for (const recorded_request& r : requests) {
    // Repeated header names are joined with ", " as HTTP allows, so clients
    // get a plain name -> value object.
    json::object headers;
    for (const auto& [name, value] : r.headers) {
      if (json::value* existing = headers.if_contains(name)) {
        json::string& joined = existing->as_string();
        joined.append(", ");
        joined.append(value);
      } else {
        headers[name] = value;
      }
    }
    list.emplace_back(json::object{{"method", r.method},
                                   {"target", r.target},
                                   {"headers", std::move(headers)},
                                   {"body", r.body},
                                   {"body_truncated", r.body_truncated}});
  }
  json::object body{{"requests", std::move(list)}};
  return json::serialize(body);
}

}  // namespace gatewayz::mock::wire

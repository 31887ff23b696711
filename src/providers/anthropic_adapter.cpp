#include "providers/anthropic_adapter.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <map>
#include <optional>
#include <utility>

#include "core/json_scan.hpp"
#include "providers/adapter_common.hpp"

namespace gatewayz::providers {

namespace {

namespace json = boost::json;

// Boost.JSON's default depth limit (32) is below what the gateway accepts
// (json_scan's 128), and deep tool schemas are legitimate.
json::value parse_json(std::string_view text, json::error_code& ec) {
  json::parse_options options;
  options.max_depth = 128;
  return json::parse(text, ec, {}, options);
}

std::string_view view(const json::string& s) { return {s.data(), s.size()}; }
json::string jstr(std::string_view s) { return json::string(s.data(), s.size()); }

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// OpenAI clients send explicit nulls for "not set"; treat them as absent.
const json::value* find(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

const json::string* find_string(const json::object& object, std::string_view key) {
  const json::value* v = find(object, key);
  return (v != nullptr && v->is_string()) ? &v->get_string() : nullptr;
}

// Anthropic stop_reason => OpenAI finish_reason. Unknown (newer) reasons map
// to "stop": the turn did end, and clients only branch on the known values.
std::string_view finish_reason_for(std::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

// ---------------------------------------------------------------------------
// Request: OpenAI chat completion => Anthropic Messages.

class request_converter {
 public:
  explicit request_converter(std::string& error) : error_(error) {}

  bool convert(const json::object& in, std::string_view upstream_model, bool stream, json::object& out) {
    if (!check_unsupported(in)) return false;
    out["model"] = jstr(upstream_model);
    if (!convert_messages(in)) return false;
    if (!system_.empty()) out["system"] = jstr(system_);
    out["messages"] = std::move(messages_);

    std::int64_t max_tokens = anthropic_adapter::default_max_tokens;
    const json::value* limit = find(in, "max_completion_tokens");
    if (limit == nullptr) limit = find(in, "max_tokens");
    if (limit != nullptr) {
      json::error_code ec;
      max_tokens = limit->to_number<std::int64_t>(ec);
      if (ec || max_tokens <= 0) return fail("max_tokens must be a positive integer");
    }
    out["max_tokens"] = max_tokens;

    if (const json::value* t = find(in, "temperature")) {
      if (!t->is_number()) return fail("temperature must be a number");
      // Anthropic's range is 0..1 where OpenAI's is 0..2; values above 1 mean
      // "as random as possible", which 1 is for Anthropic.
      out["temperature"] = std::clamp(t->to_number<double>(), 0.0, 1.0);
    }
    if (const json::value* p = find(in, "top_p")) {
      if (!p->is_number()) return fail("top_p must be a number");
      out["top_p"] = p->to_number<double>();
    }
    if (const json::value* stop = find(in, "stop")) {
      json::array sequences;
      if (!convert_stop(*stop, sequences)) return false;
      if (!sequences.empty()) out["stop_sequences"] = std::move(sequences);
    }
    if (stream) out["stream"] = true;
    if (const json::value* tools = find(in, "tools")) {
      json::array converted;
      if (!convert_tools(*tools, converted)) return false;
      if (!converted.empty()) out["tools"] = std::move(converted);
    }
    json::object tool_choice;
    if (const json::value* choice = find(in, "tool_choice")) {
      if (!convert_tool_choice(*choice, tool_choice)) return false;
    }
    if (const json::value* parallel = find(in, "parallel_tool_calls"); parallel != nullptr && parallel->is_bool() &&
                                                                     !parallel->get_bool() && out.contains("tools")) {
      if (tool_choice.empty()) tool_choice["type"] = "auto";
      // Anthropic accepts the flag only where tools may be called.
      if (const json::string* type = find_string(tool_choice, "type"); type != nullptr && *type != "none") {
        tool_choice["disable_parallel_tool_use"] = true;
      }
    }
    // Anthropic rejects tool_choice without tools; without tools there is nothing to choose.
    if (!tool_choice.empty() && out.contains("tools")) out["tool_choice"] = std::move(tool_choice);
    if (const json::value* user = find(in, "user")) {
      if (!user->is_string()) return fail("user must be a string");
      out["metadata"] = json::object{{"user_id", user->get_string()}};
    }
    return true;
  }

 private:
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  // Parameters whose meaning Anthropic cannot provide: refusing is better than
  // an answer that silently ignores what the client asked for.
  bool check_unsupported(const json::object& in) {
    if (const json::value* n = find(in, "n")) {
      json::error_code ec;
      if (n->to_number<std::int64_t>(ec) != 1 || ec) return fail("n other than 1 is not supported for this model");
    }
    if (const json::value* logprobs = find(in, "logprobs"); logprobs != nullptr && logprobs->is_bool() &&
                                                             logprobs->get_bool()) {
      return fail("logprobs are not supported for this model");
    }
    if (const json::value* format = find(in, "response_format")) {
      const json::object* object = format->if_object();
      const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
      if (type == nullptr || *type != "text") {
        return fail("response_format other than {\"type\":\"text\"} is not supported for this model");
      }
    }
    if (find(in, "audio") != nullptr) return fail("audio output is not supported for this model");
    return true;
  }

  bool convert_messages(const json::object& in) {
    const json::value* messages = find(in, "messages");
    if (messages == nullptr || !messages->is_array()) return fail("messages must be an array");
    std::size_t i = 0;
    for (const json::value& message : messages->get_array()) {
      if (!convert_message(message, fmt::format("messages[{}]", i++))) return false;
    }
    return true;
  }

  bool convert_message(const json::value& value, const std::string& where) {
    const json::object* message = value.if_object();
    if (message == nullptr) return fail(where + " must be an object");
    const json::string* role = find_string(*message, "role");
    if (role == nullptr) return fail(where + ".role must be a string");
    const json::value* content = message->if_contains("content");

    if (*role == "system" || *role == "developer") {
      // Anthropic has one top-level system prompt, not system turns.
      return content == nullptr || collect_system_text(*content, where + ".content");
    }
    if (*role == "user") {
      json::array blocks;
      if (content != nullptr && !convert_content(*content, where + ".content", false, blocks)) return false;
      append("user", std::move(blocks));
      return true;
    }
    if (*role == "assistant") {
      json::array blocks;
      if (content != nullptr && !convert_content(*content, where + ".content", true, blocks)) return false;
      if (const json::value* calls = find(*message, "tool_calls")) {
        if (!convert_tool_calls(*calls, where + ".tool_calls", blocks)) return false;
      }
      append("assistant", std::move(blocks));
      return true;
    }
    if (*role == "tool") return convert_tool_result(*message, where);
    return fail(fmt::format("{}.role `{}` is not supported for this model", where, view(*role)));
  }

  bool collect_system_text(const json::value& content, const std::string& where) {
    const auto add = [&](std::string_view text) {
      if (text.empty()) return;
      if (!system_.empty()) system_ += "\n\n";
      system_ += text;
    };
    if (content.is_null()) return true;
    if (content.is_string()) {
      add(view(content.get_string()));
      return true;
    }
    if (!content.is_array()) return fail(where + " must be a string or an array of content parts");
    std::size_t i = 0;
    for (const json::value& part : content.get_array()) {
      const std::string part_where = fmt::format("{}[{}]", where, i++);
      const json::object* object = part.if_object();
      const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
      if (type == nullptr) return fail(part_where + ".type must be a string");
      if (*type != "text") {
        return fail(fmt::format("{}: content part type `{}` is not supported in system messages", part_where,
                                view(*type)));
      }
      const json::string* text = find_string(*object, "text");
      if (text == nullptr) return fail(part_where + ".text must be a string");
      add(view(*text));
    }
    return true;
  }

  // String or content-part array => Anthropic content blocks. Empty text is
  // dropped: Anthropic rejects empty text blocks.
  bool convert_content(const json::value& content, const std::string& where, bool assistant, json::array& blocks) {
    if (content.is_null()) return true;
    if (content.is_string()) {
      if (!content.get_string().empty()) blocks.push_back(text_block(content.get_string()));
      return true;
    }
    if (!content.is_array()) return fail(where + " must be a string or an array of content parts");
    std::size_t i = 0;
    for (const json::value& part : content.get_array()) {
      const std::string part_where = fmt::format("{}[{}]", where, i++);
      const json::object* object = part.if_object();
      const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
      if (type == nullptr) return fail(part_where + ".type must be a string");
      if (*type == "text" || (assistant && *type == "refusal")) {
        const json::string* text = find_string(*object, *type == "text" ? "text" : "refusal");
        if (text == nullptr) return fail(fmt::format("{}.{} must be a string", part_where, view(*type)));
        if (!text->empty()) blocks.push_back(text_block(*text));
      } else if (*type == "image_url" && !assistant) {
        if (!convert_image(*object, part_where, blocks)) return false;
      } else {
        return fail(fmt::format("{}: content part type `{}` is not supported for this model", part_where,
                                view(*type)));
      }
    }
    return true;
  }

  static json::object text_block(const json::string& text) { return json::object{{"type", "text"}, {"text", text}}; }

  bool convert_image(const json::object& part, const std::string& where, json::array& blocks) {
    const json::value* image = find(part, "image_url");
    const json::string* url = nullptr;
    if (image != nullptr && image->is_string()) {
      url = &image->get_string();
    } else if (image != nullptr && image->is_object()) {
      url = find_string(image->get_object(), "url");
    }
    if (url == nullptr) return fail(where + ".image_url.url must be a string");
    const std::string_view text = view(*url);
    if (starts_with_icase(text, "data:")) {
      // data:<media type>[;<parameter>]*;base64,<data>
      const std::size_t comma = text.find(',');
      const std::string_view meta = text.substr(5, comma == std::string_view::npos ? 0 : comma - 5);
      const std::string_view media_type = meta.substr(0, meta.find(';'));
      if (comma == std::string_view::npos || !meta.ends_with(";base64") || media_type.empty()) {
        return fail(where + ": image data URLs must have the form data:<media type>;base64,<data>");
      }
      blocks.push_back(json::object{
          {"type", "image"},
          {"source", json::object{{"type", "base64"},
                                  {"media_type", jstr(media_type)},
                                  {"data", jstr(text.substr(comma + 1))}}}});
      return true;
    }
    if (starts_with_icase(text, "https://") || starts_with_icase(text, "http://")) {
      blocks.push_back(
          json::object{{"type", "image"}, {"source", json::object{{"type", "url"}, {"url", *url}}}});
      return true;
    }
    return fail(where + ": image URLs must be http(s) or base64 data URLs");
  }

  bool convert_tool_calls(const json::value& calls, const std::string& where, json::array& blocks) {
    if (!calls.is_array()) return fail(where + " must be an array");
    std::size_t i = 0;
    for (const json::value& call : calls.get_array()) {
      const std::string call_where = fmt::format("{}[{}]", where, i++);
      const json::object* object = call.if_object();
      if (object == nullptr) return fail(call_where + " must be an object");
      if (const json::string* type = find_string(*object, "type"); type != nullptr && *type != "function") {
        return fail(fmt::format("{}: tool call type `{}` is not supported for this model", call_where, view(*type)));
      }
      const json::string* id = find_string(*object, "id");
      if (id == nullptr) return fail(call_where + ".id must be a string");
      const json::value* function = find(*object, "function");
      const json::string* name = (function != nullptr && function->is_object())
                                     ? find_string(function->get_object(), "name")
                                     : nullptr;
      if (name == nullptr) return fail(call_where + ".function.name must be a string");
      json::object input;
      if (!parse_arguments(function->get_object(), call_where + ".function.arguments", input)) return false;
      blocks.push_back(json::object{{"type", "tool_use"}, {"id", *id}, {"name", *name}, {"input", std::move(input)}});
    }
    return true;
  }

  // OpenAI carries tool arguments as a JSON string; Anthropic wants the object.
  bool parse_arguments(const json::object& function, const std::string& where, json::object& input) {
    const json::value* arguments = find(function, "arguments");
    if (arguments == nullptr) return true;
    if (arguments->is_object()) {  // lenient: some clients send the object itself
      input = arguments->get_object();
      return true;
    }
    if (!arguments->is_string()) return fail(where + " must be a string");
    const std::string_view text = view(arguments->get_string());
    if (trim(text).empty()) return true;
    json::error_code ec;
    json::value parsed = parse_json(text, ec);
    if (ec) return fail(where + " is not valid JSON");
    if (!parsed.is_object()) return fail(where + " must be a JSON object");
    input = std::move(parsed.get_object());
    return true;
  }

  bool convert_tool_result(const json::object& message, const std::string& where) {
    const json::string* id = find_string(message, "tool_call_id");
    if (id == nullptr) return fail(where + ".tool_call_id must be a string");
    json::object result{{"type", "tool_result"}, {"tool_use_id", *id}};
    if (const json::value* content = find(message, "content")) {
      if (content->is_string()) {
        if (!content->get_string().empty()) result["content"] = content->get_string();
      } else {
        json::array blocks;
        if (!convert_content(*content, where + ".content", false, blocks)) return false;
        if (!blocks.empty()) result["content"] = std::move(blocks);
      }
    }
    // Tool results travel in user turns; append() merges consecutive ones.
    json::array blocks;
    blocks.push_back(std::move(result));
    append("user", std::move(blocks));
    return true;
  }

  // Anthropic requires user and assistant turns to alternate, so consecutive
  // turns of one role (e.g. several tool results) become one message. Turns
  // without content are dropped: Anthropic rejects empty messages.
  void append(std::string_view role, json::array blocks) {
    if (blocks.empty()) return;
    if (!messages_.empty()) {
      json::object& last = messages_.back().as_object();
      if (view(last.at("role").as_string()) == role) {
        json::array& content = last.at("content").as_array();
        for (json::value& block : blocks) content.push_back(std::move(block));
        return;
      }
    }
    messages_.push_back(json::object{{"role", jstr(role)}, {"content", std::move(blocks)}});
  }

  bool convert_stop(const json::value& stop, json::array& sequences) {
    if (stop.is_string()) {
      if (!stop.get_string().empty()) sequences.push_back(stop.get_string());
      return true;
    }
    if (!stop.is_array()) return fail("stop must be a string or an array of strings");
    for (const json::value& sequence : stop.get_array()) {
      if (!sequence.is_string()) return fail("stop must be a string or an array of strings");
      if (!sequence.get_string().empty()) sequences.push_back(sequence.get_string());
    }
    return true;
  }

  bool convert_tools(const json::value& tools, json::array& out) {
    if (!tools.is_array()) return fail("tools must be an array");
    std::size_t i = 0;
    for (const json::value& tool : tools.get_array()) {
      const std::string where = fmt::format("tools[{}]", i++);
      const json::object* object = tool.if_object();
      const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
      if (type == nullptr) return fail(where + ".type must be a string");
      if (*type != "function") {
        return fail(fmt::format("{}: tool type `{}` is not supported for this model", where, view(*type)));
      }
      const json::value* function = find(*object, "function");
      const json::object* definition = function != nullptr ? function->if_object() : nullptr;
      const json::string* name = definition != nullptr ? find_string(*definition, "name") : nullptr;
      if (name == nullptr) return fail(where + ".function.name must be a string");
      json::object converted{{"name", *name}};
      if (const json::string* description = find_string(*definition, "description")) {
        converted["description"] = *description;
      }
      if (const json::value* parameters = find(*definition, "parameters")) {
        if (!parameters->is_object()) return fail(where + ".function.parameters must be an object");
        converted["input_schema"] = *parameters;
      } else {
        // OpenAI allows omitting parameters (no arguments); Anthropic requires a schema.
        converted["input_schema"] = json::object{{"type", "object"}, {"properties", json::object{}}};
      }
      out.push_back(std::move(converted));
    }
    return true;
  }

  bool convert_tool_choice(const json::value& choice, json::object& out) {
    if (choice.is_string()) {
      const std::string_view mode = view(choice.get_string());
      if (mode == "auto") {
        out["type"] = "auto";
      } else if (mode == "required") {
        out["type"] = "any";
      } else if (mode == "none") {
        out["type"] = "none";
      } else {
        return fail(fmt::format("tool_choice `{}` is not supported for this model", mode));
      }
      return true;
    }
    const json::object* object = choice.if_object();
    const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
    const json::value* function = object != nullptr ? find(*object, "function") : nullptr;
    const json::string* name =
        (function != nullptr && function->is_object()) ? find_string(function->get_object(), "name") : nullptr;
    if (type == nullptr || *type != "function" || name == nullptr) {
      return fail("tool_choice must be \"auto\", \"required\", \"none\" or {\"type\":\"function\",\"function\":{\"name\":...}}");
    }
    out["type"] = "tool";
    out["name"] = *name;
    return true;
  }

  std::string& error_;
  std::string system_;
  json::array messages_;
};

// ---------------------------------------------------------------------------
// Response: Anthropic message => OpenAI chat.completion.

std::int64_t int_or_zero(const json::object& object, std::string_view key) {
  const json::value* v = find(object, key);
  if (v == nullptr) return 0;
  json::error_code ec;
  const auto n = v->to_number<std::int64_t>(ec);
  return ec ? 0 : n;
}

// ---------------------------------------------------------------------------
// Stream: Anthropic events => chat.completion.chunk events.
//
// Works on json_scan results, not a DOM: each event is validated once and the
// strings the client needs (text and argument fragments, ids, names) are
// copied as raw JSON string tokens, which are valid JSON by construction.
class anthropic_stream_translator final : public stream_translator {
 public:
  anthropic_stream_translator(std::string model, bool client_wants_usage, std::string api_key)
      : model_(std::move(model)),
        client_wants_usage_(client_wants_usage),
        api_key_(std::move(api_key)),
        created_(detail::unix_now()) {}

  bool on_event(const http::sse_event& event, std::string& out) override {
    if (done_) return true;  // the client's stream already ended with [DONE]
    const std::string_view data = trim(event.data);
    if (data.empty()) return true;  // keep-alive without payload
    json_scan::scan_error scan_error;
    if (!json_scan::scan_object(data, top_, scan_error)) return false;

    // The payload's own "type" is authoritative; the `event:` line is the
    // fallback for relays that keep only one of them.
    std::string_view type = event.event;
    if (const auto token = detail::raw_string_member(data, top_, "type")) {
      type = detail::string_content(*token, type_scratch_);
    }
    if (type == "content_block_delta") return on_block_delta(data, out);
    if (type == "content_block_start") return on_block_start(data, out);
    if (type == "message_start") return on_message_start(data, out);
    if (type == "message_delta") return on_message_delta(data, out);
    if (type == "message_stop") return on_message_stop(out);
    if (type == "error") return on_error(data, out);
    return true;  // ping, content_block_stop and future event types carry nothing for the client
  }

  bool done() const override { return done_; }

  token_usage usage() const override {
    token_usage usage;
    usage.input_tokens = input_tokens_ + cache_read_tokens_ + cache_creation_tokens_;
    usage.output_tokens = output_tokens_;
    usage.reported = usage_reported_;
    return usage;
  }

  std::string_view stream_error() const override { return stream_error_; }

 private:
  bool on_message_start(std::string_view data, std::string& out) {
    const auto message = detail::object_member(data, top_, "message", inner_);
    if (!message) return false;
    if (prefix_.empty()) {
      if (const auto id = detail::string_member(*message, inner_, "id"); id && !id->empty()) {
        build_prefix("chatcmpl-" + *id);
      }
    }
    if (const auto usage = detail::object_member(*message, inner_, "usage", usage_scan_)) {
      read_usage(*usage);
    }
    start(out);
    return true;
  }

  bool on_block_start(std::string_view data, std::string& out) {
    const auto index = detail::int_member(data, top_, "index");
    const auto block = detail::object_member(data, top_, "content_block", inner_);
    if (!index || !block) return false;
    const auto type_token = detail::raw_string_member(*block, inner_, "type");
    if (!type_token) return false;
    const std::string_view type = detail::string_content(*type_token, type_scratch_);
    if (type == "text") {
      if (const auto text = detail::raw_string_member(*block, inner_, "text"); text && text->size() > 2) {
        emit_content(*text, out);
      }
      return true;
    }
    if (type == "tool_use") {
      const auto id = detail::raw_string_member(*block, inner_, "id");
      const auto name = detail::raw_string_member(*block, inner_, "name");
      if (!id || !name) return false;
      const int tool_index = next_tool_index_++;
      tool_blocks_[*index] = tool_index;
      start(out);
      begin_chunk(out);
      out += R"({"tool_calls":[{"index":)";
      out += std::to_string(tool_index);
      out += R"(,"id":)";
      out += *id;
      out += R"(,"type":"function","function":{"name":)";
      out += *name;
      out += R"(,"arguments":""}}]})";
      end_chunk(out, "null");
      return true;
    }
    return true;  // thinking, server tool blocks, ...: nothing OpenAI clients expect
  }

  bool on_block_delta(std::string_view data, std::string& out) {
    const auto index = detail::int_member(data, top_, "index");
    const auto delta = detail::object_member(data, top_, "delta", inner_);
    if (!index || !delta) return false;
    const auto type_token = detail::raw_string_member(*delta, inner_, "type");
    if (!type_token) return false;
    const std::string_view type = detail::string_content(*type_token, type_scratch_);
    if (type == "text_delta") {
      const auto text = detail::raw_string_member(*delta, inner_, "text");
      if (!text) return false;
      if (text->size() > 2) emit_content(*text, out);
      return true;
    }
    if (type == "input_json_delta") {
      const auto fragment = detail::raw_string_member(*delta, inner_, "partial_json");
      if (!fragment) return false;
      const auto tool = tool_blocks_.find(*index);
      // Deltas of blocks we do not forward (server tools) are skipped, and so
      // are empty fragments, which Anthropic sends before the first real one.
      if (tool == tool_blocks_.end() || fragment->size() <= 2) return true;
      start(out);
      begin_chunk(out);
      out += R"({"tool_calls":[{"index":)";
      out += std::to_string(tool->second);
      out += R"(,"function":{"arguments":)";
      out += *fragment;
      out += "}}]}";
      end_chunk(out, "null");
      return true;
    }
    return true;  // thinking_delta, signature_delta, citations_delta, ...
  }

  bool on_message_delta(std::string_view data, std::string& out) {
    if (const auto delta = detail::object_member(data, top_, "delta", inner_)) {
      if (const auto reason = detail::string_member(*delta, inner_, "stop_reason")) {
        emit_finish(finish_reason_for(*reason), out);
      }
    }
    // Output counts here are cumulative; newer API versions repeat input counts too.
    if (const auto usage = detail::object_member(data, top_, "usage", usage_scan_)) read_usage(*usage);
    return true;
  }

  bool on_message_stop(std::string& out) {
    if (!finish_sent_) emit_finish("stop", out);
    if (client_wants_usage_) {
      const token_usage totals = usage();
      out += "data: ";
      out += prefix_;
      out += fmt::format(R"("choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
                         totals.input_tokens, totals.output_tokens, totals.input_tokens + totals.output_tokens);
      out += "\n\n";
    }
    out += "data: [DONE]\n\n";
    done_ = true;
    return true;
  }

  // Forwarded in the shape OpenAI-compatible providers use mid-stream, so
  // the client sees the same thing whichever provider served it.
  bool on_error(std::string_view data, std::string& out) {
    std::optional<std::string> message;
    std::string_view error_type = R"("api_error")";
    if (const auto error = detail::object_member(data, top_, "error", inner_)) {
      message = detail::string_member(*error, inner_, "message");
      if (const auto type = detail::raw_string_member(*error, inner_, "type")) error_type = *type;
    }
    stream_error_ = (message && !message->empty()) ? detail::redact(std::move(*message), api_key_)
                                                   : "The provider reported an error during the stream";
    out += R"(data: {"error":{"message":)";
    out += json_scan::encode_string(stream_error_);
    out += R"(,"type":)";
    out += error_type;
    out += R"(,"param":null,"code":null}})";
    out += "\n\n";
    return true;
  }

  void read_usage(std::string_view usage) {
    const auto update = [&](std::string_view key, std::int64_t& field) {
      if (const auto n = detail::int_member(usage, usage_scan_, key)) {
        field = *n;
        usage_reported_ = true;
      }
    };
    update("input_tokens", input_tokens_);
    update("cache_read_input_tokens", cache_read_tokens_);
    update("cache_creation_input_tokens", cache_creation_tokens_);
    update("output_tokens", output_tokens_);
  }

  void build_prefix(const std::string& id) {
    prefix_ = R"({"id":)";
    prefix_ += json_scan::encode_string(id);
    prefix_ += R"(,"object":"chat.completion.chunk","created":)";
    prefix_ += std::to_string(created_);
    prefix_ += R"(,"model":)";
    prefix_ += json_scan::encode_string(model_);
    prefix_ += ',';
  }

  // Every chunk needs the id, and OpenAI streams open with the role; an
  // upstream that skipped message_start still yields a well-formed stream.
  void start(std::string& out) {
    if (prefix_.empty()) build_prefix(detail::make_id("chatcmpl-"));
    if (role_sent_) return;
    role_sent_ = true;
    begin_chunk(out);
    out += R"({"role":"assistant","content":""})";
    end_chunk(out, "null");
  }

  void begin_chunk(std::string& out) const {
    out += "data: ";
    out += prefix_;
    out += R"("choices":[{"index":0,"delta":)";
  }

  static void end_chunk(std::string& out, std::string_view finish_reason_json) {
    out += R"(,"finish_reason":)";
    out += finish_reason_json;
    out += "}]}\n\n";
  }

  void emit_content(std::string_view text_token, std::string& out) {
    start(out);
    begin_chunk(out);
    out += R"({"content":)";
    out += text_token;
    out += '}';
    end_chunk(out, "null");
  }

  void emit_finish(std::string_view reason, std::string& out) {
    if (finish_sent_) return;
    finish_sent_ = true;
    start(out);
    begin_chunk(out);
    out += "{}";
    end_chunk(out, json_scan::encode_string(reason));
  }

  std::string model_;
  bool client_wants_usage_;
  std::string api_key_;
  std::int64_t created_;
  std::string prefix_;  // `{"id":...,"object":...,"created":...,"model":...,` shared by every chunk
  bool role_sent_ = false;
  bool finish_sent_ = false;
  bool done_ = false;
  int next_tool_index_ = 0;
  std::map<std::int64_t, int> tool_blocks_;  // Anthropic block index => OpenAI tool_calls index
  std::int64_t input_tokens_ = 0;
  std::int64_t cache_read_tokens_ = 0;
  std::int64_t cache_creation_tokens_ = 0;
  std::int64_t output_tokens_ = 0;
  bool usage_reported_ = false;
  std::string stream_error_;
  // Reused across events so steady-state translation allocates only output.
  json_scan::object_scan top_;
  json_scan::object_scan inner_;
  json_scan::object_scan usage_scan_;
  std::string type_scratch_;
};

std::vector<header> anthropic_headers(const config::provider_config& provider, bool streaming) {
  std::vector<header> credentials;
  if (!provider.api_key.empty()) credentials.push_back({"x-api-key", provider.api_key});
  credentials.push_back({"anthropic-version", provider.anthropic_version});
  return detail::request_headers(std::move(credentials), provider, streaming);
}

}  // namespace

anthropic_adapter::anthropic_adapter(const config::provider_config& provider)
    : api_key_(provider.api_key),
      json_headers_(anthropic_headers(provider, false)),
      stream_headers_(anthropic_headers(provider, true)) {}

bool anthropic_adapter::supports(operation op) const { return op == operation::chat_completions; }

bool anthropic_adapter::build_request(const inbound_request& request, const config::model_config& model,
                                      upstream_request& out, std::string& error) const {
  if (!supports(request.op)) {
    error = fmt::format("{} is not supported for this model", operation_name(request.op));
    return false;
  }
  json::error_code ec;
  const json::value parsed = parse_json(request.body, ec);
  if (ec || !parsed.is_object()) {
    error = "The request body is not a JSON object";
    return false;
  }
  json::object body;
  request_converter converter(error);
  if (!converter.convert(parsed.get_object(), detail::upstream_model(model), request.stream, body)) return false;

  out.path = "/messages";
  out.headers = request.stream ? stream_headers_ : json_headers_;
  out.body = json::serialize(body);
  return true;
}

bool anthropic_adapter::translate_response(const inbound_request& request, std::string& body, token_usage& usage,
                                           std::string& error) const {
  json::error_code ec;
  const json::value parsed = parse_json(body, ec);
  const json::object* message = ec ? nullptr : parsed.if_object();
  const json::value* content = message != nullptr ? find(*message, "content") : nullptr;
  if (content == nullptr || !content->is_array()) {
    error = "The provider returned a response that is not an Anthropic message";
    return false;
  }

  std::string text;
  bool has_text = false;
  json::array tool_calls;
  for (const json::value& block : content->get_array()) {
    const json::object* object = block.if_object();
    const json::string* type = object != nullptr ? find_string(*object, "type") : nullptr;
    if (type == nullptr) continue;
    if (*type == "text") {
      if (const json::string* part = find_string(*object, "text")) {
        text += view(*part);
        has_text = true;
      }
    } else if (*type == "tool_use") {
      const json::string* id = find_string(*object, "id");
      const json::string* name = find_string(*object, "name");
      if (id == nullptr || name == nullptr) {
        error = "The provider returned a tool_use block without id or name";
        return false;
      }
      const json::value* input = find(*object, "input");
      tool_calls.push_back(json::object{
          {"id", *id},
          {"type", "function"},
          {"function", json::object{{"name", *name},
                                    {"arguments", input != nullptr ? json::serialize(*input) : std::string("{}")}}}});
    }
    // thinking and other block kinds have no chat.completion equivalent.
  }

  json::object reply{{"role", "assistant"}};
  reply["content"] = has_text ? json::value(jstr(text)) : json::value(nullptr);
  if (!tool_calls.empty()) reply["tool_calls"] = std::move(tool_calls);

  const json::string* stop_reason = find_string(*message, "stop_reason");
  const std::string_view finish = stop_reason != nullptr ? finish_reason_for(view(*stop_reason)) : "stop";

  usage = token_usage{};
  if (const json::value* reported = find(*message, "usage"); reported != nullptr && reported->is_object()) {
    const json::object& counts = reported->get_object();
    usage.input_tokens = int_or_zero(counts, "input_tokens") + int_or_zero(counts, "cache_read_input_tokens") +
                         int_or_zero(counts, "cache_creation_input_tokens");
    usage.output_tokens = int_or_zero(counts, "output_tokens");
    usage.reported = true;
  }

  const json::string* id = find_string(*message, "id");
  json::object result;
  result["id"] = id != nullptr ? "chatcmpl-" + std::string(view(*id)) : detail::make_id("chatcmpl-");
  result["object"] = "chat.completion";
  result["created"] = detail::unix_now();
  result["model"] = jstr(request.model);
  result["choices"] = json::array{
      json::object{{"index", 0}, {"message", std::move(reply)}, {"finish_reason", jstr(finish)}}};
  result["usage"] = json::object{{"prompt_tokens", usage.input_tokens},
                                 {"completion_tokens", usage.output_tokens},
                                 {"total_tokens", usage.input_tokens + usage.output_tokens}};
  body = json::serialize(result);
  return true;
}

std::string anthropic_adapter::error_message(std::string_view upstream_body) const {
  return detail::upstream_error_message(upstream_body, api_key_);
}

std::unique_ptr<stream_translator> anthropic_adapter::make_stream_translator(const inbound_request& request) const {
  return std::make_unique<anthropic_stream_translator>(request.model, request.client_wants_usage, api_key_);
}

}  // namespace gatewayz::providers

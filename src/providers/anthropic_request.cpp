// Request: OpenAI chat completion => Anthropic Messages (anthropic_adapter::build_request).
#include "providers/anthropic_adapter.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <utility>

#include "providers/adapter_common.hpp"
#include "providers/anthropic_common.hpp"

namespace gatewayz::providers {

namespace {

namespace json = boost::json;
using anthropic::find;
using anthropic::find_string;
using anthropic::jstr;
using anthropic::parse_json;
using anthropic::trim;
using anthropic::view;

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

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
    if (const json::value* parallel = find(in, "parallel_tool_calls");
        parallel != nullptr && parallel->is_bool() && !parallel->get_bool() && out.contains("tools")) {
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
    if (const json::value* logprobs = find(in, "logprobs");
        logprobs != nullptr && logprobs->is_bool() && logprobs->get_bool()) {
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
        return fail(
            fmt::format("{}: content part type `{}` is not supported in system messages", part_where, view(*type)));
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
        return fail(fmt::format("{}: content part type `{}` is not supported for this model", part_where, view(*type)));
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
      blocks.push_back(json::object{{"type", "image"},
                                    {"source", json::object{{"type", "base64"},
                                                            {"media_type", jstr(media_type)},
                                                            {"data", jstr(text.substr(comma + 1))}}}});
      return true;
    }
    if (starts_with_icase(text, "https://") || starts_with_icase(text, "http://")) {
      blocks.push_back(json::object{{"type", "image"}, {"source", json::object{{"type", "url"}, {"url", *url}}}});
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
      const json::string* name =
          (function != nullptr && function->is_object()) ? find_string(function->get_object(), "name") : nullptr;
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
      return fail(
          "tool_choice must be \"auto\", \"required\", \"none\" or {\"type\":\"function\",\"function\":{\"name\":...}}");
    }
    out["type"] = "tool";
    out["name"] = *name;
    return true;
  }

  std::string& error_;
  std::string system_;
  json::array messages_;
};

}  // namespace

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

}  // namespace gatewayz::providers

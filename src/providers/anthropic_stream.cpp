// Stream: Anthropic events => chat.completion.chunk events
// (anthropic_adapter::make_stream_translator).
#include "providers/anthropic_adapter.hpp"

#include <fmt/format.h>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "core/json_scan.hpp"
#include "providers/adapter_common.hpp"
#include "providers/anthropic_common.hpp"

namespace gatewayz::providers {

namespace {

using anthropic::finish_reason_for;
using anthropic::trim;

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
    std::optional<std::string> error_type;
    if (const auto error = detail::object_member(data, top_, "error", inner_)) {
      message = detail::string_member(*error, inner_, "message");
      error_type = detail::string_member(*error, inner_, "type");
    }
    stream_error_ = (message && !message->empty()) ? detail::redact(std::move(*message), api_key_)
                                                   : "The provider reported an error during the stream";
    out += R"(data: {"error":{"message":)";
    out += json_scan::encode_string(stream_error_);
    out += R"(,"type":)";
    // Redacted like the message: whatever upstream echoes goes to the client.
    out += error_type ? json_scan::encode_string(detail::redact(std::move(*error_type), api_key_))
                      : std::string(R"("api_error")");
    out += R"(,"param":null,"code":null}})";
    out += "\n\n";
    return true;
  }

  void read_usage(std::string_view usage) {
    const auto update = [&](std::string_view key, std::int64_t& field) {
      if (const auto n = detail::int_member(usage, usage_scan_, key)) {
        field = detail::token_count(*n);
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

}  // namespace

std::unique_ptr<stream_translator> anthropic_adapter::make_stream_translator(const inbound_request& request) const {
  return std::make_unique<anthropic_stream_translator>(request.model, request.client_wants_usage, api_key_);
}

}  // namespace gatewayz::providers

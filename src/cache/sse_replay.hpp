#pragma once
// A cached chat completion replayed as the stream a streaming request
// expects (OpenAI's chat.completion.chunk events).
//
// Per choice, one chunk with the role and the whole message (content,
// refusal, tool calls with their index), then one with its finish_reason;
// with `include_usage` a last chunk with empty choices and the usage; then
// `data: [DONE]`. The id, created, model and system_fingerprint are the
// completion's. Pure; any thread.

#include <string>
#include <string_view>

namespace gatewayz::cache {

// Appends the events to `out`; false (out unchanged) when `completion` is
// not a chat completion object.
bool completion_to_sse(std::string_view completion, bool include_usage, std::string& out);

}  // namespace gatewayz::cache

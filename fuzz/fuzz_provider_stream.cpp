// Fuzzes the stream translators: an upstream SSE stream (Anthropic Messages
// events, or OpenAI chunks) in, the client's chat.completion.chunk stream out.
//
// Input layout: byte 0 bit 0 picks the adapter (0 Anthropic, 1 OpenAI); the
// rest is the upstream byte stream, cut into events by http::sse_parser as
// the gateway does.
//
// Invariants:
//  - no crash or sanitizer report (token sums included: UBSan traps on
//    signed overflow);
//  - usage is never negative and total = input + output fits;
//  - Anthropic: the output is well-formed SSE whose every event is
//    `data: [DONE]` (once, last, exactly when done()) or `data: <object>`
//    (valid by the gateway's RFC 8259 scanner) with
//    "object":"chat.completion.chunk" or an "error" member; the provider's
//    API key never appears in an error event;
//  - OpenAI: the output is the upstream events' bytes, in order, minus
//    some (the gateway's own usage chunk);
//  - differential: translating with and without the client asking for
//    usage gives the same events except usage-only chunks (choices empty).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/json_scan.hpp"
#include "http/sse.hpp"
#include "providers/anthropic_adapter.hpp"
#include "providers/openai_adapter.hpp"

#include "fuzz_check.hpp"

namespace {

using namespace gatewayz;

constexpr std::string_view api_key = "sk-fuzz-stream-0123456789";

config::provider_config provider(config::provider_kind kind) {
  config::provider_config p;
  p.name = "fuzz";
  p.kind = kind;
  p.base_url = "http://127.0.0.1:1/v1";
  p.api_key = std::string(api_key);
  return p;
}

struct result {
  std::string out;
  bool done = false;
  bool failed = false;  // on_event returned false
  providers::token_usage usage;
};

result translate(const providers::provider_adapter& adapter, std::string_view stream, bool wants_usage) {
  providers::inbound_request request;
  request.model = "fuzz-model";
  request.stream = true;
  request.client_wants_usage = wants_usage;
  auto translator = adapter.make_stream_translator(request);
  result r;
  http::sse_parser parser(1 << 20);
  const auto on_event = [&](const http::sse_event& e) {
    if (r.failed) return;
    const bool was_done = translator->done();
    if (!translator->on_event(e, r.out)) r.failed = true;
    if (was_done) FUZZ_CHECK(translator->done());
  };
  parser.feed(stream, on_event);
  parser.finish(on_event);
  r.done = translator->done();
  r.usage = translator->usage();
  FUZZ_CHECK(r.usage.input_tokens >= 0 && r.usage.output_tokens >= 0);
  FUZZ_CHECK(r.usage.input_tokens <= std::numeric_limits<std::int64_t>::max() - r.usage.output_tokens);
  return r;
}

// The events of a translator's output, each checked to be a complete SSE event.
std::vector<std::string> events_of(std::string_view out) {
  std::vector<std::string> events;
  http::sse_parser parser(std::numeric_limits<std::size_t>::max());
  const bool ok = parser.feed(out, [&](const http::sse_event& e) { events.emplace_back(e.data); });
  FUZZ_CHECK(ok && !parser.has_partial_event());
  return events;
}

// A chunk's members as the gateway validates JSON (json_scan: RFC 8259, so
// a lone surrogate escape copied from upstream is allowed, as it is for
// OpenAI upstreams whose chunks pass through untouched).
struct chunk_view {
  json_scan::object_scan scan;
  std::string_view text;
  std::string_view value(std::string_view key) const {
    const json_scan::member* m = scan.find(key);
    return m == nullptr ? std::string_view() : text.substr(m->value_span.begin, m->value_span.size());
  }
};

void check_anthropic(std::string_view stream) {
  static const providers::anthropic_adapter adapter(provider(config::provider_kind::anthropic));
  const result with_usage = translate(adapter, stream, true);
  const result without = translate(adapter, stream, false);
  FUZZ_CHECK(with_usage.done == without.done && with_usage.failed == without.failed);

  std::vector<std::string> kept[2];
  for (int pass = 0; pass < 2; ++pass) {
    const result& r = pass == 0 ? with_usage : without;
    const std::vector<std::string> events = events_of(r.out);
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (events[i] == "[DONE]") {
        FUZZ_CHECK(i + 1 == events.size() && r.done);
        continue;
      }
      chunk_view chunk;
      chunk.text = events[i];
      json_scan::scan_error error;
      FUZZ_CHECK(json_scan::scan_object(chunk.text, chunk.scan, error));
      if (!chunk.value("error").empty()) {
        // An upstream error is passed on redacted (text deltas are the
        // model's words and are not searched).
        FUZZ_CHECK(events[i].find(api_key) == std::string::npos);
        kept[pass].push_back(events[i]);
        continue;
      }
      FUZZ_CHECK(chunk.value("object") == "\"chat.completion.chunk\"");
      const std::string_view choices = chunk.value("choices");
      FUZZ_CHECK(!choices.empty());
      if (!chunk.value("usage").empty() && choices == "[]") {
        FUZZ_CHECK(pass == 0);  // only when the client asked for it
        continue;
      }
      // Ids and timestamps are made per translator when upstream sent none.
      std::string normalized;
      for (const json_scan::member& m : chunk.scan.members) {
        if (m.key == "id" || m.key == "created") continue;
        normalized += chunk.text.substr(m.key_span.begin, m.value_span.end - m.key_span.begin);
        normalized += ',';
      }
      kept[pass].push_back(std::move(normalized));
    }
    if (r.done) {
      FUZZ_CHECK(!events.empty() && events.back() == "[DONE]");
    } else {
      FUZZ_CHECK(events.empty() || events.back() != "[DONE]");
    }
  }
  FUZZ_CHECK(kept[0] == kept[1]);
}

void check_openai(std::string_view stream) {
  static const providers::openai_adapter adapter(provider(config::provider_kind::openai));
  const result with_usage = translate(adapter, stream, true);
  const result without = translate(adapter, stream, false);
  FUZZ_CHECK(with_usage.done == without.done && with_usage.failed == without.failed);
  // Pass-through: the client gets upstream's bytes, some events left out.
  std::vector<std::string> raws;
  http::sse_parser parser(1 << 20);
  const auto collect = [&](const http::sse_event& e) { raws.emplace_back(e.raw); };
  parser.feed(stream, collect);
  parser.finish(collect);
  for (const result* r : {&with_usage, &without}) {
    std::size_t at = 0;
    std::size_t next = 0;
    while (at < r->out.size()) {
      while (next < raws.size() && r->out.compare(at, raws[next].size(), raws[next]) != 0) ++next;
      FUZZ_CHECK(next < raws.size());
      at += raws[next].size();
      ++next;
    }
  }
  FUZZ_CHECK(without.out.size() <= with_usage.out.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    check_anthropic(stream);
  } else {
    check_openai(stream);
  }
  return 0;
}

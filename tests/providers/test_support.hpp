#pragma once
// Shared fixtures for the provider adapter tests: inbound requests built the
// way the gateway builds them (json_scan over the client's body), provider
// configs, and helpers to drive stream translators.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/json_scan.hpp"
#include "http/sse.hpp"
#include "providers/provider.hpp"

namespace gatewayz::providers::testing_support {

inline constexpr std::string_view test_api_key = "sk-test-0123456789abcdef";

// Owns the body and scan an inbound_request points into (hence not movable).
struct inbound {
  std::string body;
  json_scan::object_scan scan;
  inbound_request request;

  inbound() = default;
  inbound(const inbound&) = delete;
  inbound& operator=(const inbound&) = delete;
};

// Boost.JSON with the gateway's depth limit (its own default is 32).
inline boost::json::value parse_json(std::string_view text, boost::json::error_code& ec) {
  boost::json::parse_options options;
  options.max_depth = 128;
  return boost::json::parse(text, ec, {}, options);
}

inline boost::json::value parse_json(std::string_view text) {
  boost::json::error_code ec;
  boost::json::value value = parse_json(text, ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << text;
  return value;
}

// Mirrors the gateway: scan the body, decode model / stream / include_usage.
inline std::unique_ptr<inbound> make_inbound(std::string body, operation op = operation::chat_completions) {
  auto in = std::make_unique<inbound>();
  in->body = std::move(body);
  json_scan::scan_error error;
  EXPECT_TRUE(json_scan::scan_object(in->body, in->scan, error)) << error.message << " in " << in->body;
  in->request.op = op;
  in->request.body = in->body;
  in->request.scan = &in->scan;
  if (const json_scan::member* model = in->scan.find("model")) {
    const std::string_view token = std::string_view(in->body).substr(model->value_span.begin, model->value_span.size());
    in->request.model = json_scan::decode_string(token).value_or("");
  }
  if (const json_scan::member* stream = in->scan.find("stream")) {
    in->request.stream = stream->kind == json_scan::value_kind::boolean_true;
  }
  const boost::json::value parsed = parse_json(in->body);
  if (const auto* options = parsed.is_object() ? parsed.as_object().if_contains("stream_options") : nullptr;
      options != nullptr && options->is_object()) {
    const auto* include = options->as_object().if_contains("include_usage");
    in->request.client_wants_usage = include != nullptr && include->is_bool() && include->get_bool();
  }
  return in;
}

inline config::provider_config make_provider(config::provider_kind kind,
                                             std::string api_key = std::string(test_api_key)) {
  config::provider_config provider;
  provider.name = kind == config::provider_kind::openai ? "openrouter" : "anthropic";
  provider.kind = kind;
  provider.base_url = kind == config::provider_kind::openai ? "https://openrouter.ai/api/v1"
                                                            : "https://api.anthropic.com/v1";
  provider.api_key = std::move(api_key);
  return provider;
}

inline config::model_config make_model(std::string id, std::string upstream) {
  config::model_config model;
  model.id = std::move(id);
  model.upstream = std::move(upstream);
  return model;
}

// The value of header `name`, or nullptr; fails the test if it appears twice.
inline const header* find_header(const upstream_request& request, std::string_view name) {
  const header* found = nullptr;
  for (const header& h : request.headers) {
    if (h.name == name) {
      EXPECT_EQ(found, nullptr) << "duplicate header " << name;
      found = &h;
    }
  }
  return found;
}

inline std::string header_value(const upstream_request& request, std::string_view name) {
  const header* h = find_header(request, name);
  return h != nullptr ? h->value : std::string("<absent>");
}

// An event as the SSE parser reports a single `data:` line.
struct owned_event {
  std::string event;
  std::string data;
  std::string raw;

  http::sse_event view() const { return http::sse_event{event, data, {}, raw}; }
};

inline owned_event data_event(std::string data, std::string event = {}) {
  owned_event e;
  e.event = std::move(event);
  e.raw = (e.event.empty() ? std::string() : "event: " + e.event + "\n") + "data: " + data + "\n\n";
  e.data = std::move(data);
  return e;
}

struct stream_result {
  std::string out;
  bool ok = true;
};

// Runs `stream` through a real SSE parser in `chunk`-byte pieces (to show the
// translation does not depend on how the network splits the bytes).
inline stream_result run_stream(stream_translator& translator, std::string_view stream, std::size_t chunk = 7) {
  stream_result result;
  http::sse_parser parser;
  const auto on_event = [&](const http::sse_event& event) {
    if (!translator.on_event(event, result.out)) result.ok = false;
  };
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    EXPECT_TRUE(parser.feed(stream.substr(at, chunk), on_event));
  }
  EXPECT_TRUE(parser.finish(on_event));
  return result;
}

// The `data:` payloads of a translated stream, in order.
inline std::vector<std::string> data_payloads(std::string_view out) {
  std::vector<std::string> payloads;
  http::sse_parser parser;
  EXPECT_TRUE(parser.feed(out, [&](const http::sse_event& event) { payloads.emplace_back(event.data); }));
  EXPECT_TRUE(parser.finish([&](const http::sse_event& event) { payloads.emplace_back(event.data); }));
  return payloads;
}

}  // namespace gatewayz::providers::testing_support

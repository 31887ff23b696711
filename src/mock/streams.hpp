#pragma once
// How the mock provider delivers a planned answer over time (internal to
// src/mock): the timers that pace it and the SSE writers for OpenAI's and
// Anthropic's streams. mock_provider.cpp decides what a request gets (its
// request_plan) and hands the streaming part to these.
//
// Ownership: every reference argument must outlive the returned awaitable;
// the handler co_awaits each call at once. Threads: each awaitable runs on
// the executor of the connection that awaits it; `streams_completed` is the
// provider's shared counter and is only incremented (relaxed). Failure:
// each awaitable returns true when the exchange ended normally (including a
// deliberate reset) and false when the client went away (a write failed or
// a timer was cancelled); the handler then just returns.

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>

#include "http/server.hpp"
#include "mock/mock_provider.hpp"
#include "mock/wire_format.hpp"

namespace gatewayz::mock::detail {

enum class endpoint : std::uint8_t { chat, completions, embeddings, messages };

// Seconds since the epoch, for the bodies' `created` fields.
inline std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The behaviour of one request after applying the x-mock-* headers.
struct request_plan {
  std::shared_ptr<const behaviour> base;  // the shared snapshot (fixed_body lives here)
  double latency_ms = 0;
  double ttft_ms = 0;
  double tokens_per_s = 0;
  int output_tokens = 0;
  std::optional<failure_mode> failure;  // the failure this request simulates, if any
};

// Waits `ms` on a steady_timer. False when the wait was cancelled (the client
// went away and the server cancelled the handler).
boost::asio::awaitable<bool> pause_for(double ms);

// The malformed_body failure of a stream: a 200 event stream whose one event
// is not JSON.
boost::asio::awaitable<bool> serve_malformed_stream(http::request_context& ctx, const request_plan& plan);

// A chat or text completion stream of `count` tokens paced by `plan`; the
// connection is reset before token `reset_at` (-1: never). Increments
// `streams_completed` when the stream ends normally.
boost::asio::awaitable<bool> stream_openai(http::request_context& ctx, endpoint ep, const wire::generation_request& gen,
                                           const request_plan& plan, int count, bool hit_max_tokens, int reset_at,
                                           std::atomic<std::uint64_t>& streams_completed);

// The same for a Messages stream (message_start .. message_stop).
boost::asio::awaitable<bool> stream_anthropic(http::request_context& ctx, const wire::generation_request& gen,
                                              const request_plan& plan, int count, bool hit_max_tokens, int reset_at,
                                              std::atomic<std::uint64_t>& streams_completed);

}  // namespace gatewayz::mock::detail

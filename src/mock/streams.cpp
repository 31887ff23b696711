// The pacing timers and the SSE stream writers (contracts in streams.hpp).
#include "mock/streams.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace gatewayz::mock::detail {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

std::chrono::steady_clock::duration to_duration(double ms) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

http::response_head make_stream_head(unsigned version) {
  http::response_head head;
  head.version(version);
  head.result(bhttp::status::ok);
  head.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
  head.set(bhttp::field::cache_control, "no-cache");
  return head;
}

asio::awaitable<bool> pause_until(std::chrono::steady_clock::time_point deadline) {
  if (deadline <= std::chrono::steady_clock::now()) co_return true;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

// Token i (i >= 1) is due i / tokens_per_s after the first one; pacing from
// a fixed origin keeps the rate exact however long each write takes.
std::chrono::steady_clock::time_point token_deadline(std::chrono::steady_clock::time_point first,
                                                     const request_plan& plan, int index) {
  if (plan.tokens_per_s <= 0) return first;
  return first + to_duration(1000.0 * index / plan.tokens_per_s);
}

}  // namespace

asio::awaitable<bool> pause_for(double ms) {
  if (ms <= 0) co_return true;
  asio::steady_timer timer(co_await asio::this_coro::executor, to_duration(ms));
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

asio::awaitable<bool> serve_malformed_stream(http::request_context& ctx, const request_plan& plan) {
  http::response_head head = make_stream_head(ctx.req.version());
  if (!co_await ctx.writer.begin_stream(std::move(head))) co_return false;
  if (!co_await pause_for(plan.ttft_ms)) co_return false;
  const std::string event = "data: {not json\n\n";
  if (!co_await ctx.writer.write_chunk(event)) co_return false;
  co_return co_await ctx.writer.end_stream();
}

asio::awaitable<bool> stream_openai(http::request_context& ctx, endpoint ep, const wire::generation_request& gen,
                                    const request_plan& plan, int count, bool hit_max_tokens, int reset_at,
                                    std::atomic<std::uint64_t>& streams_completed) {
  const bool chat = ep == endpoint::chat;
  const wire::openai_stream events(chat ? wire::openai_stream::kind::chat : wire::openai_stream::kind::completion,
                                   wire::make_id(chat ? "chatcmpl-" : "cmpl-"), unix_now(), gen.model,
                                   gen.include_usage);
  http::response_head head = make_stream_head(ctx.req.version());
  if (!co_await ctx.writer.begin_stream(std::move(head))) co_return false;
  if (!co_await pause_for(plan.ttft_ms)) co_return false;
  if (chat) {
    const std::string role = events.role_event();
    if (!co_await ctx.writer.write_chunk(role)) co_return false;
  }
  const auto first = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (i == reset_at) {
      ctx.writer.reset();
      co_return true;
    }
    if (i == count) break;
    if (i > 0) {
      const bool waited = co_await pause_until(token_deadline(first, plan, i));
      if (!waited) co_return false;
    }
    const std::string token = events.token_event(i);
    if (!co_await ctx.writer.write_chunk(token)) co_return false;
  }
  const std::string finish = events.finish_event(hit_max_tokens);
  if (!co_await ctx.writer.write_chunk(finish)) co_return false;
  if (gen.include_usage) {
    const std::string usage = events.usage_event(gen.prompt_tokens, count);
    if (!co_await ctx.writer.write_chunk(usage)) co_return false;
  }
  if (!co_await ctx.writer.write_chunk(wire::openai_stream::done_event())) co_return false;
  if (!co_await ctx.writer.end_stream()) co_return false;
  streams_completed.fetch_add(1, std::memory_order_relaxed);
  co_return true;
}

asio::awaitable<bool> stream_anthropic(http::request_context& ctx, const wire::generation_request& gen,
                                       const request_plan& plan, int count, bool hit_max_tokens, int reset_at,
                                       std::atomic<std::uint64_t>& streams_completed) {
  const wire::anthropic_stream events(wire::make_id("msg_"), gen.model, gen.prompt_tokens);
  http::response_head head = make_stream_head(ctx.req.version());
  if (!co_await ctx.writer.begin_stream(std::move(head))) co_return false;
  if (!co_await pause_for(plan.ttft_ms)) co_return false;
  // Anthropic sends the envelope events back to back before the first delta.
  const std::string opening =
      events.message_start() + wire::anthropic_stream::content_block_start() + wire::anthropic_stream::ping();
  if (!co_await ctx.writer.write_chunk(opening)) co_return false;
  const auto first = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (i == reset_at) {
      ctx.writer.reset();
      co_return true;
    }
    if (i == count) break;
    if (i > 0) {
      const bool waited = co_await pause_until(token_deadline(first, plan, i));
      if (!waited) co_return false;
    }
    const std::string delta = wire::anthropic_stream::content_block_delta(i);
    if (!co_await ctx.writer.write_chunk(delta)) co_return false;
  }
  const std::string closing = wire::anthropic_stream::content_block_stop() +
                              wire::anthropic_stream::message_delta(hit_max_tokens, count) +
                              wire::anthropic_stream::message_stop();
  if (!co_await ctx.writer.write_chunk(closing)) co_return false;
  if (!co_await ctx.writer.end_stream()) co_return false;
  streams_completed.fetch_add(1, std::memory_order_relaxed);
  co_return true;
}

}  // namespace gatewayz::mock::detail

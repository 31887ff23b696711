#include "gateway/attempt.hpp"

#include <array>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "gateway/credit_estimate.hpp"
#include "http/sse.hpp"

namespace gatewayz::gateway {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

bool retryable_status(unsigned status) { return status >= 500 || status == 429; }

http::response_head attempt::head(unsigned status, std::string_view content_type) const {
  http::response_head h;
  h.result(static_cast<bhttp::status>(status));
  const auto fields = answer_fields(content_type);
  for (const auto& [name, value] : fields.view()) h.set(name, value);
  return h;
}

namespace {

std::string sse_error_event(const api_error& error) { return fmt::format("data: {}\n\n", error.to_json()); }

api_error error_for(http::upstream_failure failure, std::string_view provider) {
  switch (failure) {
    case http::upstream_failure::timeout: return api_error::upstream_timeout(provider);
    case http::upstream_failure::protocol:
      return api_error::upstream_bad_response(provider, "not a valid HTTP response");
    case http::upstream_failure::too_large: return api_error::upstream_bad_response(provider, "response too large");
    default: return api_error::upstream_unreachable(provider);
  }
}

// How long a finished stream's upstream body may take to end (see stream_response).
constexpr std::chrono::milliseconds drain_limit{200};

asio::awaitable<void> drain_body(http::upstream_exchange& exchange) {
  // (co_await is kept out of loop conditions: GCC 12 miscompiles some of those.)
  std::string rest;
  while (rest.size() < 64 * 1024) {
    const bool more = co_await exchange.read_some(rest);
    if (!more) break;
  }
}

std::string_view failure_name(http::upstream_failure failure) {
  switch (failure) {
    case http::upstream_failure::timeout: return "timeout";
    case http::upstream_failure::protocol: return "invalid_response";
    case http::upstream_failure::too_large: return "response_too_large";
    case http::upstream_failure::cancelled: return "cancelled";
    default: return "connection_error";
  }
}

// Status codes as error.type values; a fixed set keeps cardinality bounded.
std::string_view status_name(unsigned status) {
  switch (status) {
    case 400: return "400";
    case 401: return "401";
    case 403: return "403";
    case 404: return "404";
    case 408: return "408";
    case 413: return "413";
    case 422: return "422";
    case 429: return "429";
    case 500: return "500";
    case 502: return "502";
    case 503: return "503";
    case 504: return "504";
    default: return status >= 500 ? "5xx" : "4xx";
  }
}

// Adds the time a provider call takes to the attempt's upstream wait, also
// when the call ends by an exception (the client went away).
class wait_timer {
 public:
  explicit wait_timer(attempt_record& record, steady_clock::time_point start = steady_clock::now())
      : record_(record), start_(start) {}
  ~wait_timer() {
    if (running_) stop();
  }
  wait_timer(const wait_timer&) = delete;
  wait_timer& operator=(const wait_timer&) = delete;

  // Ends the wait now; returns when.
  steady_clock::time_point stop() {
    const auto now = steady_clock::now();
    record_.upstream_wait += now - start_;
    running_ = false;
    return now;
  }

 private:
  attempt_record& record_;
  steady_clock::time_point start_;
  bool running_ = true;
};

}  // namespace

bool attempt::build(providers::upstream_request& built, http::outgoing_request& out) {
  std::string build_error;
  if (!adapter.build_request(request, *target.model, built, build_error)) {
    // The request cannot be expressed for this provider; that is not the
    // provider's failure, but another provider may still take it.
    last_error = api_error::bad_request(std::move(build_error), "unsupported_request");
    return false;
  }
  out.method = bhttp::verb::post;
  out.target = built.path;
  out.body = built.payload();
  for (const auto& h : built.headers) out.headers.emplace_back(h.name, h.value);
  out.headers.emplace_back("x-request-id", request_id);
  if (!traceparent.empty()) out.headers.emplace_back("traceparent", traceparent);
  if (!tracestate.empty()) out.headers.emplace_back("tracestate", tracestate);
  return true;
}

attempt_outcome attempt::failed(http::upstream_failure failure) {
  if (failure == http::upstream_failure::cancelled) return attempt_outcome::client_gone;
  last_error = error_for(failure, provider.name);
  record.error_type = failure_name(failure);
  record.provider_failure = true;
  return attempt_outcome::retryable;
}

asio::awaitable<attempt_outcome> attempt::run() {
  providers::upstream_request built;
  http::outgoing_request out;
  if (!build(built, out)) co_return attempt_outcome::retryable;

  record.sent_at = steady_clock::now();
  http::upstream_exchange exchange;
  steady_clock::time_point answered_at;  // the response head, or the failure
  {
    wait_timer timing{record, record.sent_at};
    exchange = co_await pool.send(out, deadline);
    answered_at = timing.stop();
  }
  if (exchange.failure() != http::upstream_failure::none) co_return failed(exchange.failure());
  record.ttfb = answered_at - record.sent_at;

  const unsigned status = exchange.status();
  record.upstream_status = status;
  if (status < 200 || status >= 300) co_return co_await relay_error_status(exchange, status);
  if (request.stream) co_return co_await stream_response(exchange);

  std::string body;
  bool complete = false;
  if (exchange.read_buffered(body, provider.max_response_bytes)) {
    // The body came with the head: no wait to time, no coroutine to run.
    complete = exchange.failure() == http::upstream_failure::none;
  } else {
    wait_timer timing{record};
    complete = co_await exchange.read_all(body, provider.max_response_bytes);
  }
  if (!complete) co_return failed(exchange.failure());
  std::string translate_error;
  if (!adapter.translate_response(request, body, record.usage, summarize ? &record.response : nullptr,
                                  translate_error)) {
    last_error = api_error::upstream_bad_response(provider.name, std::move(translate_error));
    record.error_type = "invalid_response";
    record.provider_failure = true;
    co_return attempt_outcome::retryable;
  }
  // Written from views: no fields container, no allocation per field.
  const auto fields = answer_fields("application/json");
  record.client_status = 200;
  if (before_send != nullptr) before_send(before_send_context, body);
  const bool sent = co_await ctx.writer.send(200, fields.view(), body);
  if (!sent) co_return attempt_outcome::client_gone;
  co_return attempt_outcome::served;
}

asio::awaitable<attempt_outcome> attempt::relay_error_status(http::upstream_exchange& exchange, unsigned status) {
  record.error_type = status_name(status);
  if (status < 400) {
    // An API call answered with a redirect (or a stray 1xx) was not
    // answered: the client cannot follow it, so it is the provider's failure.
    last_error = api_error::upstream_bad_response(provider.name, fmt::format("unexpected HTTP {}", status));
    record.provider_failure = true;
    co_return attempt_outcome::retryable;
  }
  std::string body;
  {
    wait_timer timing{record};
    co_await exchange.read_all(body, 64 * 1024);
  }
  if (exchange.failure() == http::upstream_failure::cancelled) co_return attempt_outcome::client_gone;
  last_error = api_error::upstream_status(static_cast<int>(status), provider.name, adapter.error_message(body));
  // Passed on with the error when this is what the client gets (the last
  // attempt's error; failover.hpp).
  if (status == 429 || status == 503) last_error.retry_after = exchange.retry_after();
  if (retryable_status(status)) {
    record.provider_failure = true;
    co_return attempt_outcome::retryable;
  }
  record.client_status = static_cast<unsigned>(last_error.status);
  co_return attempt_outcome::served;  // the caller sends last_error as is
}

// One streamed answer, relayed event by event (see stream_response in the header).
class attempt::stream_relay {
 public:
  stream_relay(attempt& a, http::upstream_exchange& exchange)
      : a_(a), exchange_(exchange), translator_(a.adapter.make_stream_translator(a.request)) {
    // Reused for every read and flush (clear() keeps the capacity); sized up
    // front so a stream does not grow them chunk by chunk.
    upstream_bytes_.reserve(16 * 1024);  // one upstream read's most
    client_bytes_.reserve(8 * 1024);
  }

  asio::awaitable<attempt_outcome> run() {
    const bool relayed = co_await pump();
    const auto failure = exchange_.failure();
    if (!relayed || failure == http::upstream_failure::cancelled) {
      a_.record.usage = delivered_usage();
      co_return attempt_outcome::client_gone;
    }
    if (failure == http::upstream_failure::none && !malformed_ && !translator_->done()) {
      // The body ended: an event whose terminating blank line was a bare '\r'
      // at the very end can only be completed now.
      parser_.finish([this](const http::sse_event& event) { on_event(event); });
    }
    a_.record.usage = translator_->usage();
    auto error = end_error(failure);
    if (error) {
      api_error failure_error = std::move(*error);
      co_return co_await fail(std::move(failure_error));
    }
    co_return co_await complete();
  }

 private:
  void on_event(const http::sse_event& event) {
    if (malformed_ || translator_->done()) return;
    const auto before = client_bytes_.size();
    if (!translator_->on_event(event, client_bytes_)) malformed_ = true;
    if (client_bytes_.size() > before) {
      ++pending_chunks_;
      if (a_.summarize)
        providers::summarize_openai_sse(std::string_view(client_bytes_).substr(before), a_.record.response);
    }
  }

  // What a stream the client cut was worth: the provider's usage if it was
  // reported, else one output token per chunk the client got (a chunk
  // carries about one token) and the input as estimated for its reservation.
  providers::token_usage delivered_usage() const {
    auto usage = translator_->usage();
    if (usage.reported || delivered_chunks_ == 0) return usage;
    usage.output_tokens = static_cast<std::int64_t>(delivered_chunks_);
    usage.input_tokens = estimate_input_tokens(a_.request);
    return usage;
  }

  // Relays events until the translator is done, the body ends, or the stream
  // fails; false when the client went away.
  asio::awaitable<bool> pump() {
    while (!translator_->done()) {
      upstream_bytes_.clear();
      bool more = false;
      {
        wait_timer timing{a_.record};
        more = co_await exchange_.read_some(upstream_bytes_);
      }
      if (!more) break;
      parser_.feed(upstream_bytes_, [this](const http::sse_event& event) { on_event(event); });
      if (parser_.failed()) malformed_ = true;
      // An error the upstream reported before anything reached the client
      // (e.g. Anthropic's overloaded_error as the first event) can still fail over.
      if (!translator_->stream_error().empty() && !a_.ctx.writer.started()) break;
      const bool flushed = co_await flush();
      if (!flushed) co_return false;
      if (malformed_) break;
    }
    co_return true;
  }

  // Sends what the translator produced. Headers go to the client only once
  // the first translated bytes exist, so an upstream that fails before
  // producing anything can still be failed over.
  asio::awaitable<bool> flush() {
    if (client_bytes_.empty()) co_return true;
    auto& writer = a_.ctx.writer;
    if (!writer.started()) {
      auto h = a_.head(200, "text/event-stream");
      h.set(bhttp::field::cache_control, "no-cache");
      h.set("x-accel-buffering", "no");
      a_.record.client_status = 200;
      a_.record.first_chunk_at = steady_clock::now();
      const bool begun = co_await writer.begin_stream(std::move(h));
      if (!begun) co_return false;
    }
    const bool ok = co_await writer.write_chunk(client_bytes_);
    a_.record.last_chunk_at = steady_clock::now();
    client_bytes_.clear();
    if (ok) delivered_chunks_ += pending_chunks_;
    pending_chunks_ = 0;
    co_return ok;
  }

  // How the stream ended, as the error the client gets; none when it ended well.
  std::optional<api_error> end_error(http::upstream_failure failure) {
    auto& record = a_.record;
    const auto& name = a_.provider.name;
    std::optional<api_error> error;
    if (malformed_) {
      error = api_error::upstream_bad_response(name, "malformed event stream");
      record.error_type = "invalid_response";
    } else if (failure != http::upstream_failure::none) {
      error = error_for(failure, name);
      record.error_type = failure_name(failure);
    } else if (!translator_->done() && parser_.has_partial_event()) {
      error = api_error::upstream_bad_response(name, "event stream cut off mid-event");
      record.error_type = "invalid_response";
    } else if (!translator_->stream_error().empty() && !a_.ctx.writer.started()) {
      error = api_error::upstream_status(502, name, std::string(translator_->stream_error()));
      record.error_type = "stream_error";
    }
    if (!translator_->stream_error().empty()) {
      // The provider reported an error inside a stream the client already reads.
      record.in_band_error = true;
      if (record.error_type.empty()) record.error_type = "stream_error";
    }
    return error;
  }

  asio::awaitable<attempt_outcome> fail(api_error error) {
    a_.record.provider_failure = true;
    if (!a_.ctx.writer.started()) {
      a_.last_error = std::move(error);
      co_return attempt_outcome::retryable;
    }
    // Bytes already reached the client: report the failure in-band, the way
    // OpenAI does, and end the stream.
    a_.record.in_band_error = true;
    client_bytes_ = sse_error_event(error);
    const bool flushed = co_await flush();
    if (!flushed) co_return attempt_outcome::client_gone;
    const bool ended = co_await a_.ctx.writer.end_stream();
    if (!ended) co_return attempt_outcome::client_gone;
    co_return attempt_outcome::served;
  }

  asio::awaitable<attempt_outcome> complete() {
    if (!translator_->done()) {
      // The upstream ended its body cleanly without the terminator; the
      // client still gets one so it knows the stream is complete.
      client_bytes_ += "data: [DONE]\n\n";
    }
    const bool flushed = co_await flush();
    if (!flushed) co_return attempt_outcome::client_gone;
    const bool ended = co_await a_.ctx.writer.end_stream();
    if (!ended) co_return attempt_outcome::client_gone;

    // Drain what little may follow the terminator so the connection can be
    // reused, but briefly: the client's keep-alive connection cannot start
    // its next request before this handler returns, so an upstream slow to
    // end its body is not waited for (its read times out and the connection
    // is closed, not pooled). The exchange's own deadline bounds the wait: a
    // timer raced against the read would spawn two coroutines per stream.
    if (!exchange_.body_complete()) {
      exchange_.shorten_deadline(steady_clock::now() + drain_limit);
      co_await drain_body(exchange_);
    }
    co_return attempt_outcome::served;
  }

  attempt& a_;
  http::upstream_exchange& exchange_;
  std::unique_ptr<providers::stream_translator> translator_;
  http::sse_parser parser_;
  std::string upstream_bytes_;
  std::string client_bytes_;
  std::size_t pending_chunks_ = 0;    // translated chunks in client_bytes_
  std::size_t delivered_chunks_ = 0;  // chunks the client was sent
  bool malformed_ = false;
};

asio::awaitable<attempt_outcome> attempt::stream_response(http::upstream_exchange& exchange) {
  stream_relay relay{*this, exchange};
  co_return co_await relay.run();
}

}  // namespace gatewayz::gateway

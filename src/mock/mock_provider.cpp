#include "mock/mock_provider.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <fmt/format.h>

#include "mock/streams.hpp"
#include "mock/wire_format.hpp"

namespace gatewayz::mock {

bool parse_failure_mode(std::string_view text, failure_mode& out) {
  if (text == "500" || text == "http_500") {
    out = failure_mode::http_500;
  } else if (text == "429" || text == "http_429") {
    out = failure_mode::http_429;
  } else if (text == "hang") {
    out = failure_mode::hang;
  } else if (text == "reset" || text == "reset_mid_stream") {
    out = failure_mode::reset_mid_stream;
  } else if (text == "malformed" || text == "malformed_body") {
    out = failure_mode::malformed_body;
  } else {
    return false;
  }
  return true;
}

std::string_view to_string(failure_mode mode) {
  switch (mode) {
    case failure_mode::http_500: return "500";
    case failure_mode::http_429: return "429";
    case failure_mode::hang: return "hang";
    case failure_mode::reset_mid_stream: return "reset";
    case failure_mode::malformed_body: return "malformed";
  }
  return "500";
}

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using detail::endpoint;
using detail::pause_for;
using detail::request_plan;
using detail::serve_malformed_stream;
using detail::stream_anthropic;
using detail::stream_openai;
using detail::unix_now;
using wire::api_format;

constexpr std::size_t max_recorded_requests = 256;
// Tokens a reset_mid_stream stream delivers before the connection is reset.
constexpr int tokens_before_reset = 2;

api_format format_of(endpoint e) { return e == endpoint::messages ? api_format::anthropic : api_format::openai; }

http::response make_response(unsigned version, bhttp::status status, std::string_view content_type, std::string body) {
  http::response res{status, version};
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

http::response error_response(unsigned version, api_format format, int status, std::string_view message) {
  return make_response(version, static_cast<bhttp::status>(status), "application/json",
                       wire::error_body(format, status, message));
}

// The "hang" failure: a timer that never fires. Only cancellation (client
// gone, server shutting down) ends it, and then the handler just returns.
asio::awaitable<void> hang_forever() {
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  (void)ec;
}

bool parse_header_number(std::string_view text, double& out) {
  // from_chars rejects leading spaces, which HTTP allows around field values.
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value) || value < 0) return false;
  out = value;
  return true;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void write_port_file(const std::string& path, std::uint16_t port) {
  // Write a temporary file and rename it so a reader polling for the file
  // never sees it empty or half written.
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    out.close();
    if (!out) throw std::system_error(errno, std::generic_category(), "cannot write port file " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

// Counts a request as cancelled unless it reached a normal end. A guard
// rather than a catch because a cancelled coroutine may also be destroyed
// without ever resuming (e.g. its io_context is torn down).
class cancellation_guard {
 public:
  explicit cancellation_guard(std::atomic<std::uint64_t>& cancelled) : cancelled_(cancelled) {}
  cancellation_guard(const cancellation_guard&) = delete;
  cancellation_guard& operator=(const cancellation_guard&) = delete;
  ~cancellation_guard() {
    if (!completed_) cancelled_.fetch_add(1, std::memory_order_relaxed);
  }
  void completed() { completed_ = true; }

 private:
  std::atomic<std::uint64_t>& cancelled_;
  bool completed_ = false;
};

}  // namespace

struct mock_provider::impl {
  explicit impl(mock_options o)
      : options_(std::move(o)), behaviour_(std::make_shared<const behaviour>(options_.initial)) {}

  // ---- shared state -------------------------------------------------------

  std::shared_ptr<const behaviour> snapshot() const {
    std::lock_guard lock(behaviour_mutex_);
    return behaviour_;
  }

  void set_behaviour(const behaviour& b) {
    auto next = std::make_shared<const behaviour>(b);
    std::lock_guard lock(behaviour_mutex_);
    behaviour_ = std::move(next);
  }

  mock_stats stats() const {
    mock_stats s;
    s.requests = requests_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    s.cancelled = cancelled_.load(std::memory_order_relaxed);
    s.streams_completed = streams_completed_.load(std::memory_order_relaxed);
    return s;
  }

  void record(const http::request& req) {
    // Copy outside the lock so the critical section is a move and a pop.
    recorded_request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.headers.reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
    for (const auto& field : req) r.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
    const std::string& body = req.body();
    r.body_truncated = body.size() > recorded_request::max_recorded_body_bytes;
    r.body = r.body_truncated ? body.substr(0, recorded_request::max_recorded_body_bytes) : body;
    std::lock_guard lock(recorded_mutex_);
    if (recorded_.size() >= max_recorded_requests) recorded_.pop_front();
    recorded_.push_back(std::move(r));
  }

  std::vector<recorded_request> recent_requests() const {
    std::lock_guard lock(recorded_mutex_);
    return {recorded_.begin(), recorded_.end()};
  }

  void clear_recorded() {
    std::lock_guard lock(recorded_mutex_);
    recorded_.clear();
  }

  // ---- lifecycle ----------------------------------------------------------

  http::handler_factory factory() {
    return [this](std::size_t, asio::io_context&) -> http::request_handler {
      return [this](http::request_context& ctx) { return handle(ctx); };
    };
  }

  // Creates and binds the server; the caller holds lifecycle_mutex_.
  void listen_locked() {
    if (server_) throw std::logic_error("mock_provider is already running");
    auto srv = std::make_unique<http::server>(options_.server, factory());
    srv->listen();
    port_.store(srv->port());
    if (options_.port_file) write_port_file(*options_.port_file, srv->port());
    server_ = std::move(srv);
  }

  void start() {
    std::lock_guard lock(lifecycle_mutex_);
    listen_locked();
    thread_ = std::thread([srv = server_.get()] {
      try {
        srv->run();
      } catch (const std::exception& e) {
        fmt::print(stderr, "mock provider: server stopped with an error: {}\n", e.what());
      }
    });
  }

  void run() {
    // Signals are awaited on their own small io_context: the server's
    // io_contexts are private to it, and asio delivers the signal through a
    // self-pipe whichever thread the kernel interrupts. The set exists before
    // the port is published, so a supervisor that reads the port file and
    // then sends SIGTERM cannot kill us by the default action.
    asio::io_context signal_io(1);
    asio::signal_set signals(signal_io, SIGINT, SIGTERM);

    http::server* srv = nullptr;
    {
      std::lock_guard lock(lifecycle_mutex_);
      listen_locked();
      foreground_ = true;
      srv = server_.get();
    }
    fmt::print(stderr, "mock provider listening on {}:{}\n", options_.server.host, port_.load());

    // shutdown() bounds the drain by shutdown_grace, so one signal suffices.
    signals.async_wait([srv, grace = options_.shutdown_grace](const boost::system::error_code& ec, int) {
      if (!ec) srv->shutdown(grace);
    });
    std::thread signal_thread([&signal_io] { signal_io.run(); });

    struct cleanup {
      impl& self;
      asio::io_context& io;
      std::thread& thread;
      ~cleanup() {
        io.stop();
        thread.join();
        std::lock_guard lock(self.lifecycle_mutex_);
        self.server_.reset();
        self.foreground_ = false;
      }
    } on_exit{*this, signal_io, signal_thread};
    srv->run();
  }

  void stop() {
    std::unique_lock lock(lifecycle_mutex_);
    if (!server_) return;
    server_->shutdown(options_.shutdown_grace);
    // A foreground run() tears its own server down once run() returns.
    if (foreground_) return;
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  // ---- request handling ---------------------------------------------------

  asio::awaitable<void> handle(http::request_context& ctx) {
    std::string_view target = ctx.req.target();
    std::string_view path = target.substr(0, target.find('?'));
    if (path.starts_with("/_mock/")) {
      co_await handle_control(ctx, path);
      co_return;
    }
    requests_.fetch_add(1, std::memory_order_relaxed);
    record(ctx.req);
    cancellation_guard guard(cancelled_);
    if (co_await handle_api(ctx, path)) guard.completed();
  }

  // Returns true when the exchange ended normally (including a deliberate
  // reset), false when the client went away.
  asio::awaitable<bool> handle_api(http::request_context& ctx, std::string_view path) {
    const unsigned version = ctx.req.version();
    const bhttp::verb method = ctx.req.method();

    if (path == "/v1/models" || path.starts_with("/v1/models/")) {
      if (method != bhttp::verb::get) co_return co_await send_method_not_allowed(ctx, api_format::openai, "GET");
      if (!authorized(ctx, api_format::openai)) co_return co_await send_unauthorized(ctx, api_format::openai);
      std::string body = path == "/v1/models"
                             ? wire::models_body(options_.models, unix_now())
                             : wire::model_body(path.substr(std::string_view("/v1/models/").size()), unix_now());
      http::response res = make_response(version, bhttp::status::ok, "application/json", std::move(body));
      co_return co_await ctx.writer.send(std::move(res));
    }

    std::optional<endpoint> ep;
    if (path == "/v1/chat/completions") ep = endpoint::chat;
    if (path == "/v1/completions") ep = endpoint::completions;
    if (path == "/v1/embeddings") ep = endpoint::embeddings;
    if (path == "/v1/messages") ep = endpoint::messages;
    if (!ep) {
      http::response res = error_response(version, api_format::openai, 404,
                                          fmt::format("Invalid URL ({} {})", ctx.req.method_string(), path));
      co_return co_await ctx.writer.send(std::move(res));
    }
    const api_format format = format_of(*ep);
    if (method != bhttp::verb::post) co_return co_await send_method_not_allowed(ctx, format, "POST");

    if (format == api_format::anthropic) {
      if (!authorized(ctx, format)) co_return co_await send_unauthorized(ctx, format);
      if (ctx.req.find("anthropic-version") == ctx.req.end()) {
        http::response res = error_response(version, format, 400, "anthropic-version: header is required");
        co_return co_await ctx.writer.send(std::move(res));
      }
    } else if (!authorized(ctx, format)) {
      co_return co_await send_unauthorized(ctx, format);
    }

    request_plan plan;
    std::string plan_error;
    if (!make_plan(ctx.req, plan, plan_error)) {
      http::response res = error_response(version, format, 400, plan_error);
      co_return co_await ctx.writer.send(std::move(res));
    }

    if (*ep == endpoint::embeddings) co_return co_await serve_embeddings(ctx, plan);

    wire::generation_request gen;
    std::string error;
    const bool valid = *ep == endpoint::chat          ? wire::parse_chat(ctx.req.body(), gen, error)
                       : *ep == endpoint::completions ? wire::parse_completion(ctx.req.body(), gen, error)
                                                      : wire::parse_messages(ctx.req.body(), gen, error);
    if (!valid) {
      http::response res = error_response(version, format, 400, error);
      co_return co_await ctx.writer.send(std::move(res));
    }
    co_return co_await serve_generation(ctx, *ep, gen, plan);
  }

  bool authorized(const http::request_context& ctx, api_format format) const {
    const http::request& req = ctx.req;
    if (format == api_format::anthropic) {
      // Anthropic rejects a request without x-api-key whatever the key.
      auto it = req.find("x-api-key");
      if (it == req.end() || it->value().empty()) return false;
      return options_.required_api_key.empty() || it->value() == options_.required_api_key;
    }
    if (options_.required_api_key.empty()) return true;
    auto it = req.find(bhttp::field::authorization);
    if (it == req.end()) return false;
    std::string_view value = it->value();
    constexpr std::string_view scheme = "Bearer ";
    return value.size() > scheme.size() && lower(value.substr(0, scheme.size())) == "bearer " &&
           value.substr(scheme.size()) == options_.required_api_key;
  }

  asio::awaitable<bool> send_unauthorized(http::request_context& ctx, api_format format) {
    std::string_view message;
    if (format == api_format::anthropic) {
      message = ctx.req.find("x-api-key") == ctx.req.end() ? "x-api-key header is required" : "invalid x-api-key";
    } else {
      message = ctx.req.find(bhttp::field::authorization) == ctx.req.end()
                    ? "You didn't provide an API key. You need to provide your API key in an Authorization header "
                      "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    : "Incorrect API key provided.";
    }
    http::response res = error_response(ctx.req.version(), format, 401, message);
    co_return co_await ctx.writer.send(std::move(res));
  }

  asio::awaitable<bool> send_method_not_allowed(http::request_context& ctx, api_format format,
                                                std::string_view allowed) {
    const std::string_view target = ctx.req.target();
    http::response res = error_response(
        ctx.req.version(), format, 405,
        fmt::format("Method {} is not allowed on {}", ctx.req.method_string(), target.substr(0, target.find('?'))));
    res.set(bhttp::field::allow, allowed);
    co_return co_await ctx.writer.send(std::move(res));
  }

  // Applies the x-mock-* headers to the current behaviour and decides whether
  // this request fails.
  bool make_plan(const http::request& req, request_plan& plan, std::string& error) {
    plan.base = snapshot();
    const behaviour& b = *plan.base;
    plan.latency_ms = b.latency_ms;
    plan.ttft_ms = b.ttft_ms;
    plan.tokens_per_s = b.tokens_per_s;
    plan.output_tokens = b.output_tokens;

    struct numeric_override {
      std::string_view header;
      double* target;
    };
    double output_tokens = plan.output_tokens;
    const numeric_override numbers[] = {{"x-mock-latency-ms", &plan.latency_ms},
                                        {"x-mock-ttft-ms", &plan.ttft_ms},
                                        {"x-mock-tokens-per-s", &plan.tokens_per_s},
                                        {"x-mock-output-tokens", &output_tokens}};
    for (const numeric_override& n : numbers) {
      auto it = req.find(n.header);
      if (it == req.end()) continue;
      if (!parse_header_number(it->value(), *n.target)) {
        error = fmt::format("{} must be a non-negative number", n.header);
        return false;
      }
    }
    plan.output_tokens = static_cast<int>(std::min<double>(std::floor(output_tokens), wire::max_generated_tokens));

    if (auto it = req.find("x-mock-failure"); it != req.end()) {
      failure_mode forced{};
      if (it->value() == "none") return true;  // immune to error_rate
      if (!parse_failure_mode(it->value(), forced)) {
        error = "x-mock-failure must be one of none, 500, 429, hang, reset, malformed";
        return false;
      }
      plan.failure = forced;
      return true;
    }
    if (b.error_rate > 0) {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      if (std::uniform_real_distribution<double>(0, 1)(rng) < b.error_rate) plan.failure = b.failure;
    }
    return true;
  }

  // The simulated failures that answer without streaming (status codes,
  // hang, reset before answering, malformed JSON).
  asio::awaitable<bool> serve_plain_failure(http::request_context& ctx, api_format format, failure_mode mode) {
    const unsigned version = ctx.req.version();
    switch (mode) {
      case failure_mode::http_500: {
        http::response res = error_response(version, format, 500,
                                            "The server had an error while processing your request. Sorry about that!");
        co_return co_await ctx.writer.send(std::move(res));
      }
      case failure_mode::http_429: {
        http::response res = error_response(version, format, 429, "Rate limit reached. Please try again in 1s.");
        res.set(bhttp::field::retry_after, "1");
        co_return co_await ctx.writer.send(std::move(res));
      }
      case failure_mode::hang: co_await hang_forever(); co_return false;
      case failure_mode::reset_mid_stream: ctx.writer.reset(); co_return true;
      case failure_mode::malformed_body: {
        http::response res = make_response(version, bhttp::status::ok, "application/json", R"({"id": broken)");
        co_return co_await ctx.writer.send(std::move(res));
      }
    }
    co_return true;
  }

  asio::awaitable<bool> serve_embeddings(http::request_context& ctx, const request_plan& plan) {
    wire::embedding_request request;
    std::string error;
    if (!wire::parse_embeddings(ctx.req.body(), request, error)) {
      http::response res = error_response(ctx.req.version(), api_format::openai, 400, error);
      co_return co_await ctx.writer.send(std::move(res));
    }
    if (!co_await pause_for(plan.latency_ms)) co_return false;
    if (plan.failure) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      co_return co_await serve_plain_failure(ctx, api_format::openai, *plan.failure);
    }
    http::response res =
        make_response(ctx.req.version(), bhttp::status::ok, "application/json", wire::embeddings_body(request));
    co_return co_await ctx.writer.send(std::move(res));
  }

  asio::awaitable<bool> serve_generation(http::request_context& ctx, endpoint ep, const wire::generation_request& gen,
                                         const request_plan& plan) {
    const api_format format = format_of(ep);
    // Like a real model: the answer has its natural length (output_tokens)
    // unless max_tokens cuts it short, and only then is the finish "length".
    const int natural = std::clamp(plan.output_tokens, 0, wire::max_generated_tokens);
    const int count = gen.max_tokens ? std::min(natural, *gen.max_tokens) : natural;
    const bool hit_max_tokens = gen.max_tokens && *gen.max_tokens < natural;

    // latency_ms models the provider's queueing and prompt processing: it
    // precedes the answer, the error or the stream headers alike.
    if (!co_await pause_for(plan.latency_ms)) co_return false;

    if (plan.failure) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      const failure_mode mode = *plan.failure;
      const bool in_stream = mode == failure_mode::reset_mid_stream || mode == failure_mode::malformed_body;
      if (!gen.stream || !in_stream) co_return co_await serve_plain_failure(ctx, format, mode);
      if (mode == failure_mode::malformed_body) co_return co_await serve_malformed_stream(ctx, plan);
      // reset_mid_stream falls through to a stream that is cut short.
    }

    if (!gen.stream) {
      if (ep == endpoint::chat && !plan.base->fixed_body.empty()) {
        // The benchmark path: the configured bytes, nothing computed.
        http::response res =
            make_response(ctx.req.version(), bhttp::status::ok, "application/json", plan.base->fixed_body);
        co_return co_await ctx.writer.send(std::move(res));
      }
      const std::string id = wire::make_id(ep == endpoint::chat          ? "chatcmpl-"
                                           : ep == endpoint::completions ? "cmpl-"
                                                                         : "msg_");
      wire::completion_facts facts;
      facts.id = id;
      facts.created = unix_now();
      facts.model = gen.model;
      facts.prompt_tokens = gen.prompt_tokens;
      facts.completion_tokens = count;
      facts.hit_max_tokens = hit_max_tokens;
      std::string body = ep == endpoint::chat          ? wire::chat_completion_body(facts)
                         : ep == endpoint::completions ? wire::text_completion_body(facts)
                                                       : wire::message_body(facts);
      http::response res = make_response(ctx.req.version(), bhttp::status::ok, "application/json", std::move(body));
      co_return co_await ctx.writer.send(std::move(res));
    }

    const int reset_at = plan.failure ? std::min(tokens_before_reset, count) : -1;
    if (format == api_format::anthropic) {
      co_return co_await stream_anthropic(ctx, gen, plan, count, hit_max_tokens, reset_at, streams_completed_);
    }
    co_return co_await stream_openai(ctx, ep, gen, plan, count, hit_max_tokens, reset_at, streams_completed_);
  }

  // ---- control API --------------------------------------------------------

  asio::awaitable<void> handle_control(http::request_context& ctx, std::string_view path) {
    const unsigned version = ctx.req.version();
    const bhttp::verb method = ctx.req.method();
    std::optional<http::response> res;
    std::string_view allowed;
    if (path == "/_mock/behaviour") {
      allowed = "GET, PUT";
      if (method == bhttp::verb::get) {
        res = make_response(version, bhttp::status::ok, "application/json", wire::behaviour_to_json(*snapshot()));
      } else if (method == bhttp::verb::put) {
        // Read-merge-write under one lock so concurrent PUTs of different
        // fields do not undo each other.
        std::unique_lock lock(behaviour_mutex_);
        behaviour next = *behaviour_;
        std::string error;
        if (wire::behaviour_from_json(ctx.req.body(), next, error)) {
          behaviour_ = std::make_shared<const behaviour>(next);
          lock.unlock();
          res = make_response(version, bhttp::status::ok, "application/json", wire::behaviour_to_json(next));
        } else {
          lock.unlock();
          res = error_response(version, api_format::openai, 400, error);
        }
      }
    } else if (path == "/_mock/stats") {
      allowed = "GET";
      if (method == bhttp::verb::get) {
        res = make_response(version, bhttp::status::ok, "application/json", wire::stats_to_json(stats()));
      }
    } else if (path == "/_mock/requests") {
      allowed = "GET, DELETE";
      if (method == bhttp::verb::get) {
        res = make_response(version, bhttp::status::ok, "application/json", wire::requests_to_json(recent_requests()));
      } else if (method == bhttp::verb::delete_) {
        clear_recorded();
        res = make_response(version, bhttp::status::no_content, "application/json", "");
        res->erase(bhttp::field::content_type);
      }
    } else {
      res = error_response(version, api_format::openai, 404, fmt::format("Unknown control path: {}", path));
    }
    if (!res) {
      res = error_response(version, api_format::openai, 405,
                           fmt::format("Method {} is not allowed on {}", ctx.req.method_string(), path));
      res->set(bhttp::field::allow, allowed);
    }
    co_await ctx.writer.send(std::move(*res));
  }

  mock_options options_;

  mutable std::mutex behaviour_mutex_;
  std::shared_ptr<const behaviour> behaviour_;  // replaced whole, never mutated

  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> streams_completed_{0};

  mutable std::mutex recorded_mutex_;
  std::deque<recorded_request> recorded_;

  std::mutex lifecycle_mutex_;
  std::unique_ptr<http::server> server_;
  std::thread thread_;       // runs server_ after start()
  bool foreground_ = false;  // server_ is being run by run() on another thread
  std::atomic<std::uint16_t> port_{0};
};

mock_provider::mock_provider(mock_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

mock_provider::~mock_provider() { stop(); }

void mock_provider::start() { impl_->start(); }
void mock_provider::run() { impl_->run(); }
void mock_provider::stop() { impl_->stop(); }

std::uint16_t mock_provider::port() const { return impl_->port_.load(); }

void mock_provider::set_behaviour(const behaviour& b) { impl_->set_behaviour(b); }
behaviour mock_provider::current_behaviour() const { return *impl_->snapshot(); }
mock_stats mock_provider::stats() const { return impl_->stats(); }
std::vector<recorded_request> mock_provider::recent_requests() const { return impl_->recent_requests(); }
void mock_provider::clear_recorded() { impl_->clear_recorded(); }

}  // namespace gatewayz::mock

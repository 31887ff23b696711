#include "gateway/gateway.hpp"

#include <chrono>
#include <iterator>
#include <unordered_map>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/api_error.hpp"
#include "core/json_scan.hpp"
#include "core/request_id.hpp"
#include "http/client.hpp"
#include "http/sse.hpp"

namespace gatewayz::gateway {

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using clock = std::chrono::steady_clock;
using providers::operation;
using namespace asio::experimental::awaitable_operators;

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}


// Is the request's `stream_options.include_usage` true?
bool wants_usage(std::string_view body, const json_scan::object_scan& scan) {
  const auto* options = scan.find("stream_options");
  if (!options || options->kind != json_scan::value_kind::object) return false;
  json_scan::object_scan inner;
  json_scan::scan_error error;
  const auto text = body.substr(options->value_span.begin, options->value_span.size());
  if (!json_scan::scan_object(text, inner, error)) return false;
  const auto* include = inner.find("include_usage");
  return include && include->kind == json_scan::value_kind::boolean_true;
}

http::response json_response(unsigned status, std::string body, unsigned version) {
  http::response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

std::string sse_error_event(const api_error& error) {
  return fmt::format("data: {}\n\n", error.to_json());
}

}  // namespace

// Per-shard state: one upstream pool per provider, used only on the shard's thread.
struct gateway::shard_state {
  std::vector<std::shared_ptr<http::upstream_pool>> pools;
};

struct gateway::impl {
  const config::gateway_config* config = nullptr;
  std::vector<std::unique_ptr<providers::provider_adapter>> adapters;  // per provider
  std::vector<http::upstream_endpoint> endpoints;                      // per provider
  std::unordered_map<std::string, std::vector<route_target>> routes;
  std::vector<route_target> no_routes;
  std::string models_body;  // GET /v1/models, built once

  asio::awaitable<void> handle(shard_state& shard, http::request_context& ctx);
  asio::awaitable<void> proxy(shard_state& shard, http::request_context& ctx, operation op,
                              const std::string& request_id);
  asio::awaitable<void> send(http::request_context& ctx, http::response res,
                             const std::string& request_id);
  asio::awaitable<void> send_error(http::request_context& ctx, const api_error& error,
                                   const std::string& request_id);
};

namespace {

// What one upstream attempt came to, for failover decisions.
enum class attempt_result : std::uint8_t {
  served,       // the client got a response (success or a non-retryable upstream error)
  retryable,    // failed before anything reached the client; another provider may serve it
  client_gone,  // the client disconnected; stop
};

// Failures that say the provider is unwell (and that another provider may not
// share): connection errors, timeouts, 5xx and 429. Errors the client caused
// (other 4xx) are passed on as they are.
bool retryable_status(unsigned status) { return status >= 500 || status == 429; }

api_error error_for(http::upstream_failure failure, std::string_view provider) {
  switch (failure) {
    case http::upstream_failure::timeout: return api_error::upstream_timeout(provider);
    case http::upstream_failure::protocol:
      return api_error::upstream_bad_response(provider, "not a valid HTTP response");
    case http::upstream_failure::too_large:
      return api_error::upstream_bad_response(provider, "response too large");
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

// One attempt against one provider, owning everything the attempt needs.
struct attempt {
  const config::provider_config& provider;
  const providers::provider_adapter& adapter;
  http::upstream_pool& pool;
  const providers::inbound_request& request;
  const route_target& target;
  http::request_context& ctx;
  const std::string& request_id;
  clock::time_point deadline;
  api_error last_error;  // set when the attempt did not serve the client

  asio::awaitable<attempt_result> run();

 private:
  asio::awaitable<attempt_result> stream_response(http::upstream_exchange& exchange);
  http::response_head head(unsigned status, std::string_view content_type) const {
    http::response_head h;
    h.result(static_cast<bhttp::status>(status));
    h.set(bhttp::field::content_type, content_type);
    h.set("x-request-id", request_id);
    h.set("x-gatewayz-provider", provider.name);
    return h;
  }
};

asio::awaitable<attempt_result> attempt::run() {
  providers::upstream_request built;
  std::string build_error;
  if (!adapter.build_request(request, *target.model, built, build_error)) {
    // The request cannot be expressed for this provider; that is not the
    // provider's failure, but another provider may still take it.
    last_error = api_error::bad_request(std::move(build_error), "unsupported_request");
    co_return attempt_result::retryable;
  }
  http::outgoing_request out;
  out.method = bhttp::verb::post;
  out.target = std::move(built.path);
  out.body = std::move(built.body);
  out.headers.reserve(built.headers.size() + 1);
  for (auto& h : built.headers) out.headers.emplace_back(std::move(h.name), std::move(h.value));
  out.headers.emplace_back("x-request-id", request_id);

  auto exchange = co_await pool.send(out, deadline);
  if (exchange->failure() == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
  if (exchange->failure() != http::upstream_failure::none) {
    last_error = error_for(exchange->failure(), provider.name);
    co_return attempt_result::retryable;
  }

  const unsigned status = exchange->status();
  if (status < 200 || status >= 300) {
    if (status < 400) {
      // An API call answered with a redirect (or a stray 1xx) was not
      // answered: the client cannot follow it, so it is the provider's failure.
      last_error = api_error::upstream_bad_response(provider.name, fmt::format("unexpected HTTP {}", status));
      co_return attempt_result::retryable;
    }
    std::string body;
    co_await exchange->read_all(body, 64 * 1024);
    if (exchange->failure() == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
    last_error = api_error::upstream_status(static_cast<int>(status), provider.name,
                                            adapter.error_message(body));
    if (retryable_status(status)) co_return attempt_result::retryable;
    co_return attempt_result::served;  // the caller sends last_error as is
  }

  if (request.stream) co_return co_await stream_response(*exchange);

  std::string body;
  const bool complete = co_await exchange->read_all(body, provider.max_response_bytes);
  if (!complete) {
    if (exchange->failure() == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
    last_error = error_for(exchange->failure(), provider.name);
    co_return attempt_result::retryable;
  }
  providers::token_usage usage;
  std::string translate_error;
  if (!adapter.translate_response(request, body, usage, translate_error)) {
    last_error = api_error::upstream_bad_response(provider.name, std::move(translate_error));
    co_return attempt_result::retryable;
  }
  http::response res{bhttp::status::ok, ctx.req.version()};
  res.base() = head(200, "application/json");
  res.version(ctx.req.version());
  res.body() = std::move(body);
  const bool sent = co_await ctx.writer.send(std::move(res));
  if (!sent) co_return attempt_result::client_gone;
  co_return attempt_result::served;
}

asio::awaitable<attempt_result> attempt::stream_response(http::upstream_exchange& exchange) {
  auto translator = adapter.make_stream_translator(request);
  http::sse_parser parser;
  std::string upstream_bytes;
  std::string client_bytes;
  bool malformed = false;

  // Headers go to the client only once the first translated bytes exist, so
  // an upstream that fails before producing anything can still be failed over.
  auto flush = [&]() -> asio::awaitable<bool> {
    if (client_bytes.empty()) co_return true;
    if (!ctx.writer.started()) {
      auto h = head(200, "text/event-stream");
      h.set(bhttp::field::cache_control, "no-cache");
      h.set("x-accel-buffering", "no");
      const bool begun = co_await ctx.writer.begin_stream(std::move(h));
      if (!begun) co_return false;
    }
    const bool ok = co_await ctx.writer.write_chunk(client_bytes);
    client_bytes.clear();
    co_return ok;
  };

  while (!translator->done()) {
    upstream_bytes.clear();
    const bool more = co_await exchange.read_some(upstream_bytes);
    if (!more) break;
    parser.feed(upstream_bytes, [&](const http::sse_event& event) {
      if (malformed || translator->done()) return;
      if (!translator->on_event(event, client_bytes)) malformed = true;
    });
    if (parser.failed()) malformed = true;
    // An error the upstream reported before anything reached the client
    // (e.g. Anthropic's overloaded_error as the first event) can still fail over.
    if (!translator->stream_error().empty() && !ctx.writer.started()) break;
    const bool flushed = co_await flush();
    if (!flushed) co_return attempt_result::client_gone;
    if (malformed) break;
  }

  const auto failure = exchange.failure();
  if (failure == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
  if (failure == http::upstream_failure::none && !malformed && !translator->done()) {
    // The body ended: an event whose terminating blank line was a bare '\r'
    // at the very end can only be completed now.
    parser.finish([&](const http::sse_event& event) {
      if (!malformed && !translator->done() && !translator->on_event(event, client_bytes)) malformed = true;
    });
  }

  std::optional<api_error> error;
  if (malformed) {
    error = api_error::upstream_bad_response(provider.name, "malformed event stream");
  } else if (failure != http::upstream_failure::none) {
    error = error_for(failure, provider.name);
  } else if (!translator->done() && parser.has_partial_event()) {
    error = api_error::upstream_bad_response(provider.name, "event stream cut off mid-event");
  } else if (!translator->stream_error().empty() && !ctx.writer.started()) {
    error = api_error::upstream_status(502, provider.name, std::string(translator->stream_error()));
  }

  if (error) {
    if (!ctx.writer.started()) {
      last_error = std::move(*error);
      co_return attempt_result::retryable;
    }
    // Bytes already reached the client: report the failure in-band, the way
    // OpenAI does, and end the stream.
    client_bytes = sse_error_event(*error);
    const bool flushed = co_await flush();
    if (!flushed) co_return attempt_result::client_gone;
    const bool ended = co_await ctx.writer.end_stream();
    if (!ended) co_return attempt_result::client_gone;
    co_return attempt_result::served;
  }

  if (!translator->done()) {
    // The upstream ended its body cleanly without the terminator; the client
    // still gets one so it knows the stream is complete.
    client_bytes += "data: [DONE]\n\n";
  }
  const bool flushed = co_await flush();
  if (!flushed) co_return attempt_result::client_gone;
  const bool ended = co_await ctx.writer.end_stream();
  if (!ended) co_return attempt_result::client_gone;

  // Drain what little may follow the terminator so the connection can be
  // reused, but briefly: the client's keep-alive connection cannot start its
  // next request before this handler returns, so an upstream slow to end its
  // body is not waited for (its connection is then closed, not pooled).
  asio::steady_timer drain_timer(co_await asio::this_coro::executor, drain_limit);
  auto drained_or_timed_out = drain_body(exchange) || drain_timer.async_wait(asio::use_awaitable);
  co_await std::move(drained_or_timed_out);
  co_return attempt_result::served;
}

}  // namespace

gateway::gateway(config::gateway_config config)
    : config_(std::move(config)), impl_(std::make_unique<impl>()) {
  impl_->config = &config_;
  const auto created = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  boost::json::array model_list;
  for (std::size_t i = 0; i < config_.providers.size(); ++i) {
    const auto& provider = config_.providers[i];
    impl_->adapters.push_back(providers::make_adapter(provider));
    http::upstream_endpoint endpoint;
    std::string error;
    if (!http::parse_base_url(provider.base_url, endpoint, error)) {
      throw std::invalid_argument(
          fmt::format("providers[{}].base_url: {}", i, error));
    }
    impl_->endpoints.push_back(std::move(endpoint));
    for (const auto& model : provider.models) {
      auto& targets = impl_->routes[model.id];
      if (targets.empty()) {
        model_list.push_back(boost::json::object{{"id", model.id},
                                                 {"object", "model"},
                                                 {"created", created},
                                                 {"owned_by", provider.name}});
      }
      targets.push_back(route_target{i, &model});
    }
  }
  impl_->models_body =
      boost::json::serialize(boost::json::object{{"object", "list"}, {"data", std::move(model_list)}});
}

gateway::~gateway() = default;

const std::vector<route_target>& gateway::routes(std::string_view model) const {
  auto it = impl_->routes.find(std::string(model));
  return it == impl_->routes.end() ? impl_->no_routes : it->second;
}

http::request_handler gateway::make_shard_handler(std::size_t /*shard*/, asio::io_context& io) {
  auto state = std::make_shared<shard_state>();
  for (std::size_t i = 0; i < config_.providers.size(); ++i) {
    const auto& provider = config_.providers[i];
    http::client_settings settings;
    settings.connect_timeout = seconds_to_ms(provider.connect_timeout_s);
    settings.read_timeout = seconds_to_ms(provider.timeout_s);
    settings.max_idle_connections = provider.max_idle_connections;
    settings.verify_tls = provider.verify_tls;
    settings.ca_file = provider.ca_file;
    state->pools.push_back(std::make_shared<http::upstream_pool>(io, impl_->endpoints[i], settings));
  }
  return [self = impl_.get(), state](http::request_context& ctx) { return self->handle(*state, ctx); };
}

asio::awaitable<void> gateway::impl::send(http::request_context& ctx, http::response res,
                                          const std::string& request_id) {
  res.set("x-request-id", request_id);
  co_await ctx.writer.send(std::move(res));
}

asio::awaitable<void> gateway::impl::send_error(http::request_context& ctx, const api_error& error,
                                                const std::string& request_id) {
  auto res = json_response(static_cast<unsigned>(error.status), error.to_json(), ctx.req.version());
  if (error.status == 405) {
    res.set(bhttp::field::allow, ctx.req.target().starts_with("/v1/models") ? "GET" : "POST");
  }
  co_await send(ctx, std::move(res), request_id);
}

// Note on style in the coroutines below: values passed to a co_await'ed call
// are named locals, never temporaries in the same full-expression, because
// GCC 12 destroys such temporaries twice.

asio::awaitable<void> gateway::impl::handle(shard_state& shard, http::request_context& ctx) {
  const std::string request_id = request_id_for(ctx.req["x-request-id"]);
  const std::string_view target = ctx.req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const auto method = ctx.req.method();

  struct route {
    std::string_view path;
    bhttp::verb method;
    std::optional<operation> op;
  };
  static constexpr route table[] = {
      {"/v1/chat/completions", bhttp::verb::post, operation::chat_completions},
      {"/v1/completions", bhttp::verb::post, operation::completions},
      {"/v1/embeddings", bhttp::verb::post, operation::embeddings},
      {"/v1/models", bhttp::verb::get, std::nullopt},
  };
  for (const auto& r : table) {
    if (r.path != path) continue;
    if (method != r.method) {
      const auto error = api_error::method_not_allowed(ctx.req.method_string(), path);
      co_await send_error(ctx, error, request_id);
      co_return;
    }
    if (!r.op) {
      auto res = json_response(200, models_body, ctx.req.version());
      co_await send(ctx, std::move(res), request_id);
      co_return;
    }
    co_await proxy(shard, ctx, *r.op, request_id);
    co_return;
  }
  const auto error = api_error::not_found(path);
  co_await send_error(ctx, error, request_id);
}

namespace {

// The members the gateway acts on must mean the same to the provider. JSON
// parsers disagree on repeated names (first or last wins), and a name spelled
// with escapes ("mod\u0065l") is "model" to the provider but not to a raw-key
// lookup, so either would let the provider read another model (or usage
// setting) than the one the gateway routed and accounted for. Returns such a
// member when it occurs twice or is spelled with escapes.
template <std::size_t N>
std::optional<std::string_view> ambiguous_among(std::string_view text, const json_scan::object_scan& scan,
                                               const std::string_view (&interpreted)[N]) {
  unsigned counts[N] = {};
  for (const auto& m : scan.members) {
    const bool escaped = m.key.find('\\') != std::string_view::npos;
    std::optional<std::string> decoded;
    if (escaped) decoded = json_scan::decode_string(text.substr(m.key_span.begin, m.key_span.size()));
    const std::string_view name = decoded ? std::string_view(*decoded) : m.key;
    for (std::size_t i = 0; i < N; ++i) {
      if (name == interpreted[i] && (escaped || ++counts[i] > 1)) return interpreted[i];
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> ambiguous_member(std::string_view body, const json_scan::object_scan& scan) {
  static constexpr std::string_view top[] = {"model", "stream", "stream_options"};
  if (auto name = ambiguous_among(body, scan, top)) return name;
  // include_usage decides whether the gateway learns the stream's token usage.
  const auto* options = scan.find("stream_options");
  if (!options || options->kind != json_scan::value_kind::object) return std::nullopt;
  const auto text = body.substr(options->value_span.begin, options->value_span.size());
  json_scan::object_scan inner;
  json_scan::scan_error ignored;
  static constexpr std::string_view nested[] = {"include_usage"};
  if (json_scan::scan_object(text, inner, ignored) && ambiguous_among(text, inner, nested)) {
    return "stream_options.include_usage";
  }
  return std::nullopt;
}

// Checks the client's body and extracts what routing needs. Synchronous: no
// I/O happens before the request is known to be well-formed.
std::optional<api_error> parse_inbound(std::string_view body, operation op,
                                       json_scan::object_scan& scan,
                                       providers::inbound_request& request) {
  using vk = json_scan::value_kind;
  json_scan::scan_error scan_error;
  if (!json_scan::scan_object(body, scan, scan_error)) {
    return api_error::invalid_json(fmt::format("{} (at byte {})", scan_error.message, scan_error.offset));
  }
  if (const auto name = ambiguous_member(body, scan)) {
    return api_error::bad_request(
        fmt::format("'{}' must appear once in the request body, spelled without escapes", *name),
        "duplicate_member");
  }
  request.op = op;
  request.body = body;
  request.scan = &scan;

  const auto* model = scan.find("model");
  std::optional<std::string> decoded;
  if (model && model->kind == vk::string) {
    decoded = json_scan::decode_string(body.substr(model->value_span.begin, model->value_span.size()));
  }
  if (!decoded || decoded->empty()) {
    return api_error::bad_request("you must provide a model parameter", "missing_model");
  }
  request.model = std::move(*decoded);

  std::string_view required;
  bool kind_ok = false;
  std::string_view expected;
  const auto* member = static_cast<const json_scan::member*>(nullptr);
  switch (op) {
    case operation::chat_completions:
      required = "messages";
      expected = "an array";
      member = scan.find(required);
      kind_ok = member && member->kind == vk::array;
      break;
    case operation::completions:
    case operation::embeddings:
      required = op == operation::completions ? "prompt" : "input";
      expected = "a string or an array";
      member = scan.find(required);
      kind_ok = member && (member->kind == vk::string || member->kind == vk::array);
      break;
  }
  if (!member) {
    return api_error::bad_request(fmt::format("'{}' is a required property", required),
                                  fmt::format("missing_{}", required));
  }
  if (!kind_ok) {
    return api_error::bad_request(fmt::format("'{}' must be {}", required, expected),
                                  fmt::format("invalid_{}", required));
  }

  if (const auto* stream = scan.find("stream")) {
    if (stream->kind == vk::boolean_true) {
      request.stream = true;
    } else if (stream->kind != vk::boolean_false && stream->kind != vk::null) {
      return api_error::bad_request("'stream' must be a boolean", "invalid_stream");
    }
  }
  if (request.stream && op == operation::embeddings) {
    return api_error::bad_request("embeddings cannot be streamed", "invalid_stream");
  }
  request.client_wants_usage = request.stream && wants_usage(body, scan);
  return std::nullopt;
}

}  // namespace

asio::awaitable<void> gateway::impl::proxy(shard_state& shard, http::request_context& ctx,
                                           operation op, const std::string& request_id) {
  json_scan::object_scan scan;
  providers::inbound_request request;
  if (const auto invalid = parse_inbound(ctx.req.body(), op, scan, request)) {
    co_await send_error(ctx, *invalid, request_id);
    co_return;
  }

  auto it = routes.find(request.model);
  if (it == routes.end()) {
    const auto error = api_error::model_not_found(request.model);
    co_await send_error(ctx, error, request_id);
    co_return;
  }

  const auto deadline = ctx.received_at + seconds_to_ms(config->server.request_timeout_s);
  std::optional<api_error> last_error;
  unsigned attempts = 0;
  for (const auto& target : it->second) {
    const auto& adapter = *adapters[target.provider_index];
    if (!adapter.supports(op)) continue;
    if (attempts >= config->server.max_attempts || clock::now() >= deadline) break;
    ++attempts;
    attempt a{config->providers[target.provider_index],
              adapter,
              *shard.pools[target.provider_index],
              request,
              target,
              ctx,
              request_id,
              deadline,
              {}};
    const auto result = co_await a.run();
    if (result == attempt_result::client_gone) co_return;
    if (result == attempt_result::served) {
      if (!ctx.writer.started()) co_await send_error(ctx, a.last_error, request_id);
      co_return;
    }
    last_error = std::move(a.last_error);
  }

  if (attempts == 0) {
    const auto error = api_error::bad_request(
        fmt::format("The model `{}` does not support this endpoint", request.model),
        "unsupported_endpoint");
    co_await send_error(ctx, error, request_id);
    co_return;
  }
  if (!last_error) last_error = api_error::no_provider_available(request.model);
  if (clock::now() >= deadline && last_error->status != 504) {
    last_error = api_error::upstream_timeout(config->providers[it->second.front().provider_index].name);
  }
  co_await send_error(ctx, *last_error, request_id);
}

}  // namespace gatewayz::gateway

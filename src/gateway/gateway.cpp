#include "gateway/gateway.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <span>
#include <cmath>
#include <iterator>
#include <map>
#include <thread>
#include <tuple>
#include <unordered_map>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/threads.hpp"
#include "core/api_error.hpp"
#include "core/json_scan.hpp"
#include "core/request_id.hpp"
#include "gateway/background.hpp"
#include "gateway/http_metrics.hpp"
#include "gateway/responses.hpp"
#include "gateway/store_api.hpp"
#include "health/http_prober.hpp"
#include "http/client.hpp"
#include "http/deadlines.hpp"
#include "http/sse.hpp"

#ifndef GATEWAYZ_VERSION
#define GATEWAYZ_VERSION "0.0.0"
#endif

namespace gatewayz::gateway {

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using clock = std::chrono::steady_clock;
using providers::operation;

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

std::string sse_error_event(const api_error& error) {
  return fmt::format("data: {}\n\n", error.to_json());
}

}  // namespace

// Metric handles of one (provider, model) pair and operation, resolved by
// each shard the first time it serves the pair (so models without traffic
// create no series).
struct target_metrics {
  bool resolved = false;
  telemetry::counter_handle requests_success;
  telemetry::counter_handle requests_error;
  telemetry::histogram_handle duration;
  telemetry::counter_handle tokens;
  telemetry::counter_handle input_tokens;
  telemetry::counter_handle output_tokens;
  telemetry::counter_handle credits;
  telemetry::histogram_handle time_to_first_chunk;
  telemetry::histogram_handle gen_ai_duration_ok;
  telemetry::histogram_handle gen_ai_input_tokens;
  telemetry::histogram_handle gen_ai_output_tokens;
  telemetry::histogram_handle gen_ai_time_to_first_chunk;
  telemetry::counter_handle failovers;
};

// Per-shard state: one upstream pool per provider and the shard's metric
// handles, used only on the shard's thread.
struct gateway::shard_state {
  std::size_t index = 0;
  std::vector<std::shared_ptr<http::upstream_pool>> pools;
  std::vector<std::array<target_metrics, 3>> targets;  // [target_index][operation]
  // gen_ai_client_operation_duration_seconds of failed calls, by (target, op, error.type).
  std::map<std::tuple<std::size_t, int, std::string_view>, telemetry::histogram_handle> failed_calls;
  // Accepted requests whose ledger row is not queued yet (request_accounting
  // counts them): the ledger queue must have room for all of them.
  std::size_t ledger_rows_pending = 0;
};

// Metric handles of one provider.
struct provider_metrics {
  telemetry::histogram_handle response_time;
  telemetry::counter_handle cost;
};

struct gateway::impl {
  const config::gateway_config* config = nullptr;
  std::unique_ptr<telemetry::registry> owned_registry;  // when no catalog was supplied
  std::unique_ptr<telemetry::catalog> owned_catalog;
  telemetry::catalog* metrics = nullptr;
  bool metrics_enabled = true;
  std::vector<provider_metrics> provider_handles;  // per provider
  std::size_t target_count = 0;                    // route_target::target_index values in use
  std::array<telemetry::histogram_handle, 3> overhead;  // per operation
  telemetry::histogram_handle backend_ttfb;
  telemetry::counter_handle ledger_backlog_rejected;
  telemetry::histogram_handle streaming_duration;
  std::shared_ptr<http_metrics> http_observer;
  std::vector<request_sink*> sinks;
  std::unique_ptr<health::monitor> health;
  std::unique_ptr<health::dashboard_cache> dashboard;
  store::store* store = nullptr;
  auth::authenticator* auth = nullptr;
  ledger::ledger_writer* ledger = nullptr;
  std::unique_ptr<store_api> store_endpoints;
  // The database as last seen by the pinger thread, for GET /health.
  std::atomic<health::dependency_state> database_state{health::dependency_state::not_configured};
  std::mutex pinger_mu;
  std::condition_variable pinger_cv;
  bool pinger_stop = false;
  std::thread pinger;
  // Renders /metrics: at high cardinality a scrape takes tens of milliseconds,
  // which must not stall a server thread's other requests.
  asio::thread_pool scrape_pool{1};
  unsigned shards = 1;

  // Waits for the work handed to background pools (metrics renders, store
  // queries): it resumes its request on a shard's io_context, so it must be
  // done before the server destroys them (see server_options().after_run).
  void drain_background_work() {
    scrape_pool.join();
    if (store_endpoints) store_endpoints->drain();
  }
  std::vector<std::unique_ptr<providers::provider_adapter>> adapters;  // per provider
  std::vector<http::upstream_endpoint> endpoints;                      // per provider
  std::unordered_map<std::string, std::vector<route_target>> routes;
  std::vector<route_target> no_routes;
  std::string models_body;  // GET /v1/models, built once

  asio::awaitable<void> handle(shard_state& shard, http::request_context& ctx);
  asio::awaitable<void> serve_metrics(http::request_context& ctx, const std::string& request_id);
  // /health, /health/dashboard and /admin/circuit-breakers[/{provider}/reset];
  // false when `path` is none of them.
  asio::awaitable<bool> serve_health(http::request_context& ctx, std::string_view path,
                                     const std::string& request_id);
  bool is_admin(const http::request_context& ctx) const;
  class request_accounting;
  asio::awaitable<void> proxy(shard_state& shard, http::request_context& ctx, operation op,
                              const std::string& request_id, const auth::auth_result& caller);
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

// What one attempt observed, for metrics, health and the ledger.
struct attempt_report {
  unsigned upstream_status = 0;   // the provider's HTTP status; 0 if none arrived
  unsigned client_status = 0;     // what the client was sent (when served)
  std::string_view error_type;    // low-cardinality failure name; empty on success
  bool provider_failure = false;  // counts against the provider's health
  bool in_band_error = false;     // a stream that ended with an error event
  clock::time_point sent_at{};
  std::optional<clock::duration> ttfb;       // request sent -> response headers
  clock::duration upstream_wait{};           // time spent waiting on the provider
  std::optional<clock::time_point> first_chunk_at;  // first bytes to the client (streams)
  std::optional<clock::time_point> last_chunk_at;
  providers::token_usage usage;
};

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
  explicit wait_timer(attempt_report& report, clock::time_point start = clock::now())
      : report_(report), start_(start) {}
  ~wait_timer() {
    if (running_) stop();
  }
  wait_timer(const wait_timer&) = delete;
  wait_timer& operator=(const wait_timer&) = delete;

  // Ends the wait now; returns when.
  clock::time_point stop() {
    const auto now = clock::now();
    report_.upstream_wait += now - start_;
    running_ = false;
    return now;
  }

 private:
  attempt_report& report_;
  clock::time_point start_;
  bool running_ = true;
};

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
  attempt_report report;

  asio::awaitable<attempt_result> run();

 private:
  asio::awaitable<attempt_result> stream_response(http::upstream_exchange& exchange);
  // The fields of every answer an attempt gives the client.
  std::array<http::header_ref, 3> answer_fields(std::string_view content_type) const {
    return {http::header_ref{"Content-Type", content_type}, http::header_ref{"x-request-id", request_id},
            http::header_ref{"x-gatewayz-provider", provider.name}};
  }
  http::response_head head(unsigned status, std::string_view content_type) const {
    http::response_head h;
    h.result(static_cast<bhttp::status>(status));
    for (const auto& [name, value] : answer_fields(content_type)) h.set(name, value);
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
  out.target = built.path;
  out.body = built.payload();
  for (const auto& h : built.headers) out.headers.emplace_back(h.name, h.value);
  out.headers.emplace_back("x-request-id", request_id);

  report.sent_at = clock::now();
  http::upstream_exchange exchange;
  clock::time_point answered_at;  // the response head, or the failure
  {
    wait_timer timing{report, report.sent_at};
    exchange = co_await pool.send(out, deadline);
    answered_at = timing.stop();
  }
  if (exchange.failure() == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
  if (exchange.failure() != http::upstream_failure::none) {
    last_error = error_for(exchange.failure(), provider.name);
    report.error_type = failure_name(exchange.failure());
    report.provider_failure = true;
    co_return attempt_result::retryable;
  }
  report.ttfb = answered_at - report.sent_at;

  const unsigned status = exchange.status();
  report.upstream_status = status;
  if (status < 200 || status >= 300) {
    report.error_type = status_name(status);
    if (status < 400) {
      // An API call answered with a redirect (or a stray 1xx) was not
      // answered: the client cannot follow it, so it is the provider's failure.
      last_error = api_error::upstream_bad_response(provider.name, fmt::format("unexpected HTTP {}", status));
      report.provider_failure = true;
      co_return attempt_result::retryable;
    }
    std::string body;
    {
      wait_timer timing{report};
      co_await exchange.read_all(body, 64 * 1024);
    }
    if (exchange.failure() == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
    last_error = api_error::upstream_status(static_cast<int>(status), provider.name,
                                            adapter.error_message(body));
    if (retryable_status(status)) {
      report.provider_failure = true;
      co_return attempt_result::retryable;
    }
    report.client_status = static_cast<unsigned>(last_error.status);
    co_return attempt_result::served;  // the caller sends last_error as is
  }

  if (request.stream) co_return co_await stream_response(exchange);

  std::string body;
  bool complete = false;
  if (exchange.read_buffered(body, provider.max_response_bytes)) {
    // The body came with the head: no wait to time, no coroutine to run.
    complete = exchange.failure() == http::upstream_failure::none;
  } else {
    wait_timer timing{report};
    complete = co_await exchange.read_all(body, provider.max_response_bytes);
  }
  if (!complete) {
    if (exchange.failure() == http::upstream_failure::cancelled) co_return attempt_result::client_gone;
    last_error = error_for(exchange.failure(), provider.name);
    report.error_type = failure_name(exchange.failure());
    report.provider_failure = true;
    co_return attempt_result::retryable;
  }
  std::string translate_error;
  if (!adapter.translate_response(request, body, report.usage, translate_error)) {
    last_error = api_error::upstream_bad_response(provider.name, std::move(translate_error));
    report.error_type = "invalid_response";
    report.provider_failure = true;
    co_return attempt_result::retryable;
  }
  // Written from views: no fields container, no allocation per field.
  const auto fields = answer_fields("application/json");
  report.client_status = 200;
  const bool sent = co_await ctx.writer.send(200, fields, body);
  if (!sent) co_return attempt_result::client_gone;
  co_return attempt_result::served;
}

asio::awaitable<attempt_result> attempt::stream_response(http::upstream_exchange& exchange) {
  auto translator = adapter.make_stream_translator(request);
  http::sse_parser parser;
  // Reused for every read and flush (clear() keeps the capacity); sized up
  // front so a stream does not grow them chunk by chunk.
  std::string upstream_bytes;
  std::string client_bytes;
  upstream_bytes.reserve(16 * 1024);  // one upstream read's most
  client_bytes.reserve(8 * 1024);
  bool malformed = false;

  // Headers go to the client only once the first translated bytes exist, so
  // an upstream that fails before producing anything can still be failed over.
  auto flush = [&]() -> asio::awaitable<bool> {
    if (client_bytes.empty()) co_return true;
    if (!ctx.writer.started()) {
      auto h = head(200, "text/event-stream");
      h.set(bhttp::field::cache_control, "no-cache");
      h.set("x-accel-buffering", "no");
        report.client_status = 200;
      report.first_chunk_at = clock::now();
      const bool begun = co_await ctx.writer.begin_stream(std::move(h));
      if (!begun) co_return false;
    }
    const bool ok = co_await ctx.writer.write_chunk(client_bytes);
    report.last_chunk_at = clock::now();
    client_bytes.clear();
    co_return ok;
  };

  while (!translator->done()) {
    upstream_bytes.clear();
    bool more = false;
    {
      wait_timer timing{report};
      more = co_await exchange.read_some(upstream_bytes);
    }
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

  report.usage = translator->usage();
  std::optional<api_error> error;
  if (malformed) {
    error = api_error::upstream_bad_response(provider.name, "malformed event stream");
    report.error_type = "invalid_response";
  } else if (failure != http::upstream_failure::none) {
    error = error_for(failure, provider.name);
    report.error_type = failure_name(failure);
  } else if (!translator->done() && parser.has_partial_event()) {
    error = api_error::upstream_bad_response(provider.name, "event stream cut off mid-event");
    report.error_type = "invalid_response";
  } else if (!translator->stream_error().empty() && !ctx.writer.started()) {
    error = api_error::upstream_status(502, provider.name, std::string(translator->stream_error()));
    report.error_type = "stream_error";
  }
  if (!translator->stream_error().empty()) {
    // The provider reported an error inside a stream the client already reads.
    report.in_band_error = true;
    if (report.error_type.empty()) report.error_type = "stream_error";
  }

  if (error) {
    report.provider_failure = true;
    if (!ctx.writer.started()) {
      last_error = std::move(*error);
      co_return attempt_result::retryable;
    }
    // Bytes already reached the client: report the failure in-band, the way
    // OpenAI does, and end the stream.
    report.in_band_error = true;
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
  // body is not waited for (its read times out and the connection is closed,
  // not pooled). The exchange's own deadline bounds the wait, instead of a
  // timer raced against the read with awaitable operator||, which spawned
  // two coroutines (and until 86cdb5a threw an exception) per drained stream.
  if (!exchange.body_complete()) {
    exchange.shorten_deadline(clock::now() + drain_limit);
    co_await drain_body(exchange);
  }
  co_return attempt_result::served;
}

}  // namespace

namespace {
unsigned resolve_threads(unsigned configured) {
  if (configured != 0) return configured;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}
}  // namespace

gateway::gateway(config::gateway_config config, gateway_services services)
    : config_(std::move(config)), impl_(std::make_unique<impl>()) {
  impl_->config = &config_;
  impl_->shards = resolve_threads(config_.server.threads);
  if (services.metrics != nullptr) {
    impl_->metrics = services.metrics;
  } else {
    impl_->owned_registry = std::make_unique<telemetry::registry>(impl_->shards + 1);
    impl_->owned_catalog = std::make_unique<telemetry::catalog>(*impl_->owned_registry, GATEWAYZ_VERSION);
    impl_->metrics = impl_->owned_catalog.get();
  }
  if (impl_->metrics->reg.shards() < impl_->shards + 1) {
    throw std::invalid_argument("the metrics registry needs one shard per server thread plus one");
  }
  impl_->metrics_enabled = config_.metrics.enabled;
  impl_->sinks = std::move(services.sinks);
  impl_->http_observer = std::make_shared<http_metrics>(*impl_->metrics, impl_->shards, impl_->metrics_enabled);
  auto& m = *impl_->metrics;
  impl_->backend_ttfb = m.backend_ttfb.series();
  impl_->ledger_backlog_rejected = m.ledger_backlog_rejected.series();
  impl_->streaming_duration = m.streaming_duration.series();
  for (const auto op : {operation::chat_completions, operation::completions, operation::embeddings}) {
    impl_->overhead[static_cast<std::size_t>(op)] = m.overhead.series({route_templates[static_cast<std::size_t>(op)]});
  }
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
    impl_->provider_handles.push_back(provider_metrics{m.provider_response_time.series({provider.name}),
                                                       m.cost_by_provider.series({provider.name})});
    for (const auto& model : provider.models) {
      auto& targets = impl_->routes[model.id];
      if (targets.empty()) {
        model_list.push_back(boost::json::object{{"id", model.id},
                                                 {"object", "model"},
                                                 {"created", created},
                                                 {"owned_by", provider.name}});
      }
      targets.push_back(route_target{i, &model, impl_->target_count++,
                                     static_cast<std::size_t>(&model - provider.models.data())});
    }
  }
  impl_->models_body =
      boost::json::serialize(boost::json::object{{"object", "list"}, {"data", std::move(model_list)}});

  health::options health_opts;
  health_opts.window_s = config_.health.window_s;
  health_opts.interval_s = config_.health.interval_s;
  health_opts.dashboard_cache_s = config_.health.dashboard_cache_s;
  const auto& cb = config_.circuit_breaker;
  health_opts.breaker.failure_threshold = cb.failure_threshold;
  health_opts.breaker.error_rate_threshold = cb.error_rate_threshold;
  health_opts.breaker.min_requests = cb.min_requests;
  health_opts.breaker.open_s = cb.open_s;
  health_opts.breaker.max_open_s = cb.max_open_s;
  health_opts.breaker.half_open_requests = cb.half_open_requests;
  bool any_probe = false;
  for (const auto& provider : config_.providers) {
    health::provider_info info;
    info.name = provider.name;
    for (const auto& model : provider.models) info.models.push_back(model.id);
    info.probe_interval_s = services.active_probes ? provider.probe_interval_s : 0;
    info.probe_path = provider.probe_path;
    info.probe_timeout_s = std::min(provider.timeout_s, 10.0);
    any_probe = any_probe || info.probe_interval_s > 0;
    health_opts.providers.push_back(std::move(info));
  }
  health::services health_svc;
  health_svc.on_transition = std::move(services.on_breaker_transition);
  if (any_probe) health_svc.probe = std::make_unique<health::http_prober>(config_.providers, health_opts);
  impl_->health = std::make_unique<health::monitor>(health_opts, *impl_->metrics, std::move(health_svc));
  impl_->dashboard = std::make_unique<health::dashboard_cache>(
      std::chrono::duration<double>(config_.health.dashboard_cache_s), impl_->health->clock());
  impl_->store = services.store;
  impl_->auth = services.auth;
  impl_->ledger = services.ledger;
  if (impl_->ledger != nullptr && impl_->ledger->shard_count() < impl_->shards) {
    // A shard without a queue could never record a request (every one 503).
    throw std::invalid_argument(fmt::format("gateway: the ledger writer has queues for {} server threads, not {}",
                                            impl_->ledger->shard_count(), impl_->shards));
  }
  if (impl_->store != nullptr) {
    impl_->store_endpoints = std::make_unique<store_api>(
        *impl_->store, std::chrono::seconds(static_cast<std::int64_t>(std::ceil(config_.storage.stats_cache_s))));
    impl_->database_state = impl_->store->ping() ? health::dependency_state::healthy
                                                 : health::dependency_state::unhealthy;
    // /health answers from this state; only this thread talks to the database for it.
    impl_->pinger = std::thread([self = impl_.get()] {
      name_this_thread("gw-db-ping");
      lower_thread_priority();
      std::unique_lock lock(self->pinger_mu);
      while (!self->pinger_cv.wait_for(lock, std::chrono::seconds(5), [self] { return self->pinger_stop; })) {
        lock.unlock();
        const bool up = self->store->ping();
        self->database_state = up ? health::dependency_state::healthy : health::dependency_state::unhealthy;
        lock.lock();
      }
    });
  }
  impl_->health->start();
}

gateway::~gateway() {
  impl_->drain_background_work();
  impl_->health->stop();
  if (impl_->pinger.joinable()) {
    {
      std::lock_guard lock(impl_->pinger_mu);
      impl_->pinger_stop = true;
    }
    impl_->pinger_cv.notify_all();
    impl_->pinger.join();
  }
}

health::monitor& gateway::health() { return *impl_->health; }

const std::vector<route_target>& gateway::routes(std::string_view model) const {
  auto it = impl_->routes.find(std::string(model));
  return it == impl_->routes.end() ? impl_->no_routes : it->second;
}

unsigned gateway::shard_count() const { return impl_->shards; }

telemetry::catalog& gateway::metrics() { return *impl_->metrics; }

http::server_options gateway::server_options() const {
  const auto& s = config_.server;
  const auto ms = [](double seconds) { return seconds_to_ms(seconds); };
  http::server_options options;
  options.host = s.host;
  options.port = s.port;
  options.threads = impl_->shards;
  options.max_body_bytes = s.max_body_bytes;
  options.max_header_bytes = s.max_header_bytes;
  options.max_connections = s.max_connections;
  options.header_timeout = ms(s.header_timeout_s);
  options.body_timeout = ms(s.body_timeout_s);
  options.idle_timeout = ms(s.idle_timeout_s);
  options.observer = impl_->http_observer;
  options.after_run = [self = impl_.get()] { self->drain_background_work(); };
  return options;
}

http::request_handler gateway::make_shard_handler(std::size_t shard, asio::io_context& io) {
  if (shard >= impl_->shards) {
    throw std::invalid_argument(fmt::format("shard {} is beyond the {} the gateway was built for", shard, impl_->shards));
  }
  auto state = std::make_shared<shard_state>();
  state->index = shard;
  state->targets.resize(impl_->target_count);
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
    const auto target = ctx.req.target();
    res.set(bhttp::field::allow, target.starts_with("/v1/models") || target.starts_with("/metrics") ? "GET" : "POST");
  }
  co_await send(ctx, std::move(res), request_id);
}

namespace {

// Constant-time comparison, so response timing does not reveal how much of a
// guessed token was right.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// The token of an "Authorization: Bearer <token>" value; empty when absent or malformed.
std::string_view bearer_token(std::string_view authorization) {
  return auth::extract_key(authorization).value_or(std::string_view{});
}

}  // namespace

asio::awaitable<void> gateway::impl::serve_metrics(http::request_context& ctx, const std::string& request_id) {
  const auto& token = config->metrics.bearer_token;
  if (!token.empty() && !same_secret(bearer_token(ctx.req[bhttp::field::authorization]), token)) {
    auto res = json_response(401, api_error::unauthorized("A valid bearer token is required for /metrics").to_json(),
                             ctx.req.version());
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"metrics\"");
    co_await send(ctx, std::move(res), request_id);
    co_return;
  }
  const auto content_type = telemetry::negotiate(ctx.req[bhttp::field::accept]);
  auto render = [this, content_type] {
    metrics->process.collect();
    return metrics->reg.render(content_type);
  };
  std::string body = co_await on_pool(scrape_pool, std::move(render));
  http::response res{bhttp::status::ok, ctx.req.version()};
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  co_await send(ctx, std::move(res), request_id);
}

bool gateway::impl::is_admin(const http::request_context& ctx) const {
  const auto& admin_key = config->auth.admin_key;
  if (admin_key.empty()) return true;  // no admin key configured: admin API open (auth.mode none)
  auto presented = bearer_token(ctx.req[bhttp::field::authorization]);
  if (presented.empty()) presented = ctx.req["x-admin-key"];
  return same_secret(presented, admin_key);
}

asio::awaitable<bool> gateway::impl::serve_health(http::request_context& ctx, std::string_view path,
                                                  const std::string& request_id) {
  const auto method = ctx.req.method();
  const auto now = std::chrono::system_clock::now();
  auto answer = [&](unsigned status, std::string body) {
    return json_response(status, std::move(body), ctx.req.version());
  };
  auto wrong_method = [&](std::string_view allowed) { return method_not_allowed(ctx.req, path, allowed); };

  if (path == "/health") {
    if (method != bhttp::verb::get) {
      co_await send(ctx, wrong_method("GET"), request_id);
      co_return true;
    }
    health::health_inputs inputs;
    inputs.version = GATEWAYZ_VERSION;
    inputs.database = database_state.load();
    inputs.redis = health::dependency_state::not_configured;
    inputs.now = now;
    auto rendered = health::render_health(*health->current(), inputs);
    auto res = answer(rendered.status, std::move(rendered.body));
    res.set(bhttp::field::cache_control, "no-store");
    co_await send(ctx, std::move(res), request_id);
    co_return true;
  }
  if (path == "/health/dashboard") {
    if (method != bhttp::verb::get) {
      co_await send(ctx, wrong_method("GET"), request_id);
      co_return true;
    }
    const auto body = dashboard->get([this] { return health::render_dashboard(*health->current()); });
    co_await send(ctx, answer(200, *body), request_id);
    co_return true;
  }
  if (!path.starts_with("/admin/circuit-breakers")) co_return false;

  if (!is_admin(ctx)) {
    const auto error = api_error::unauthorized("The admin API requires the admin key");
    co_await send_error(ctx, error, request_id);
    co_return true;
  }
  if (path == "/admin/circuit-breakers") {
    if (method != bhttp::verb::get) {
      co_await send(ctx, wrong_method("GET"), request_id);
      co_return true;
    }
    co_await send(ctx, answer(200, health::render_breakers(health->breakers(), now)), request_id);
    co_return true;
  }
  // /admin/circuit-breakers/{provider}/reset
  constexpr std::string_view prefix = "/admin/circuit-breakers/";
  constexpr std::string_view suffix = "/reset";
  if (path.size() > prefix.size() + suffix.size() && path.starts_with(prefix) && path.ends_with(suffix)) {
    if (method != bhttp::verb::post) {
      co_await send(ctx, wrong_method("POST"), request_id);
      co_return true;
    }
    const auto name = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    const auto index = health->provider_index(name);
    if (!index) {
      const api_error error{404, "invalid_request_error", "provider_not_found",
                            fmt::format("No provider named `{}`", name.substr(0, 64))};
      co_await send_error(ctx, error, request_id);
      co_return true;
    }
    health->reset(*index);
    co_await send(ctx, answer(200, health::render_breakers(health->breakers(), now)), request_id);
    co_return true;
  }
  co_return false;
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
  if (path == "/metrics") {
    if (method != bhttp::verb::get) {
      const auto error = api_error::method_not_allowed(ctx.req.method_string(), path);
      co_await send_error(ctx, error, request_id);
      co_return;
    }
    co_await serve_metrics(ctx, request_id);
    co_return;
  }
  if (path.starts_with("/health") || path.starts_with("/admin/circuit-breakers")) {
    const bool served = co_await serve_health(ctx, path, request_id);
    if (served) co_return;
  }
  if (path == "/models/stats" || path.starts_with("/admin/customers") || path.starts_with("/admin/keys")) {
    if (!store_endpoints) {
      const auto error = api_error::service_unavailable("No store is configured (storage.url)");
      co_await send_error(ctx, error, request_id);
      co_return;
    }
    if (path == "/models/stats") {
      auto res = co_await store_endpoints->models_stats(ctx.req);
      co_await send(ctx, std::move(res), request_id);
      co_return;
    }
    if (!is_admin(ctx)) {
      const auto error = api_error::unauthorized("The admin API requires the admin key");
      co_await send_error(ctx, error, request_id);
      co_return;
    }
    auto res = co_await store_endpoints->admin(ctx.req, path);
    if (res) {
      co_await send(ctx, std::move(*res), request_id);
      co_return;
    }
  }
  for (const auto& r : table) {
    if (r.path != path) continue;
    if (method != r.method) {
      const auto error = api_error::method_not_allowed(ctx.req.method_string(), path);
      co_await send_error(ctx, error, request_id);
      co_return;
    }
    // Every /v1 endpoint needs a valid key when auth.mode is keys.
    auth::auth_result caller;
    caller.status = auth::auth_status::ok;
    if (config->auth.mode == "keys" && auth == nullptr) {
      // Never serve unauthenticated because the key store is missing.
      const auto error = api_error::service_unavailable("API keys are required but no key store is configured");
      co_await send_error(ctx, error, request_id);
      co_return;
    }
    if (auth != nullptr && config->auth.mode == "keys") {
      std::string_view credentials = ctx.req[bhttp::field::authorization];
      if (credentials.empty()) credentials = ctx.req["x-api-key"];
      caller = auth->authenticate(shard.index, credentials);
      if (!caller.ok()) {
        const auto status = auth::http_status(caller.status);
        const std::string_view type = status == 402   ? "insufficient_quota"
                                      : status == 401 ? "authentication_error"
                                                      : "api_error";
        const api_error error{static_cast<int>(status), std::string(type), std::string(auth::error_code(caller.status)),
                              std::string(auth::message(caller.status))};
        co_await send_error(ctx, error, request_id);
        co_return;
      }
    }
    if (!r.op) {
      auto res = json_response(200, models_body, ctx.req.version());
      co_await send(ctx, std::move(res), request_id);
      co_return;
    }
    co_await proxy(shard, ctx, *r.op, request_id, caller);
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

namespace {

// The health outcome of one attempt (classification: health/attempt.hpp).
// Latency for health is the time to the provider's response headers for
// streams (their length is the answer's length, not the provider's speed)
// and the whole call otherwise.
health::attempt_result health_result(const route_target& target, const attempt_report& report,
                                     attempt_result result, clock::time_point finished) {
  health::attempt_result out;
  out.finished = finished;
  out.model = target.model_slot;
  if (result == attempt_result::client_gone || report.sent_at == clock::time_point{}) {
    out.result = health::outcome::cancelled;
  } else if (report.provider_failure) {
    out.result = health::outcome::failure;
  } else if (report.upstream_status >= 400) {
    out.result = health::classify_status(report.upstream_status);
  } else {
    out.result = health::outcome::success;
  }
  const auto end = report.first_chunk_at ? report.sent_at + report.ttfb.value_or(clock::duration{}) : out.finished;
  out.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(end - report.sent_at);
  return out;
}

}  // namespace

// Turns a proxied request's attempts into metrics and a request_summary.
// Attempts are recorded as they end; everything else when the request ends
// (the destructor), whichever way proxy() returns, client disconnects included.
class gateway::impl::request_accounting {
 public:
  request_accounting(impl& gw, shard_state& shard, const providers::inbound_request& request,
                     const std::string& request_id, bool client_chose_id, clock::time_point received_at)
      : gw_(gw), shard_(shard), request_(request), request_id_(request_id),
        client_chose_id_(client_chose_id), received_at_(received_at) {
    ++shard_.ledger_rows_pending;
  }
  request_accounting(const request_accounting&) = delete;
  request_accounting& operator=(const request_accounting&) = delete;
  ~request_accounting() {
    finish();
    --shard_.ledger_rows_pending;
  }

  // `finished`: when the attempt ended.
  void record_attempt(const route_target& target, const attempt_report& report, attempt_result result,
                      clock::time_point finished);

  unsigned client_status = 0;  // set when the gateway itself answered with an error
  std::optional<std::int64_t> customer_id;
  std::optional<std::int64_t> key_id;

 private:
  target_metrics& handles(const route_target& target);
  void finish() noexcept;
  void finish_untried() noexcept;
  void publish(request_summary& summary) noexcept;
  // The wall-clock time the request arrived, from the steady time `now`:
  // worked out only when a summary needs it (two clock reads).
  std::chrono::system_clock::time_point received_wall(clock::time_point now) const {
    return std::chrono::system_clock::now() -
           std::chrono::duration_cast<std::chrono::system_clock::duration>(now - received_at_);
  }

  impl& gw_;
  shard_state& shard_;
  const providers::inbound_request& request_;
  const std::string& request_id_;
  bool client_chose_id_;
  clock::time_point received_at_;
  const route_target* last_target_ = nullptr;
  attempt_report last_report_;
  attempt_result last_result_ = attempt_result::retryable;
  unsigned attempts_ = 0;
  clock::duration upstream_wait_{};
};

target_metrics& gateway::impl::request_accounting::handles(const route_target& target) {
  const auto op = static_cast<std::size_t>(request_.op);
  auto& t = shard_.targets[target.target_index][op];
  if (t.resolved) return t;
  auto& m = *gw_.metrics;
  const std::string_view mid = target.model->id;
  const std::string_view pid = gw_.config->providers[target.provider_index].name;
  const std::string_view op_name = providers::operation_name(request_.op);
  t.requests_success = m.inference_requests.series({mid, pid, "success"});
  t.requests_error = m.inference_requests.series({mid, pid, "error"});
  t.duration = m.inference_duration.series({mid, pid});
  t.tokens = m.tokens_used.series({mid, pid});
  t.input_tokens = m.tokens_used_by_type.series({mid, pid, "input"});
  t.output_tokens = m.tokens_used_by_type.series({mid, pid, "output"});
  t.credits = m.credits_used.series({mid, pid});
  t.time_to_first_chunk = m.time_to_first_chunk.series({mid, pid});
  t.failovers = m.failovers.series({mid, pid});
  t.gen_ai_duration_ok = m.gen_ai_operation_duration.series({op_name, pid, mid, ""});
  t.gen_ai_input_tokens = m.gen_ai_token_usage.series({op_name, pid, mid, "input"});
  t.gen_ai_output_tokens = m.gen_ai_token_usage.series({op_name, pid, mid, "output"});
  t.gen_ai_time_to_first_chunk = m.gen_ai_time_to_first_chunk.series({op_name, pid, mid});
  t.resolved = true;
  return t;
}

void gateway::impl::request_accounting::record_attempt(const route_target& target, const attempt_report& report,
                                                       attempt_result result, clock::time_point finished) {
  ++attempts_;
  last_target_ = &target;
  last_report_ = report;
  last_result_ = result;
  upstream_wait_ += report.upstream_wait;
  if (!gw_.metrics_enabled) return;
  const std::size_t shard = shard_.index;
  auto& t = handles(target);
  auto& provider = gw_.provider_handles[target.provider_index];
  if (report.sent_at != clock::time_point{}) {
    const double call_s = std::chrono::duration<double>(finished - report.sent_at).count();
    provider.response_time.observe(shard, call_s);
    if (report.ttfb) gw_.backend_ttfb.observe(shard, std::chrono::duration<double>(*report.ttfb).count());
    if (report.error_type.empty()) {
      t.gen_ai_duration_ok.observe(shard, call_s);
    } else {
      const auto key = std::make_tuple(target.target_index, static_cast<int>(request_.op), report.error_type);
      auto it = shard_.failed_calls.find(key);
      if (it == shard_.failed_calls.end()) {
        it = shard_.failed_calls
                 .emplace(key, gw_.metrics->gen_ai_operation_duration.series(
                                   {providers::operation_name(request_.op),
                                    gw_.config->providers[target.provider_index].name, target.model->id,
                                    report.error_type}))
                 .first;
      }
      it->second.observe(shard, call_s);
    }
  }
  if (result == attempt_result::retryable) t.failovers.inc(shard);
}

void gateway::impl::request_accounting::finish() noexcept {
  if (last_target_ == nullptr) {
    // Accepted, but no provider was tried (every breaker open, or no provider
    // supports the endpoint): still one ledger row.
    finish_untried();
    return;
  }
  const auto now = clock::now();
  const auto& target = *last_target_;
  const auto& report = last_report_;
  const auto& provider_cfg = gw_.config->providers[target.provider_index];

  unsigned status = client_status;
  if (status == 0) status = report.client_status;
  if (last_result_ == attempt_result::client_gone && report.client_status == 0) status = 499;
  const bool success = status >= 200 && status < 300 && !report.in_band_error &&
                       last_result_ != attempt_result::client_gone;

  // Cost in integer nano-dollars: price (USD per million tokens) * tokens * 1000.
  const auto& usage = report.usage;
  const double nanos = static_cast<double>(usage.input_tokens) * target.model->input_per_million * 1000.0 +
                       static_cast<double>(usage.output_tokens) * target.model->output_per_million * 1000.0;
  const std::int64_t cost_nanos = std::llround(nanos);
  const double latency_s = std::chrono::duration<double>(now - received_at_).count();
  std::optional<double> ttfc;
  if (report.first_chunk_at) ttfc = std::chrono::duration<double>(*report.first_chunk_at - received_at_).count();

  if (gw_.metrics_enabled) {
    const std::size_t shard = shard_.index;
    auto& t = handles(target);
    (success ? t.requests_success : t.requests_error).inc(shard);
    t.duration.observe(shard, latency_s);
    const auto total_tokens = usage.input_tokens + usage.output_tokens;
    if (total_tokens > 0) {
      t.tokens.inc(shard, static_cast<double>(total_tokens));
      t.input_tokens.inc(shard, static_cast<double>(usage.input_tokens));
      t.output_tokens.inc(shard, static_cast<double>(usage.output_tokens));
    }
    if (usage.reported) {
      t.gen_ai_input_tokens.observe(shard, static_cast<double>(usage.input_tokens));
      if (request_.op != operation::embeddings) {
        t.gen_ai_output_tokens.observe(shard, static_cast<double>(usage.output_tokens));
      }
    }
    if (cost_nanos > 0) {
      const double usd = static_cast<double>(cost_nanos) / 1e9;
      t.credits.inc(shard, usd);
      gw_.provider_handles[target.provider_index].cost.inc(shard, usd);
    }
    if (ttfc) {
      t.time_to_first_chunk.observe(shard, *ttfc);
      t.gen_ai_time_to_first_chunk.observe(shard, *ttfc);
    }
    if (report.first_chunk_at && report.last_chunk_at) {
      gw_.streaming_duration.observe(
          shard, std::chrono::duration<double>(*report.last_chunk_at - *report.first_chunk_at).count());
    }
    const double overhead_s = std::max(0.0, latency_s - std::chrono::duration<double>(upstream_wait_).count());
    gw_.overhead[static_cast<std::size_t>(request_.op)].observe(shard, overhead_s);
  }

  if (cost_nanos > 0 && customer_id && gw_.auth != nullptr) gw_.auth->charge(shard_.index, *customer_id, cost_nanos);
  if (gw_.sinks.empty() && gw_.ledger == nullptr) return;
  request_summary summary;
  summary.request_id = request_id_;
  summary.received_wall = received_wall(now);
  summary.model = request_.model;
  summary.provider = provider_cfg.name;
  summary.op = request_.op;
  summary.attempts = attempts_;
  summary.success = success;
  summary.http_status = status;
  summary.input_tokens = usage.input_tokens;
  summary.output_tokens = usage.output_tokens;
  summary.cost_nanos = cost_nanos;
  summary.latency_s = latency_s;
  summary.time_to_first_chunk_s = ttfc;
  summary.streamed = request_.stream;
  summary.customer_id = customer_id;
  summary.key_id = key_id;
  publish(summary);
}

void gateway::impl::request_accounting::finish_untried() noexcept {
  if (gw_.sinks.empty() && gw_.ledger == nullptr) return;
  const auto now = clock::now();
  request_summary summary;
  summary.request_id = request_id_;
  summary.received_wall = received_wall(now);
  summary.model = request_.model;
  summary.op = request_.op;
  summary.http_status = client_status == 0 ? 499 : client_status;
  summary.latency_s = std::chrono::duration<double>(now - received_at_).count();
  summary.streamed = request_.stream;
  summary.customer_id = customer_id;
  summary.key_id = key_id;
  publish(summary);
}

void gateway::impl::request_accounting::publish(request_summary& summary) noexcept {
  // Built only here, so requests without a ledger or sink pay nothing for it.
  std::string ledger_id;
  if (client_chose_id_) {
    ledger_id = request_id_ + "#" + make_request_id();
    summary.ledger_id = ledger_id;
  } else {
    summary.ledger_id = request_id_;
  }
  for (auto* sink : gw_.sinks) sink->on_request(shard_.index, summary);
  if (gw_.ledger == nullptr) return;
  // Written into the queue slot in place; every field is set, the slot
  // holds an earlier request's row (a full queue is counted by the writer).
  gw_.ledger->enqueue_with(shard_.index, [&summary](store::ledger_row& row) {
    row.request_id.assign(summary.ledger_id);
    row.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(summary.received_wall.time_since_epoch()).count();
    row.customer_id = summary.customer_id;
    row.key_id = summary.key_id;
    row.model.assign(summary.model);
    row.provider.assign(summary.provider);
    row.attempts = summary.attempts;
    row.status.assign(summary.success ? "success" : "error");
    row.http_status = summary.http_status;
    row.input_tokens = summary.input_tokens;
    row.output_tokens = summary.output_tokens;
    row.cost = summary.cost_nanos;
    row.latency_ms = summary.latency_s * 1000.0;
    row.ttft_ms = summary.time_to_first_chunk_s ? std::optional(*summary.time_to_first_chunk_s * 1000.0) : std::nullopt;
    row.streamed = summary.streamed;
  });
}

asio::awaitable<void> gateway::impl::proxy(shard_state& shard, http::request_context& ctx,
                                           operation op, const std::string& request_id,
                                           const auth::auth_result& caller) {
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

  // Every accepted request is billed from its ledger row. While the ledger
  // queue is full (the database is behind the traffic) a request is refused
  // rather than served unrecorded, which would give its tokens away.
  if (ledger != nullptr && !ledger->has_room(shard.index, shard.ledger_rows_pending)) {
    if (metrics_enabled) ledger_backlog_rejected.inc(shard.index);
    co_await send_error(ctx, api_error::ledger_backlog(), request_id);
    co_return;
  }

  const auto deadline = ctx.received_at + seconds_to_ms(config->server.request_timeout_s);
  const bool client_chose_id = ctx.req["x-request-id"] == request_id;
  request_accounting accounting{*this, shard, request, request_id, client_chose_id, ctx.received_at};
  if (caller.customer_id != 0) {
    accounting.customer_id = caller.customer_id;
    accounting.key_id = caller.key_id;
  }

  // Healthier providers first (the monitor's latest scores); equal scores
  // keep the config order. Most models have one or two providers.
  const auto& targets = it->second;
  std::array<const route_target*, 8> order_small{};
  std::vector<const route_target*> order_large;
  std::span<const route_target*> order;
  if (targets.size() <= order_small.size()) {
    order = std::span<const route_target*>(order_small.data(), targets.size());
  } else {
    order_large.resize(targets.size());
    order = order_large;
  }
  for (std::size_t i = 0; i < targets.size(); ++i) order[i] = &targets[i];
  if (order.size() > 1) {
    std::stable_sort(order.begin(), order.end(), [this](const route_target* a, const route_target* b) {
      return health->score(a->provider_index) > health->score(b->provider_index);
    });
  }

  std::optional<api_error> last_error;
  unsigned attempts = 0;
  unsigned supported = 0;
  unsigned refused_by_breaker = 0;
  for (const route_target* target_ptr : order) {
    const auto& target = *target_ptr;
    const auto& adapter = *adapters[target.provider_index];
    if (!adapter.supports(op)) continue;
    ++supported;
    // (The coarse clock: a deadline of seconds needs no finer reading.)
    if (attempts >= config->server.max_attempts || http::coarse_now() >= deadline) break;
    // Admission by the provider's circuit breaker; recorded exactly once
    // below, or as cancelled if this coroutine is destroyed first.
    health::attempt_guard admitted{*health, shard.index, target.provider_index};
    if (!admitted.admitted()) {
      ++refused_by_breaker;
      continue;
    }
    ++attempts;
    attempt a{config->providers[target.provider_index],
              adapter,
              *shard.pools[target.provider_index],
              request,
              target,
              ctx,
              request_id,
              deadline,
              {},
              {}};
    const auto result = co_await a.run();
    const auto attempt_finished = clock::now();  // one reading for metrics and health
    accounting.record_attempt(target, a.report, result, attempt_finished);
    admitted.finish(health_result(target, a.report, result, attempt_finished));
    if (result == attempt_result::client_gone) co_return;
    if (result == attempt_result::served) {
      if (!ctx.writer.started()) {
        accounting.client_status = static_cast<unsigned>(a.last_error.status);
        co_await send_error(ctx, a.last_error, request_id);
      }
      co_return;
    }
    last_error = std::move(a.last_error);
  }

  if (supported == 0) {
    const auto error = api_error::bad_request(
        fmt::format("The model `{}` does not support this endpoint", request.model),
        "unsupported_endpoint");
    accounting.client_status = static_cast<unsigned>(error.status);
    co_await send_error(ctx, error, request_id);
    co_return;
  }
  if (attempts == 0 && refused_by_breaker > 0) {
    const auto error = api_error::service_unavailable(fmt::format(
        "No provider can serve model `{}` right now: the circuit breaker of every provider serving it is open",
        request.model));
    accounting.client_status = static_cast<unsigned>(error.status);
    co_await send_error(ctx, error, request_id);
    co_return;
  }
  if (!last_error) last_error = api_error::no_provider_available(request.model);
  if (clock::now() >= deadline && last_error->status != 504) {
    last_error = api_error::upstream_timeout(config->providers[it->second.front().provider_index].name);
  }
  accounting.client_status = static_cast<unsigned>(last_error->status);
  co_await send_error(ctx, *last_error, request_id);
}

}  // namespace gatewayz::gateway

#include "gateway/gateway.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "config/durations.hpp"
#include "core/api_error.hpp"
#include "core/request_id.hpp"
#include "gateway/accounting.hpp"
#include "gateway/credentials.hpp"
#include "gateway/failover.hpp"
#include "gateway/health_api.hpp"
#include "gateway/http_metrics.hpp"
#include "gateway/ledger_recorder.hpp"
#include "gateway/metrics_api.hpp"
#include "gateway/metrics_recorder.hpp"
#include "gateway/model_routes.hpp"
#include "gateway/responses.hpp"
#include "gateway/route_table.hpp"
#include "gateway/store_api.hpp"

namespace gatewayz::gateway {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using providers::operation;

namespace {

// The operation of an inference route; nullopt for every other route.
std::optional<operation> inference_operation(route_id id) {
  switch (id) {
    case route_id::chat_completions: return operation::chat_completions;
    case route_id::completions: return operation::completions;
    case route_id::embeddings: return operation::embeddings;
    default: return std::nullopt;
  }
}

// Whether `host` (an IP literal, as config requires) is a loopback address:
// 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6.
bool is_loopback(const std::string& host) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

}  // namespace

unsigned resolve_threads(unsigned configured) {
  if (configured != 0) return configured;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

struct gateway::impl {
  impl(const config::gateway_config& cfg, gateway_parts p);

  asio::awaitable<void> handle(proxy_shard& shard, http::request_context& ctx);
  // Sends a refusal made before the failover loop and reports it (exchange_record).
  asio::awaitable<void> refuse(const proxy_shard& shard, http::request_context& ctx, std::string_view route,
                               std::string_view request_id, const api_error& error,
                               std::optional<std::int64_t> customer = std::nullopt);
  void report(const proxy_shard& shard, const http::request_context& ctx, std::string_view route,
              std::string_view request_id, unsigned status, const api_error* error,
              std::optional<std::int64_t> customer) const;
  // Answers a route served by a handler that returns a response.
  asio::awaitable<void> respond(const proxy_shard& shard, route_id id, http::request_context& ctx,
                                std::string_view path, std::string_view request_id);
  asio::awaitable<http::response> serve_store(route_id id, const http::request& req, std::string_view parameter);
  // The refusal of a request to an `admin` or `reader` route that does not
  // present what the route requires; none when it may proceed.
  std::optional<api_error> refuse_operator(access required, const http::request_context& ctx) const;
  // Waits for the work handed to background pools (metrics renders, store
  // queries): it resumes its request on a shard's io_context, so it must be
  // done before the server destroys them (server_options().after_run).
  void drain_background_work() {
    metrics_endpoint.drain();
    if (store_endpoints) store_endpoints->drain();
  }

  const config::gateway_config& config;
  gateway_parts parts;
  unsigned shards;
  bool keys_required;
  bool loopback_listen;  // the configured listen address is a loopback one
  model_routes routes;
  std::shared_ptr<http_metrics> http_observer;
  std::optional<metrics_recorder> metrics_observer;  // always built; observing only with metrics on
  std::optional<ledger_recorder> ledger_observer;
  std::vector<request_observer*> observers;  // metrics, then sinks, then the ledger
  rejection_counters rejections;
  accounting_services accounting;
  std::optional<response_caching> caching;  // with a cache backend
  failover_proxy proxy;
  health_api health_endpoints;
  metrics_api metrics_endpoint;
  std::unique_ptr<store_api> store_endpoints;
};

namespace {

failover_parts make_failover_parts(const config::gateway_config& cfg, const gateway_parts& p,
                                   const model_routes& routes, const accounting_services& accounting,
                                   const rejection_counters& rejections,
                                   const std::optional<response_caching>& caching) {
  failover_parts out;
  if (caching) out.cache = &*caching;
  out.server = &cfg.server;
  out.routes = &routes;
  out.providers = p.providers;
  out.health = p.health;
  out.ledger = p.ledger;
  // The series exists (at 0) even with metrics off, as every family's
  // up-front series does; only its updates depend on metrics.enabled.
  auto backlog_refused = p.metrics->ledger_backlog_rejected.series();
  if (cfg.metrics.enabled) out.backlog_refused = backlog_refused;
  out.accounting = &accounting;
  out.rejections = &rejections;
  out.reserve_output_tokens = cfg.auth.reserve_output_tokens;
  return out;
}

std::optional<response_caching> make_caching(const config::gateway_config& cfg, const gateway_parts& p) {
  if (p.cache == nullptr) return std::nullopt;
  return std::optional<response_caching>(std::in_place, cfg.cache, *p.cache, *p.metrics, cfg.metrics.enabled);
}

const gateway_parts& checked(const config::gateway_config& cfg, const gateway_parts& p) {
  if (p.metrics == nullptr || p.health == nullptr) {
    throw std::invalid_argument("gateway: the metrics catalog and the health monitor are required");
  }
  if (p.providers.size() != cfg.providers.size()) {
    throw std::invalid_argument("gateway: one provider runtime per configured provider is required");
  }
  const unsigned shards = resolve_threads(cfg.server.threads);
  if (p.metrics->reg.shards() < shards + 1) {
    throw std::invalid_argument("the metrics registry needs one shard per server thread plus one");
  }
  if (p.ledger != nullptr && p.ledger->shard_count() < shards) {
    // A shard without a queue could never record a request (every one 503).
    throw std::invalid_argument(fmt::format("gateway: the ledger writer has queues for {} server threads, not {}",
                                            p.ledger->shard_count(), shards));
  }
  return p;
}

}  // namespace

gateway::impl::impl(const config::gateway_config& cfg, gateway_parts p)
    : config(cfg),
      parts(checked(cfg, p)),
      shards(resolve_threads(cfg.server.threads)),
      keys_required(cfg.auth.mode == "keys"),
      loopback_listen(is_loopback(cfg.server.host)),
      routes(cfg.providers),
      http_observer(std::make_shared<http_metrics>(*parts.metrics, shards, cfg.metrics.enabled)),
      rejections(*parts.metrics, cfg.metrics.enabled),
      caching(make_caching(cfg, parts)),
      proxy(make_failover_parts(cfg, parts, routes, accounting, rejections, caching)),
      health_endpoints(*parts.health, parts.database_state, parts.redis_state, cfg.health.dashboard_cache_s),
      metrics_endpoint(*parts.metrics, cfg.metrics.bearer_token) {
  // Built either way: it creates the up-front series /metrics shows even
  // with metrics off; it observes requests only when they are on.
  metrics_observer.emplace(*parts.metrics, cfg.providers, routes.target_count(), shards);
  if (cfg.metrics.enabled) observers.push_back(&*metrics_observer);
  for (auto* sink : parts.observers) observers.push_back(sink);
  if (parts.ledger != nullptr) {
    ledger_observer.emplace(*parts.ledger);
    observers.push_back(&*ledger_observer);
  }
  accounting.providers = &cfg.providers;
  accounting.observers = observers;
  accounting.tracing = parts.tracing;
  for (const auto* observer : observers) accounting.observers_want_identity |= observer->wants_identity();
  if (parts.store != nullptr) {
    store_endpoints = std::make_unique<store_api>(
        *parts.store, std::chrono::seconds(static_cast<std::int64_t>(std::ceil(cfg.storage.stats_cache_s))),
        parts.auth != nullptr ? &parts.auth->balances() : nullptr);
  }
}

gateway::gateway(const config::gateway_config& config, gateway_parts parts)
    : impl_(std::make_unique<impl>(config, std::move(parts))) {}

gateway::~gateway() { impl_->drain_background_work(); }

const std::vector<route_target>& gateway::routes(std::string_view model) const { return impl_->routes.find(model); }

unsigned gateway::shard_count() const { return impl_->shards; }

http::server_options gateway::server_options() const {
  const auto& s = impl_->config.server;
  http::server_options options;
  options.host = s.host;
  options.port = s.port;
  options.threads = impl_->shards;
  options.max_body_bytes = s.max_body_bytes;
  options.max_header_bytes = s.max_header_bytes;
  options.max_connections = s.max_connections;
  options.max_connections_per_ip = s.max_connections_per_ip;
  options.header_timeout = config::to_milliseconds(s.header_timeout_s);
  options.body_timeout = config::to_milliseconds(s.body_timeout_s);
  options.idle_timeout = config::to_milliseconds(s.idle_timeout_s);
  options.observer = impl_->http_observer;
  options.after_run = [self = impl_.get()] { self->drain_background_work(); };
  return options;
}

http::request_handler gateway::make_shard_handler(std::size_t shard, asio::io_context& io) {
  if (shard >= impl_->shards) {
    throw std::invalid_argument(
        fmt::format("shard {} is beyond the {} the gateway was built for", shard, impl_->shards));
  }
  auto state = std::make_shared<proxy_shard>();
  state->index = shard;
  for (const auto& runtime : impl_->parts.providers) {
    state->pools.push_back(std::make_shared<http::upstream_pool>(io, runtime.endpoint, runtime.client));
  }
  if (impl_->caching) state->cache = impl_->caching->for_shard(shard, io);
  return [self = impl_.get(), state](http::request_context& ctx) { return self->handle(*state, ctx); };
}

std::optional<api_error> gateway::impl::refuse_operator(access required, const http::request_context& ctx) const {
  const auto& auth = config.auth;
  if (required == access::reader && !keys_required) return std::nullopt;
  if (required == access::admin && auth.admin_key.empty()) {
    // No admin key (auth.mode none): only someone on this machine may create
    // keys, credit customers or reset breakers.
    if (loopback_listen) return std::nullopt;
    return api_error{403, "permission_error", "admin_key_required",
                     fmt::format("The admin API is served without a key only on a loopback listen address; "
                                 "set auth.admin_key to use it on {}",
                                 config.server.listen)};
  }
  auto presented = bearer_token(ctx.req[bhttp::field::authorization]);
  if (presented.empty()) presented = ctx.req["x-admin-key"];
  // (Both compared, so the timing does not tell which one matched.)
  const bool admin = !auth.admin_key.empty() && same_secret(presented, auth.admin_key);
  const bool reader = !auth.read_token.empty() && same_secret(presented, auth.read_token);
  if (admin || (required == access::reader && reader)) return std::nullopt;
  return api_error::unauthorized(required == access::admin
                                     ? "The admin API requires the admin key"
                                     : "This endpoint requires the admin key or the read token (auth.read_token)");
}

void gateway::impl::report(const proxy_shard& shard, const http::request_context& ctx, std::string_view route,
                           std::string_view request_id, unsigned status, const api_error* error,
                           std::optional<std::int64_t> customer) const {
  exchange_record exchange;
  exchange.request_id = request_id;
  exchange.method = ctx.req.method_string();
  exchange.route = route;
  exchange.http_status = status;
  if (error != nullptr) {
    exchange.error_type = error->type;
    exchange.error_code = error->code;
  }
  exchange.customer_id = customer;
  exchange.received_at = ctx.received_at;
  report_exchange(accounting, shard.index, exchange);
}

asio::awaitable<void> gateway::impl::refuse(const proxy_shard& shard, http::request_context& ctx,
                                            std::string_view route, std::string_view request_id, const api_error& error,
                                            std::optional<std::int64_t> customer) {
  co_await send_error(ctx, error, request_id);
  report(shard, ctx, route, request_id, static_cast<unsigned>(error.status), &error, customer);
}

// Note on style in the coroutines below: values passed to a co_await'ed call
// are named locals, never temporaries in the same full-expression, because
// GCC 12 destroys such temporaries twice.

asio::awaitable<void> gateway::impl::handle(proxy_shard& shard, http::request_context& ctx) {
  const std::string request_id = request_id_for(ctx.req["x-request-id"]);
  const std::string_view target = ctx.req.target();
  const std::string_view path = target.substr(0, target.find('?'));

  // The route the HTTP metrics observer matched (once per request).
  const std::size_t index = ctx.observed ? http_metrics::route_of(*ctx.observed) : match_route(path);
  if (index >= route_count) {
    const auto error = api_error::not_found(path);
    const std::string_view unmatched = "unmatched";
    co_await refuse(shard, ctx, unmatched, request_id, error);
    co_return;
  }
  const route_spec& route = route_specs[index];
  const std::string_view route_path = route.path_template;
  if (!allows(route.methods, ctx.req.method())) {
    const auto error = api_error::method_not_allowed(ctx.req.method_string(), path);
    auto res = error_response(error, ctx.req.version());
    res.set(bhttp::field::allow, allow_header(route.methods));
    co_await send(ctx, std::move(res), request_id);
    report(shard, ctx, route_path, request_id, static_cast<unsigned>(error.status), &error, std::nullopt);
    co_return;
  }

  auth::auth_result caller;
  caller.status = auth::auth_status::ok;
  if (route.required == access::admin || route.required == access::reader) {
    if (auto refused = refuse_operator(route.required, ctx)) {
      const api_error error = std::move(*refused);
      co_await refuse(shard, ctx, route_path, request_id, error);
      co_return;
    }
  }
  if (route.required == access::api_key && keys_required) {
    if (parts.auth == nullptr) {
      // Never serve unauthenticated because the key store is missing.
      const auto error = api_error::service_unavailable("API keys are required but no key store is configured");
      co_await refuse(shard, ctx, route_path, request_id, error);
      co_return;
    }
    std::string_view credentials = ctx.req[bhttp::field::authorization];
    if (credentials.empty()) credentials = ctx.req["x-api-key"];
    caller = parts.auth->authenticate(shard.index, credentials);
    if (!caller.ok()) {
      rejections.count(caller.status, shard.index);
      const auto status = auth::http_status(caller.status);
      const std::string_view type = status == 402   ? "insufficient_quota"
                                    : status == 401 ? "authentication_error"
                                                    : "api_error";
      const api_error error{static_cast<int>(status), std::string(type), std::string(auth::error_code(caller.status)),
                            std::string(auth::message(caller.status))};
      const std::optional<std::int64_t> customer =
          caller.customer_id != 0 ? std::optional<std::int64_t>(caller.customer_id) : std::nullopt;
      co_await refuse(shard, ctx, route_path, request_id, error, customer);
      co_return;
    }
  }
  // Inference goes straight to the failover loop: no coroutine in between
  // on the path every proxied request takes.
  if (const auto op = inference_operation(route.id)) {
    co_await proxy.serve(shard, ctx, *op, route_path, request_id, caller);
    co_return;
  }
  co_await respond(shard, route.id, ctx, path, request_id);
}

asio::awaitable<void> gateway::impl::respond(const proxy_shard& shard, route_id id, http::request_context& ctx,
                                             std::string_view path, std::string_view request_id) {
  const auto& req = ctx.req;
  const auto& spec = route_specs[static_cast<std::size_t>(id)];
  const auto parameter = path_parameter(spec.path_template, path);
  http::response res;
  switch (id) {
    case route_id::models: res = json_response(200, routes.models_body(), req.version()); break;
    case route_id::metrics: res = co_await metrics_endpoint.scrape(req); break;
    case route_id::health: res = health_endpoints.health(req); break;
    case route_id::health_dashboard: res = health_endpoints.dashboard(req); break;
    case route_id::circuit_breakers: res = health_endpoints.breakers(req); break;
    case route_id::circuit_breaker_reset: res = health_endpoints.reset_breaker(req, parameter); break;
    case route_id::models_stats:
    case route_id::customers:
    case route_id::customer_credit:
    case route_id::keys:
    case route_id::key_revoke: res = co_await serve_store(id, req, parameter); break;
    case route_id::chat_completions:
    case route_id::completions:
    case route_id::embeddings:
      // Served by the failover loop (handle()); never dispatched here.
      res = error_response(api_error::not_found(path), req.version());
      break;
  }
  const unsigned status = res.result_int();
  co_await send(ctx, std::move(res), request_id);
  report(shard, ctx, spec.path_template, request_id, status, nullptr, std::nullopt);
}

asio::awaitable<http::response> gateway::impl::serve_store(route_id id, const http::request& req,
                                                           std::string_view parameter) {
  if (!store_endpoints) {
    co_return error_response(api_error::service_unavailable("No store is configured (storage.url)"), req.version());
  }
  const bool get = req.method() == bhttp::verb::get;
  switch (id) {
    case route_id::models_stats: co_return co_await store_endpoints->models_stats(req);
    case route_id::customers:
      if (get) co_return co_await store_endpoints->list_customers(req);
      co_return co_await store_endpoints->create_customer(req);
    case route_id::customer_credit: co_return co_await store_endpoints->credit_customer(req, parameter);
    case route_id::keys:
      if (get) co_return co_await store_endpoints->list_keys(req);
      co_return co_await store_endpoints->create_key(req);
    case route_id::key_revoke: co_return co_await store_endpoints->revoke_key(req, parameter);
    default: {
      const std::string_view target = req.target();
      co_return error_response(api_error::not_found(target.substr(0, target.find('?'))), req.version());
    }
  }
}

}  // namespace gatewayz::gateway

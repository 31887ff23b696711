#include "gateway/failover.hpp"

#include <algorithm>
#include <array>
#include <chrono>

#include <fmt/format.h>

#include "cache/sse_replay.hpp"
#include "config/durations.hpp"
#include "core/json_scan.hpp"
#include "gateway/attempt.hpp"
#include "gateway/credit_estimate.hpp"
#include "gateway/inbound.hpp"
#include "gateway/responses.hpp"
#include "http/deadlines.hpp"

namespace gatewayz::gateway {

namespace asio = boost::asio;
using providers::operation;

namespace {

// The health outcome of one attempt (classification: health/attempt.hpp).
// Latency for health is the time to the provider's response headers for
// streams (their length is the answer's length, not the provider's speed)
// and the whole call otherwise.
health::attempt_result health_result(const attempt_record& attempt) {
  health::attempt_result out;
  out.finished = attempt.finished;
  out.model = attempt.target->model_slot;
  if (attempt.outcome == attempt_outcome::client_gone || attempt.sent_at == steady_clock::time_point{}) {
    out.result = health::outcome::cancelled;
  } else if (attempt.provider_failure) {
    out.result = health::outcome::failure;
  } else if (attempt.upstream_status >= 400) {
    out.result = health::classify_status(attempt.upstream_status);
  } else {
    out.result = health::outcome::success;
  }
  const auto end = attempt.first_chunk_at ? attempt.sent_at + attempt.ttfb.value_or(steady_clock::duration{})
                                          : out.finished;
  out.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(end - attempt.sent_at);
  return out;
}

// A model's providers in the order they are tried (the routing order of
// health/health.hpp): providers whose breaker wants a trial first, so a
// healed provider gets its trial requests whatever its score; then the
// others by the monitor's routing score, best first; config order on ties.
// Each provider's key is read once, so the sort sees a consistent order.
// Most models have one or two providers, so the order usually lives on the
// stack.
class provider_order {
  struct entry {
    const route_target* target = nullptr;
    bool trial = false;
    double score = 0;
  };

 public:
  provider_order(const std::vector<route_target>& targets, const health::monitor& health) {
    const std::size_t n = targets.size();
    if (n <= small_.size()) {
      order_ = std::span<entry>(small_.data(), n);
    } else {
      large_.resize(n);
      order_ = large_;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t provider = targets[i].provider_index;
      order_[i] = entry{&targets[i], n > 1 && health.wants_trial(provider), n > 1 ? health.score(provider) : 0.0};
    }
    if (n > 1) {
      std::stable_sort(order_.begin(), order_.end(), [](const entry& a, const entry& b) {
        if (a.trial != b.trial) return a.trial;
        return a.score > b.score;
      });
    }
  }
  provider_order(const provider_order&) = delete;
  provider_order& operator=(const provider_order&) = delete;

  class iterator {
   public:
    explicit iterator(const entry* at) : at_(at) {}
    const route_target* operator*() const { return at_->target; }
    iterator& operator++() {
      ++at_;
      return *this;
    }
    bool operator==(const iterator&) const = default;

   private:
    const entry* at_;
  };
  iterator begin() const { return iterator{order_.data()}; }
  iterator end() const { return iterator{order_.data() + order_.size()}; }

 private:
  std::array<entry, 8> small_{};
  std::vector<entry> large_;
  std::span<entry> order_;
};

// Holds a place in the shard's ledger queue for a request not yet accounted.
class ledger_place {
 public:
  explicit ledger_place(std::size_t& pending) : pending_(pending) { ++pending_; }
  ~ledger_place() { --pending_; }
  ledger_place(const ledger_place&) = delete;
  ledger_place& operator=(const ledger_place&) = delete;

 private:
  std::size_t& pending_;
};

}  // namespace

// Note on style: values passed to a co_await'ed call are named locals, never
// temporaries in the same full-expression, because GCC 12 destroys such
// temporaries twice.
asio::awaitable<void> failover_proxy::refuse(const proxy_shard& shard, http::request_context& ctx,
                                             std::string_view route, std::string_view request_id,
                                             const auth::auth_result& caller, std::string_view model,
                                             const api_error& error) const {
  co_await send_error(ctx, error, request_id);
  exchange_record exchange;
  exchange.request_id = request_id;
  exchange.method = ctx.req.method_string();
  exchange.route = route;
  exchange.http_status = static_cast<unsigned>(error.status);
  exchange.error_type = error.type;
  exchange.error_code = error.code;
  exchange.model = model;
  if (caller.customer_id != 0) exchange.customer_id = caller.customer_id;
  exchange.received_at = ctx.received_at;
  report_exchange(*parts_.accounting, shard.index, exchange);
}

asio::awaitable<void> failover_proxy::serve(proxy_shard& shard, http::request_context& ctx, operation op,
                                            std::string_view route, std::string_view request_id,
                                            const auth::auth_result& caller) const {
  json_scan::object_scan scan;
  providers::inbound_request request;
  const std::vector<route_target>* found = nullptr;
  if (auto refused = admit(shard, ctx.req.body(), op, scan, request, found)) {
    const api_error error = std::move(*refused);
    const std::string_view model = request.model;
    co_await refuse(shard, ctx, route, request_id, caller, model, error);
    co_return;
  }
  const auto& targets = *found;

  cache_plan caching;
  cache_step lookup;
  if (parts_.cache != nullptr && shard.cache) {
    if (auto refused = parts_.cache->plan(ctx.req, request, caller.customer_id, caching)) {
      const api_error error = std::move(*refused);
      const std::string_view model = request.model;
      co_await refuse(shard, ctx, route, request_id, caller, model, error);
      co_return;
    }
    if (caching.lookup()) {
      cache::lookup_result found_entry;
      {
        // The request holds its ledger place while it waits for the cache,
        // as admit() counted it.
        ledger_place held{shard.ledger_rows_pending};
        lookup.started = steady_clock::now();
        found_entry = co_await shard.cache->lookup(caching.key);
        lookup.finished = steady_clock::now();
      }
      parts_.cache->count_lookup(found_entry.status, shard.index);
      lookup.outcome = cache::to_string(found_entry.status);
      lookup.backend = found_entry.source;
      if (found_entry.status == cache::lookup_status::hit) {
        const auto entry = std::move(found_entry.entry);
        const bool answered = co_await serve_cached(shard, ctx, route, request_id, caller, request, *entry, lookup);
        if (answered) co_return;
        lookup.outcome = "miss";  // an entry that cannot answer this request
      }
    }
  }

  store::nanos_usd reserved = 0;
  if (auto refused = reserve_credit(shard, caller, request, targets, reserved)) {
    const api_error error = std::move(*refused);
    const std::string_view model = request.model;
    co_await refuse(shard, ctx, route, request_id, caller, model, error);
    co_return;
  }

  const auto deadline = ctx.received_at + config::to_milliseconds(parts_.server->request_timeout_s);
  const bool client_chose_id = ctx.req["x-request-id"] == request_id;
  request_accounting accounting{*parts_.accounting, shard.index,    shard.ledger_rows_pending, request, request_id,
                                client_chose_id,    ctx.received_at};
  if (caller.customer_id != 0) accounting.set_caller(caller.customer_id, caller.key_id, caller.account, reserved);
  if (caching.use != cache_result::none) accounting.set_cache(caching.use, cache_backend(lookup), lookup);
  const tracing::request_trace* trace = accounting.start_trace(ctx.req);
  if (trace != nullptr && trace->sampled()) ctx.set_trace_id(trace->trace_id_hex());
  // Storage for the traceparent each attempt sends upstream (its own span id).
  std::array<char, tracing::traceparent_size> traceparent{};

  provider_order order{targets, *parts_.health};
  std::optional<api_error> last_error;
  unsigned attempts = 0;
  unsigned supported = 0;
  unsigned refused_by_breaker = 0;
  const route_target* failed_target = nullptr;  // the previous attempt's, which failed
  for (const route_target* target_ptr : order) {
    const auto& target = *target_ptr;
    const auto& runtime = parts_.providers[target.provider_index];
    if (!runtime.adapter->supports(op)) continue;
    ++supported;
    // (The coarse clock: a deadline of seconds needs no finer reading.)
    if (attempts >= parts_.server->max_attempts || http::coarse_now() >= deadline) break;
    // Admission by the provider's circuit breaker; recorded exactly once
    // below, or as cancelled if this coroutine is destroyed first.
    health::attempt_guard admitted{*parts_.health, shard.index, target.provider_index};
    if (!admitted.admitted()) {
      ++refused_by_breaker;
      continue;
    }
    ++attempts;
    attempt_record record;
    record.target = &target;
    record.number = attempts;
    record.failed_over_from = failed_target;
    record.started = steady_clock::now();
    attempt a{*runtime.config, *runtime.adapter, *shard.pools[target.provider_index],
              request,         target,           ctx,
              request_id,      deadline,         record};
    if (trace != nullptr) {
      record.span = tracing::new_span_id();
      trace->traceparent_for(record.span, traceparent.data());
      a.traceparent = std::string_view(traceparent.data(), traceparent.size());
      a.tracestate = trace->tracestate;
      a.summarize = trace->sampled();
    }
    // What the cache hook needs: the answer is stored before it is sent.
    struct store_context {
      const failover_proxy* proxy;
      proxy_shard* shard;
      const cache_plan* plan;
      const attempt_record* record;
      request_accounting* accounting;
    } store{this, &shard, &caching, &record, &accounting};
    if (caching.use != cache_result::none) {
      a.cache_header = to_string(caching.use);
      if (caching.store) {
        a.before_send_context = &store;
        a.before_send = [](void* context, std::string_view answer) {
          const auto& s = *static_cast<store_context*>(context);
          s.accounting->set_cache_store(s.proxy->store_answer(*s.shard, *s.plan, *s.record, answer));
        };
      }
    }
    record.outcome = co_await a.run();
    record.finished = steady_clock::now();  // one reading for metrics and health
    accounting.record_attempt(record);
    admitted.finish(health_result(record));
    if (record.outcome == attempt_outcome::client_gone) co_return;
    if (record.outcome == attempt_outcome::served) {
      if (!ctx.writer.started()) {
        accounting.set_client_status(static_cast<unsigned>(a.last_error.status));
        co_await send_error(ctx, a.last_error, request_id);
      }
      co_return;
    }
    last_error = std::move(a.last_error);
    failed_target = &target;
  }

  const auto error =
      final_error(request.model, targets, supported, attempts, refused_by_breaker, std::move(last_error), deadline);
  accounting.set_client_status(static_cast<unsigned>(error.status));
  co_await send_error(ctx, error, request_id);
}

asio::awaitable<bool> failover_proxy::serve_cached(proxy_shard& shard, http::request_context& ctx,
                                                   std::string_view route, std::string_view request_id,
                                                   const auth::auth_result& caller,
                                                   const providers::inbound_request& request,
                                                   const cache::cached_response& entry,
                                                   const cache_step& lookup) const {
  std::string events;
  if (request.stream && !cache::completion_to_sse(entry.body, request.client_wants_usage, events)) co_return false;
  const std::int64_t cost = parts_.cache->hit_cost(entry);
  store::nanos_usd reserved = 0;
  if (caller.account != nullptr && cost > 0) {
    if (!auth::customer_balances::reserve(*caller.account, cost)) {
      if (parts_.rejections != nullptr) parts_.rejections->count(auth::auth_status::insufficient_quota, shard.index);
      const auto error = api_error::insufficient_quota(
          fmt::format("This cached answer costs ${:.9f}, more than the credit available: add credits.",
                      static_cast<double>(cost) / 1e9));
      const std::string_view model = request.model;
      co_await refuse(shard, ctx, route, request_id, caller, model, error);
      co_return true;
    }
    reserved = cost;
  }
  const bool client_chose_id = ctx.req["x-request-id"] == request_id;
  request_accounting accounting{*parts_.accounting, shard.index,    shard.ledger_rows_pending, request, request_id,
                                client_chose_id,    ctx.received_at};
  if (caller.customer_id != 0) accounting.set_caller(caller.customer_id, caller.key_id, caller.account, reserved);
  if (const auto* trace = accounting.start_trace(ctx.req); trace != nullptr && trace->sampled()) {
    ctx.set_trace_id(trace->trace_id_hex());
  }
  accounting.set_cache(cache_result::hit, cache_backend(lookup), lookup);
  accounting.record_cache_hit(entry, cost);
  const std::string_view content_type = request.stream ? "text/event-stream" : "application/json";
  const std::array<http::header_ref, 4> fields{
      http::header_ref{"Content-Type", content_type}, http::header_ref{"x-request-id", request_id},
      http::header_ref{"x-gatewayz-provider", entry.provider}, http::header_ref{"x-gatewayz-cache", "hit"}};
  bool sent = false;
  if (!request.stream) {
    sent = co_await ctx.writer.send(200, fields, entry.body);
  } else {
    http::response_head head;
    head.result(boost::beast::http::status::ok);
    for (const auto& [name, value] : fields) head.set(name, value);
    sent = co_await ctx.writer.begin_stream(std::move(head));
    if (sent) sent = co_await ctx.writer.write_chunk(events);
    if (sent) sent = co_await ctx.writer.end_stream();
  }
  if (!sent) accounting.set_client_status(499);
  co_return true;
}

cache_step failover_proxy::store_answer(proxy_shard& shard, const cache_plan& plan, const attempt_record& record,
                                        std::string_view answer) const {
  cache_step step;
  if (!plan.store || record.client_status != 200 || answer.size() > parts_.cache->max_entry_bytes()) return step;
  step.started = steady_clock::now();
  auto entry = std::make_shared<cache::cached_response>();
  entry->body = std::string(answer);
  entry->provider = parts_.providers[record.target->provider_index].config->name;
  entry->input_tokens = record.usage.input_tokens;
  entry->output_tokens = record.usage.output_tokens;
  entry->cost_nanos = attempt_cost_nanos(record);
  entry->stored_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  entry->expires_unix_ms = entry->stored_unix_ms + parts_.cache->ttl().count();
  shard.cache->store(plan.key, std::move(entry), parts_.cache->ttl());
  step.finished = steady_clock::now();
  return step;
}

std::optional<api_error> failover_proxy::admit(proxy_shard& shard, std::string_view body, operation op,
                                               json_scan::object_scan& scan, providers::inbound_request& request,
                                               const std::vector<route_target>*& targets) const {
  if (auto invalid = parse_inbound(body, op, scan, request)) return invalid;
  targets = &parts_.routes->find(request.model);
  if (targets->empty()) return api_error::model_not_found(request.model);
  // Every accepted request is billed from its ledger row. While the ledger
  // queue is full (the database is behind the traffic) a request is refused
  // rather than served unrecorded, which would give its tokens away.
  if (parts_.ledger != nullptr && !parts_.ledger->has_room(shard.index, shard.ledger_rows_pending)) {
    if (parts_.backlog_refused) parts_.backlog_refused->inc(shard.index);
    return api_error::ledger_backlog();
  }
  return std::nullopt;
}

std::optional<api_error> failover_proxy::reserve_credit(const proxy_shard& shard, const auth::auth_result& caller,
                                                        const providers::inbound_request& request,
                                                        const std::vector<route_target>& targets,
                                                        store::nanos_usd& reserved) const {
  if (caller.account == nullptr) return std::nullopt;
  const auto cost = worst_case_cost(request, targets, parts_.reserve_output_tokens);
  if (auth::customer_balances::reserve(*caller.account, cost)) {
    reserved = cost;
    return std::nullopt;
  }
  if (parts_.rejections != nullptr) parts_.rejections->count(auth::auth_status::insufficient_quota, shard.index);
  const auto available = auth::customer_balances::available(*caller.account);
  return api_error::insufficient_quota(fmt::format(
      "This request may cost up to ${:.9f} (its prompt and max_tokens at the model's prices), more than the "
      "${:.9f} of credit available: add credits, or lower max_tokens.",
      static_cast<double>(cost) / 1e9, static_cast<double>(std::max<store::nanos_usd>(available, 0)) / 1e9));
}

rejection_counters::rejection_counters(telemetry::catalog& metrics, bool enabled) {
  auto quota = metrics.requests_rejected.series({"insufficient_quota"});
  auto invalid = metrics.requests_rejected.series({"invalid_api_key"});
  auto unavailable = metrics.requests_rejected.series({"auth_unavailable"});
  if (!enabled) return;
  insufficient_quota = quota;
  invalid_api_key = invalid;
  auth_unavailable = unavailable;
}

void rejection_counters::count(auth::auth_status refusal, std::size_t shard) const {
  const std::optional<telemetry::counter_handle>* counter = nullptr;
  switch (refusal) {
    case auth::auth_status::ok: return;
    case auth::auth_status::missing:
    case auth::auth_status::invalid:
    case auth::auth_status::revoked: counter = &invalid_api_key; break;
    case auth::auth_status::insufficient_quota: counter = &insufficient_quota; break;
    case auth::auth_status::unavailable: counter = &auth_unavailable; break;
  }
  if (counter != nullptr && *counter) (*counter)->inc(shard);
}

api_error failover_proxy::final_error(std::string_view model, const std::vector<route_target>& targets,
                                      unsigned supported, unsigned attempts, unsigned refused_by_breaker,
                                      std::optional<api_error> last_error, steady_clock::time_point deadline) const {
  if (supported == 0) {
    return api_error::bad_request(fmt::format("The model `{}` does not support this endpoint", model),
                                  "unsupported_endpoint");
  }
  if (attempts == 0 && refused_by_breaker > 0) {
    return api_error::service_unavailable(fmt::format(
        "No provider can serve model `{}` right now: the circuit breaker of every provider serving it is open", model));
  }
  if (!last_error) last_error = api_error::no_provider_available(model);
  if (steady_clock::now() >= deadline && last_error->status != 504) {
    last_error = api_error::upstream_timeout(parts_.providers[targets.front().provider_index].config->name);
  }
  return std::move(*last_error);
}

}  // namespace gatewayz::gateway

#include "app/compose.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "app/options.hpp"
#include "cache/memory_cache.hpp"
#include "cache/redis_cache.hpp"
#include "cache/tiered_cache.hpp"
#include "config/durations.hpp"
#include "core/threads.hpp"
#include "gateway/trace_recorder.hpp"
#include "health/http_prober.hpp"
#include "health/shared_redis.hpp"
#include "store/open_store.hpp"

#ifndef GATEWAYZ_VERSION
#define GATEWAYZ_VERSION "0.0.0"
#endif

namespace gatewayz::app {

// Pings the store every few seconds on a thread of its own, so GET /health
// answers from the latest state without touching the database on a shard.
class gateway_app::database_pinger {
 public:
  explicit database_pinger(store::store& store) : store_(store) {
    state_ = store_.ping() ? health::dependency_state::healthy : health::dependency_state::unhealthy;
  }
  ~database_pinger() { stop(); }
  database_pinger(const database_pinger&) = delete;
  database_pinger& operator=(const database_pinger&) = delete;

  void start() {
    thread_ = std::thread([this] {
      name_this_thread("gw-db-ping");
      lower_thread_priority();
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stop_; })) {
        lock.unlock();
        const bool up = store_.ping();
        state_ = up ? health::dependency_state::healthy : health::dependency_state::unhealthy;
        lock.lock();
      }
    });
  }
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  health::dependency_state state() const { return state_.load(); }

 private:
  store::store& store_;
  std::atomic<health::dependency_state> state_{health::dependency_state::not_configured};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// PINGs Redis every second from a thread and io_context of its own (with its
// own client, on the background metric shard), so GET /health reports Redis
// without waiting for it: healthy when the last PING was answered within
// redis.timeout_ms, unhealthy otherwise.
class gateway_app::redis_pinger {
 public:
  redis_pinger(redis::client_options options, telemetry::catalog& metrics, std::size_t metric_shard)
      : options_(std::move(options)), metrics_(metrics), metric_shard_(metric_shard) {}
  ~redis_pinger() { stop(); }
  redis_pinger(const redis_pinger&) = delete;
  redis_pinger& operator=(const redis_pinger&) = delete;

  // Starts the thread and waits for the first PING's answer (at most the
  // Redis timeout plus a little), so /health is right from the start.
  void start() {
    client_ = std::make_unique<redis::client>(io_, options_, &metrics_, metric_shard_);
    boost::asio::co_spawn(io_, loop(), boost::asio::detached);
    thread_ = std::thread([this] {
      name_this_thread("gw-redis-ping");
      lower_thread_priority();
      io_.run();
    });
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.timeout + std::chrono::milliseconds(200), [this] { return first_done_; });
  }
  void stop() {
    if (!thread_.joinable()) return;
    io_.stop();
    thread_.join();
    client_.reset();  // the io_context no longer runs: no other thread touches it
  }
  health::dependency_state state() const { return state_.load(); }

 private:
  boost::asio::awaitable<void> loop() {
    boost::asio::steady_timer timer(io_);
    const std::array<std::string_view, 1> ping{"PING"};
    for (;;) {
      const redis::result r = co_await client_->command(ping);
      state_ = r.ok() ? health::dependency_state::healthy : health::dependency_state::unhealthy;
      {
        std::lock_guard lock(mu_);
        first_done_ = true;
      }
      cv_.notify_all();
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
  }

  redis::client_options options_;
  telemetry::catalog& metrics_;
  std::size_t metric_shard_;
  boost::asio::io_context io_{1};
  std::unique_ptr<redis::client> client_;
  std::atomic<health::dependency_state> state_{health::dependency_state::unhealthy};
  std::mutex mu_;
  std::condition_variable cv_;
  bool first_done_ = false;
  std::thread thread_;
};

gateway_app::gateway_app(config::gateway_config config, compose_options options)
    : config_(std::move(config)), threads_(gateway::resolve_threads(config_.server.threads)) {
  // One metric shard per server thread plus one for background threads.
  registry_ = std::make_unique<telemetry::registry>(threads_ + 1);
  catalog_ = std::make_unique<telemetry::catalog>(*registry_, GATEWAYZ_VERSION);

  logger_ = options.logger;
  auto report = [log = logger_](std::string_view what) {
    return [log, what](std::string_view message) {
      if (log == nullptr) return;
      logging::event e{logging::level::error, what};
      e.text("error", message);
      log->write(e);
    };
  };
  if (options.open_store && config_.storage.url != "none") {
    try {
      store_ = store::open_store(config_.storage.url, catalog_.get());
      store_->migrate();
    } catch (const std::exception& e) {
      throw store_open_error(e.what());
    }
    balances_ = std::make_unique<auth::customer_balances>();
    auto ledger_opts = ledger_options(config_.storage);
    ledger_opts.on_committed = [balances = balances_.get()](std::span<const store::ledger_row> rows) {
      balances->committed(rows);
    };
    ledger_ = std::make_unique<ledger::ledger_writer>(*store_, std::move(ledger_opts), threads_, catalog_.get(),
                                                      report("ledger write failed"));
    auth_ = std::make_unique<auth::authenticator>(*store_, *balances_, auth_options(config_.auth), threads_,
                                                  catalog_.get(), auth::steady_clock_fn{},
                                                  report("API key lookup failed"));
  }

  runtimes_ = providers::build_runtimes(config_.providers);

  auto health_opts = health_options(config_, options.active_probes);
  health::services health_svc;
  if (logger_ != nullptr) {
    health_svc.on_transition = [log = logger_](const health::transition& t) {
      logging::event e{logging::level::warning, "circuit breaker transition"};
      e.text("provider", t.provider_name)
          .text("from_state", health::to_string(t.from))
          .text("to_state", health::to_string(t.to))
          .text("reason", t.reason);
      log->write(e);
    };
    health_svc.on_error = report("health monitor failed");
  }
  const bool any_probe = std::any_of(health_opts.providers.begin(), health_opts.providers.end(),
                                     [](const health::provider_info& p) { return p.probe_interval_s > 0; });
  if (any_probe) health_svc.probe = std::make_unique<health::http_prober>(runtimes_, health_opts);
  if (config_.health.shared) {
    // The monitor thread's own client (the loader made sure redis.url is set).
    std::vector<std::string> names;
    for (const auto& p : health_opts.providers) names.push_back(p.name);
    health_svc.shared = std::make_unique<health::redis_shared_store>(redis_options(config_.redis), std::move(names),
                                                                     health_opts.window_s, catalog_.get(), threads_);
  }
  monitor_ = std::make_unique<health::monitor>(health_opts, *catalog_, std::move(health_svc));

  gateway::gateway_parts parts;
  parts.metrics = catalog_.get();
  parts.health = monitor_.get();
  parts.providers = runtimes_;
  parts.store = store_.get();
  parts.auth = auth_.get();
  parts.ledger = ledger_.get();
  parts.observers = std::move(options.observers);
  if (logger_ != nullptr) {
    log_recorder_ = std::make_unique<gateway::log_recorder>(*logger_, config_.providers, config_.logging.log_content);
    parts.observers.push_back(log_recorder_.get());
  }
  if (config_.tracing.enabled) {
    sampler_ = tracing_sampler(config_.tracing);
    exporter_ = std::make_unique<tracing::batch_exporter>(tracing_options(config_.tracing, threads_, GATEWAYZ_VERSION),
                                                          catalog_.get(), report("trace export failed"));
    trace_recorder_ = std::make_unique<gateway::trace_recorder>(*exporter_, runtimes_);
    parts.observers.push_back(trace_recorder_.get());
    parts.tracing = &*sampler_;
  }
  if (store_) {
    pinger_ = std::make_unique<database_pinger>(*store_);
    parts.database_state = [pinger = pinger_.get()] { return pinger->state(); };
  }
  if (!config_.redis.url.empty()) {
    const auto redis_opts = redis_options(config_.redis);
    redis_clients_ = std::make_unique<redis::client_set>(redis_opts, catalog_.get(), threads_);
    redis_pinger_ = std::make_unique<redis_pinger>(redis_opts, *catalog_, threads_);
    parts.redis_state = [pinger = redis_pinger_.get()] { return pinger->state(); };
  }
  // After the Redis clients: the shared cache uses each shard's client.
  if (config_.cache.mode == "memory") {
    response_cache_ = std::make_unique<cache::memory_cache>(config_.cache.max_bytes, catalog_->cache_size.series());
  } else if (config_.cache.mode == "redis") {
    response_cache_ = std::make_unique<cache::redis_cache>(*redis_clients_);
    if (config_.cache.local_max_bytes > 0) {
      local_cache_ =
          std::make_unique<cache::memory_cache>(config_.cache.local_max_bytes, catalog_->cache_size.series());
      shared_cache_ = std::move(response_cache_);
      response_cache_ = std::make_unique<cache::tiered_cache>(*local_cache_, *shared_cache_,
                                                              config::to_milliseconds(config_.cache.local_ttl_s));
    }
  }
  parts.cache = response_cache_.get();
  gateway_ = std::make_unique<gateway::gateway>(config_, std::move(parts));
  // Last, once nothing can throw: a constructor that throws runs no
  // destructor, so an earlier attach would leave the logger's thread
  // publishing into the freed catalog (the counters mirror totals, so
  // attaching late loses nothing).
  if (logger_ != nullptr) logger_->attach_metrics(*catalog_);

  if (options.start) {
    if (exporter_) exporter_->start();
    if (pinger_) pinger_->start();
    if (redis_pinger_) redis_pinger_->start();
    monitor_->start();
  }
}

gateway_app::~gateway_app() {
  gateway_.reset();                  // waits for its background work
  if (exporter_) exporter_->stop();  // exports what is queued (within the export timeout)
  if (monitor_) monitor_->stop();
  pinger_.reset();
  redis_pinger_.reset();
  stop_ledger();
  if (logger_ != nullptr) logger_->detach_metrics();
}

http::handler_factory gateway_app::handler_factory() {
  return [gw = gateway_.get(), clients = redis_clients_.get()](std::size_t shard,
                                                               boost::asio::io_context& io) -> http::request_handler {
    if (clients == nullptr) return gw->make_shard_handler(shard, io);
    // The shard's Redis client first, so the shard's handler can find it;
    // the handler keeps its lease: both go when the server drops the handler.
    auto lease = clients->attach(shard, io);
    return [handler = gw->make_shard_handler(shard, io), lease](http::request_context& ctx) { return handler(ctx); };
  };
}

void gateway_app::stop_ledger() {
  if (ledger_) ledger_->stop();
}

}  // namespace gatewayz::app

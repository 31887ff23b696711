#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "core/threads.hpp"
#include "health/breaker.hpp"
#include "health/health.hpp"
#include "telemetry/catalog.hpp"

namespace gatewayz::health {

namespace {

using std::chrono::nanoseconds;

nanoseconds seconds_ns(double s) { return std::chrono::duration_cast<nanoseconds>(std::chrono::duration<double>(s)); }

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("health options: ") + what);
}

bool finite_positive(double v) { return std::isfinite(v) && v > 0; }

}  // namespace

std::string_view to_string(breaker_state s) {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "unknown";
}

std::string_view to_string(provider_status s) {
  switch (s) {
    case provider_status::healthy: return "healthy";
    case provider_status::degraded: return "degraded";
    case provider_status::down: return "down";
  }
  return "unknown";
}

double latency_score(double p95_s) { return std::clamp(1.0 - (p95_s - 2.0) / 8.0, 0.0, 1.0); }

double health_score(double availability, double error_rate, double latency) {
  return std::clamp(0.4 * availability + 0.3 * (1.0 - error_rate) + 0.3 * latency, 0.0, 1.0);
}

void validate(const options& o) {
  require(std::isfinite(o.window_s) && o.window_s >= 1, "window_s must be at least 1");
  require(finite_positive(o.interval_s), "interval_s must be positive");
  require(std::isfinite(o.dashboard_cache_s) && o.dashboard_cache_s >= 0, "dashboard_cache_s must not be negative");
  require(o.degraded_below_score >= 0 && o.degraded_below_score <= 1, "degraded_below_score must be within [0, 1]");
  const breaker_options& b = o.breaker;
  require(b.failure_threshold >= 1, "circuit_breaker.failure_threshold must be at least 1");
  require(b.error_rate_threshold > 0 && b.error_rate_threshold <= 1,
          "circuit_breaker.error_rate_threshold must be within (0, 1]");
  require(b.min_requests >= 1, "circuit_breaker.min_requests must be at least 1");
  require(finite_positive(b.open_s), "circuit_breaker.open_s must be positive");
  require(std::isfinite(b.max_open_s) && b.max_open_s >= b.open_s,
          "circuit_breaker.max_open_s must be at least open_s");
  require(b.half_open_requests >= 1, "circuit_breaker.half_open_requests must be at least 1");
  require(finite_positive(b.trial_timeout_s), "circuit_breaker.trial_timeout_s must be positive");
  std::unordered_set<std::string> names;
  for (const provider_info& p : o.providers) {
    require(!p.name.empty(), "every provider needs a name");
    require(names.insert(p.name).second, "provider names must be unique");
    require(std::isfinite(p.probe_interval_s) && p.probe_interval_s >= 0, "probe_interval_s must not be negative");
    require(finite_positive(p.probe_timeout_s), "probe_timeout_s must be positive");
    require(p.probe_interval_s == 0 || p.probe_path.starts_with('/'), "probe_path must start with '/'");
  }
}

struct monitor::impl {
  impl(options o, telemetry::catalog& m, services s)
      : opts(std::move(o)),
        metrics(m),
        clock(s.clock != nullptr ? *s.clock : system_clock_source()),
        store(std::move(s.store)),
        probe(std::move(s.probe)),
        on_transition(std::move(s.on_transition)),
        on_error(std::move(s.on_error)),
        shards(m.reg.shards()) {}

  options opts;
  telemetry::catalog& metrics;
  const clock_source& clock;
  std::unique_ptr<window_store> store;
  std::unique_ptr<prober> probe;
  std::function<void(const transition&)> on_transition;
  std::function<void(std::string_view)> on_error;
  std::size_t shards;

  std::vector<std::unique_ptr<detail::breaker>> breakers;
  struct gauges {
    telemetry::gauge_handle availability;
    telemetry::gauge_handle error_rate;
    telemetry::gauge_handle score;
  };
  std::vector<gauges> provider_gauges;
  std::unique_ptr<std::atomic<double>[]> scores;

  struct probe_schedule {
    steady_time next{};
    std::optional<probe_status> last;
  };
  std::vector<probe_schedule> probes;  // used by run_once only (under run_mu)

  mutable std::mutex snapshot_mu;
  std::shared_ptr<const snapshot> latest;

  std::mutex run_mu;

  std::mutex thread_mu;
  std::condition_variable wake;
  bool stopping = false;
  bool prober_stopped = false;
  std::thread thread;

  provider_health evaluate(std::size_t i, steady_time now) const;
  double routing_score(std::size_t i, const provider_health& p, steady_time now) const;
  void publish(std::shared_ptr<const snapshot> s) {
    std::lock_guard lock(snapshot_mu);
    latest = std::move(s);
  }
};

provider_health monitor::impl::evaluate(std::size_t i, steady_time now) const {
  const provider_info& info = opts.providers[i];
  const window_totals w = store->provider_window(i, now);
  const hour_totals h = store->last_hour(i, now);
  provider_health p;
  p.name = info.name;
  p.breaker = breakers[i]->state();
  p.requests = w.requests();
  p.failures = w.failures;
  p.client_errors = w.client_errors;
  p.requests_last_hour = h.requests;
  p.errors_last_hour = h.failures;
  p.last_probe = probes[i].last;

  const bool idle = p.requests == 0;
  const bool probe_failed = p.last_probe && !p.last_probe->ok;
  if (p.breaker == breaker_state::open) {
    p.availability = 0;
  } else if (idle) {
    p.availability = probe_failed ? 0 : 1;
  } else {
    p.availability = static_cast<double>(w.successes) / static_cast<double>(p.requests);
  }
  p.error_rate = idle ? 0 : static_cast<double>(w.failures) / static_cast<double>(p.requests);
  if (w.successes > 0) {
    p.avg_latency_s = w.success_latency_sum_s / static_cast<double>(w.successes);
    p.p95_latency_s = w.success_latency.quantile(0.95);
    p.latency_score = latency_score(p.p95_latency_s);
  }
  p.health_score = health_score(p.availability, p.error_rate, p.latency_score);
  if (p.availability <= 0) {
    p.status = provider_status::down;
  } else if (p.breaker == breaker_state::half_open || p.health_score < opts.degraded_below_score) {
    p.status = provider_status::degraded;
  } else {
    p.status = provider_status::healthy;
  }
  p.available = p.status != provider_status::down;

  for (std::size_t m = 0; m < info.models.size(); ++m) {
    const window_totals mw = store->model_window(i, m, now);
    if (mw.requests() == 0) continue;
    model_health mh;
    mh.name = info.models[m];
    mh.requests = mw.requests();
    mh.failures = mw.failures;
    if (mw.successes > 0) mh.avg_latency_s = mw.success_latency_sum_s / static_cast<double>(mw.successes);
    p.models.push_back(std::move(mh));
  }
  return p;
}

// The health score of p, counted only from the breaker's last recovery when
// that lies within the window: the failures that opened the breaker were
// answered by the trials that closed it, so they do not keep a healed
// provider behind the others (it would get no traffic to prove itself with
// until they aged out).
double monitor::impl::routing_score(std::size_t i, const provider_health& p, steady_time now) const {
  const std::optional<steady_time> recovered = breakers[i]->recovered_at();
  if (!recovered || p.breaker != breaker_state::closed || now - *recovered >= seconds_ns(opts.window_s)) {
    return p.health_score;
  }
  const window_totals w = store->provider_window_after(i, now, *recovered);
  if (w.requests() == 0) return health_score(p.last_probe && !p.last_probe->ok ? 0 : 1, 0, 1);
  const double error_rate = static_cast<double>(w.failures) / static_cast<double>(w.requests());
  const double latency = w.successes > 0 ? latency_score(w.success_latency.quantile(0.95)) : 1.0;
  return health_score(1 - error_rate, error_rate, latency);
}

monitor::monitor(options opts, telemetry::catalog& metrics, services svc) {
  validate(opts);
  impl_ = std::make_unique<impl>(std::move(opts), metrics, std::move(svc));
  impl& m = *impl_;
  const auto window = seconds_ns(m.opts.window_s);
  const std::size_t count = m.opts.providers.size();
  if (!m.store) {
    std::vector<std::size_t> models;
    for (const auto& p : m.opts.providers) models.push_back(p.models.size());
    m.store = std::make_unique<memory_window_store>(m.shards, window, models);
  }
  m.scores = std::make_unique<std::atomic<double>[]>(count);
  m.probes.resize(count);
  auto initial = std::make_shared<snapshot>();
  initial->computed_at = m.clock.wall();
  for (std::size_t i = 0; i < count; ++i) {
    const std::string& name = m.opts.providers[i].name;
    m.breakers.push_back(std::make_unique<detail::breaker>(i, name, m.opts.breaker, window, m.shards, m.clock, metrics,
                                                           m.on_transition));
    impl::gauges g{metrics.provider_availability.series({name}), metrics.provider_error_rate.series({name}),
                   metrics.provider_health_score.series({name})};
    // No traffic yet: available (the same rule as an idle provider).
    g.availability.set(1);
    g.error_rate.set(0);
    g.score.set(1);
    m.provider_gauges.push_back(g);
    m.scores[i].store(1.0, std::memory_order_relaxed);
    provider_health p;
    p.name = name;
    initial->providers.push_back(std::move(p));
  }
  m.publish(std::move(initial));
}

monitor::~monitor() { stop(); }

admission monitor::admit(std::size_t shard, std::size_t provider) { return impl_->breakers[provider]->admit(shard); }

void monitor::record(std::size_t shard, const admission& a, const attempt_result& result) {
  if (!a.admitted) return;  // never sent
  impl_->store->record(shard, a.provider, result);
  impl_->breakers[a.provider]->on_result(shard, a, result.result, result.finished);
}

breaker_state monitor::state(std::size_t provider) const { return impl_->breakers[provider]->state(); }

bool monitor::wants_trial(std::size_t provider) const { return impl_->breakers[provider]->wants_trial(); }

double monitor::score(std::size_t provider) const { return impl_->scores[provider].load(std::memory_order_relaxed); }

std::shared_ptr<const snapshot> monitor::current() const {
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->latest;
}

void monitor::run_once() {
  impl& m = *impl_;
  std::lock_guard run(m.run_mu);
  for (auto& b : m.breakers) b->maintain();

  steady_time now = m.clock.steady();
  bool probing = false;
  {
    std::lock_guard lock(m.thread_mu);
    probing = m.probe && !m.prober_stopped;
  }
  if (probing) {
    std::vector<std::size_t> due;
    for (std::size_t i = 0; i < m.opts.providers.size(); ++i) {
      const double interval = m.opts.providers[i].probe_interval_s;
      if (interval <= 0 || now < m.probes[i].next) continue;
      due.push_back(i);
      m.probes[i].next = now + seconds_ns(interval);
    }
    if (!due.empty()) {
      const std::vector<probe_result> results = m.probe->probe(due);
      const wall_time at = m.clock.wall();
      for (std::size_t k = 0; k < due.size() && k < results.size(); ++k) {
        const probe_result& r = results[k];
        if (r.cancelled) continue;
        m.probes[due[k]].last = probe_status{r.ok, r.http_status, r.detail, at};
      }
      now = m.clock.steady();
    }
  }

  auto next = std::make_shared<snapshot>();
  next->computed_at = m.clock.wall();
  next->providers.reserve(m.opts.providers.size());
  for (std::size_t i = 0; i < m.opts.providers.size(); ++i) {
    provider_health p = m.evaluate(i, now);
    m.provider_gauges[i].availability.set(p.available ? 1 : 0);
    m.provider_gauges[i].error_rate.set(p.error_rate);
    m.provider_gauges[i].score.set(p.health_score);
    m.scores[i].store(m.routing_score(i, p, now), std::memory_order_relaxed);
    next->providers.push_back(std::move(p));
  }
  m.publish(std::move(next));
}

void monitor::start() {
  impl& m = *impl_;
  std::lock_guard guard(m.thread_mu);
  if (m.thread.joinable()) return;
  m.stopping = false;
  // The constructor published the starting snapshot (every provider
  // available, equal scores), so a round right away only matters for active
  // probes, which should find a provider that is down at once. Without them the
  // first round comes one interval in; a round racing the first requests would
  // otherwise reorder providers by whichever failures it happened to see.
  bool round_now = false;
  if (m.probe) {
    for (const auto& p : m.opts.providers) round_now = round_now || p.probe_interval_s > 0;
  }
  m.thread = std::thread([&m, this, round_now]() mutable {
    name_this_thread("gw-health");
    lower_thread_priority();
    std::unique_lock lock(m.thread_mu);
    while (!m.stopping) {
      if (round_now) {
        lock.unlock();
        try {
          run_once();
        } catch (const std::exception& e) {
          if (m.on_error) m.on_error(e.what());
        }
        lock.lock();
      }
      round_now = true;
      m.wake.wait_for(lock, std::chrono::duration<double>(m.opts.interval_s), [&m] { return m.stopping; });
    }
  });
}

void monitor::stop() {
  impl& m = *impl_;
  std::thread thread;
  {
    std::lock_guard lock(m.thread_mu);
    m.stopping = true;
    thread = std::move(m.thread);
    if (thread.joinable() && m.probe) {
      m.prober_stopped = true;
      m.probe->stop();
    }
  }
  m.wake.notify_all();
  if (thread.joinable()) thread.join();
}

bool monitor::reset(std::size_t provider) {
  if (provider >= impl_->breakers.size()) return false;
  impl_->breakers[provider]->reset();
  return true;
}

std::vector<breaker_info> monitor::breakers() const {
  std::vector<breaker_info> out;
  out.reserve(impl_->breakers.size());
  for (const auto& b : impl_->breakers) out.push_back(b->info());
  return out;
}

std::optional<std::size_t> monitor::provider_index(std::string_view name) const {
  const auto& providers = impl_->opts.providers;
  for (std::size_t i = 0; i < providers.size(); ++i) {
    if (providers[i].name == name) return i;
  }
  return std::nullopt;
}

const options& monitor::settings() const { return impl_->opts; }

const clock_source& monitor::clock() const { return impl_->clock; }

attempt_guard::~attempt_guard() {
  if (!admission_.admitted || finished_) return;
  attempt_result cancelled;
  cancelled.result = outcome::cancelled;
  cancelled.finished = monitor_->clock().steady();
  monitor_->record(shard_, admission_, cancelled);
}

void attempt_guard::finish(const attempt_result& result) {
  if (!admission_.admitted || finished_) return;
  finished_ = true;
  monitor_->record(shard_, admission_, result);
}

}  // namespace gatewayz::health

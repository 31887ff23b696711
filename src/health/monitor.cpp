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
        shared(std::move(s.shared)),
        on_transition(std::move(s.on_transition)),
        on_error(std::move(s.on_error)),
        shards(m.reg.shards()) {}

  options opts;
  telemetry::catalog& metrics;
  const clock_source& clock;
  std::unique_ptr<window_store> store;
  std::unique_ptr<prober> probe;
  std::unique_ptr<shared_store> shared;
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

  // Shared health only. Per shard, per provider: cumulative attempts
  // (successes, failures, client errors), written by that shard alone.
  struct alignas(64) shard_counts {
    std::unique_ptr<std::atomic<std::uint64_t>[]> v;
  };
  std::vector<shard_counts> counts;
  // Used by run_once only (under run_mu).
  std::vector<attempt_counts> pushed;                        // the totals the last successful push included
  std::vector<std::uint64_t> published;                      // the breaker generation last published (or adopted)
  std::vector<std::optional<attempt_counts>> shared_window;  // from the last read; none: local view

  std::mutex thread_mu;
  std::condition_variable wake;
  bool stopping = false;
  bool round_requested = false;  // a breaker opened: share it now
  bool prober_stopped = false;
  std::thread thread;

  provider_health evaluate(std::size_t i, steady_time now) const;
  void exchange_shared();
  void request_round() {
    {
      std::lock_guard lock(thread_mu);
      round_requested = true;
    }
    wake.notify_all();
  }
  double routing_score(std::size_t i, const provider_health& p, steady_time now) const;
  void publish(std::shared_ptr<const snapshot> s) {
    std::lock_guard lock(snapshot_mu);
    latest = std::move(s);
  }
};

provider_health monitor::impl::evaluate(std::size_t i, steady_time now) const {
  const provider_info& info = opts.providers[i];
  const window_totals local = store->provider_window(i, now);
  window_totals w = local;
  if (shared && shared_window[i]) {
    // Every instance's attempts; latency (below) stays this instance's own.
    w.successes = shared_window[i]->successes;
    w.failures = shared_window[i]->failures;
    w.client_errors = shared_window[i]->client_errors;
  }
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
  if (local.successes > 0) {
    p.avg_latency_s = local.success_latency_sum_s / static_cast<double>(local.successes);
    p.p95_latency_s = local.success_latency.quantile(0.95);
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

// Publishes new local openings and the attempts since the last push, then
// adopts other instances' openings and their window counts.
void monitor::impl::exchange_shared() {
  const std::size_t n = opts.providers.size();
  shared_store::exchange_in in;
  in.now = clock.wall();
  in.openings.resize(n);
  in.deltas.resize(n);
  std::vector<attempt_counts> totals(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (const shard_counts& c : counts) {
      totals[i].successes += c.v[3 * i].load(std::memory_order_relaxed);
      totals[i].failures += c.v[3 * i + 1].load(std::memory_order_relaxed);
      totals[i].client_errors += c.v[3 * i + 2].load(std::memory_order_relaxed);
    }
    in.deltas[i] = {totals[i].successes - pushed[i].successes, totals[i].failures - pushed[i].failures,
                    totals[i].client_errors - pushed[i].client_errors};
    const std::uint64_t generation = breakers[i]->generation();
    if (generation != published[i]) {
      in.openings[i] = breakers[i]->open_until();
      if (in.openings[i]) published[i] = generation;
    }
  }
  shared_store::exchange_out out;
  shared->exchange(in, out);
  if (out.pushed) {
    pushed = std::move(totals);
  } else {
    // Published next time.
    for (std::size_t i = 0; i < n; ++i) {
      if (in.openings[i]) published[i] = 0;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    shared_window[i].reset();
    if (!out.read) continue;
    if (i < out.window.size()) shared_window[i] = out.window[i];
    if (i < out.open_until.size() && out.open_until[i] && breakers[i]->state() != breaker_state::open) {
      breakers[i]->adopt_open(*out.open_until[i]);
      published[i] = breakers[i]->generation();  // not published back
    }
  }
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
  if (m.shared) {
    m.counts.resize(m.shards);
    for (auto& c : m.counts) {
      c.v = std::make_unique<std::atomic<std::uint64_t>[]>(3 * count);
      for (std::size_t k = 0; k < 3 * count; ++k) c.v[k].store(0, std::memory_order_relaxed);
    }
    m.pushed.resize(count);
    m.published.resize(count, 0);
    m.shared_window.resize(count);
    // (Before the breakers, which keep a reference to it.) An opening is
    // shared at once, not at the next round.
    m.on_transition = [user = std::move(m.on_transition), &m](const transition& t) {
      if (user) user(t);
      if (t.to == breaker_state::open && t.reason != "shared_open") m.request_round();
    };
  }
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
  if (impl_->shared && result.result != outcome::cancelled) {
    const std::size_t k = 3 * a.provider + (result.result == outcome::success   ? 0
                                            : result.result == outcome::failure ? 1
                                                                                : 2);
    auto& cell = impl_->counts[shard].v[k];
    cell.store(cell.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
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
  if (m.shared) m.exchange_shared();

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
      m.wake.wait_for(lock, std::chrono::duration<double>(m.opts.interval_s),
                      [&m] { return m.stopping || m.round_requested; });
      m.round_requested = false;
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

#pragma once
// Provider health: rolling windows of upstream attempts, a circuit breaker
// per provider, and a monitor that turns both into health scores, Prometheus
// gauges and an immutable snapshot for routing and the health endpoints
// (render.hpp). The gateway tries a model's providers in the routing order below.
//
// Per upstream attempt, on shard thread `shard`:
//   health::admission a = monitor.admit(shard, provider);
//   if (!a) → skip this provider (breaker open / half-open slots taken);
//             admit() already counted circuit_breaker_rejected_requests_total
//   ... send the attempt ...
//   monitor.record(shard, a, {model_slot, outcome, duration, finished});
// Every admitted attempt must be recorded exactly once, with
// outcome::cancelled when the client went away (a half-open trial never
// reported holds its slot until breaker_options::trial_timeout_s);
// attempt_guard does this with RAII for coroutines that may be destroyed.
//
// Threads: admit(), record(), state(), wants_trial(), score(): any shard thread,
// concurrently, with the calling server thread's own shard index (cells are
// single-writer per shard). With the breaker closed, admit() is one atomic
// load and record() of a success touches only the shard's own cells; a
// failure may do an atomic increment and, rarely, take the breaker's mutex.
// current(), breakers(), reset(), provider_index(): any thread. run_once():
// the monitor thread (after start()) or a test, serialised internally.
// start()/stop(): the owning thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "health/attempt.hpp"
#include "health/clock.hpp"
#include "health/window_store.hpp"

namespace gatewayz::telemetry {
struct catalog;
}

namespace gatewayz::health {

// Routing order. The gateway tries a model's providers in this order:
//  1. providers whose breaker wants a trial (wants_trial(): half-open with a
//     free trial slot, or open with its cool-down over), so a healed
//     provider gets its trials however low its score, and its breaker closes
//     within its cool-down plus half_open_requests requests. A failed trial
//     reopens the breaker (cool-down doubled) and the request fails over to
//     the next provider; a trial whose client went away only frees its slot.
//  2. the others by routing score, best first, config order on ties. The
//     routing score is the health score below, except that for a breaker
//     that closed after its trials (or a manual reset) within the window it
//     counts only attempts after that moment: the failures that opened the
//     breaker were answered by the trials, and a healed provider must get
//     real traffic for its window statistics (the published score) to
//     recover. If it fails again, its new failures lower it as usual.
//
// ---- options (the app maps YAML `health:`, `circuit_breaker:` and the
// per-provider probe keys into these) -------------------------------------------

// Circuit breaker (per provider): closed → open after failure_threshold
// consecutive failures, or when failures / requests ≥ error_rate_threshold
// over at least min_requests requests in the window since it last closed;
// open for open_s, doubling on each reopen up to max_open_s (reset when it
// closes); then half_open: at most half_open_requests trials in flight; when
// that many trials have succeeded it closes, any trial failure reopens it.
// Each transition sets gatewayz_circuit_breaker_state{provider,state} (1 for
// the current state, 0 for the others), increments
// circuit_breaker_state_transitions_total{provider,from_state,to_state} and
// calls services::on_transition.
struct breaker_options {
  unsigned failure_threshold = 5;     // consecutive failures that open the breaker
  double error_rate_threshold = 0.5;  // failures / requests that open it ...
  unsigned min_requests = 10;         // ... over at least this many requests
  double open_s = 60;                 // first cool-down
  double max_open_s = 600;            // cap of the doubling cool-down
  unsigned half_open_requests = 2;    // concurrent trials; all must succeed
  // A trial not reported within this long is written off (a new set of
  // trials may start), so a lost report cannot wedge the breaker half-open.
  double trial_timeout_s = 120;
};

struct provider_info {
  std::string name;                 // the `provider` label value
  std::vector<std::string> models;  // model slot i = models[i]
  double probe_interval_s = 0;      // active probe period; 0 = no probe
  std::string probe_path = "/models";
  double probe_timeout_s = 10;
};

struct options {
  double window_s = 300;          // rolling window of all statistics
  double interval_s = 30;         // monitor period
  double dashboard_cache_s = 30;  // GET /health/dashboard body lifetime
  double degraded_below_score = 0.8;
  breaker_options breaker;
  std::vector<provider_info> providers;
};

// Throws std::invalid_argument naming the first bad value.
void validate(const options& o);

// ---- breaker ----------------------------------------------------------------------

enum class breaker_state : std::uint8_t { closed = 0, open = 1, half_open = 2 };
std::string_view to_string(breaker_state s);  // "closed", "open", "half_open"

struct transition {
  std::size_t provider = 0;
  std::string provider_name;
  breaker_state from = breaker_state::closed;
  breaker_state to = breaker_state::closed;
  // consecutive_failures, error_rate, cool_down_elapsed, trials_succeeded,
  // trial_failed, manual_reset
  std::string reason;
  wall_time at;
};

struct breaker_info {
  std::string provider;
  breaker_state state = breaker_state::closed;
  unsigned consecutive_failures = 0;
  unsigned reopen_count = 0;          // reopenings since it last closed
  double open_duration_s = 0;         // cool-down of the current / next opening
  std::optional<wall_time> retry_at;  // open: when it turns half-open
  unsigned trials_in_flight = 0;
  unsigned trial_successes = 0;
  std::optional<wall_time> last_transition_at;
};

// What admit() decided; pass it back to record(). Converts to true when the
// attempt may be sent.
struct admission {
  std::size_t provider = 0;
  bool admitted = false;
  bool trial = false;            // a half-open trial
  std::uint64_t generation = 0;  // the breaker episode it belongs to
  explicit operator bool() const { return admitted; }
};

// ---- snapshot ---------------------------------------------------------------------

enum class provider_status : std::uint8_t { healthy, degraded, down };
std::string_view to_string(provider_status s);  // "healthy", "degraded", "down"

struct model_health {
  std::string name;
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  double avg_latency_s = 0;
};

struct probe_status {
  bool ok = false;
  unsigned http_status = 0;  // 0 when no HTTP answer
  std::string detail;        // why it failed
  wall_time at;
};

// Definitions (all over the rolling window, default 300 s):
//  - requests     successes + failures (attempt.hpp: client errors and
//                 cancellations are not the provider's requests).
//  - error_rate   failures / requests; 0 without requests.
//  - availability the share of requests that succeeded (= 1 − error_rate),
//                 except: 0 while the breaker is open (it takes no traffic);
//                 without requests 1, or 0 if its active probe failed last.
//                 This fraction is the dashboard's `availability` and the
//                 score's input.
//  - latency      over successes only: average, and p95 from the histogram.
//  - health_score 0.4·availability + 0.3·(1 − error_rate) + 0.3·latency_score,
//                 latency_score = clamp(1 − (p95 − 2 s) / 8 s, 0, 1), 1 without
//                 successes, clamped to [0, 1].
//  - status       down:     availability == 0 (breaker open, failing probe
//                           while idle, or every request in the window failed);
//                 degraded: breaker half-open, or score < degraded_below_score;
//                 healthy:  otherwise.
//  - provider_availability gauge (0 or 1) = 1 unless status is down, i.e.
//                 exactly when the dashboard availability is > 0.
struct provider_health {
  std::string name;
  provider_status status = provider_status::healthy;
  bool available = true;  // the provider_availability gauge
  double availability = 1;
  double error_rate = 0;
  double avg_latency_s = 0;
  double p95_latency_s = 0;
  double latency_score = 1;
  double health_score = 1;
  std::uint64_t requests = 0;  // window
  std::uint64_t failures = 0;
  std::uint64_t client_errors = 0;
  std::uint64_t requests_last_hour = 0;
  std::uint64_t errors_last_hour = 0;
  breaker_state breaker = breaker_state::closed;
  std::optional<probe_status> last_probe;  // when probing is on and a probe ran
  std::vector<model_health> models;        // models with requests in the window
};

// Immutable once published.
struct snapshot {
  wall_time computed_at;
  std::vector<provider_health> providers;  // in options order
};

// The health-score formula (see the definitions at provider_health).
double latency_score(double p95_s);
double health_score(double availability, double error_rate, double latency_score);

// ---- active probes ------------------------------------------------------------------

struct probe_result {
  bool ok = false;
  unsigned http_status = 0;
  std::string detail;
  bool cancelled = false;  // cut short by stop(): says nothing about the provider
};

// Makes a cheap authenticated call to providers (http_prober.hpp has the real
// one). Called only from the monitor thread; stop() from any thread.
class prober {
 public:
  virtual ~prober() = default;
  // Probes the given provider indices concurrently and returns one result
  // each, in order; blocks until all finished (each bounded by its timeout).
  virtual std::vector<probe_result> probe(std::span<const std::size_t> providers) = 0;
  // Makes a running probe() return promptly and later ones fail at once.
  virtual void stop() = 0;
};

// ---- shared health (health.shared) ----------------------------------------------------

struct attempt_counts {
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::uint64_t client_errors = 0;
};

// What gateway instances share through a store (health_redis.hpp: Redis):
// every breaker opening, and attempt counts over the window. With one, the
// monitor runs a round as soon as one of its breakers opens, publishes the
// opening, and at every round opens (reason "shared_open") each of its
// closed or half-open breakers that another instance opened, until that
// instance's cool-down ends; its snapshot's requests, failures, error
// rate and availability count every instance's attempts (latency stays
// local). So a breaker opened by one instance is open on all within one
// interval_s of the others. Called only by the monitor thread, in run_once().
class shared_store {
 public:
  virtual ~shared_store() = default;
  struct exchange_in {
    wall_time now;
    // Per provider: a new local opening to publish (until when), or none.
    std::vector<std::optional<wall_time>> openings;
    // Per provider: local attempts since the last exchange that pushed.
    std::vector<attempt_counts> deltas;
  };
  struct exchange_out {
    bool pushed = false;                               // the deltas and openings were stored
    bool read = false;                                 // the fields below are filled
    std::vector<std::optional<wall_time>> open_until;  // the latest opening in force, per provider
    std::vector<attempt_counts> window;                // every instance's attempts over the window
  };
  // Bounded by the store's timeout; never throws for I/O problems.
  virtual void exchange(const exchange_in& in, exchange_out& out) = 0;
};

// ---- monitor ------------------------------------------------------------------------

struct services {
  const clock_source* clock = nullptr;  // default: system_clock_source()
  // Default: memory_window_store with the registry's shard count.
  std::unique_ptr<window_store> store;
  std::unique_ptr<prober> probe;         // none: no provider is probed
  std::unique_ptr<shared_store> shared;  // none: this process's own view only
  // Called after each breaker transition on the thread that caused it (a
  // shard, the monitor or an admin caller), outside any lock. Keep it short.
  std::function<void(const transition&)> on_transition;
  // Called by the background thread when run_once() throws.
  std::function<void(std::string_view)> on_error;
};

class monitor {
 public:
  // Shards = metrics.reg.shards(). Resolves every metric handle up front.
  // Throws std::invalid_argument on bad options.
  monitor(options opts, telemetry::catalog& metrics, services svc = {});
  ~monitor();  // stop()s
  monitor(const monitor&) = delete;
  monitor& operator=(const monitor&) = delete;

  // Request path (shard threads).
  admission admit(std::size_t shard, std::size_t provider);
  void record(std::size_t shard, const admission& a, const attempt_result& result);
  breaker_state state(std::size_t provider) const;
  // Routing (the gateway's provider order, see "Routing order" above):
  // whether admit() would now grant a half-open trial (breaker_state::closed:
  // one atomic load, else the breaker's mutex) ...
  bool wants_trial(std::size_t provider) const;
  // ... and the routing score of the latest run_once() (1 before the first).
  double score(std::size_t provider) const;

  // The latest snapshot (never null: one is published at construction).
  std::shared_ptr<const snapshot> current() const;

  // One monitor pass at the clock's now: breaker timers, due probes, window
  // statistics, gauges, and a new snapshot.
  void run_once();
  // Runs run_once() now and then every interval_s on a background thread;
  // stop() wakes it at once, stops the prober and joins.
  void start();
  void stop();

  // Admin: force the breaker closed (and forget its failure streak and
  // backoff). False for an unknown provider.
  bool reset(std::size_t provider);
  std::vector<breaker_info> breakers() const;

  std::optional<std::size_t> provider_index(std::string_view name) const;
  const options& settings() const;
  const clock_source& clock() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Records an admitted attempt exactly once: finish() records it; destroying
// the guard without finish() (an exception, a destroyed coroutine frame)
// records outcome::cancelled. Use on the shard thread that admitted it.
class attempt_guard {
 public:
  attempt_guard(monitor& m, std::size_t shard, std::size_t provider)
      : monitor_(&m), shard_(shard), admission_(m.admit(shard, provider)) {}
  ~attempt_guard();
  attempt_guard(const attempt_guard&) = delete;
  attempt_guard& operator=(const attempt_guard&) = delete;

  bool admitted() const { return admission_.admitted; }
  const admission& get() const { return admission_; }
  void finish(const attempt_result& result);

 private:
  monitor* monitor_;
  std::size_t shard_;
  admission admission_;
  bool finished_ = false;
};

}  // namespace gatewayz::health

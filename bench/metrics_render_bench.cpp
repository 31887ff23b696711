// gw_metrics_bench: the cost of GET /metrics at high cardinality, and of the
// metric updates on the request path.
//
// Render: a telemetry::catalog carrying the series the gateway creates for
// every (model, provider) pair it routes to, for P providers x M models each
// (the headline is 50 x 200 = 10,000 pairs, every one with traffic), plus the
// per-provider series (response time, cost, health gauges, breaker states),
// filled from every shard of a registry with S shards. render_text() and
// render_openmetrics() are timed; `bytes` is the size of the output and
// `series` the number of label sets. Target: < 100 ms per scrape at
// 50 x 200, aim for 10 ms.
//
// Hot path: ns per update through a resolved handle, each benchmark thread
// writing its own shard as a server thread does, and the cost of resolving a
// label set (family::series()), which takes the family's mutex.
//
//   build-release/bench/gw_metrics_bench                       # everything
//   build-release/bench/gw_metrics_bench --benchmark_filter=render
//   build-release/bench/gw_metrics_bench --benchmark_filter=hot
//
// Google Benchmark flags apply (--benchmark_repetitions, --benchmark_format=json, ...).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "deterministic_random.hpp"
#include "telemetry/catalog.hpp"
#include "telemetry/metrics.hpp"

namespace {

using namespace gatewayz;

using bench::lcg;  // deterministic: every run renders the same bytes

// The handles gateway.cpp resolves per (model, provider) pair (request_accounting::handles).
struct pair_handles {
  telemetry::counter_handle requests_success, requests_error, input_tokens, output_tokens, credits, failovers;
  telemetry::histogram_handle duration, time_to_first_chunk, gen_ai_duration_ok, gen_ai_input_tokens,
      gen_ai_output_tokens, gen_ai_time_to_first_chunk;
};

struct provider_handles {
  telemetry::histogram_handle response_time;
  telemetry::counter_handle cost, rejected;
  telemetry::gauge_handle availability, error_rate, health_score, closed, open, half_open;
};

std::string provider_name(int p) { return fmt::format("provider-{:02}", p); }
// Model ids as an aggregator spells them.
std::string model_name(int p, int m) { return fmt::format("vendor{:02}/model-family-{:03}-instruct", p, m); }

struct fixture {
  fixture(int providers, int models, std::size_t shards) : reg(shards), cat(reg, "bench") {
    lcg rng;
    for (int p = 0; p < providers; ++p) {
      const std::string pid = provider_name(p);
      provider_handles ph{cat.provider_response_time.series({pid}),
                          cat.cost_by_provider.series({pid}),
                          cat.circuit_breaker_rejected.series({pid}),
                          cat.provider_availability.series({pid}),
                          cat.provider_error_rate.series({pid}),
                          cat.provider_health_score.series({pid}),
                          cat.circuit_breaker_state.series({pid, "closed"}),
                          cat.circuit_breaker_state.series({pid, "open"}),
                          cat.circuit_breaker_state.series({pid, "half_open"})};
      ph.availability.set(1.0);
      ph.error_rate.set(0.01);
      ph.health_score.set(0.97);
      ph.closed.set(1.0);
      ph.open.set(0.0);
      ph.half_open.set(0.0);
      for (std::size_t shard = 0; shard < shards; ++shard) ph.rejected.inc(shard);
      for (int m = 0; m < models; ++m) {
        const std::string mid = model_name(p, m);
        pair_handles h{cat.inference_requests.series({mid, pid, "success"}),
                       cat.inference_requests.series({mid, pid, "error"}),
                       cat.tokens_used.series({mid, pid, "input"}),
                       cat.tokens_used.series({mid, pid, "output"}),
                       cat.credits_used.series({mid, pid}),
                       cat.failovers.series({mid, pid}),
                       cat.inference_duration.series({mid, pid}),
                       cat.time_to_first_chunk.series({mid, pid}),
                       cat.gen_ai_operation_duration.series({"chat", pid, mid, ""}),
                       cat.gen_ai_token_usage.series({"chat", pid, mid, "input"}),
                       cat.gen_ai_token_usage.series({"chat", pid, mid, "output"}),
                       cat.gen_ai_time_to_first_chunk.series({"chat", pid, mid})};
        ++pairs;
        // Traffic on every shard: a few requests each, values spread over the buckets.
        for (std::size_t shard = 0; shard < shards; ++shard) {
          for (int r = 0; r < 3; ++r) {
            const double latency = 0.02 + 12.0 * rng.next01() * rng.next01();
            const double ttfc = latency * 0.3;
            const double in = 10 + 4000 * rng.next01();
            const double out = 1 + 1000 * rng.next01();
            (r == 2 ? h.requests_error : h.requests_success).inc(shard);
            h.duration.observe(shard, latency);
            h.input_tokens.inc(shard, in);
            h.output_tokens.inc(shard, out);
            h.credits.inc(shard, (in + out) * 1.5e-7);
            if (r == 2) h.failovers.inc(shard);
            h.time_to_first_chunk.observe(shard, ttfc);
            h.gen_ai_duration_ok.observe(shard, latency);
            h.gen_ai_input_tokens.observe(shard, in);
            h.gen_ai_output_tokens.observe(shard, out);
            h.gen_ai_time_to_first_chunk.observe(shard, ttfc);
            ph.response_time.observe(shard, latency);
            ph.cost.inc(shard, (in + out) * 1.5e-7);
          }
        }
      }
    }
    // A little of the rest of the catalog, as a running gateway has.
    for (const char* path : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/metrics"}) {
      cat.http_duration.series({"POST", path}).observe(0, 0.05);
      cat.http_requests.series({"POST", path, "200"}).inc(0);
      cat.http_request_size.series({"POST", path}).observe(0, 900);
      cat.http_response_size.series({"POST", path}).observe(0, 1500);
      cat.http_in_progress.series({"POST", path}).inc(0);
      cat.overhead.series({path}).observe(0, 0.0002);
    }
  }

  telemetry::registry reg;
  telemetry::catalog cat;
  int pairs = 0;
};

fixture& get_fixture(int providers, int models, std::size_t shards) {
  static std::map<std::tuple<int, int, std::size_t>, std::unique_ptr<fixture>> cache;
  const auto key = std::make_tuple(providers, models, shards);
  auto it = cache.find(key);
  if (it == cache.end()) {
    cache.clear();  // one at a time: the 50 x 200 one holds a few hundred MB
    it = cache.emplace(key, std::make_unique<fixture>(providers, models, shards)).first;
  }
  return *it->second;
}

// args: providers, models per provider, shards
void render_bench(benchmark::State& state, bool openmetrics) {
  fixture& f = get_fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                           static_cast<std::size_t>(state.range(2)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string out = openmetrics ? f.reg.render_openmetrics() : f.reg.render_text();
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = benchmark::Counter(static_cast<double>(bytes));
  state.counters["MB"] = benchmark::Counter(static_cast<double>(bytes) / 1e6);
  state.counters["pairs"] = benchmark::Counter(f.pairs);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
}

void BM_render_text(benchmark::State& state) { render_bench(state, false); }
void BM_render_openmetrics(benchmark::State& state) { render_bench(state, true); }

void render_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"providers", "models", "shards"});
  b->Args({10, 20, 4});   // 200 pairs: a modest deployment
  b->Args({50, 200, 2});  // 10,000 pairs, 1 server thread + background
  b->Args({50, 200, 4});  // 10,000 pairs, 3 server threads + background
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
}
BENCHMARK(BM_render_text)->Apply(render_args);
BENCHMARK(BM_render_openmetrics)->Apply(render_args);

// --- hot path ------------------------------------------------------------------

constexpr std::size_t hot_shards = 4;

struct hot_fixture {
  hot_fixture() : reg(hot_shards), cat(reg, "bench") {
    counter = cat.inference_requests.series({"m", "p", "success"});
    gauge = cat.http_in_progress.series({"POST", "/v1/chat/completions"});
    histogram = cat.gen_ai_operation_duration.series({"chat", "p", "m", ""});
    histogram_ex = cat.inference_duration.series({"m", "p"});  // declared with exemplars
    // A labelled family with 10,000 series, to time a label-set lookup in it.
    for (int p = 0; p < 50; ++p) {
      for (int m = 0; m < 200; ++m) cat.tokens_used.series({model_name(p, m), provider_name(p), "input"});
    }
  }
  telemetry::registry reg;
  telemetry::catalog cat;
  telemetry::counter_handle counter;
  telemetry::gauge_handle gauge;
  telemetry::histogram_handle histogram, histogram_ex;
};

hot_fixture& hot() {
  static hot_fixture f;
  return f;
}

std::size_t my_shard(const benchmark::State& state) { return static_cast<std::size_t>(state.thread_index()); }

void BM_hot_counter_inc(benchmark::State& state) {
  const auto& h = hot().counter;
  const std::size_t shard = my_shard(state);
  for (auto _ : state) h.inc(shard);
}
void BM_hot_gauge_inc_dec(benchmark::State& state) {
  const auto& h = hot().gauge;
  const std::size_t shard = my_shard(state);
  for (auto _ : state) {
    h.inc(shard);
    h.dec(shard);
  }
}
void BM_hot_histogram_observe(benchmark::State& state) {
  const auto& h = hot().histogram;
  const std::size_t shard = my_shard(state);
  lcg rng;
  for (auto _ : state) h.observe(shard, 20.0 * rng.next01());
}
void BM_hot_histogram_observe_exemplar(benchmark::State& state) {
  const auto& h = hot().histogram_ex;
  const std::size_t shard = my_shard(state);
  lcg rng;
  constexpr std::string_view trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  for (auto _ : state) h.observe(shard, 10.0 * rng.next01(), trace_id);  // reads the wall clock
}
// What gateway.cpp does per attempt for backend_ttfb (and per stream for
// streaming_duration): series() on a label-less family, i.e. a mutex shared
// by every shard plus a map lookup, then observe().
void BM_hot_unlabelled_series_lookup_observe(benchmark::State& state) {
  auto& family = hot().cat.backend_ttfb;
  const std::size_t shard = my_shard(state);
  for (auto _ : state) family.series().observe(shard, 0.01);
}
// Resolving a label set in a 10,000-series family (first use per shard only).
void BM_hot_labelled_series_lookup(benchmark::State& state) {
  auto& family = hot().cat.tokens_used;
  const std::string mid = model_name(17, 123);
  const std::string pid = provider_name(17);
  for (auto _ : state) benchmark::DoNotOptimize(family.series({mid, pid, "input"}));
}
// Every update one non-streaming, successful request makes through resolved
// handles (request_accounting::record_attempt + finish), with metrics on.
void BM_hot_request_updates(benchmark::State& state) {
  auto& f = hot();
  const std::size_t shard = my_shard(state);
  const auto& c = f.counter;
  const auto& h = f.histogram;
  for (auto _ : state) {
    h.observe(shard, 0.2);                // provider_response_time
    h.observe(shard, 0.2);                // gen_ai duration
    c.inc(shard);                         // requests success
    f.histogram_ex.observe(shard, 0.21);  // inference duration
    c.inc(shard, 20);                     // input tokens
    c.inc(shard, 10);                     // output tokens
    h.observe(shard, 20);                 // gen_ai input tokens
    h.observe(shard, 10);                 // gen_ai output tokens
    c.inc(shard, 1e-6);                   // credits
    c.inc(shard, 1e-6);                   // cost by provider
    h.observe(shard, 0.0002);             // overhead
  }
}

void hot_args(benchmark::internal::Benchmark* b) { b->Threads(1)->Threads(2); }
BENCHMARK(BM_hot_counter_inc)->Apply(hot_args);
BENCHMARK(BM_hot_gauge_inc_dec)->Apply(hot_args);
BENCHMARK(BM_hot_histogram_observe)->Apply(hot_args);
BENCHMARK(BM_hot_histogram_observe_exemplar)->Apply(hot_args);
BENCHMARK(BM_hot_unlabelled_series_lookup_observe)->Apply(hot_args);
BENCHMARK(BM_hot_labelled_series_lookup)->Apply(hot_args);
BENCHMARK(BM_hot_request_updates)->Apply(hot_args);

}  // namespace

BENCHMARK_MAIN();

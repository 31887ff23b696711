#pragma once
// Shared pieces of the health tests: a metric catalog, a manual clock and
// helpers to record attempts at the clock's current time.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "health/health.hpp"
#include "telemetry/catalog.hpp"
#include "telemetry/metrics.hpp"

namespace gatewayz::health::test {

using namespace std::chrono_literals;

inline options two_providers() {
  options o;
  o.providers = {provider_info{"alpha", {"gpt-4o-mini", "gpt-4o"}, 0, "/models", 10},
                 provider_info{"beta", {"claude-3-5-haiku-latest"}, 0, "/models", 10}};
  return o;
}

// A monitor on a manual clock with its own registry (4 shards).
struct harness {
  explicit harness(options o = two_providers(), std::unique_ptr<prober> probe = nullptr, std::size_t shards = 4)
      : reg(shards), metrics(reg, "test") {
    services s;
    s.clock = &clock;
    s.probe = std::move(probe);
    s.on_transition = [this](const transition& t) { transitions.push_back(t); };
    mon = std::make_unique<monitor>(std::move(o), metrics, std::move(s));
  }

  // Admits and records one attempt on `shard` at the current time.
  admission attempt(std::size_t provider, outcome result, std::chrono::nanoseconds duration = 100ms,
                    std::size_t shard = 0, std::size_t model = 0) {
    admission a = mon->admit(shard, provider);
    if (a) mon->record(shard, a, attempt_result{model, result, duration, clock.steady()});
    return a;
  }

  double gauge(telemetry::gauge_family& family, std::initializer_list<std::string_view> labels) {
    return family.series(labels).value();
  }
  double counter(telemetry::counter_family& family, std::initializer_list<std::string_view> labels) {
    return family.series(labels).value();
  }

  manual_clock clock;
  telemetry::registry reg;
  telemetry::catalog metrics;
  std::vector<transition> transitions;  // on_transition runs on the test thread here
  std::unique_ptr<monitor> mon;
};

}  // namespace gatewayz::health::test

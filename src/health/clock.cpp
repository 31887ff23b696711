#include "health/clock.hpp"

namespace gatewayz::health {

namespace {

class system_clocks final : public clock_source {
 public:
  steady_time steady() const override { return std::chrono::steady_clock::now(); }
  wall_time wall() const override { return std::chrono::system_clock::now(); }
};

}  // namespace

const clock_source& system_clock_source() {
  static const system_clocks clocks;
  return clocks;
}

manual_clock::manual_clock()
    : steady_ns_(std::chrono::nanoseconds(std::chrono::hours(1000)).count()),
      // 2025-12-23T10:30:00Z: a fixed, recognisable start for tests.
      wall_ns_(std::chrono::nanoseconds(std::chrono::seconds(1766485800)).count()) {}

steady_time manual_clock::steady() const {
  return steady_time(std::chrono::nanoseconds(steady_ns_.load(std::memory_order_acquire)));
}

wall_time manual_clock::wall() const {
  return wall_time(std::chrono::duration_cast<wall_time::duration>(
      std::chrono::nanoseconds(wall_ns_.load(std::memory_order_acquire))));
}

void manual_clock::advance(std::chrono::nanoseconds by) {
  steady_ns_.fetch_add(by.count(), std::memory_order_acq_rel);
  wall_ns_.fetch_add(by.count(), std::memory_order_acq_rel);
}

void manual_clock::set_wall(wall_time t) {
  wall_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(),
                 std::memory_order_release);
}

}  // namespace gatewayz::health

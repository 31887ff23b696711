#pragma once
// Injectable time: the health code never calls std::chrono clocks directly,
// so tests drive windows, cool-downs and caches with a manual clock and no
// sleeps. (The monitor thread's sleep between runs and the prober's network
// deadlines use real time; they are not part of any computed value.)

#include <atomic>
#include <chrono>
#include <cstdint>

#include "health/attempt.hpp"

namespace gatewayz::health {

// Thread safety: implementations must be callable from any thread.
class clock_source {
 public:
  virtual ~clock_source() = default;
  virtual steady_time steady() const = 0;  // intervals, windows, cool-downs
  virtual wall_time wall() const = 0;      // timestamps shown to people
};

// std::chrono::steady_clock and std::chrono::system_clock.
const clock_source& system_clock_source();

// A clock that moves only when told to; both readings advance together.
class manual_clock final : public clock_source {
 public:
  // Starts at an arbitrary, non-zero steady time and 2025-12-23T10:30:00Z.
  manual_clock();
  steady_time steady() const override;
  wall_time wall() const override;
  void advance(std::chrono::nanoseconds by);
  void set_wall(wall_time t);

 private:
  std::atomic<std::int64_t> steady_ns_;
  std::atomic<std::int64_t> wall_ns_;
};

}  // namespace gatewayz::health
